//! Text mode: for netcat, telnet and the tutorials' simple socket clients. The first line is
//! the nickname; then plain lines go to the current room and slash commands do the rest
//! (`natter_proto::command`). Every event is one readable line with a time and a nick.
//!
//! Every line starts with what the server put there: `[HH:MM]` for what people do, `*** ` for
//! the server's notices, `!!! ` for refusals. What people chose (messages, topics, reasons,
//! away texts, real names, ban masks) is shown through [`SafeLine`]: its line breaks as ` ⏎ `,
//! its control characters as pictures, its bidi runs closed, so it can neither start a line
//! of its own (and pass for a `***` notice) nor act on the reader's terminal. Nicks and room
//! names need nothing: their rules (`natter_proto::names`) leave none of that in them.

use super::listing::names_and_more;
use super::modes::{ModeItem, mode_string, modes_of, parse_modes};
use super::{Door, Flow, SessionCtx, slots};
use natter_core::command::Paging;
use natter_core::event::AccountChange;
use natter_core::hub::MAX_WHO_PAGE;
use natter_core::metrics::Disconnect;
use natter_core::password::Password;
use natter_core::{ChatMessage, Command, DoorNote, Event, RenderSlot, RoomChange, SessionKind, Target};
use natter_proto::command::{Input, SlashCommand, help_lines, help_topic, parse_input};
use natter_proto::decode::{PeerEncoding, decode_text_detect};
use natter_proto::display::SafeLine;
use natter_proto::names::{complete_mask, fold};
use std::collections::HashMap;
use std::fmt::Write as _;

/// A problem text mode finds in what was typed, before the hub sees it: shown like the hub's
/// refusals.
#[derive(Debug)]
struct TypingError(String);

/// First words a text client sees.
pub const GREETING: &str = "*** Welcome to natter! Type your nickname and press Enter.\r\n";

/// Text-mode state of one connection.
#[derive(Debug, Default)]
pub struct TextDoor {
    /// Rooms joined, in join order; the last one is the current room.
    rooms: Vec<String>,
    nick: String,
    /// Who last sent this session a private message: where `/r` goes.
    last_private: Option<String>,
    /// The encoding this peer reads: UTF-8 until it sends GBK (or asks with `/encoding`).
    encoding: PeerEncoding,
    /// Per room (folded name), the oldest message id `/history` has shown while older ones
    /// remain: the next `/history` of that room pages back from there.
    history_before: HashMap<String, u64>,
}

impl TextDoor {
    fn current_room(&self) -> Option<&str> {
        self.rooms.last().map(String::as_str)
    }

    /// The session's nick as last seen, so that a wrapping door can tell its own events apart.
    pub(crate) fn nick(&self) -> &str {
        &self.nick
    }

    /// The encoding this peer reads, so that a wrapping door can encode its own output.
    pub(crate) fn encoding(&self) -> PeerEncoding {
        self.encoding
    }
}

/// `HH:MM` (UTC) of a millisecond timestamp.
fn clock(ts: u64) -> String {
    let secs = ts / 1000;
    format!("{:02}:{:02}", (secs / 3600) % 24, (secs / 60) % 60)
}

/// The UTC date and time of a millisecond timestamp.
fn utc(ts: u64) -> Option<jiff::civil::DateTime> {
    let ts = jiff::Timestamp::from_millisecond(i64::try_from(ts).ok()?).ok()?;
    Some(jiff::tz::Offset::UTC.to_datetime(ts))
}

/// Today's date (UTC), against which replayed history is dated.
fn today() -> Option<jiff::civil::Date> {
    utc(natter_core::time::now_ms()).map(|t| t.date())
}

/// The time shown in brackets: `HH:MM`, or `YYYY-MM-DD HH:MM` (UTC) for a stored message
/// from another day than `today`, so that last week's history does not read as this morning's.
fn stamp(ts: u64, today: Option<jiff::civil::Date>) -> String {
    if let Some(today) = today
        && let Some(t) = utc(ts)
        && t.date() != today
    {
        return format!("{:04}-{:02}-{:02} {:02}:{:02}", t.year(), t.month(), t.day(), t.hour(), t.minute());
    }
    clock(ts)
}

/// Replayed history lines longer than this (in characters) are clipped on join: a 16 KB
/// message must not flood every screen that joins; `/history` shows it whole.
const REPLAY_CLIP: usize = 400;

/// One replayed or paged history line: dated when not from `today`.
fn history_line(m: &ChatMessage, today: Option<jiff::civil::Date>, out: &mut String) {
    message_line_at(m, &m.text, &stamp(m.ts, today), out);
}

fn message_line(m: &ChatMessage, out: &mut String) {
    message_line_at(m, &m.text, &clock(m.ts), out);
}

/// The line of message `m` showing `text` (its text, or the start of it).
fn message_line_at(m: &ChatMessage, text: &str, time: &str, out: &mut String) {
    let text = SafeLine(text);
    if m.notice {
        // Notices look like IRC's (`-nick-`), so people and scripts can tell them apart.
        let _ = match &m.room {
            Some(room) => write!(out, "[{time}] {room} -{}- {text}", m.from),
            None => write!(out, "[{time}] -{}- {text}", m.from),
        };
        return;
    }
    match (&m.room, m.action) {
        (Some(room), false) => {
            let _ = write!(out, "[{time}] {room} <{}> {text}", m.from);
        }
        (Some(room), true) => {
            let _ = write!(out, "[{time}] {room} * {} {text}", m.from);
        }
        (None, false) => {
            let _ = write!(out, "[{time}] *{}* {text}", m.from);
        }
        (None, true) => {
            let _ = write!(out, "[{time}] *{}* * {} {text}", m.from, m.from);
        }
    }
}

/// ` (reason)` after a part, quit or kick, when there is a reason.
fn reason_suffix(reason: &Option<natter_core::Name>, out: &mut String) {
    if let Some(r) = reason {
        let _ = write!(out, " ({})", SafeLine(r));
    }
}

/// Renders one event as text lines for the session called `me` (who can then tell its own
/// copy of an invitation from the invitee's); otherwise as [`render_text`].
pub(crate) fn render_text_for(event: &Event, me: &str) -> String {
    match event {
        Event::Invite { room, from, to, .. } if fold(to) == fold(me) => {
            format!("*** {from} invites you to {room} (/join {room})\r\n")
        }
        Event::Invite { room, to, .. } if !me.is_empty() => format!("*** you invited {to} to {room}\r\n"),
        _ => render_text(event),
    }
}

/// Renders one event as text lines ending in CRLF (telnet needs CR; netcat ignores it).
/// The tutorial dialects (`door::udp_tutorial`, `door::native::tutorial`) reuse these lines for
/// everything they show as notices.
pub(crate) fn render_text(event: &Event) -> String {
    let mut s = String::new();
    match event {
        Event::Welcome { nick, .. } => {
            let _ = write!(
                s,
                "*** Hello {nick}! Plain lines go to the room; @nick text is private; /help lists commands."
            );
        }
        Event::Message(m) => message_line(m, &mut s),
        Event::Ack { message, duplicate, away, offline, .. } => match (&message.to, duplicate) {
            (Some(to), _) => {
                let _ = write!(s, "[{}] -> *{to}* {}", clock(message.ts), SafeLine(&message.text));
                if let Some(away) = away {
                    let _ = write!(s, "\r\n*** {to} is away: {}", SafeLine(away));
                }
                if *offline {
                    let _ = write!(
                        s,
                        "\r\n*** {to} is offline: your message is kept and delivered when they log in"
                    );
                }
            }
            (None, true) => s.push_str("*** (already sent)"),
            (None, false) => return String::new(),
        },
        Event::Join { room, nick, ts, .. } => {
            let _ = write!(s, "[{}] {room} --> {nick} joined", clock(*ts));
        }
        Event::Part { room, nick, reason, ts, .. } => {
            let _ = write!(s, "[{}] {room} <-- {nick} left", clock(*ts));
            reason_suffix(reason, &mut s);
        }
        Event::Quit { nick, reason, ts, .. } => {
            let _ = write!(s, "[{}] <-- {nick} quit", clock(*ts));
            reason_suffix(reason, &mut s);
        }
        Event::Nick { old, new, ts, .. } => {
            let _ = write!(s, "[{}] {old} is now known as {new}", clock(*ts));
        }
        Event::Topic { room, topic, by, changed, .. } => match (changed, topic.is_empty()) {
            (true, _) => {
                let by = by.as_deref().unwrap_or("someone");
                let _ = write!(s, "*** {by} set the topic of {room}: {}", SafeLine(topic));
            }
            (false, true) => {
                let _ = write!(s, "*** {room} has no topic");
            }
            (false, false) => {
                let _ = write!(s, "*** topic of {room}: {}", SafeLine(topic));
            }
        },
        Event::Joined { room, topic, members, count, history, ephemeral, .. } => {
            // The past first, then the present: replayed messages, then who is here now.
            if !history.is_empty() {
                let today = today();
                let _ = write!(s, "*** last {} messages in {room}:", history.len());
                for m in history {
                    s.push_str("\r\n");
                    // Clipped before it is made safe, so that what closes its bidi runs stays.
                    match m.text.char_indices().nth(REPLAY_CLIP) {
                        Some((cut, _)) => {
                            message_line_at(m, &m.text[..cut], &stamp(m.ts, today), &mut s);
                            let _ = write!(s, " … (/history {room} shows it whole)");
                        }
                        None => history_line(m, today, &mut s),
                    }
                }
                s.push_str("\r\n*** end of history\r\n");
            }
            let names = names_and_more(members, *count, ", ");
            let _ = write!(s, "*** you are in {room} ({count} here: {names}");
            // A big room lists its first members only; `/who` lists a longer page.
            if members.len() < *count && members.len() < MAX_WHO_PAGE as usize {
                let _ = write!(s, "; /who {room} lists more");
            }
            s.push(')');
            if !topic.is_empty() {
                let _ = write!(s, "\r\n*** topic: {}", SafeLine(topic));
            }
            if *ephemeral {
                s.push_str("\r\n*** this room is ephemeral: nothing said here is stored");
            }
        }
        Event::Members { room, nicks, count, more, .. } => {
            let place = room.as_deref().unwrap_or("online");
            // The count is the whole list's; a page says where the next one starts.
            let _ = write!(s, "*** {place} ({count}): {}", nicks.join(", "));
            if *more && let Some(last) = nicks.last() {
                let _ =
                    write!(s, " and more (/who {} {last} lists the next)", room.as_deref().unwrap_or("*"));
            }
        }
        Event::Rooms { rooms, .. } => {
            let _ = write!(s, "*** {} rooms:", rooms.len());
            for r in rooms {
                // The name too: a room kept from before the name rules could hold anything.
                let _ = write!(
                    s,
                    "\r\n***   {} ({} online){}",
                    SafeLine(&r.name),
                    r.members,
                    if r.ephemeral { " [ephemeral]" } else { "" }
                );
                if !r.topic.is_empty() {
                    let _ = write!(s, " - {}", SafeLine(&r.topic));
                }
            }
        }
        Event::History { room, messages, more, .. } => {
            if messages.is_empty() {
                let _ = write!(s, "*** no older messages in {room}");
            } else {
                let today = today();
                let _ = write!(s, "*** {} messages of {room}:", messages.len());
                for m in messages {
                    s.push_str("\r\n");
                    history_line(m, today, &mut s);
                }
                // Text mode remembers where this page began: the same command goes further back.
                let n = messages.len();
                if *more {
                    let _ = write!(s, "\r\n*** end; /history {room} {n} shows the {n} before these");
                } else {
                    s.push_str("\r\n*** end of the stored history");
                }
            }
        }
        Event::IgnoreMode { on: true, .. } => s.push_str(
            "*** ignore mode ON: room messages are hidden, private messages still arrive (/i to turn off)",
        ),
        Event::IgnoreMode { on: false, .. } => s.push_str("*** ignore mode OFF: you see room messages again"),
        Event::Ignoring { nicks, .. } if nicks.is_empty() => s.push_str("*** you ignore nobody"),
        Event::Ignoring { nicks, .. } => {
            let _ = write!(s, "*** you ignore: {}", nicks.join(", "));
        }
        Event::ActiveRooms { rooms, .. } => {
            let list: Vec<&str> = rooms.iter().map(|(r, _)| &**r).collect();
            let _ = write!(s, "*** active rooms: {}", list.join(" "));
        }
        // Only IRC asks for these (ISON, USERHOST, LUSERS); a line keeps other doors honest.
        Event::Users { users, .. } => {
            let list: Vec<&str> = users.iter().map(|u| &*u.nick).collect();
            let _ = write!(s, "*** online: {}", list.join(", "));
        }
        Event::ServerStats { stats, .. } => {
            let _ = write!(s, "*** {} online (most ever {})", stats.users, stats.peak);
        }
        Event::AccountOf { nick, account: Some(account), .. } => {
            let _ = write!(s, "*** {nick} logged in as {}", SafeLine(account));
        }
        Event::AccountOf { nick, account: None, .. } => {
            let _ = write!(s, "*** {nick} logged out of their account");
        }
        Event::Certificates { change, done, fingerprints, account, .. } => {
            let _ = write!(s, "*** {}", crate::door::certificates_said(account, change, *done));
            for fp in fingerprints {
                let _ = write!(s, " {fp}");
            }
        }
        Event::Realname { nick, realname, .. } => {
            let _ = write!(s, "*** {nick} is now called {}", SafeLine(realname));
        }
        Event::Watched { online, offline, full, .. } => {
            let list = |names: &[natter_core::Name]| {
                names.iter().map(|n| SafeLine(n).to_string()).collect::<Vec<_>>().join(", ")
            };
            let parts: Vec<String> =
                [("online", online), ("offline", offline), ("not watched, the list is full", full)]
                    .into_iter()
                    .filter(|(_, names)| !names.is_empty())
                    .map(|(what, names)| format!("{what}: {}", list(names)))
                    .collect();
            let _ = write!(s, "*** watched {}", parts.join("; "));
        }
        Event::WatchList { nicks, .. } => {
            let list: Vec<String> = nicks.iter().map(|n| SafeLine(n).to_string()).collect();
            let _ = write!(s, "*** watching: {}", list.join(", "));
        }
        Event::Invites { rooms, .. } => {
            let list: Vec<&str> = rooms.iter().map(|r| &**r).collect();
            let _ = write!(s, "*** invited to: {}", list.join(" "));
        }
        Event::Announcement { from, text, .. } => {
            let _ = write!(s, "*** wallops from {from}: {}", SafeLine(text));
        }
        Event::Account { change, account, .. } => {
            let _ = match change {
                AccountChange::Registered => {
                    write!(s, "*** registered the account {account}; you are logged in as it")
                }
                AccountChange::LoggedIn => write!(s, "*** you are logged in as {account}"),
                AccountChange::LoggedOut => write!(s, "*** you logged out of {account}"),
                AccountChange::PasswordChanged => write!(s, "*** changed the password of {account}"),
            };
        }
        // Resume tokens are the native protocol's: a text client keeps nothing between sessions.
        Event::ResumeToken { .. } => return String::new(),
        Event::NickProtected { nick, grace_secs: 0 } => {
            let _ = write!(
                s,
                "*** the nickname {nick} is registered: its owner may take it back; /login {nick} PASSWORD if it is yours"
            );
        }
        Event::NickProtected { nick, grace_secs } => {
            let _ = write!(
                s,
                "*** the nickname {nick} is registered: /login {nick} PASSWORD within {grace_secs} s, or you will be renamed"
            );
        }
        Event::Notice { text, .. } => {
            for (i, line) in text.lines().enumerate() {
                if i > 0 {
                    s.push_str("\r\n");
                }
                let _ = write!(s, "*** {}", SafeLine(line));
            }
        }
        Event::RoomChanged { room, by, changes, .. } => {
            let (letters, params) = mode_string(changes);
            let _ = write!(s, "*** {by} sets mode {letters}");
            for p in params {
                let _ = write!(s, " {}", SafeLine(&p));
            }
            let _ = write!(s, " on {room}");
        }
        Event::RoomModes { room, modes, .. } => {
            let (letters, params) = modes_of(modes);
            let _ = write!(s, "*** {room} modes: {letters}");
            for p in params {
                let _ = write!(s, " {}", SafeLine(&p));
            }
        }
        Event::Bans { room, bans, .. } if bans.is_empty() => {
            let _ = write!(s, "*** {room} bans nobody");
        }
        Event::Bans { room, bans, .. } => {
            let _ = write!(s, "*** {room} bans:");
            for ban in bans {
                let _ = write!(s, "\r\n***   {} (by {})", SafeLine(&ban.mask), SafeLine(&ban.by));
            }
        }
        Event::Kick { room, nick, by, reason, ts, .. } => {
            let _ = write!(s, "[{}] {room} <-- {nick} was kicked by {by}", clock(*ts));
            reason_suffix(reason, &mut s);
        }
        Event::Invite { req: None, room, from, .. } => {
            let _ = write!(s, "*** {from} invites you to {room} (/join {room})");
        }
        Event::Invite { room, to, .. } => {
            let _ = write!(s, "*** you invited {to} to {room}");
        }
        Event::Away { req: None, nick, text: Some(text), .. } => {
            let _ = write!(s, "*** {nick} is away: {}", SafeLine(text));
        }
        Event::Away { req: None, nick, text: None, .. } => {
            let _ = write!(s, "*** {nick} is back");
        }
        Event::Away { text: Some(text), .. } => {
            let _ = write!(s, "*** you are away: {} (/away to come back)", SafeLine(text));
        }
        Event::Away { text: None, .. } => s.push_str("*** you are back"),
        Event::UserInfo { user, .. } => {
            let _ = write!(s, "*** {} is {}", user.nick, SafeLine(&user.ident));
            if !user.realname.is_empty() {
                let _ = write!(s, " ({})", SafeLine(&user.realname));
            }
            if let Some(real) = &user.real_host {
                let _ = write!(s, "\r\n*** connecting from {real}");
            }
            if let Some(account) = &user.account {
                let _ = write!(s, "\r\n*** logged in as {account}");
            }
            let rooms: Vec<String> = user
                .rooms
                .iter()
                .map(|r| {
                    format!(
                        "{}{}",
                        if r.op {
                            "@"
                        } else if r.voice {
                            "+"
                        } else {
                            ""
                        },
                        r.room
                    )
                })
                .collect();
            if !rooms.is_empty() {
                let _ = write!(s, "\r\n*** in {}", rooms.join(" "));
            }
            if let Some(away) = &user.away {
                let _ = write!(s, "\r\n*** away: {}", SafeLine(away));
            }
        }
        Event::Whowas { nick, entries, .. } if entries.is_empty() => {
            let _ = write!(s, "*** nobody was {nick} recently");
        }
        Event::Whowas { entries, .. } => {
            for (i, p) in entries.iter().enumerate() {
                if i > 0 {
                    s.push_str("\r\n");
                }
                let _ = write!(s, "*** {} was {} until {}", p.nick, SafeLine(&p.ident), clock(p.ts));
            }
        }
        // A refusal quotes what was asked for (a nick, a room, a mask) as it was typed.
        Event::Error { refusal, .. } => {
            let _ = write!(s, "!!! {}", SafeLine(&refusal.to_string()));
        }
        Event::Local(note) => match note.get::<TypingError>() {
            Some(TypingError(problem)) => {
                let _ = write!(s, "!!! {}", SafeLine(problem));
            }
            None => return String::new(),
        },
        Event::Bye { reason } => {
            let _ = write!(s, "*** bye: {}", SafeLine(reason));
        }
    }
    s.push_str("\r\n");
    s
}

impl TextDoor {
    async fn typed(&mut self, input: Input, ctx: &mut SessionCtx) -> Flow {
        let command = match input {
            Input::Empty => return Flow::Continue,
            Input::Say(text) => {
                let Some(room) = self.current_room() else {
                    return ctx.note(error("you are in no room; /join #room first"));
                };
                if !ctx.allow_message() {
                    return ctx.rate_limited_counted();
                }
                Command::say(Target::Room(room.to_string()), text)
            }
            Input::Private { to, text } => {
                if !ctx.allow_message() {
                    return ctx.rate_limited_counted();
                }
                Command::say(Target::Nick(to), text)
            }
            Input::SlashCommand(cmd) => match self.command(cmd, ctx) {
                Ok(command) => command,
                Err(flow) => return flow,
            },
        };
        ctx.command(command).await
    }

    fn room_or_current(&self, room: Option<String>, ctx: &mut SessionCtx) -> Result<String, Flow> {
        match room.or_else(|| self.current_room().map(str::to_string)) {
            Some(room) => Ok(room),
            None => Err(ctx.note(error("you are in no room; name one, e.g. #lobby"))),
        }
    }

    fn command(&mut self, cmd: SlashCommand, ctx: &mut SessionCtx) -> Result<Command, Flow> {
        Ok(match cmd {
            SlashCommand::Help(topic) => {
                let lines = match topic.as_deref().and_then(|t| t.split_whitespace().next()) {
                    None => help_lines(),
                    Some(name) => match help_topic(name) {
                        Some(lines) => lines,
                        None => {
                            let name = name.trim_start_matches('/');
                            let problem = format!("there is no command /{name}; /help lists them all");
                            return Err(ctx.note(error(&problem)));
                        }
                    },
                };
                let text = lines.join("\n");
                return Err(ctx.local(Event::Notice { req: None, room: None, text: text.into() }));
            }
            SlashCommand::Who { target, after } => {
                let room = match target {
                    Some(all) if all == "*" => None,
                    room => Some(self.room_or_current(room, ctx)?),
                };
                Command::Who { room, detail: false, page: Paging { after, limit: None }, req: None }
            }
            SlashCommand::IgnoreAll => Command::IgnoreAll { on: None, req: None },
            SlashCommand::Join(room) => Command::Join { room, key: None, req: None },
            SlashCommand::Part { room, reason } => {
                Command::Part { room: self.room_or_current(room, ctx)?, reason, req: None }
            }
            SlashCommand::Rooms => Command::Rooms { req: None },
            // The hub changes nothing and says nothing: say so, rather than leave silence.
            SlashCommand::Nick(nick) if nick == self.nick => {
                let text = format!("you are already {nick}");
                return Err(ctx.local(Event::Notice { req: None, room: None, text: text.into() }));
            }
            SlashCommand::Nick(nick) => Command::Nick { nick, req: None },
            SlashCommand::Me(text) => {
                let room = self.room_or_current(None, ctx)?;
                if !ctx.allow_message() {
                    return Err(ctx.rate_limited_counted());
                }
                Command::me(Target::Room(room), text)
            }
            SlashCommand::Topic { room, topic } => {
                Command::Topic { room: self.room_or_current(room, ctx)?, topic, req: None }
            }
            SlashCommand::History { room, count } => {
                let room = self.room_or_current(room, ctx)?;
                // Repeating `/history` pages further back (see `history_before`).
                let before = self.history_before.get(&*fold(&room)).copied();
                Command::History {
                    room,
                    query: natter_core::store::HistoryQuery {
                        limit: count.unwrap_or(20),
                        before,
                        ..Default::default()
                    },
                    around: false,
                    req: None,
                }
            }
            SlashCommand::Ignore(nick) => Command::Ignore { nick, req: None },
            SlashCommand::Unignore(nick) => Command::Unignore { nick, req: None },
            SlashCommand::Ephemeral { room, on } => {
                Command::SetEphemeral { room: self.room_or_current(room, ctx)?, on, req: None }
            }
            SlashCommand::Kick { room, nick, reason } => {
                Command::Kick { room: self.room_or_current(room, ctx)?, nick, reason, req: None }
            }
            SlashCommand::Ban { room, mask: None, .. } => {
                Command::Bans { room: self.room_or_current(room, ctx)?, req: None }
            }
            SlashCommand::Ban { room, mask: Some(mask), on } => Command::Mode {
                room: self.room_or_current(room, ctx)?,
                changes: vec![RoomChange::Ban { mask: complete_mask(&mask), on }],
                req: None,
            },
            SlashCommand::Standing { room, nick, operator, on } => Command::Mode {
                room: self.room_or_current(room, ctx)?,
                changes: vec![if operator {
                    RoomChange::Operator { nick, on }
                } else {
                    RoomChange::Voice { nick, on }
                }],
                req: None,
            },
            SlashCommand::Mode { room, modes } => {
                let room = self.room_or_current(room, ctx)?;
                if modes.is_empty() {
                    return Ok(Command::RoomModes { room, req: None });
                }
                let mut changes = Vec::new();
                for item in parse_modes(modes.iter().map(String::as_str)) {
                    match item {
                        ModeItem::Change(c) => changes.push(c),
                        ModeItem::ListBans => return Ok(Command::Bans { room, req: None }),
                        ModeItem::Unknown(c) => {
                            let problem = format!("unknown mode {c}; modes are t n m i s k l b o v");
                            return Err(ctx.reject_note(&problem.clone(), error(&problem)));
                        }
                        ModeItem::NeedsParam(c) => {
                            let problem = format!("mode {c} needs a value, e.g. /mode +{c} value");
                            return Err(ctx.reject_note(&problem.clone(), error(&problem)));
                        }
                    }
                }
                Command::Mode { room, changes, req: None }
            }
            SlashCommand::Invite { nick, room } => {
                Command::Invite { room: self.room_or_current(room, ctx)?, nick, req: None }
            }
            SlashCommand::Away(text) => Command::Away { text, req: None },
            SlashCommand::Whois(nick) => Command::Whois { nick, req: None },
            SlashCommand::Register(password) => Command::Register {
                password: Password::new(password.0),
                from: Some(ctx.peer.ip()),
                req: None,
            },
            SlashCommand::Login { name, password } => Command::Login {
                name,
                password: Password::new(password.0),
                from: Some(ctx.peer.ip()),
                req: None,
            },
            SlashCommand::Logout => Command::Logout { req: None },
            SlashCommand::Passwd { old, new } => Command::Passwd {
                old: Password::new(old.0),
                new: Password::new(new.0),
                from: Some(ctx.peer.ip()),
                req: None,
            },
            SlashCommand::Reply(text) => {
                let Some(to) = self.last_private.clone() else {
                    let problem = "nobody has sent you a private message yet; use @nick text";
                    return Err(ctx.reject_note(problem, error(problem)));
                };
                if !ctx.allow_message() {
                    return Err(ctx.rate_limited_counted());
                }
                Command::say(Target::Nick(to), text)
            }
            SlashCommand::Encoding(choice) => {
                if let Some(choice) = choice {
                    self.encoding.set(choice);
                }
                // Rendered after the switch: the answer already comes in the new encoding.
                let text = self.encoding.describe();
                return Err(ctx.local(Event::Notice { req: None, room: None, text: text.into() }));
            }
            SlashCommand::Quit(reason) => {
                return Err(ctx.close(Disconnect::Quit, reason.unwrap_or_else(|| "quit".into())));
            }
        })
    }
}

/// Text mode's own refusal of what was typed.
fn error(problem: &str) -> DoorNote {
    DoorNote::new(TypingError(problem.to_string()))
}

impl Door for TextDoor {
    const KIND: SessionKind = SessionKind::Text;

    fn cache_slot(event: &Event) -> Option<RenderSlot> {
        super::is_shared(event).then_some(slots::TEXT)
    }

    /// The shared slot holds UTF-8 lines: a GBK peer renders its own (and stays out of it),
    /// UTF-8 peers share as before.
    fn slot(&self, event: &Event) -> Option<RenderSlot> {
        if self.encoding.is_gbk() { None } else { Self::cache_slot(event) }
    }

    fn gb18030(&self) -> bool {
        self.encoding.is_gbk()
    }

    fn render(&mut self, event: &Event, out: &mut Vec<u8>) {
        if super::is_meta_only(event) {
            return;
        }
        out.extend_from_slice(&self.encoding.encode(&render_text_for(event, &self.nick)));
    }

    fn observe(&mut self, event: &Event) {
        match event {
            Event::Welcome { nick, .. } => self.nick = nick.to_string(),
            Event::Joined { room, .. } => {
                self.rooms.retain(|r| fold(r) != fold(room));
                self.rooms.push(room.to_string());
            }
            // Kicked is left, as much as parted: the current room goes back to the previous one.
            Event::Part { room, nick, .. } | Event::Kick { room, nick, .. }
                if fold(nick) == fold(&self.nick) =>
            {
                self.rooms.retain(|r| fold(r) != fold(room));
            }
            // Answers to this door's own `/history` (no request id): remember where the page
            // began while older messages remain; at the end the next `/history` starts afresh.
            Event::History { req: None, room, messages, more } => {
                match messages.iter().filter_map(|m| m.mid).min() {
                    Some(oldest) if *more => {
                        self.history_before.insert(fold(room), oldest);
                    }
                    _ => {
                        self.history_before.remove(&*fold(room));
                    }
                }
            }
            Event::Nick { old, new, .. } if fold(old) == fold(&self.nick) => self.nick = new.to_string(),
            Event::Nick { old, new, .. }
                if self.last_private.as_deref().is_some_and(|last| fold(last) == fold(old)) =>
            {
                self.last_private = Some(new.to_string());
            }
            Event::Message(m) if m.room.is_none() && fold(&m.from) != fold(&self.nick) => {
                self.last_private = Some(m.from.to_string());
            }
            _ => {}
        }
    }

    fn on_registered(&mut self, nick: &str, lobby: &str) {
        self.nick = nick.to_string();
        if self.rooms.is_empty() {
            self.rooms.push(lobby.to_string());
        }
    }

    async fn on_line(&mut self, line: &[u8], ctx: &mut SessionCtx) -> Flow {
        let line = strip_telnet(line);
        let (text, detected) = decode_text_detect(&line);
        // GBK in, GBK out (in auto mode): from this line's answers on.
        self.encoding.observe(detected);
        if ctx.session.is_none() {
            let nick = text.trim();
            if nick.is_empty() {
                return Flow::Continue;
            }
            if matches!(nick, "quit" | "exit" | "/quit") {
                return ctx.close(Disconnect::Quit, "bye");
            }
            let flow = ctx.register(nick.to_string(), None).await;
            if ctx.session.is_some() {
                self.on_registered(nick, &ctx.lobby());
            } else if flow == Flow::Continue {
                return ctx.local(Event::Notice {
                    req: None,
                    room: None,
                    text: "type another nickname:".into(),
                });
            }
            return flow;
        }
        // Messages dropped as too fast are counted; once the session may send again, say how many.
        if let Flow::Close(reason) = ctx.settle_dropped() {
            return Flow::Close(reason);
        }
        match parse_input(&text) {
            Ok(input) => self.typed(input, ctx).await,
            Err(e) => {
                let problem = e.to_string();
                ctx.reject_note(&problem, error(&problem))
            }
        }
    }
}

/// Removes telnet negotiation (IAC sequences) that telnet clients mix into the text.
pub(super) fn strip_telnet(line: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !line.contains(&0xFF) {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] != 0xFF {
            out.push(line[i]);
            i += 1;
            continue;
        }
        match line.get(i + 1) {
            Some(0xFF) => {
                out.push(0xFF);
                i += 2;
            }
            Some(251..=254) => i += 3,
            Some(250) => {
                // Subnegotiation runs to IAC SE.
                let end =
                    line[i..].windows(2).position(|w| w == [0xFF, 240]).map_or(line.len(), |p| i + p + 2);
                i = end;
            }
            Some(_) => i += 2,
            None => i += 1,
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn telnet_negotiation_is_removed() {
        assert_eq!(&*strip_telnet(b"\xFF\xFB\x01alice\xFF\xFD\x03"), b"alice");
        assert_eq!(&*strip_telnet(b"a\xFF\xFFb"), b"a\xFFb");
        assert_eq!(&*strip_telnet(b"x\xFF\xFA\x18\x01\xFF\xF0y"), b"xy");
        assert_eq!(&*strip_telnet(b"\xFF"), b"");
    }

    #[test]
    fn lines_are_readable() {
        let m = ChatMessage {
            room: Some("#lobby".into()),
            from: "ann".into(),
            ident: "x@y".into(),
            account: None,
            to: None,
            text: "hi".into(),
            action: false,
            bot: false,
            notice: false,
            meta: None,
            uid: 0,
            mid: Some(1),
            ts: 3_600_000 + 61_000,
        };
        assert_eq!(render_text(&Event::Message(Arc::new(m))), "[01:01] #lobby <ann> hi\r\n");
    }

    #[test]
    fn what_people_typed_stays_on_its_line_and_cannot_drive_the_terminal() {
        let now = natter_core::time::now_ms();
        let hostile = "\u{1b}[2J\u{1b}]52;c;cm0gLXJm\u{7}\u{202e}sdrawkcab\n*** fake notice\r\n!!! fake";
        let events = [
            Event::Message(said(hostile, now, 1)),
            Event::Topic {
                req: None,
                room: "#lobby".into(),
                topic: hostile.into(),
                by: Some("ann".into()),
                changed: true,
            },
            Event::Quit { nick: "ann".into(), ident: "x@y".into(), reason: Some(hostile.into()), ts: now },
            Event::Away {
                req: None,
                nick: "ann".into(),
                ident: "x@y".into(),
                text: Some(hostile.into()),
                watched: false,
            },
            Event::Bye { reason: hostile.into() },
        ];
        for event in events {
            let text = render_text(&event);
            let lines: Vec<&str> = text.strip_suffix("\r\n").unwrap().split("\r\n").collect();
            assert_eq!(lines.len(), 1, "{text:?}");
            assert!(!text.trim_end().chars().any(|c| c.is_control()), "{text:?}");
            assert!(
                text.contains("␛[2J␛]52;c;cm0gLXJm␇\u{202e}sdrawkcab ⏎ *** fake notice ⏎ !!! fake\u{202c}")
            );
        }
    }

    fn said(text: &str, ts: u64, mid: u64) -> Arc<ChatMessage> {
        Arc::new(ChatMessage {
            room: Some("#lobby".into()),
            from: "ann".into(),
            ident: "x@y".into(),
            account: None,
            to: None,
            text: text.into(),
            action: false,
            bot: false,
            notice: false,
            meta: None,
            uid: 0,
            mid: Some(mid),
            ts,
        })
    }

    #[test]
    fn history_from_another_day_is_dated() {
        // 2024-03-05 07:08:09 UTC.
        let old = 1_709_622_489_000;
        let now = natter_core::time::now_ms();
        let page = Event::History {
            req: None,
            room: "#lobby".into(),
            messages: vec![said("last week", old, 1), said("now", now, 2)],
            more: false,
        };
        let text = render_text(&page);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[1], "[2024-03-05 07:08] #lobby <ann> last week", "{text}");
        assert_eq!(lines[2], format!("[{}] #lobby <ann> now", clock(now)), "{text}");
        // Live messages keep the short clock.
        assert!(render_text(&Event::Message(said("x", old, 3))).starts_with("[07:08] "));
    }

    #[test]
    fn a_repeated_history_pages_back() {
        let mut door = TextDoor::default();
        door.on_registered("ann", "#lobby");
        let now = natter_core::time::now_ms();
        let page = |mids: &[u64], more: bool| Event::History {
            req: None,
            room: "#Lobby".into(),
            messages: mids.iter().map(|&m| said("x", now, m)).collect(),
            more,
        };
        let text = render_text(&page(&[7, 8, 9], true));
        assert!(text.ends_with("*** end; /history #Lobby 3 shows the 3 before these\r\n"), "{text}");
        door.observe(&page(&[7, 8, 9], true));
        assert_eq!(door.history_before.get("#lobby"), Some(&7));
        door.observe(&page(&[4, 5, 6], true));
        assert_eq!(door.history_before.get("#lobby"), Some(&4));
        // At the end of the stored history the next /history starts from the newest again.
        door.observe(&page(&[1, 2, 3], false));
        assert_eq!(door.history_before.get("#lobby"), None);
    }

    #[test]
    fn replay_comes_before_the_present_and_long_lines_are_clipped() {
        let now = natter_core::time::now_ms();
        let long = "x".repeat(16 * 1024);
        let joined = Event::Joined {
            req: None,
            room: "#big".into(),
            topic: "".into(),
            secret: false,
            topic_set: None,
            members: vec!["ann".into()],
            count: 1,
            idents: vec!["x@y".into()],
            operators: Vec::new(),
            voiced: Vec::new(),
            ephemeral: false,
            history: vec![said("short", now, 1), said(&long, now, 2)],
            account: None,
        };
        let text = render_text(&joined);
        let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
        assert_eq!(lines[0], "*** last 2 messages in #big:");
        assert!(lines[1].ends_with("<ann> short"));
        // The text is clipped to REPLAY_CLIP characters, the rest of the line kept.
        let clipped = format!("#lobby <ann> {} … (/history #big shows it whole)", "x".repeat(REPLAY_CLIP));
        assert!(lines[2].ends_with(&clipped), "{}", &lines[2][..50]);
        assert_eq!(lines[3], "*** end of history");
        assert_eq!(lines[4], "*** you are in #big (1 here: ann)");
        assert_eq!(lines.len(), 5);
        // `/history` shows it whole.
        let page = Event::History {
            req: None,
            room: "#big".into(),
            messages: vec![said(&long, now, 2)],
            more: false,
        };
        assert!(render_text(&page).contains(&long));
    }
}
