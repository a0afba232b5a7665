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
