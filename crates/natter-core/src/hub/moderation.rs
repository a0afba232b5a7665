//! Room moderation (operators, voice, bans, kicks, invitations, room settings), away status
//! and user lookups: protocol-neutral, so that IRC modes, text-mode `/kick` and native frames
//! are three spellings of the same commands.
//!
//! Every per-message check is a hash-set lookup on the room: members matching a ban are kept
//! in `Room::banned`, refreshed when bans, membership or nicknames change.

use super::state::Ban;
use super::{Hub, SessionId};
use crate::command::{Name, RoomChange};
use crate::event::{BanInfo, Event, PastUser, RoomStanding, UserInfo};
use crate::time::now_ms;
use natter_proto::names::fold;
use natter_proto::native::{ErrorCode, RequestId};

type Req = Option<RequestId>;

/// Longest away message kept, in bytes (IRC `AWAYLEN`, which counts octets).
pub const MAX_AWAY_BYTES: usize = 200;
/// Longest topic kept, in bytes: one limit for every front door (IRC announces it as
/// `TOPICLEN`), so that a topic set by one client is whole for all.
pub const MAX_TOPIC_BYTES: usize = 390;
/// Longest kick reason kept, in bytes (IRC `KICKLEN`).
pub const MAX_KICK_BYTES: usize = 390;
/// Most bans per room.
pub const MAX_BANS: usize = 100;
/// Longest room key, in characters.
pub const MAX_KEY_CHARS: usize = 23;
/// Nicknames remembered for `Whowas`.
const WHOWAS_KEEP: usize = 1024;
/// Pending invitations kept per session.
const MAX_INVITES: usize = 64;

impl Hub {
    /// `nick!user@host`, folded: what ban masks are matched against.
    pub(super) fn full_mask(&self, id: SessionId) -> String {
        let s = &self.sessions[&id];
        fold(&format!("{}!{}", s.nick, s.ident))
    }

    /// Operator of the room, or a server operator (the console, an `Oper`).
    pub(super) fn is_operator(&self, id: SessionId, key: &str) -> bool {
        self.sessions.get(&id).is_some_and(|s| s.server_op)
            || self.rooms.get(key).is_some_and(|r| r.operators.contains(&id))
    }

    /// True, after telling `id` why, when `id` may not do an operator's part in room `key`;
    /// `refusal` words the reason from the room's name.
    pub(super) fn refused_unless_operator(
        &mut self,
        id: SessionId,
        key: &str,
        req: &Req,
        refusal: impl FnOnce(&str) -> String,
    ) -> bool {
        if self.is_operator(id, key) {
            return false;
        }
        let message = refusal(&self.rooms[key].name);
        self.error(id, req.clone(), ErrorCode::NotOperator, message);
        true
    }

    /// The room key when `id` may send to `room` now; otherwise answers with why not.
    pub(super) fn sendable_room_key(&mut self, id: SessionId, room: &str, req: &Req) -> Option<String> {
        let key = self.room_key(id, room, req)?;
        let r = &self.rooms[&key];
        let member = r.has_member(id);
        let name = r.name.clone();
        if !member && r.modes.no_external {
            let message = format!("you are not in {name}; /join {name} first");
            self.error(id, req.clone(), ErrorCode::NotInRoom, message);
            return None;
        }
        let privileged = r.voiced.contains(&id) || self.is_operator(id, &key);
        if privileged {
            return Some(key);
        }
        let banned = if member {
            r.banned.contains(&id)
        } else {
            !r.bans.is_empty() && r.bans_mask(&self.full_mask(id))
        };
        let why = if banned {
            format!("you are banned from {name}: your messages are not delivered")
        } else if r.modes.moderated {
            format!("{name} is moderated: only its operators and voiced members may speak")
        } else {
            return Some(key);
        };
        self.error(id, req.clone(), ErrorCode::CannotSend, why);
        None
    }

    /// Why `id` may not join the existing room `room`, if it may not.
    pub(super) fn join_refusal(
        &self,
        id: SessionId,
        room: &str,
        given_key: Option<&str>,
        is_console: bool,
    ) -> Option<(ErrorCode, String)> {
        let key = fold(room);
        let r = self.rooms.get(&key)?;
        if is_console || r.has_member(id) {
            return None;
        }
        let invited = self.sessions[&id].invited.contains(&key);
        let name = &r.name;
        if r.modes.invite_only && !invited {
            return Some((
                ErrorCode::InviteOnly,
                format!("{name} is invite-only: ask an operator to invite you"),
            ));
        }
        if !invited && !r.bans.is_empty() && r.bans_mask(&self.full_mask(id)) {
            return Some((ErrorCode::Banned, format!("you are banned from {name}")));
        }
        if let Some(k) = &r.modes.key
            && given_key != Some(&**k)
        {
            return Some((ErrorCode::BadKey, format!("{name} needs the right key to join")));
        }
        if let Some(limit) = r.modes.limit
            && r.members.len() >= limit as usize
        {
            return Some((ErrorCode::RoomFull, format!("{name} is full ({limit} members)")));
        }
        None
    }

    /// Refreshes, in every room of `id`, whether it matches a ban (after a nick change).
    pub(super) fn recheck_bans(&mut self, id: SessionId) {
        let full = self.full_mask(id);
        for key in self.sessions[&id].rooms.clone() {
            if let Some(r) = self.rooms.get_mut(&key) {
                r.recheck_ban(id, &full);
            }
        }
    }

    /// Keeps a nickname that was given up, for `Whowas`.
    pub(super) fn remember_past(&mut self, nick: &Name, ident: &Name, realname: &Name) {
        if self.whowas.len() >= WHOWAS_KEEP {
            self.whowas.pop_front();
        }
        self.whowas.push_back(PastUser {
            nick: nick.clone(),
            ident: ident.clone(),
            realname: realname.clone(),
            ts: now_ms(),
        });
    }

    pub(super) fn mode(&mut self, id: SessionId, room: &str, changes: Vec<RoomChange>, req: Req) {
        let Some(key) = self.member_room_key(id, room, &req) else { return };
        if self.refused_unless_operator(id, &key, &req, |name| {
            format!("only an operator of {name} can change that")
        }) {
            return;
        }
        let by = self.sessions[&id].nick.clone();
        let mut applied = Vec::new();
        for change in changes {
            match self.apply(&key, &by, change) {
                Ok(Some(done)) => applied.push(done),
                Ok(None) => {}
                Err((code, message)) => self.error(id, req.clone(), code, message),
            }
        }
        if applied.is_empty() {
            return;
        }
        let r = &self.rooms[&key];
        let event = Event::RoomChanged {
            room: r.name.clone(),
            by,
            ident: self.sessions[&id].ident.clone(),
            changes: applied,
            ts: now_ms(),
        };
        let recipients = r.members.clone();
        self.broadcast(recipients, event);
    }

    /// Applies one change; `Ok(None)` when it changed nothing.
    fn apply(
        &mut self,
        key: &str,
        by: &Name,
        change: RoomChange,
    ) -> Result<Option<RoomChange>, (ErrorCode, String)> {
        let target = match &change {
            RoomChange::Operator { nick, .. } | RoomChange::Voice { nick, .. } => {
                let Some(&sid) = self.nicks.get(&fold(nick)) else {
                    return Err((ErrorCode::NoSuchNick, format!("{nick} is not online")));
                };
                if !self.rooms[key].has_member(sid) {
                    let room = &self.rooms[key].name;
                    return Err((ErrorCode::UserNotInRoom, format!("{nick} is not in {room}")));
                }
                Some((sid, self.sessions[&sid].nick.to_string()))
            }
            _ => None,
        };
        let member_masks: Vec<(SessionId, String)> = match &change {
            RoomChange::Ban { .. } => {
                self.rooms[key].members.iter().map(|&m| (m, self.full_mask(m))).collect()
            }
            _ => Vec::new(),
        };
        let r = self.rooms.get_mut(key).expect("caller checked");
        let m = &mut r.modes;
        let flag = |slot: &mut bool, on: bool| std::mem::replace(slot, on) != on;
        let changed = match &change {
            RoomChange::TopicLock(on) => flag(&mut m.topic_lock, *on),
            RoomChange::NoExternal(on) => flag(&mut m.no_external, *on),
            RoomChange::Moderated(on) => flag(&mut m.moderated, *on),
            RoomChange::InviteOnly(on) => flag(&mut m.invite_only, *on),
            RoomChange::Secret(on) => flag(&mut m.secret, *on),
            RoomChange::Key(k) => {
                if let Some(k) = k
                    && (k.is_empty()
                        || k.chars().count() > MAX_KEY_CHARS
                        || k.chars().any(|c| c.is_whitespace() || c == ',' || c.is_control()))
                {
                    return Err((
                        ErrorCode::Other,
                        format!("invalid key: 1 to {MAX_KEY_CHARS} characters, no spaces or commas"),
                    ));
                }
                let new = k.as_deref().map(Name::from);
                std::mem::replace(&mut m.key, new.clone()) != new
            }
            RoomChange::Limit(limit) => {
                let new = limit.filter(|&l| l > 0);
                std::mem::replace(&mut m.limit, new) != new
            }
            RoomChange::Ban { mask, on: true } => {
                let ban = Ban::new(mask, by.clone(), now_ms());
                if r.bans.iter().any(|b| b.folded == ban.folded) {
                    false
                } else if r.bans.len() >= MAX_BANS {
                    return Err((ErrorCode::Other, format!("ban list of {} is full ({MAX_BANS})", r.name)));
                } else {
                    let change = RoomChange::Ban { mask: ban.mask.to_string(), on: true };
                    r.bans.push(ban);
                    for (sid, full) in &member_masks {
                        r.recheck_ban(*sid, full);
                    }
                    return Ok(Some(change));
                }
            }
            RoomChange::Ban { mask, on: false } => {
                let folded = fold(&super::state::normalize_mask(mask));
                match r.bans.iter().position(|b| b.folded == folded) {
                    Some(i) => {
                        let ban = r.bans.remove(i);
                        for (sid, full) in &member_masks {
                            r.recheck_ban(*sid, full);
                        }
                        return Ok(Some(RoomChange::Ban { mask: ban.mask.to_string(), on: false }));
                    }
                    None => false,
                }
            }
            RoomChange::Operator { on, .. } => {
                let (sid, _) = target.as_ref().expect("resolved above");
                if *on { r.operators.insert(*sid) } else { r.operators.remove(sid) }
            }
            RoomChange::Voice { on, .. } => {
                let (sid, _) = target.as_ref().expect("resolved above");
                if *on { r.voiced.insert(*sid) } else { r.voiced.remove(sid) }
            }
        };
        if !changed {
            return Ok(None);
        }
        // Report nicks as spelled by their owners.
        Ok(Some(match (change, target) {
            (RoomChange::Operator { on, .. }, Some((_, nick))) => RoomChange::Operator { nick, on },
            (RoomChange::Voice { on, .. }, Some((_, nick))) => RoomChange::Voice { nick, on },
            (change, _) => change,
        }))
    }

    pub(super) fn room_modes(&mut self, id: SessionId, room: &str, req: Req) {
        let Some(key) = self.room_key(id, room, &req) else { return };
        let r = &self.rooms[&key];
        let event =
            Event::RoomModes { req, room: r.name.clone(), modes: r.modes.clone(), created_ts: r.created_ts };
        self.reply(id, event);
    }

    pub(super) fn bans(&mut self, id: SessionId, room: &str, req: Req) {
        let Some(key) = self.room_key(id, room, &req) else { return };
        let r = &self.rooms[&key];
        let bans =
            r.bans.iter().map(|b| BanInfo { mask: b.mask.clone(), by: b.by.clone(), ts: b.ts }).collect();
        self.reply(id, Event::Bans { req, room: r.name.clone(), bans });
    }

    /// Answers with the rooms this session is invited into (by their current names; a room
    /// that has since emptied away is left out).
    pub(super) fn invites(&mut self, id: SessionId, req: Req) {
        let mut rooms: Vec<Name> = self.sessions[&id]
            .invited
            .iter()
            .filter_map(|key| self.rooms.get(key))
            .map(|r| r.name.clone())
            .collect();
        rooms.sort();
        self.reply(id, Event::Invites { req, rooms });
    }

    pub(super) fn kick(&mut self, id: SessionId, room: &str, nick: &str, reason: Option<String>, req: Req) {
        let Some(key) = self.member_room_key(id, room, &req) else { return };
        let Some(&target) = self.nicks.get(&fold(nick)) else {
            return self.error(id, req, ErrorCode::NoSuchNick, format!("{nick} is not online"));
        };
        let name = self.rooms[&key].name.clone();
        if !self.rooms[&key].has_member(target) {
            return self.error(id, req, ErrorCode::UserNotInRoom, format!("{nick} is not in {name}"));
        }
        if self.refused_unless_operator(id, &key, &req, |name| {
            format!("only an operator of {name} can remove people")
        }) {
            return;
        }
        let kicker = &self.sessions[&id];
        let event = Event::Kick {
            room: name,
            nick: self.sessions[&target].nick.clone(),
            by: kicker.nick.clone(),
            ident: kicker.ident.clone(),
            reason: reason.filter(|r| !r.is_empty()).map(|r| clipped(&r, MAX_KICK_BYTES)),
            ts: now_ms(),
        };
        let recipients = self.rooms[&key].members.clone();
        self.broadcast(recipients, event);
        self.leave_room(target, &key);
    }

    pub(super) fn invite(&mut self, id: SessionId, room: &str, nick: &str, req: Req) {
        let Some(&target) = self.nicks.get(&fold(nick)) else {
            return self.error(id, req, ErrorCode::NoSuchNick, format!("{nick} is not online"));
        };
        let Some(key) = self.member_room_key(id, room, &req) else { return };
        let r = &self.rooms[&key];
        let name = r.name.clone();
        if r.has_member(target) {
            return self.error(id, req, ErrorCode::AlreadyInRoom, format!("{nick} is already in {name}"));
        }
        if r.modes.invite_only
            && self.refused_unless_operator(id, &key, &req, |name| {
                format!("{name} is invite-only: only its operators can invite")
            })
        {
            return;
        }
        let invited = &mut self.sessions.get_mut(&target).expect("found above").invited;
        if invited.len() >= MAX_INVITES {
            invited.clear();
        }
        invited.insert(key);
        let from = &self.sessions[&id];
        let (from, ident) = (from.nick.clone(), from.ident.clone());
        let to = self.sessions[&target].nick.clone();
        let event = Event::Invite {
            req: None,
            room: name.clone(),
            from: from.clone(),
            ident: ident.clone(),
            to: to.clone(),
        };
        self.reply(target, event);
        self.reply(id, Event::Invite { req, room: name, from, ident, to });
    }

    pub(super) fn away(&mut self, id: SessionId, text: Option<String>, req: Req) {
        let text: Option<Name> =
            text.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(|t| clipped(t, MAX_AWAY_BYTES));
        let session = self.sessions.get_mut(&id).expect("caller checked");
        session.away = text.clone();
        let (nick, ident) = (session.nick.clone(), session.ident.clone());
        let others: Vec<SessionId> = self.neighbours(id).into_iter().filter(|&s| s != id).collect();
        self.broadcast(
            others,
            Event::Away { req: None, nick: nick.clone(), ident: ident.clone(), text: text.clone() },
        );
        self.reply(id, Event::Away { req, nick, ident, text });
    }

    pub(super) fn whois(&mut self, id: SessionId, nick: &str, req: Req) {
        let Some(&target) = self.nicks.get(&fold(nick)) else {
            return self.error(id, req, ErrorCode::NoSuchNick, format!("{nick} is not online"));
        };
        let s = &self.sessions[&target];
        let rooms = s
            .rooms
            .iter()
            .filter_map(|k| self.rooms.get(k))
            .filter(|r| !r.modes.secret || r.has_member(id))
            .map(|r| RoomStanding {
                room: r.name.clone(),
                op: r.operators.contains(&target),
                voice: r.voiced.contains(&target),
            })
            .collect();
        let user = UserInfo {
            nick: s.nick.clone(),
            ident: s.ident.clone(),
            realname: s.realname.clone(),
            kind: s.kind,
            rooms,
            away: s.away.clone(),
            signon_ts: s.signon_ts,
            active_ts: s.active_ts,
            server_op: s.server_op,
        };
        self.reply(id, Event::UserInfo { req, user: Box::new(user) });
    }

    pub(super) fn oper(&mut self, id: SessionId, name: &str, password: &str, req: Req) {
        if self.config.operators.is_empty() {
            return self.error(id, req, ErrorCode::NotOperator, "this server has no operators configured");
        }
        if !self.config.operators.iter().any(|(n, p)| n == name && p == password) {
            return self.error(id, req, ErrorCode::BadPassword, "wrong operator name or password");
        }
        self.sessions.get_mut(&id).expect("caller checked").server_op = true;
        let text = "you are now a server operator: operator of every room".into();
        self.reply(id, Event::Notice { req, room: None, text });
    }

    pub(super) fn whowas(&mut self, id: SessionId, nick: &str, count: usize, req: Req) {
        let key = fold(nick);
        let count = if count == 0 { usize::MAX } else { count };
        let entries =
            self.whowas.iter().rev().filter(|p| fold(&p.nick) == key).take(count).cloned().collect();
        self.reply(id, Event::Whowas { req, nick: nick.into(), entries });
    }
}

/// The longest start of `text` of at most `max` bytes that ends on a character boundary.
pub(super) fn clipped(text: &str, max: usize) -> Name {
    let mut cut = max.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].into()
}
