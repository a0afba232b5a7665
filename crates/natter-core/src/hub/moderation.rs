//! Room moderation (operators, voice, bans, kicks, invitations, room settings), away status
//! and user lookups: protocol-neutral, so that IRC modes, text-mode `/kick` and native frames
//! are three spellings of the same commands.
//!
//! Every per-message check is a hash-set lookup on the room: members matching a ban are kept
//! in `Room::banned`, refreshed when bans, membership or nicknames change.

use super::state::Ban;
use super::{Hub, SessionId};
use crate::cluster::Act;
use crate::event::{BanInfo, Event};
use crate::limits::{MAX_BANS, MAX_INVITES, MAX_KEY_CHARS, MAX_KICK_BYTES};
use crate::refusal::{Refusal, RoomAction, Silenced};
use crate::request::Req;
use crate::time::now_ms;
use crate::vocab::{Name, RoomChange};
use natter_proto::names::fold;
use natter_proto::text::clip_bytes;

impl Hub {
    /// `nick!user@host`, folded: what ban masks are matched against.
    pub(super) fn full_mask(&self, id: SessionId) -> String {
        let s = &self.sessions[&id];
        fold(&format!("{}!{}", s.nick, s.ident))
    }

    /// Operator of the room, or a server operator (the console, an `Oper`).
    pub(super) fn is_operator(&self, id: SessionId, key: &str) -> bool {
        // Another node's session acts as its node already allowed.
        self.sessions.get(&id).is_some_and(|s| s.server_op || s.mirror)
            || self.rooms.get(key).is_some_and(|r| r.operators.contains(&id))
    }

    /// True, after telling `id` why, when `id` may not do `action`, an operator's part, in
    /// room `key`.
    pub(super) fn refused_unless_operator(
        &mut self,
        id: SessionId,
        key: &str,
        req: &Req,
        action: RoomAction,
    ) -> bool {
        if self.is_operator(id, key) {
            return false;
        }
        let room = self.rooms[key].name.clone();
        self.refuse(id, req.clone(), Refusal::NotRoomOperator { room, action });
        true
    }

    /// The room's folded name when `id` may send to `room` now; otherwise answers with why not.
    pub(super) fn sendable_room(&mut self, id: SessionId, room: &str, req: &Req) -> Option<String> {
        let key = self.find_room(id, room, req)?;
        let r = &self.rooms[&key];
        let member = r.has_member(id);
        let name = r.name.clone();
        if !member && r.modes.no_external {
            self.refuse(id, req.clone(), Refusal::NotInRoom { room: name });
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
            Silenced::Banned
        } else if r.modes.moderated {
            Silenced::Moderated
        } else {
            return Some(key);
        };
        self.refuse(id, req.clone(), Refusal::CannotSend { room: name, why });
        None
    }

    /// Why `id` may not join the existing room `room`, if it may not.
    pub(super) fn join_refusal(
        &self,
        id: SessionId,
        room: &str,
        given_key: Option<&str>,
        is_console: bool,
    ) -> Option<Refusal> {
        let key = fold(room);
        let r = self.rooms.get(&key)?;
        if is_console || r.has_member(id) {
            return None;
        }
        let invited = self.sessions[&id].rare().is_some_and(|r| r.invited.contains(&key));
        let room = r.name.clone();
        if r.modes.invite_only && !invited {
            return Some(Refusal::InviteOnly { room });
        }
        if !invited && !r.bans.is_empty() && r.bans_mask(&self.full_mask(id)) {
            return Some(Refusal::Banned { room });
        }
        if let Some(k) = &r.modes.key
            && given_key != Some(&**k)
        {
            return Some(Refusal::BadKey { room });
        }
        if let Some(limit) = r.modes.limit
            && r.members().len() >= limit as usize
        {
            return Some(Refusal::RoomFull { room, limit });
        }
        None
    }

    /// Refreshes, in every room of `id`, whether it matches a ban (after a nick change).
    pub(super) fn recheck_bans(&mut self, id: SessionId) {
        let full = self.full_mask(id);
        for key in self.sessions[&id].rooms.clone() {
            if let Some(r) = self.rooms.get_mut(&*key) {
                r.recheck_ban(id, &full);
            }
        }
    }

    pub(super) fn mode(&mut self, id: SessionId, room: &str, changes: Vec<RoomChange>, req: Req) {
        let Some(key) = self.member_room(id, room, &req) else { return };
        if self.refused_unless_operator(id, &key, &req, RoomAction::ChangeSettings) {
            return;
        }
        let by = self.sessions[&id].nick.clone();
        let mut applied = Vec::new();
        for change in changes {
            match self.apply(&key, &by, change) {
                Ok(Some(done)) => applied.push(done),
                Ok(None) => {}
                Err(refusal) => self.refuse(id, req.clone(), refusal),
            }
        }
        if applied.is_empty() {
            return;
        }
        self.save_room(&key);
        let act = Act::Mode { room: self.rooms[&key].name.clone(), changes: applied.clone() };
        self.tell_nodes(id, act);
        let r = &self.rooms[&key];
        let event = Event::RoomChanged {
            room: r.name.clone(),
            by,
            ident: self.sessions[&id].ident.clone(),
            changes: applied,
            ts: now_ms(),
        };
        let recipients = r.members().to_vec();
        self.broadcast(recipients, event);
    }

    /// Applies one change; `Ok(None)` when it changed nothing.
    fn apply(&mut self, key: &str, by: &Name, change: RoomChange) -> Result<Option<RoomChange>, Refusal> {
        let target = match &change {
            RoomChange::Operator { nick, .. } | RoomChange::Voice { nick, .. } => {
                let Some(&sid) = self.everyone.get(fold(nick).as_str()) else {
                    return Err(Refusal::NoSuchNick { nick: nick.as_str().into() });
                };
                if !self.rooms[key].has_member(sid) {
                    let room = self.rooms[key].name.clone();
                    return Err(Refusal::UserNotInRoom { nick: nick.as_str().into(), room });
                }
                Some((sid, self.sessions[&sid].nick.to_string()))
            }
            _ => None,
        };
        let standing = match &change {
            RoomChange::Operator { .. } => target.as_ref().map(|(sid, _)| self.standing(*sid)),
            _ => None,
        };
        let member_masks: Vec<(SessionId, String)> = match &change {
            RoomChange::Ban { .. } => {
                self.rooms[key].members().iter().map(|&m| (m, self.full_mask(m))).collect()
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
                    return Err(Refusal::InvalidKey { room: r.name.clone() });
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
                    return Err(Refusal::BanListFull { room: r.name.clone() });
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
                let folded = fold(mask);
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
                // The standing is kept by account (or nick) too, so that it survives a
                // reconnect or restart.
                let standing = standing.as_ref().expect("resolved above");
                r.op_nicks.retain(|n| !standing.is_one_of_mine(n));
                if *on {
                    r.op_nicks.push(standing.key.clone());
                }
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
        let Some(key) = self.find_room(id, room, &req) else { return };
        let r = &self.rooms[&key];
        let event =
            Event::RoomModes { req, room: r.name.clone(), modes: r.modes.clone(), created_ts: r.created_ts };
        self.reply(id, event);
    }

    pub(super) fn bans(&mut self, id: SessionId, room: &str, req: Req) {
        let Some(key) = self.find_room(id, room, &req) else { return };
        let r = &self.rooms[&key];
        let bans =
            r.bans.iter().map(|b| BanInfo { mask: b.mask.clone(), by: b.by.clone(), ts: b.ts }).collect();
        self.reply(id, Event::Bans { req, room: r.name.clone(), bans });
    }

    /// Answers with the rooms this session is invited into (by their current names; a room
    /// that has since emptied away is left out).
    pub(super) fn invites(&mut self, id: SessionId, req: Req) {
        let mut rooms: Vec<Name> = self.sessions[&id]
            .rare()
            .into_iter()
            .flat_map(|r| r.invited.iter())
            .filter_map(|key| self.rooms.get(key))
            .map(|r| r.name.clone())
            .collect();
        rooms.sort();
        self.reply(id, Event::Invites { req, rooms });
    }

    pub(super) fn kick(&mut self, id: SessionId, room: &str, nick: &str, reason: Option<String>, req: Req) {
        let Some(key) = self.member_room(id, room, &req) else { return };
        let Some(&target) = self.everyone.get(fold(nick).as_str()) else {
            return self.refuse(id, req, Refusal::NoSuchNick { nick: nick.into() });
        };
        let name = self.rooms[&key].name.clone();
        if !self.rooms[&key].has_member(target) {
            return self.refuse(id, req, Refusal::UserNotInRoom { nick: nick.into(), room: name });
        }
        if self.refused_unless_operator(id, &key, &req, RoomAction::Kick) {
            return;
        }
        let kicker = &self.sessions[&id];
        let event = Event::Kick {
            room: name,
            nick: self.sessions[&target].nick.clone(),
            by: kicker.nick.clone(),
            ident: kicker.ident.clone(),
            reason: reason.filter(|r| !r.is_empty()).map(|r| clip_bytes(&r, MAX_KICK_BYTES).into()),
            ts: now_ms(),
        };
        tracing::info!(room = %self.rooms[&key].name, nick = %self.sessions[&target].nick, by = %self.sessions[&id].nick, "kicked");
        let recipients = self.rooms[&key].members().to_vec();
        if let Event::Kick { room, nick, reason, .. } = &event {
            let act = Act::Kick {
                room: room.clone(),
                nick: nick.clone(),
                reason: reason.as_deref().map(Into::into),
            };
            self.tell_nodes(id, act);
        }
        self.broadcast(recipients, event);
        self.leave_room(target, &key);
    }

    pub(super) fn invite(&mut self, id: SessionId, room: &str, nick: &str, req: Req) {
        let Some(&target) = self.everyone.get(fold(nick).as_str()) else {
            return self.refuse(id, req, Refusal::NoSuchNick { nick: nick.into() });
        };
        let Some(key) = self.member_room(id, room, &req) else { return };
        let r = &self.rooms[&key];
        let name = r.name.clone();
        if r.has_member(target) {
            return self.refuse(id, req, Refusal::AlreadyInRoom { nick: nick.into(), room: name });
        }
        if r.modes.invite_only && self.refused_unless_operator(id, &key, &req, RoomAction::Invite) {
            return;
        }
        let invited = &mut self.sessions.get_mut(&target).expect("found above").rare_mut().invited;
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
        self.tell_nodes(id, Act::Invite { room: name.clone(), nick: to.clone() });
        self.reply(id, Event::Invite { req, room: name, from, ident, to });
    }
}
