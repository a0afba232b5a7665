//! `natter bench` over WebSocket against the real server: fanout (native JSON over WebSocket,
//! with and without an acknowledgement window, and IRC over `text.ircv3.net`), idle and
//! connect must count every delivery exactly and report no loss, as they do over TCP.

mod common;

use common::{Server, assert_no_loss};
use std::process::Command;

/// Runs `natter bench` against `server`'s TCP port with `args` and returns its JSON report.
fn bench(server: &Server, args: &[&str]) -> serde_json::Value {
    let addr = server.tcp.to_string();
    let pid = server.child.id().to_string();
    let common = ["bench", "--addr", &addr, "--server-pid", &pid, "--json", "--quiet", "--timeout", "60"];
    let out = Command::new(common::natter_bin()).args(common).args(args).output().expect("run natter bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "natter bench {args:?} failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("not one JSON object ({e}): {}\n{stderr}", String::from_utf8_lossy(&out.stdout))
    })
}

/// A server with its flood limits raised, as the bench needs.
fn server() -> Server {
    Server::start(&["--irc", "off", "--msg-rate", "0", "--outbox", "1000000"])
}

#[test]
fn fanout_over_websocket_counts_every_delivery() {
    let server = server();
    let r = bench(&server, &["--proto", "ws", "fanout", "-n", "20", "-s", "4", "-m", "300", "--warmup", "5"]);
    assert_eq!(r["protocol"], "ws", "{r:#}");
    assert_no_loss(&r, 4 * 300 * 19);
    assert_eq!(r["warmup_delivered"], 4 * 5 * 19, "{r:#}");
    // Every message was acknowledged over the WebSocket, warm-up included.
    assert_eq!(r["acks"], 4 * 305, "{r:#}");

    // Senders that wait for their acknowledgements.
    let r =
        bench(&server, &["--protocol", "ws", "fanout", "-n", "5", "-s", "2", "-m", "200", "--window", "3"]);
    assert_no_loss(&r, 2 * 200 * 4);
    assert_eq!(r["acks"], 2 * 200, "{r:#}");
}

#[test]
fn fanout_over_websocket_irc_counts_every_delivery() {
    let server = server();
    let r = bench(
        &server,
        &["--protocol", "ws-irc", "--room", "#bench", "fanout", "-n", "10", "-s", "2", "-m", "200"],
    );
    assert_eq!(r["protocol"], "ws-irc", "{r:#}");
    assert_no_loss(&r, 2 * 200 * 9);
}

#[test]
fn idle_and_connect_over_websocket() {
    let server = server();
    let r = bench(&server, &["--protocol", "ws", "idle", "-n", "200", "--hold", "0.3", "--settle", "2"]);
    assert_eq!(r["opened"], 200, "{r:#}");
    for zero in ["failed", "dropped"] {
        assert_eq!(r[zero], 0, "{zero}: {r:#}");
    }
    assert!(r["kib_per_connection"].as_f64().is_some(), "{r:#}");

    let r = bench(&server, &["--protocol", "ws", "connect", "-n", "200", "-c", "8"]);
    assert_eq!(r["registered"], 200, "{r:#}");
    assert_eq!(r["failed"], 0, "{r:#}");
}

/// A port that does not speak HTTP is named as such, not waited on.
#[test]
fn a_port_without_websocket_is_reported() {
    let server = Server::start(&["--msg-rate", "0"]);
    let irc = server.irc.expect("an IRC listener").to_string();
    let out = Command::new(common::natter_bin())
        .args(["bench", "--addr", &irc, "--protocol", "ws", "--quiet", "--timeout", "20"])
        .args(["fanout", "-n", "2", "-s", "1", "-m", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("WebSocket handshake") && stderr.contains("101"), "{stderr}");
}
