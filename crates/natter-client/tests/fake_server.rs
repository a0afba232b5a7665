//! The connection library against a scripted fake server, for what the real one does not do
//! on demand: lose an acknowledgement, send garbage, send an oversized frame, close abruptly.

use natter_client::conn::{Client, ConnectOptions, Event, Status};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

struct Peer {
    rd: BufReader<tokio::net::tcp::OwnedReadHalf>,
    wr: tokio::net::tcp::OwnedWriteHalf,
}

impl Peer {
    async fn accept(l: &TcpListener) -> Peer {
        let (s, _) = timeout(WAIT, l.accept()).await.expect("client connects").unwrap();
        let (rd, wr) = s.into_split();
        Peer { rd: BufReader::new(rd), wr }
    }

    async fn recv(&mut self) -> serde_json::Value {
        let mut line = String::new();
        timeout(WAIT, self.rd.read_line(&mut line)).await.expect("client frame").unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad client frame {line:?}: {e}"))
    }

    /// Reads frames until one of type `ty`.
    async fn recv_type(&mut self, ty: &str) -> serde_json::Value {
        loop {
            let f = self.recv().await;
            if f["type"] == ty {
                return f;
            }
        }
    }

    async fn send(&mut self, raw: &str) {
        self.wr.write_all(raw.as_bytes()).await.unwrap();
        self.wr.write_all(b"\n").await.unwrap();
    }

    async fn login(&mut self, history: &str) {
        let hello = self.recv_type("hello").await;
        let nick = hello["nick"].as_str().unwrap().to_string();
        self.send(&format!(r#"{{"type":"welcome","v":1,"nick":"{nick}","server":"fake","id":0}}"#)).await;
        self.send(&format!(
            r##"{{"type":"joined","room":"#lobby","topic":"","members":["{nick}"],"history":[{history}]}}"##
        ))
        .await;
    }
}

fn opts(addr: &str) -> ConnectOptions {
    let mut o = ConnectOptions::new(addr, "ann");
    o.backoff_min = Duration::from_millis(20);
    o.backoff_max = Duration::from_millis(50);
    o
}

async fn next_message(ev: &mut natter_client::conn::Events) -> Event {
    timeout(WAIT, async {
        loop {
            match ev.recv().await.expect("events") {
                e @ Event::Message { .. } => return e,
                _ => continue,
            }
        }
    })
    .await
    .expect("a message")
}

/// The server stored the message but the connection died before the ack: after the
/// reconnect the message comes back in the join's history and the resend is acknowledged as a
/// duplicate. It must be shown exactly once.
#[tokio::test]
async fn lost_ack_is_neither_lost_nor_doubled() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let mut p = Peer::accept(&l).await;
        p.login("").await;
        let send = p.recv_type("send").await;
        let cid = send["cid"].as_str().unwrap().to_string();
        drop(p); // crash before the ack
        let mut p = Peer::accept(&l).await;
        p.login(r##"{"room":"#lobby","from":"ann","text":"hello","mid":1,"ts":5}"##).await;
        let again = p.recv_type("send").await;
        assert_eq!(again["cid"], cid.as_str(), "resent with the same client id");
        let id = again["id"].clone();
        p.send(&format!(
            r##"{{"type":"ack","id":{id},"cid":"{cid}","mid":1,"room":"#lobby","ts":5,"duplicate":true}}"##
        ))
        .await;
        p.send(r##"{"type":"message","room":"#lobby","from":"bob","text":"next","mid":2,"ts":6}"##).await;
        // Keep the connection until the client is done.
        let _ = p.recv_type("quit").await;
    });
    let (client, mut ev) = Client::connect(opts(&addr)).await.unwrap();
    client.say("#lobby", "hello");
    let first = next_message(&mut ev).await;
    assert!(
        matches!(&first, Event::Message { msg, .. } if msg.text == "hello" && msg.mid == Some(1)),
        "{first:?}"
    );
    let second = next_message(&mut ev).await;
    assert!(matches!(&second, Event::Message { msg, .. } if msg.text == "next"), "{second:?}");
    timeout(WAIT, client.wait_idle()).await.unwrap();
    assert_eq!(client.pending(), 0);
    client.quit(None).await;
    server.await.unwrap();
}

/// Garbage, an oversized frame and unknown frame types are reported as warnings; the session
/// goes on and a later message still arrives.
#[tokio::test]
async fn bad_server_input_is_reported_not_fatal() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let mut p = Peer::accept(&l).await;
        p.login("").await;
        p.send("this is not json").await;
        p.send(&format!(r#"{{"type":"notice","text":"{}"}}"#, "x".repeat(5 * 1024 * 1024))).await;
        p.send(r#"{"type":"dance"}"#).await;
        p.send("\u{1b}[2J\u{0}\u{ff}").await;
        p.send(r##"{"type":"message","room":"#lobby","from":"bob","text":"still here","mid":1,"ts":6}"##)
            .await;
        // Then the server closes its side; it keeps reading a moment so that the client's
        // pings do not turn the close into a reset that could swallow the frames above.
        p.wr.shutdown().await.unwrap();
        let _ = timeout(Duration::from_millis(500), async {
            let mut sink = String::new();
            while p.rd.read_line(&mut sink).await.is_ok_and(|n| n > 0) {}
        })
        .await;
    });
    let (_client, mut ev) = Client::connect(opts(&addr)).await.unwrap();
    let mut warnings = Vec::new();
    let msg = timeout(WAIT, async {
        loop {
            match ev.recv().await.expect("events") {
                Event::Warning(w) => warnings.push(w),
                Event::Message { msg, .. } => return msg,
                _ => {}
            }
        }
    })
    .await
    .expect("the message after the garbage");
    assert_eq!(msg.text, "still here");
    assert!(warnings.len() >= 3, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("larger than")), "{warnings:?}");
    server.await.unwrap();
    // The closed socket leads to a reconnect attempt, announced as such.
    let status = timeout(WAIT, async {
        loop {
            if let Event::Status(s @ Status::Reconnecting { .. }) = ev.recv().await.expect("events") {
                return s;
            }
        }
    })
    .await
    .unwrap();
    assert!(matches!(status, Status::Reconnecting { reason, .. } if reason.contains("closed")));
}

/// A server that accepts but never answers the login is reported, not waited on forever.
#[tokio::test]
async fn silent_server_times_out_with_a_clear_error() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let _hold = tokio::spawn(async move {
        let (s, _): (TcpStream, _) = l.accept().await.unwrap();
        // Hold the connection open and say nothing, for as long as the test runs.
        let _held = s;
        std::future::pending::<()>().await;
    });
    let mut o = opts(&addr);
    o.connect_timeout = Duration::from_millis(300);
    let e = Client::connect(o).await.unwrap_err().to_string();
    assert!(e.contains("did not answer"), "{e}");
}

/// Two nodes of a cluster: the first dies with a message sent and not acknowledged. The client
/// moves to the second after the first backoff step (a jitter that spreads the clients of a
/// dead node), says so, logs in with the same
/// client secret, fetches what it missed after the last id it saw (the join's history does not
/// reach back), and resends the message with its original client id.
#[tokio::test]
async fn a_lost_node_is_left_for_the_next_which_catches_up_and_takes_the_resend() {
    let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr_a, addr_b) = (a.local_addr().unwrap().to_string(), b.local_addr().unwrap().to_string());
    let node_a = tokio::spawn(async move {
        let mut p = Peer::accept(&a).await;
        let hello = p.recv_type("hello").await;
        p.send(r#"{"type":"welcome","v":1,"nick":"ann","server":"node a","id":0}"#).await;
        p.send(r##"{"type":"joined","room":"#lobby","topic":"","members":["ann"],"history":[]}"##).await;
        p.send(r##"{"type":"message","room":"#lobby","from":"bob","text":"one","mid":1,"ts":5}"##).await;
        let send = p.recv_type("send").await;
        // Node A dies before it answers; it never accepts again.
        drop(p);
        drop(a);
        (hello["client_secret"].clone(), send["cid"].clone())
    });
    let node_b = tokio::spawn(async move {
        let mut p = Peer::accept(&b).await;
        let hello = p.recv_type("hello").await;
        p.send(r#"{"type":"welcome","v":1,"nick":"ann","server":"node b","id":0}"#).await;
        // The join replays the latest message only: the client must ask for the one between.
        p.send(
            r##"{"type":"joined","room":"#lobby","topic":"","members":["ann"],"history":[{"room":"#lobby","from":"bob","text":"three","mid":3,"ts":7}]}"##,
        )
        .await;
        let mut asked = None;
        let mut resent = None;
        while asked.is_none() || resent.is_none() {
            let f = p.recv().await;
            match f["type"].as_str() {
                Some("history") => {
                    let id = f["id"].clone();
                    p.send(&format!(
                        r##"{{"type":"history","id":{id},"room":"#lobby","more":false,"messages":[{{"room":"#lobby","from":"bob","text":"two","mid":2,"ts":6}},{{"room":"#lobby","from":"bob","text":"three","mid":3,"ts":7}}]}}"##
                    ))
                    .await;
                    asked = Some(f);
                }
                Some("send") => {
                    let (id, cid) = (f["id"].clone(), f["cid"].clone());
                    p.send(&format!(
                        r##"{{"type":"ack","id":{id},"cid":{cid},"mid":4,"room":"#lobby","ts":8,"duplicate":false}}"##
                    ))
                    .await;
                    resent = Some(f);
                }
                _ => {}
            }
        }
        let _ = p.recv_type("quit").await;
        (hello["client_secret"].clone(), asked.unwrap(), resent.unwrap())
    });
    let mut o = opts(&addr_a);
    o.servers.push(natter_client::conn::Endpoint::plain(addr_b.clone()));
    // Later steps of the backoff are long: the move to the next node waits the first only.
    o.backoff_min = Duration::from_millis(200);
    o.backoff_max = Duration::from_secs(60);
    let (client, mut ev) = Client::connect(o).await.unwrap();
    let one = next_message(&mut ev).await;
    assert!(matches!(&one, Event::Message { msg, .. } if msg.text == "one"), "{one:?}");
    let cid = client.say("#lobby", "unacknowledged");
    let (secret_a, cid_a) = node_a.await.unwrap();
    assert_eq!(cid_a, cid.as_str());

    let mut seen = Vec::new();
    let mut texts = Vec::new();
    timeout(WAIT, async {
        while texts.len() < 3 {
            let e = ev.recv().await.expect("events");
            if let Event::Message { msg, .. } = &e {
                texts.push(msg.text.to_string());
            }
            seen.push(e);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no catch-up on node b; saw {seen:#?}"));
    assert_eq!(texts, ["two", "three", "unacknowledged"], "{seen:#?}");
    let reconnecting = seen.iter().find_map(|e| match e {
        Event::Status(Status::Reconnecting { next, delay, .. }) => Some((next.clone(), *delay)),
        _ => None,
    });
    let (next, delay) = reconnecting.expect("a reconnecting status");
    assert_eq!(next, addr_b);
    assert!(delay <= Duration::from_millis(200), "the move waited more than the first step: {delay:?}");
    let moved = seen.iter().find_map(|e| match e {
        Event::Status(s @ Status::Connected { .. }) => Some(s.clone()),
        _ => None,
    });
    assert_eq!(
        moved,
        Some(Status::Connected {
            addr: addr_b.clone(),
            server: "node b".into(),
            nick: "ann".into(),
            reconnected: true,
            moved_from: Some(addr_a.clone()),
        })
    );
    assert_eq!(
        natter_client::format::status_text(moved.as_ref().unwrap()),
        format!("connected to {addr_b} as ann (moved from {addr_a})")
    );
    timeout(WAIT, client.wait_idle()).await.unwrap();
    assert_eq!(client.pending(), 0);
    client.quit(None).await;
    let (secret_b, asked, resent) = node_b.await.unwrap();
    assert!(secret_a.is_string() && secret_a == secret_b, "the same client secret on every node");
    assert_eq!(asked["after"], 1, "{asked}");
    assert_eq!(resent["cid"], cid.as_str(), "resent with its original client id");
}

/// At start, a node that refuses is skipped for the next (with a warning naming it); when
/// every node refuses, the error names each with its reason.
#[tokio::test]
async fn at_start_a_dead_node_is_skipped_and_all_dead_is_one_error_naming_each() {
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let live = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let live_addr = live.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let mut p = Peer::accept(&live).await;
        p.login("").await;
        let _ = p.recv_type("quit").await;
    });
    let mut o = opts(&dead_addr);
    o.servers.push(natter_client::conn::Endpoint::plain(live_addr.clone()));
    let (client, mut ev) = Client::connect(o).await.unwrap();
    let mut seen = Vec::new();
    timeout(WAIT, async {
        loop {
            let e = ev.recv().await.expect("events");
            let done = matches!(e, Event::Status(Status::Connected { .. }));
            seen.push(e);
            if done {
                break;
            }
        }
    })
    .await
    .unwrap();
    assert!(
        matches!(&seen[0], Event::Warning(w) if w.contains(&dead_addr) && w.ends_with(&format!("trying {live_addr} instead"))),
        "{seen:#?}"
    );
    assert!(
        matches!(seen.last(), Some(Event::Status(Status::Connected { addr, reconnected: false, moved_from: None, .. })) if *addr == live_addr),
        "{seen:#?}"
    );
    client.quit(None).await;
    server.await.unwrap();

    let other_dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_addr = other_dead.local_addr().unwrap().to_string();
    drop(other_dead);
    let mut o = opts(&dead_addr);
    o.servers.push(natter_client::conn::Endpoint::plain(other_addr.clone()));
    let e = Client::connect(o).await.unwrap_err().to_string();
    assert!(e.starts_with("could not connect to any of the 2 servers; check the addresses"), "{e}");
    assert!(e.contains(&format!("\n  {dead_addr}: ")) && e.contains(&format!("\n  {other_addr}: ")), "{e}");
    assert_eq!(e.matches("refused").count(), 2, "{e}");
}

/// With every node down, the client goes round the list: the next node at once while one of
/// the round is untried, and the backoff (growing) only between full rounds.
#[tokio::test]
async fn with_every_node_down_the_backoff_comes_between_full_rounds() {
    let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr_a = a.local_addr().unwrap().to_string();
    let b = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr_b = b.local_addr().unwrap().to_string();
    drop(b);
    let node_a = tokio::spawn(async move {
        let mut p = Peer::accept(&a).await;
        p.login("").await;
        // Node A dies for good.
    });
    let mut o = opts(&addr_a);
    o.servers.push(natter_client::conn::Endpoint::plain(addr_b.clone()));
    let (client, mut ev) = Client::connect(o).await.unwrap();
    node_a.await.unwrap();
    let mut steps = Vec::new();
    timeout(WAIT, async {
        while steps.len() < 5 {
            if let Event::Status(Status::Reconnecting { next, attempt, delay, .. }) =
                ev.recv().await.expect("events")
            {
                steps.push((next, attempt, delay.is_zero()));
            }
        }
    })
    .await
    .unwrap();
    let (a, b) = (addr_a.clone(), addr_b.clone());
    assert_eq!(
        steps,
        [(b.clone(), 1, false), (a.clone(), 1, true), (b.clone(), 2, false), (a, 2, true), (b, 3, false)]
    );
    drop(client);
}
