//! Connection caps, keepalive and address cloaks, against the in-process server over real
//! sockets. Every client here comes from 127.0.0.1, so the tests that need a counted, cloaked
//! address turn the loopback exemption off (`exempt_loopback = false`), as an operator behind
//! no proxy could.

mod harness;

use harness::{Client, TestServer, Udp, json, settings};
use natter_server::Settings;

/// A server that treats loopback peers as it treats everyone else.
fn strict() -> Settings {
    let mut s = settings();
    s.connections.exempt_loopback = false;
    s
}

/// IRC registration as `nick`; returns the welcome (001) line.
async fn irc(addr: std::net::SocketAddr, nick: &str) -> (Client, String) {
    let mut c = Client::connect(addr).await;
    c.send(format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n").as_bytes()).await;
    let welcome = c.expect(" 001 ").await;
    c.expect(" 376 ").await;
    (c, welcome)
}

/// The host of a `nick!user@host` source at the start of an IRC line.
fn source_host(line: &str) -> &str {
    let source = line.trim_start_matches(':').split(' ').next().unwrap_or("");
    source.split_once('@').map_or("", |(_, host)| host)
}

#[tokio::test]
async fn one_address_gets_its_share_and_the_next_connection_is_told_why() {
    let mut s = strict();
    s.connections.per_address = 2;
    let server = TestServer::start_with(s).await;
    let mut ann = Client::native(server.tcp, "ann").await;
    // A connection that has not logged in holds its place too.
    let _silent = Client::connect(server.tcp).await;

    let mut third = Client::connect(server.tcp).await;
    assert_eq!(
        third.rest().await,
        "*** bye: too many connections from your address (2 at most); close one and try again\r\n"
    );
    let mut on_irc_port = Client::connect(server.irc).await;
    assert_eq!(
        on_irc_port.rest().await,
        "ERROR :Closing Link: 127.0.0.1 (too many connections from your address (2 at most); close one and \
         try again)\r\n"
    );

    // Once ann has gone (her goodbye read to the end), her place is free.
    ann.line(r#"{"type":"quit"}"#).await;
    ann.rest().await;
    let mut bob = Client::native(server.tcp, "bob").await;
    bob.ping().await;
    server.shutdown("done").await;
}

#[tokio::test]
async fn loopback_peers_are_not_counted_by_default() {
    let mut s = settings();
    s.connections.per_address = 1;
    let server = TestServer::start_with(s).await;
    let mut ann = Client::native(server.tcp, "ann").await;
    let mut bob = Client::native(server.tcp, "bob").await;
    ann.ping().await;
    bob.ping().await;
    server.shutdown("done").await;
}

/// Silent connections cannot keep newcomers out: beyond the cap, each newcomer takes the
/// place of the one that has waited longest, which is told why and closed; only when as many
/// evicted connections are still open as the cap is a newcomer turned away.
#[tokio::test]
async fn silent_newcomers_make_room_for_new_ones_oldest_first() {
    let mut s = settings();
    s.connections.max_unregistered = Some(2);
    let server = TestServer::start_with(s).await;
    let mut first = Client::connect(server.tcp).await;
    let mut second = Client::connect(server.tcp).await;
    second.ping().await;

    // A third logs in at once; the first, which waited longest, goes.
    let mut third = Client::native(server.tcp, "third").await;
    third.ping().await;
    assert!(
        first.rest().await.ends_with(
            "*** bye: the server is busy: too many connections are logging in, and this one waited longest; \
             log in as soon as you connect\r\n"
        ),
        "told why"
    );
    // The second is still there, and can still log in.
    second.line(r#"{"type":"hello","nick":"second"}"#).await;
    second.expect(r#""type":"welcome""#).await;
    server.shutdown("done").await;
}

#[tokio::test]
async fn a_flood_of_silent_newcomers_leaves_a_real_client_its_turn() {
    let mut s = settings();
    s.connections.max_unregistered = Some(4);
    let server = TestServer::start_with(s).await;
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(Client::connect(server.tcp).await);
    }
    // Each of these four evicts one of the first four.
    for _ in 0..4 {
        silent.push(Client::connect(server.tcp).await);
    }
    for mut early in silent.drain(..4) {
        assert!(early.rest().await.contains("waited longest"), "the oldest four were told to go");
    }
    // Their descriptors are free (the refusal while they were still closing is `peers.rs`'s
    // unit tests'): a real client gets in, in the place of the oldest of the four later ones;
    // the other three wait on.
    let mut ann = Client::native(server.tcp, "ann").await;
    ann.ping().await;
    let mut later = silent.into_iter();
    assert!(later.next().unwrap().rest().await.contains("waited longest"));
    for mut waiting in later {
        waiting.line(r#"{"type":"ping","id":1}"#).await;
        waiting.expect(r#""type":"pong""#).await;
    }
    server.shutdown("done").await;
}

#[tokio::test]
async fn others_see_a_cloak_and_operators_see_the_address() {
    let mut s = strict();
    s.cloak.secret = Some("test secret".into());
    s.operators = vec![("boss".into(), "pw".into())];
    let server = TestServer::start_with(s).await;
    let (mut ivy, welcome) = irc(server.irc, "ivy").await;
    assert!(welcome.contains("ivy!ivy@") && welcome.trim_end().ends_with(".cloak"), "{welcome}");
    let mut bob = Client::native(server.tcp, "bob").await;

    let join = ivy.expect(":bob!").await;
    let cloak = source_host(&join).to_string();
    assert!(join.starts_with(":bob!native@") && cloak.ends_with(".cloak"), "{join}");
    assert_eq!(cloak.len(), 16 + ".cloak".len(), "{cloak}");
    assert!(welcome.contains(&cloak), "one address, one cloak: {welcome} / {cloak}");

    // A user's WHOIS shows the cloak, and not where it comes from.
    ivy.line("WHOIS bob").await;
    let (whois, _) = ivy.until(" 318 ").await;
    let whois = whois.join("\n");
    assert!(whois.contains(&format!(" 311 ivy bob native {cloak} * ")), "{whois}");
    assert!(!whois.contains("127.0.0.1") && !whois.contains(" 378 "), "{whois}");
    bob.line(r#"{"type":"whois","nick":"ivy","id":1}"#).await;
    let info = json(&bob.expect(r#""type":"user_info""#).await);
    assert_eq!(info["user"]["ident"], format!("ivy@{cloak}"), "{info}");
    assert!(info["user"].get("real_host").is_none(), "{info}");

    // Oneself: the address behind one's own cloak.
    bob.line(r#"{"type":"whois","nick":"bob","id":2}"#).await;
    let me = json(&bob.expect(r#""type":"user_info""#).await);
    assert_eq!(me["user"]["real_host"], "127.0.0.1", "{me}");

    // A server operator sees the address (RPL_WHOISHOST).
    ivy.line("OPER boss pw").await;
    ivy.expect(" 381 ").await;
    ivy.line("WHOIS bob").await;
    let (whois, _) = ivy.until(" 318 ").await;
    assert!(
        whois.iter().any(|l| l.contains(" 378 ivy bob :is connecting from *@127.0.0.1 127.0.0.1")),
        "{whois:#?}"
    );

    // Text mode: the cloak, and the address only for operators and oneself.
    let mut tom = Client::connect(server.tcp).await;
    tom.line("tom").await;
    tom.expect("Hello tom").await;
    tom.line("/whois bob").await;
    let line = tom.expect("*** bob is").await;
    assert_eq!(line, format!("*** bob is native@{cloak}"));
    tom.line("/whois tom").await;
    tom.expect("*** tom is").await;
    assert_eq!(tom.next().await.as_deref(), Some("*** connecting from 127.0.0.1"));
    server.shutdown("done").await;
}

#[tokio::test]
async fn udp_members_are_cloaked_too() {
    let mut s = strict();
    s.cloak.secret = Some("test secret".into());
    let server = TestServer::start_with(s).await;
    let (mut ivy, welcome) = irc(server.irc, "ivy").await;
    let udp = Udp::new(server.udp).await;
    udp.send(b"/nick uma\n").await;
    udp.expect("Hello uma").await;
    let join = ivy.expect(":uma!").await;
    assert!(join.starts_with(":uma!udp@") && !join.contains("127.0.0.1"), "{join}");
    assert!(welcome.ends_with(source_host(&join)), "one address, one cloak: {welcome} / {join}");
    server.shutdown("done").await;
}

#[tokio::test]
async fn with_cloaking_off_everyone_sees_the_address() {
    let mut s = strict();
    s.cloak.off = true;
    let server = TestServer::start_with(s).await;
    let (mut ivy, welcome) = irc(server.irc, "ivy").await;
    assert!(welcome.trim_end().ends_with("ivy!ivy@127.0.0.1"), "{welcome}");
    let _bob = Client::native(server.tcp, "bob").await;
    let join = ivy.expect(":bob!").await;
    assert!(join.starts_with(":bob!native@127.0.0.1 JOIN"), "{join}");
    server.shutdown("done").await;
}

/// The kernel's view of the server's end of a quiet connection: `(timer, ticks)` from
/// `/proc/net/tcp`, where timer 2 is the keepalive timer and ticks (1/100 s) is when it fires.
/// Timer 1 (retransmission) is armed until the client's (possibly delayed) ACK of the last
/// bytes arrives: the table is read again until it has.
#[cfg(target_os = "linux")]
fn server_side_timer(server: std::net::SocketAddr, client: std::net::SocketAddr) -> (u32, u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (timer, ticks) = timer_row(server, client);
        if timer != 1 || std::time::Instant::now() > deadline {
            return (timer, ticks);
        }
        // Polling the kernel's table for the ACK, which nothing signals.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[cfg(target_os = "linux")]
fn timer_row(server: std::net::SocketAddr, client: std::net::SocketAddr) -> (u32, u64) {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let port = |addr: &str| u16::from_str_radix(addr.rsplit(':').next().unwrap_or(""), 16).ok();
    for row in table.lines().skip(1) {
        let cols: Vec<&str> = row.split_whitespace().collect();
        if cols.len() > 5 && port(cols[1]) == Some(server.port()) && port(cols[2]) == Some(client.port()) {
            let (timer, when) = cols[5].split_once(':').expect("tr:tm->when");
            return (u32::from_str_radix(timer, 16).unwrap(), u64::from_str_radix(when, 16).unwrap());
        }
    }
    panic!("no server-side socket for {client} in /proc/net/tcp");
}

/// A peer that vanishes without a word is found by TCP keepalive: the kernel probes a
/// connection silent for 60 s (and, with no answer, fails it; the session then quits with
/// "connection lost"). What a test can see is the probe timer armed on the server's socket.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn silent_connections_are_probed_after_a_minute() {
    let server = TestServer::start().await;
    let mut bob = Client::native(server.tcp, "bob").await;
    bob.ping().await;
    let (timer, ticks) = server_side_timer(server.tcp, bob.local_addr());
    assert_eq!(timer, 2, "the keepalive timer is armed");
    assert!(ticks > 50 * 100 && ticks <= 60 * 100, "first probe within 60 s: {ticks} ticks");
    server.shutdown("done").await;

    let mut s = settings();
    s.connections.keepalive = None;
    let server = TestServer::start_with(s).await;
    let mut bob = Client::native(server.tcp, "bob").await;
    bob.ping().await;
    assert_eq!(server_side_timer(server.tcp, bob.local_addr()).0, 0, "tcp_keepalive = 0 turns it off");
    server.shutdown("done").await;
}

/// An idle HTTP connection (a kept-alive browser connection) is a newcomer like any other: it
/// makes room for a client that wants to log in.
#[tokio::test]
async fn idle_http_connections_make_room_for_newcomers_too() {
    let mut s = settings();
    s.connections.max_unregistered = Some(2);
    let server = TestServer::start_with(s).await;
    let mut first = Client::connect(server.tcp).await;
    first.send(b"GET /healthz HTTP/1.1\r\nHost: natter\r\n\r\n").await;
    first.expect("ok").await;
    let mut second = Client::connect(server.tcp).await;
    second.send(b"GET /healthz HTTP/1.1\r\nHost: natter\r\n\r\n").await;
    second.expect("ok").await;
    let mut third = Client::native(server.tcp, "third").await;
    third.ping().await;
    // The first, kept alive and silent longest, is closed; the second still answers.
    first.rest().await;
    second.send(b"GET /healthz HTTP/1.1\r\nHost: natter\r\nConnection: close\r\n\r\n").await;
    assert!(second.rest().await.contains("200 OK"));
    server.shutdown("done").await;
}
