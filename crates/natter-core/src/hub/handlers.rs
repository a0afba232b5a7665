//! What the hub does for each command.

use super::state::{Room, Session};
use super::{Hub, PendingMessage, RegisterError, Registered, SessionId, stored_to_chat};
use crate::command::{Command, Name, Registration, SessionKind, Target};
use crate::event::{ChatMessage, Delivery, Event, MemberInfo, RoomSummary, deliver};
use crate::outbox::Piece;
use crate::persist::Committed;
use crate::store::{HistoryQuery, RoomRecord, StoredMessage, Write};
use crate::time::now_ms;
use natter_proto::names::{fold, validate_nick, validate_room};
use natter_proto::native::{ErrorCode, RequestId};
use rustc_hash::FxHashSet;
use std::sync::Arc;

type Req = Option<RequestId>;

/// What a `Say` carries besides its target.
struct Said {
    text: String,
    action: bool,
    notice: bool,
    tags: Option<String>,
}

/// Ids of live messages without a stored id: seeded from the clock (shifted past any count a
/// server reaches in a millisecond) so that ids stay unique across restarts.
static LIVE_IDS: std::sync::LazyLock<std::sync::atomic::AtomicU64> =
    std::sync::LazyLock::new(|| std::sync::atomic::AtomicU64::new(now_ms() << 16));

fn next_uid() -> u64 {
    LIVE_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Reason given to a session whose outbox overflowed.
const TOO_SLOW: &str = "too slow: your connection fell too far behind; reconnect to catch up from history";

/// A batch log longer than this is shared only with sessions that get at least
/// 1/[`SPARSE_SHARE`] of it; the others get a copy of their part. So what a slow reader's
/// outbox keeps alive stays within a small multiple of what it holds.
const SHARED_LOG_MIN: usize = 64;
const SPARSE_SHARE: usize = 8;

/// A session's staged list is kept only after batches that needed more ranges than this: an
/// idle session holds none, a busy one does not regrow it for every batch.
const KEEP_STAGED_AFTER: usize = 4;

/// Stages log entry `entry` for session `id`: it extends the session's last range when that
/// ends right there (a member receiving a room's every message holds one range per batch).
#[inline]
fn stage(dirty: &mut Vec<SessionId>, id: SessionId, s: &mut Session, entry: u32) {
    match s.staged.last_mut() {
        Some(last) if last.end == entry => last.end += 1,
        Some(_) => s.staged.push(entry..entry + 1),
        None => {
            dirty.push(id);
            s.staged.push(entry..entry + 1);
        }
    }
}

impl Hub {
    pub(super) fn register(&mut self, reg: Registration) -> Result<Registered, RegisterError> {
        if let Some(password) = &self.config.password
            && reg.password.as_deref() != Some(password.as_str())
        {
            return Err(RegisterError {
                code: ErrorCode::BadPassword,
                message: "this server needs a password; give the right one".into(),
            });
        }
        if let Err(e) = validate_nick(&reg.nick) {
            return Err(RegisterError { code: ErrorCode::InvalidNick, message: e.to_string() });
        }
        let key = fold(&reg.nick);
        if self.nicks.contains_key(&key) {
            return Err(RegisterError {
                code: ErrorCode::NickInUse,
                message: format!("the nickname {} is taken; choose another", reg.nick),
            });
        }
        let nick: Name = reg.nick.as_str().into();
        let session = Session {
            nick: nick.clone(),
            key: key.clone(),
            ident: reg.ident.as_str().into(),
            kind: reg.kind,
            outbox: reg.outbox,
            rooms: Vec::new(),
            ignore_all: false,
            ignoring: Default::default(),
            staged: Vec::new(),
            realname: reg.realname.as_str().into(),
            away: None,
            server_op: reg.kind == SessionKind::Console,
            signon_ts: now_ms(),
            active_ts: now_ms(),
            invited: Default::default(),
            invisible: false,
            hears_wallops: false,
        };
        let id = self.sessions.insert(Box::new(session));
        self.nicks.insert(key, id);
        self.reply(id, Event::Welcome { req: reg.req, nick: nick.clone() });
        if reg.lobby {
            let lobby = self.config.lobby.clone();
            self.join(id, &lobby, None, None);
        }
        Ok(Registered { session: id, nick: reg.nick })
    }

    pub(super) fn handle(&mut self, id: SessionId, cmd: Command) {
        if !self.sessions.contains_key(&id) {
            return;
        }
        match cmd {
            Command::Say { target, text, action, notice, tags, cid, req } => {
                self.say(id, target, Said { text, action, notice, tags }, cid, req)
            }
            Command::Join { room, key, req } => self.join(id, &room, key, req),
            Command::Part { room, reason, req } => self.part(id, &room, reason, req),
            Command::Nick { nick, req } => self.change_nick(id, &nick, req),
            Command::Topic { room, topic, req } => self.topic(id, &room, topic, req),
            Command::Who { room, detail, req } => self.who(id, room.as_deref(), detail, req),
            Command::Rooms { req } => self.list_rooms(id, req),
            Command::IgnoreAll { on, req } => {
                let session = self.sessions.get_mut(&id).expect("checked above");
                session.ignore_all = on.unwrap_or(!session.ignore_all);
                let on = session.ignore_all;
                self.reply(id, Event::IgnoreMode { req, on });
            }
            Command::Ignore { nick, req } => self.ignore(id, nick, req),
            Command::Unignore { nick, req } => self.unignore(id, &nick, req),
            Command::History { room, query, around, req } => self.history(id, &room, query, around, req),
            Command::Conversations { after_ts, before_ts, limit, req } => {
                self.conversations(id, after_ts, before_ts, limit, req)
            }
            Command::SetEphemeral { room, on, req } => self.set_ephemeral(id, &room, on, req),
            Command::Mode { room, changes, req } => self.mode(id, &room, changes, req),
            Command::RoomModes { room, req } => self.room_modes(id, &room, req),
            Command::Bans { room, req } => self.bans(id, &room, req),
            Command::Kick { room, nick, reason, req } => self.kick(id, &room, &nick, reason, req),
            Command::Invite { room, nick, req } => self.invite(id, &room, &nick, req),
            Command::Invites { req } => self.invites(id, req),
            Command::Away { text, req } => self.away(id, text, req),
            Command::Whois { nick, req } => self.whois(id, &nick, req),
            Command::Whowas { nick, count, req } => self.whowas(id, &nick, count, req),
            Command::Oper { name, password, req } => self.oper(id, &name, &password, req),
            Command::Echo { event } => self.reply(id, *event),
            Command::Invisible { on } => self.sessions.get_mut(&id).expect("checked above").invisible = on,
            Command::Kill { nick, reason, req } => self.kill(id, &nick, &reason, req),
            Command::HearWallops { on } => {
                self.sessions.get_mut(&id).expect("checked above").hears_wallops = on;
            }
            Command::Wallops { text, req } => self.wallops(id, text, req),
            Command::Quit { reason } => self.remove_session(id, reason.as_deref().unwrap_or("quit"), false),
        }
    }

    // ---- delivery helpers ----

    /// Sends an event to one session (at the end of the current batch).
    pub(super) fn reply(&mut self, id: SessionId, event: Event) {
        let entry = self.log_entry(deliver(event));
        if let Some(s) = self.sessions.get_mut(&id) {
            stage(&mut self.dirty, id, s, entry);
        }
    }

    /// Appends a delivery to the log of the current batch; sessions are then given its index.
    fn log_entry(&mut self, delivery: Delivery) -> u32 {
        let entry = u32::try_from(self.log.len()).expect("a batch logs far fewer than 4 billion events");
        self.log.push(delivery);
        entry
    }

    /// Hands every session its staged part of this batch's log: one lock and at most one
    /// wakeup per session per batch. Sessions whose outbox is full are disconnected.
    pub(super) fn flush(&mut self) {
        while !self.dirty.is_empty() {
            let log: Arc<[Delivery]> = std::mem::take(&mut self.log).into();
            let mut pieces = std::mem::take(&mut self.pieces);
            let mut too_slow = Vec::new();
            for id in std::mem::take(&mut self.dirty) {
                let Some(s) = self.sessions.get_mut(&id) else { continue };
                let share: usize = s.staged.iter().map(|r| r.len()).sum();
                if log.len() > SHARED_LOG_MIN && share * SPARSE_SHARE < log.len() {
                    // A piece keeps its whole log alive until written: a slow reader that gets
                    // a little of many busy batches would hold far more than its own outbox.
                    // A small share gets a log of its own instead.
                    let own: Arc<[Delivery]> = s
                        .staged
                        .drain(..)
                        .flat_map(|r| log[r.start as usize..r.end as usize].iter().cloned())
                        .collect();
                    pieces.push(Piece::new(own, 0..share as u32));
                } else {
                    pieces.extend(s.staged.drain(..).map(|range| Piece::new(log.clone(), range)));
                }
                if pieces.len() <= KEEP_STAGED_AFTER {
                    s.staged = Vec::new();
                }
                if s.outbox.push_pieces(&mut pieces).is_err() {
                    pieces.clear();
                    too_slow.push(id);
                }
            }
            self.pieces = pieces;
            for id in too_slow {
                self.remove_session(id, TOO_SLOW, true);
            }
        }
        self.log.clear();
    }

    pub(super) fn error(&mut self, id: SessionId, req: Req, code: ErrorCode, message: impl Into<Name>) {
        self.reply(id, Event::Error { req, code, message: message.into() });
    }

    /// Delivers one shared event to many sessions.
    pub(super) fn broadcast(&mut self, recipients: impl IntoIterator<Item = SessionId>, event: Event) {
        let entry = self.log_entry(deliver(event));
        for sid in recipients {
            if let Some(s) = self.sessions.get_mut(&sid) {
                stage(&mut self.dirty, sid, s, entry);
            }
        }
    }

    /// Sessions sharing at least one room with `id`, plus `id` itself.
    pub(super) fn neighbours(&self, id: SessionId) -> Vec<SessionId> {
        let mut seen = FxHashSet::default();
        seen.insert(id);
        if let Some(s) = self.sessions.get(&id) {
            for key in &s.rooms {
                if let Some(room) = self.rooms.get(key)
                    && room.members.len() <= self.config.presence_limit
                {
                    seen.extend(room.members.iter().copied());
                }
            }
        }
        seen.into_iter().collect()
    }

    /// Looks up a room the session names, replying with the right error when it cannot be used.
    pub(super) fn room_key(&mut self, id: SessionId, room: &str, req: &Req) -> Option<String> {
        if let Err(e) = validate_room(room) {
            self.error(id, req.clone(), ErrorCode::InvalidRoom, e.to_string());
            return None;
        }
        let key = fold(room);
        if !self.rooms.contains_key(&key) {
            self.error(
                id,
                req.clone(),
                ErrorCode::NoSuchRoom,
                format!("no room {room}; /join {room} creates it"),
            );
            return None;
        }
        Some(key)
    }

    pub(super) fn member_room_key(&mut self, id: SessionId, room: &str, req: &Req) -> Option<String> {
        let key = self.room_key(id, room, req)?;
        if !self.rooms[&key].has_member(id) {
            self.error(
                id,
                req.clone(),
                ErrorCode::NotInRoom,
                format!("you are not in {room}; /join {room} first"),
            );
            return None;
        }
        Some(key)
    }

    pub(super) fn ensure_room(&mut self, name: &str) -> &mut Room {
        let key = fold(name);
        if !self.rooms.contains_key(&key) {
            let mut room = Room::new(name.into(), key.clone(), now_ms());
            room.ephemeral = self.config.ephemeral_rooms.iter().any(|r| fold(r) == key);
            self.rooms.insert(key.clone(), room);
            self.save_room(&key);
        }
        self.rooms.get_mut(&key).expect("inserted above")
    }

    /// Queues the room's settings for storage.
    pub(super) fn save_room(&mut self, key: &str) {
        let Some(room) = self.rooms.get(key) else { return };
        self.persister.write(Write::Room(RoomRecord {
            key: room.key.clone(),
            name: room.name.to_string(),
            topic: room.topic.to_string(),
            topic_by: room.topic_by.as_ref().map(|s| s.to_string()),
            ephemeral: room.ephemeral,
            created_ts: room.created_ts,
        }));
        self.pending.push_back(None);
    }

    // ---- commands ----

    fn say(&mut self, id: SessionId, target: Target, said: Said, cid: Option<String>, req: Req) {
        let Said { text, action, notice, tags } = said;
        let tags: Option<Name> = tags.filter(|t| !t.is_empty()).map(|t| t.as_str().into());
        // A tag-only message (typing notices) is relayed, never stored.
        let tag_only = tags.is_some() && text.is_empty();
        if text.trim().is_empty() && !tag_only {
            return self.error(id, req, ErrorCode::EmptyMessage, "message is empty; type some text");
        }
        let ts = now_ms();
        let session = self.sessions.get_mut(&id).expect("caller checked");
        session.active_ts = ts;
        let (sender_key, from, ident) = (session.key.clone(), session.nick.clone(), session.ident.clone());
        // Client ids are unique per sender and target, as in the store.
        let cid_key = cid.as_ref().map(|cid| {
            let target = match &target {
                Target::Room(r) => fold(r),
                Target::Nick(n) => format!("@{}", fold(n)),
            };
            format!("{target} {cid}")
        });
        if let Some(cid_key) = &cid_key
            && let Some((mid, first_ts)) = self.cids.get(&sender_key, cid_key)
        {
            let room = match &target {
                Target::Room(r) => self.rooms.get(&fold(r)).map(|r| r.name.clone()),
                Target::Nick(_) => None,
            };
            let to = match &target {
                Target::Nick(n) => Some(Name::from(n.as_str())),
                Target::Room(_) => None,
            };
            let message = Arc::new(ChatMessage {
                room,
                from,
                ident,
                to,
                text: text.into(),
                action,
                notice,
                tags,
                mid,
                uid: next_uid(),
                ts: first_ts,
            });
            return self.reply(
                id,
                Event::Ack { req, cid: cid.map(Into::into), message, duplicate: true, away: None },
            );
        }
        match target {
            Target::Nick(nick) => {
                let Some(&to_id) = self.nicks.get(&fold(&nick)) else {
                    return self.error(
                        id,
                        req,
                        ErrorCode::NoSuchNick,
                        format!("{nick} is not online; /ls lists who is"),
                    );
                };
                let to_nick = self.sessions[&to_id].nick.clone();
                let message = Arc::new(ChatMessage {
                    room: None,
                    from,
                    ident,
                    to: Some(to_nick),
                    text: text.into(),
                    action,
                    notice,
                    tags,
                    mid: None,
                    uid: next_uid(),
                    ts,
                });
                if let Some(cid_key) = &cid_key {
                    self.cids.insert(&sender_key, cid_key, None, ts);
                }
                let recipient = &self.sessions[&to_id];
                // A notice never draws an automatic answer, the away message included.
                let away = if notice { None } else { recipient.away.clone() };
                if !recipient.blocks(&sender_key, false) {
                    self.reply(to_id, Event::Message(message.clone()));
                }
                self.reply(id, Event::Ack { req, cid: cid.map(Into::into), message, duplicate: false, away });
            }
            Target::Room(room) => {
                let Some(key) = self.sendable_room_key(id, &room, &req) else { return };
                let room = self.rooms.get_mut(&key).expect("checked");
                let stored = !room.ephemeral && !tag_only;
                let mid = stored.then(|| {
                    room.last_mid += 1;
                    room.last_mid
                });
                let message = Arc::new(ChatMessage {
                    room: Some(room.name.clone()),
                    from,
                    ident,
                    to: None,
                    text: text.into(),
                    action,
                    notice,
                    tags,
                    mid,
                    uid: if stored { 0 } else { next_uid() },
                    ts,
                });
                if let Some(cid_key) = &cid_key {
                    self.cids.insert(&sender_key, cid_key, mid, ts);
                }
                // Deliver now, acknowledge once stored: room order stays the hub's order, and
                // the sender's ack still means "durable".
                self.fan_out(id, &sender_key, &key, message.clone());
                let pending = PendingMessage { sender: id, message, req, cid: cid.map(Into::into) };
                if stored {
                    let m = &pending.message;
                    self.persister.write(Write::Message(StoredMessage {
                        room: key,
                        mid: m.mid.unwrap_or_default(),
                        ts,
                        nick: m.from.to_string(),
                        sender_key,
                        cid: pending.cid.as_deref().map(str::to_string),
                        text: m.text.to_string(),
                        action,
                        notice,
                    }));
                    self.pending.push_back(Some(pending));
                } else {
                    self.ack(pending, false);
                }
            }
        }
    }

    /// Delivers a room message to the members, except its sender and those ignoring it, and
    /// keeps it for replay on join.
    fn fan_out(&mut self, sender: SessionId, sender_key: &str, key: &str, message: Arc<ChatMessage>) {
        let keep = self.config.history;
        let entry = self.log_entry(deliver(Event::Message(message.clone())));
        let Some(room) = self.rooms.get_mut(key) else { return };
        if message.mid.is_some() {
            room.remember(message, keep);
        }
        for &sid in &room.members {
            if sid == sender {
                continue;
            }
            let Some(s) = self.sessions.get_mut(&sid) else { continue };
            if s.blocks(sender_key, true) {
                continue;
            }
            stage(&mut self.dirty, sid, s, entry);
        }
    }

    fn ack(&mut self, pending: PendingMessage, duplicate: bool) {
        let PendingMessage { sender, message, req, cid } = pending;
        self.reply(sender, Event::Ack { req, cid, message, duplicate, away: None });
    }

    pub(super) fn on_committed(&mut self, committed: Committed) {
        let Committed { count, result } = committed;
        for _ in 0..count {
            let Some(entry) = self.pending.pop_front() else { break };
            let Some(pending) = entry else { continue };
            match &result {
                Ok(()) => self.ack(pending, false),
                Err(e) => self.error(
                    pending.sender,
                    pending.req,
                    ErrorCode::StoreFailed,
                    format!("your message was delivered to those online but not stored ({e})"),
                ),
            }
        }
    }

    fn join(&mut self, id: SessionId, room: &str, given_key: Option<String>, req: Req) {
        if let Err(e) = validate_room(room) {
            return self.error(id, req, ErrorCode::InvalidRoom, e.to_string());
        }
        let lobby_key = fold(&self.config.lobby);
        let history_len = self.config.history;
        let is_console = self.sessions[&id].kind == SessionKind::Console;
        if let Some(refusal) = self.join_refusal(id, room, given_key.as_deref(), is_console) {
            let (code, message) = refusal;
            return self.error(id, req, code, message);
        }
        let full = self.full_mask(id);
        let presence_limit = self.config.presence_limit;
        let room = self.ensure_room(room);
        let key = room.key.clone();
        let newly_joined = !room.has_member(id);
        if newly_joined {
            if (room.members.is_empty() && key != lobby_key) || is_console {
                room.operators.insert(id);
            }
            room.members.push(id);
            room.recheck_ban(id, &full);
        }
        // Join notices go to the room only while it is small enough for presence (like part
        // and quit): in a room of thousands they would cost a delivery per member per join.
        let others = if newly_joined && room.members.len() <= presence_limit {
            room.members.clone()
        } else {
            Vec::new()
        };
        let name = room.name.clone();
        let session = self.sessions.get_mut(&id).expect("caller checked");
        if newly_joined {
            session.rooms.push(key.clone());
            session.invited.remove(&key);
        }
        let (nick, ident, away) = (session.nick.clone(), session.ident.clone(), session.away.clone());
        let room = &self.rooms[&key];
        // A big room lists its first `presence_limit` members only: listing thousands on every
        // join would make joining cost as much as the room is big (`who` lists them all).
        let mut listed: Vec<(Name, Name)> = room
            .members
            .iter()
            .take(self.config.presence_limit)
            .filter_map(|m| self.sessions.get(m))
            .map(|s| (s.nick.clone(), s.ident.clone()))
            .collect();
        listed.sort_by_cached_key(|(n, _)| fold(n));
        let (members, idents) = listed.into_iter().unzip();
        let operators =
            room.operators.iter().filter_map(|m| self.sessions.get(m)).map(|s| s.nick.clone()).collect();
        let voiced =
            room.voiced.iter().filter_map(|m| self.sessions.get(m)).map(|s| s.nick.clone()).collect();
        let skip = room.recent.len().saturating_sub(history_len);
        let history =
            if room.ephemeral { Vec::new() } else { room.recent.iter().skip(skip).cloned().collect() };
        let joined = Event::Joined {
            req,
            room: name.clone(),
            topic: room.topic.clone(),
            secret: room.modes.secret,
            topic_set: room.topic_by.clone().map(|by| (by, room.topic_ts)),
            members,
            idents,
            operators,
            voiced,
            ephemeral: room.ephemeral,
            history,
        };
        if !others.is_empty() {
            self.broadcast(
                others.into_iter().filter(|&m| m != id),
                Event::Join { room: name, nick, ident, away, ts: now_ms() },
            );
        }
        self.reply(id, joined);
    }

    fn part(&mut self, id: SessionId, room: &str, reason: Option<String>, req: Req) {
        let Some(key) = self.member_room_key(id, room, &req) else { return };
        let session = &self.sessions[&id];
        let event = Event::Part {
            room: self.rooms[&key].name.clone(),
            nick: session.nick.clone(),
            ident: session.ident.clone(),
            reason: reason.map(|r| r.as_str().into()),
            ts: now_ms(),
        };
        let members = &self.rooms[&key].members;
        let recipients = if members.len() <= self.config.presence_limit { members.clone() } else { vec![id] };
        self.leave_room(id, &key);
        self.broadcast(recipients, event);
    }

    pub(super) fn leave_room(&mut self, id: SessionId, key: &str) {
        if let Some(room) = self.rooms.get_mut(key) {
            room.forget(id);
        }
        if let Some(s) = self.sessions.get_mut(&id) {
            s.rooms.retain(|k| k != key);
        }
    }

    /// Takes a session off the server, telling everyone who shared a room with it.
    pub(super) fn remove_session(&mut self, id: SessionId, reason: &str, discard: bool) {
        let recipients = self.neighbours(id);
        let Some(session) = self.sessions.remove(&id) else { return };
        self.nicks.remove(&session.key);
        for key in &session.rooms {
            if let Some(room) = self.rooms.get_mut(key) {
                room.forget(id);
            }
        }
        self.remember_past(&session.nick, &session.ident, &session.realname);
        if !discard {
            // What was staged for it (answers to its last commands) still goes out first.
            let own: Vec<Delivery> = session
                .staged
                .iter()
                .flat_map(|r| &self.log[r.start as usize..r.end as usize])
                .cloned()
                .collect();
            let len = own.len() as u32;
            let _ = session.outbox.push_pieces(&mut vec![Piece::new(own.into(), 0..len)]);
        }
        session.outbox.close(reason, discard);
        let event = Event::Quit {
            nick: session.nick,
            ident: session.ident,
            reason: Some(reason.into()),
            ts: now_ms(),
        };
        self.broadcast(recipients.into_iter().filter(|&m| m != id), event);
    }

    fn change_nick(&mut self, id: SessionId, nick: &str, req: Req) {
        if let Err(e) = validate_nick(nick) {
            return self.error(id, req, ErrorCode::InvalidNick, e.to_string());
        }
        let key = fold(nick);
        if let Some(&owner) = self.nicks.get(&key)
            && owner != id
        {
            return self.error(
                id,
                req,
                ErrorCode::NickInUse,
                format!("the nickname {nick} is taken; choose another"),
            );
        }
        let session = self.sessions.get_mut(&id).expect("caller checked");
        if *session.nick == *nick {
            return;
        }
        let old = std::mem::replace(&mut session.nick, nick.into());
        let old_key = std::mem::replace(&mut session.key, key.clone());
        let ident = session.ident.clone();
        let realname = session.realname.clone();
        self.nicks.remove(&old_key);
        self.nicks.insert(key, id);
        self.remember_past(&old, &ident, &realname);
        self.recheck_bans(id);
        let recipients = self.neighbours(id);
        self.broadcast(recipients, Event::Nick { old, new: nick.into(), ident, ts: now_ms() });
    }

    fn topic(&mut self, id: SessionId, room: &str, topic: Option<String>, req: Req) {
        let Some(topic) = topic else {
            let Some(key) = self.room_key(id, room, &req) else { return };
            let r = &self.rooms[&key];
            let event = Event::Topic {
                req,
                room: r.name.clone(),
                topic: r.topic.clone(),
                by: r.topic_by.clone(),
                changed: false,
            };
            return self.reply(id, event);
        };
        let Some(key) = self.member_room_key(id, room, &req) else { return };
        if self.rooms[&key].modes.topic_lock
            && self.refused_unless_operator(id, &key, &req, |name| {
                format!("the topic of {name} is locked: only its operators can change it")
            })
        {
            return;
        }
        let by = self.sessions[&id].nick.clone();
        let r = self.rooms.get_mut(&key).expect("checked");
        r.topic = super::moderation::clipped(&topic, super::moderation::MAX_TOPIC_BYTES);
        r.topic_by = Some(by.clone());
        r.topic_ts = now_ms();
        let event = Event::Topic {
            req: None,
            room: r.name.clone(),
            topic: r.topic.clone(),
            by: Some(by),
            changed: true,
        };
        let recipients = r.members.clone();
        self.save_room(&key);
        self.broadcast(recipients, event);
        if req.is_some() {
            // Programs that asked with an id get an answer carrying it.
            let r = &self.rooms[&key];
            let answer = Event::Topic {
                req,
                room: r.name.clone(),
                topic: r.topic.clone(),
                by: r.topic_by.clone(),
                changed: false,
            };
            self.reply(id, answer);
        }
    }

    fn who(&mut self, id: SessionId, room: Option<&str>, detail: bool, req: Req) {
        let (room_name, mut members): (Option<Name>, Vec<SessionId>) = match room {
            None => (None, self.sessions.keys().collect()),
            Some(room) => {
                let Some(key) = self.room_key(id, room, &req) else { return };
                let r = &self.rooms[&key];
                // A secret room shows its members to members only.
                let visible = !r.modes.secret || r.has_member(id);
                (Some(r.name.clone()), if visible { r.members.clone() } else { Vec::new() })
            }
        };
        members.retain(|m| self.sessions.contains_key(m));
        members.sort_by_cached_key(|m| fold(&self.sessions[m].nick));
        let nicks = members.iter().map(|m| self.sessions[m].nick.clone()).collect();
        let info = if detail {
            let room_key = room_name.as_deref().map(fold);
            let mine: FxHashSet<&String> = self.sessions[&id].rooms.iter().collect();
            members
                .iter()
                .map(|m| {
                    let s = &self.sessions[m];
                    let r = room_key.as_deref().and_then(|k| self.rooms.get(k));
                    MemberInfo {
                        nick: s.nick.clone(),
                        ident: s.ident.clone(),
                        realname: s.realname.clone(),
                        op: r.is_some_and(|r| r.operators.contains(m)),
                        voice: r.is_some_and(|r| r.voiced.contains(m)),
                        away: s.away.clone(),
                        server_op: s.server_op,
                        invisible: s.invisible,
                        shares_room: *m == id || s.rooms.iter().any(|k| mine.contains(k)),
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        self.reply(id, Event::Members { req, room: room_name, nicks, info });
    }

    fn list_rooms(&mut self, id: SessionId, req: Req) {
        let mut rooms: Vec<RoomSummary> = self
            .rooms
            .values()
            .filter(|r| !r.modes.secret || r.has_member(id))
            .map(|r| RoomSummary {
                name: r.name.clone(),
                members: r.members.len() as u32,
                topic: r.topic.clone(),
                ephemeral: r.ephemeral,
            })
            .collect();
        rooms.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        self.reply(id, Event::Rooms { req, rooms });
    }

    fn ignoring(&self, id: SessionId) -> Vec<Name> {
        let mut nicks: Vec<Name> = self.sessions[&id].ignoring.values().cloned().collect();
        nicks.sort_unstable();
        nicks
    }

    fn ignore(&mut self, id: SessionId, nick: Option<String>, req: Req) {
        if let Some(nick) = nick {
            if let Err(e) = validate_nick(&nick) {
                return self.error(id, req, ErrorCode::InvalidNick, e.to_string());
            }
            let key = fold(&nick);
            let session = self.sessions.get_mut(&id).expect("caller checked");
            if key == session.key {
                return self.error(id, req, ErrorCode::InvalidNick, "you cannot ignore yourself");
            }
            session.ignoring.insert(key, nick.as_str().into());
        }
        let nicks = self.ignoring(id);
        self.reply(id, Event::Ignoring { req, nicks });
    }

    fn unignore(&mut self, id: SessionId, nick: &str, req: Req) {
        let session = self.sessions.get_mut(&id).expect("caller checked");
        if session.ignoring.remove(&fold(nick)).is_none() {
            return self.error(id, req, ErrorCode::NoSuchNick, format!("you are not ignoring {nick}"));
        }
        let nicks = self.ignoring(id);
        self.reply(id, Event::Ignoring { req, nicks });
    }

    fn history(&mut self, id: SessionId, room: &str, mut query: HistoryQuery, around: bool, req: Req) {
        if !room.starts_with('#') {
            // Private conversations are not stored: their history is empty.
            let room = Name::from(room);
            return self.reply(id, Event::History { req, room, messages: Vec::new(), more: false });
        }
        let Some(key) = self.room_key(id, room, &req) else { return };
        let r = &self.rooms[&key];
        let name = r.name.clone();
        if r.modes.secret && !r.has_member(id) {
            return self.error(id, req, ErrorCode::NotInRoom, format!("you are not in {name}"));
        }
        if r.ephemeral {
            return self.reply(id, Event::History { req, room: name, messages: Vec::new(), more: false });
        }
        let outbox = self.sessions[&id].outbox.clone();
        query.limit = query.limit.clamp(1, self.config.max_history_page);
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let page = if around { history_around(&*store, &key, query) } else { store.history(&key, query) };
            let event = match page {
                Ok((rows, more)) => {
                    let messages = rows.iter().map(|m| Arc::new(stored_to_chat(m, &name))).collect();
                    Event::History { req, room: name, messages, more }
                }
                Err(e) => Event::Error {
                    req,
                    code: ErrorCode::StoreFailed,
                    message: format!("history unavailable: {e}").into(),
                },
            };
            // A full outbox here means the hub is about to drop the session anyway.
            let _ = outbox.send(event);
        });
    }

    fn kill(&mut self, id: SessionId, nick: &str, reason: &str, req: Req) {
        if !self.sessions[&id].server_op {
            return self.error(id, req, ErrorCode::NotOperator, "only server operators can kill");
        }
        let Some(&victim) = self.nicks.get(&fold(nick)) else {
            return self.error(id, req, ErrorCode::NoSuchNick, format!("{nick} is not online"));
        };
        let by = self.sessions[&id].nick.clone();
        self.remove_session(victim, &format!("Killed ({by} ({reason}))"), false);
    }

    fn wallops(&mut self, id: SessionId, text: String, req: Req) {
        let sender = &self.sessions[&id];
        if !sender.server_op {
            return self.error(id, req, ErrorCode::NotOperator, "only server operators can send wallops");
        }
        if text.trim().is_empty() {
            return self.error(id, req, ErrorCode::EmptyMessage, "wallops is empty; type some text");
        }
        let event =
            Event::Wallops { from: sender.nick.clone(), ident: sender.ident.clone(), text: text.into() };
        let recipients: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|&(sid, s)| sid == id || s.hears_wallops)
            .map(|(sid, _)| sid)
            .collect();
        self.broadcast(recipients, event);
    }

    /// The session's rooms whose latest message falls in `(after_ts, before_ts)`, oldest
    /// activity first: answered from memory (each room keeps its recent messages).
    fn conversations(&mut self, id: SessionId, after_ts: u64, before_ts: u64, limit: u32, req: Req) {
        let (low, high) = (after_ts.min(before_ts), after_ts.max(before_ts));
        let mut rooms: Vec<(Name, u64)> = self.sessions[&id]
            .rooms
            .iter()
            .filter_map(|k| self.rooms.get(k))
            .filter_map(|r| r.recent.back().map(|m| (r.name.clone(), m.ts)))
            .filter(|&(_, ts)| ts > low && ts < high)
            .collect();
        rooms.sort_unstable_by_key(|&(_, ts)| ts);
        rooms.truncate(limit.clamp(1, self.config.max_history_page) as usize);
        self.reply(id, Event::Conversations { req, rooms });
    }

    fn set_ephemeral(&mut self, id: SessionId, room: &str, on: bool, req: Req) {
        let Some(key) = self.member_room_key(id, room, &req) else { return };
        if self.refused_unless_operator(id, &key, &req, |name| {
            format!("only an operator of {name} can change that")
        }) {
            return;
        }
        let r = self.rooms.get_mut(&key).expect("checked");
        r.ephemeral = on;
        if on {
            r.recent.clear();
        }
        let text = if on {
            format!("{} is now ephemeral: nothing said here from now on is stored", r.name)
        } else {
            format!("{} is stored again: messages are kept in history", r.name)
        };
        let event = Event::Notice { req: None, room: Some(r.name.clone()), text: text.into() };
        let recipients = r.members.clone();
        self.save_room(&key);
        self.broadcast(recipients, event);
    }
}

/// A page centred on `query.before` (id) or `query.before_ts` (time), both included: the
/// older half (with the centre) and the newer half, oldest first.
fn history_around(
    store: &dyn crate::store::Store,
    key: &str,
    query: HistoryQuery,
) -> Result<(Vec<StoredMessage>, bool), crate::store::StoreError> {
    let newer_count = query.limit / 2;
    let older = HistoryQuery {
        before: query.before.map(|b| b.saturating_add(1)),
        before_ts: query.before_ts.map(|t| t.saturating_add(1)),
        limit: query.limit - newer_count,
        ..HistoryQuery::default()
    };
    let (mut page, more_older) = store.history(key, older)?;
    if newer_count > 0 {
        let newer = HistoryQuery {
            after: query.before,
            after_ts: query.before_ts,
            limit: newer_count,
            ..HistoryQuery::default()
        };
        let (rest, more_newer) = store.history(key, newer)?;
        page.extend(rest);
        return Ok((page, more_older || more_newer));
    }
    Ok((page, more_older))
}
