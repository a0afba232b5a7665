//! The IRC front door (RFC 1459/2812 plus a few IRCv3 capabilities), so that any IRC client
//! can chat with natter users: IRC channels are natter rooms, a PRIVMSG to a nick is a
//! private message to any natter user. See `docs/irc.md` for what is supported.
//!
//! The core knows nothing of IRC. Each command sent to the hub carries an [`IrcRequest`](requests::IrcRequest) in
//! its token ([`requests`]), so that the answer is rendered as the numerics that command
//! expects ([`render`], [`replies`]) and a refusal as its numeric ([`numerics`]). What the door
//! answers by itself travels through the hub as an [`IrcNote`] so that it keeps its place
//! behind the hub's answers ([`ordering`]). Commands are parsed in [`cmd`], one file per family.

mod caps;
mod cmd;
mod lines;
mod numerics;
mod ordering;
mod render;
mod replies;
mod requests;

use super::{Door, Flow, SessionCtx, slots};
use caps::Caps;
use lines::{DEFAULT_SERVER, push_line, same_name};
use natter_core::{Event, RenderSlot, SessionKind};
use natter_proto::decode::{Detected, decode_text_detect};
use natter_proto::irc::{self, MAX_LINE, MAX_TAGS, split_tags};
use natter_proto::names::fold;
use std::time::Duration;
use tokio::time::Instant;

/// Most bytes of tags a client may send, `@` and the final space included (IRCv3
/// message-tags); the rest of the server's 8191 are for server tags.
const CLIENT_TAG_BYTES: usize = 4096;
/// Largest CHATHISTORY page (the hub's `max_history_page` default), told in ISUPPORT.
const HISTORY_PAGE: u32 = 500;
/// Longest line an IRC client may send: the tag section plus a classic 512-byte line.
pub const MAX_IRC_LINE: usize = MAX_TAGS + 512;
/// Silence after which the server sends a PING.
const PING_AFTER: Duration = Duration::from_secs(120);
/// Time a client has to answer the server's PING.
const PING_TIMEOUT: Duration = Duration::from_secs(60);
/// Most targets accepted in one PRIVMSG/NOTICE/KICK/NAMES (ISUPPORT `TARGMAX`); more are
/// dropped.
const MAX_TARGETS: usize = 4;

/// What the IRC door sends its own session through the hub, in order with the hub's answers.
#[derive(Debug)]
enum IrcNote {
    /// Ready-made lines: numerics and replies the door gives by itself.
    Lines(Vec<u8>),
    /// Opens a labeled response: every answer until [`IrcNote::LabelEnd`] is collected and
    /// sent under this label.
    LabelStart(String),
    /// Closes it.
    LabelEnd,
}

/// IRC state of one connection.
#[derive(Debug)]
pub struct IrcDoor {
    nick: String,
    /// `user@host` the hub shows for this session.
    ident: String,
    /// What is kept only until registration: `None` once registered.
    registering: Option<Box<Registering>>,
    realname: String,
    /// True between `CAP LS`/`REQ` and `CAP END` before registration: registration waits.
    negotiating: bool,
    caps: Caps,
    /// Names of the rooms this session is in.
    rooms: Vec<String>,
    /// After the welcome, lines wait here until the LUSERS/MOTD burst is out, so that the
    /// registration burst keeps the order clients expect (001-005, LUSERS, MOTD, then JOINs).
    deferring: bool,
    deferred: Vec<u8>,
    /// A JOIN for a room we were already in: the hub answers, IRC stays silent.
    rejoin: bool,
    last_seen: Instant,
    ping_sent: Option<Instant>,
    /// Name the server gives itself (`--server-name`).
    server: &'static str,
    /// The room everyone starts in, for the message of the day.
    lobby: String,
    /// Keys of secret (`+s`) rooms we saw announced, for NAMES' `@` channel type: few or none
    /// (a `ThinVec`, one pointer while empty).
    secret: thin_vec::ThinVec<String>,
    /// User mode `+i`: hidden from searches.
    invisible: bool,
    /// User mode `+w`: receives WALLOPS.
    wallops: bool,
    /// User mode `+B`: a bot (IRCv3 bot mode).
    bot: bool,
    /// A labeled command whose answers are being collected (labeled-response), boxed: most
    /// clients never label, and every idle connection holds this field.
    labeling: Option<Box<Labeling>>,
    /// The label of the line being handled, for commands that carry it with their request.
    line_label: Option<Box<str>>,
    /// Batch ids handed out (wrapping: an id only has to differ from the few batches open).
    batches: u32,
    /// Messages sent whose answer (ack or error) has not been rendered yet (bounded by the
    /// session's message rate and outbox).
    unanswered: u32,
    /// The door's own answers (PONG, numerics) held until those answers are out, so that a
    /// client's PING after a PRIVMSG sees the echo (sent once stored) first.
    held: Vec<u8>,
    /// The SASL exchange and the account it logged in to, until registration.
    sasl: Option<Box<cmd::sasl::Sasl>>,
    /// The client asked `CAP LS 302` (or later): capability values are shown.
    cap_302: bool,
    /// The client was told that a line of its was not UTF-8 (once per connection).
    warned_utf8: bool,
}

/// Secret rooms a session remembers seeing, at most (for NAMES' `@`).
const MAX_SECRET_MARKS: usize = 64;

/// What the door keeps only until the session is registered (`PASS`, `NICK`, `USER`), boxed
/// and dropped once registered: a registered connection keeps neither its password nor the
/// room of these fields.
#[derive(Default)]
struct Registering {
    /// The `PASS` the client sent, handed to the hub at registration.
    password: Option<String>,
    /// The nick to register with, once `NICK` came.
    pending_nick: Option<String>,
    /// The `USER` name, once `USER` came.
    user: Option<String>,
}

impl std::fmt::Debug for Registering {
    /// Never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registering")
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("pending_nick", &self.pending_nick)
            .field("user", &self.user)
            .finish()
    }
}

/// A labeled response being collected: its label and the lines rendered so far.
#[derive(Debug)]
struct Labeling {
    label: String,
    lines: Vec<u8>,
}

impl Default for IrcDoor {
    fn default() -> Self {
        Self {
            nick: String::new(),
            ident: String::new(),
            registering: Some(Box::default()),
            realname: String::new(),
            negotiating: false,
            caps: Caps::default(),
            rooms: Vec::new(),
            deferring: false,
            deferred: Vec::new(),
            rejoin: false,
            last_seen: Instant::now(),
            ping_sent: None,
            server: DEFAULT_SERVER,
            lobby: String::new(),
            secret: Default::default(),
            invisible: false,
            wallops: false,
            bot: false,
            labeling: None,
            line_label: None,
            batches: 0,
            unanswered: 0,
            held: Vec::new(),
            sasl: None,
            cap_302: false,
            warned_utf8: false,
        }
    }
}

impl IrcDoor {
    fn me(&self) -> &str {
        if self.nick.is_empty() { "*" } else { &self.nick }
    }

    fn in_room(&self, room: &str) -> bool {
        self.rooms.iter().any(|r| same_name(r, room))
    }

    fn next_batch(&mut self) -> String {
        self.batches = self.batches.wrapping_add(1);
        format!("natter{}", self.batches)
    }

    /// Notes whether room `room` is secret (`+s`), for NAMES' channel type.
    fn mark_secret(&mut self, room: &str, on: bool) {
        let key = fold(room);
        let known = self.secret.iter().position(|k| *k == key);
        match (on, known) {
            (true, None) => {
                // Bounded (the mark is cosmetic): a client asking the modes of many secret
                // rooms must not make each NAMES answer search a long list.
                if self.secret.len() >= MAX_SECRET_MARKS {
                    self.secret.remove(0);
                }
                self.secret.push(key);
            }
            (false, Some(at)) => {
                self.secret.swap_remove(at);
            }
            _ => {}
        }
    }

    /// Whether room `room` was seen secret.
    fn is_secret(&self, room: &str) -> bool {
        self.secret.contains(&fold(room))
    }
}

impl Door for IrcDoor {
    const KIND: SessionKind = SessionKind::Irc;
    const FLUSH_PARTIAL: bool = false;
    const TICK: Option<Duration> = Some(Duration::from_secs(15));

    /// IRC's own limit, whatever the session settings say: tags and a 512-byte message.
    fn line_limit(_settings: &crate::config::SessionSettings) -> usize {
        MAX_IRC_LINE
    }

    fn cache_slot(_event: &Event) -> Option<RenderSlot> {
        None
    }

    fn slot(&self, event: &Event) -> Option<RenderSlot> {
        if self.deferring || self.labeling.is_some() || !super::is_shared(event) {
            return None;
        }
        // An away user's join renders per recipient: only away-notify clients get the AWAY;
        // extended-join clients get their own form of every join.
        if matches!(event, Event::Join { away: Some(_), .. })
            || (self.caps.extended_join && matches!(event, Event::Join { .. }))
        {
            return None;
        }
        // Messages of logged-in senders carry their account to account-tag clients: two slots
        // of their own for the usual companions (message-tags), else rendered per recipient.
        let tagged_account = self.caps.account_tag
            && matches!(event, Event::Message(m) | Event::Ack { message: m, .. } if m.account.is_some());
        if tagged_account {
            return match (self.caps.server_time, self.caps.message_tags) {
                (false, true) => Some(slots::IRC_ACCOUNT_TAGS),
                (true, true) => Some(slots::IRC_TIME_ACCOUNT_TAGS),
                _ => None,
            };
        }
        Some(match (self.caps.server_time, self.caps.message_tags) {
            (false, false) => slots::IRC_PLAIN,
            (true, false) => slots::IRC_TIME,
            (false, true) => slots::IRC_TAGS,
            (true, true) => slots::IRC_TIME_TAGS,
        })
    }

    fn render(&mut self, event: &Event, out: &mut Vec<u8>) {
        self.render_in_order(event, out);
    }

    fn on_client_certificate(&mut self, fingerprint: &str) {
        self.sasl.get_or_insert_default().certificate = Some(fingerprint.into());
    }

    fn observe(&mut self, event: &Event) {
        match event {
            Event::Local(note) => {
                if let Some(IrcNote::LabelStart(label)) = note.get::<IrcNote>() {
                    self.labeling = Some(Box::new(Labeling { label: label.clone(), lines: Vec::new() }));
                }
            }
            Event::Welcome { nick, .. } => self.nick = nick.to_string(),
            Event::Joined { room, .. } => {
                self.rejoin = self.in_room(room);
                self.rooms.retain(|r| !same_name(r, room));
                self.rooms.push(room.to_string());
            }
            // Being kicked is leaving: a later JOIN is a fresh join, not a silent rejoin.
            Event::Part { room, nick, .. } | Event::Kick { room, nick, .. }
                if same_name(nick, &self.nick) =>
            {
                self.rooms.retain(|r| !same_name(r, room));
            }
            Event::Nick { old, new, .. } if same_name(old, &self.nick) => self.nick = new.to_string(),
            Event::RoomChanged { room, changes, .. } => {
                for c in changes {
                    if let natter_core::RoomChange::Secret(on) = c {
                        self.mark_secret(room, *on);
                    }
                }
            }
            Event::RoomModes { room, modes, .. } if modes.secret => self.mark_secret(room, true),
            _ => {}
        }
    }

    fn on_tick(&mut self, ctx: &mut SessionCtx) -> Flow {
        if ctx.session.is_none() {
            return Flow::Continue;
        }
        match self.ping_sent {
            Some(sent) if sent.elapsed() >= PING_TIMEOUT => ctx.close(
                natter_core::metrics::Disconnect::IdleTimeout,
                format!("Ping timeout: {} seconds", (PING_AFTER + PING_TIMEOUT).as_secs()),
            ),
            Some(_) => Flow::Continue,
            None if self.last_seen.elapsed() >= PING_AFTER => {
                self.ping_sent = Some(Instant::now());
                let mut reply = self.reply();
                push_line(&mut reply.out, "", None, "PING", &[self.server]);
                reply.send(ctx)
            }
            None => Flow::Continue,
        }
    }

    fn on_too_long(&mut self, ctx: &mut SessionCtx, _max: usize) -> Flow {
        self.last_seen = Instant::now();
        self.bad(ctx, "417", &["Input line was too long"])
    }

    async fn on_line(&mut self, line: &[u8], ctx: &mut SessionCtx) -> Flow {
        self.last_seen = Instant::now();
        self.ping_sent = None;
        let (text, detected) = decode_text_detect(line);
        // UTF8ONLY: a line that is not UTF-8 is read as GBK when it is clean GBK (legacy
        // Windows clients), and the client is told once (IRCv3 standard replies); any other
        // line that is not UTF-8 is refused with FAIL below. Invalid bytes are never relayed.
        if !self.warned_utf8 && detected == Detected::Gb18030 {
            self.warned_utf8 = true;
            let command =
                irc::parse(&text).map(|m| m.command.to_ascii_uppercase()).unwrap_or_else(|_| "*".into());
            let mut reply = self.reply();
            reply.line(
                "WARN",
                &[&command, "INVALID_UTF8", "Your client sent text that is not UTF-8: natter read it as GBK; set your client to UTF-8"],
            );
            if reply.send(ctx) != Flow::Continue {
                return Flow::Close("too slow".into());
            }
        }
        let (tags, rest) = split_tags(&text);
        // `tags` lacks the `@` and the space that the client limit counts.
        if tags.is_some_and(|t| t.len() + 2 > CLIENT_TAG_BYTES.min(MAX_TAGS)) || rest.len() > MAX_LINE {
            return self.bad(ctx, "417", &["Input line was too long"]);
        }
        let label = tags
            .filter(|_| self.caps.labeled_response && ctx.session.is_some())
            .and_then(|t| t.split(';').find_map(|kv| kv.strip_prefix("label=")))
            .filter(|l| !l.is_empty())
            .map(irc::unescape_tag_value);
        let parsed = irc::parse(&text);
        if detected == Detected::Invalid {
            let command =
                parsed.as_ref().map(|m| m.command.to_ascii_uppercase()).unwrap_or_else(|_| "*".into());
            return self.refuse_invalid_utf8(&command, label, ctx);
        }
        let Some(label) = label else { return self.handle_parsed(parsed, ctx).await };
        if let Ok(m) = &parsed {
            let command = m.command.to_ascii_uppercase();
            // NickServ's answers come as several lines: collected between markers.
            let single = m.param(0).is_some_and(|t| !t.contains(',') && !cmd::nickserv::is_nickserv(t));
            // A message to one target and CHATHISTORY carry the label with the request
            // (their answers come from the store or after a commit); every other command's
            // answers are collected between two markers that travel through the hub.
            if matches!(command.as_str(), "PRIVMSG" | "NOTICE" | "TAGMSG" | "CHATHISTORY") && single {
                self.line_label = Some(label.into());
                let flow = self.handle_parsed(parsed, ctx).await;
                self.line_label = None;
                return flow;
            }
        }
        if ctx.note(natter_core::DoorNote::new(IrcNote::LabelStart(label))) != Flow::Continue {
            return Flow::Close("too slow".into());
        }
        let flow = self.handle_parsed(parsed, ctx).await;
        if flow != Flow::Continue {
            return flow;
        }
        ctx.note(natter_core::DoorNote::new(IrcNote::LabelEnd))
    }
}

impl IrcDoor {
    /// Refuses a line that is neither UTF-8 nor clean GBK: nothing of it is acted on or
    /// relayed, and the client is told which command was dropped (labeled when it asked).
    fn refuse_invalid_utf8(&mut self, command: &str, label: Option<String>, ctx: &mut SessionCtx) -> Flow {
        let labeled = label.is_some();
        if let Some(label) = label
            && ctx.note(natter_core::DoorNote::new(IrcNote::LabelStart(label))) != Flow::Continue
        {
            return Flow::Close("too slow".into());
        }
        let mut reply = self.reply();
        reply.line(
            "FAIL",
            &[
                command,
                "INVALID_UTF8",
                "Your message was not UTF-8 and was not sent: set your client to UTF-8",
            ],
        );
        if reply.send(ctx) != Flow::Continue {
            return Flow::Close("too slow".into());
        }
        if labeled {
            return ctx.note(natter_core::DoorNote::new(IrcNote::LabelEnd));
        }
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::ChatMessage;
    use requests::Op;
    use std::sync::Arc;

    fn render(door: &mut IrcDoor, event: &Event) -> String {
        let mut out = Vec::new();
        door.observe(event);
        door.render(event, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn msg(text: &str, action: bool) -> Event {
        Event::Message(Arc::new(ChatMessage {
            room: Some("#lobby".into()),
            from: "ann".into(),
            ident: "native@10.0.0.1".into(),
            account: None,
            to: None,
            text: text.into(),
            action,
            bot: false,
            notice: false,
            meta: None,
            uid: 0,
            mid: Some(1),
            ts: 0,
        }))
    }

    #[test]
    fn messages_become_privmsg_and_actions_ctcp() {
        let mut door = IrcDoor { nick: "bob".into(), ..Default::default() };
        assert_eq!(
            render(&mut door, &msg("hi there", false)),
            ":ann!native@10.0.0.1 PRIVMSG #lobby :hi there\r\n"
        );
        assert_eq!(
            render(&mut door, &msg("waves", true)),
            ":ann!native@10.0.0.1 PRIVMSG #lobby :\u{1}ACTION waves\u{1}\r\n"
        );
        door.caps.server_time = true;
        assert_eq!(
            render(&mut door, &msg("x", false)),
            "@time=1970-01-01T00:00:00.000Z :ann!native@10.0.0.1 PRIVMSG #lobby :x\r\n"
        );
    }

    #[test]
    fn long_and_multiline_messages_fit_irc_lines() {
        let mut door = IrcDoor { nick: "bob".into(), ..Default::default() };
        let text = format!("{}\nsecond", "word ".repeat(400));
        let out = render(&mut door, &msg(&text, false));
        let lines: Vec<&str> = out.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert!(lines.len() >= 5, "{lines:?}");
        assert!(lines.iter().all(|l| l.len() <= MAX_LINE));
        assert!(lines.last().unwrap().ends_with(":second") || lines.last().unwrap().ends_with(" second"));
    }

    /// The longest line a client may send becomes longer than 512 bytes with the sender's
    /// prefix: it is relayed in pieces that each fit, and nothing of it is lost.
    #[test]
    fn a_longest_client_line_is_relayed_in_pieces_that_fit_and_lose_nothing() {
        let mut door = IrcDoor { nick: "bob".into(), ..Default::default() };
        let word = "a".repeat(MAX_LINE - "PRIVMSG #lobby ".len());
        let out = render(&mut door, &msg(&word, false));
        let lines: Vec<&str> = out.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), 2, "{out}");
        let mut relayed = String::new();
        for line in &lines {
            assert!(line.len() <= MAX_LINE, "{} bytes: {line}", line.len());
            let text = line.strip_prefix(":ann!native@10.0.0.1 PRIVMSG #lobby :").unwrap();
            relayed.push_str(text);
        }
        assert_eq!(lines[0].len(), MAX_LINE, "the first piece fills the line");
        assert_eq!(relayed, word);
    }

    #[test]
    fn only_our_own_part_or_kick_leaves_a_room() {
        let mut door = IrcDoor { nick: "Bob".into(), rooms: vec!["#Lobby".into()], ..Default::default() };
        let part = |nick: &str| Event::Part {
            room: "#lobby".into(),
            nick: nick.into(),
            ident: "x@y".into(),
            reason: None,
            ts: 0,
        };
        door.observe(&part("ann"));
        assert!(door.in_room("#LOBBY"));
        door.observe(&Event::Nick { old: "bob".into(), new: "rob".into(), ident: "x@y".into(), ts: 0 });
        assert_eq!(door.nick, "rob");
        door.observe(&part("ROB"));
        assert!(!door.in_room("#lobby"));
    }

    #[test]
    fn registration_burst_is_ordered() {
        let mut door = IrcDoor::default();
        let mut all = render(&mut door, &Event::Welcome { req: None, nick: "bob".into() });
        let joined = Event::Joined {
            req: None,
            room: "#lobby".into(),
            topic: "".into(),
            topic_set: None,
            secret: false,
            members: vec!["ann".into(), "bob".into()],
            count: 2,
            idents: Vec::new(),
            operators: vec!["ann".into()],
            voiced: Vec::new(),
            ephemeral: false,
            history: Vec::new(),
            account: None,
        };
        assert!(door.slot(&msg("x", false)).is_none());
        all += &render(&mut door, &joined);
        all += &render(&mut door, &msg("early", false));
        let stats = natter_core::event::ServerStats { users: 2, hidden: 0, operators: 0, peak: 2 };
        let counts = Event::ServerStats { req: Op::Lusers { welcome: true }.token(), stats };
        all += &render(&mut door, &counts);
        let codes: Vec<&str> = all.lines().map(|l| l.split(' ').nth(1).unwrap_or("")).collect();
        assert_eq!(
            codes,
            [
                "001", "002", "003", "004", "005", "005", "251", "255", "265", "266", "375", "372", "372",
                "372", "376", "JOIN", "353", "366", "PRIVMSG"
            ]
        );
        assert!(all.contains(":natter 353 bob = #lobby :@ann bob\r\n"), "{all}");
        assert_eq!(door.slot(&msg("x", false)), Some(slots::IRC_PLAIN));
    }
}
