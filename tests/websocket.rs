//! The WebSocket front door against the real server: native JSON, IRC (`text.ircv3.net`,
//! `binary.ircv3.net`) and text mode over WebSocket, talking with TCP users; the handshake's
//! checks (Origin, version, key); and what a broken or hostile client gets: unmasked,
//! fragmented, oversized and non-UTF-8 frames, binary frames on the native protocol, control
//! frames out of place, and a client that leaves without a close handshake.
//!
//! Well-formed traffic goes through tungstenite's client; broken frames are written by hand
//! on a raw socket after a handshake.

mod common;

use common::{Server, json, native, wait_parked};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::{Message, WebSocket};

const WAIT: Duration = Duration::from_secs(10);

/// A tungstenite client connected to `url` on `addr` with these subprotocols.
fn client(addr: SocketAddr, path: &str, protocols: &[&str]) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut request =
        tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{addr}{path}")).unwrap();
    if !protocols.is_empty() {
        request.headers_mut().insert("sec-websocket-protocol", protocols.join(", ").parse().unwrap());
    }
    let (socket, response) = tungstenite::client::client(request, stream).expect("handshake");
    assert_eq!(response.status(), 101);
    socket
}

/// The next text (or binary, as lossy text) message; panics on close or timeout.
fn next(socket: &mut WebSocket<TcpStream>) -> String {
    loop {
        match socket.read().expect("a message") {
            Message::Text(text) => return text.to_string(),
            Message::Binary(bytes) => return String::from_utf8_lossy(&bytes).into_owned(),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            Message::Close(close) => panic!("closed: {close:?}"),
        }
    }
}

/// Reads messages until one contains `needle`.
fn expect(socket: &mut WebSocket<TcpStream>, needle: &str) -> String {
    let mut seen = Vec::new();
    loop {
        let message = next(socket);
        if message.contains(needle) {
            return message;
        }
        seen.push(message);
        assert!(seen.len() < 200, "no message containing {needle:?}; saw {seen:#?}");
    }
}

fn send(socket: &mut WebSocket<TcpStream>, text: &str) {
    socket.send(Message::text(text)).unwrap();
}

/// A native-protocol WebSocket session logged in as `nick` (welcome and lobby join read).
fn native_ws(addr: SocketAddr, nick: &str) -> WebSocket<TcpStream> {
    let mut socket = client(addr, "/ws", &[]);
    send(&mut socket, &format!(r##"{{"type":"hello","nick":"{nick}"}}"##));
    expect(&mut socket, r##""type":"welcome""##);
    expect(&mut socket, r##""type":"joined""##);
    socket
}

/// A raw socket after a WebSocket handshake, for frames no library would write.
struct Raw {
    stream: TcpStream,
    read: Vec<u8>,
}

impl Raw {
    fn connect(addr: SocketAddr, extra_headers: &str) -> (Raw, String) {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            stream,
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra_headers}\r\n"
        )
        .unwrap();
        let mut raw = Raw { stream, read: Vec::new() };
        let head = raw.head();
        (raw, head)
    }

    /// Reads an HTTP answer's head.
    fn head(&mut self) -> String {
        loop {
            if let Some(end) = self.read.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.read[..end]).into_owned();
                self.read.drain(..end + 4);
                return head;
            }
            self.fill();
        }
    }

    fn fill(&mut self) -> usize {
        let mut buf = [0u8; 4096];
        let n = self.stream.read(&mut buf).unwrap_or(0);
        self.read.extend_from_slice(&buf[..n]);
        n
    }

    fn frame(&mut self, opcode: OpCode, payload: &[u8], last: bool, masked: bool) {
        self.stream.write_all(&Raw::encode(opcode, payload, last, masked)).unwrap();
    }

    /// A frame's bytes, as a client (`masked`) or a server would send it.
    fn encode(opcode: OpCode, payload: &[u8], last: bool, masked: bool) -> Vec<u8> {
        let mask = masked.then_some([0x11, 0x22, 0x33, 0x44]);
        let header = FrameHeader { is_final: last, rsv1: false, rsv2: false, rsv3: false, opcode, mask };
        let mut out = Vec::new();
        header.format(payload.len() as u64, &mut out).unwrap();
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(mask) = mask {
            for (i, byte) in out[start..].iter_mut().enumerate() {
                *byte ^= mask[i & 3];
            }
        }
        out
    }

    fn text(&mut self, text: &str) {
        self.frame(OpCode::Data(Data::Text), text.as_bytes(), true, true);
    }

    /// The next frame the server sends: its opcode and payload; `None` at the end.
    fn next_frame(&mut self) -> Option<(OpCode, Vec<u8>)> {
        loop {
            let mut cursor = std::io::Cursor::new(&self.read);
            if let Some((header, len)) = FrameHeader::parse(&mut cursor).unwrap() {
                let start = cursor.position() as usize;
                let end = start + len as usize;
                if self.read.len() >= end {
                    assert!(header.mask.is_none(), "server frames are never masked");
                    let payload = self.read[start..end].to_vec();
                    self.read.drain(..end);
                    return Some((header.opcode, payload));
                }
            }
            if self.fill() == 0 {
                return None;
            }
        }
    }

    /// Reads text messages until one contains `needle`.
    fn expect(&mut self, needle: &str) -> String {
        let mut seen = Vec::new();
        while let Some((opcode, payload)) = self.next_frame() {
            let text = String::from_utf8_lossy(&payload).into_owned();
            if opcode == OpCode::Data(Data::Text) && text.contains(needle) {
                return text;
            }
            seen.push(format!("{opcode:?} {text}"));
        }
        panic!("no message containing {needle:?}; saw {seen:#?}");
    }

    /// Reads until the server's close frame: its code and reason.
    fn close_frame(&mut self) -> (u16, String) {
        let mut seen = Vec::new();
        while let Some((opcode, payload)) = self.next_frame() {
            if opcode == OpCode::Control(Control::Close) {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                return (code, String::from_utf8(payload[2..].to_vec()).unwrap());
            }
            seen.push(String::from_utf8_lossy(&payload).into_owned());
        }
        panic!("no close frame; saw {seen:#?}");
    }

    /// Logs in with the native protocol.
    fn hello(&mut self, nick: &str) {
        self.text(&format!(r##"{{"type":"hello","nick":"{nick}"}}"##));
        self.expect(r##""type":"welcome""##);
    }

    /// Native barrier: everything before the pong.
    fn ping(&mut self, id: u32) -> Vec<String> {
        self.text(&format!(r##"{{"type":"ping","id":{id}}}"##));
        let mut seen = Vec::new();
        loop {
            let (_, payload) = self.next_frame().expect("pong");
            let text = String::from_utf8_lossy(&payload).into_owned();
            if text.contains(r##""type":"pong""##) {
                return seen;
            }
            seen.push(text);
        }
    }
}

#[test]
fn a_browser_style_client_chats_with_tcp_users_over_the_native_protocol() {
    let server = Server::start(&[]);
    let mut web = native_ws(server.tcp, "webby");
    let mut tcp = native(server.tcp, "tcpann");
    tcp.ping();
    send(&mut web, r##"{"type":"send","room":"#lobby","text":"héllo 😀 from the web","id":1,"cid":"c1"}"##);
    let ack = json(&expect(&mut web, r##""type":"ack""##));
    assert_eq!(ack["id"], 1);
    let seen = json(&tcp.expect("from the web"));
    assert_eq!(
        (seen["from"].as_str(), seen["text"].as_str()),
        (Some("webby"), Some("héllo 😀 from the web"))
    );
    tcp.line(r##"{"type":"send","room":"#lobby","text":"hi web"}"##);
    let message = json(&expect(&mut web, "hi web"));
    assert_eq!(message["from"], "tcpann");
    // One message per frame: no newline is sent inside a message.
    assert!(!next_after_ping(&mut web).contains('\n'));
}

/// Sends a native ping and returns the pong message.
fn next_after_ping(socket: &mut WebSocket<TcpStream>) -> String {
    send(socket, r##"{"type":"ping","id":99}"##);
    expect(socket, r##""type":"pong""##)
}

#[test]
fn irc_clients_pick_text_or_binary_and_talk_with_tcp_irc_users() {
    let server = Server::start(&[]);
    let mut tcp = common::Client::connect(server.irc.unwrap());
    tcp.line("NICK tcpirc");
    tcp.line("USER t 0 * :T");
    tcp.expect(" 001 ");
    for (offered, chosen, nick) in [
        (vec!["binary.ircv3.net", "text.ircv3.net"], "binary.ircv3.net", "webbin"),
        (vec!["text.ircv3.net", "binary.ircv3.net"], "text.ircv3.net", "webtext"),
        (vec!["x-unknown", "text.ircv3.net"], "text.ircv3.net", "webother"),
    ] {
        let mut web = client(server.tcp, "/", &offered);
        let binary = chosen == "binary.ircv3.net";
        let line =
            |text: String| if binary { Message::binary(text.into_bytes()) } else { Message::text(text) };
        web.send(line(format!("NICK {nick}"))).unwrap();
        web.send(line("USER w 0 * :W".into())).unwrap();
        let first = web.read().unwrap();
        assert_eq!(first.is_binary(), binary, "{chosen}: {first:?}");
        if !first.to_text().is_ok_and(|text| text.contains(" 001 ")) {
            expect(&mut web, " 001 ");
        }
        web.send(line("PRIVMSG tcpirc :hello from a browser".into())).unwrap();
        let got = tcp.expect("hello from a browser");
        assert!(got.starts_with(&format!(":{nick}!")), "{got}");
        tcp.line(&format!("PRIVMSG {nick} :hi back"));
        let back = expect(&mut web, "hi back");
        assert!(back.starts_with(":tcpirc!") && !back.ends_with('\n'), "{back}");
    }
}

#[test]
fn the_negotiated_subprotocol_is_confirmed_in_the_handshake() {
    let server = Server::start(&[]);
    let (_, head) = Raw::connect(server.tcp, "Sec-WebSocket-Protocol: binary.ircv3.net, text.ircv3.net\r\n");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("sec-websocket-protocol: binary.ircv3.net"), "{head}");
    let (_, head) = Raw::connect(server.tcp, "");
    assert!(!head.to_ascii_lowercase().contains("sec-websocket-protocol"), "{head}");
}

#[test]
fn text_mode_works_over_websocket_too() {
    let server = Server::start(&[]);
    let mut web = client(server.tcp, "/ws", &[]);
    send(&mut web, "wsperson");
    let mut tcp = native(server.tcp, "tcpbob");
    tcp.ping();
    expect(&mut web, "wsperson");
    send(&mut web, "hello in plain text");
    let got = json(&tcp.expect("hello in plain text"));
    assert_eq!(got["from"], "wsperson");
}

#[test]
fn fragments_pings_and_binary_frames_are_read_as_the_rfc_says() {
    let server = Server::start(&[]);
    let (mut raw, head) = Raw::connect(server.tcp, "");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // A hello in three fragments with a ping between them.
    raw.frame(OpCode::Data(Data::Text), br##"{"type":"hel"##, false, true);
    raw.frame(OpCode::Control(Control::Ping), b"are you there", true, true);
    raw.frame(OpCode::Data(Data::Continue), br##"lo","nick":"##, false, true);
    raw.frame(OpCode::Data(Data::Continue), br##""fragged"}"##, true, true);
    let (opcode, payload) = raw.next_frame().unwrap();
    assert_eq!((opcode, payload.as_slice()), (OpCode::Control(Control::Pong), &b"are you there"[..]));
    raw.expect(r##""nick":"fragged""##);
    // JSON in a binary message is still JSON; bytes that are not UTF-8 get the usual error.
    raw.frame(OpCode::Data(Data::Binary), br##"{"type":"ping","id":5}"##, true, true);
    raw.expect(r##"{"type":"pong","id":5}"##);
    raw.frame(OpCode::Data(Data::Binary), b"caf\xe9", true, true);
    raw.expect(r##""code":"invalid_utf8""##);
    // A pong nobody asked for is ignored; the session goes on.
    raw.frame(OpCode::Control(Control::Pong), b"", true, true);
    raw.ping(6);
}

#[test]
fn an_oversized_message_is_refused_like_an_oversized_line_and_the_session_goes_on() {
    let server = Server::start(&["--max-line", "1024"]);
    let (mut raw, _) = Raw::connect(server.tcp, "");
    raw.hello("bigsender");
    let huge = format!(r##"{{"type":"send","room":"#lobby","text":"{}"}}"##, "x".repeat(5000));
    // In fragments, the way a browser may send a big message.
    let bytes = huge.as_bytes();
    raw.frame(OpCode::Data(Data::Text), &bytes[..3000], false, true);
    raw.frame(OpCode::Data(Data::Continue), &bytes[3000..], true, true);
    raw.expect(r##""code":"too_long""##);
    raw.ping(1);
    raw.text(r##"{"type":"send","room":"#lobby","text":"small","id":2}"##);
    raw.expect(r##""type":"ack","id":2"##);
}

/// Writes a broken frame.
type Violation = Box<dyn Fn(&mut Raw)>;

#[test]
fn protocol_violations_close_with_the_code_and_reason() {
    let server = Server::start(&[]);
    let cases: Vec<(&str, Violation, u16, &str)> = vec![
        (
            "unmasked",
            Box::new(|raw: &mut Raw| raw.frame(OpCode::Data(Data::Text), b"{}", true, false)),
            1002,
            "masked",
        ),
        (
            "not UTF-8",
            Box::new(|raw: &mut Raw| raw.frame(OpCode::Data(Data::Text), b"caf\xe9", true, true)),
            1007,
            "UTF-8",
        ),
        (
            "continuation first",
            Box::new(|raw: &mut Raw| raw.frame(OpCode::Data(Data::Continue), b"x", true, true)),
            1002,
            "continuation",
        ),
        (
            "fragmented ping",
            Box::new(|raw: &mut Raw| raw.frame(OpCode::Control(Control::Ping), b"x", false, true)),
            1002,
            "fragmented",
        ),
        (
            "long ping",
            Box::new(|raw: &mut Raw| raw.frame(OpCode::Control(Control::Ping), &[b'x'; 126], true, true)),
            1002,
            "125",
        ),
        (
            "reserved opcode",
            Box::new(|raw: &mut Raw| raw.stream.write_all(&[0x83, 0x80, 1, 2, 3, 4]).unwrap()),
            1002,
            "opcode",
        ),
        (
            "reserved bit",
            Box::new(|raw: &mut Raw| raw.stream.write_all(&[0xc1, 0x80, 1, 2, 3, 4]).unwrap()),
            1002,
            "reserved",
        ),
    ];
    for (i, (name, send, code, reason)) in cases.into_iter().enumerate() {
        let (mut raw, _) = Raw::connect(server.tcp, "");
        raw.hello(&format!("violator{i}"));
        send(&mut raw);
        let (got_code, got_reason) = raw.close_frame();
        assert_eq!(got_code, code, "{name}: {got_reason}");
        assert!(got_reason.contains(reason), "{name}: {got_reason}");
        assert!(raw.next_frame().is_none(), "{name}: the connection ends after the close frame");
    }
}

#[test]
fn a_close_handshake_is_answered_and_an_abrupt_end_is_a_lost_connection() {
    let server = Server::start(&[]);
    let mut watcher = native(server.tcp, "watcher");
    let (mut polite, _) = Raw::connect(server.tcp, "");
    polite.hello("polite");
    watcher.expect(r##""nick":"polite""##);
    polite.frame(OpCode::Control(Control::Close), &[0x03, 0xe8, b'b', b'y', b'e'], true, true);
    let (code, _) = polite.close_frame();
    assert_eq!(code, u16::from(CloseCode::Normal));
    watcher.expect(r##""type":"quit""##);
    let (mut rude, _) = Raw::connect(server.tcp, "");
    rude.hello("rude");
    watcher.expect(r##""nick":"rude""##);
    // Half a frame, then gone.
    rude.stream.write_all(&[0x81, 0xfe, 0x10]).unwrap();
    drop(rude);
    let quit = json(&watcher.expect(r##""type":"quit""##));
    assert_eq!(quit["nick"], "rude");
    watcher.ping();
}

#[test]
fn the_handshake_checks_origin_version_and_key() {
    let server = Server::start(&["--web-origin", "https://chat.example.org"]);
    let host = server.tcp;
    let cases = [
        (format!("Origin: http://{host}\r\n"), "101"),
        ("Origin: https://chat.example.org\r\n".to_string(), "101"),
        ("Origin: https://evil.example\r\n".to_string(), "403"),
        ("Origin: null\r\n".to_string(), "403"),
    ];
    for (header, status) in cases {
        let (_, head) = Raw::connect(server.tcp, &header);
        assert!(head.starts_with(&format!("HTTP/1.1 {status}")), "{header}: {head}");
    }
    let mut stream = TcpStream::connect(server.tcp).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut raw = Raw { stream, read: Vec::new() };
    let head = raw.head();
    assert!(
        head.starts_with("HTTP/1.1 426") && head.to_ascii_lowercase().contains("sec-websocket-version: 13"),
        "{head}"
    );
}

#[test]
fn a_websocket_client_that_reads_nothing_is_dropped_as_a_slow_reader() {
    let server = Server::start(&["--outbox", "64", "--outbox-kib", "64", "--msg-rate", "0"]);
    let (mut slow, _) = Raw::connect(server.tcp, "");
    slow.hello("sloth");
    let mut talker = native(server.tcp, "talker");
    // Loopback socket buffers grow to several megabytes: send until the outbox bound is what
    // stops the flow (bounded at 90 MB).
    let text = "y".repeat(15_000);
    for round in 0..300 {
        for i in 0..20 {
            talker.line(&format!(r##"{{"type":"send","room":"#lobby","text":"{round} {i} {text}"}}"##));
        }
        let seen = talker.ping();
        if seen.iter().any(|l| l.contains(r##""type":"quit""##) && l.contains("sloth")) {
            return;
        }
    }
    panic!("a WebSocket client that read nothing of 90 MB was not disconnected");
}

/// A WebSocket reader far behind gets every message whole and in order once it reads (the
/// socket's partial writes cut frames, each batch is framed once per event in the render
/// cache), and the ping it sent meanwhile is answered between two messages.
#[test]
fn a_reader_far_behind_gets_every_frame_whole_and_in_order() {
    let server = Server::start(&["--msg-rate", "0"]);
    let (mut behind, _) = Raw::connect(server.tcp, "");
    behind.hello("behind");
    let mut talker = native(server.tcp, "talker3");
    let text = "z".repeat(1500);
    let total = 1200;
    for i in 0..total {
        talker.line(&format!(r##"{{"type":"send","room":"#lobby","text":"m{i} {text}"}}"##));
        if i % 100 == 99 {
            talker.ping();
        }
    }
    talker.ping();
    behind.frame(OpCode::Control(Control::Ping), b"mid", true, true);
    behind.text(r##"{"type":"ping","id":77}"##);
    let mut next = 0;
    let mut pong = false;
    loop {
        let (opcode, payload) = behind.next_frame().expect("frames until the barrier");
        match opcode {
            OpCode::Control(Control::Pong) => {
                assert_eq!(payload, b"mid");
                pong = true;
            }
            OpCode::Data(Data::Text) => {
                let frame = json(std::str::from_utf8(&payload).expect("UTF-8"));
                if frame["type"] == "pong" {
                    break;
                }
                if frame["type"] == "message" && frame["from"] == "talker3" {
                    let body = frame["text"].as_str().unwrap();
                    assert!(
                        body.starts_with(&format!("m{next} ")),
                        "message {next} expected, got {}",
                        &body[..8]
                    );
                    next += 1;
                }
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert_eq!(next, total, "every message arrived");
    assert!(pong, "the ping was answered");
}

/// Idle WebSocket sessions park as TCP ones do (`--park-after 1`): a page's and a binary IRC
/// client's connections give up their tasks, and wake for a delivery, for their own message
/// and for a ping frame, each answered in its own framing, nothing lost. A connection in the
/// middle of a frame never parks: the rest of the frame is read as the rest of that frame.
#[test]
fn idle_websocket_sessions_park_and_wake_as_tcp_ones_do() {
    let server = Server::start(&["--park-after", "1"]);
    let mut page = native_ws(server.tcp, "page");
    let mut irc = client(server.tcp, "/", &["binary.ircv3.net"]);
    irc.send(Message::binary(&b"NICK ircweb"[..])).unwrap();
    irc.send(Message::binary(&b"USER w 0 * :W"[..])).unwrap();
    let mut tcp = native(server.tcp, "tcp");
    // Everything before the first delivery is read: the registration, the tcp user's join.
    irc.send(Message::binary(&b"PING sync"[..])).unwrap();
    expect(&mut irc, "PONG");
    wait_parked(server.tcp, 3);

    // A delivery wakes both, each in its framing.
    tcp.line(r##"{"type":"send","room":"#lobby","text":"wake up","id":1}"##);
    tcp.expect(r#""type":"ack""#);
    assert!(expect(&mut page, r##""type":"message""##).contains("wake up"));
    let woken = irc.read().unwrap();
    assert!(woken.is_binary() && woken.to_text().unwrap().ends_with("PRIVMSG #lobby :wake up"), "{woken:?}");
    wait_parked(server.tcp, 3);

    // A parked page's own message wakes it: acknowledged and fanned out.
    send(&mut page, r##"{"type":"send","room":"#lobby","text":"from the park","id":2}"##);
    assert_eq!(json(&expect(&mut page, r##""type":"ack""##))["id"], 2);
    assert!(tcp.expect(r#""type":"message""#).contains("from the park"));
    assert!(expect(&mut irc, "from the park").ends_with("PRIVMSG #lobby :from the park"));
    wait_parked(server.tcp, 3);

    // A ping frame to a parked connection is answered with its pong.
    irc.send(Message::Ping(b"still there?".to_vec().into())).unwrap();
    match irc.read().unwrap() {
        Message::Pong(payload) => assert_eq!(&payload[..], b"still there?"),
        other => panic!("{other:?}"),
    }
    wait_parked(server.tcp, 3);

    // Part of a message: its header cut in the mask key (the bytes wait in the transport), its
    // header whole and no payload yet (the decoder is inside a frame), its payload cut halfway
    // (the line buffer holds the start), or a first fragment with nothing in it (the decoder
    // is inside a message). That connection stays awake while the others park, and the rest
    // completes the message. The others are woken after the part is sent, twice, so that a
    // connection wrongly parked with it would be among the three counted (and lose its part),
    // or a fourth.
    let (mut raw, _) = Raw::connect(server.tcp, "");
    raw.hello("halfway");
    for (id, cut) in [(3, Some(3)), (4, Some(6)), (5, Some(40)), (6, None)] {
        let text = format!(r##"{{"type":"send","room":"#lobby","text":"part {id}","id":{id}}}"##);
        let (first, rest) = match cut {
            Some(cut) => {
                let bytes = Raw::encode(OpCode::Data(Data::Text), text.as_bytes(), true, true);
                let (first, rest) = bytes.split_at(cut);
                (first.to_vec(), rest.to_vec())
            }
            None => (
                Raw::encode(OpCode::Data(Data::Text), b"", false, true),
                Raw::encode(OpCode::Data(Data::Continue), text.as_bytes(), true, true),
            ),
        };
        raw.stream.write_all(&first).unwrap();
        for _ in 0..2 {
            tcp.ping();
            send(&mut page, r##"{"type":"ping"}"##);
            expect(&mut page, r##""type":"pong""##);
            irc.send(Message::binary(&b"PING sync"[..])).unwrap();
            expect(&mut irc, "PONG");
            wait_parked(server.tcp, 3);
        }
        raw.stream.write_all(&rest).unwrap();
        assert!(raw.expect(r##""type":"ack""##).contains(&format!(r#""id":{id}"#)));
        assert!(tcp.expect(r#""type":"message""#).contains(&format!("part {id}")));
    }
}
