//! `--udp-format tutorial`: the socket-chat tutorials' UDP group-chat client, played here by a
//! raw `UdpSocket` that behaves exactly like it, talks with natter users of every kind.
//!
//! The client sends each typed line as one datagram, reads with `recvfrom(1024)`, decodes UTF-8
//! and splits on `____`: two parts are "WHO sent TEXT", three or more "WHO went offline", and a
//! datagram without `____` crashes it. Every datagram these tests receive is checked against
//! that (and against being longer than the 1024 bytes the client reads).

mod common;

use common::{Client, Server, WAIT, json, native};
use std::net::{SocketAddr, UdpSocket};

/// What the tutorial client makes of one datagram.
#[derive(Debug, PartialEq, Eq)]
enum Shown {
    /// "WHO sent TEXT".
    Sent(String, String),
    /// "WHO went offline".
    Offline(String),
}

/// The tutorial's UDP group-chat client.
struct Tutorial {
    socket: UdpSocket,
    server: SocketAddr,
}

impl Tutorial {
    /// Joins as `nick` and waits until the server has answered (a `/ls` barrier).
    fn join(server: SocketAddr, nick: &str) -> Tutorial {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(WAIT)).unwrap();
        let t = Tutorial { socket, server };
        t.type_line(&format!("/nick {nick}"));
        let seen = t.barrier();
        assert!(
            seen.contains(&Shown::Sent(
                "natter".into(),
                format!(
                    "Hello {nick}! Plain lines go to the room; @nick text is private; /help lists commands."
                )
            )),
            "{seen:#?}"
        );
        t
    }

    /// One typed line, one datagram.
    fn type_line(&self, line: &str) {
        self.send_raw(line.as_bytes());
    }

    fn send_raw(&self, bytes: &[u8]) {
        self.socket.send_to(bytes, self.server).unwrap();
    }

    /// The next datagram as the client shows it, or None on timeout. Panics on anything the
    /// tutorial client could not take: more than 1024 bytes, not UTF-8, no `____`.
    fn recv(&self) -> Option<Shown> {
        // Peek with room to spare first, to see a datagram the client's 1024-byte read would cut.
        let mut big = vec![0u8; 65536];
        let (size, _) = self.socket.peek_from(&mut big).ok()?;
        assert!(size <= 1024, "a {size}-byte datagram: the tutorial client reads 1024 bytes");
        let mut buf = [0u8; 1024];
        let (n, _) = self.socket.recv_from(&mut buf).unwrap();
        let text =
            std::str::from_utf8(&buf[..n]).unwrap_or_else(|e| panic!("not UTF-8 ({e}): {:?}", &buf[..n]));
        let parts: Vec<&str> = text.split("____").collect();
        match parts.len() {
            0 | 1 => panic!("no ____ in {text:?}: the tutorial client crashes on it"),
            2 => Some(Shown::Sent(parts[0].into(), parts[1].into())),
            _ => Some(Shown::Offline(parts[0].into())),
        }
    }

    /// Reads until `want` is shown; returns what came before. Panics if it never comes.
    fn until(&self, want: &Shown) -> Vec<Shown> {
        let mut seen = Vec::new();
        while let Some(s) = self.recv() {
            if &s == want {
                return seen;
            }
            seen.push(s);
        }
        panic!("never shown: {want:?}; saw {seen:#?}");
    }

    /// Reads until a datagram from `who` whose text starts with `start`; returns its text.
    fn expect_from(&self, who: &str, start: &str) -> String {
        let mut seen = Vec::new();
        while let Some(s) = self.recv() {
            if let Shown::Sent(w, text) = &s
                && w == who
                && text.starts_with(start)
            {
                return text.clone();
            }
            seen.push(s);
        }
        panic!("nothing from {who} starting {start:?}; saw {seen:#?}");
    }

    /// `/ls`, and everything shown until its answer: the server answers in order, so all it
    /// sent before is in the result.
    fn barrier(&self) -> Vec<Shown> {
        self.type_line("/ls");
        let mut seen = Vec::new();
        while let Some(s) = self.recv() {
            if let Shown::Sent(w, text) = &s
                && w == "natter"
                && text.starts_with("online (")
            {
                return seen;
            }
            seen.push(s);
        }
        panic!("no answer to /ls; saw {seen:#?}");
    }
}

fn say(c: &mut Client, text: &str) {
    c.line(&serde_json::json!({"type": "send", "room": "#lobby", "text": text}).to_string());
}

fn tutorial_server() -> Server {
    Server::start(&["--udp-format", "tutorial"])
}

#[test]
fn lobby_talk_from_tcp_and_udp_reaches_the_tutorial_client() {
    let server = tutorial_server();
    let udp = server.udp.unwrap();
    let tut = Tutorial::join(udp, "tut");
    let mut ann = native(server.tcp, "ann");
    let bob = Tutorial::join(udp, "bob");

    say(&mut ann, "hello");
    tut.until(&Shown::Sent("ann".into(), "hello".into()));
    bob.until(&Shown::Sent("ann".into(), "hello".into()));

    bob.type_line("hi from udp");
    tut.until(&Shown::Sent("bob".into(), "hi from udp".into()));
    let m = json(&ann.expect(r#""type":"message""#));
    assert_eq!((m["from"].as_str(), m["text"].as_str()), (Some("bob"), Some("hi from udp")));

    bob.type_line("/me waves");
    tut.until(&Shown::Sent("bob".into(), "* bob waves".into()));

    // The separator typed inside a message cannot make the client think bob went offline.
    bob.type_line("a____b");
    assert_eq!(tut.expect_from("bob", "a"), "a\u{FF3F}\u{FF3F}\u{FF3F}\u{FF3F}b");
    // Whatever came in between (joins of ann and bob) had the shape too: recv checks it.
    tut.barrier();
}

/// Another user's escape sequences, bell, bidi override and line break reach the tutorial
/// client as visible text in one "WHO sent TEXT" datagram: nothing for its terminal to obey,
/// no line of its own.
#[test]
fn hostile_text_is_shown_not_obeyed() {
    let server = tutorial_server();
    let tut = Tutorial::join(server.udp.unwrap(), "tut");
    let mut eve = native(server.tcp, "eve");
    tut.barrier();
    say(&mut eve, "\u{1b}[2J\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{202e}txet\n*** fake notice\u{9b}0m");
    // Delivered to every member before eve's ack: then the barrier comes after it.
    eve.expect(r#""type":"ack""#);
    let seen = tut.barrier();
    assert_eq!(
        seen,
        vec![Shown::Sent(
            "eve".into(),
            "␛[2J␛]52;c;cm0gLXJmIH4=␇\u{202e}txet ⏎ *** fake notice�0m\u{202c}".into()
        )]
    );
}

#[test]
fn a_long_message_arrives_as_several_well_formed_datagrams() {
    let server = tutorial_server();
    let tut = Tutorial::join(server.udp.unwrap(), "tut");
    let mut ann = native(server.tcp, "ann");
    // 5000 bytes of one-, two-, three- and four-byte characters.
    let mut long = String::new();
    let alphabet = ['a', 'é', '漢', '😀'];
    let mut i = 0;
    while long.len() + 4 <= 5000 {
        long.push(alphabet[i % 4]);
        i += 1;
    }
    while long.len() < 5000 {
        long.push('z');
    }
    assert_eq!(long.len(), 5000);
    say(&mut ann, &long);
    let mut got = tut.expect_from("ann", "a");
    let mut datagrams = 1;
    while got.len() < long.len() {
        match tut.recv() {
            Some(Shown::Sent(who, text)) if who == "ann" => got.push_str(&text),
            other => panic!("expected the rest of ann's message, got {other:?}"),
        }
        datagrams += 1;
    }
    assert_eq!(got, long, "the pieces concatenate to the message");
    assert!(datagrams >= 5, "5000 bytes need at least 5 datagrams of 1024; got {datagrams}");
}

#[test]
fn private_messages_and_command_answers() {
    let server = tutorial_server();
    let tut = Tutorial::join(server.udp.unwrap(), "tut");
    let mut ann = native(server.tcp, "ann");

    ann.line(r#"{"type":"send","to":"tut","text":"psst"}"#);
    tut.until(&Shown::Sent("ann".into(), "psst".into()));

    tut.type_line("@ann back at you");
    let m = json(&ann.expect(r#""type":"message""#));
    assert_eq!(
        (m["from"].as_str(), m["to"].as_str(), m["text"].as_str()),
        (Some("tut"), Some("ann"), Some("back at you"))
    );
    // tut's own copy is a notice from natter, not a message from someone.
    assert!(tut.expect_from("natter", "[").contains("-> *ann* back at you"));

    tut.type_line("/ls");
    let online = tut.expect_from("natter", "online (");
    assert!(online.contains("ann") && online.contains("tut"), "{online}");

    // /help is many lines: one datagram each, all from natter.
    tut.type_line("/help");
    let help = tut.barrier();
    assert!(help.len() > 5, "{help:#?}");
    assert!(help.iter().all(|s| matches!(s, Shown::Sent(w, _) if w == "natter")), "{help:#?}");
}

#[test]
fn leaving_shows_as_went_offline() {
    let server = tutorial_server();
    let udp = server.udp.unwrap();
    let tut = Tutorial::join(udp, "tut");
    let bob = Tutorial::join(udp, "bob");
    let ann = native(server.tcp, "ann");
    tut.barrier();

    bob.type_line("quit");
    tut.until(&Shown::Offline("bob".into()));

    drop(ann);
    tut.until(&Shown::Offline("ann".into()));

    // The tutorial client's own `quit` leaves: the others see it.
    let mut cat = native(server.tcp, "cat");
    let cat_udp = Tutorial::join(udp, "cat2");
    cat.ping();
    tut.type_line("quit");
    cat_udp.until(&Shown::Offline("tut".into()));
    let quit = json(&cat.expect(r#""nick":"tut""#));
    assert_eq!(quit["type"].as_str(), Some("quit"), "{quit}");
    // tut is gone: cat's /ls no longer lists it.
    cat_udp.type_line("/ls");
    let online = cat_udp.expect_from("natter", "online (");
    assert!(!online.contains("tut"), "{online}");
}

#[test]
fn bad_input_is_answered_in_the_tutorial_shape() {
    let server = Server::start(&["--udp-format", "tutorial", "--max-line", "2000"]);
    let tut = Tutorial::join(server.udp.unwrap(), "tut");
    let mut ann = native(server.tcp, "ann");

    tut.type_line("/frobnicate now");
    let refusal = tut.expect_from("natter", "!!! ");
    assert!(refusal.contains("frobnicate"), "{refusal}");

    tut.send_raw(&[b'x'; 3000]);
    let refusal = tut.expect_from("natter", "!!! ");
    assert!(refusal.contains("2000"), "{refusal}");

    // Not UTF-8: decoded (GB18030 fallback), never a crash; the server still answers.
    tut.send_raw(b"\xff\xfe\xc3(");
    tut.barrier();

    tut.type_line("@ghost hello?");
    let refusal = tut.expect_from("natter", "!!! ");
    assert!(refusal.contains("ghost"), "{refusal}");

    // A nick ending in `_` still shows as one sender, and its leaving as offline.
    let under = Tutorial::join(server.udp.unwrap(), "ann_");
    under.type_line("hi");
    tut.until(&Shown::Sent("ann\u{FF3F}".into(), "hi".into()));
    under.type_line("quit");
    tut.until(&Shown::Offline("ann\u{FF3F}".into()));
    ann.ping();
}

#[test]
fn native_json_udp_members_are_unaffected() {
    let server = tutorial_server();
    let udp = server.udp.unwrap();
    let tut = Tutorial::join(udp, "tut");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    socket.send_to(br#"{"type":"hello","nick":"jay"}"#, udp).unwrap();
    let mut buf = vec![0u8; 65536];
    let (n, _) = socket.recv_from(&mut buf).unwrap();
    let first = std::str::from_utf8(&buf[..n]).unwrap();
    assert!(first.contains(r#""type":"welcome""#), "{first}");
    tut.type_line("hi json");
    loop {
        let (n, _) = socket.recv_from(&mut buf).expect("jay gets tut's message as JSON");
        let d = std::str::from_utf8(&buf[..n]).unwrap();
        if d.contains(r#""type":"message""#) {
            let m = json(d.lines().find(|l| l.contains(r#""type":"message""#)).unwrap());
            assert_eq!((m["from"].as_str(), m["text"].as_str()), (Some("tut"), Some("hi json")));
            break;
        }
    }
}

#[test]
fn across_a_network_the_person_types_the_token_the_client_shows() {
    // As on a LAN address (`auto` turns the check on off loopback).
    let server = Server::start(&["--udp-format", "tutorial", "--udp-verify", "on"]);
    let mut ann = native(server.tcp, "ann");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let port = socket.local_addr().unwrap().port();
    let tut = Tutorial { socket, server: server.udp.unwrap() };

    tut.type_line("hello everyone");
    let Some(Shown::Sent(who, text)) = tut.recv() else { panic!("no answer in the client's shape") };
    assert_eq!(who, "natter");
    let token = text.strip_prefix("to join, type: /ok ").unwrap_or_else(|| panic!("{text}"));
    // Two characters are too few to answer (three times 2 bytes holds no token): nothing comes,
    // and the next datagram is the greeting for the token typed back.
    tut.type_line("hi");
    tut.type_line(&format!("/ok {token}"));
    assert_eq!(
        tut.recv(),
        Some(Shown::Sent(
            "natter".into(),
            format!(
                "Hello udp-{port}! Plain lines go to the room; @nick text is private; /help lists commands."
            )
        ))
    );
    say(&mut ann, "welcome aboard");
    tut.until(&Shown::Sent("ann".into(), "welcome aboard".into()));
    tut.type_line("thanks");
    let m = json(&ann.expect(r#""text":"thanks""#));
    assert_eq!(m["from"].as_str(), Some(format!("udp-{port}").as_str()));
}
