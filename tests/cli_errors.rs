//! What `natter serve` says when it cannot start: one line naming what was wrong and what to
//! do, each cause once, no backtrace, exit status 1.

mod common;

use common::natter_bin;
use std::process::Command;

/// Runs `natter serve` with `args` (and stdin closed); returns its error output.
fn fails(args: &[&str]) -> String {
    let out = Command::new(natter_bin())
        .arg("serve")
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env("NATTER_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line, not a chain or a backtrace:\n{err}");
    assert!(lines[0].starts_with("natter: "), "{err}");
    assert!(!err.contains("Caused by") && !err.contains("backtrace"), "{err}");
    lines[0].to_string()
}

#[test]
fn a_bare_port_asks_for_host_and_port() {
    let line = fails(&["--tcp", "17026", "--db", ":memory:"]);
    assert!(line.contains("HOST:PORT") && line.contains("0.0.0.0:17026"), "{line}");
}

#[test]
fn a_port_in_use_is_named_with_the_flag_to_change() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let line = fails(&["--tcp", &addr, "--udp", "off", "--irc", "off", "--db", ":memory:"]);
    assert!(line.contains(&addr) && line.contains("--tcp"), "{line}");
}

#[test]
fn a_file_that_is_not_a_database_is_named_once_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    std::fs::write(&path, "these are my notes, not a database ".repeat(20)).unwrap();
    let line =
        fails(&["--db", path.to_str().unwrap(), "--tcp", "127.0.0.1:0", "--udp", "off", "--irc", "off"]);
    assert_eq!(line.matches(path.to_str().unwrap()).count(), 1, "{line}");
    assert!(line.contains("move it aside or choose another --db"), "{line}");
}

#[test]
fn a_second_server_on_the_same_database_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("natter.db");
    let first = common::Server::start_with_db(&db, &[]);
    let line = fails(&["--db", db.to_str().unwrap(), "--tcp", "127.0.0.1:0", "--udp", "off", "--irc", "off"]);
    assert!(line.contains("another natter server is using this database"), "{line}");
    // The first goes on, and once it is gone the file can be used again.
    let mut ann = common::native(first.tcp, "ann");
    ann.line(r#"{"type":"ping","id":1}"#);
    ann.expect(r#""type":"pong""#);
    drop(first);
    let again = common::Server::start_with_db(&db, &[]);
    common::native(again.tcp, "bob");
}
