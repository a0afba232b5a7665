//! `natter serve --console`: the server's terminal answers visitors privately.

mod common;
use common::*;
use std::process::Command;

#[test]
fn the_operator_console_answers_a_visitor_privately() {
    let mut console = ConsoleServer::start(&["--console", "--irc", "off"]);
    console.expect("Hello operator");
    let mut visitor = text(console.tcp, "visitor");
    console.expect("visitor joined");
    visitor.line("@operator my order is late");
    console.expect("*visitor* my order is late");
    console.type_line("@visitor sorry, it ships today");
    visitor.expect("*operator* sorry, it ships today");
    // The operator is operator of every room, the lobby included.
    console.type_line("/ephemeral on");
    visitor.expect("#lobby is now ephemeral");
    console.type_line("/quit");
    visitor.expect("bye: server shutting down");
    assert!(console.wait_exit().success(), "the server stops after the console quits");
}

/// Ctrl+C stops a server whose console is waiting for a line: it does not hang until Enter is
/// pressed (the console's pending read of the terminal is not waited for).
#[test]
fn an_interrupt_stops_the_server_while_the_console_waits_for_input() {
    // Its stdin is kept open and silent, as a terminal nobody types on.
    let mut console = ConsoleServer::start(&["--console", "--irc", "off"]);
    console.expect("Hello operator");
    Command::new("kill").args(["-INT", &console.child.id().to_string()]).status().unwrap();
    console.expect("stopped");
    assert!(console.wait_exit().success(), "the server printed stopped and exits");
}

/// The console has the account commands of text mode: whoever runs the server registers its
/// nickname, logs out and in again, and a wrong password is refused like anywhere else.
#[test]
fn the_console_registers_and_logs_in_to_an_account() {
    let mut console = ConsoleServer::start(&["--console", "--irc", "off"]);
    console.expect("Hello operator");
    console.type_line("/register correct horse battery");
    console.expect("*** registered the account operator");
    console.type_line("/logout");
    console.expect("*** you logged out of operator");
    console.type_line("/login operator wrong horse battery");
    console.expect("wrong account name or password");
    console.type_line("/login operator correct horse battery");
    console.expect("*** you are logged in as operator");
    console.type_line("/quit");
    assert!(console.wait_exit().success());
}
