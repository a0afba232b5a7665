//! `natter bench fanout --rooms` against the real server: the clients spread over several
//! rooms, each message owed to the other members of its sender's room only. Every delivery
//! must be counted exactly, none may cross into another room (it would show as foreign), and
//! layouts that leave a room empty or silent are refused in words the user can act on.

mod common;

use common::{Server, assert_no_loss};
use std::net::SocketAddr;
use std::process::{Command, Output};

/// Runs `natter bench` against `addr` (the server's PID given for its CPU time) with `args`.
fn run_bench(server: &Server, addr: SocketAddr, args: &[&str]) -> Output {
    let addr = addr.to_string();
    let pid = server.child.id().to_string();
    let common = ["bench", "--addr", &addr, "--server-pid", &pid, "--quiet", "--timeout", "60"];
    Command::new(common::natter_bin()).args(common).args(args).output().expect("run natter bench")
}

/// The JSON report of a run that must succeed.
fn bench_json(server: &Server, addr: SocketAddr, args: &[&str]) -> serde_json::Value {
    let mut with_json = vec!["--json"];
    with_json.extend_from_slice(args);
    let out = run_bench(server, addr, &with_json);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "natter bench {args:?} failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("not one JSON object ({e}): {}\n{stderr}", String::from_utf8_lossy(&out.stdout))
    })
}

/// A server with its flood limits raised, as the bench needs.
fn server() -> Server {
    Server::start(&["--msg-rate", "0", "--outbox", "1000000"])
}

/// 22 native clients in 4 rooms (#lobby-0 to #lobby-3, besides the lobby every session starts
/// in) of 6, 6, 5 and 5 members; senders 0 to 5 speak in rooms 0, 1, 2, 3, 0, 1, so each of
/// their messages is owed to 5, 5, 4, 4, 5 and 5 others.
#[test]
fn native_fanout_over_four_rooms_counts_every_delivery() {
    let server = server();
    let r = bench_json(
        &server,
        server.tcp,
        &["fanout", "-n", "22", "-s", "6", "-m", "150", "--rooms", "4", "--warmup", "4", "--settle", "5"],
    );
    assert_eq!(r["rooms"], 4, "{r:#}");
    assert_eq!(r["settle"], 5.0, "{r:#}");
    assert_no_loss(&r, (5 + 5 + 4 + 4 + 5 + 5) * 150);
    assert_eq!(r["warmup_delivered"], (5 + 5 + 4 + 4 + 5 + 5) * 4, "{r:#}");
    // Every message was acknowledged, warm-up included.
    assert_eq!(r["acks"], 6 * 154, "{r:#}");

    // Paced and staggered, with an acknowledgement window; the summary says how many rooms.
    let out = run_bench(
        &server,
        server.tcp,
        &[
            "fanout",
            "-n",
            "9",
            "-s",
            "3",
            "-m",
            "40",
            "--rooms",
            "3",
            "--rate",
            "400",
            "--stagger",
            "--window",
            "4",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.starts_with(
            "fanout: 9 clients in 3 rooms, 3 senders x 40 messages (400 msg/s per sender, staggered"
        ),
        "{text}"
    );
    assert!(text.contains("deliveries     240 of 240 expected: 0 lost, 0 out of order"), "{text}");
}

/// IRC clients join their rooms (#bench-0 to #bench-3) by JOIN: 12 clients in rooms of 3, the
/// first 4 send, each message owed to the 2 others in its room.
#[test]
fn irc_fanout_over_four_rooms_counts_every_delivery() {
    let server = server();
    let irc = server.irc.expect("an IRC listener");
    let r = bench_json(
        &server,
        irc,
        &[
            "--protocol",
            "irc",
            "--room",
            "#bench",
            "fanout",
            "-n",
            "12",
            "-s",
            "4",
            "-m",
            "200",
            "--rooms",
            "4",
        ],
    );
    assert_eq!((r["protocol"].as_str(), r["rooms"].as_u64()), (Some("irc"), Some(4)), "{r:#}");
    assert_no_loss(&r, 4 * 2 * 200);
}

/// Layouts that would leave a room without members or without a sender are refused before
/// anything is sent, naming the flags to change.
#[test]
fn room_layouts_that_cannot_work_are_refused() {
    let server = server();
    for (args, says) in [
        (&["-n", "4", "-s", "2", "--rooms", "0"][..], "--rooms must be at least 1"),
        (&["-n", "4", "-s", "4", "--rooms", "5"], "--rooms 5 is more than --clients 4"),
        (&["-n", "10", "-s", "2", "--rooms", "3"], "--senders 2 is fewer than --rooms 3"),
    ] {
        let out = run_bench(&server, server.tcp, &[&["fanout"][..], args].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted: {}", String::from_utf8_lossy(&out.stdout));
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert_eq!(stderr.matches(says).count(), 1, "said more than once: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed a report: {}", String::from_utf8_lossy(&out.stdout));
    }
    // Staggering spreads a paced schedule: without a pace there is nothing to spread.
    let out = run_bench(&server, server.tcp, &["fanout", "-n", "4", "-s", "2", "--stagger"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--rate <RATE>"), "{stderr}");
}
