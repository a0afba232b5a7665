//! The client's connection library against the real server: send and receive, history
//! paging, nick collisions, and reconnect with catch-up across a server crash and restart
//! with the same store (every message arrives exactly once).

mod client_util;

use client_util::{Server, refusing_addr};
use natter_client::conn::{Client, ConnectOptions, Endpoint, Event, Events, Status, Target};
use natter_proto::native::{ClientFrame, MessageFrame, ServerFrame};
use std::time::Duration;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

fn opts(server: &Server, nick: &str) -> ConnectOptions {
    let mut o = ConnectOptions::new(server.addr.clone(), nick);
    o.backoff_min = Duration::from_millis(100);
    o.backoff_max = Duration::from_millis(400);
    o.connect_timeout = Duration::from_secs(5);
    o
}

/// Waits for the first event matching `pred`, returning it; panics after [`WAIT`].
async fn wait_for(events: &mut Events, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Event {
    timeout(WAIT, async {
        loop {
            match events.recv().await {
                Some(e) if pred(&e) => return e,
                Some(_) => {}
                None => panic!("event stream ended while waiting for {what}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Collects room messages texts until `done` says enough, panicking after [`WAIT`].
async fn collect_texts(events: &mut Events, mut done: impl FnMut(&[String]) -> bool) -> Vec<String> {
    let mut got = Vec::new();
    timeout(WAIT, async {
        while !done(&got) {
            match events.recv().await {
                Some(Event::Message { msg, .. }) => got.push(msg.text.to_string()),
                Some(_) => {}
                None => break,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out; got so far: {got:?}"));
    got
}

fn text(msg: &MessageFrame<'_>) -> String {
    msg.text.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_and_private_messages_flow_both_ways() {
    let server = Server::start();
    let (ann, mut ann_ev) = Client::connect(opts(&server, "ann")).await.expect("ann connects");
    let (bob, mut bob_ev) = Client::connect(opts(&server, "bob")).await.expect("bob connects");
    wait_for(
        &mut ann_ev,
        "bob's join",
        |e| matches!(e, Event::Frame(ServerFrame::Join { nick, .. }) if nick == "bob"),
    )
    .await;

    let cid = ann.say("#lobby", "hello bob");
    let e = wait_for(&mut bob_ev, "ann's message", |e| matches!(e, Event::Message { .. })).await;
    let Event::Message { msg, own, history } = e else { unreachable!() };
    assert_eq!((msg.from.as_ref(), text(&msg).as_str(), own, history), ("ann", "hello bob", false, false));
    assert_eq!(msg.room.as_deref(), Some("#lobby"));
    let mid = msg.mid.expect("stored room messages have an id");

    let own_msg =
        wait_for(&mut ann_ev, "own message", |e| matches!(e, Event::Message { own: true, .. })).await;
    assert!(matches!(own_msg, Event::Message { msg, .. } if msg.mid == Some(mid) && msg.from == "ann"));
    let acked = wait_for(&mut ann_ev, "ack", |e| matches!(e, Event::Acked { .. })).await;
    assert_eq!(acked, Event::Acked { cid, mid: Some(mid), duplicate: false });

    bob.send(Target::Nick("ann".into()), "psst", false);
    let e =
        wait_for(&mut ann_ev, "private message", |e| matches!(e, Event::Message { own: false, .. })).await;
    let Event::Message { msg, .. } = e else { unreachable!() };
    assert_eq!((msg.room, msg.from.as_ref(), msg.to.as_deref()), (None, "bob", Some("ann")));

    // A request with an answer, and a refused message.
    let who = ann
        .request(ClientFrame::Who {
            room: Some("#lobby".into()),
            detail: false,
            after: None,
            limit: None,
            id: None,
        })
        .await
        .unwrap();
    assert!(matches!(who, ServerFrame::Members { nicks, .. } if nicks == ["ann", "bob"]));
    let cid = ann.send(Target::Nick("nobody".into()), "hello?", false);
    let failed = wait_for(&mut ann_ev, "send failure", |e| matches!(e, Event::SendFailed { .. })).await;
    assert!(matches!(failed, Event::SendFailed { cid: c, .. } if c == cid));
    timeout(WAIT, ann.wait_idle()).await.expect("idle once everything is answered");
    ann.quit(None).await;
    wait_for(
        &mut bob_ev,
        "ann's quit",
        |e| matches!(e, Event::Frame(ServerFrame::Quit { nick, .. }) if nick == "ann"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_back_to_the_first_message() {
    let server = Server::start();
    let (ann, _ev) = Client::connect(opts(&server, "ann")).await.unwrap();
    for i in 0..25 {
        ann.say("#lobby", format!("m{i}"));
    }
    timeout(WAIT, ann.wait_idle()).await.unwrap();
    let (latest, more) = ann.history("#lobby", None, None, 10).await.unwrap();
    assert!(more);
    assert_eq!(
        latest.iter().map(text).collect::<Vec<_>>(),
        (15..25).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    let mut all = latest;
    loop {
        let oldest = all[0].mid.unwrap();
        let (page, more) = ann.history("#lobby", Some(oldest), None, 10).await.unwrap();
        all.splice(0..0, page);
        if !more {
            break;
        }
    }
    assert_eq!(
        all.iter().map(text).collect::<Vec<_>>(),
        (0..25).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    let (after, more) = ann.history("#lobby", None, Some(all[20].mid.unwrap()), 100).await.unwrap();
    assert!(!more);
    assert_eq!(after.iter().map(text).collect::<Vec<_>>(), ["m21", "m22", "m23", "m24"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_nick_gets_an_underscore() {
    let server = Server::start();
    let (_a, _ev) = Client::connect(opts(&server, "ann")).await.unwrap();
    let (b, mut ev) = Client::connect(opts(&server, "ann")).await.unwrap();
    assert_eq!(b.nick(), "ann_");
    let w = wait_for(&mut ev, "warning", |e| matches!(e, Event::Warning(_))).await;
    assert!(matches!(w, Event::Warning(t) if t.contains("taken")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_a_clear_error() {
    let (_held, addr) = refusing_addr();
    let e = Client::connect(ConnectOptions::new(addr, "ann")).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("could not connect") && text.contains("natter serve"), "{text}");
}

/// Kill the server mid-conversation and restart it with the same store: ann misses messages
/// while away and queues her own; after the reconnect she has every message exactly once, and
/// bob has each of hers exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_catches_up_without_gap_or_duplicate() {
    // Joins replay only 5 messages, so catching up must page through `history {after}`.
    let mut server = Server::start_with(&["--msg-rate", "0", "--history", "5"]);
    let mut ann_opts = opts(&server, "ann");
    ann_opts.rooms = vec!["#ops".into()];
    // Ann comes back late, so that others talk while she is away.
    ann_opts.backoff_min = Duration::from_millis(1500);
    ann_opts.backoff_max = Duration::from_millis(1500);
    let (ann, mut ann_ev) = Client::connect(ann_opts).await.unwrap();
    let (bob, mut bob_ev) = Client::connect(opts(&server, "bob")).await.unwrap();
    bob.submit(ClientFrame::Join { room: "#ops".into(), key: None, id: None });
    wait_for(
        &mut bob_ev,
        "bob in #ops",
        |e| matches!(e, Event::Frame(ServerFrame::Joined { room, .. }) if room == "#ops"),
    )
    .await;

    for i in 0..5 {
        bob.say("#lobby", format!("before-{i}"));
    }
    bob.say("#ops", "ops-before");
    timeout(WAIT, bob.wait_idle()).await.unwrap();
    let got = collect_texts(&mut ann_ev, |g| g.len() >= 6).await;
    assert_eq!(got.len(), 6);

    server.kill();
    wait_for(&mut ann_ev, "ann reconnecting", |e| matches!(e, Event::Status(Status::Reconnecting { .. })))
        .await;
    // Typed while disconnected: queued, sent after the reconnect with their client ids.
    ann.say("#lobby", "ann-queued-1");
    ann.say("#ops", "ann-queued-2");
    server.restart();

    // Carol talks before ann is back; bob (fast backoff) reconnects and talks too.
    let (carol, _cev) = Client::connect(opts(&server, "carol")).await.unwrap();
    carol.submit(ClientFrame::Join { room: "#ops".into(), key: None, id: None });
    for i in 0..30 {
        carol.say("#lobby", format!("while-away-{i}"));
    }
    carol.say("#ops", "ops-while-away");
    timeout(WAIT, carol.wait_idle()).await.unwrap();
    wait_for(&mut bob_ev, "bob reconnected", |e| {
        matches!(e, Event::Status(Status::Connected { reconnected: true, .. }))
    })
    .await;

    let expected_ann: Vec<String> = (0..30)
        .map(|i| format!("while-away-{i}"))
        .chain(["ops-while-away".into(), "ann-queued-1".into(), "ann-queued-2".into(), "after".into()])
        .collect();
    // Once ann is back, bob says one more thing live.
    wait_for(&mut ann_ev, "ann reconnected", |e| {
        matches!(e, Event::Status(Status::Connected { reconnected: true, .. }))
    })
    .await;
    timeout(WAIT, ann.wait_idle()).await.unwrap();
    bob.say("#lobby", "after");
    let mut got = collect_texts(&mut ann_ev, |g| g.iter().any(|t| t == "after")).await;
    // Barrier: bob's next message reaches ann after anything the server sent her before it,
    // a duplicate included.
    bob.say("#lobby", "barrier-ann");
    got.extend(collect_texts(&mut ann_ev, |g| g.iter().any(|t| t == "barrier-ann")).await);
    got.retain(|t| t != "barrier-ann");
    let mut sorted_got = got.clone();
    sorted_got.sort();
    let mut sorted_expected = expected_ann.clone();
    sorted_expected.sort();
    assert_eq!(sorted_got, sorted_expected, "ann got {got:?}");
    // Missed lobby messages arrive in order.
    let away: Vec<&String> = got.iter().filter(|t| t.starts_with("while-away-")).collect();
    assert_eq!(
        away,
        (0..30).map(|i| format!("while-away-{i}")).collect::<Vec<_>>().iter().collect::<Vec<_>>()
    );

    // Bob saw each of ann's queued messages once.
    let bob_got = collect_texts(&mut bob_ev, |g| {
        g.iter().any(|t| t == "ann-queued-1") && g.iter().any(|t| t == "ann-queued-2")
    })
    .await;
    // Barrier: ann's next message reaches bob after any resend of her queued ones.
    ann.say("#lobby", "barrier-bob");
    let mut bob_all = bob_got;
    bob_all.extend(collect_texts(&mut bob_ev, |g| g.iter().any(|t| t == "barrier-bob")).await);
    for t in ["ann-queued-1", "ann-queued-2"] {
        assert_eq!(bob_all.iter().filter(|x| *x == t).count(), 1, "{t} in {bob_all:?}");
    }

    // The store holds each exactly once too.
    let (lobby, _) = ann.history("#lobby", None, None, 200).await.unwrap();
    let texts: Vec<String> = lobby.iter().map(text).collect();
    assert_eq!(texts.iter().filter(|t| *t == "ann-queued-1").count(), 1);
    assert_eq!(texts.iter().filter(|t| t.starts_with("before-")).count(), 5);
}

/// A server that turns the connection away (too many from this address) says why in one
/// line before any frame; the client's error gives that reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_server_turns_away_reports_why() {
    let server = Server::start_with(&["--exempt-loopback", "false", "--max-connections-per-address", "1"]);
    let (_ann, _events) = Client::connect(opts(&server, "ann")).await.unwrap();
    let e = Client::connect(opts(&server, "bob")).await.unwrap_err().to_string();
    assert!(
        e.contains("the server closed the connection: too many connections from your address (1 at most)"),
        "{e}"
    );
}

/// A proxy between a client and the server that loses one acknowledgement: on the first
/// connection, once the client has sent a line containing `marker`, the server's next `ack`
/// is not passed on and the connection is cut (as a network failure would, after the server
/// took the message). Later connections pass everything.
async fn ack_losing_proxy(upstream: String, marker: &'static str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
            let (client_read, mut client_write) = client.into_split();
            let (server_read, mut server_write) = server.into_split();
            let armed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (cut, lose) = (armed.clone(), std::mem::take(&mut first));
            let up = tokio::spawn(async move {
                let mut lines = BufReader::new(client_read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if server_write.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                        break;
                    }
                    if lose && line.contains(marker) {
                        cut.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            });
            tokio::spawn(async move {
                let mut lines = BufReader::new(server_read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if armed.load(std::sync::atomic::Ordering::SeqCst) && line.contains(r#""type":"ack""#) {
                        break;
                    }
                    if client_write.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                        break;
                    }
                }
                // Both ways close: the client sees the connection lost, the server the same.
                up.abort();
            });
        }
    });
    addr
}

/// The reason client ids exist: a message whose ack was lost with the connection is resent on
/// the next one and recognised (the client proves it is the same client with the secret it
/// gives at every login), so it is shown once, not twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_after_a_lost_ack_is_recognised_not_doubled() {
    let server = Server::start();
    let (_bob, mut bob_ev) = Client::connect(opts(&server, "bob")).await.unwrap();
    let mut ann_opts = opts(&server, "ann");
    ann_opts.servers = vec![Endpoint::plain(ack_losing_proxy(server.addr.clone(), "lost-ack").await)];
    let (ann, mut ann_ev) = Client::connect(ann_opts).await.unwrap();
    let cid = ann.say("#lobby", "lost-ack");
    wait_for(&mut ann_ev, "the cut", |e| matches!(e, Event::Status(Status::Reconnecting { .. }))).await;
    let acked = wait_for(&mut ann_ev, "the resend's ack", |e| matches!(e, Event::Acked { .. })).await;
    assert!(matches!(&acked, Event::Acked { cid: c, duplicate: true, .. } if *c == cid), "{acked:?}");
    // Barrier: ann's next message reaches bob after any second copy would have.
    ann.say("#lobby", "after");
    let got = collect_texts(&mut bob_ev, |g| g.iter().any(|t| t == "after")).await;
    assert_eq!(got.iter().filter(|t| *t == "lost-ack").count(), 1, "{got:?}");
}
