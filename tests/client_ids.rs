//! Client message ids (`cid`) belong to the client that sent them, never to a nickname: the
//! attack of issue 11, against the real binary over the native protocol. A newcomer who took a
//! departed user's nick and sent with that user's `cid` got the original's `ack` (a
//! `duplicate`), and the owner's later message with a `cid` the newcomer had used first was
//! swallowed.

mod common;
use common::*;

/// A native client logged in as `nick` with `secret` (or none); welcome and lobby consumed.
fn native_with_secret(addr: std::net::SocketAddr, nick: &str, secret: Option<&str>) -> Client {
    let mut c = Client::connect(addr);
    let secret = secret.map(|s| format!(r#","client_secret":"{s}""#)).unwrap_or_default();
    c.line(&format!(r#"{{"type":"hello","nick":"{nick}"{secret}}}"#));
    c.expect(r#""type":"welcome""#);
    c.expect(r#""type":"joined""#);
    c
}

/// Sends `text` to the lobby with `cid` and returns the ack.
fn send(c: &mut Client, text: &str, cid: &str) -> serde_json::Value {
    c.line(&format!(r##"{{"type":"send","room":"#lobby","text":"{text}","cid":"{cid}"}}"##));
    json(&c.expect(r#""type":"ack""#))
}

/// Quits `c` and waits until `witness` has seen it go (the nick is free then).
fn quit(mut c: Client, nick: &str, witness: &mut Client) {
    c.line(r#"{"type":"quit"}"#);
    c.expect(r#""type":"bye""#);
    witness.expect(&format!(r#""type":"quit","nick":"{nick}""#));
}

#[test]
fn a_newcomer_with_a_departed_users_nick_gets_no_ack_of_theirs_and_swallows_nothing() {
    let server = Server::start(&[]);
    let mut bob = native(server.tcp, "bob");
    let mut ann = native(server.tcp, "ann");
    let first = send(&mut ann, "hi", "a-1");
    assert_eq!(first["duplicate"], serde_json::Value::Null);
    bob.expect(r#""text":"hi""#);
    quit(ann, "ann", &mut bob);

    // Mallory takes the nick and sends with ann's id: her own message, not ann's ack.
    let mut mallory = native(server.tcp, "ann");
    let ack = send(&mut mallory, "evil", "a-1");
    assert_eq!(ack["duplicate"], serde_json::Value::Null, "ann's ack leaked: {ack}");
    assert_ne!(ack["mid"], first["mid"]);
    bob.expect(r#""text":"evil""#);
    // She also uses the id ann will use next.
    send(&mut mallory, "planted", "a-2");
    bob.expect(r#""text":"planted""#);
    quit(mallory, "ann", &mut bob);

    // Ann's next message is delivered, not taken for a resend of mallory's.
    let mut ann = native(server.tcp, "ann");
    let ack = send(&mut ann, "mine", "a-2");
    assert_eq!(ack["duplicate"], serde_json::Value::Null, "ann's message was swallowed: {ack}");
    bob.expect(r#""text":"mine""#);
}

#[test]
fn a_client_secret_keeps_ids_across_reconnects_and_nicks_and_from_others() {
    let server = Server::start(&[]);
    let mut bob = native(server.tcp, "bob");
    let secret = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let mut ann = native_with_secret(server.tcp, "ann", Some(secret));
    let first = send(&mut ann, "once", "k-1");
    bob.expect(r#""text":"once""#);
    // The connection drops (no quit); ann comes back with her secret and resends.
    drop(ann);
    bob.expect(r#""type":"quit","nick":"ann""#);
    let mut ann = native_with_secret(server.tcp, "ann", Some(secret));
    let again = send(&mut ann, "once", "k-1");
    assert_eq!((again["duplicate"].as_bool(), &again["mid"]), (Some(true), &first["mid"]), "{again}");
    // Under another nick too: the id is the client's.
    ann.line(r#"{"type":"nick","nick":"ann_"}"#);
    ann.expect(r#""new":"ann_""#);
    assert_eq!(send(&mut ann, "once", "k-1")["duplicate"], true);
    // Someone with another secret, or none, does not share it.
    let mut other = native_with_secret(server.tcp, "zed", Some("another client's secret, long enough"));
    assert_eq!(send(&mut other, "mine", "k-1")["duplicate"], serde_json::Value::Null);
    let mut plain = native(server.tcp, "yan");
    assert_eq!(send(&mut plain, "mine too", "k-1")["duplicate"], serde_json::Value::Null);
    // bob saw "once" once: a second copy would have reached him before these.
    let seen = bob.until(r#""text":"mine too""#);
    assert!(!seen.iter().any(|l| l.contains(r#""text":"once""#)), "{seen:#?}");
}

#[test]
fn a_client_secret_of_the_wrong_length_is_refused_with_what_it_must_be() {
    let server = Server::start(&[]);
    let mut c = Client::connect(server.tcp);
    for bad in ["short".to_string(), "x".repeat(129)] {
        c.line(&format!(r#"{{"type":"hello","nick":"ann","client_secret":"{bad}","id":1}}"#));
        let e = json(&c.expect(r#""type":"error""#));
        assert_eq!(e["code"], "bad_frame");
        assert_eq!(
            e["message"],
            "client_secret must be 16 to 128 bytes: a random string your client keeps for its lifetime"
        );
    }
    c.line(r#"{"type":"hello","nick":"ann","client_secret":"sixteen bytes ok","id":2}"#);
    c.expect(r#""type":"welcome""#);
}
