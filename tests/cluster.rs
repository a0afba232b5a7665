//! Several `natter serve` processes as one server: a throwaway PostgreSQL as their store and a
//! throwaway nats-server as their bus, every node on loopback. Clients on different nodes
//! share rooms in one order; a node killed with SIGKILL, NATS stopped and restarted, and
//! PostgreSQL restarted cost no acknowledged message; nicknames stay unique and bans hold
//! across nodes; what a stranger puts on the bus is dropped.

mod common;
#[path = "../crates/natter-server/tests/nats_util/mod.rs"]
mod nats_util;

use common::{Client, Server, irc_with_caps, json, metric, native, wait_metric};
use nats_util::{NatsOptions, NatsServer, nats_available};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// A store and a bus for the nodes of one test; `None` (the test skips) when PostgreSQL or
/// nats-server is not installed, unless `NATTER_REQUIRE_TOOLS` makes that a failure.
struct Backing {
    pg: std::sync::Arc<natter_store::testing::Postgres>,
    db: String,
    nats: NatsServer,
}

fn backing() -> Option<Backing> {
    let pg = natter_store::testing::shared()?;
    if !nats_available() {
        return None;
    }
    let db = pg.database();
    Some(Backing { pg, db, nats: NatsServer::start(&NatsOptions::default()) })
}

/// How long a killed node's users may take to quit on the other nodes: its last heartbeat
/// plus the silence that makes a node gone (5 + 20 s), with room for a loaded machine.
const GONE_WITHIN: std::time::Duration = std::time::Duration::from_secs(40);

/// How long one read of whatever a client was sent may wait.
const POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// How long the nodes may take to find the bus again after NATS restarts (the client's
/// reconnection backoff is at most 4 s).
const BUS_BACK_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Node `name` of the cluster on `db` and the bus at `nats`.
fn node(db: &str, nats: &str, name: &str) -> Server {
    Server::start_with_db(Path::new(db), &["--cluster", nats, "--node-name", name, "--msg-rate", "0"])
}

/// A native session `nick` that gives a client secret, as `natter connect` does: its client ids
/// are its own across reconnections, to any node.
fn with_secret(addr: std::net::SocketAddr, nick: &str) -> Client {
    let mut c = Client::connect(addr);
    c.line(&format!(
        r#"{{"type":"hello","nick":"{nick}","client_secret":"{nick}'s secret, 0123456789abcdef"}}"#
    ));
    c.expect(r#""type":"welcome""#);
    c
}

/// Sends `text` to `room` with client id `cid` and waits for its ack; returns the stored id.
fn send(c: &mut Client, room: &str, text: &str, cid: &str) -> u64 {
    c.line(&format!(r#"{{"type":"send","room":"{room}","text":"{text}","cid":"{cid}"}}"#));
    let ack = json(&c.expect(&format!(r#""cid":"{cid}""#)));
    assert_eq!(ack["type"], "ack", "{ack}");
    ack["mid"].as_u64().expect("a stored id")
}

/// Reads `c`'s room messages in `room` until it has `count`; returns them as id -> text.
fn receive(c: &mut Client, room: &str, count: usize) -> Vec<(u64, String)> {
    let mut got = Vec::new();
    while got.len() < count {
        let line = c.expect(r#""type":"message""#);
        let m = json(&line);
        if m["room"] == room {
            got.push((m["mid"].as_u64().unwrap(), m["text"].as_str().unwrap().to_string()));
        }
    }
    got
}

#[test]
fn messages_from_users_on_three_nodes_arrive_everywhere_once_in_one_order() {
    let Some(b) = backing() else { return };
    let nodes: Vec<Server> = (0..3).map(|i| node(&b.db, &b.nats.url(), &format!("n{i}"))).collect();
    let mut users: Vec<Client> =
        nodes.iter().enumerate().map(|(i, n)| native(n.tcp, &format!("u{i}"))).collect();
    // (IRC sessions start in the lobby too.)
    let mut watcher = irc_with_caps(nodes[1].irc.unwrap(), "watcher", "");
    watcher.irc_ping();
    // Each user sends 30 messages at once, all three nodes at the same time.
    for k in 0..30 {
        for (i, u) in users.iter_mut().enumerate() {
            u.line(&format!(r##"{{"type":"send","room":"#lobby","text":"u{i}-{k}","cid":"c{k}"}}"##));
        }
    }
    // Each reads its 30 acks and the others' 60 messages, in whatever order they come.
    let mut acked = BTreeMap::new();
    let mut received = Vec::new();
    for (i, u) in users.iter_mut().enumerate() {
        let (mut acks, mut got) = (0, Vec::new());
        while acks < 30 || got.len() < 60 {
            let frame = json(&u.expect(r##""room":"#lobby""##));
            match frame["type"].as_str() {
                Some("ack") => {
                    acks += 1;
                    let text = format!("u{i}-{}", frame["cid"].as_str().unwrap().trim_start_matches('c'));
                    assert!(
                        acked.insert(frame["mid"].as_u64().unwrap(), text).is_none(),
                        "one id per message"
                    );
                }
                Some("message") => {
                    got.push((frame["mid"].as_u64().unwrap(), frame["text"].as_str().unwrap().to_string()))
                }
                _ => {}
            }
        }
        received.push(got);
    }
    assert_eq!(acked.keys().copied().collect::<Vec<_>>(), (1..=90).collect::<Vec<_>>(), "gap-free ids");
    for (i, got) in received.into_iter().enumerate() {
        let expected: Vec<(u64, String)> = acked
            .iter()
            .filter(|(_, t)| !t.starts_with(&format!("u{i}-")))
            .map(|(m, t)| (*m, t.clone()))
            .collect();
        assert_eq!(got, expected, "u{i} got every other message once, in the store's order");
    }
    // An IRC client on node 1 saw all 90, in the same order.
    let mut irc_texts = Vec::new();
    while irc_texts.len() < 90 {
        let line = watcher.expect("PRIVMSG #lobby :");
        irc_texts.push(line.rsplit_once(" :").unwrap().1.to_string());
    }
    assert_eq!(irc_texts, acked.values().cloned().collect::<Vec<_>>());
}

#[test]
fn a_node_killed_mid_conversation_loses_no_acknowledged_message() {
    let Some(b) = backing() else { return };
    let nodes: Vec<Server> = (0..3).map(|i| node(&b.db, &b.nats.url(), &format!("n{i}"))).collect();
    let mut ann = native(nodes[0].tcp, "ann");
    let mut bea = native(nodes[1].tcp, "bea");
    let mut dan = with_secret(nodes[2].tcp, "dan");
    ann.expect(r#""nick":"dan""#);
    bea.expect(r#""nick":"dan""#);
    for k in 0..10 {
        send(&mut dan, "#lobby", &format!("before {k}"), &format!("d{k}"));
    }
    assert_eq!(receive(&mut ann, "#lobby", 10).len(), 10);
    // The last one is stored and acknowledged, but the ack is lost with the connection (dan's
    // client never reads it): the client will resend it.
    dan.line(r##"{"type":"send","room":"#lobby","text":"last words","cid":"d10"}"##);
    assert_eq!(receive(&mut ann, "#lobby", 1), [(11, "last words".to_string())]);
    // SIGKILL: no goodbye. ann sees dan quit once node 2 is found silent: its last
    // heartbeat was at most 5 s before, and a node silent for 20 s is gone.
    nodes[2].signal("-KILL");
    let quit = json(&ann.expect_within(r#""type":"quit""#, GONE_WITHIN));
    assert_eq!(quit["nick"], "dan", "{quit}");
    // Every node finds it on its own heartbeat: node 1 too, before dan can have his nick there.
    let quit = json(&bea.expect_within(r#""type":"quit""#, GONE_WITHIN));
    assert_eq!(quit["nick"], "dan", "{quit}");
    // dan's client moves to node 1: logs in again (same client secret), resends the message
    // whose ack it lost (same cid: recognised, not stored twice), and asks for what it missed.
    let mut dan = with_secret(nodes[1].tcp, "dan");
    ann.expect(r#""type":"join""#);
    send(&mut ann, "#lobby", "while dan moved", "a1");
    dan.line(r##"{"type":"send","room":"#lobby","text":"last words","cid":"d10"}"##);
    let ack = json(&dan.expect(r#""cid":"d10""#));
    assert_eq!((ack["mid"].as_u64(), ack["duplicate"].as_bool()), (Some(11), Some(true)), "{ack}");
    dan.line(r##"{"type":"history","room":"#lobby","after":0,"limit":100}"##);
    let page = json(&dan.expect(r#""type":"history""#));
    let texts: Vec<&str> =
        page["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    let mut expected: Vec<String> = (0..10).map(|k| format!("before {k}")).collect();
    expected.extend(["last words".into(), "while dan moved".into()]);
    assert_eq!(texts, expected, "every acknowledged message, once, in order");
}

#[test]
fn nats_stopped_and_restarted_costs_latency_not_messages() {
    let Some(mut b) = backing() else { return };
    let a = node(&b.db, &b.nats.url(), "a");
    let c = node(&b.db, &b.nats.url(), "c");
    let mut ann = native(a.tcp, "ann");
    let mut cat = native(c.tcp, "cat");
    ann.expect(r#""nick":"cat""#);
    send(&mut cat, "#lobby", "before the outage", "c0");
    assert_eq!(receive(&mut ann, "#lobby", 1), [(1, "before the outage".to_string())]);
    // What the operator sees of the bus: connected, events going out and coming in.
    for node in [&a, &c] {
        assert_eq!(metric(node.tcp, "natter_bus_connected"), 1.0);
        assert!(metric(node.tcp, "natter_bus_published_total") >= 1.0);
        assert!(metric(node.tcp, "natter_bus_received_total") >= 1.0);
        assert_eq!(metric(node.tcp, "natter_bus_dropped_total"), 0.0);
    }
    b.nats.kill();
    wait_metric(c.tcp, "natter_bus_connected", 0.0, BUS_BACK_WITHIN);
    // Stored and acknowledged while the bus is down.
    for k in 1..=5 {
        assert_eq!(send(&mut cat, "#lobby", &format!("during {k}"), &format!("c{k}")), k + 1);
    }
    b.nats.restart();
    // Nothing more is said: the bus coming back brings them, in order, read from the store.
    ann.expect_within("during 1", BUS_BACK_WITHIN);
    let mut got = vec![(2, "during 1".to_string())];
    got.extend(receive(&mut ann, "#lobby", 4));
    assert_eq!(got, (1..=5).map(|k| (k + 1, format!("during {k}"))).collect::<Vec<_>>());
    send(&mut cat, "#lobby", "after", "c9");
    assert_eq!(receive(&mut ann, "#lobby", 1), [(7, "after".to_string())]);
    wait_metric(c.tcp, "natter_bus_connected", 1.0, BUS_BACK_WITHIN);
}

#[test]
fn postgresql_restarted_refuses_sends_meanwhile_and_loses_nothing_acknowledged() {
    if !natter_store::testing::available() || !nats_available() {
        return;
    }
    // A PostgreSQL of this test's own: it is stopped and started again.
    let mut pg = natter_store::testing::Postgres::start();
    let db = pg.database();
    let nats = NatsServer::start(&NatsOptions::default());
    let a = node(&db, &nats.url(), "a");
    let c = node(&db, &nats.url(), "c");
    let mut ann = native(a.tcp, "ann");
    let mut cat = native(c.tcp, "cat");
    ann.expect(r#""nick":"cat""#);
    assert_eq!(send(&mut cat, "#lobby", "stored", "c1"), 1);
    pg.stop();
    cat.line(r##"{"type":"send","room":"#lobby","text":"refused","cid":"c2","id":77}"##);
    let refused = json(&cat.expect(r#""id":77"#));
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "store_failed", "{refused}");
    pg.restart();
    // The client resends what was refused; it is stored once, after the first.
    assert_eq!(send(&mut cat, "#lobby", "refused", "c2"), 2);
    assert_eq!(receive(&mut ann, "#lobby", 2), [(1, "stored".to_string()), (2, "refused".to_string())]);
}

#[test]
fn a_nick_is_one_sessions_across_nodes_and_a_ban_holds_on_every_node() {
    let Some(b) = backing() else { return };
    let a = node(&b.db, &b.nats.url(), "a");
    let c = node(&b.db, &b.nats.url(), "c");
    let mut cat = native(c.tcp, "cat");
    let mut ann = native(a.tcp, "ann");
    // Taken on node a, and node c knows it (its users saw ann join): refused on node c.
    cat.expect(r#""nick":"ann""#);
    let mut other = Client::connect(c.tcp);
    other.line(r#"{"type":"hello","nick":"ann"}"#);
    let refused = json(&other.expect(r#""type":"error""#));
    assert_eq!(refused["code"], "nick_in_use", "{refused}");

    // ann founds #club on node a; bob joins it from node c; ann bans him; node c holds him to it.
    ann.line(r##"{"type":"join","room":"#club"}"##);
    ann.expect(r#""type":"joined""#);
    let mut bob = irc_with_caps(c.irc.unwrap(), "bob", "");
    bob.line("JOIN #club");
    bob.expect(" 366 bob #club ");
    ann.expect(r#""nick":"bob""#);
    ann.line(r##"{"type":"mode","room":"#club","changes":[{"mode":"ban","mask":"bob!*@*","on":true}]}"##);
    bob.expect(" MODE #club +b bob!*@*");
    bob.line("PRIVMSG #club :may I?");
    let line = bob.expect(" 404 bob #club ");
    assert!(line.contains("banned") || line.contains("Cannot send"), "{line}");
}

#[test]
fn what_a_stranger_puts_on_the_bus_is_dropped() {
    let Some(b) = backing() else { return };
    let a = node(&b.db, &b.nats.url(), "a");
    let c = node(&b.db, &b.nats.url(), "c");
    let mut ann = native(a.tcp, "ann");
    // A raw NATS client publishes garbage, an event of an unknown node and too much on
    // natter's subject.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", b.nats.port)).unwrap();
    let ghost = br##"{"v":1,"node":"x","event":{"SessionUp":{"session":1,"nick":"ghost","ident":"i@h","realname":"","kind":"Irc","account":null,"away":null,"bot":false,"rooms":["#lobby"]}}}"##;
    let mut wire = b"CONNECT {\"verbose\":false}\r\n".to_vec();
    for payload in [&b"\xff\xfe{{{"[..], b"{\"v\":1}", b"", ghost] {
        wire.extend_from_slice(format!("PUB natter.cluster.events {}\r\n", payload.len()).as_bytes());
        wire.extend_from_slice(payload);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"PING\r\n");
    raw.write_all(&wire).unwrap();
    let mut reply = [0u8; 4096];
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("PONG") {
        let n = std::io::Read::read(&mut raw, &mut reply).unwrap();
        assert!(n > 0, "nats-server closed the raw client: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&reply[..n]);
    }
    // Both nodes still serve and hear each other; no ghost in the lobby.
    let mut cat = native(c.tcp, "cat");
    ann.expect(r#""nick":"cat""#);
    send(&mut cat, "#lobby", "still fine", "c1");
    assert_eq!(receive(&mut ann, "#lobby", 1), [(1, "still fine".to_string())]);
    ann.line(r##"{"type":"who","room":"#lobby"}"##);
    let members = json(&ann.expect(r#""type":"members""#));
    assert_eq!(members["nicks"], serde_json::json!(["ann", "cat"]), "{members}");
    drop(b.pg);
}

#[test]
fn two_nodes_racing_for_one_nick_leave_it_to_one_session() {
    let Some(b) = backing() else { return };
    let a = node(&b.db, &b.nats.url(), "a");
    let c = node(&b.db, &b.nats.url(), "c");
    // Both ask for "zed" at once, one on each node.
    let hello = r#"{"type":"hello","nick":"zed"}"#;
    let mut on_a = Client::connect(a.tcp);
    let mut on_c = Client::connect(c.tcp);
    on_a.line(hello);
    on_c.line(hello);
    // Each is refused at once (the other's login reached its node first) or welcomed; of the
    // welcomed, the store keeps "zed" for one and renames the other, who is told.
    let welcomed = |client: &mut Client| json(&client.expect(r#""type":"#))["type"] == "welcome";
    let (wa, wc) = (welcomed(&mut on_a), welcomed(&mut on_c));
    assert!(wa || wc, "one of them is zed");
    if wa && wc {
        // Both were let in: the claim decides. Whatever each is sent is read as it comes, until
        // the loser is told (a read with a deadline, not a wait for time to pass).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let told = |lines: &[String]| lines.iter().any(|l| l.contains("in use on another node"));
        loop {
            assert!(std::time::Instant::now() < deadline, "nobody was told the nick was taken");
            let (la, lc) = (on_a.drain(POLL), on_c.drain(POLL));
            match (told(&la), told(&lc)) {
                (false, false) => continue,
                (true, true) => panic!("both were renamed"),
                _ => break,
            }
        }
    }
    // And both nodes come to agree on the lobby: one zed, and the loser under its guest name.
    let mut ann = native(a.tcp, "ann");
    let mut cat = native(c.tcp, "cat");
    ann.expect(r#""nick":"cat""#);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut lists = Vec::new();
        for who in [&mut ann, &mut cat] {
            who.line(r##"{"type":"who","room":"#lobby"}"##);
            lists.push(json(&who.expect(r#""type":"members""#))["nicks"].clone());
        }
        let zeds = lists[0].as_array().unwrap().iter().filter(|n| *n == "zed").count();
        if lists[0] == lists[1]
            && zeds == 1
            && lists[0].as_array().unwrap().len() == 2 + usize::from(wa && wc) + 1
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the nodes never agreed: {lists:?}");
    }
}
