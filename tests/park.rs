//! Parked connections against the real server (`--park-after 1`): an idle connection gives
//! up its task, and comes back for a delivery, for its peer's input (good or bad), for its
//! peer's hang-up, and for the server's goodbye, in the doors that park (native, text, IRC).
//! Whether connections are parked is read from `/metrics` (`natter_parked_connections`),
//! which is the barrier the tests wait on.

mod common;

use common::{Server, irc_with_caps, json, native, text, wait_parked};

fn server() -> Server {
    Server::start(&["--park-after", "1"])
}

#[test]
fn parked_connections_wake_for_a_delivery_and_for_their_own_input() {
    let server = server();
    let mut ann = native(server.tcp, "ann");
    let mut bob = native(server.tcp, "bob");
    wait_parked(server.tcp, 2);
    // A delivery wakes both.
    let mut carl = native(server.tcp, "carl");
    ann.expect(r##""type":"join","room":"#lobby","nick":"carl""##);
    bob.expect(r##""type":"join","room":"#lobby","nick":"carl""##);
    carl.line(r##"{"type":"send","room":"#lobby","text":"wake up","id":1}"##);
    carl.expect(r#""type":"ack""#);
    assert!(ann.expect(r#""type":"message""#).contains("wake up"));
    assert!(bob.expect(r#""type":"message""#).contains("wake up"));
    wait_parked(server.tcp, 3);
    // A parked sender's own line wakes it: it is read, answered and fanned out.
    ann.line(r##"{"type":"send","room":"#lobby","text":"from the park","id":2}"##);
    assert_eq!(json(&ann.expect(r#""type":"ack""#))["id"], 2);
    assert!(bob.expect(r#""type":"message""#).contains("from the park"));
    assert!(carl.expect(r#""type":"message""#).contains("from the park"));
    wait_parked(server.tcp, 3);
    // And again, many times over: nothing is lost or doubled on the way in and out. Each
    // batch is sent by a parked carl to a parked ann and bob; carl's pong (answered by the
    // hub after his sends) says the batch is fanned out, before all three park again.
    for batch in 0..4 {
        for i in batch * 5..batch * 5 + 5 {
            carl.line(&format!(r##"{{"type":"send","room":"#lobby","text":"again {i}"}}"##));
        }
        carl.ping();
        wait_parked(server.tcp, 3);
    }
    for client in [&mut ann, &mut bob] {
        let seen = client.ping();
        let texts: Vec<_> = seen.iter().filter(|l| l.contains("again ")).collect();
        assert_eq!(texts.len(), 20, "{seen:#?}");
        for (i, line) in texts.iter().enumerate() {
            assert!(line.contains(&format!("\"again {i}\"")), "out of order: {seen:#?}");
        }
    }
}

#[test]
fn bad_input_from_a_parked_connection_is_answered_as_ever() {
    let server = server();
    let mut ann = native(server.tcp, "ann");
    wait_parked(server.tcp, 1);
    ann.line("{not json");
    assert_eq!(json(&ann.expect("error"))["code"], "invalid_json");
    wait_parked(server.tcp, 1);
    ann.send(b"{\"type\":\"send\",\"room\":\"#lobby\",\"text\":\"\xff\xfe\"}\n");
    assert_eq!(json(&ann.expect("error"))["code"], "invalid_utf8");
    wait_parked(server.tcp, 1);
    ann.line(&format!(r##"{{"type":"send","room":"#lobby","text":"{}"}}"##, "x".repeat(20_000)));
    assert_eq!(json(&ann.expect("error"))["code"], "too_long");
    wait_parked(server.tcp, 1);
    // Half a line wakes it, and waits for the rest (native frames wait for the newline's
    // pause, as ever).
    ann.send(br##"{"type":"send","room":"#lobby","##);
    ann.send(b"\"text\":\"whole\",\"id\":9}\n");
    assert_eq!(json(&ann.expect(r#""type":"ack""#))["id"], 9);
}

#[test]
fn a_parked_peer_that_hangs_up_quits_and_the_parked_are_told_goodbye() {
    let mut server = server();
    let mut ann = native(server.tcp, "ann");
    let bob = native(server.tcp, "bob");
    let mut cat = text(server.tcp, "cat");
    wait_parked(server.tcp, 3);
    drop(bob);
    let quit = json(&ann.expect(r#""type":"quit""#));
    assert_eq!((quit["nick"].as_str(), quit["reason"].as_str()), (Some("bob"), Some("connection lost")));
    assert!(cat.expect("<-- bob quit").contains("connection lost"));
    wait_parked(server.tcp, 2);
    server.signal("-TERM");
    ann.expect(r#"{"type":"bye","reason":"server shutting down"}"#);
    assert!(ann.closed());
    cat.expect("bye: server shutting down");
    assert!(cat.closed());
    assert!(server.wait_exit().success());
}

#[test]
fn a_parked_irc_client_is_woken_by_a_message_and_answers_its_pings() {
    let server = server();
    let irc = server.irc.unwrap();
    let mut ann = irc_with_caps(irc, "ann", "");
    let mut bob = text(server.tcp, "bob");
    ann.expect("JOIN");
    wait_parked(server.tcp, 2);
    bob.line("hello irc");
    ann.expect("PRIVMSG #lobby :hello irc");
    wait_parked(server.tcp, 2);
    let seen = ann.irc_ping();
    assert!(seen.is_empty(), "{seen:#?}");
    ann.line("PRIVMSG #lobby :and back");
    bob.expect("<ann> and back");
}
