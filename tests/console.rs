//! `natter serve --console`: the server's terminal answers visitors privately.

mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn the_operator_console_answers_a_visitor_privately() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args([
            "serve",
            "--console",
            "--tcp",
            "127.0.0.1:0",
            "--udp",
            "off",
            "--irc",
            "off",
            "--db",
            ":memory:",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let rx = line_channel(child.stdout.take().unwrap());
    let console_expect = |needle: &str| -> String {
        loop {
            let line = rx.recv_timeout(WAIT).unwrap_or_else(|_| panic!("console never printed {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    };
    let addr: std::net::SocketAddr =
        console_expect("listening tcp").trim().strip_prefix("listening tcp ").unwrap().parse().unwrap();
    console_expect("Hello operator");

    let mut visitor = text(addr, "visitor");
    console_expect("visitor joined");
    visitor.line("@operator my order is late");
    console_expect("*visitor* my order is late");
    stdin.write_all(b"@visitor sorry, it ships today\n").unwrap();
    visitor.expect("*operator* sorry, it ships today");
    // The operator is operator of every room, the lobby included.
    stdin.write_all(b"/ephemeral on\n").unwrap();
    visitor.expect("#lobby is now ephemeral");
    stdin.write_all(b"/quit\n").unwrap();
    visitor.expect("bye: server shutting down");
    let deadline = std::time::Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "server did not stop after the console quit");
        // Polling interval of the wait for the observable exit.
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.wait().unwrap().success());
}

/// Ctrl+C stops a server whose console is waiting for a line: it does not hang until Enter is
/// pressed (the console reads its terminal on a thread of its own).
#[test]
fn an_interrupt_stops_the_server_while_the_console_waits_for_input() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args([
            "serve",
            "--console",
            "--tcp",
            "127.0.0.1:0",
            "--udp",
            "off",
            "--irc",
            "off",
            "--db",
            ":memory:",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kept open and silent, as a terminal nobody types on.
    let _stdin = child.stdin.take().unwrap();
    let rx = line_channel(child.stdout.take().unwrap());
    let expect = |needle: &str| loop {
        let line = rx.recv_timeout(WAIT).unwrap_or_else(|_| panic!("never printed {needle:?}"));
        if line.contains(needle) {
            return;
        }
    };
    expect("Hello operator");
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    expect("stopped");
    let deadline = std::time::Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the server printed stopped but did not exit");
        // Polling interval of the wait for the observable exit.
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.wait().unwrap().success());
}
