//! `natter serve --db postgres://...` end to end: the real binary on a throwaway PostgreSQL
//! server, a native and an IRC client chatting, history kept across a restart of natter,
//! `natter user` against the same database, and a clear refusal (without the password) when
//! the database cannot be reached.

mod common;

use common::{Client, Server, irc_with_caps, json, native, natter_bin, user, user_output};
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn native_and_irc_clients_chat_on_postgresql_and_history_survives_a_restart() {
    let Some(pg) = natter_store::testing::shared() else { return };
    let url = pg.database();
    let db = Path::new(&url);
    {
        let mut server = Server::start_with_db(db, &[]);
        let mut ann = native(server.tcp, "ann");
        let mut bob = irc_with_caps(server.irc.unwrap(), "bob", "");
        bob.line("JOIN #pg");
        bob.expect(" 366 bob #pg ");
        ann.line(r##"{"type":"join","room":"#pg"}"##);
        ann.expect(r#""type":"joined""#);
        bob.line("PRIVMSG #pg :hello from IRC");
        ann.expect("hello from IRC");
        ann.line(r##"{"type":"send","room":"#pg","text":"hello from native","id":"n1"}"##);
        ann.expect(r#""type":"ack""#);
        bob.expect(":ann!");
        server.signal("-TERM");
        assert!(server.wait_exit().success());
    }
    // The messages are in PostgreSQL, with their ids.
    let mut sql = postgres_client(&url);
    let rows = sql
        .query("SELECT mid, convert_from(text, 'UTF8') FROM messages WHERE room = '#pg' ORDER BY mid", &[])
        .unwrap();
    let stored: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(stored, [(1, "hello from IRC".to_owned()), (2, "hello from native".to_owned())]);

    let server = Server::start_with_db(db, &[]);
    let mut carol = native(server.tcp, "carol");
    carol.line(r##"{"type":"join","room":"#pg"}"##);
    let joined = json(&carol.expect(r#""type":"joined""#));
    let texts: Vec<&str> = joined["history"]
        .as_array()
        .map_or(Vec::new(), |h| h.iter().filter_map(|m| m["text"].as_str()).collect());
    assert_eq!(texts, ["hello from IRC", "hello from native"], "{joined}");
    // And the next message goes on from the stored ids (acknowledged means stored).
    carol.line(r##"{"type":"send","room":"#pg","text":"after the restart","id":"c1"}"##);
    carol.expect(r#""type":"ack""#);
    let mid: i64 = postgres_client(&url)
        .query_one("SELECT max(mid) FROM messages WHERE room = '#pg'", &[])
        .unwrap()
        .get(0);
    assert_eq!(mid, 3);
}

/// PostgreSQL restarts under a running server: the server stays up, refuses (and reports)
/// what it cannot store meanwhile, and stores again once PostgreSQL is back.
#[test]
fn a_restart_of_postgresql_under_a_running_server_refuses_messages_meanwhile_then_stores_again() {
    if !natter_store::testing::available() {
        return;
    }
    // A server of its own: this test stops it.
    let mut pg = natter_store::testing::Postgres::start();
    let url = pg.database();
    let server = Server::start_with_db(Path::new(&url), &[]);
    let mut ann = native(server.tcp, "ann");
    ann.line(r##"{"type":"send","room":"#lobby","text":"before","id":"b"}"##);
    ann.expect(r#""type":"ack""#);
    assert!(readyz(&server).starts_with("HTTP/1.1 200"));

    pg.stop();
    ann.line(r##"{"type":"send","room":"#lobby","text":"during","id":"d"}"##);
    let refused = json(&ann.expect(r#""type":"error""#));
    assert_eq!(refused["code"], "store_failed", "{refused}");
    let ready = readyz(&server);
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(ready.contains(&format!("PostgreSQL at 127.0.0.1:{} is unavailable", pg.port())), "{ready}");

    pg.restart();
    ann.line(r##"{"type":"send","room":"#lobby","text":"after","id":"a"}"##);
    ann.expect(r#""type":"ack""#);
    assert!(readyz(&server).starts_with("HTTP/1.1 200"));
    // What is stored: the message refused during the outage is not (the room's replay in the
    // server's memory still shows it: it was delivered before the store refused it).
    let rows = postgres_client(&url)
        .query("SELECT convert_from(text, 'UTF8') FROM messages WHERE room = '#lobby' ORDER BY mid", &[])
        .unwrap();
    let stored: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(stored, ["before", "after"]);
}

/// `GET /readyz` on the server's main port: the whole response.
fn readyz(server: &Server) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server.tcp).unwrap();
    stream.set_read_timeout(Some(common::WAIT)).unwrap();
    stream.write_all(b"GET /readyz HTTP/1.1\r\nHost: natter\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn natter_user_manages_accounts_in_postgresql_that_the_server_logs_in_to() {
    let Some(pg) = natter_store::testing::shared() else { return };
    let url = pg.database();
    let db = Path::new(&url);
    // Before any server: `natter user` makes the tables itself.
    assert!(user(db, &["add", "carol"], "first password\n"));
    let server = Server::start_with_db(db, &["--nick-protection", "off"]);
    let mut c = native(server.tcp, "someone");
    assert_eq!(login(&mut c, "carol", "first password", "1")["change"], "logged_in");
    c.line(r#"{"type":"logout"}"#);
    // Beside the running server.
    assert!(user(db, &["add", "dave"], "dave's password\n"));
    assert_eq!(login(&mut c, "dave", "dave's password", "2")["change"], "logged_in");
    c.line(r#"{"type":"logout"}"#);
    let (ok, out, err) = user_output(db, &["list"], "");
    assert!(ok, "{err}");
    let names: Vec<&str> = out.lines().filter_map(|l| l.split('\t').next()).collect();
    assert_eq!(names, ["carol", "dave"], "{out}");
    assert!(user(db, &["del", "carol"], ""));
    assert_eq!(login(&mut c, "carol", "first password", "3")["code"], "bad_credentials");
}

#[test]
fn serve_refuses_an_unreachable_database_saying_where_without_the_password() {
    if !natter_store::testing::available() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgresql://natter:hunter2-secret@127.0.0.1:{port}/natter");
    let out = Command::new(natter_bin())
        .args(["serve", "--tcp", "127.0.0.1:0", "--udp", "off", "--irc", "off", "--db", &url])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("PostgreSQL at 127.0.0.1:{port} is unavailable")), "{stderr}");
    assert!(stderr.contains("postgresql://natter:***@"), "{stderr}");
    assert!(!stderr.contains("hunter2-secret"), "{stderr}");
    let (ok, _, err) = user_output(Path::new(&url), &["list"], "");
    assert!(!ok && err.contains("is unavailable") && !err.contains("hunter2-secret"), "{err}");
}

/// The nodes of a cluster cloak an address alike without a configured secret: the key is made
/// once and kept in the database they share (and another database has another key).
#[test]
fn servers_sharing_a_database_share_the_cloak_key() {
    let Some(pg) = natter_store::testing::shared() else { return };
    let url = pg.database();
    let flags = ["--exempt-loopback", "false"];
    let (first, second) =
        (Server::start_with_db(Path::new(&url), &flags), Server::start_with_db(Path::new(&url), &flags));
    let other_url = pg.database();
    let other = Server::start_with_db(Path::new(&other_url), &flags);
    let cloak = |server: &Server| {
        let _ann = irc_with_caps(server.irc.unwrap(), "ann", "");
        let mut bob = irc_with_caps(server.irc.unwrap(), "bob", "");
        bob.line("WHOIS ann");
        let line = bob.expect(" 311 bob ann ");
        let host = line.split(' ').nth(5).unwrap().to_owned();
        assert!(host.ends_with(".cloak") && !host.contains("127.0.0.1"), "{line}");
        host
    };
    let shared = cloak(&first);
    assert_eq!(cloak(&second), shared);
    assert_ne!(cloak(&other), shared, "another database, another key");
}

/// Logs in to account `name` over the native protocol; the answer.
fn login(c: &mut Client, name: &str, password: &str, id: &str) -> serde_json::Value {
    c.line(&format!(r#"{{"type":"login","name":"{name}","password":"{password}","id":"{id}"}}"#));
    loop {
        let v = json(&c.next().expect("an answer"));
        if v["id"] == id && (v["type"] == "account" || v["type"] == "error") {
            return v;
        }
    }
}

/// A direct connection to the test database, to check what natter stored.
fn postgres_client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}
