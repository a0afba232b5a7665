//! The chat-room tutorial's JSON client (SEEDS.md system 4) against natter, played exactly as
//! that program behaves on the wire: one `send` per request and no newline; one `recv(1024)`
//! for the greeting before logging in; then a receive thread that does `recv(1024)` and parses
//! each read as one JSON object, printing its `msg` (a read that is not exactly one object with
//! a `msg`, or is 1024 bytes or more, would kill it: here it fails the test).

mod common;

use common::{Server, json, native};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

/// The tutorial client: a socket to send on and the objects its receive thread read.
struct TutorialClient {
    stream: TcpStream,
    objects: mpsc::Receiver<Value>,
    greeting: String,
}

impl TutorialClient {
    /// Connects and reads the greeting with one `recv(1024)`, as the client does first.
    fn connect(addr: SocketAddr) -> TutorialClient {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).expect("a greeting before login");
        let greeting = String::from_utf8_lossy(&buf[..n]).into_owned();
        let (tx, objects) = mpsc::channel();
        let mut reader = stream.try_clone().unwrap();
        reader.set_read_timeout(None).unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                assert!(n < 1024, "a read of {n} bytes: the client's recv(1024) would cut it");
                let read = &buf[..n];
                let object: Value = serde_json::from_slice(read).unwrap_or_else(|e| {
                    panic!("json.loads fails on this read ({e}): {:?}", String::from_utf8_lossy(read))
                });
                assert!(object.get("msg").is_some_and(Value::is_string), "no msg: {object}");
                if tx.send(object).is_err() {
                    return;
                }
            }
        });
        TutorialClient { stream, objects, greeting }
    }

    /// One `send` of one object, no newline.
    fn send(&mut self, object: Value) {
        self.stream.write_all(object.to_string().as_bytes()).unwrap();
    }

    /// The objects read until one of `kind` whose `msg` contains `needle` (a barrier).
    fn until(&self, kind: &str, needle: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let object = self.objects.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| {
                panic!("no {kind:?} object with {needle:?}; saw {seen:#?}");
            });
            let hit = object["type"] == kind && object["msg"].as_str().unwrap().contains(needle);
            seen.push(object);
            if hit {
                return seen;
            }
        }
    }

    /// Logs in as `nick` and expects success.
    fn login(&mut self, nick: &str) -> Vec<Value> {
        self.send(serde_json::json!({"type": "login", "msg": nick}));
        let seen = self.until("login", nick);
        assert_eq!(seen.last().unwrap()["success"], true, "{seen:#?}");
        seen
    }
}

fn msgs(objects: &[Value], kind: &str) -> Vec<String> {
    objects.iter().filter(|o| o["type"] == kind).map(|o| o["msg"].as_str().unwrap().to_string()).collect()
}

#[test]
fn the_tutorial_json_client_holds_a_conversation() {
    let server = Server::start(&["--msg-rate", "0"]);
    let mut ann = TutorialClient::connect(server.tcp);
    assert!(ann.greeting.contains("Welcome to natter"), "{:?}", ann.greeting);
    ann.login("ann");
    // No history burst: the room is announced in one object.
    ann.until("notice", "you are in #lobby");

    // A taken nickname is refused as a login, and the client simply tries another.
    let mut bob = TutorialClient::connect(server.tcp);
    bob.send(serde_json::json!({"type": "login", "msg": "ann"}));
    let refused = bob.until("login", "taken");
    assert_eq!(refused.last().unwrap()["success"], false);
    bob.login("bob");
    ann.until("notice", "bob joined #lobby");

    // Group chat both ways, with a native client in the same room.
    let mut carl = native(server.tcp, "carl");
    bob.send(serde_json::json!({"type": "broadcast", "msg": "hello all"}));
    ann.until("broadcast", "bob: hello all");
    let line = carl.expect("hello all");
    assert_eq!(json(&line)["from"], "bob");
    carl.line(r##"{"type":"send","room":"#lobby","text":"hi from carl"}"##);
    ann.until("broadcast", "carl: hi from carl");
    bob.until("broadcast", "carl: hi from carl");

    // Private messages, and one to nobody.
    ann.send(serde_json::json!({"type": "sendto", "nickname": "bob", "msg": "psst"}));
    bob.until("sendto", "ann (private): psst");
    ann.send(serde_json::json!({"type": "sendto", "nickname": "nobody", "msg": "hello?"}));
    let nobody = ann.until("sendto", "nobody is not online");
    assert_eq!(nobody.last().unwrap()["success"], false);

    // /ls and /help.
    ann.send(serde_json::json!({"type": "ls", "msg": null}));
    ann.until("ls", "online (3): ann, bob, carl");
    ann.send(serde_json::json!({"type": "help", "msg": null}));
    ann.until("help", "@nick text");

    // /i: group messages are held back, private ones still arrive; the client toggles its flag
    // on each `ignore` answer, so there is exactly one per toggle.
    ann.send(serde_json::json!({"type": "ignore", "msg": null}));
    let on = ann.until("ignore", "ignore mode on");
    assert_eq!(msgs(&on, "ignore").len(), 1);
    carl.line(r##"{"type":"send","room":"#lobby","text":"while ann ignores"}"##);
    bob.until("broadcast", "while ann ignores");
    bob.send(serde_json::json!({"type": "sendto", "nickname": "ann", "msg": "still reaches you"}));
    let meanwhile = ann.until("sendto", "still reaches you");
    assert!(msgs(&meanwhile, "broadcast").is_empty(), "{meanwhile:#?}");
    ann.send(serde_json::json!({"type": "ignore", "msg": null}));
    ann.until("ignore", "ignore mode off");

    // A long message reaches the client as several objects, each one read, in order.
    let long: String = "語 ".repeat(1200);
    carl.line(&serde_json::json!({"type": "send", "room": "#lobby", "text": long}).to_string());
    let want = format!("carl: {long}");
    let mut joined = String::new();
    let mut pieces = 0;
    while joined.len() < want.len() {
        let object = ann.objects.recv_timeout(Duration::from_secs(5)).expect("the rest of the long message");
        assert_eq!(object["type"], "broadcast", "{object}");
        joined.push_str(object["msg"].as_str().unwrap());
        pieces += 1;
    }
    assert_eq!(joined, want);
    assert!(pieces >= 4, "{} bytes in {pieces} objects", want.len());

    // Leaving (the client's socket closes; its receive thread holds a clone, so shut it down):
    // the others are told, in words.
    bob.stream.shutdown(std::net::Shutdown::Both).unwrap();
    ann.until("notice", "bob went offline");
}

#[test]
fn bad_input_from_a_tutorial_client_is_answered_in_its_dialect() {
    let server = Server::start(&[]);
    let mut ann = TutorialClient::connect(server.tcp);
    ann.login("ann");
    ann.stream.write_all(b"{not json").unwrap();
    let error = ann.until("error", "JSON");
    assert_eq!(error.last().unwrap()["success"], false);
    // Invalid UTF-8, then a frame of an unknown type: each answered, the session goes on.
    ann.stream.write_all(b"{\"type\":\"broadcast\",\"msg\":\"\xff\xfe\"}").unwrap();
    ann.until("error", "UTF-8");
    ann.send(serde_json::json!({"type": "dance", "msg": "now"}));
    ann.until("error", "dance");
    ann.send(serde_json::json!({"type": "ls", "msg": null}));
    ann.until("ls", "online (1): ann");
}
