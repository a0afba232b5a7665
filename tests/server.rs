//! `natter serve` end to end: the real binary on port 0, real native, text and UDP clients.

mod common;
use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[test]
fn native_text_and_udp_users_share_the_lobby() {
    let server = Server::start(&[]);
    let mut ann = text(server.tcp, "ann");
    let mut bob = native(server.tcp, "bob");
    ann.expect("bob joined");
    let udp = Udp::new(server.udp.unwrap());
    udp.send(b"/nick cat");
    udp.expect("Hello cat");
    udp.expect("you are in #lobby (3 here: ann, bob, cat)");
    ann.expect("cat joined");
    bob.expect(r#""nick":"cat""#);

    ann.line("hello from text");
    let m = json(&bob.expect(r#""type":"message""#));
    assert_eq!(
        (m["from"].as_str(), m["text"].as_str(), m["room"].as_str()),
        (Some("ann"), Some("hello from text"), Some("#lobby"))
    );
    assert!(m["mid"].as_u64().is_some() && m["ts"].as_u64().is_some());
    udp.expect("#lobby <ann> hello from text");

    bob.line(r##"{"type":"send","room":"#lobby","text":"hello from native","id":7}"##);
    let ack = json(&bob.expect(r#""type":"ack""#));
    assert_eq!(ack["id"], 7);
    ann.expect("#lobby <bob> hello from native");
    udp.expect("#lobby <bob> hello from native");

    udp.send("hello from udp 你好".as_bytes());
    ann.expect("#lobby <cat> hello from udp 你好");
    bob.expect("hello from udp 你好");

    // Private messages reach only their recipient, whatever the door.
    ann.line("@bob just for you");
    let pm = json(&bob.expect("just for you"));
    assert_eq!((pm["from"].as_str(), pm["to"].as_str(), pm.get("room")), (Some("ann"), Some("bob"), None));
    ann.expect("-> *bob* just for you");
    udp.send(b"@ann psst from udp");
    ann.expect("*cat* psst from udp");
    bob.line(r#"{"type":"send","to":"cat","text":"pm to udp"}"#);
    udp.expect("*bob* pm to udp");
    // ann got the udp whisper, so bob would have it before his pong.
    let seen = bob.ping();
    assert!(!seen.iter().any(|l| l.contains("psst")), "{seen:#?}");

    // The online list, whole server and per room.
    ann.line("/ls");
    ann.expect("online (3): ann, bob, cat");
    bob.line(r##"{"type":"who","room":"#lobby","id":"w"}"##);
    let who = json(&bob.expect(r#""type":"members""#));
    assert_eq!(who["nicks"], serde_json::json!(["ann", "bob", "cat"]));

    udp.send(b"quit");
    udp.expect("bye");
    ann.expect("cat quit");
    bob.expect(r#""type":"quit""#);
}

#[test]
fn nick_rules_and_retries() {
    let server = Server::start(&[]);
    let _ann = native(server.tcp, "Ann");
    let mut c = Client::connect(server.tcp);
    c.line(r#"{"type":"hello","nick":"aNN","id":1}"#);
    let e = json(&c.expect(r#""type":"error""#));
    assert_eq!((e["code"].as_str(), e["id"].as_i64()), (Some("nick_in_use"), Some(1)));
    c.line(r#"{"type":"hello","nick":"bad nick"}"#);
    assert_eq!(json(&c.expect(r#""type":"error""#))["code"], "invalid_nick");
    c.line(r#"{"type":"hello","nick":"ann2"}"#);
    c.expect(r#""type":"welcome""#);

    let mut t = Client::connect(server.tcp);
    t.line("ann");
    t.expect("taken");
    t.expect("type another nickname");
    t.line("1digit");
    t.expect("must start with a letter");
    t.line("zoe");
    t.expect("Hello zoe");
    t.line("/nick ANN2");
    t.expect("taken");
    t.line("/nick zed");
    t.expect("zoe is now known as zed");
}

#[test]
fn framing_ignores_read_boundaries() {
    let server = Server::start(&[]);
    let mut bob = native(server.tcp, "bob");
    let mut c = Client::connect(server.tcp);
    // One frame split byte by byte across writes.
    for b in br#"{"type":"hello","nick":"slow"}"#.iter().chain(b"\n") {
        c.send(&[*b]);
        // Part of the behaviour under test: spacing the writes makes the server see the
        // frame in many reads (nothing here waits for the server to reach a state).
        std::thread::sleep(Duration::from_millis(2));
    }
    c.expect(r#""type":"welcome""#);
    // Many frames in one write.
    let many: String =
        (0..20).map(|i| format!("{{\"type\":\"send\",\"room\":\"#lobby\",\"text\":\"m{i}\"}}\n")).collect();
    c.send(many.as_bytes());
    for i in 0..20 {
        bob.expect(&format!(r#""text":"m{i}""#));
    }
}

#[test]
fn bad_input_gets_an_error_and_the_session_continues() {
    let server = Server::start(&["--max-line", "1024"]);
    let mut bob = Client::connect(server.tcp);
    bob.line(r#"{"type":"hello","nick":"bob"}"#);
    // The limit is announced, so that clients can refuse longer frames themselves.
    assert_eq!(json(&bob.expect(r#""type":"welcome""#))["max_line"], 1024);
    bob.expect(r#""type":"joined""#);
    bob.line("{nope");
    assert_eq!(json(&bob.expect("error"))["code"], "invalid_json");
    bob.line(r#"{"type":"teleport","id":4}"#);
    let e = json(&bob.expect("error"));
    assert_eq!((e["code"].as_str(), e["id"].as_i64()), (Some("unknown_type"), Some(4)));
    bob.line(r#"{"type":"join"}"#);
    assert_eq!(json(&bob.expect("error"))["code"], "bad_frame");
    bob.send(b"{\"type\":\"send\",\"room\":\"#lobby\",\"text\":\"\xff\xfe\"}\n");
    assert_eq!(json(&bob.expect("error"))["code"], "invalid_utf8");
    bob.line(&format!(r##"{{"type":"send","room":"#lobby","text":"{}"}}"##, "x".repeat(5000)));
    assert_eq!(json(&bob.expect("error"))["code"], "too_long");
    bob.line(r##"{"type":"send","room":"#nowhere","text":"hi"}"##);
    assert_eq!(json(&bob.expect("error"))["code"], "no_such_room");
    bob.line(r#"{"type":"send","to":"ghost","text":"hi"}"#);
    assert_eq!(json(&bob.expect("error"))["code"], "no_such_nick");
    bob.line(r##"{"type":"send","room":"#lobby","text":"   "}"##);
    assert_eq!(json(&bob.expect("error"))["code"], "empty_message");
    bob.line(r#"{"type":"ping","id":"p"}"#);
    assert_eq!(json(&bob.expect("pong"))["id"], "p");

    let mut t = text(server.tcp, "tina");
    t.line(&"y".repeat(3000));
    t.expect("line too long");
    t.line("/frobnicate");
    t.expect("unknown command /frobnicate");
    t.line("/join");
    t.expect("usage: /join #room");
    t.line("/join nohash");
    t.expect("room names start with #");
    // Windows peers send GBK: decoded, not garbled.
    t.send(b"\xc4\xe3\xba\xc3 from gbk\r\n");
    bob.expect("你好 from gbk");
    t.send(b"\xff\xfe\xfd raw\n");
    bob.expect("raw");
    t.line("still here");
    bob.expect("still here");
}

#[test]
fn a_client_that_never_sends_newlines_still_works() {
    let server = Server::start(&[]);
    let mut bob = native(server.tcp, "bob");
    let mut c = Client::connect(server.tcp);
    c.send(b"lazy");
    c.expect("Hello lazy");
    c.send(b"one message per write");
    bob.expect("one message per write");
    // The tutorials' JSON client: one object per send, no newline (answered in its dialect,
    // see tests/tutorial_json.rs).
    let mut j = Client::connect(server.tcp);
    j.send(br#"{"type":"login","msg":"tutor"}"#);
    j.expect(r#"{"type":"login","success":true"#);
    j.send(br#"{"type":"broadcast","msg":"old school"}"#);
    bob.expect("old school");
}

#[test]
fn floods_are_warned_then_disconnected() {
    let server = Server::start(&["--msg-rate", "5", "--msg-burst", "5"]);
    let mut bob = native(server.tcp, "bob");
    let mut f = text(server.tcp, "flood");
    bob.expect("flood");
    let burst: String = (0..200).map(|i| format!("spam {i}\n")).collect();
    f.send(burst.as_bytes());
    f.expect("slow down: at most 5 messages per second");
    f.expect("bye: flooding");
    assert!(f.closed());
    // Nothing beyond the burst got through: count every spam line bob saw, before the quit
    // and (up to his pong) after it.
    let mut seen = bob.until(r#""reason":"flooding"#);
    seen.extend(bob.ping());
    let got = seen.iter().filter(|l| l.contains("spam")).count();
    assert!((1..=6).contains(&got), "{got} spam lines delivered");
}

/// A client over its command budget that waits for each answer before it sends the next
/// command (as IRC clients joining their channels at start do) is read again once it has
/// paid for that command: its 22nd join is answered half a second after the 21st. It used to
/// be answered never: the session was not read again, so a client that hung up then kept its
/// nick and its descriptor (found by `natter bench soak`, whose slow readers join 150 rooms).
#[test]
fn a_session_over_its_command_budget_is_read_again_once_paid() {
    let server = Server::start(&[]);
    let mut ann = native(server.tcp, "ann");
    // Joins cost 5 units of a burst of 100: the 21st goes over it.
    for i in 0..21 {
        ann.line(&format!(r##"{{"type":"join","room":"#r{i}"}}"##));
        ann.expect(&format!(r##""type":"joined","room":"#r{i}""##));
    }
    ann.line(r##"{"type":"join","room":"#r21"}"##);
    let mut seen = ann.until(r##""type":"joined","room":"#r21""##);
    assert!(seen.iter().all(|l| !l.contains("error")), "{seen:#?}");
    // Paid for, and read again: it can leave, and the others see it go.
    let mut bob = native(server.tcp, "bob");
    ann.line(r##"{"type":"quit"}"##);
    seen = bob.until(r#""type":"quit","nick":"ann""#);
    assert!(seen.len() < 100, "{seen:#?}");
}

#[test]
fn repeated_garbage_ends_the_session() {
    let server = Server::start(&[]);
    let mut c = native(server.tcp, "junk");
    let garbage: String = (0..50).map(|_| "not json\n").collect();
    c.send(garbage.as_bytes());
    c.expect("too many invalid requests");
    assert!(c.closed());
}

#[test]
fn a_slow_reader_is_dropped_without_slowing_others() {
    let server = Server::start(&["--outbox", "256", "--msg-rate", "0"]);
    let mut fast = native(server.tcp, "fast");
    // Never reads: its socket buffers fill, then its outbox.
    let slow = native(server.tcp, "slow");
    let mut sender = native(server.tcp, "sender");
    fast.expect(r#""nick":"sender""#);
    const N: usize = 4000;
    // How far the sender may run ahead of the fast reader and of its own acknowledgements:
    // well inside the outbox (256), so that the fast reader and the sender (which reads its
    // acks as it goes) keep up however the test threads are scheduled, while the slow one,
    // which never reads, overflows its socket buffers and then its outbox.
    const AHEAD: usize = 64;
    let progress = Arc::new(AtomicUsize::new(0));
    let seen = progress.clone();
    let reader = std::thread::spawn(move || {
        let (mut got, mut slow_quit) = (0, None);
        while got < N {
            let Some(line) = fast.next() else { break };
            if line.contains(r#""type":"message""#) {
                assert!(line.contains(&format!(r#""text":"{got} "#)), "out of order at {got}");
                got += 1;
                seen.store(got, Ordering::Release);
            } else if line.contains(r#""type":"quit","nick":"slow""#) {
                slow_quit = Some(line);
            }
        }
        seen.store(usize::MAX, Ordering::Release);
        (got, slow_quit)
    });
    let text = "z".repeat(4000);
    let mut acked = 0;
    for i in 0..N {
        while i >= progress.load(Ordering::Acquire).min(acked).saturating_add(AHEAD) {
            let lines = sender.drain(Duration::from_millis(1));
            acked += lines.iter().filter(|l| l.contains(r#""type":"ack""#)).count();
        }
        sender.line(&format!(r##"{{"type":"send","room":"#lobby","text":"{i} {text}"}}"##));
    }
    let (got, slow_quit) = reader.join().unwrap();
    assert_eq!(got, N, "the fast reader lost messages");
    let quit = slow_quit.expect("the slow reader was not disconnected");
    assert!(quit.contains("too slow"), "{quit}");
    drop(slow);
}

#[test]
fn silent_connections_hit_the_registration_deadline() {
    let server = Server::start(&["--register-timeout", "1"]);
    let mut c = Client::connect(server.tcp);
    c.expect("Welcome to natter");
    c.expect("registration timeout");
    assert!(c.closed());
}

#[test]
fn an_abrupt_disconnect_is_a_quit() {
    let server = Server::start(&[]);
    let mut bob = native(server.tcp, "bob");
    let gone = text(server.tcp, "gone");
    bob.expect(r#""nick":"gone""#);
    drop(gone);
    let q = json(&bob.expect(r#""type":"quit""#));
    assert_eq!((q["nick"].as_str(), q["reason"].as_str()), (Some("gone"), Some("connection lost")));
}

#[test]
fn resending_a_client_id_never_doubles_a_message() {
    let server = Server::start(&[]);
    let mut bob = native(server.tcp, "bob");
    let mut ann = native(server.tcp, "ann");
    ann.line(r##"{"type":"send","room":"#lobby","text":"once","cid":"k1"}"##);
    let first = json(&ann.expect(r#""type":"ack""#));
    ann.line(r##"{"type":"send","room":"#lobby","text":"once","cid":"k1"}"##);
    let again = json(&ann.expect(r#""type":"ack""#));
    assert_eq!(again["duplicate"], true);
    assert_eq!(first["mid"], again["mid"]);
    bob.expect(r#""text":"once""#);
    // ann's second send was answered, so a second copy would reach bob before his pong.
    let seen = bob.ping();
    assert!(!seen.iter().any(|l| l.contains("once")), "{seen:#?}");
}

#[test]
fn history_is_replayed_on_join_and_pages_back() {
    let server = Server::start(&["--history", "3", "--msg-rate", "0"]);
    let mut ann = native(server.tcp, "ann");
    ann.line(r##"{"type":"join","room":"#log"}"##);
    ann.expect(r#""type":"joined""#);
    for i in 1..=10 {
        ann.line(&format!(r##"{{"type":"send","room":"#log","text":"n{i}"}}"##));
        ann.expect(r#""type":"ack""#);
    }
    let mut bob = native(server.tcp, "bob");
    bob.line(r##"{"type":"join","room":"#LOG"}"##);
    let joined = json(&bob.expect(r##""room":"#log""##));
    let texts: Vec<_> = joined["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["n8", "n9", "n10"]);
    let oldest = joined["history"][0]["mid"].as_u64().unwrap();
    bob.line(&format!(r##"{{"type":"history","room":"#log","before":{oldest},"limit":4,"id":1}}"##));
    let page = json(&bob.expect(r#""type":"history""#));
    let texts: Vec<_> =
        page["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["n4", "n5", "n6", "n7"]);
    assert_eq!(page["more"], true);
    bob.line(r##"{"type":"history","room":"#log","after":8,"limit":50}"##);
    let page = json(&bob.expect(r#""type":"history""#));
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
    assert_eq!(page["more"], false);

    let mut t = text(server.tcp, "tom");
    t.line("/join #log");
    t.expect("last 3 messages");
    t.line("/history 2");
    t.expect("2 messages of #log");
}

#[test]
fn history_survives_restart_and_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keep.db");
    {
        let mut server = Server::start_with_db(&db, &[]);
        let mut ann = native(server.tcp, "ann");
        ann.line(r##"{"type":"send","room":"#lobby","text":"before sigterm"}"##);
        ann.expect(r#""type":"ack""#);
        server.signal("-TERM");
        ann.expect(r#""type":"bye""#);
        assert!(server.wait_exit().success());
    }
    {
        let server = Server::start_with_db(&db, &[]);
        let mut ann = Client::connect(server.tcp);
        ann.line(r#"{"type":"hello","nick":"ann"}"#);
        ann.expect("before sigterm");
        for i in 0..20 {
            ann.line(&format!(r##"{{"type":"send","room":"#lobby","text":"acked {i}"}}"##));
        }
        for _ in 0..20 {
            ann.expect(r#""type":"ack""#);
        }
        // Acknowledged means stored: kill -9 right after the last ack.
        server.signal("-KILL");
    }
    let server = Server::start_with_db(&db, &["--history", "100"]);
    let mut bob = Client::connect(server.tcp);
    bob.line(r#"{"type":"hello","nick":"bob"}"#);
    let joined = bob.expect(r#""type":"joined""#);
    for i in 0..20 {
        assert!(joined.contains(&format!("acked {i}\"")), "acked {i} lost: {joined}");
    }
    assert!(joined.contains("before sigterm"));
}

#[test]
fn ephemeral_rooms_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("e.db");
    {
        let server = Server::start_with_db(&db, &["--ephemeral", "#secret"]);
        let mut ann = text(server.tcp, "ann");
        ann.line("/join #secret");
        ann.expect("ephemeral");
        let mut bob = text(server.tcp, "bob");
        bob.line("/join #secret");
        bob.expect("you are in #secret");
        ann.line("whisper whisper");
        bob.expect("#secret <ann> whisper whisper");
        // An operator can make their own room ephemeral; others cannot.
        bob.line("/join #mine");
        bob.expect("you are in #mine");
        bob.line("kept");
        ann.line("/join #mine");
        ann.expect("you are in #mine");
        ann.line("/ephemeral on");
        ann.expect("only an operator of #mine");
        bob.line("/ephemeral on");
        ann.expect("#mine is now ephemeral");
        bob.line("not kept");
        ann.expect("<bob> not kept");
    }
    let server = Server::start_with_db(&db, &["--ephemeral", "#secret"]);
    let mut c = text(server.tcp, "carl");
    c.line("/join #secret");
    c.expect("you are in #secret");
    c.line("/history 50");
    c.expect("no older messages in #secret");
    c.line("/join #mine");
    c.expect("you are in #mine");
    c.line("/history 50");
    let lines = c.text_barrier().join("\n");
    assert!(!lines.contains("whisper") && !lines.contains("not kept"), "{lines}");
}

#[test]
fn ignore_mode_and_ignoring_one_user() {
    let server = Server::start(&[]);
    let mut ann = text(server.tcp, "ann");
    let mut bob = text(server.tcp, "bob");
    let mut eve = text(server.tcp, "eve");
    ann.line("/i");
    ann.expect("ignore mode ON");
    bob.line("room chatter");
    eve.expect("<bob> room chatter");
    bob.line("@ann private still arrives");
    ann.expect("*bob* private still arrives");
    ann.line("/i");
    ann.expect("ignore mode OFF");
    ann.line("/ignore eve");
    ann.expect("you ignore: eve");
    eve.line("from eve in room");
    eve.line("@ann from eve privately");
    bob.line("from bob after");
    let seen = ann.expect("from bob after");
    assert!(!seen.contains("eve"));
    let rest = ann.text_barrier().join("\n");
    assert!(!rest.contains("from eve"), "{rest}");
    ann.line("/unignore eve");
    ann.expect("you ignore nobody");
    eve.line("hello again");
    ann.expect("<eve> hello again");
}

#[test]
fn rooms_topics_nicks_and_parts_are_announced() {
    let server = Server::start(&[]);
    let mut ann = text(server.tcp, "ann");
    let mut bob = native(server.tcp, "bob");
    ann.line("/join #rust");
    ann.expect("you are in #rust");
    bob.line(r##"{"type":"join","room":"#rust","id":"j"}"##);
    let j = json(&bob.expect(r#""type":"joined""#));
    assert_eq!(j["operators"], serde_json::json!(["ann"]));
    ann.expect("#rust --> bob joined");
    ann.line("/topic all about crabs");
    let t = json(&bob.expect(r#""type":"topic""#));
    assert_eq!((t["topic"].as_str(), t["by"].as_str()), (Some("all about crabs"), Some("ann")));
    ann.line("/me waves");
    let m = json(&bob.expect("waves"));
    assert_eq!(m["action"], true);
    ann.line("/rooms");
    ann.expect("2 rooms");
    ann.expect("#rust (2 online) - all about crabs");
    ann.line("/nick anna");
    bob.expect(r#""new":"anna""#);
    bob.line(r##"{"type":"part","room":"#rust","reason":"lunch"}"##);
    ann.expect("#rust <-- bob left (lunch)");
    ann.line("/part");
    ann.expect("#rust <-- anna left");
    ann.line("in the lobby again");
    bob.expect("in the lobby again");
    ann.line("/quit see you");
    ann.expect("bye: see you");
    bob.expect("see you");
}

#[test]
fn udp_members_expire_and_long_text_is_split_not_cut() {
    let server = Server::start(&["--udp-idle", "1", "--max-line", "8192"]);
    let mut bob = native(server.tcp, "bob");
    let u = Udp::new(server.udp.unwrap());
    u.send(b"hi, no nick given");
    u.expect(&format!("Hello udp-{}", u.port()));
    bob.expect("hi, no nick given");
    let long: String = (0..3000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    bob.line(&format!(r##"{{"type":"send","room":"#lobby","text":"{long}"}}"##));
    let mut got = u.expect("<bob> abc");
    while !got.contains("\r\n") {
        let d = u.recv().expect("all parts of the long message");
        assert!(d.len() <= 1200);
        got.push_str(&d);
    }
    assert!(got.contains(&long), "reassembled text differs");
    let quit = bob.expect(r#""type":"quit""#);
    assert!(quit.contains("timed out: no datagram for 1 seconds"), "{quit}");
}

#[test]
fn sigterm_says_goodbye_and_exits_cleanly() {
    let mut server = Server::start(&[]);
    let mut c = text(server.tcp, "ann");
    // Connections not logged in are told too (they used to hold the exit up for 3 s, then be
    // cut without a word): one silent after its greeting, one native that only pinged.
    let mut silent = Client::connect(server.tcp);
    silent.expect("Welcome to natter");
    let mut native = Client::connect(server.tcp);
    native.line(r#"{"type":"ping","id":1}"#);
    native.expect("pong");
    server.signal("-TERM");
    c.expect("bye: server shutting down");
    assert!(c.closed());
    silent.expect("bye: server shutting down");
    assert!(silent.closed());
    native.expect(r#"{"type":"bye","reason":"server shutting down"}"#);
    assert!(native.closed());
    assert!(server.wait_exit().success());
}

#[test]
fn ipv6_loopback_works() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 loopback here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["serve", "--tcp", "[::1]:0", "--udp", "off", "--irc", "off", "--db", ":memory:"])
        .stdout(std::process::Stdio::piped())
        .current_dir(dir.path())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let addr: std::net::SocketAddr = line.trim().strip_prefix("listening tcp ").unwrap().parse().unwrap();
    assert!(addr.is_ipv6());
    let mut c = native(addr, "six");
    c.line(r#"{"type":"who"}"#);
    c.expect("six");
    child.kill().unwrap();
    child.wait().unwrap();
}
