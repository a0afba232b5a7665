//! Descriptors, as the `natter` binary meets them: the inherited soft limit is raised to the
//! hard one at start (and logged); when descriptors run out all the same, the failed accepts
//! are logged once, not once per retry, and the connections waiting in the backlog are served
//! as soon as descriptors free up; refused connections are logged once a minute too.

#![cfg(unix)]

mod common;

use common::{Client, LoggedServer, native};
use std::time::Duration;

/// The soft and hard limits on open files of a running process, from `/proc/<pid>/limits`.
#[cfg(target_os = "linux")]
fn open_files_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let row = limits.lines().find(|l| l.starts_with("Max open files")).expect("Max open files");
    let numbers: Vec<u64> = row.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (numbers[0], numbers[1])
}

#[test]
fn the_soft_descriptor_limit_is_raised_to_the_hard_limit_and_logged() {
    let server = LoggedServer::start_with_ulimit("-Sn 256", &[]);
    let seen = server.until(&["file-descriptor limit raised"]);
    let line = seen.last().unwrap();
    assert!(line.contains("from=256"), "{line}");
    #[cfg(target_os = "linux")]
    {
        let (soft, hard) = open_files_limits(server.child.id());
        assert_eq!(soft, hard, "the server runs at its hard limit");
        assert!(soft > 256 && line.contains(&format!("to={hard}")), "{line}");
    }
}

/// Waits for the server to log either that it accepted the connection from `port` (`Ok`) or
/// that it cannot accept (`Err` with that line).
fn accepted(server: &LoggedServer, port: u16) -> Result<(), String> {
    let peer = format!("peer=127.0.0.1:{port}");
    loop {
        let line = server.next_within(common::WAIT).unwrap_or_else(|| panic!("nothing logged about {peer}"));
        if line.contains("connected") && line.contains(&peer) {
            return Ok(());
        }
        if line.contains("cannot accept connections") {
            return Err(line);
        }
    }
}

#[test]
fn out_of_descriptors_is_logged_once_and_waiting_connections_are_served_when_some_close() {
    // 64 descriptors, soft and hard: the server cannot raise it, and its newcomer cap is 16.
    let server = LoggedServer::start_with_ulimit("-n 64", &[]);
    server.until(&["connection limits", "unregistered=16"]);
    let mut held = Vec::new();
    let (mut waiting, warning) = loop {
        assert!(held.len() < 64, "64 connections and descriptors never ran out");
        let mut c = Client::connect(server.tcp);
        let port = c.stream.local_addr().unwrap().port();
        c.line(&format!(r#"{{"type":"hello","nick":"u{port}"}}"#));
        if let Err(warning) = accepted(&server, port) {
            break (c, warning);
        }
        c.expect(r#""type":"welcome""#);
        held.push(c);
    };
    assert!(warning.contains("limit=64") && warning.contains("LimitNOFILE"), "{warning}");

    // The server retries every 50 ms while descriptors stay short: half a second of that
    // (ten failed accepts) logs nothing more.
    std::thread::sleep(Duration::from_millis(500));
    let quiet = server.pending();
    assert!(quiet.iter().all(|l| !l.contains("cannot accept")), "{quiet:#?}");

    // Five users leave: the connection that waited in the backlog is served.
    held.truncate(held.len() - 5);
    let seen = server.until(&["accepting connections again"]);
    let again = seen.last().unwrap();
    let failed: u64 = again
        .split_whitespace()
        .find_map(|w| w.strip_prefix("failed="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{again}"));
    assert!(failed >= 10, "the failures went on, unlogged: {again}");
    assert!(seen.iter().all(|l| !l.contains("cannot accept")), "{seen:#?}");
    waiting.expect(r#""type":"welcome""#);
}

#[test]
fn refused_connections_are_logged_once_a_minute() {
    let server = LoggedServer::start(&["--exempt-loopback", "false", "--max-connections-per-address", "1"]);
    let mut ann = native(server.tcp, "ann");
    for _ in 0..20 {
        let mut refused = Client::connect(server.tcp);
        assert_eq!(
            refused.next().as_deref(),
            Some("*** bye: too many connections from your address (1 at most); close one and try again")
        );
    }
    ann.line(r#"{"type":"quit"}"#);
    assert!(ann.closed());
    // The next connection is accepted after every refusal was handled: the log before it
    // holds all the refusals' lines.
    let mut bob = native(server.tcp, "bob");
    bob.ping();
    let seen = server.until(&["logged in", "bob"]);
    let refusals: Vec<&String> = seen.iter().filter(|l| l.contains("refused a connection")).collect();
    assert_eq!(refusals.len(), 1, "{seen:#?}");
    assert!(refusals[0].contains("too many connections from your address"), "{}", refusals[0]);
}
