//! `natter bench soak` against the real server, shortened: the accounting must report zero
//! loss when nothing is lost, find losses when the server refuses messages, and tell a slow
//! reader the server cut from one it did not.

mod common;

use common::Server;
use std::process::Command;

/// Runs `natter bench soak` against `server` with the given soak options and returns its JSON
/// report. 50 clients in 5 rooms of 10; one slow reader in every room, which stops reading
/// half a second in.
fn soak(server: &Server, extra: &[&str]) -> serde_json::Value {
    let addr = server.tcp.to_string();
    let pid = server.child.id().to_string();
    let mut args = vec![
        "bench",
        "--addr",
        &addr,
        "--server-pid",
        &pid,
        "--json",
        "--quiet",
        "--timeout",
        "120",
        "soak",
        "-n",
        "50",
        "--rooms",
        "5",
        "--slow",
        "1",
        "--slow-after",
        "0.5",
        "--sample",
        "1",
        // The drain only waits while something is missing: long enough for a slow commit's
        // last acknowledgements on a loaded machine.
        "--drain",
        "5",
    ];
    args.extend_from_slice(extra);
    let out = Command::new(common::natter_bin()).args(&args).output().expect("run natter bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "natter bench soak failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("not one JSON object ({e}): {}\n{stderr}", String::from_utf8_lossy(&out.stdout))
    })
}

/// 4 seconds at 30 messages per second per room (each client sends 3 a second, below the
/// default limit of 10), so 600 messages, each due to the 9 other members of its room.
/// Messages of 12 KB, so that the slow reader's backlog soon passes what the kernel's socket
/// buffers hold (about 4 MB on loopback).
#[test]
fn nothing_lost_and_the_slow_reader_is_cut() {
    // Small outboxes, so that the slow reader is cut within the 4 seconds.
    let server = Server::start(&["--irc", "off", "--outbox", "64", "--outbox-kib", "64"]);
    let r = soak(&server, &["--rate", "30", "--duration", "4", "--size", "12000"]);
    assert_eq!(r["connected"], 50, "{r:#}");
    let sent = r["sent"].as_u64().unwrap();
    assert_eq!(sent, 600, "{r:#}");
    assert_eq!(r["expected"], sent * 9, "{r:#}");
    assert_eq!(r["delivered"], r["expected"], "{r:#}");
    for zero in ["lost", "out_of_order", "misrouted", "disconnects", "errors", "send_failures"] {
        assert_eq!(r[zero], 0, "{zero}: {r:#}");
    }
    assert_eq!(r["zero_loss"], true, "{r:#}");
    assert_eq!(r["acks"], sent, "{r:#}");
    assert_eq!(r["latency"]["samples"], sent * 9, "{r:#}");
    let slow = &r["slow_readers"];
    assert_eq!(slow["cut"], 1, "{r:#}");
    assert_eq!(slow["rooms_joined"], 5, "{r:#}");
    assert!(slow["first_reason"].as_str().unwrap().contains("too slow"), "{r:#}");
    // One line before the chatter, one a second, one after the drain.
    let samples = r["samples"].as_array().unwrap();
    assert!(samples.len() >= 4, "{r:#}");
    assert!(samples.iter().all(|s| s["server_rss_kib"].as_u64().unwrap() > 0 && s["server_fds"].is_u64()));
    let deliveries: u64 = samples.iter().map(|s| s["deliveries"].as_u64().unwrap()).sum();
    assert_eq!(deliveries, sent * 9, "{r:#}");
    // The server gave back the descriptors of all 51 connections.
    assert!(samples[0]["server_fds"].as_u64().unwrap() >= r["server_fds_before"].as_u64().unwrap() + 50);
    assert!(r["server_fds_after"].as_u64().unwrap() <= r["server_fds_before"].as_u64().unwrap(), "{r:#}");
}

/// The same, but the server keeps any backlog and limits each sender to one message a
/// second: the slow reader is still connected at the end, and the refused messages show as
/// losses and errors.
#[test]
fn losses_and_an_uncut_slow_reader_are_reported() {
    let server = Server::start(&[
        "--irc",
        "off",
        "--outbox",
        "1000000",
        "--outbox-kib",
        "4000000",
        "--msg-rate",
        "1",
        "--msg-burst",
        "1",
    ]);
    let r = soak(&server, &["--rate", "20", "--duration", "2", "--size", "40"]);
    assert_eq!(r["zero_loss"], false, "{r:#}");
    assert!(r["lost"].as_u64().unwrap() > 0, "{r:#}");
    assert!(r["errors"].as_u64().unwrap() > 0, "{r:#}");
    assert!(r["first_problem"].as_str().unwrap().contains("rate"), "{r:#}");
    assert_eq!(
        r["lost"].as_u64().unwrap() + r["delivered"].as_u64().unwrap(),
        r["expected"].as_u64().unwrap(),
        "{r:#}"
    );
    // Found while it ran, not only at the end.
    let samples = r["samples"].as_array().unwrap();
    assert!(samples.last().unwrap()["lost"].as_u64().unwrap() > 0, "{r:#}");
    assert_eq!(r["slow_readers"]["not_cut"], 1, "{r:#}");
    assert_eq!(r["slow_readers"]["cut"], 0, "{r:#}");
}

#[test]
fn bad_options_are_named() {
    let server = Server::start(&["--irc", "off"]);
    let addr = server.tcp.to_string();
    for (args, needle) in [
        (vec!["soak", "-n", "10", "--rooms", "6"], "--rooms"),
        (vec!["soak", "--rate", "0"], "--rate"),
        (vec!["--timeout", "30", "soak", "--duration", "60"], "--timeout"),
        (vec!["soak", "--sample", "0"], "--sample"),
    ] {
        let out =
            Command::new(common::natter_bin()).args(["bench", "--addr", &addr]).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}
