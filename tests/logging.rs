//! What the server logs about its clients: connections, logins, kicks and departures (never
//! what anyone wrote), as plain lines without colour codes when standard error is not a
//! terminal, or as JSON lines with `--log-format json`.

mod common;

use common::{Client, LoggedServer, native};

#[test]
fn clients_coming_and_going_are_logged_without_their_words() {
    let server = LoggedServer::start(&[]);
    let mut ann = native(server.tcp, "ann");
    let mut seen = server.until(&["logged in", "ann"]);
    ann.line(r##"{"type":"join","room":"#ops"}"##);
    ann.expect(r#""type":"joined""#);
    let mut bob = native(server.tcp, "bob");
    bob.line(r##"{"type":"join","room":"#ops"}"##);
    bob.expect(r#""type":"joined""#);
    ann.line(r##"{"type":"send","room":"#ops","text":"a secret plan"}"##);
    bob.expect("a secret plan");
    ann.line(r##"{"type":"kick","room":"#ops","nick":"bob","reason":"my private reason"}"##);
    bob.expect(r#""type":"kick""#);
    seen.extend(server.until(&["kicked", "bob"]));
    ann.line(r#"{"type":"quit","reason":"words of my own"}"#);
    assert!(ann.closed());
    seen.extend(server.until(&["logged out", "ann"]));
    assert!(seen.iter().any(|l| l.contains("connected") && l.contains("127.0.0.1")), "{seen:#?}");
    for line in &seen {
        assert!(!line.contains('\u{1b}'), "colour codes in a log that is not a terminal: {line:?}");
        for words in ["a secret plan", "my private reason", "words of my own"] {
            assert!(!line.contains(words), "a user's words in the log: {line}");
        }
    }
}

#[test]
fn json_logs_are_one_object_per_line() {
    let server = LoggedServer::start(&["--log-format", "json"]);
    let _ann = native(server.tcp, "ann");
    let seen = server.until(&["logged in", "ann"]);
    for line in &seen {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(value.get("fields").is_some(), "{line}");
    }
    // A flood is logged as the reason the server ended the session.
    let mut flood = Client::connect(server.tcp);
    flood.line("flood");
    flood.expect("Hello flood");
    let burst: String = (0..300).map(|i| format!("spam {i}\n")).collect();
    flood.send(burst.as_bytes());
    let seen = server.until(&["flooding"]);
    assert!(seen.iter().all(|l| !l.contains("spam")), "{seen:#?}");
}

#[test]
fn wrong_passwords_are_logged_with_the_address_never_what_was_typed() {
    let server = LoggedServer::start(&["--password", "sesame"]);
    let mut guesser = Client::connect(server.tcp);
    guesser.line(r#"{"type":"hello","nick":"ann","password":"hunter2-guess"}"#);
    guesser.expect(r#""code":"bad_password""#);
    let seen = server.until(&["wrong password", "127.0.0.1", "server password"]);
    let line = seen.last().unwrap();
    assert!(line.contains("WARN") && line.contains("failures=1"), "{line}");
    // The right one logs in, and neither password is ever written.
    let _ann = {
        let mut c = Client::connect(server.tcp);
        c.line(r#"{"type":"hello","nick":"ann","password":"sesame"}"#);
        c.expect(r#""type":"welcome""#);
        c
    };
    let mut seen = seen;
    seen.extend(server.until(&["logged in", "ann"]));
    for line in &seen {
        assert!(!line.contains("hunter2") && !line.contains("sesame"), "a password in the log: {line}");
    }
}
