//! The IRC front door (RFC 1459/2812 plus a few IRCv3 capabilities), so that any IRC client
//! can chat with natter users: IRC channels are natter rooms, a PRIVMSG to a nick is a
//! private message to any natter user. See `docs/irc.md` for what is supported.
//!
//! The core knows nothing of IRC. Answers the door gives by itself (numerics) travel through
//! the session's outbox as door-local notices ([`RAW`]), so that they keep their order with
//! the hub's events. Requests carry a door-chosen tag (`"op arg"` in `RequestId::Text`) that
//! the hub echoes on answers and errors; it tells the renderer which numeric to use and which
//! channel or nick it concerns.

mod moderation;

use super::{Door, Flow, SessionCtx};
use natter_core::event::{MemberInfo, UserInfo, parse_msgid};
use natter_core::hub::{MAX_AWAY_BYTES, MAX_BANS, MAX_KEY_CHARS, MAX_KICK_BYTES, MAX_TOPIC_BYTES};
use natter_core::store::HistoryQuery;
use natter_core::{ChatMessage, Command, ErrorCode, Event, RequestId, SessionKind, Target};
use natter_proto::decode::decode_text;
use natter_proto::irc::{self, MAX_LINE, MAX_TAGS, ParseError, split_tags, write_line};
use natter_proto::names::{Glob, MAX_NICK_CHARS, MAX_ROOM_CHARS, fold, validate_nick, validate_room};
use std::time::{Duration, Instant};

/// Render-cache slot of shared IRC lines without tags.
const SLOT_PLAIN: usize = 2;
/// Render-cache slot of shared IRC lines with the `server-time` tag only.
const SLOT_TIME: usize = 3;
/// Render-cache slot of shared IRC lines with `message-tags` tags (msgid, client tags) only.
const SLOT_TAGS: usize = 4;
/// Render-cache slot of shared IRC lines with both.
const SLOT_TIME_TAGS: usize = 5;
/// Most bytes of tags a client may send, `@` and the final space included (IRCv3
/// message-tags); the rest of the server's 8191 are for server tags.
const CLIENT_TAG_BYTES: usize = 4096;
/// Largest CHATHISTORY page (the hub's `max_history_page` default), told in ISUPPORT.
const HISTORY_PAGE: u32 = 500;
/// Request-tag separator before a labeled-response label carried with the request.
const LABEL_SEP: char = '\u{1f}';
/// Request tag of the marker that opens a labeled response collected by the door.
const LABEL_START: &str = "\0label";
/// Request tag of the marker that closes it.
const LABEL_END: &str = "\0label-end";
/// Highest user count seen (LUSERS "max").
static PEAK_USERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Longest line an IRC client may send: the tag section plus a classic 512-byte line.
pub const MAX_IRC_LINE: usize = MAX_TAGS + 512;
/// Name the server gives itself in prefixes.
const DEFAULT_SERVER: &str = "natter";
/// Request tag of door-local output: a notice carrying ready-made IRC lines.
const RAW: &str = "\0irc";
/// Capabilities offered in `CAP LS`.
const CAPS: &[&str] = &[
    "account-notify",
    "away-notify",
    "batch",
    "cap-notify",
    "draft/chathistory",
    "echo-message",
    "labeled-response",
    "message-tags",
    "multi-prefix",
    "server-time",
    "userhost-in-names",
];
/// Silence after which the server sends a PING.
const PING_AFTER: Duration = Duration::from_secs(120);
/// Time a client has to answer the server's PING.
const PING_TIMEOUT: Duration = Duration::from_secs(60);
/// Most targets accepted in one PRIVMSG/NOTICE/KICK/NAMES (ISUPPORT `TARGMAX`); more are
/// dropped.
const MAX_TARGETS: usize = 4;

/// Enabled IRCv3 capabilities.
#[derive(Debug, Default, Clone, Copy)]
struct Caps {
    /// Accepted; natter has no account logins on IRC yet, so no ACCOUNT line is ever due.
    account_notify: bool,
    away_notify: bool,
    batch: bool,
    /// Accepted; natter's capabilities never change while a client is connected.
    cap_notify: bool,
    chathistory: bool,
    echo_message: bool,
    labeled_response: bool,
    message_tags: bool,
    multi_prefix: bool,
    server_time: bool,
    userhost_in_names: bool,
}

impl Caps {
    /// The flag of a capability named in [`CAPS`].
    fn flag(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "account-notify" => &mut self.account_notify,
            "away-notify" => &mut self.away_notify,
            "batch" => &mut self.batch,
            "cap-notify" => &mut self.cap_notify,
            "draft/chathistory" => &mut self.chathistory,
            "echo-message" => &mut self.echo_message,
            "labeled-response" => &mut self.labeled_response,
            "message-tags" => &mut self.message_tags,
            "multi-prefix" => &mut self.multi_prefix,
            "server-time" => &mut self.server_time,
            "userhost-in-names" => &mut self.userhost_in_names,
            _ => return None,
        })
    }

    fn set(&mut self, name: &str, on: bool) -> bool {
        self.flag(name).map(|flag| *flag = on).is_some()
    }

    /// The enabled capabilities, in [`CAPS`] order.
    fn list(&self) -> String {
        let mut caps = *self;
        let on: Vec<&str> = CAPS.iter().copied().filter(|name| caps.flag(name).is_some_and(|f| *f)).collect();
        on.join(" ")
    }
}

/// IRC state of one connection.
#[derive(Debug)]
pub struct IrcDoor {
    nick: String,
    /// `user@host` the hub shows for this session.
    ident: String,
    pending_nick: Option<String>,
    user: Option<String>,
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
    /// The `PASS` the client sent, handed to the hub at registration.
    password: Option<String>,
    /// Keys of secret (`+s`) rooms we saw announced, for NAMES' `@` channel type.
    secret: std::collections::HashSet<String>,
    /// User mode `+i`.
    invisible: bool,
    /// User mode `+w`: receives WALLOPS.
    wallops: bool,
    /// The label of a labeled command whose answers are being collected (labeled-response).
    labeling: Option<String>,
    /// Lines collected for `labeling`.
    label_buf: Vec<u8>,
    /// The label of the line being handled, for commands that carry it with their request.
    line_label: Option<String>,
    /// Batch ids handed out.
    batches: u64,
    /// Messages sent whose answer (ack or error) has not been rendered yet.
    unanswered: usize,
    /// The door's own answers (PONG, numerics) held until those answers are out, so that a
    /// client's PING after a PRIVMSG sees the echo (sent once stored) first.
    held: Vec<u8>,
}

impl Default for IrcDoor {
    fn default() -> Self {
        Self {
            nick: String::new(),
            ident: String::new(),
            pending_nick: None,
            user: None,
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
            password: None,
            secret: Default::default(),
            invisible: false,
            wallops: false,
            labeling: None,
            label_buf: Vec::new(),
            line_label: None,
            batches: 0,
            unanswered: 0,
            held: Vec::new(),
        }
    }
}

fn tag(op: &str, arg: &str) -> Option<RequestId> {
    Some(RequestId::Text(format!("{op} {arg}")))
}

fn untag(req: &Option<RequestId>) -> (&str, &str) {
    match req {
        Some(RequestId::Text(t)) => {
            let t = t.split(LABEL_SEP).next().unwrap_or("");
            t.split_once(' ').unwrap_or((t, ""))
        }
        _ => ("", ""),
    }
}

/// The labeled-response label a request carries, if any.
fn label_of(req: &Option<RequestId>) -> Option<&str> {
    match req {
        Some(RequestId::Text(t)) => t.split_once(LABEL_SEP).map(|(_, l)| l),
        _ => None,
    }
}

/// The request of events that may answer a command carrying its label.
fn labeled_req(event: &Event) -> Option<&Option<RequestId>> {
    match event {
        Event::Ack { req, .. }
        | Event::Error { req, .. }
        | Event::History { req, .. }
        | Event::Conversations { req, .. } => Some(req),
        _ => None,
    }
}

/// Adds one tag (`key=value`, escaped) to a rendered line.
fn add_tag(line: &[u8], tag: &str, out: &mut Vec<u8>) {
    out.push(b'@');
    out.extend_from_slice(tag.as_bytes());
    match line.strip_prefix(b"@") {
        Some(rest) => {
            out.push(b';');
            out.extend_from_slice(rest);
        }
        None => {
            out.push(b' ');
            out.extend_from_slice(line);
        }
    }
}

/// Parses an IRCv3 `server-time` timestamp (`YYYY-MM-DDThh:mm:ss[.sss]Z`) into ms since the
/// epoch.
fn parse_server_time(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let digits: String = frac.chars().chain("000".chars()).take(3).collect();
    let ms: i64 = digits.parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let total = ((days * 24 + hh) * 60 + mm) * 60 + ss;
    u64::try_from(total * 1000 + ms).ok()
}

/// `nick!user@host` for a nick and the hub's `user@host`.
fn source(nick: &str, ident: &str) -> String {
    if ident.contains('@') { format!("{nick}!{ident}") } else { format!("{nick}!{ident}@{DEFAULT_SERVER}") }
}

/// Whether two nicks or room names are one under [`fold`], without allocating when both are
/// ASCII (the observer runs for every event delivered to the session).
fn same_name(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() { a.eq_ignore_ascii_case(b) } else { fold(a) == fold(b) }
}

/// `(user, host)` of a hub ident (`user@host`).
fn split_ident<'a>(ident: &'a str, server: &'a str) -> (&'a str, &'a str) {
    ident.split_once('@').unwrap_or((ident, server))
}

/// The longest start of `s` of at most `max` bytes that ends on a character boundary.
fn clip(s: &str, max: usize) -> &str {
    let mut cut = max.min(s.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// Appends one line (CRLF included), cut to the classic 512 bytes if a parameter was long.
fn push_line(out: &mut Vec<u8>, tags: &str, prefix: Option<&str>, command: &str, params: &[&str]) {
    push_line_max(out, tags, prefix, command, params, MAX_LINE);
}

/// [`push_line`] with another cut-off (relayed messages may exceed 512 by their prefix).
fn push_line_max(
    out: &mut Vec<u8>,
    tags: &str,
    prefix: Option<&str>,
    command: &str,
    params: &[&str],
    max: usize,
) {
    let mut s = String::with_capacity(128);
    write_line(&mut s, prefix, command, params);
    out.extend_from_slice(tags.as_bytes());
    out.extend_from_slice(clip(&s, max).as_bytes());
    out.extend_from_slice(b"\r\n");
}

impl IrcDoor {
    fn me(&self) -> &str {
        if self.nick.is_empty() { "*" } else { &self.nick }
    }

    fn in_room(&self, room: &str) -> bool {
        self.rooms.iter().any(|r| same_name(r, room))
    }

    /// A numeric reply from the server to this client.
    fn numeric(&self, out: &mut Vec<u8>, code: &str, params: &[&str]) {
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(self.me());
        all.extend_from_slice(params);
        push_line(out, "", Some(self.server), code, &all);
    }

    fn time_tag(&self, ts: u64) -> String {
        if self.caps.server_time { format!("@time={} ", irc::server_time(ts)) } else { String::new() }
    }

    /// Tags of a chat message line: `time` (server-time), `msgid` and the sender's client-only
    /// tags (message-tags), `batch` inside a batch.
    fn message_tags(&self, m: &ChatMessage, batch: Option<&str>) -> String {
        let mut t = String::new();
        let mut add = |s: &str| {
            t.push(if t.is_empty() { '@' } else { ';' });
            t.push_str(s);
        };
        if let Some(b) = batch {
            add(&format!("batch={b}"));
        }
        if self.caps.server_time {
            add(&format!("time={}", irc::server_time(m.ts)));
        }
        if self.caps.message_tags {
            add(&format!("msgid={}", m.msgid()));
            if let Some(tags) = &m.tags {
                add(tags);
            }
        }
        if !t.is_empty() {
            t.push(' ');
        }
        t
    }

    fn next_batch(&mut self) -> String {
        self.batches += 1;
        format!("natter{}", self.batches)
    }

    /// Sends the answer to a labeled command: `ACK` for none, the line labeled for one, a
    /// `labeled-response` batch for more (a lone batch carries the label itself).
    fn wrap_label(&mut self, label: &str, lines: &[u8], out: &mut Vec<u8>) {
        let mut label_tag = String::from("label=");
        irc::escape_tag_value(label, &mut label_tag);
        let mut split: Vec<&[u8]> = lines.split_inclusive(|&b| b == b'\n').collect();
        split.retain(|l| !l.is_empty());
        let lone_batch = split.first().is_some_and(|l| {
            let text = String::from_utf8_lossy(l);
            text.split(' ').take(3).any(|w| w == "BATCH")
        }) && split.last().is_some_and(|l| String::from_utf8_lossy(l).contains(" BATCH -"));
        match split.len() {
            0 => push_line(out, &format!("@{label_tag} "), Some(self.server), "ACK", &[]),
            1 => add_tag(split[0], &label_tag, out),
            _ if lone_batch => {
                add_tag(split[0], &label_tag, out);
                for l in &split[1..] {
                    out.extend_from_slice(l);
                }
            }
            _ => {
                let id = self.next_batch();
                let start = format!("@{label_tag} ");
                push_line(out, &start, Some(self.server), "BATCH", &[&format!("+{id}"), "labeled-response"]);
                let batch_tag = format!("batch={id}");
                for l in split {
                    add_tag(l, &batch_tag, out);
                }
                push_line(out, "", Some(self.server), "BATCH", &[&format!("-{id}")]);
            }
        }
    }

    /// A chat message as PRIVMSG or NOTICE lines (TAGMSG for a tag-only message, to
    /// message-tags clients only), with CTCP ACTION for `/me`. A line that fits what an IRC
    /// client may send is relayed whole (even when the sender's prefix makes it longer than
    /// 512 bytes, as modern servers do); longer natter messages are split at spaces.
    fn message(&self, m: &ChatMessage, batch: Option<&str>, out: &mut Vec<u8>) {
        let target = match (&m.room, &m.to) {
            (Some(room), _) => &**room,
            (None, Some(to)) => &**to,
            (None, None) => self.me(),
        };
        let tags = self.message_tags(m, batch);
        let prefix = source(&m.from, &m.ident);
        if m.text.is_empty() {
            if m.tags.is_some() && self.caps.message_tags {
                push_line(out, &tags, Some(&prefix), "TAGMSG", &[target]);
            }
            return;
        }
        let command = if m.notice { "NOTICE" } else { "PRIVMSG" };
        // What a client could send in one line: `PRIVMSG target :text` in 510 bytes.
        let ctcp = if m.action { 9 } else { 0 };
        let client_room = MAX_LINE.saturating_sub(command.len() + 1 + target.len() + 1 + ctcp);
        // Room for the text: 510 minus prefix, command, target, separators and CTCP framing.
        let overhead = 1 + prefix.len() + 1 + command.len() + 1 + target.len() + 2 + 9;
        let room_for_text = MAX_LINE.saturating_sub(overhead).max(16);
        let max = MAX_LINE + 1 + prefix.len() + 1;
        for line in m.text.split(['\n', '\r']).filter(|l| !l.is_empty()) {
            let pieces =
                if line.len() <= client_room { vec![line] } else { irc::split_text(line, room_for_text) };
            for piece in pieces {
                let body;
                let text = if m.action {
                    body = format!("\u{1}ACTION {piece}\u{1}");
                    &body
                } else {
                    piece
                };
                push_line_max(out, &tags, Some(&prefix), command, &[target, text], max);
            }
        }
    }

    /// `@`/`+` (or both, with multi-prefix) before a nick in NAMES and WHO.
    fn prefix_of(&self, op: bool, voice: bool) -> &'static str {
        match (op, voice) {
            (true, true) if self.caps.multi_prefix => "@+",
            (true, _) => "@",
            (false, true) => "+",
            _ => "",
        }
    }

    /// 353 lines and 366 for `(nick, user@host, op, voice)` entries; `kind` is `=` or `@`
    /// (secret). With userhost-in-names, entries are `nick!user@host`.
    fn names(&self, room: &str, kind: &str, entries: &[(&str, &str, bool, bool)], out: &mut Vec<u8>) {
        self.names_lines(room, kind, entries, out);
        self.numeric(out, "366", &[room, "End of /NAMES list"]);
    }

    /// The 353 lines of [`Self::names`] without the closing 366 (one channel of a
    /// multi-channel NAMES, which ends with one 366 for the whole list).
    fn names_lines(&self, room: &str, kind: &str, entries: &[(&str, &str, bool, bool)], out: &mut Vec<u8>) {
        let prefix = format!(":{} 353 {} {kind} {room} :", self.server, self.me());
        let mut list = String::new();
        for &(nick, ident, op, voice) in entries {
            let entry = if self.caps.userhost_in_names && !ident.is_empty() {
                format!("{}{}", self.prefix_of(op, voice), source(nick, ident))
            } else {
                format!("{}{nick}", self.prefix_of(op, voice))
            };
            if !list.is_empty() && prefix.len() + list.len() + 1 + entry.len() > MAX_LINE {
                self.numeric(out, "353", &[kind, room, &list]);
                list.clear();
            }
            if !list.is_empty() {
                list.push(' ');
            }
            list.push_str(&entry);
        }
        if !list.is_empty() {
            self.numeric(out, "353", &[kind, room, &list]);
        }
    }

    fn isupport(&self, out: &mut Vec<u8>) {
        let nicklen = format!("NICKLEN={MAX_NICK_CHARS}");
        let chanlen = format!("CHANNELLEN={MAX_ROOM_CHARS}");
        let targmax = format!(
            "TARGMAX=PRIVMSG:{MAX_TARGETS},NOTICE:{MAX_TARGETS},JOIN:,PART:,NAMES:{MAX_TARGETS},\
             KICK:{MAX_TARGETS},WHOIS:1"
        );
        // The hub's limits, which hold for every front door: IRC only announces them.
        let awaylen = format!("AWAYLEN={MAX_AWAY_BYTES}");
        let topiclen = format!("TOPICLEN={MAX_TOPIC_BYTES}");
        let kicklen = format!("KICKLEN={MAX_KICK_BYTES}");
        let maxlist = format!("MAXLIST=b:{MAX_BANS}");
        let keylen = format!("KEYLEN={MAX_KEY_CHARS}");
        let history = format!("CHATHISTORY={HISTORY_PAGE}");
        let tokens = [
            "NETWORK=natter",
            "CASEMAPPING=ascii",
            "CHANTYPES=#",
            "PREFIX=(ov)@+",
            "CHANMODES=b,k,l,imnst",
            "MODES=4",
            &maxlist,
            &keylen,
            &topiclen,
            &kicklen,
            "CHANLIMIT=#:",
            &nicklen,
            &chanlen,
            &targmax,
            &awaylen,
            "LINELEN=512",
            &history,
            "MSGREFTYPES=msgid,timestamp",
        ];
        // At most 13 tokens per line (15 parameters with the nick and the trailing text).
        for chunk in tokens.chunks(13) {
            let mut params: Vec<&str> = chunk.to_vec();
            params.push("are supported by this server");
            self.numeric(out, "005", &params);
        }
    }

    fn motd(&self, out: &mut Vec<u8>) {
        self.numeric(out, "375", &[&format!("- {} Message of the day -", self.server)]);
        for line in [
            "- Welcome to natter: IRC channels are natter rooms, shared with",
            "- natter's own clients, text mode, UDP and IRC users alike.",
            "- #lobby is where everyone starts.",
        ] {
            self.numeric(out, "372", &[line]);
        }
        self.numeric(out, "376", &["End of /MOTD command."]);
    }

    fn lusers(&self, users: usize, invisible: usize, ops: usize, out: &mut Vec<u8>) {
        let n = users.to_string();
        let peak = PEAK_USERS.fetch_max(users, std::sync::atomic::Ordering::Relaxed).max(users).to_string();
        let visible = users - invisible.min(users);
        self.numeric(
            out,
            "251",
            &[&format!("There are {visible} users and {invisible} invisible on 1 servers")],
        );
        if ops > 0 {
            self.numeric(out, "252", &[&ops.to_string(), "operator(s) online"]);
        }
        self.numeric(out, "255", &[&format!("I have {n} clients and 0 servers")]);
        self.numeric(out, "265", &[&n, &peak, &format!("Current local users {n}, max {peak}")]);
        self.numeric(out, "266", &[&n, &peak, &format!("Current global users {n}, max {peak}")]);
    }

    fn render_members(
        &mut self,
        req: &Option<RequestId>,
        room: Option<&str>,
        nicks: &[natter_core::command::Name],
        info: &[MemberInfo],
        out: &mut Vec<u8>,
    ) {
        let (op, arg) = untag(req);
        let find = |n: &str| info.iter().find(|x| same_name(&x.nick, n));
        match op {
            "lusers" => {
                let invisible = info.iter().filter(|m| m.invisible).count();
                self.lusers(nicks.len(), invisible, info.iter().filter(|m| m.server_op).count(), out);
                if arg == "welcome" {
                    self.motd(out);
                    self.deferring = false;
                    out.append(&mut self.deferred);
                }
            }
            "names" | "namespart" => {
                let room = room.unwrap_or(arg);
                let kind = if self.secret.contains(&fold(room)) { "@" } else { "=" };
                let entries: Vec<(&str, &str, bool, bool)> =
                    info.iter().map(|m| (&*m.nick, &*m.ident, m.op, m.voice)).collect();
                if op == "names" {
                    self.names(room, kind, &entries, out)
                } else {
                    self.names_lines(room, kind, &entries, out)
                }
            }
            "who" => {
                let (channel, list): (&str, Vec<&MemberInfo>) = match room {
                    Some(r) => (r, info.iter().collect()),
                    None if arg == "*" => ("*", info.iter().collect()),
                    // A mask search skips invisible users who share no channel with us; an
                    // exact nick finds them.
                    None => {
                        let wild = arg.contains(['*', '?']);
                        // At most 64 characters of mask: it is matched against every user.
                        let mask = Glob::new(arg.char_indices().nth(64).map_or(arg, |(cut, _)| &arg[..cut]));
                        let found = info
                            .iter()
                            .filter(|m| mask.matches(&m.nick))
                            .filter(|m| !wild || !m.invisible || m.shares_room)
                            .collect();
                        ("*", found)
                    }
                };
                for m in list {
                    let (user, host) = split_ident(&m.ident, self.server);
                    let mut flags = String::from(if m.away.is_some() { "G" } else { "H" });
                    if m.server_op {
                        flags.push('*');
                    }
                    if room.is_some() {
                        flags.push_str(self.prefix_of(m.op, m.voice));
                    }
                    let real = format!("0 {}", m.realname);
                    self.numeric(out, "352", &[channel, user, host, self.server, &m.nick, &flags, &real]);
                }
                self.numeric(out, "315", &[arg, "End of /WHO list"]);
            }
            "ison" => {
                let online: Vec<&str> = arg.split(' ').filter_map(|n| find(n).map(|x| &*x.nick)).collect();
                self.numeric(out, "303", &[&online.join(" ")]);
            }
            "userhost" => {
                let mut replies = Vec::new();
                for n in arg.split(' ').take(5) {
                    if let Some(m) = find(n) {
                        let away = if m.away.is_some() { '-' } else { '+' };
                        let oper = if m.server_op { "*" } else { "" };
                        replies.push(format!("{}{oper}={away}{}", m.nick, m.ident));
                    }
                }
                self.numeric(out, "302", &[&replies.join(" ")]);
            }
            _ => {
                let list: Vec<&str> = nicks.iter().map(|n| &**n).collect();
                let text = format!("{}: {}", room.unwrap_or("online"), list.join(" "));
                push_line(out, "", Some(self.server), "NOTICE", &[self.me(), &text]);
            }
        }
    }

    fn render_whois(&self, arg: &str, user: &UserInfo, out: &mut Vec<u8>) {
        let nick = &*user.nick;
        let (u, host) = split_ident(&user.ident, self.server);
        self.numeric(out, "311", &[nick, u, host, "*", &user.realname]);
        let rooms: Vec<String> =
            user.rooms.iter().map(|r| format!("{}{}", self.prefix_of(r.op, r.voice), r.room)).collect();
        if !rooms.is_empty() {
            self.numeric(out, "319", &[nick, &rooms.join(" ")]);
        }
        self.numeric(out, "312", &[nick, self.server, "natter chat server"]);
        if user.server_op {
            self.numeric(out, "313", &[nick, "is a server operator (the console)"]);
        }
        if let Some(away) = &user.away {
            self.numeric(out, "301", &[nick, away]);
        }
        let now = natter_core::time::now_ms();
        let idle = (now.saturating_sub(user.active_ts) / 1000).to_string();
        let signon = (user.signon_ts / 1000).to_string();
        self.numeric(out, "317", &[nick, &idle, &signon, "seconds idle, signon time"]);
        self.numeric(out, "318", &[arg, "End of /WHOIS list"]);
    }

    fn render_error(&self, req: &Option<RequestId>, code: ErrorCode, message: &str, out: &mut Vec<u8>) {
        let (op, arg) = untag(req);
        if op == "notice" {
            // RFC 2812: automatic replies must never answer a NOTICE.
            return;
        }
        if op == "chathistory" {
            let (sub, target) = arg.split_once(' ').unwrap_or((arg, "*"));
            let params: &[&str] = match code {
                ErrorCode::NoSuchRoom | ErrorCode::InvalidRoom | ErrorCode::NotInRoom => {
                    &["CHATHISTORY", "INVALID_TARGET", sub, target, message]
                }
                _ => &["CHATHISTORY", "MESSAGE_ERROR", sub, target, message],
            };
            return push_line(out, "", Some(self.server), "FAIL", params);
        }
        // `kick`/`invite`/`mode` tags carry "#room nick"; a failing nick in MODE is the first
        // word of the hub's message.
        let (room, nick) = arg.split_once(' ').unwrap_or((arg, ""));
        let named = if nick.is_empty() { message.split(' ').next().unwrap_or("*") } else { nick };
        match (code, op) {
            (ErrorCode::NickInUse, _) => self.numeric(out, "433", &[arg, "Nickname is already in use"]),
            (ErrorCode::InvalidNick, _) => self.numeric(out, "432", &[arg, message]),
            (ErrorCode::BadPassword, _) => self.numeric(out, "464", &["Password incorrect"]),
            (ErrorCode::NotOperator, "oper") => self.numeric(out, "491", &["No O-lines for your host"]),
            (ErrorCode::NotOperator, "kill" | "wallops") => {
                self.numeric(out, "481", &["Permission Denied- You're not an IRC operator"])
            }
            (_, "names") => self.numeric(out, "366", &[room, "End of /NAMES list"]),
            // One channel of a multi-channel NAMES: the list's single 366 follows.
            (_, "namespart") => {}
            (_, "who") => self.numeric(out, "315", &[arg, "End of /WHO list"]),
            (ErrorCode::NoSuchNick, "whois") => {
                self.numeric(out, "401", &[arg, "No such nick/channel"]);
                self.numeric(out, "318", &[arg, "End of /WHOIS list"]);
            }
            (ErrorCode::NoSuchNick, "kick" | "invite" | "mode") => {
                self.numeric(out, "401", &[named, "No such nick/channel"])
            }
            (ErrorCode::NoSuchNick, _) => self.numeric(out, "401", &[arg, "No such nick/channel"]),
            (ErrorCode::UserNotInRoom, _) => {
                self.numeric(out, "441", &[named, room, "They aren't on that channel"])
            }
            (ErrorCode::AlreadyInRoom, _) => {
                self.numeric(out, "443", &[named, room, "is already on channel"])
            }
            (ErrorCode::CannotSend, _) => self.numeric(out, "404", &[room, "Cannot send to channel"]),
            (ErrorCode::Banned, _) => self.numeric(out, "474", &[room, "Cannot join channel (+b)"]),
            (ErrorCode::InviteOnly, _) => self.numeric(out, "473", &[room, "Cannot join channel (+i)"]),
            (ErrorCode::BadKey, _) => self.numeric(out, "475", &[room, "Cannot join channel (+k)"]),
            (ErrorCode::RoomFull, _) => self.numeric(out, "471", &[room, "Cannot join channel (+l)"]),
            (ErrorCode::Other, "mode") if message.starts_with("invalid key") => {
                self.numeric(out, "696", &[room, "k", "*", message])
            }
            (ErrorCode::Other, "mode") if message.starts_with("ban list") => {
                self.numeric(out, "478", &[room, "*", message])
            }
            (ErrorCode::NoSuchRoom | ErrorCode::InvalidRoom, _) => {
                self.numeric(out, "403", &[room, "No such channel"])
            }
            (ErrorCode::NotInRoom, "msg") => self.numeric(out, "404", &[room, "Cannot send to channel"]),
            (ErrorCode::NotInRoom, _) => self.numeric(out, "442", &[room, "You're not on that channel"]),
            (ErrorCode::NotOperator, _) => self.numeric(out, "482", &[room, "You're not channel operator"]),
            (ErrorCode::EmptyMessage, _) => self.numeric(out, "412", &["No text to send"]),
            (ErrorCode::TooLong, _) => self.numeric(out, "417", &["Input line was too long"]),
            (ErrorCode::NotRegistered, _) => self.numeric(out, "451", &["You have not registered"]),
            (ErrorCode::AlreadyRegistered, _) => self.numeric(out, "462", &["You may not reregister"]),
            (ErrorCode::RateLimited, _) => {
                push_line(out, "", Some(self.server), "NOTICE", &[self.me(), message])
            }
            _ => {
                let command = if op.is_empty() { "*".to_string() } else { op.to_ascii_uppercase() };
                self.numeric(out, "400", &[&command, message]);
            }
        }
    }

    fn render_event(&mut self, event: &Event, out: &mut Vec<u8>) {
        match event {
            Event::Welcome { nick, .. } => {
                let full = source(nick, &self.ident);
                self.numeric(out, "001", &[&format!("Welcome to natter, {full}")]);
                let version = concat!("natter-", env!("CARGO_PKG_VERSION"));
                self.numeric(
                    out,
                    "002",
                    &[&format!("Your host is {}, running version {version}", self.server)],
                );
                self.numeric(out, "003", &["This server speaks natter, IRC, text and UDP"]);
                self.numeric(out, "004", &[self.server, version, "iow", "n"]);
                self.isupport(out);
                self.deferring = true;
            }
            Event::Message(m) => self.message(m, None, out),
            Event::Ack { message, duplicate, away, .. } => {
                if let (Some(away), Some(to), false) = (away, &message.to, message.notice) {
                    self.numeric(out, "301", &[to, away]);
                }
                if self.caps.echo_message && !duplicate {
                    self.message(message, None, out);
                }
            }
            Event::Join { room, nick, ident, away, ts } => {
                let prefix = source(nick, ident);
                push_line(out, &self.time_tag(*ts), Some(&prefix), "JOIN", &[room]);
                if let (Some(away), true) = (away, self.caps.away_notify) {
                    push_line(out, "", Some(&prefix), "AWAY", &[away]);
                }
            }
            Event::Part { room, nick, ident, reason, ts } => {
                let prefix = source(nick, ident);
                match reason {
                    Some(r) => push_line(out, &self.time_tag(*ts), Some(&prefix), "PART", &[room, r]),
                    None => push_line(out, &self.time_tag(*ts), Some(&prefix), "PART", &[room]),
                }
            }
            Event::Quit { nick, ident, reason, ts } => {
                let reason = reason.as_deref().unwrap_or("Quit");
                push_line(out, &self.time_tag(*ts), Some(&source(nick, ident)), "QUIT", &[reason]);
            }
            Event::Nick { old, new, ident, ts } => {
                push_line(out, &self.time_tag(*ts), Some(&source(old, ident)), "NICK", &[new]);
            }
            Event::Topic { req, room, topic, by, changed } => {
                let (op, _) = untag(req);
                match (op, changed) {
                    (_, true) => {
                        let by = by.as_deref().unwrap_or(self.server);
                        push_line(out, "", Some(by), "TOPIC", &[room, topic]);
                    }
                    ("topic", false) if topic.is_empty() => {
                        self.numeric(out, "331", &[room, "No topic is set"])
                    }
                    // No 333 (who/when): the core keeps who set a topic but not when.
                    ("topic", false) => self.numeric(out, "332", &[room, topic]),
                    _ => {}
                }
            }
            Event::Joined {
                room,
                topic,
                topic_set,
                secret,
                members,
                idents,
                operators,
                voiced,
                history,
                ..
            } => {
                if std::mem::take(&mut self.rejoin) {
                    return;
                }
                push_line(out, "", Some(&source(&self.nick, &self.ident)), "JOIN", &[room]);
                if !topic.is_empty() {
                    self.numeric(out, "332", &[room, topic]);
                    if let Some((by, ts)) = topic_set.as_ref().filter(|(_, ts)| *ts > 0) {
                        self.numeric(out, "333", &[room, by, &(ts / 1000).to_string()]);
                    }
                }
                if *secret {
                    self.secret.insert(fold(room));
                }
                let kind = if *secret { "@" } else { "=" };
                let has = |list: &[natter_core::command::Name], n: &str| list.iter().any(|x| **x == *n);
                let entries: Vec<(&str, &str, bool, bool)> = members
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let ident = idents.get(i).map_or("", |x| &**x);
                        (&**m, ident, has(operators, m), has(voiced, m))
                    })
                    .collect();
                self.names(room, kind, &entries, out);
                if self.caps.server_time && !history.is_empty() {
                    // Replayed history is a chathistory batch for clients that take batches.
                    let id = self.caps.batch.then(|| self.next_batch());
                    if let Some(id) = &id {
                        push_line(
                            out,
                            "",
                            Some(self.server),
                            "BATCH",
                            &[&format!("+{id}"), "chathistory", room],
                        );
                    }
                    for m in history {
                        self.message(m, id.as_deref(), out);
                    }
                    if let Some(id) = &id {
                        push_line(out, "", Some(self.server), "BATCH", &[&format!("-{id}")]);
                    }
                }
            }
            Event::Members { req, room, nicks, info } => {
                self.render_members(req, room.as_deref(), nicks, info, out)
            }
            Event::RoomChanged { room, by, ident, changes, ts } => {
                let (letters, params) = super::mode_string(changes);
                let mut all: Vec<&str> = vec![room, &letters];
                all.extend(params.iter().map(String::as_str));
                push_line(out, &self.time_tag(*ts), Some(&source(by, ident)), "MODE", &all);
            }
            Event::RoomModes { room, modes, created_ts, .. } => {
                let (letters, params) = super::modes_of(modes);
                let mut all: Vec<&str> = vec![room, &letters];
                all.extend(params.iter().map(String::as_str));
                self.numeric(out, "324", &all);
                self.numeric(out, "329", &[room, &(created_ts / 1000).to_string()]);
            }
            Event::Bans { room, bans, .. } => {
                for ban in bans {
                    self.numeric(out, "367", &[room, &ban.mask, &ban.by, &(ban.ts / 1000).to_string()]);
                }
                self.numeric(out, "368", &[room, "End of channel ban list"]);
            }
            Event::Kick { room, nick, by, ident, reason, ts } => {
                let reason = reason.as_deref().unwrap_or(by);
                push_line(out, &self.time_tag(*ts), Some(&source(by, ident)), "KICK", &[room, nick, reason]);
            }
            Event::Invite { req: None, room, from, ident, to } => {
                push_line(out, "", Some(&source(from, ident)), "INVITE", &[to, room]);
            }
            Event::Invite { room, to, .. } => self.numeric(out, "341", &[to, room]),
            Event::Away { req: Some(_), text, .. } => match text {
                Some(_) => self.numeric(out, "306", &["You have been marked as being away"]),
                None => self.numeric(out, "305", &["You are no longer marked as being away"]),
            },
            Event::Away { req: None, nick, ident, text } => {
                if self.caps.away_notify {
                    match text {
                        Some(t) => push_line(out, "", Some(&source(nick, ident)), "AWAY", &[t]),
                        None => push_line(out, "", Some(&source(nick, ident)), "AWAY", &[]),
                    }
                }
            }
            Event::UserInfo { req, user } => self.render_whois(untag(req).1, user, out),
            Event::Wallops { from, ident, text } => {
                push_line(out, "", Some(&source(from, ident)), "WALLOPS", &[text]);
            }
            Event::Invites { rooms, .. } => {
                for room in rooms {
                    self.numeric(out, "336", &[room]);
                }
                self.numeric(out, "337", &["End of /INVITE list"]);
            }
            Event::Whowas { req, nick, entries } => {
                let (_, arg) = untag(req);
                if entries.is_empty() {
                    self.numeric(out, "406", &[nick, "There was no such nickname"]);
                }
                for p in entries {
                    let (user, host) = split_ident(&p.ident, self.server);
                    self.numeric(out, "314", &[&p.nick, user, host, "*", &p.realname]);
                    let when = irc::server_time(p.ts);
                    self.numeric(out, "312", &[&p.nick, self.server, &when]);
                }
                self.numeric(out, "369", &[arg, "End of WHOWAS"]);
            }
            Event::Rooms { req, rooms } => {
                let (_, filter) = untag(req);
                let wanted: Vec<String> = filter.split(',').filter(|s| !s.is_empty()).map(fold).collect();
                self.numeric(out, "321", &["Channel", "Users  Name"]);
                // IRC channels exist while someone is in them: empty natter rooms are not listed.
                let listed = |r: &&natter_core::event::RoomSummary| {
                    if wanted.is_empty() { r.members > 0 } else { wanted.contains(&fold(&r.name)) }
                };
                for r in rooms.iter().filter(listed) {
                    self.numeric(out, "322", &[&r.name, &r.members.to_string(), &r.topic]);
                }
                self.numeric(out, "323", &["End of /LIST"]);
            }
            Event::History { room, messages, .. } => {
                let id = self.next_batch();
                push_line(out, "", Some(self.server), "BATCH", &[&format!("+{id}"), "chathistory", room]);
                for m in messages {
                    self.message(m, Some(&id), out);
                }
                push_line(out, "", Some(self.server), "BATCH", &[&format!("-{id}")]);
            }
            Event::Conversations { rooms, .. } => {
                let id = self.next_batch();
                let start = [&*format!("+{id}"), "draft/chathistory-targets"];
                push_line(out, "", Some(self.server), "BATCH", &start);
                let tag = format!("@batch={id} ");
                for (room, ts) in rooms {
                    let when = irc::server_time(*ts);
                    push_line(out, &tag, Some(self.server), "CHATHISTORY", &["TARGETS", room, &when]);
                }
                push_line(out, "", Some(self.server), "BATCH", &[&format!("-{id}")]);
            }
            Event::IgnoreMode { on, .. } => {
                let text = if *on { "ignore mode on" } else { "ignore mode off" };
                push_line(out, "", Some(self.server), "NOTICE", &[self.me(), text]);
            }
            Event::Ignoring { nicks, .. } => {
                let list: Vec<&str> = nicks.iter().map(|n| &**n).collect();
                push_line(
                    out,
                    "",
                    Some(self.server),
                    "NOTICE",
                    &[self.me(), &format!("ignoring: {}", list.join(" "))],
                );
            }
            Event::Notice { req: Some(RequestId::Text(t)), text, .. } if t == RAW => {
                out.extend_from_slice(text.as_bytes());
            }
            Event::Notice { req: Some(RequestId::Text(t)), .. } if t.starts_with(LABEL_START) => {}
            Event::Notice { req, .. } if untag(req).0 == "oper" => {
                self.numeric(out, "381", &["You are now an IRC operator"]);
                let me = self.me().to_string();
                push_line(out, "", Some(&source(&me, &self.ident)), "MODE", &[&me, "+o"]);
            }
            Event::Notice { room, text, .. } => {
                let target = room.as_deref().unwrap_or(self.me()).to_string();
                for line in text.lines().filter(|l| !l.is_empty()) {
                    push_line(out, "", Some(self.server), "NOTICE", &[&target, line]);
                }
            }
            Event::Error { req, code, message } => self.render_error(req, *code, message, out),
            Event::Pong { req } => {
                let token = match req {
                    Some(RequestId::Text(t)) => t.clone(),
                    Some(RequestId::Num(n)) => n.to_string(),
                    None => self.server.to_string(),
                };
                push_line(out, "", Some(self.server), "PONG", &[self.server, &token]);
            }
            Event::Bye { reason } => {
                let host = self.ident.split_once('@').map_or("", |(_, h)| h);
                push_line(out, "", None, "ERROR", &[&format!("Closing Link: {host} ({reason})")]);
            }
        }
    }
}

/// Lines the door answers by itself, queued in order with the hub's events.
struct Reply<'a> {
    door: &'a IrcDoor,
    out: Vec<u8>,
}

impl Reply<'_> {
    fn numeric(&mut self, code: &str, params: &[&str]) -> &mut Self {
        self.door.numeric(&mut self.out, code, params);
        self
    }

    fn line(&mut self, command: &str, params: &[&str]) -> &mut Self {
        push_line(&mut self.out, "", Some(self.door.server), command, params);
        self
    }

    fn send(&mut self, ctx: &mut SessionCtx) -> Flow {
        if self.out.is_empty() {
            return Flow::Continue;
        }
        let text = String::from_utf8_lossy(&std::mem::take(&mut self.out)).into_owned();
        ctx.local(Event::Notice { req: Some(RequestId::Text(RAW.into())), room: None, text: text.into() })
    }
}

impl IrcDoor {
    fn reply(&self) -> Reply<'_> {
        Reply { door: self, out: Vec::new() }
    }

    /// Answers with one numeric.
    fn answer(&self, ctx: &mut SessionCtx, code: &str, params: &[&str]) -> Flow {
        self.reply().numeric(code, params).send(ctx)
    }

    /// Answers bad input with a numeric; repeated bad input ends the session.
    fn bad(&self, ctx: &mut SessionCtx, code: &str, params: &[&str]) -> Flow {
        if ctx.strikes.hit() {
            return Flow::Close("too many invalid commands".into());
        }
        self.answer(ctx, code, params)
    }

    fn need_more(&self, ctx: &mut SessionCtx, command: &str) -> Flow {
        self.bad(ctx, "461", &[command, "Not enough parameters"])
    }

    async fn try_register(&mut self, ctx: &mut SessionCtx) -> Flow {
        if ctx.session.is_some() || self.negotiating || self.user.is_none() {
            return Flow::Continue;
        }
        let Some(nick) = self.pending_nick.take() else { return Flow::Continue };
        // The USER name shows in prefixes when it is a plain word; else the door's name.
        let user = self
            .user
            .as_deref()
            .map(|u| u.trim_start_matches('~'))
            .filter(|u| {
                !u.is_empty()
                    && u.len() <= 10
                    && u.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            })
            .unwrap_or("irc")
            .to_string();
        self.ident = format!("{user}@{}", ctx.peer.ip());
        let (flow, refused) = ctx
            .register_as(
                nick.clone(),
                Some(&user),
                self.realname.clone(),
                self.password.clone(),
                tag("nick", &nick),
            )
            .await;
        if refused == Some(ErrorCode::BadPassword) {
            return Flow::Close("Bad password".into());
        }
        if ctx.session.is_none() {
            return flow;
        }
        self.nick = nick;
        ctx.command(Command::Who { room: None, detail: true, req: tag("lusers", "welcome") }).await
    }

    async fn cap(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let Some(sub) = m.param(0) else { return self.need_more(ctx, "CAP") };
        let me = self.me().to_string();
        let registered = ctx.session.is_some();
        match sub.to_ascii_uppercase().as_str() {
            "LS" => {
                if !registered {
                    self.negotiating = true;
                }
                self.reply().line("CAP", &[&me, "LS", &CAPS.join(" ")]).send(ctx)
            }
            "LIST" => self.reply().line("CAP", &[&me, "LIST", &self.caps.list()]).send(ctx),
            "REQ" => {
                if !registered {
                    self.negotiating = true;
                }
                let asked = m.param(1).unwrap_or("");
                let mut caps = self.caps;
                let all_known =
                    asked.split(' ').filter(|c| !c.is_empty()).all(|c| match c.strip_prefix('-') {
                        Some(name) => caps.set(name, false),
                        None => caps.set(c, true),
                    });
                if all_known && !asked.trim().is_empty() {
                    self.caps = caps;
                    self.reply().line("CAP", &[&me, "ACK", asked]).send(ctx)
                } else {
                    self.reply().line("CAP", &[&me, "NAK", asked]).send(ctx)
                }
            }
            "END" => {
                self.negotiating = false;
                self.try_register(ctx).await
            }
            _ => self.bad(ctx, "410", &[sub, "Invalid CAP command"]),
        }
    }

    /// A request tag that also carries the current line's label (labeled-response).
    fn labeled_tag(&self, op: &str, arg: &str) -> Option<RequestId> {
        match &self.line_label {
            Some(label) => Some(RequestId::Text(format!("{op} {arg}{LABEL_SEP}{label}"))),
            None => tag(op, arg),
        }
    }

    /// PRIVMSG, NOTICE and TAGMSG: client-only tags (`+name`) travel with the message.
    async fn privmsg(&mut self, m: &irc::Message, command: &str, ctx: &mut SessionCtx) -> Flow {
        let notice = command == "NOTICE";
        let tagmsg = command == "TAGMSG";
        let Some(targets) = m.param(0).filter(|t| !t.is_empty()) else {
            if notice {
                return Flow::Continue;
            }
            return self.bad(ctx, "411", &[&format!("No recipient given ({command})")]);
        };
        let mut client_tags = String::new();
        for (key, value) in m.tags.iter().filter(|(k, _)| k.starts_with('+') && k.len() > 1) {
            if !client_tags.is_empty() {
                client_tags.push(';');
            }
            client_tags.push_str(key);
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                client_tags.push('=');
                irc::escape_tag_value(v, &mut client_tags);
            }
        }
        let tags = (!client_tags.is_empty()).then_some(client_tags);
        let text = if tagmsg {
            if tags.is_none() {
                // Nothing to relay.
                return Flow::Continue;
            }
            ""
        } else {
            match m.param(1).filter(|t| !t.is_empty()) {
                Some(text) => text,
                None if notice => return Flow::Continue,
                None => return self.bad(ctx, "412", &["No text to send"]),
            }
        };
        let (text, action) = match text.strip_prefix("\u{1}ACTION") {
            Some(rest) => (rest.trim_end_matches('\u{1}').trim_start_matches(' '), true),
            None => (text, false),
        };
        let targets: Vec<&str> = targets.split(',').filter(|t| !t.is_empty()).collect();
        if targets.len() > MAX_TARGETS {
            return self.bad(ctx, "407", &[targets[0], "Too many recipients"]);
        }
        for target in targets {
            let op = if notice { "notice" } else { "msg" };
            let req = self.labeled_tag(op, target);
            let target = if target.starts_with('#') {
                Target::Room(target.to_string())
            } else if validate_nick(target).is_ok() {
                Target::Nick(target.to_string())
            } else {
                if notice {
                    continue;
                }
                let flow = self.answer(ctx, "401", &[target, "No such nick/channel"]);
                if flow != Flow::Continue {
                    return flow;
                }
                continue;
            };
            // Every Say gets exactly one answer (ack or error), a refused one included.
            self.unanswered += 1;
            if !ctx.allow_message() {
                return ctx.rate_limited(req);
            }
            let cmd = Command::Say {
                target,
                text: text.to_string(),
                action,
                notice,
                tags: tags.clone(),
                cid: None,
                req,
            };
            let flow = ctx.command(cmd).await;
            if flow != Flow::Continue {
                return flow;
            }
        }
        Flow::Continue
    }

    /// IRCv3 `CHATHISTORY` (draft): pages of a channel's stored messages by msgid or time.
    async fn chathistory(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let sub = m.param(0).unwrap_or("").to_ascii_uppercase();
        let fail = |door: &Self, ctx: &mut SessionCtx, code: &str, text: &str| {
            let mut reply = door.reply();
            reply.line("FAIL", &["CHATHISTORY", code, &sub, text]);
            reply.send(ctx)
        };
        let limit = |p: Option<&str>| p.and_then(|l| l.parse::<u32>().ok()).filter(|&l| l > 0);
        if sub == "TARGETS" {
            let (Some(a), Some(b), Some(n)) = (
                m.param(1).and_then(|p| p.strip_prefix("timestamp=")).and_then(parse_server_time),
                m.param(2).and_then(|p| p.strip_prefix("timestamp=")).and_then(parse_server_time),
                limit(m.param(3)),
            ) else {
                return fail(self, ctx, "INVALID_PARAMS", "TARGETS takes two timestamps and a limit");
            };
            let req = self.labeled_tag("chathistory", "TARGETS *");
            return ctx.command(Command::Conversations { after_ts: a, before_ts: b, limit: n, req }).await;
        }
        if !matches!(sub.as_str(), "LATEST" | "BEFORE" | "AFTER" | "AROUND" | "BETWEEN") {
            return fail(self, ctx, "INVALID_PARAMS", "unknown subcommand");
        }
        let Some(target) = m.param(1).filter(|t| !t.is_empty()) else {
            return fail(self, ctx, "INVALID_PARAMS", "no target given");
        };
        let target = target.to_string();
        let room = target.starts_with('#');
        if room && !self.in_room(&target) {
            let mut reply = self.reply();
            let text = "you are not in that channel";
            reply.line("FAIL", &["CHATHISTORY", "INVALID_TARGET", &sub, &target, text]);
            return reply.send(ctx);
        }
        let key = fold(&target);
        // A selector: `*`, `msgid=...` (an id of this channel) or `timestamp=...`.
        enum Sel {
            Any,
            Mid(u64),
            Ts(u64),
            Unknown,
        }
        let sel = |p: Option<&str>| -> Option<Sel> {
            let p = p?;
            if p == "*" {
                return Some(Sel::Any);
            }
            if let Some(id) = p.strip_prefix("msgid=") {
                return Some(parse_msgid(&key, id).map_or(Sel::Unknown, Sel::Mid));
            }
            p.strip_prefix("timestamp=").and_then(parse_server_time).map(Sel::Ts)
        };
        let two = sub == "BETWEEN";
        let (a, b, n) = if two {
            (sel(m.param(2)), sel(m.param(3)), limit(m.param(4)))
        } else {
            (sel(m.param(2)), Some(Sel::Any), limit(m.param(3)))
        };
        let (Some(a), Some(b), Some(n)) = (a, b, n) else {
            return fail(self, ctx, "INVALID_PARAMS", "bad message reference or limit");
        };
        let mut q = HistoryQuery { limit: n.min(HISTORY_PAGE), ..HistoryQuery::default() };
        let mut around = false;
        let mut empty = matches!(a, Sel::Unknown) || matches!(b, Sel::Unknown);
        match (sub.as_str(), a) {
            ("LATEST", Sel::Any) => {}
            ("LATEST", Sel::Mid(x)) => (q.after, q.before) = (Some(x), Some(u64::MAX)),
            ("LATEST", Sel::Ts(t)) => (q.after_ts, q.before) = (Some(t), Some(u64::MAX)),
            ("BEFORE", Sel::Mid(x)) => q.before = Some(x),
            ("BEFORE", Sel::Ts(t)) => q.before_ts = Some(t),
            ("AFTER", Sel::Mid(x)) => q.after = Some(x),
            ("AFTER", Sel::Ts(t)) => q.after_ts = Some(t),
            ("AROUND", Sel::Mid(x)) => (q.before, around) = (Some(x), true),
            ("AROUND", Sel::Ts(t)) => (q.before_ts, around) = (Some(t), true),
            ("BETWEEN", first) => {
                let point = |s: &Sel| match *s {
                    Sel::Mid(x) => Some((true, x)),
                    Sel::Ts(t) => Some((false, t)),
                    _ => None,
                };
                match (point(&first), point(&b)) {
                    (Some((fm, fv)), Some((sm, sv))) => {
                        // The first reference is where the page starts: forwards when it is
                        // the older one.
                        let forwards = if fm == sm { fv <= sv } else { true };
                        let (low, high) = if forwards { ((fm, fv), (sm, sv)) } else { ((sm, sv), (fm, fv)) };
                        if low.0 {
                            q.after = Some(low.1)
                        } else {
                            q.after_ts = Some(low.1)
                        }
                        if high.0 {
                            q.before = Some(high.1)
                        } else {
                            q.before_ts = Some(high.1)
                        }
                        q.oldest = forwards;
                    }
                    _ => empty = true,
                }
            }
            _ => empty = true,
        }
        let req = self.labeled_tag("chathistory", &format!("{sub} {target}"));
        if empty || !room {
            // Unknown references and private conversations (not stored): an empty page.
            q = HistoryQuery { limit: 1, before: Some(0), ..HistoryQuery::default() };
        }
        ctx.command(Command::History { room: target, query: q, around, req }).await
    }

    /// Handles one parsed message.
    async fn dispatch(&mut self, m: irc::Message, ctx: &mut SessionCtx) -> Flow {
        let command = m.command.to_ascii_uppercase();
        let registered = ctx.session.is_some();
        self.server = ctx.limits.server_name;
        match command.as_str() {
            "CAP" => return self.cap(&m, ctx).await,
            "PASS" if registered => return self.bad(ctx, "462", &["You may not reregister"]),
            "PASS" if m.params.is_empty() => return self.need_more(ctx, "PASS"),
            // Checked by the hub at registration against the server password, if one is set.
            "PASS" => {
                self.password = m.param(0).map(str::to_string);
                return Flow::Continue;
            }
            "NICK" => {
                let Some(nick) = m.param(0).filter(|n| !n.is_empty()) else {
                    return self.bad(ctx, "431", &["No nickname given"]);
                };
                if validate_nick(nick).is_err() {
                    return self.bad(ctx, "432", &[nick, "Erroneous nickname"]);
                }
                if registered {
                    let req = tag("nick", nick);
                    return ctx.command(Command::Nick { nick: nick.to_string(), req }).await;
                }
                self.pending_nick = Some(nick.to_string());
                return self.try_register(ctx).await;
            }
            "USER" => {
                if registered {
                    return self.bad(ctx, "462", &["You may not reregister"]);
                }
                if m.params.len() < 4 || m.params[0].is_empty() || m.params[3].is_empty() {
                    return self.need_more(ctx, "USER");
                }
                self.user = Some(m.params[0].clone());
                self.realname = m.params[3].clone();
                return self.try_register(ctx).await;
            }
            "PING" => {
                let Some(token) = m.param(0) else {
                    return self.bad(ctx, "409", &["No origin specified"]);
                };
                return self.reply().line("PONG", &[self.server, token]).send(ctx);
            }
            "PONG" => return Flow::Continue,
            "QUIT" => {
                let reason = m.param(0).filter(|r| !r.is_empty());
                return Flow::Close(reason.map_or_else(|| "Quit".into(), |r| format!("Quit: {r}")));
            }
            _ if !registered => return self.bad(ctx, "451", &["You have not registered"]),
            _ => {}
        }
        match command.as_str() {
            "PRIVMSG" | "NOTICE" | "TAGMSG" => self.privmsg(&m, &command, ctx).await,
            "CHATHISTORY" => self.chathistory(&m, ctx).await,
            "KILL" => {
                let Some(nick) = m.param(0).filter(|n| !n.is_empty()) else {
                    return self.need_more(ctx, "KILL");
                };
                let reason = m.param(1).filter(|r| !r.is_empty()).unwrap_or("no reason").to_string();
                let req = tag("kill", nick);
                ctx.command(Command::Kill { nick: nick.to_string(), reason, req }).await
            }
            "JOIN" => {
                let Some(rooms) = m.param(0) else { return self.need_more(ctx, "JOIN") };
                if rooms == "0" {
                    let all = self.rooms.clone();
                    for room in all {
                        let req = tag("part", &room);
                        let flow = ctx.command(Command::Part { room, reason: None, req }).await;
                        if flow != Flow::Continue {
                            return flow;
                        }
                    }
                    return Flow::Continue;
                }
                let mut keys = m.param(1).unwrap_or("").split(',');
                for room in rooms.split(',').filter(|r| !r.is_empty()) {
                    let key = keys.next().filter(|k| !k.is_empty()).map(str::to_string);
                    let flow = if validate_room(room).is_err() {
                        self.bad(ctx, "403", &[room, "No such channel"])
                    } else {
                        let cmd = Command::Join { room: room.to_string(), key, req: tag("join", room) };
                        ctx.command(cmd).await
                    };
                    if flow != Flow::Continue {
                        return flow;
                    }
                }
                Flow::Continue
            }
            "PART" => {
                let Some(rooms) = m.param(0) else { return self.need_more(ctx, "PART") };
                let reason = m.param(1).filter(|r| !r.is_empty()).map(str::to_string);
                for room in rooms.split(',').filter(|r| !r.is_empty()) {
                    let cmd = Command::Part {
                        room: room.to_string(),
                        reason: reason.clone(),
                        req: tag("part", room),
                    };
                    let flow = ctx.command(cmd).await;
                    if flow != Flow::Continue {
                        return flow;
                    }
                }
                Flow::Continue
            }
            "NAMES" => {
                let list = m.param(0).filter(|l| !l.is_empty());
                let rooms: Vec<String> = match list {
                    Some(list) => list
                        .split(',')
                        .filter(|r| !r.is_empty())
                        .take(MAX_TARGETS)
                        .map(str::to_string)
                        .collect(),
                    None => self.rooms.clone(),
                };
                // `NAMES #a,#b` answers each channel's 353 lines, then one 366 naming the
                // list as given; NAMES alone and one channel end each channel with its 366.
                let multi = list.filter(|l| l.contains(','));
                let op = if multi.is_some() { "namespart" } else { "names" };
                for room in rooms {
                    let req = tag(op, &room);
                    let flow = ctx.command(Command::Who { room: Some(room), detail: true, req }).await;
                    if flow != Flow::Continue {
                        return flow;
                    }
                }
                match multi {
                    Some(list) => self.answer(ctx, "366", &[list, "End of /NAMES list"]),
                    None => Flow::Continue,
                }
            }
            "TOPIC" => {
                let Some(room) = m.param(0) else { return self.need_more(ctx, "TOPIC") };
                let (topic, op) = match m.param(1) {
                    Some(t) => (Some(t.to_string()), "topicset"),
                    None => (None, "topic"),
                };
                ctx.command(Command::Topic { room: room.to_string(), topic, req: tag(op, room) }).await
            }
            "WHO" => {
                let mask = m.param(0).filter(|s| !s.is_empty() && *s != "0").unwrap_or("*");
                let room = mask.starts_with('#').then(|| mask.to_string());
                ctx.command(Command::Who { room, detail: true, req: tag("who", mask) }).await
            }
            "WHOIS" => {
                // `WHOIS server nick` names the nick last.
                let Some(nick) = m.params.last().filter(|n| !n.is_empty()) else {
                    return self.bad(ctx, "431", &["No nickname given"]);
                };
                let nick = nick.split(',').next().unwrap_or(nick).to_string();
                let req = tag("whois", &nick);
                ctx.command(Command::Whois { nick, req }).await
            }
            "WHOWAS" => {
                let Some(nick) = m.param(0).filter(|n| !n.is_empty()) else {
                    return self.bad(ctx, "431", &["No nickname given"]);
                };
                let nick = nick.split(',').next().unwrap_or(nick).to_string();
                let count = m.param(1).and_then(|c| c.parse::<i64>().ok()).filter(|&c| c > 0).unwrap_or(0);
                let req = tag("whowas", &nick);
                ctx.command(Command::Whowas { nick, count: count as usize, req }).await
            }
            "ISON" | "USERHOST" => {
                if m.params.is_empty() {
                    return self.need_more(ctx, &command);
                }
                let nicks: Vec<&str> =
                    m.params.iter().flat_map(|p| p.split(' ')).filter(|n| !n.is_empty()).collect();
                let op = command.to_ascii_lowercase();
                ctx.command(Command::Who { room: None, detail: true, req: tag(&op, &nicks.join(" ")) }).await
            }
            "LIST" => {
                let filter = m.param(0).filter(|f| f.starts_with('#')).unwrap_or("");
                ctx.command(Command::Rooms { req: tag("list", filter) }).await
            }
            "LUSERS" => ctx.command(Command::Who { room: None, detail: true, req: tag("lusers", "") }).await,
            "AWAY" => {
                let text = m.param(0).filter(|a| !a.is_empty()).map(str::to_string);
                ctx.command(Command::Away { text, req: tag("away", "") }).await
            }
            "MODE" => self.mode(&m, ctx).await,
            "KICK" => self.kick(&m, ctx).await,
            "INVITE" => self.invite(&m, ctx).await,
            "OPER" => {
                if m.params.len() < 2 {
                    return self.need_more(ctx, "OPER");
                }
                let (name, password) = (m.params[0].clone(), m.params[1].clone());
                ctx.command(Command::Oper { name, password, req: tag("oper", "") }).await
            }
            "WALLOPS" => {
                let Some(text) = m.param(0).filter(|t| !t.is_empty()) else {
                    return self.need_more(ctx, "WALLOPS");
                };
                ctx.command(Command::Wallops { text: text.to_string(), req: tag("wallops", "") }).await
            }
            "LINKS" => {
                // One server and no links: an empty list, as servers that hide their links
                // answer. (A 364 line for ourselves would need a configured server description.)
                let mask = m.params.last().filter(|p| !p.is_empty()).map_or("*", String::as_str);
                self.answer(ctx, "365", &[mask, "End of /LINKS list"])
            }
            "INFO" => {
                let mut reply = self.reply();
                for line in [
                    concat!("natter ", env!("CARGO_PKG_VERSION"), ": one binary for chat"),
                    "IRC channels are natter rooms, shared with native, text and UDP clients.",
                ] {
                    reply.numeric("371", &[line]);
                }
                reply.numeric("374", &["End of INFO list"]);
                reply.send(ctx)
            }
            "MOTD" => {
                let mut reply = self.reply();
                self.motd(&mut reply.out);
                reply.send(ctx)
            }
            "VERSION" => {
                let mut reply = self.reply();
                let version = concat!("natter-", env!("CARGO_PKG_VERSION"));
                reply.numeric("351", &[version, self.server, "natter IRC front door"]);
                self.isupport(&mut reply.out);
                reply.send(ctx)
            }
            "TIME" => {
                let now = natter_core::time::now_ms();
                self.answer(ctx, "391", &[self.server, &irc::server_time(now)])
            }
            _ => self.bad(ctx, "421", &[&m.command, "Unknown command"]),
        }
    }
}

impl IrcDoor {
    /// Renders now (see `Door::render`, which may hold door-local answers back).
    fn render_now(&mut self, event: &Event, out: &mut Vec<u8>) {
        if let Event::Notice { req: Some(RequestId::Text(t)), .. } = event
            && t == LABEL_END
        {
            let lines = std::mem::take(&mut self.label_buf);
            if let Some(label) = self.labeling.take() {
                self.wrap_label(&label, &lines, out);
            }
            return;
        }
        if self.labeling.is_some() {
            let mut held = std::mem::take(&mut self.label_buf);
            self.render_event(event, &mut held);
            self.label_buf = held;
            return;
        }
        if let Some(label) = labeled_req(event).and_then(label_of) {
            let label = label.to_string();
            let mut lines = Vec::new();
            self.render_event(event, &mut lines);
            return self.wrap_label(&label, &lines, out);
        }
        if self.deferring {
            let is_burst_end =
                matches!(event, Event::Members { req, .. } if untag(req) == ("lusers", "welcome"));
            if !is_burst_end && !matches!(event, Event::Bye { .. }) {
                let mut held = std::mem::take(&mut self.deferred);
                self.render_event(event, &mut held);
                self.deferred = held;
                return;
            }
        }
        self.render_event(event, out);
    }
}

impl Door for IrcDoor {
    const KIND: SessionKind = SessionKind::Irc;
    const FLUSH_PARTIAL: bool = false;
    const TICK: Option<Duration> = Some(Duration::from_secs(15));

    fn cache_slot(_event: &Event) -> Option<usize> {
        None
    }

    fn slot(&self, event: &Event) -> Option<usize> {
        if self.deferring || self.labeling.is_some() || !super::is_shared(event) {
            return None;
        }
        // An away user's join renders per recipient: only away-notify clients get the AWAY.
        if matches!(event, Event::Join { away: Some(_), .. }) {
            return None;
        }
        Some(match (self.caps.server_time, self.caps.message_tags) {
            (false, false) => SLOT_PLAIN,
            (true, false) => SLOT_TIME,
            (false, true) => SLOT_TAGS,
            (true, true) => SLOT_TIME_TAGS,
        })
    }

    fn render(&mut self, event: &Event, out: &mut Vec<u8>) {
        let door_local = matches!(event, Event::Pong { .. })
            || matches!(event, Event::Notice { req: Some(RequestId::Text(t)), .. } if t == RAW);
        if door_local && self.unanswered > 0 && !self.deferring {
            let mut held = std::mem::take(&mut self.held);
            self.render_now(event, &mut held);
            self.held = held;
            return;
        }
        self.render_now(event, out);
        let answers_say = match event {
            Event::Ack { req, .. } | Event::Error { req, .. } => matches!(untag(req).0, "msg" | "notice"),
            _ => false,
        };
        if answers_say {
            self.unanswered = self.unanswered.saturating_sub(1);
            if self.unanswered == 0 {
                out.append(&mut self.held);
            }
        }
    }

    fn observe(&mut self, event: &Event) {
        match event {
            Event::Notice { req: Some(RequestId::Text(t)), .. }
                if t.starts_with(LABEL_START) && t != LABEL_END =>
            {
                self.labeling = Some(t[LABEL_START.len()..].trim_start().to_string());
                self.label_buf.clear();
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
                    if let natter_core::command::RoomChange::Secret(on) = c {
                        if *on {
                            self.secret.insert(fold(room));
                        } else {
                            self.secret.remove(&fold(room));
                        }
                    }
                }
            }
            Event::RoomModes { room, modes, .. } if modes.secret => {
                self.secret.insert(fold(room));
            }
            _ => {}
        }
    }

    fn on_tick(&mut self, ctx: &mut SessionCtx) -> Flow {
        if ctx.session.is_none() {
            return Flow::Continue;
        }
        match self.ping_sent {
            Some(sent) if sent.elapsed() >= PING_TIMEOUT => {
                Flow::Close(format!("Ping timeout: {} seconds", (PING_AFTER + PING_TIMEOUT).as_secs()))
            }
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
        let text = decode_text(line);
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
        let Some(label) = label else { return self.handle_parsed(parsed, ctx).await };
        if let Ok(m) = &parsed {
            let command = m.command.to_ascii_uppercase();
            let single = m.param(0).is_some_and(|t| !t.contains(','));
            // A message to one target and CHATHISTORY carry the label with the request
            // (their answers come from the store or after a commit); every other command's
            // answers are collected between two markers that travel through the hub.
            if matches!(command.as_str(), "PRIVMSG" | "NOTICE" | "TAGMSG" | "CHATHISTORY") && single {
                self.line_label = Some(label);
                let flow = self.handle_parsed(parsed, ctx).await;
                self.line_label = None;
                return flow;
            }
        }
        let marker = |t: String| Event::Notice { req: Some(RequestId::Text(t)), room: None, text: "".into() };
        if ctx.local(marker(format!("{LABEL_START} {label}"))) != Flow::Continue {
            return Flow::Close("too slow".into());
        }
        let flow = self.handle_parsed(parsed, ctx).await;
        if flow != Flow::Continue {
            return flow;
        }
        ctx.local(marker(LABEL_END.to_string()))
    }
}

impl IrcDoor {
    async fn handle_parsed(
        &mut self,
        parsed: Result<irc::Message, ParseError>,
        ctx: &mut SessionCtx,
    ) -> Flow {
        match parsed {
            Ok(m) => self.dispatch(m, ctx).await,
            Err(ParseError::NoCommand) => Flow::Continue,
            Err(ParseError::BadCommand(c)) => self.bad(ctx, "421", &[&c, "Unknown command"]),
            Err(e) => self.bad(ctx, "400", &["*", &e.to_string()]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            to: None,
            text: text.into(),
            action,
            notice: false,
            tags: None,
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
            "@time=1970-01-01T00:00:00.000Z :ann!native@10.0.0.1 PRIVMSG #lobby x\r\n"
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

    #[test]
    fn names_compare_as_folded() {
        assert!(same_name("Ann", "aNN") && !same_name("ann", "anne"));
        // Non-ASCII names fold like `fold` does (KELVIN SIGN lowercases to an ASCII `k`).
        assert!(same_name("\u{212a}im", "kim") && same_name("ÉVA", "éva"));
        assert!(!same_name("éva", "eva"));
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
    fn errors_map_to_numerics() {
        let door = IrcDoor { nick: "bob".into(), ..Default::default() };
        let cases = [
            (ErrorCode::NickInUse, "nick ann", ":natter 433 bob ann :Nickname is already in use\r\n"),
            (ErrorCode::NoSuchNick, "msg zed", ":natter 401 bob zed :No such nick/channel\r\n"),
            (ErrorCode::NotInRoom, "msg #x", ":natter 404 bob #x :Cannot send to channel\r\n"),
            (ErrorCode::NotInRoom, "part #x", ":natter 442 bob #x :You're not on that channel\r\n"),
            (ErrorCode::NoSuchRoom, "topic #x", ":natter 403 bob #x :No such channel\r\n"),
            (ErrorCode::NoSuchNick, "notice zed", ""),
        ];
        for (code, req, want) in cases {
            let mut out = Vec::new();
            door.render_error(&Some(RequestId::Text(req.into())), code, "m", &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{req}");
        }
    }

    #[test]
    fn every_offered_capability_can_be_enabled_and_is_listed() {
        let mut caps = Caps::default();
        assert_eq!(caps.list(), "");
        for name in CAPS {
            assert!(caps.set(name, true), "{name}");
        }
        assert_eq!(caps.list(), CAPS.join(" "));
        assert!(caps.set("batch", false) && !caps.set("sasl", true));
        assert!(!caps.list().split(' ').any(|c| c == "batch"));
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
            idents: Vec::new(),
            operators: vec!["ann".into()],
            voiced: Vec::new(),
            ephemeral: false,
            history: Vec::new(),
        };
        assert!(door.slot(&msg("x", false)).is_none());
        all += &render(&mut door, &joined);
        all += &render(&mut door, &msg("early", false));
        let members = Event::Members {
            req: tag("lusers", "welcome"),
            room: None,
            nicks: vec!["ann".into(), "bob".into()],
            info: Vec::new(),
        };
        all += &render(&mut door, &members);
        let codes: Vec<&str> = all.lines().map(|l| l.split(' ').nth(1).unwrap_or("")).collect();
        assert_eq!(
            codes,
            [
                "001", "002", "003", "004", "005", "005", "251", "255", "265", "266", "375", "372", "372",
                "372", "376", "JOIN", "353", "366", "PRIVMSG"
            ]
        );
        assert!(all.contains(":natter 353 bob = #lobby :@ann bob\r\n"), "{all}");
        assert_eq!(door.slot(&msg("x", false)), Some(SLOT_PLAIN));
    }
}
