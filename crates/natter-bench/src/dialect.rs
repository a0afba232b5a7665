//! Wire dialects the bench can speak: natter's native JSON frames or plain IRC, each over TCP
//! or over WebSocket (the framing itself is in [`crate::websocket`] and [`crate::conn`]).
//!
//! Every scenario needs the same five things from a protocol: log in, join a room, send a
//! message, recognise a delivered message cheaply, and answer keep-alives. Keeping them behind
//! one small enum lets the same load generator compare natter with an IRC server (ngircd)
//! without the scenarios knowing which one they talk to.

use memchr::memmem;
use natter_proto::native::{ClientFrame, ServerFrame, client_frame_line, parse_server_frame};
use std::sync::LazyLock;

/// The room every native session is placed in at login.
pub const LOBBY: &str = "#lobby";

/// Which protocol to speak; chosen with `--protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// natter's newline-delimited JSON frames.
    Native,
    /// RFC 1459/2812 IRC (NICK/USER, JOIN, PRIVMSG).
    Irc,
    /// natter's JSON frames over WebSocket (`GET /ws`, no subprotocol): one frame per text
    /// message, as the web page speaks.
    Ws,
    /// IRC over WebSocket (`text.ircv3.net`): one line per text message.
    WsIrc,
}

/// What is said on the wire, whatever carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// natter's JSON frames.
    Native,
    /// IRC lines.
    Irc,
}

impl Protocol {
    /// The dialect spoken: WebSocket carries the same frames and lines as TCP.
    pub fn dialect(self) -> Dialect {
        match self {
            Protocol::Native | Protocol::Ws => Dialect::Native,
            Protocol::Irc | Protocol::WsIrc => Dialect::Irc,
        }
    }

    /// Whether the session runs over WebSocket.
    pub fn over_websocket(self) -> bool {
        matches!(self, Protocol::Ws | Protocol::WsIrc)
    }

    /// The WebSocket subprotocol to ask for (none for native JSON: its first message tells).
    pub fn subprotocol(self) -> Option<&'static str> {
        match self {
            Protocol::WsIrc => Some("text.ircv3.net"),
            _ => None,
        }
    }

    /// The name `--protocol` takes, for reports.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Native => "native",
            Protocol::Irc => "irc",
            Protocol::Ws => "ws",
            Protocol::WsIrc => "ws-irc",
        }
    }
}

/// What a line received during login or join means for the handshake.
#[derive(Debug, PartialEq, Eq)]
pub enum Handshake {
    /// The step (login or join) is complete.
    Done,
    /// Not the awaited line; keep reading. May carry bytes to send back (an IRC `PONG`).
    Continue(Option<Vec<u8>>),
    /// The server refused; the text says why.
    Failed(String),
}

/// What a line received after the handshake is, for the receive loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A chat message delivered to us. Carries the bytes from the start of its text; for
    /// speed the end of the text is not searched, so the rest of the line may follow (bench
    /// payloads end their fields with a space or a quote, and are never escaped).
    Delivery(&'a [u8]),
    /// The server acknowledged one of our messages.
    Ack,
    /// The server asks for a keep-alive answer; the bytes are the answer to write.
    Ping(Vec<u8>),
    /// The server reported an error (for example a flood limit); the text says which.
    Error(String),
    /// The server is closing the session.
    Bye(String),
    /// Anything else (joins, parts, notices, numerics): ignored.
    Other,
}

impl Protocol {
    /// Bytes that start a session under `nick`.
    pub fn login(self, nick: &str) -> Vec<u8> {
        match self.dialect() {
            Dialect::Native => client_frame_line(&ClientFrame::Hello {
                v: natter_proto::PROTOCOL_VERSION,
                nick: nick.to_string(),
                password: None,
                account: None,
                account_password: None,
                resume: None,
                client_secret: None,
                id: None,
            }),
            Dialect::Irc => format!("NICK {nick}\r\nUSER {nick} 0 * :natter bench\r\n").into_bytes(),
        }
    }

    /// Classifies a line received while waiting for the login to complete.
    pub fn login_step(self, line: &[u8]) -> Handshake {
        match self.dialect() {
            Dialect::Native => match parse_server_frame(line) {
                Ok(ServerFrame::Welcome { .. }) => Handshake::Done,
                Ok(ServerFrame::Error { message, .. }) => Handshake::Failed(message.into_owned()),
                Ok(ServerFrame::Bye { reason }) => Handshake::Failed(reason.into_owned()),
                _ => Handshake::Continue(None),
            },
            Dialect::Irc => {
                let msg = IrcLine::parse(line);
                match msg.command {
                    b"001" => Handshake::Done,
                    b"PING" => Handshake::Continue(Some(pong(msg.params))),
                    // Nick in use, erroneous nick, server full, banned...
                    b"432" | b"433" | b"436" | b"465" | b"ERROR" => {
                        Handshake::Failed(String::from_utf8_lossy(line).into_owned())
                    }
                    _ => Handshake::Continue(None),
                }
            }
        }
    }

    /// Bytes that join `room`, or `None` when the login already put us there (native `#lobby`).
    pub fn join(self, room: &str) -> Option<Vec<u8>> {
        match self.dialect() {
            Dialect::Native if room == LOBBY => None,
            Dialect::Native => {
                Some(client_frame_line(&ClientFrame::Join { room: room.to_string(), key: None, id: None }))
            }
            Dialect::Irc => Some(format!("JOIN {room}\r\n").into_bytes()),
        }
    }

    /// Classifies a line received while waiting to be in `room`. For native sessions that
    /// start in the lobby, the awaited line is the lobby's `joined` frame that follows
    /// `welcome`, so this is also called when [`Protocol::join`] returned `None`.
    pub fn join_step(self, line: &[u8], room: &str) -> Handshake {
        match self.dialect() {
            Dialect::Native => {
                // `joined` frames can be large (members, history); only parse those and errors.
                if !(line.starts_with(br#"{"type":"joined""#) || line.starts_with(br#"{"type":"error""#)) {
                    return Handshake::Continue(None);
                }
                match parse_server_frame(line) {
                    Ok(ServerFrame::Joined { room: r, .. }) if r.eq_ignore_ascii_case(room) => {
                        Handshake::Done
                    }
                    Ok(ServerFrame::Error { message, .. }) => Handshake::Failed(message.into_owned()),
                    _ => Handshake::Continue(None),
                }
            }
            Dialect::Irc => {
                let msg = IrcLine::parse(line);
                match msg.command {
                    // End of NAMES for our room: the join is complete and we are listed. (A
                    // server may have put us in another room at login; its 366 does not count.)
                    b"366"
                        if names_room(msg.params)
                            .is_some_and(|r| r.eq_ignore_ascii_case(room.as_bytes())) =>
                    {
                        Handshake::Done
                    }
                    b"PING" => Handshake::Continue(Some(pong(msg.params))),
                    b"403" | b"405" | b"471" | b"473" | b"474" | b"475" | b"ERROR" => {
                        Handshake::Failed(String::from_utf8_lossy(line).into_owned())
                    }
                    _ => Handshake::Continue(None),
                }
            }
        }
    }

    /// Appends one message to `room` carrying `text` onto `out`. `cid` makes native sends
    /// idempotent; IRC has no equivalent and ignores it.
    pub fn write_send(self, out: &mut Vec<u8>, room: &str, text: &str, cid: &str) {
        match self.dialect() {
            Dialect::Native => out.extend_from_slice(&client_frame_line(&ClientFrame::Send {
                room: Some(room.to_string()),
                to: None,
                text: text.to_string(),
                action: false,
                notice: false,
                cid: Some(cid.to_string()),
                id: None,
            })),
            Dialect::Irc => {
                out.extend_from_slice(b"PRIVMSG ");
                out.extend_from_slice(room.as_bytes());
                out.extend_from_slice(b" :");
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// Bytes that end the session politely.
    pub fn quit(self) -> Vec<u8> {
        match self.dialect() {
            Dialect::Native => client_frame_line(&ClientFrame::Quit { reason: Some("bench done".into()) }),
            Dialect::Irc => b"QUIT :bench done\r\n".to_vec(),
        }
    }

    /// Classifies a line on the hot receive path. Native message frames are recognised from
    /// their first bytes and their text is sliced out without a JSON parse: at millions of
    /// deliveries per second a full parse would make the load generator the bottleneck.
    pub fn classify(self, line: &[u8]) -> Incoming<'_> {
        match self.dialect() {
            Dialect::Native => classify_native(line),
            Dialect::Irc => classify_irc(line),
        }
    }
}

const TYPE_PREFIX: &[u8] = br#"{"type":""#;

fn classify_native(line: &[u8]) -> Incoming<'_> {
    let Some(rest) = line.strip_prefix(TYPE_PREFIX) else {
        return classify_native_slow(line);
    };
    if rest.starts_with(br#"message""#) {
        if let Some(text) = native_text(line) {
            return Incoming::Delivery(text);
        }
        return classify_native_slow(line);
    }
    if rest.starts_with(br#"ack""#) {
        return Incoming::Ack;
    }
    if rest.starts_with(br#"error""#) || rest.starts_with(br#"bye""#) {
        return classify_native_slow(line);
    }
    Incoming::Other
}

/// Slices a native `message` frame from the start of its text to the end of the line.
fn native_text(line: &[u8]) -> Option<&[u8]> {
    room_message_text(line).or_else(|| {
        // Any other shape: search for the key. The searcher is built once: building one per
        // line cost more than the search itself.
        const KEY: &[u8] = br#""text":""#;
        static FINDER: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(KEY));
        let start = FINDER.find(line)? + KEY.len();
        Some(&line[start..])
    })
}

/// The text of a room message as natter writes it, `{"type":"message","room":"R","from":"F",
/// "text":"...`, found by walking its fields (cheaper than a search, per delivery). An escaped
/// quote in the room or nick breaks the walk, which then gives up.
fn room_message_text(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(br#"{"type":"message","room":""#)?;
    let rest = &rest[memchr::memchr(b'"', rest)? + 1..];
    let rest = rest.strip_prefix(br#","from":""#)?;
    let rest = &rest[memchr::memchr(b'"', rest)? + 1..];
    rest.strip_prefix(br#","text":""#)
}

fn classify_native_slow(line: &[u8]) -> Incoming<'_> {
    match parse_server_frame(line) {
        Ok(ServerFrame::Message(_)) => Incoming::Delivery(b""),
        Ok(ServerFrame::Ack { .. }) => Incoming::Ack,
        Ok(ServerFrame::Error { code, message, .. }) => {
            Incoming::Error(format!("{}: {message}", code.as_str()))
        }
        Ok(ServerFrame::Bye { reason }) => Incoming::Bye(reason.into_owned()),
        _ => Incoming::Other,
    }
}

fn classify_irc(line: &[u8]) -> Incoming<'_> {
    let msg = IrcLine::parse(line);
    match msg.command {
        b"PRIVMSG" | b"NOTICE" if msg.prefix.is_some() => match trailing(msg.params) {
            Some(text) if msg.command == b"PRIVMSG" => Incoming::Delivery(text),
            _ => Incoming::Other,
        },
        b"PING" => Incoming::Ping(pong(msg.params)),
        b"ERROR" => Incoming::Bye(String::from_utf8_lossy(msg.params).into_owned()),
        // Flood or send errors that mean a message was not delivered.
        b"404" | b"412" | b"437" => Incoming::Error(String::from_utf8_lossy(line).into_owned()),
        _ => Incoming::Other,
    }
}

/// The channel of a `366 <me> <channel> :End of NAMES` reply.
fn names_room(params: &[u8]) -> Option<&[u8]> {
    params.split(|&b| b == b' ').filter(|p| !p.is_empty()).nth(1)
}

/// One IRC line split into prefix, command and parameter bytes, without allocation.
#[derive(Debug, PartialEq, Eq)]
pub struct IrcLine<'a> {
    /// The source (`nick!user@host` or a server name), without the colon.
    pub prefix: Option<&'a [u8]>,
    /// The command or three-digit numeric.
    pub command: &'a [u8],
    /// Everything after the command, trailing parameter included.
    pub params: &'a [u8],
}

impl<'a> IrcLine<'a> {
    /// Splits a line (without its CR LF). Tolerates repeated spaces and a missing prefix.
    pub fn parse(line: &'a [u8]) -> Self {
        let mut rest = line;
        let mut prefix = None;
        if let Some(p) = rest.strip_prefix(b":") {
            let end = memchr::memchr(b' ', p).unwrap_or(p.len());
            prefix = Some(&p[..end]);
            rest = &p[end..];
        }
        let rest = trim_start(rest);
        let end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
        IrcLine { prefix, command: &rest[..end], params: trim_start(&rest[end..]) }
    }
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = s {
        s = rest;
    }
    s
}

/// The trailing parameter (after ` :`), or the last middle parameter when there is none.
fn trailing(params: &[u8]) -> Option<&[u8]> {
    if let Some(p) = params.strip_prefix(b":") {
        return Some(p);
    }
    if let Some(i) = memmem::find(params, b" :") {
        return Some(&params[i + 2..]);
    }
    params.rsplit(|&b| b == b' ').find(|p| !p.is_empty())
}

fn pong(params: &[u8]) -> Vec<u8> {
    let mut out = b"PONG ".to_vec();
    out.extend_from_slice(params);
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_proto::native::{MessageFrame, write_server_frame};

    fn server_line(frame: &ServerFrame<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        write_server_frame(frame, &mut out);
        out.pop();
        out
    }

    #[test]
    fn native_message_text_is_sliced_without_parsing() {
        let line = server_line(&ServerFrame::Message(MessageFrame {
            room: Some("#lobby".into()),
            from: "b1".into(),
            to: None,
            text: "nbq m 3 17 123456 ....".into(),
            action: false,
            notice: false,
            mid: Some(9),
            ts: 1,
        }));
        let Incoming::Delivery(text) = Protocol::Native.classify(&line) else { panic!("not a delivery") };
        assert!(text.starts_with(b"nbq m 3 17 123456 ....\""), "{}", String::from_utf8_lossy(text));
    }

    #[test]
    fn native_unusual_message_frames() {
        // A text field absent from its usual place: parsed in full, and still a delivery.
        let line = br#"{"type":"message","from":"x","ts":1,"text":"hi"}"#;
        assert!(matches!(Protocol::Native.classify(line), Incoming::Delivery(t) if t.starts_with(b"hi")));
        let line = br#"{"type":"message","from":"x","ts":1}"#;
        assert_eq!(Protocol::Native.classify(line), Incoming::Other);
        let line = br#"{ "type" : "message", "from":"x","text":"hi","ts":1}"#;
        assert_eq!(Protocol::Native.classify(line), Incoming::Delivery(b""));
    }

    #[test]
    fn native_other_frames() {
        let ack = server_line(&ServerFrame::Ack {
            id: None,
            cid: Some("c".into()),
            mid: Some(1),
            room: None,
            ts: 1,
            duplicate: false,
            away: None,
            offline: false,
        });
        assert_eq!(Protocol::Native.classify(&ack), Incoming::Ack);
        let bye = server_line(&ServerFrame::Bye { reason: "too slow".into() });
        assert_eq!(Protocol::Native.classify(&bye), Incoming::Bye("too slow".into()));
        let join = server_line(&ServerFrame::Join { room: "#lobby".into(), nick: "a".into(), ts: 1 });
        assert_eq!(Protocol::Native.classify(&join), Incoming::Other);
        assert_eq!(Protocol::Native.classify(b"garbage"), Incoming::Other);
        let err = br#"{"type":"error","code":"rate_limited","message":"slow down"}"#;
        assert_eq!(Protocol::Native.classify(err), Incoming::Error("rate_limited: slow down".into()));
    }

    #[test]
    fn native_handshake() {
        let welcome = server_line(&ServerFrame::Welcome {
            v: 1,
            nick: "b1".into(),
            server: "natter".into(),
            max_line: None,
            id: None,
            token: None,
        });
        assert_eq!(Protocol::Native.login_step(&welcome), Handshake::Done);
        let joined = br##"{"type":"joined","room":"#Lobby","topic":"","members":["b1"],"history":[]}"##;
        assert_eq!(Protocol::Native.join_step(joined, LOBBY), Handshake::Done);
        assert_eq!(Protocol::Native.join_step(joined, "#other"), Handshake::Continue(None));
        assert!(Protocol::Native.join(LOBBY).is_none());
        assert!(Protocol::Native.join("#bench").is_some());
        let err = br#"{"type":"error","code":"nick_in_use","message":"taken"}"#;
        assert_eq!(Protocol::Native.login_step(err), Handshake::Failed("taken".into()));
    }

    #[test]
    fn native_send_is_a_client_frame() {
        let mut out = Vec::new();
        Protocol::Native.write_send(&mut out, "#lobby", "hello", "c1");
        assert!(out.ends_with(b"\n"));
        let frame = natter_proto::native::parse_client_frame(&out[..out.len() - 1]).unwrap();
        assert!(
            matches!(frame, ClientFrame::Send { text, cid: Some(c), .. } if text == "hello" && c == "c1")
        );
    }

    #[test]
    fn irc_lines() {
        let l = b":ann!u@host PRIVMSG #room :nbq m 1 2 3";
        assert_eq!(Protocol::Irc.classify(l), Incoming::Delivery(b"nbq m 1 2 3"));
        assert_eq!(
            Protocol::Irc.classify(b"PING :irc.example"),
            Incoming::Ping(b"PONG :irc.example\r\n".to_vec())
        );
        assert_eq!(Protocol::Irc.classify(b":srv NOTICE * :hi"), Incoming::Other);
        assert_eq!(Protocol::Irc.login_step(b":srv 001 b1 :Welcome"), Handshake::Done);
        assert!(matches!(Protocol::Irc.login_step(b":srv 433 * b1 :in use"), Handshake::Failed(_)));
        assert_eq!(Protocol::Irc.join_step(b":srv 366 b1 #room :End of NAMES", "#room"), Handshake::Done);
        assert_eq!(Protocol::Irc.join_step(b":srv 366 b1 #ROOM :End of NAMES", "#room"), Handshake::Done);
        // The 366 of a room the server joined us to at login is not ours.
        assert_eq!(
            Protocol::Irc.join_step(b":srv 366 b1 #lobby :End of NAMES", "#room"),
            Handshake::Continue(None)
        );
        let mut out = Vec::new();
        Protocol::Irc.write_send(&mut out, "#room", "hi", "c");
        assert_eq!(out, b"PRIVMSG #room :hi\r\n");
        assert_eq!(
            IrcLine::parse(b"PRIVMSG  #a b"),
            IrcLine { prefix: None, command: b"PRIVMSG", params: b"#a b" }
        );
        assert_eq!(trailing(b"#a word"), Some(&b"word"[..]));
    }
}
