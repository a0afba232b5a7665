//! Resume tokens end to end, on the real server over real sockets: a client that logged in
//! to an account asks for a token and logs in with it again (after a reconnect, after a
//! restart of the server) without the password, keeping its registered nickname under nick
//! protection; logging out, changing the password and `natter user passwd|del` revoke tokens;
//! wrong, garbage and oversized tokens get one clear error and count in the login throttle;
//! neither the log nor the database ever holds a token.

mod common;

use common::{Client, LoggedServer, Server, json, native};

/// The frame answering request `id` (an `account`, `resume_token` or `error`).
fn answer(c: &mut Client, id: &str) -> serde_json::Value {
    loop {
        let line = c.next().expect("an answer");
        let v = json(&line);
        if v["id"] == id && ["account", "resume_token", "error"].contains(&v["type"].as_str().unwrap_or("")) {
            return v;
        }
    }
}

/// A native client logged in as `nick` that registers it with `password`.
fn registered(server: &Server, nick: &str, password: &str) -> Client {
    let mut c = native(server.tcp, nick);
    c.line(&format!(r#"{{"type":"register","password":"{password}","id":"r"}}"#));
    assert_eq!(answer(&mut c, "r")["change"], "registered");
    c
}

/// Asks for a resume token; returns it.
fn token_of(c: &mut Client) -> String {
    c.line(r#"{"type":"resume_token","id":"t"}"#);
    let v = answer(c, "t");
    assert_eq!(v["type"], "resume_token", "{v}");
    v["token"].as_str().expect("a token").to_string()
}

/// Connects and sends `hello` as `nick` with `resume`; returns the client and every frame up
/// to and including the answer to the resume (an `account` or an `error` with id "h").
fn resume(addr: std::net::SocketAddr, nick: &str, token: &str) -> (Client, Vec<serde_json::Value>) {
    let mut c = Client::connect(addr);
    c.line(&serde_json::json!({"type": "hello", "nick": nick, "resume": token, "id": "h"}).to_string());
    let mut seen = Vec::new();
    loop {
        let v = json(&c.next().expect("an answer to the resume"));
        let done = v["id"] == "h" && (v["type"] == "account" || v["type"] == "error");
        seen.push(v);
        if done {
            return (c, seen);
        }
    }
}

/// The last frame of a resume: its answer.
fn outcome(seen: &[serde_json::Value]) -> &serde_json::Value {
    seen.last().unwrap()
}

#[test]
fn a_token_logs_in_again_after_a_reconnect_and_a_restart_and_keeps_the_registered_nick() {
    // Nick protection at its default (enforce, with a grace time shorter than the test).
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("natter.db");
    let mut server = Server::start_with_db(&db, &["--nick-grace", "1"]);
    let mut ann = registered(&server, "ann", "correct horse");
    let token = token_of(&mut ann);
    assert_eq!(token.len(), 43, "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
    ann.line(r#"{"type":"quit"}"#);
    assert!(ann.closed());

    let (mut back, seen) = resume(server.tcp, "ann", &token);
    assert_eq!(seen[0]["type"], "welcome", "{seen:#?}");
    assert_eq!(seen[0]["nick"], "ann");
    let v = outcome(&seen);
    assert_eq!((v["change"].as_str(), v["account"].as_str()), (Some("logged_in"), Some("ann")), "{v}");
    // Logged in before nick protection could speak: no warning, and no rename after the
    // grace time (the lobby's join, held behind the answer, follows it).
    assert!(seen.iter().all(|f| f["type"] != "nick_protected"), "{seen:#?}");
    back.expect(r#""type":"joined""#);
    back.line(r#"{"type":"whois","nick":"ann","id":"w"}"#);
    let who = json(&back.expect(r#""id":"w""#));
    assert_eq!(who["user"]["account"], "ann", "{who}");
    // The token keeps working for the same session's client (its client reconnects again).
    back.line(r#"{"type":"quit"}"#);
    assert!(back.closed());

    // A restart of the server: the token is in the store.
    server.signal("-TERM");
    assert!(server.wait_exit().success());
    drop(server);
    let server = Server::start_with_db(&db, &["--nick-grace", "1"]);
    let (mut again, seen) = resume(server.tcp, "ann", &token);
    assert_eq!(outcome(&seen)["change"], "logged_in", "{seen:#?}");
    assert!(seen.iter().all(|f| f["type"] != "nick_protected"), "{seen:#?}");
    again.ping();
}

#[test]
fn logging_out_revokes_that_sessions_token_and_a_password_change_revokes_them_all() {
    let server = Server::start(&["--nick-protection", "off"]);
    let mut phone = registered(&server, "ann", "correct horse");
    let phone_token = token_of(&mut phone);
    let mut laptop = native(server.tcp, "ann_laptop");
    laptop.line(r#"{"type":"login","name":"ann","password":"correct horse","id":"l"}"#);
    assert_eq!(answer(&mut laptop, "l")["change"], "logged_in");
    let laptop_token = token_of(&mut laptop);
    assert_ne!(phone_token, laptop_token);
    // Asking again replaces the session's token: the older one is revoked.
    let newer = token_of(&mut laptop);
    let (_, seen) = resume(server.tcp, "x1", &laptop_token);
    assert_eq!(outcome(&seen)["code"], "bad_resume_token", "{seen:#?}");

    // The laptop logs out: its token is revoked before the answer; the phone's still works.
    laptop.line(r#"{"type":"logout","id":"o"}"#);
    assert_eq!(answer(&mut laptop, "o")["change"], "logged_out");
    let (_, seen) = resume(server.tcp, "x2", &newer);
    assert_eq!(outcome(&seen)["code"], "bad_resume_token", "{seen:#?}");
    let (mut resumed, seen) = resume(server.tcp, "x3", &phone_token);
    assert_eq!(outcome(&seen)["change"], "logged_in", "{seen:#?}");

    // A session that resumed holds that token: changing the password revokes every token,
    // and a new one can be asked for at once.
    resumed.line(r#"{"type":"passwd","old":"correct horse","new":"battery staple","id":"p"}"#);
    assert_eq!(answer(&mut resumed, "p")["change"], "password_changed");
    let (_, seen) = resume(server.tcp, "x4", &phone_token);
    assert_eq!(outcome(&seen)["code"], "bad_resume_token", "{seen:#?}");
    let fresh = token_of(&mut resumed);
    let (_, seen) = resume(server.tcp, "x5", &fresh);
    assert_eq!(outcome(&seen)["change"], "logged_in", "{seen:#?}");

    // Not logged in: no token.
    let mut guest = native(server.tcp, "guest");
    guest.line(r#"{"type":"resume_token","id":"t"}"#);
    assert_eq!(answer(&mut guest, "t")["code"], "not_logged_in");
}

/// Runs `natter user ARGS --db DB` with `stdin`; its standard output when it succeeded.
fn user(db: &std::path::Path, args: &[&str], stdin: &str) -> Option<String> {
    let (ok, out, _) = common::user_output(db, args, stdin);
    ok.then_some(out)
}

#[test]
fn natter_user_passwd_and_del_revoke_the_accounts_tokens_while_the_server_runs() {
    let server = Server::start(&["--nick-protection", "off"]);
    let mut ann = registered(&server, "ann", "correct horse");
    let token = token_of(&mut ann);
    let said = user(&server.db, &["passwd", "ann"], "battery staple\n").expect("natter user passwd");
    assert!(said.contains("logged out 1 saved login(s) of ann"), "{said}");
    let (_, seen) = resume(server.tcp, "x1", &token);
    assert_eq!(outcome(&seen)["code"], "bad_resume_token", "{seen:#?}");

    let mut c = native(server.tcp, "someone");
    c.line(r#"{"type":"login","name":"ann","password":"battery staple","id":"l"}"#);
    assert_eq!(answer(&mut c, "l")["change"], "logged_in");
    let token = token_of(&mut c);
    assert!(user(&server.db, &["del", "ann"], "").is_some());
    let (_, seen) = resume(server.tcp, "x2", &token);
    assert_eq!(outcome(&seen)["code"], "bad_resume_token", "{seen:#?}");
}

#[test]
fn wrong_garbage_and_oversized_tokens_get_one_clear_error_and_are_throttled() {
    let server = Server::start(&["--nick-grace", "30"]);
    let mut ann = registered(&server, "ann", "correct horse");
    let good = token_of(&mut ann);
    ann.line(r#"{"type":"quit"}"#);
    assert!(ann.closed());

    // Shaped like a token but never issued; not base64; far too long (within the line limit);
    // empty.
    let never_issued = "A".repeat(42) + "A";
    let oversized = "x".repeat(10_000);
    for (i, bad) in [never_issued.as_str(), "not a token!", oversized.as_str(), ""].into_iter().enumerate() {
        let (mut c, seen) = resume(server.tcp, "ann", bad);
        assert_eq!(seen[0]["type"], "welcome", "the session itself is not refused: {seen:#?}");
        let v = outcome(&seen);
        assert_eq!(v["code"], "bad_resume_token", "attempt {i}: {v}");
        let message = v["message"].as_str().unwrap();
        assert!(message.contains("/login"), "{message}");
        assert!(bad.is_empty() || !message.contains(bad), "never echoed: {message}");
        // Not logged in: the registered nickname's protection starts, told after the refusal
        // and the lobby's join, whether the token was refused at once or after a lookup.
        let rest = c.until(r#""type":"nick_protected""#);
        assert!(rest.last().is_some_and(|l| l.contains(r#""type":"joined""#)), "attempt {i}: {rest:#?}");
        c.line(r#"{"type":"quit"}"#);
        assert!(c.closed());
    }
    // Three free mistakes from this address, and a fourth: the next attempt, even with a good
    // token, waits.
    let (_, seen) = resume(server.tcp, "ann", &good);
    let v = outcome(&seen);
    assert_eq!(v["code"], "too_many_attempts", "{v}");
    // A token together with a password is a malformed hello; the server is still there.
    let mut both = Client::connect(server.tcp);
    both.line(&format!(
        r#"{{"type":"hello","nick":"zed","account":"ann","account_password":"correct horse","resume":"{good}","id":"h"}}"#
    ));
    let v = json(&both.expect(r#""type":"error""#));
    assert_eq!(v["code"], "bad_frame", "{v}");
    both.line(r#"{"type":"hello","nick":"zed","resume":12345,"id":"h2"}"#);
    let v = json(&both.expect(r#""type":"error""#));
    assert_eq!(v["code"], "bad_frame", "{v}");
    both.ping();
}

#[test]
fn tokens_are_never_logged() {
    let server = LoggedServer::start(&["--nick-protection", "off"]);
    let mut ann = native(server.tcp, "ann");
    ann.line(r#"{"type":"register","password":"correct horse","id":"r"}"#);
    assert_eq!(answer(&mut ann, "r")["change"], "registered");
    let token = token_of(&mut ann);
    let (_, seen) = resume(server.tcp, "ann2", &token);
    assert_eq!(outcome(&seen)["change"], "logged_in");
    let mut logged = server.until(&["logged in to an account with a resume token"]);
    let (_, seen) = resume(server.tcp, "ann3", &("B".repeat(42) + "A"));
    assert_eq!(outcome(&seen)["code"], "bad_resume_token");
    logged.extend(server.until(&["wrong resume token"]));
    ann.ping();
    logged.extend(server.pending());
    assert!(logged.iter().all(|l| !l.contains(&token)), "{logged:#?}");
}

#[test]
fn the_database_keeps_only_digests_of_tokens() {
    let server = Server::start(&["--nick-protection", "off"]);
    let mut ann = registered(&server, "ann", "correct horse");
    let token = token_of(&mut ann);
    let (_, seen) = resume(server.tcp, "ann2", &token);
    assert_eq!(outcome(&seen)["change"], "logged_in");
    // Neither the database nor its write-ahead log holds the token, in either encoding.
    let raw = base64_url_decode(&token);
    let wal = std::path::PathBuf::from(format!("{}-wal", server.db.display()));
    let mut read = 0;
    for file in [server.db.clone(), wal] {
        let Ok(bytes) = std::fs::read(&file) else { continue };
        read += bytes.len();
        assert!(!contains(&bytes, token.as_bytes()), "{file:?} holds the token");
        assert!(!contains(&bytes, &raw), "{file:?} holds the token's bytes");
    }
    assert!(read > 0, "the database files were read");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// URL-safe base64 without padding, decoded (the test's own, to stay independent of the
/// server's).
fn base64_url_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => panic!("not base64url: {c}"),
    };
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        bits = (bits << 6) | u32::from(value(c));
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}
