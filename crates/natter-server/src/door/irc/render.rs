//! Rendering: each core event as the IRC lines a client expects, messages split to fit
//! IRC's line length, and answers shaped by the request they answer.

use super::cmd::nickserv::NICKSERV;
use super::lines::{push_line, push_text_line, source, split_ident};
use super::replies::PartialList;
use super::requests::{Op, op_of};
use super::{IrcDoor, IrcNote};
use crate::door::modes::{mode_string, modes_of};
use natter_core::event::AccountChange;
use natter_core::hub::MAX_WATCHES;
use natter_core::{ChatMessage, Event};
use natter_proto::irc::{self, MAX_LINE};
use natter_proto::names::fold;

impl IrcDoor {
    pub(super) fn time_tag(&self, ts: u64) -> String {
        if self.caps.server_time { format!("@time={} ", irc::server_time(ts)) } else { String::new() }
    }

    /// Tags of a chat message line: `time` (server-time), `msgid` and the sender's client-only
    /// tags (message-tags: the message's metadata), the sender's `account` (account-tag),
    /// `batch` inside a batch.
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
            add(&format!("msgid={}", m.stable_id()));
            if m.bot {
                add("bot");
            }
        }
        if self.caps.account_tag
            && let Some(account) = &m.account
        {
            let mut tag = String::from("account=");
            irc::escape_tag_value(account, &mut tag);
            add(&tag);
        }
        if self.caps.message_tags
            && let Some(meta) = &m.meta
        {
            add(meta);
        }
        if !t.is_empty() {
            t.push(' ');
        }
        t
    }

    /// A chat message as PRIVMSG or NOTICE lines (TAGMSG for a tag-only message, to
    /// message-tags clients only), with CTCP ACTION for `/me`. Every line fits IRC's 512
    /// bytes with the sender's prefix: a longer text is split (at spaces where it can be) into
    /// several lines, so nothing is cut off, even when a client sent a full 512-byte line
    /// and the prefix made it longer.
    pub(super) fn message(&self, m: &ChatMessage, batch: Option<&str>, out: &mut Vec<u8>) {
        let target = match (&m.room, &m.to) {
            (Some(room), _) => &**room,
            (None, Some(to)) => &**to,
            (None, None) => self.me(),
        };
        let tags = self.message_tags(m, batch);
        let prefix = source(&m.from, &m.ident);
        if m.text.is_empty() {
            if m.meta.is_some() && self.caps.message_tags {
                push_line(out, &tags, Some(&prefix), "TAGMSG", &[target]);
            }
            return;
        }
        let command = if m.notice { "NOTICE" } else { "PRIVMSG" };
        // What a client could send in one line: `PRIVMSG target :text` in 510 bytes.
        let ctcp = if m.action { 9 } else { 0 };
        // Room for the text: 510 minus prefix, command, target, separators and CTCP framing.
        let overhead = 1 + prefix.len() + 1 + command.len() + 1 + target.len() + 2 + ctcp;
        let room_for_text = MAX_LINE.saturating_sub(overhead).max(16);
        // Pieces are cut to fit; the cut is a safety net for a room below the 16 bytes kept.
        let max = MAX_LINE.max(overhead + room_for_text);
        for line in m.text.split(['\n', '\r']).filter(|l| !l.is_empty()) {
            let pieces =
                if line.len() <= room_for_text { vec![line] } else { irc::split_text(line, room_for_text) };
            for piece in pieces {
                let body;
                let text = if m.action {
                    body = format!("\u{1}ACTION {piece}\u{1}");
                    &body
                } else {
                    piece
                };
                push_text_line(out, &tags, &prefix, command, target, text, max);
            }
        }
    }

    /// Renders one event as IRC lines, answers to requests as their command expects.
    pub(super) fn render_event(&mut self, event: &Event, out: &mut Vec<u8>) {
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
            Event::Ack { message, duplicate, away, offline, .. } => {
                if let (Some(away), Some(to), false) = (away, &message.to, message.notice) {
                    self.numeric(out, "301", &[to, away]);
                }
                // No numeric says "stored for later": a server NOTICE, as memo services do.
                if let (true, Some(to)) = (offline, &message.to) {
                    let text =
                        format!("{to} is offline: your message is kept and delivered when they log in");
                    push_line(out, "", Some(self.server), "NOTICE", &[self.me(), &text]);
                }
                if self.caps.echo_message && !duplicate {
                    self.message(message, None, out);
                }
            }
            Event::Join { room, nick, ident, away, account, realname, ts } => {
                let prefix = source(nick, ident);
                if self.caps.extended_join {
                    let account = account.as_deref().unwrap_or("*");
                    push_line(out, &self.time_tag(*ts), Some(&prefix), "JOIN", &[room, account, realname]);
                } else {
                    push_line(out, &self.time_tag(*ts), Some(&prefix), "JOIN", &[room]);
                }
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
                let asked = matches!(op_of(req), Some(Op::Topic { .. }));
                match (asked, changed) {
                    (_, true) => {
                        let by = by.as_deref().unwrap_or(self.server);
                        push_line(out, "", Some(by), "TOPIC", &[room, topic]);
                    }
                    (true, false) if topic.is_empty() => self.numeric(out, "331", &[room, "No topic is set"]),
                    // No 333 (who/when): the core keeps who set a topic but not when.
                    (true, false) => self.numeric(out, "332", &[room, topic]),
                    _ => {}
                }
            }
            Event::Joined {
                room,
                topic,
                topic_set,
                secret,
                members,
                count,
                idents,
                operators,
                voiced,
                history,
                account,
                ..
            } => {
                if std::mem::take(&mut self.rejoin) {
                    return;
                }
                let me = source(&self.nick, &self.ident);
                if self.caps.extended_join {
                    let account = account.as_deref().unwrap_or("*");
                    push_line(out, "", Some(&me), "JOIN", &[room, account, &self.realname]);
                } else {
                    push_line(out, "", Some(&me), "JOIN", &[room]);
                }
                if !topic.is_empty() {
                    self.numeric(out, "332", &[room, topic]);
                    if let Some((by, ts)) = topic_set.as_ref().filter(|(_, ts)| *ts > 0) {
                        self.numeric(out, "333", &[room, by, &(ts / 1000).to_string()]);
                    }
                }
                if *secret {
                    self.mark_secret(room, true);
                }
                let kind = if *secret { "@" } else { "=" };
                // Sets, so that a long list with many operators costs its length, not a product.
                let ops: std::collections::HashSet<&str> = operators.iter().map(|n| &**n).collect();
                let voices: std::collections::HashSet<&str> = voiced.iter().map(|n| &**n).collect();
                let entries: Vec<(&str, &str, bool, bool)> = members
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let ident = idents.get(i).map_or("", |x| &**x);
                        (&**m, ident, ops.contains(&**m), voices.contains(&**m))
                    })
                    .collect();
                self.names(room, kind, &entries, out);
                self.partial_list_notice(PartialList::Room(room), members.len(), *count, out);
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
            Event::Members { req, room, nicks, info, count, .. } => match op_of(req) {
                Some(Op::Names { room: asked, in_list }) => {
                    let room = room.as_deref().unwrap_or(asked);
                    let kind = if self.is_secret(room) { "@" } else { "=" };
                    let entries: Vec<(&str, &str, bool, bool)> =
                        info.iter().map(|m| (&*m.nick, &*m.ident, m.op, m.voice)).collect();
                    if *in_list {
                        self.names_lines(room, kind, &entries, out);
                    } else {
                        self.names(room, kind, &entries, out);
                    }
                    self.partial_list_notice(PartialList::Room(room), info.len(), *count, out);
                }
                Some(Op::Who { mask, whox }) => {
                    match whox {
                        Some(whox) => self.whox(mask, room.as_deref(), info, whox, out),
                        None => self.who(mask, room.as_deref(), info, out),
                    }
                    let of = match room.as_deref() {
                        Some(room) => PartialList::Room(room),
                        None if mask == "*" => PartialList::Server,
                        None => PartialList::Search(mask),
                    };
                    self.partial_list_notice(of, info.len(), *count, out);
                }
                _ => {
                    let list: Vec<&str> = nicks.iter().map(|n| &**n).collect();
                    let text = format!("{}: {}", room.as_deref().unwrap_or("online"), list.join(" "));
                    push_line(out, "", Some(self.server), "NOTICE", &[self.me(), &text]);
                }
            },
            Event::Users { req, users } => match op_of(req) {
                Some(Op::Ison { .. }) => {
                    let online: Vec<&str> = users.iter().map(|u| &*u.nick).collect();
                    self.numeric(out, "303", &[&online.join(" ")]);
                }
                _ => {
                    let replies: Vec<String> = users
                        .iter()
                        .take(5)
                        .map(|m| {
                            let away = if m.away.is_some() { '-' } else { '+' };
                            let oper = if m.server_op { "*" } else { "" };
                            format!("{}{oper}={away}{}", m.nick, m.ident)
                        })
                        .collect();
                    self.numeric(out, "302", &[&replies.join(" ")]);
                }
            },
            Event::Watched { online, offline, full, .. } => {
                self.comma_lists("730", online, out);
                self.comma_lists("731", offline, out);
                if !full.is_empty() {
                    let targets: Vec<&str> = full.iter().map(|n| &**n).collect();
                    let limit = MAX_WATCHES.to_string();
                    self.numeric(out, "734", &[&limit, &targets.join(","), "Monitor list is full"]);
                }
            }
            Event::AccountOf { nick, ident, account, watched } => {
                if self.caps.account_notify && (!watched || self.caps.extended_monitor) {
                    let account = account.as_deref().unwrap_or("*");
                    push_line(out, "", Some(&source(nick, ident)), "ACCOUNT", &[account]);
                }
            }
            Event::WatchList { nicks, .. } => {
                self.comma_lists("732", nicks, out);
                self.numeric(out, "733", &["End of MONITOR list"]);
            }
            Event::ServerStats { req, stats } => {
                self.lusers(stats, out);
                if matches!(op_of(req), Some(Op::Lusers { welcome: true })) {
                    self.motd(out);
                    self.deferring = false;
                    // Taken, not appended from: the burst's room is not kept for the session.
                    out.append(&mut std::mem::take(&mut self.deferred));
                }
            }
            Event::RoomChanged { room, by, ident, changes, ts } => {
                let (letters, params) = mode_string(changes);
                let mut all: Vec<&str> = vec![room, &letters];
                all.extend(params.iter().map(String::as_str));
                push_line(out, &self.time_tag(*ts), Some(&source(by, ident)), "MODE", &all);
            }
            Event::RoomModes { room, modes, created_ts, .. } => {
                let (letters, params) = modes_of(modes);
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
            Event::Realname { nick, ident, realname, watched } => {
                if self.caps.setname && (!watched || self.caps.extended_monitor) {
                    push_line(out, "", Some(&source(nick, ident)), "SETNAME", &[realname]);
                }
            }
            Event::Away { req: None, nick, ident, text, watched } => {
                if self.caps.away_notify && (!watched || self.caps.extended_monitor) {
                    match text {
                        Some(t) => push_line(out, "", Some(&source(nick, ident)), "AWAY", &[t]),
                        None => push_line(out, "", Some(&source(nick, ident)), "AWAY", &[]),
                    }
                }
            }
            Event::UserInfo { req, user } => {
                let asked = op_of(req).and_then(Op::nick).unwrap_or(&user.nick);
                self.whois(asked, user, out)
            }
            Event::Announcement { from, ident, text } => {
                push_line(out, "", Some(&source(from, ident)), "WALLOPS", &[text]);
            }
            Event::Invites { rooms, .. } => {
                for room in rooms {
                    self.numeric(out, "336", &[room]);
                }
                self.numeric(out, "337", &["End of /INVITE list"]);
            }
            Event::Whowas { req, nick, entries } => {
                let arg = op_of(req).and_then(Op::nick).unwrap_or(nick);
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
                let filter = match op_of(req) {
                    Some(Op::List { filter }) => filter.as_str(),
                    _ => "",
                };
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
            Event::ActiveRooms { rooms, .. } => {
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
            Event::Local(note) => {
                if let Some(IrcNote::Lines(lines)) = note.get::<IrcNote>() {
                    out.extend_from_slice(lines);
                }
            }
            Event::Account { req, change, account } => {
                let me = self.me().to_string();
                let full = source(&me, &self.ident);
                if matches!(op_of(req), Some(Op::Sasl)) {
                    let says = format!("You are now logged in as {account}");
                    return self.numeric(out, "900", &[&full, account, &says]);
                }
                let says = match change {
                    AccountChange::Registered => format!("Account created: {account}"),
                    AccountChange::LoggedIn => format!("You are now logged in as {account}"),
                    AccountChange::LoggedOut => format!("You are now logged out of {account}"),
                    AccountChange::PasswordChanged => format!("Password changed for {account}"),
                };
                push_line(out, "", Some(NICKSERV), "NOTICE", &[&me, &says]);
                match change {
                    AccountChange::Registered | AccountChange::LoggedIn => self.numeric(
                        out,
                        "900",
                        &[&full, account, &format!("You are now logged in as {account}")],
                    ),
                    AccountChange::LoggedOut => self.numeric(out, "901", &[&full, "You are now logged out"]),
                    AccountChange::PasswordChanged => {}
                }
            }
            Event::Certificates { change, done, fingerprints, account, .. } => {
                let me = self.me().to_string();
                let mut says = vec![crate::door::certificates_said(account, change, *done)];
                says.extend(fingerprints.iter().map(|fp| format!("  {fp}")));
                for line in &says {
                    push_line(out, "", Some(NICKSERV), "NOTICE", &[&me, line]);
                }
            }
            // Resume tokens are the native protocol's; an IRC client logs in with SASL.
            Event::ResumeToken { .. } => {}
            Event::NickProtected { nick, grace_secs } => {
                let me = self.me().to_string();
                let says = if *grace_secs == 0 {
                    format!(
                        "The nickname {nick} is registered: its owner may take it back. /msg NickServ IDENTIFY <password> if it is yours"
                    )
                } else {
                    format!(
                        "The nickname {nick} is registered. /msg NickServ IDENTIFY <password> within {grace_secs} seconds, or you will be renamed"
                    )
                };
                push_line(out, "", Some(NICKSERV), "NOTICE", &[&me, &says]);
            }
            Event::Notice { req, .. } if matches!(op_of(req), Some(Op::Oper)) => {
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
            Event::Error { req, refusal } => self.render_error(req, refusal, out),
            Event::Bye { reason } => {
                let host = self.ident.split_once('@').map_or("", |(_, h)| h);
                push_line(out, "", None, "ERROR", &[&format!("Closing Link: {host} ({reason})")]);
            }
        }
    }
}
