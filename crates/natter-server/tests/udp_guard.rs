//! The UDP door cannot be used as an amplifier, and members cannot be forged (issue 11, items
//! 6 and 7): real UDP sockets on loopback against the in-process server, with the address
//! check forced on where it matters (`udp_verify = auto` is off on loopback).
//!
//! A forged datagram is one whose source address is someone else's. On loopback a test cannot
//! write another socket's address, so it plays the forger with the victim's own socket: to the
//! server the datagram is the same (that address, without the proof only the real peer has),
//! and what matters is what the server sends back to that address and does in its name.

mod harness;

use harness::{Client, TestServer, Watchdog, json, settings};
use natter_server::{Settings, UdpLimits, UdpVerify};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// Longest wait for a datagram the server owes.
const WAIT: Duration = Duration::from_secs(10);

/// Longest a test may run (the TCP clients wait without a timeout).
const LIMIT: Duration = Duration::from_secs(60);

/// Settings with the address check on.
fn guarded() -> Settings {
    let mut s = settings();
    s.udp_limits.verify = UdpVerify::On;
    s
}

/// A UDP socket talking to the server.
struct Peer {
    socket: UdpSocket,
    server: SocketAddr,
}

impl Peer {
    async fn bind(server: SocketAddr) -> Peer {
        Peer::bind_on("127.0.0.1", server).await
    }

    /// A socket on another loopback address (127.0.0.2...): another sender to the server.
    async fn bind_on(ip: &str, server: SocketAddr) -> Peer {
        Peer { socket: UdpSocket::bind((ip, 0)).await.expect("bind udp"), server }
    }

    fn port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }

    async fn send(&self, bytes: &[u8]) {
        self.socket.send_to(bytes, self.server).await.expect("send datagram");
    }

    async fn send_json(&self, frame: Value) {
        self.send(frame.to_string().as_bytes()).await;
    }

    /// The next datagram; fails the test when none comes in time.
    async fn recv(&self) -> String {
        let mut buf = vec![0u8; 65536];
        let (n, _) = tokio::time::timeout(WAIT, self.socket.recv_from(&mut buf))
            .await
            .expect("a datagram from the server")
            .expect("receive datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Datagrams until one contains `needle`: (those before, that one).
    async fn until(&self, needle: &str) -> (Vec<String>, String) {
        let mut seen = Vec::new();
        loop {
            let d = self.recv().await;
            if d.contains(needle) {
                return (seen, d);
            }
            seen.push(d);
            assert!(seen.len() < 2000, "no datagram containing {needle:?}; saw {seen:#?}");
        }
    }

    async fn expect(&self, needle: &str) -> String {
        self.until(needle).await.1
    }

    /// Sends `bytes` until an answer containing `needle` comes (for datagrams the kernel may
    /// drop from a full queue); fails the test after 20 tries.
    async fn ask(&self, bytes: &[u8], needle: &str) -> String {
        let mut buf = vec![0u8; 65536];
        for _ in 0..20 {
            self.send(bytes).await;
            let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
            while let Ok(Ok((n, _))) =
                tokio::time::timeout_at(deadline, self.socket.recv_from(&mut buf)).await
            {
                let d = String::from_utf8_lossy(&buf[..n]).into_owned();
                if d.contains(needle) {
                    return d;
                }
            }
        }
        panic!("no answer containing {needle:?}");
    }

    /// Every datagram already received, without waiting. Call after a barrier.
    fn drain(&self) -> Vec<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        let mut got = Vec::new();
        while let Ok((n, _)) = self.socket.try_recv_from(&mut buf) {
            got.push(buf[..n].to_vec());
        }
        got
    }

    /// Joins as a person with `nc -u` would: a line, the token the answer shows, typed back.
    async fn join_by_typing(&self) {
        self.send(b"hello, anyone there?\n").await;
        let challenge = self.expect("/ok ").await;
        self.send(format!("/ok {}\n", token_in(&challenge)).as_bytes()).await;
        self.expect(&format!("Hello udp-{}", self.port())).await;
    }
}

/// The token after `/ok ` in a challenge.
fn token_in(challenge: &str) -> String {
    let after = challenge.split("/ok ").nth(1).unwrap_or_else(|| panic!("no token in {challenge:?}"));
    after.chars().take_while(char::is_ascii_alphanumeric).collect()
}

/// The nicks `who #lobby` lists.
async fn lobby(bob: &mut Client) -> Vec<String> {
    bob.line(r##"{"type":"who","room":"#lobby","id":"who"}"##).await;
    let members = json(&bob.expect(r#""id":"who""#).await);
    members["nicks"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect()
}

/// Posts `text` to the lobby as `bob` and waits for its ack.
async fn post(bob: &mut Client, text: &str, id: usize) {
    bob.line(&serde_json::json!({"type": "send", "room": "#lobby", "text": text, "id": id}).to_string())
        .await;
    bob.expect(&format!(r#""id":{id}"#)).await;
}

#[tokio::test]
async fn a_forged_first_datagram_draws_at_most_three_times_its_bytes_and_no_room_traffic() {
    let _watchdog = Watchdog::arm(
        "a_forged_first_datagram_draws_at_most_three_times_its_bytes_and_no_room_traffic",
        LIMIT,
    );
    let server = TestServer::start_with(guarded()).await;
    let mut bob = Client::native(server.tcp, "bob").await;
    // History a new member would be shown on joining: 50 KB.
    let big = "x".repeat(10_000);
    for id in 0..5 {
        post(&mut bob, &big, id).await;
    }
    // Ten bytes in someone else's name, from a socket that never sends again.
    let victim = Peer::bind(server.udp).await;
    victim.send(b"hi natter\n").await;
    // A person behind it completes the check: the server took the victim's datagram first.
    let person = Peer::bind(server.udp).await;
    person.join_by_typing().await;
    post(&mut bob, "room traffic", 5).await;
    person.expect("room traffic").await;

    let got = victim.drain();
    let bytes: usize = got.iter().map(Vec::len).sum();
    assert!(bytes <= 30, "{bytes} bytes sent to an address that sent 10: {got:?}");
    assert_eq!(got.len(), 1, "one answer, the token: {got:?}");
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.starts_with("*** To join: /ok ") && !text.contains("xxxx"), "{text}");
    let nicks = lobby(&mut bob).await;
    assert_eq!(nicks, vec!["bob".to_string(), format!("udp-{}", person.port())], "the victim is no member");
}

#[tokio::test]
async fn a_person_types_the_token_shown_and_joins() {
    let _watchdog = Watchdog::arm("a_person_types_the_token_shown_and_joins", LIMIT);
    let server = TestServer::start_with(guarded()).await;
    let mut bob = Client::native(server.tcp, "bob").await;
    let cat = Peer::bind(server.udp).await;
    // One byte draws nothing (3 bytes cannot hold a token); ten draw a short sentence.
    cat.send(b"\n").await;
    cat.send(b"/nick cat\n").await;
    let challenge = cat.recv().await;
    assert!(challenge.starts_with("*** To join: /ok ") && challenge.len() <= 30, "{challenge:?}");
    let token = token_in(&challenge);
    assert_eq!(token.len(), 6, "{challenge:?}");
    // A wrong token, or a line that is not `/ok`, is answered with the token again.
    cat.send(b"/ok zzzzzz\n").await;
    assert_eq!(token_in(&cat.recv().await), token);
    cat.send(b"/okay then, what now?\n").await;
    assert_eq!(token_in(&cat.recv().await), token);
    // Typed in capitals, it is still the token.
    cat.send(format!("/OK {}\r\n", token.to_uppercase()).as_bytes()).await;
    cat.expect(&format!("Hello udp-{}", cat.port())).await;
    bob.expect(&format!(r#""nick":"udp-{}""#, cat.port())).await;
    cat.send(b"/nick cat").await;
    bob.expect(r#""new":"cat""#).await;
    cat.send(b"hello from a verified address").await;
    let m = json(&bob.expect(r#""type":"message""#).await);
    assert_eq!(
        (m["from"].as_str(), m["text"].as_str()),
        (Some("cat"), Some("hello from a verified address"))
    );
    // Sending the token again says so; it is no message.
    cat.send(format!("/ok {token}").as_bytes()).await;
    cat.expect("already joined").await;
    let before = bob.ping().await;
    assert!(before.iter().all(|l| !l.contains("/ok")), "{before:#?}");
}

#[tokio::test]
async fn a_native_client_sends_hello_again_with_the_token_it_was_given() {
    let _watchdog = Watchdog::arm("a_native_client_sends_hello_again_with_the_token_it_was_given", LIMIT);
    let server = TestServer::start_with(guarded()).await;
    let mut bob = Client::native(server.tcp, "bob").await;
    let jay = Peer::bind(server.udp).await;
    jay.send_json(serde_json::json!({"type": "hello", "nick": "jay", "id": 1})).await;
    let verify = json(&jay.recv().await);
    assert_eq!(verify["type"], "verify", "{verify}");
    let token = verify["token"].as_str().unwrap().to_string();
    // Another token (or none) proves nothing: the answer is the token again.
    jay.send_json(serde_json::json!({"type": "hello", "nick": "jay", "token": "zzzzzz"})).await;
    assert_eq!(json(&jay.recv().await)["token"].as_str(), Some(token.as_str()));
    jay.send_json(serde_json::json!({"type": "hello", "nick": "jay", "id": 2, "token": token})).await;
    let welcome = json(&jay.expect(r#""type":"welcome""#).await);
    assert_eq!(welcome["id"], 2, "{welcome}");
    let session = welcome["token"].as_str().expect("a session token in the welcome");
    assert!(session.len() >= 20 && session != token, "{welcome}");
    jay.expect(r#""type":"joined""#).await;
    bob.expect(r#""nick":"jay""#).await;
}

#[tokio::test]
async fn datagrams_without_the_session_token_cannot_speak_rename_or_quit_for_a_native_member() {
    let _watchdog = Watchdog::arm(
        "datagrams_without_the_session_token_cannot_speak_rename_or_quit_for_a_native_member",
        LIMIT,
    );
    // The address check is off (loopback): the session token alone protects the member.
    let server = TestServer::start().await;
    let mut bob = Client::native(server.tcp, "bob").await;
    let jay = Peer::bind(server.udp).await;
    jay.send_json(serde_json::json!({"type": "hello", "nick": "jay"})).await;
    let welcome = json(&jay.expect(r#""type":"welcome""#).await);
    let token = welcome["token"].as_str().expect("a session token").to_string();
    bob.expect(r#""nick":"jay""#).await;

    // In jay's name: without the token, with another, with jay's token cut short, and more
    // of them than the strikes that would end a session.
    let wrong = "0".repeat(token.len());
    for forged in [
        serde_json::json!({"type": "send", "room": "#lobby", "text": "forged"}),
        serde_json::json!({"type": "send", "room": "#lobby", "text": "forged", "token": wrong}),
        serde_json::json!({"type": "send", "room": "#lobby", "text": "forged", "token": &token[1..]}),
        serde_json::json!({"type": "nick", "nick": "mallory", "token": wrong}),
        serde_json::json!({"type": "part", "room": "#lobby"}),
        serde_json::json!({"type": "quit", "reason": "forged"}),
    ] {
        jay.send_json(forged).await;
    }
    // (A ping with the token now and then lets jay's queue drain: UDP drops what overflows.)
    let mut everything_jay_got = Vec::new();
    for round in 0..4 {
        if round > 0 {
            for _ in 0..10 {
                jay.send(br#"{"type":"bogus"}"#).await;
            }
        }
        jay.send_json(serde_json::json!({"type": "ping", "id": round, "token": token})).await;
        let (before, pong) = jay.until(&format!(r#""id":{round}"#)).await;
        everything_jay_got.extend(before);
        everything_jay_got.push(pong);
    }
    jay.send(&vec![b'{'; 20_000]).await;
    // Two frames in one datagram: only the one with the token counts.
    jay.send(
        format!(
            "{}\n{}",
            serde_json::json!({"type": "send", "room": "#lobby", "text": "forged"}),
            serde_json::json!({"type": "send", "room": "#lobby", "text": "real", "id": 7, "token": token})
        )
        .as_bytes(),
    )
    .await;
    let (before, real) = bob.until(r#""text":"real""#).await;
    assert_eq!(json(&real)["from"], "jay", "{real}");
    assert!(
        before
            .iter()
            .all(|l| !l.contains("forged") && !l.contains("mallory") && !l.contains(r#""type":"part""#)),
        "{before:#?}"
    );
    // jay is told once (not once per forged frame), and is still in: the ack comes.
    let (before, _ack) = jay.until(r#""type":"ack""#).await;
    let refusals: Vec<&String> =
        everything_jay_got.iter().chain(&before).filter(|d| d.contains(r#""code":"bad_token""#)).collect();
    assert_eq!(refusals.len(), 1, "{before:#?}");
    assert!(refusals[0].contains("\\\"token\\\""), "says what is missing: {}", refusals[0]);
    assert!(everything_jay_got.iter().chain(&before).all(|d| !d.contains(r#""type":"bye""#)), "{before:#?}");
    assert_eq!(lobby(&mut bob).await, vec!["bob", "jay"]);
    // The real quit, with the token, ends the session.
    jay.send_json(serde_json::json!({"type": "quit", "token": token})).await;
    jay.expect(r#""type":"bye""#).await;
    bob.expect(r#""type":"quit""#).await;
}

#[tokio::test]
async fn five_thousand_datagrams_from_many_ports_make_no_more_members_than_the_address_cap() {
    let _watchdog = Watchdog::arm(
        "five_thousand_datagrams_from_many_ports_make_no_more_members_than_the_address_cap",
        LIMIT,
    );
    let mut s = settings();
    s.udp_limits = UdpLimits { members_per_address: 4, address_rate: 0, ..UdpLimits::default() };
    let server = TestServer::start_with(s).await;
    let mut bob = Client::native(server.tcp, "bob").await;
    let mut peers = Vec::new();
    for _ in 0..250 {
        peers.push(Peer::bind(server.udp).await);
    }
    // 20 rounds of one datagram from each of 250 ports. Each port that is not a member waits
    // for its answer, so that no datagram is lost in the kernel's queue.
    let line = b"hello, is anyone in the lobby tonight?\n";
    let mut joined = vec![false; peers.len()];
    let mut refusals = vec![0usize; peers.len()];
    for _ in 0..20 {
        for (i, p) in peers.iter().enumerate() {
            p.send(line).await;
            if joined[i] {
                continue;
            }
            let answer = p.recv().await;
            if answer.contains(&format!("Hello udp-{}", p.port())) {
                joined[i] = true;
            } else {
                assert_eq!(
                    answer,
                    "*** address full: 4 UDP members come from your address, the most allowed; try again later\r\n"
                );
                assert!(answer.len() <= 3 * line.len());
                refusals[i] += 1;
            }
        }
    }
    assert_eq!(joined.iter().filter(|&&j| j).count(), 4, "four ports joined");
    assert!(
        refusals.iter().zip(&joined).all(|(&r, &j)| j || r == 20),
        "every other port was refused every time"
    );
    // The refused ports got nothing else: no greeting, no room traffic (the members' 76
    // messages), however long they wait. Another address joining shows the server is done.
    let last = Peer::bind_on("127.0.0.2", server.udp).await;
    last.send(b"/nick last").await;
    last.expect("Hello last").await;
    post(&mut bob, "room traffic", 1).await;
    last.expect("room traffic").await;
    for (p, _) in peers.iter().zip(&joined).filter(|(_, j)| !**j) {
        assert_eq!(p.drain(), Vec::<Vec<u8>>::new(), "a refused port got more");
    }
    let udp_members = lobby(&mut bob).await.into_iter().filter(|n| n.starts_with("udp-")).count();
    assert_eq!(udp_members, 4);
}

#[tokio::test]
async fn five_thousand_datagrams_from_many_ports_draw_replies_at_the_address_rate() {
    let _watchdog =
        Watchdog::arm("five_thousand_datagrams_from_many_ports_draw_replies_at_the_address_rate", LIMIT);
    let server = TestServer::start_with(guarded()).await;
    let mut bob = Client::native(server.tcp, "bob").await;
    let mut peers = Vec::new();
    for _ in 0..250 {
        peers.push(Peer::bind(server.udp).await);
    }
    let line = b"hello, is anyone in the lobby tonight?\n";
    let start = Instant::now();
    for _ in 0..20 {
        for p in &peers {
            p.send(line).await;
        }
    }
    // Another address behind them (asking again, in case the kernel dropped its datagram from
    // a full queue): the server has taken every datagram the kernel kept by then.
    let barrier = Peer::bind_on("127.0.0.2", server.udp).await;
    barrier.ask(line, "/ok ").await;
    let elapsed = start.elapsed().as_secs_f64();

    let replies: Vec<Vec<u8>> = peers.iter().flat_map(Peer::drain).collect();
    // 50 datagrams a second per address, in bursts of 100, whatever the ports.
    let allowed = 100.0 + 50.0 * elapsed.ceil();
    assert!(
        replies.len() as f64 <= allowed,
        "{} replies in {elapsed:.2}s to one address; at most {allowed}",
        replies.len()
    );
    assert!(!replies.is_empty());
    assert!(replies.iter().all(|r| r.len() <= 3 * line.len() && r.starts_with(b"*** To join")));
    assert_eq!(lobby(&mut bob).await, vec!["bob"], "no member joined without the token");
}

#[tokio::test]
async fn the_server_takes_no_more_udp_members_than_its_cap() {
    let _watchdog = Watchdog::arm("the_server_takes_no_more_udp_members_than_its_cap", LIMIT);
    let mut s = settings();
    s.udp_limits.max_members = 3;
    let server = TestServer::start_with(s).await;
    let mut bob = Client::native(server.tcp, "bob").await;
    let mut members = Vec::new();
    for i in 0..3 {
        let p = Peer::bind(server.udp).await;
        p.send(format!("/nick m{i}").as_bytes()).await;
        p.expect(&format!("Hello m{i}")).await;
        members.push(p);
    }
    let late = Peer::bind(server.udp).await;
    let knock = b"hello, please let me in, I am late";
    late.send(knock).await;
    let refusal = late.recv().await;
    assert_eq!(refusal, "*** server full: natter has 3 UDP members, the most it takes; try again later\r\n");
    // A native newcomer is told in its own language.
    let native = Peer::bind(server.udp).await;
    native.send_json(serde_json::json!({"type": "hello", "nick": "jay"})).await;
    let error = json(&native.recv().await);
    assert_eq!((error["type"].as_str(), error["code"].as_str()), (Some("error"), Some("other")), "{error}");
    assert!(error["message"].as_str().unwrap().starts_with("server full"), "{error}");

    // One leaves: there is room again (once the server has counted the departure).
    members.pop().unwrap().send(b"quit").await;
    bob.expect(r#""nick":"m2""#).await;
    let mut tries = 0;
    loop {
        late.send(knock).await;
        let answer = late.recv().await;
        if answer.contains(&format!("Hello udp-{}", late.port())) {
            break;
        }
        assert!(answer.starts_with("*** server full"), "{answer}");
        tries += 1;
        assert!(tries < 100, "no room after a member left");
    }
    let late_nick = format!("udp-{}", late.port());
    assert_eq!(lobby(&mut bob).await, vec!["bob", "m0", "m1", late_nick.as_str()]);
}

#[tokio::test]
async fn the_server_sends_no_faster_than_its_udp_send_rate() {
    let _watchdog = Watchdog::arm("the_server_sends_no_faster_than_its_udp_send_rate", LIMIT);
    let mut s = settings();
    s.udp_limits.send_rate = 64 * 1024;
    let server = TestServer::start_with(s).await;
    let mut bob = Client::native(server.tcp, "bob").await;
    let cat = Peer::bind(server.udp).await;
    cat.send(b"/nick cat").await;
    cat.expect("Hello cat").await;
    // 120 KB to the lobby: at 64 KiB/s, after a burst of 16 KiB, that takes 1.6 s or more.
    let start = Instant::now();
    let text = "y".repeat(10_000);
    for id in 0..12 {
        post(&mut bob, &format!("{id:02}{text}"), id).await;
    }
    cat.expect("11yyyy").await;
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(1200), "120 KB sent in {elapsed:?}");
}
