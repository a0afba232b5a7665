//! Private messages end to end, on the real server over real sockets: a message to a
//! registered account nobody is logged in to waits for its next login across a restart (over
//! IRC and the native protocol, once, with its time), the sender's note, the mailbox cap, and
//! the private history of accounts over native `history` and IRC `CHATHISTORY` (only the two
//! parties read it; bad targets and limits get clear answers).

mod common;

use common::{Client, Server, irc_with_caps, json, native};
use std::net::SocketAddr;

const CAPS: &str = "server-time message-tags batch draft/chathistory echo-message";

/// Registers the native session's nickname as an account.
fn register(c: &mut Client, password: &str) {
    c.line(&format!(r#"{{"type":"register","password":"{password}","id":"reg"}}"#));
    let v = json(&c.expect(r#""id":"reg""#));
    assert_eq!(v["change"], "registered", "{v}");
}

/// An IRC client that logged in to the account of its nickname through NickServ.
fn irc_logged_in(addr: SocketAddr, nick: &str, password: &str) -> (Client, Vec<String>) {
    let mut c = irc_with_caps(addr, nick, CAPS);
    c.line(&format!("PRIVMSG NickServ :IDENTIFY {password}"));
    c.expect(&format!(" 900 {nick} "));
    // What the login brought comes before the answer to a PING sent after it.
    let seen = c.irc_ping();
    (c, seen)
}

/// A native private message, and its acknowledgement (or error).
fn send_native(c: &mut Client, to: &str, text: &str, id: &str) -> serde_json::Value {
    c.line(&format!(r#"{{"type":"send","to":"{to}","text":"{text}","id":"{id}"}}"#));
    json(&c.expect(&format!(r#""id":"{id}""#)))
}

fn stop(mut server: Server) -> std::path::PathBuf {
    server.signal("-TERM");
    assert!(server.wait_exit().success());
    server.db.clone()
}

#[test]
fn a_message_to_an_offline_account_waits_for_its_login_across_a_restart_and_comes_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("natter.db");
    let server = Server::start_with_db(&db, &["--nick-protection", "off"]);
    let mut bob = native(server.tcp, "bob");
    register(&mut bob, "bob-password");
    bob.line(r#"{"type":"quit"}"#);
    assert!(bob.closed());

    // A native guest writes to bob: acknowledged as kept for later.
    let mut ann = native(server.tcp, "ann");
    let ack = send_native(&mut ann, "bob", "first, from native", "1");
    assert_eq!((ack["type"].as_str(), ack["offline"].as_bool()), (Some("ack"), Some(true)), "{ack}");
    let first_ts = ack["ts"].as_u64().unwrap();
    // An IRC guest too: told in a NOTICE.
    let irc_addr = server.irc.unwrap();
    let mut cid = irc_with_caps(irc_addr, "cid", "");
    cid.line("PRIVMSG bob :second, from IRC");
    let note = cid.expect(" NOTICE cid :");
    assert!(note.ends_with("bob is offline: your message is kept and delivered when they log in"), "{note}");
    // A name neither online nor registered: today's error.
    assert_eq!(send_native(&mut ann, "nobody", "hello?", "2")["code"], "no_such_nick");
    cid.line("PRIVMSG nobody :hello?");
    cid.expect(" 401 cid nobody ");
    drop((ann, cid));
    let db = stop(server);

    // After a restart bob logs in over IRC: both, in order, with their original times.
    let server = Server::start_with_db(&db, &["--nick-protection", "off"]);
    let (mut bob, seen) = irc_logged_in(server.irc.unwrap(), "bob", "bob-password");
    let mail: Vec<&String> = seen.iter().filter(|l| l.contains(" PRIVMSG bob :")).collect();
    assert_eq!(mail.len(), 2, "{seen:#?}");
    assert!(mail[0].ends_with(":ann!ann@history PRIVMSG bob :first, from native"), "{}", mail[0]);
    assert!(
        mail[0].starts_with(&format!("@time={}", natter_proto::irc::server_time(first_ts))),
        "{}",
        mail[0]
    );
    assert!(mail[1].ends_with(":cid!cid@history PRIVMSG bob :second, from IRC"), "{}", mail[1]);
    bob.line("QUIT");
    assert!(bob.closed());
    // Another message while he is away; then he logs in over native (hello with the
    // account): only that one comes, with its time.
    let mut ann = native(server.tcp, "ann");
    let ack = send_native(&mut ann, "bob", "third", "3");
    assert_eq!(ack["offline"], true, "{ack}");
    let mut bob = Client::connect(server.tcp);
    bob.line(r#"{"type":"hello","nick":"bob","account":"bob","account_password":"bob-password","id":"h"}"#);
    bob.expect(r#""type":"account""#);
    let seen = bob.ping();
    let mail: Vec<serde_json::Value> =
        seen.iter().map(|l| json(l)).filter(|v| v["type"] == "message" && v["to"] == "bob").collect();
    assert_eq!(mail.len(), 1, "{seen:#?}");
    assert_eq!((mail[0]["from"].as_str(), mail[0]["text"].as_str()), (Some("ann"), Some("third")));
    assert_eq!(mail[0]["ts"], ack["ts"]);
    // Once: a restart and another login bring nothing.
    drop((bob, ann));
    let server = Server::start_with_db(&stop(server), &["--nick-protection", "off"]);
    let (_bob, seen) = irc_logged_in(server.irc.unwrap(), "bob", "bob-password");
    assert!(seen.iter().all(|l| !l.contains("PRIVMSG bob")), "{seen:#?}");
}

#[test]
fn a_full_mailbox_is_said_to_be_full() {
    let server = Server::start(&["--nick-protection", "off", "--msg-rate", "0"]);
    let mut bob = native(server.tcp, "bob");
    register(&mut bob, "bob-password");
    bob.line(r#"{"type":"quit"}"#);
    assert!(bob.closed());
    let mut ann = native(server.tcp, "ann");
    // The documented cap (docs/accounts.md): 100 messages.
    for i in 0..100 {
        assert_eq!(send_native(&mut ann, "bob", "hi", &format!("m{i}"))["offline"], true);
    }
    let full = send_native(&mut ann, "bob", "one too many", "over");
    assert_eq!(full["code"], "mailbox_full", "{full}");
    assert!(full["message"].as_str().unwrap().contains("try again after they log in"), "{full}");
    let mut irc = irc_with_caps(server.irc.unwrap(), "cid", "");
    irc.line("PRIVMSG bob :one too many");
    let note = irc.expect(" NOTICE cid :");
    assert!(note.contains("bob is offline and their mailbox is full"), "{note}");
}

/// The `(from, text)` of a native history page's messages, and its `more`.
fn native_page(c: &mut Client, frame: &str) -> (Vec<(String, String)>, bool) {
    c.line(frame);
    let v = json(&c.expect(r#""type":"history""#));
    let messages = v["messages"].as_array().unwrap();
    let pairs = messages
        .iter()
        .map(|m| (m["from"].as_str().unwrap().to_string(), m["text"].as_str().unwrap().to_string()))
        .collect();
    (pairs, v["more"].as_bool().unwrap_or(false))
}

/// The lines of an IRC `CHATHISTORY` batch's messages (its PRIVMSGs), after its start.
fn irc_batch(c: &mut Client, command: &str) -> Vec<String> {
    c.line(command);
    let start = c.expect("BATCH +");
    assert!(start.contains(" chathistory "), "{start}");
    let mut lines = Vec::new();
    loop {
        let line = c.next().expect("the batch's end");
        if line.contains(" BATCH -") {
            return lines;
        }
        lines.push(line);
    }
}

#[test]
fn private_history_pages_over_native_and_irc_and_only_for_its_two_parties() {
    let server = Server::start(&["--nick-protection", "off"]);
    let mut ann = native(server.tcp, "ann");
    register(&mut ann, "ann-password");
    let mut reg = native(server.tcp, "bob");
    register(&mut reg, "bob-password");
    reg.line(r#"{"type":"quit"}"#);
    assert!(reg.closed());
    let (mut bob, _) = irc_logged_in(server.irc.unwrap(), "bob", "bob-password");
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        assert_eq!(send_native(&mut ann, "bob", text, &format!("a{i}"))["type"], "ack");
        bob.expect(&format!("PRIVMSG bob :{text}"));
    }
    bob.line("PRIVMSG ann :four");
    ann.expect(r#""text":"four""#);
    // Its echo comes with the acknowledgement, once it is stored.
    bob.expect("PRIVMSG ann :four");

    // Native: the newest two, then the page before them.
    let (page, more) = native_page(&mut ann, r#"{"type":"history","room":"bob","limit":2,"id":"h1"}"#);
    assert_eq!(page, [("ann".to_string(), "three".to_string()), ("bob".into(), "four".into())]);
    assert!(more);
    ann.line(r#"{"type":"history","room":"Bob","limit":2,"id":"h2"}"#);
    let v = json(&ann.expect(r#""id":"h2""#));
    let oldest = v["messages"][0]["mid"].as_u64().unwrap();
    let frame = format!(r#"{{"type":"history","room":"bob","before":{oldest},"limit":10,"id":"h3"}}"#);
    let (older, more) = native_page(&mut ann, &frame);
    assert_eq!(older, [("ann".to_string(), "one".to_string()), ("ann".into(), "two".into())]);
    assert!(!more);

    // IRC: the same conversation from bob's side, paged by msgid and with a huge limit.
    let all = irc_batch(&mut bob, "CHATHISTORY LATEST ann * 4294967295");
    assert_eq!(all.len(), 4, "{all:#?}");
    assert!(all[0].contains(":ann!ann@history PRIVMSG bob :one"), "{}", all[0]);
    assert!(all[3].contains(":bob!bob@history PRIVMSG ann :four"), "{}", all[3]);
    let msgid =
        |line: &str| line.split([';', ' ', '@']).find_map(|t| t.strip_prefix("msgid=")).unwrap().to_string();
    let before = irc_batch(&mut bob, &format!("CHATHISTORY BEFORE ann msgid={} 10", msgid(&all[2])));
    assert_eq!(before.len(), 2, "{before:#?}");
    assert!(before[1].contains("PRIVMSG bob :two"), "{before:#?}");
    let around = irc_batch(&mut bob, &format!("CHATHISTORY AROUND ann msgid={} 3", msgid(&all[2])));
    assert_eq!(around.len(), 3, "{around:#?}");

    // TARGETS lists the conversation (by the other's nick) beside channels.
    bob.line("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z 10");
    let listed = bob.until("BATCH -");
    let targets: Vec<&String> = listed.iter().filter(|l| l.contains(" CHATHISTORY TARGETS ")).collect();
    assert_eq!(targets.len(), 1, "{listed:#?}");
    assert!(targets[0].contains(" CHATHISTORY TARGETS ann 20"), "{}", targets[0]);

    // A third party, logged in, reads only its own conversations: nothing here.
    let (mut dan, _) = {
        let mut reg = native(server.tcp, "dan");
        register(&mut reg, "dan-password");
        reg.line(r#"{"type":"quit"}"#);
        assert!(reg.closed());
        irc_logged_in(server.irc.unwrap(), "dan", "dan-password")
    };
    assert_eq!(irc_batch(&mut dan, "CHATHISTORY LATEST ann * 50"), Vec::<String>::new());
    dan.line("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z 10");
    let listed = dan.until("BATCH -");
    assert!(listed.iter().all(|l| !l.contains(" CHATHISTORY TARGETS ")), "{listed:#?}");
    assert_eq!(irc_batch(&mut dan, "CHATHISTORY LATEST bob * 50"), Vec::<String>::new());
    // Bob's msgids name nothing in dan's conversations either.
    let before = format!("CHATHISTORY AROUND ann msgid={} 10", msgid(&all[2]));
    assert_eq!(irc_batch(&mut dan, &before), Vec::<String>::new());
    // A nick nobody has: an empty page; a target that is no nick: FAIL; a bad limit: FAIL.
    assert_eq!(irc_batch(&mut dan, "CHATHISTORY LATEST nobody * 50"), Vec::<String>::new());
    dan.line("CHATHISTORY LATEST bad!nick * 50");
    dan.expect("FAIL CHATHISTORY INVALID_TARGET LATEST bad!nick");
    dan.line("CHATHISTORY LATEST ann * lots");
    dan.expect("FAIL CHATHISTORY INVALID_PARAMS LATEST");
    // A guest has nothing stored to read.
    let mut guest = native(server.tcp, "guest");
    let (page, _) = native_page(&mut guest, r#"{"type":"history","room":"ann","limit":50,"id":"g"}"#);
    assert_eq!(page, []);
}

/// `natter connect` (line mode) tells its user that the message waits for the recipient.
#[test]
fn the_terminal_client_says_a_message_waits_for_an_offline_account() {
    let server = Server::start(&["--nick-protection", "off"]);
    let mut bob = native(server.tcp, "bob");
    register(&mut bob, "bob-password");
    bob.line(r#"{"type":"quit"}"#);
    assert!(bob.closed());
    let mut child = std::process::Command::new(common::natter_bin())
        .args(["connect", &server.tcp.to_string(), "--nick", "ann"])
        .env("XDG_CONFIG_HOME", "/nonexistent-natter-test")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"/msg bob see you later\n").unwrap();
    assert!(common::wait_exit(&mut child).success());
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(out.contains("bob is offline: your message is kept and delivered when they log in"), "{out}");
}
