//! Membership: rooms and who is in them. Joining (with the room's checks and the replay of
//! recent messages), leaving, topics and whether a room is stored.

use super::state::Room;
use super::{Hub, SessionId};
use crate::cluster::Act;
use crate::event::BanInfo;
use crate::event::Event;
use crate::limits::MAX_TOPIC_BYTES;
use crate::refusal::{Refusal, RoomAction};
use crate::request::Req;
use crate::store::{RoomRecord, RoomRules, Write};
use crate::time::now_ms;
use crate::vocab::SessionKind;
use natter_proto::names::{fold, validate_room};
use natter_proto::text::clip_bytes;

impl Hub {
    /// Looks up a room the session names, replying with the right error when it cannot be used.
    pub(super) fn find_room(&mut self, id: SessionId, room: &str, req: &Req) -> Option<String> {
        if let Err(e) = validate_room(room) {
            let (room, problem) = (room.into(), e.to_string().into());
            self.refuse(id, req.clone(), Refusal::InvalidRoom { room, problem });
            return None;
        }
        let key = fold(room);
        if !self.rooms.contains_key(&key) {
            self.refuse(id, req.clone(), Refusal::NoSuchRoom { room: room.into() });
            return None;
        }
        Some(key)
    }

    pub(super) fn member_room(&mut self, id: SessionId, room: &str, req: &Req) -> Option<String> {
        let key = self.find_room(id, room, req)?;
        if !self.rooms[&key].has_member(id) {
            self.refuse(id, req.clone(), Refusal::NotInRoom { room: room.into() });
            return None;
        }
        Some(key)
    }

    pub(super) fn ensure_room(&mut self, name: &str) -> &mut Room {
        let key = fold(name);
        if !self.rooms.contains_key(&key) {
            let mut room = Room::new(name.into(), key.as_str().into(), now_ms());
            room.ephemeral = self.config.ephemeral_rooms.iter().any(|r| fold(r) == key);
            // In a cluster the room may have a history made on other nodes: the first join
            // reads it from the store.
            room.cold = self.cluster.is_some();
            self.rooms.insert(key.clone(), room);
            self.begin_room(&key);
            self.save_room(&key);
        }
        self.rooms.get_mut(&key).expect("inserted above")
    }

    /// Queues the room's settings for storage.
    pub(super) fn save_room(&mut self, key: &str) {
        if self.applying_remote() {
            // Another node's act: that node stored it.
            return;
        }
        let Some(room) = self.rooms.get(key) else { return };
        self.persister.write(Write::Room(RoomRecord {
            folded: room.folded.to_string(),
            name: room.name.to_string(),
            topic: room.topic.to_string(),
            topic_by: room.topic_by.as_ref().map(|s| s.to_string()),
            ephemeral: room.ephemeral,
            created_ts: room.created_ts,
            rules: RoomRules {
                operators: room.op_nicks.clone(),
                founder: room.founder.clone(),
                modes: room.modes.clone(),
                bans: room
                    .bans
                    .iter()
                    .map(|b| BanInfo { mask: b.mask.clone(), by: b.by.clone(), ts: b.ts })
                    .collect(),
            },
        }));
        self.pending.push_back(None);
    }

    pub(super) fn join(&mut self, id: SessionId, room: &str, given_key: Option<String>, req: Req) {
        if let Err(e) = validate_room(room) {
            let (room, problem) = (room.into(), e.to_string().into());
            return self.refuse(id, req, Refusal::InvalidRoom { room, problem });
        }
        let lobby_key = fold(&self.config.lobby);
        let history_len = self.config.history;
        let is_console = self.sessions[&id].kind == SessionKind::Console;
        // Another node's session joins as its node already allowed.
        let trusted = is_console || self.sessions[&id].mirror;
        if let Some(refusal) = self.join_refusal(id, room, given_key.as_deref(), trusted) {
            return self.refuse(id, req, refusal);
        }
        let full = self.full_mask(id);
        let presence_limit = self.config.presence_limit;
        let folded_nick = self.sessions[&id].folded.clone();
        let standing = self.standing(id);
        let room = self.ensure_room(room);
        let key = room.folded.clone();
        let newly_joined = !room.has_member(id);
        let mut founded = false;
        if newly_joined {
            // The first to join an unowned room founds it; whoever holds a nick the room keeps
            // as operator is operator again.
            founded = room.members().is_empty() && *key != *lobby_key && room.op_nicks.is_empty();
            if founded {
                room.op_nicks.push(standing.key.clone());
                if room.founder.is_none() {
                    room.founder = standing.account.clone();
                }
            }
            if founded || is_console || standing.holds(&room.op_nicks) {
                room.operators.insert(id);
            }
            room.add_member(id, &folded_nick);
            room.recheck_ban(id, &full);
        }
        if founded {
            self.save_room(&key);
        }
        let room = self.rooms.get_mut(&*key).expect("ensured above");
        // Join notices go to the room only while it is small enough for presence (like part
        // and quit): in a room of thousands they would cost a delivery per member per join.
        let others = if newly_joined && room.members().len() <= presence_limit {
            room.members().to_vec()
        } else {
            Vec::new()
        };
        let name = room.name.clone();
        if newly_joined {
            self.tell_nodes(id, Act::Join { room: name.clone() });
        }
        let session = self.sessions.get_mut(&id).expect("caller checked");
        if newly_joined {
            // Exactly as long as needed: most sessions are in a room or two, and a doubling
            // Vec would give every idle session room for four keys (96 bytes) it never uses.
            session.rooms.reserve_exact(1);
            session.rooms.push(key.clone());
            if let Some(rare) = session.rare_mut_if_any() {
                rare.invited.remove(&*key);
            }
        }
        let (nick, ident, away) = (session.nick.clone(), session.ident.clone(), session.away().cloned());
        let realname = session.realname.clone();
        let account = self.logged_in.get(&id).cloned();
        let since = self.kept_since();
        let room = &self.rooms[&*key];
        // A big room lists its first `presence_limit` members by nick, and says how many it
        // has: listing thousands on every join would make a join storm cost the room's size
        // per join (`who` pages through the rest). The roster is kept in order, so this costs
        // the page, not a sort. Operators and voiced members are told among those listed.
        let listed = room.roster.page(None, presence_limit);
        let mut members = Vec::with_capacity(listed.ids.len());
        let mut idents = Vec::with_capacity(listed.ids.len());
        let (mut operators, mut voiced) = (Vec::new(), Vec::new());
        for m in &listed.ids {
            let Some(s) = self.sessions.get(m) else { continue };
            members.push(s.nick.clone());
            idents.push(s.ident.clone());
            if !room.operators.is_empty() && room.operators.contains(m) {
                operators.push(s.nick.clone());
            }
            if !room.voiced.is_empty() && room.voiced.contains(m) {
                voiced.push(s.nick.clone());
            }
        }
        // `recent` is bounded in bytes too (`Room::remember`): the replay is what was said lately,
        // never megabytes of it. A room nobody joined since the start has not been read yet:
        // its replay comes from the store, in its place among the joiner's answers.
        let (upto, warming) = (room.last_mid, room.cold && !room.ephemeral && history_len > 0);
        let history =
            if room.ephemeral || warming { Vec::new() } else { room.replay(upto, history_len, since) };
        let joined = Event::Joined {
            req,
            room: name.clone(),
            topic: room.topic.clone(),
            secret: room.modes.secret,
            topic_set: room.topic_by.clone().map(|by| (by, room.topic_ts)),
            members,
            count: room.members().len(),
            idents,
            operators,
            voiced,
            ephemeral: room.ephemeral,
            history,
            account: account.clone(),
        };
        if !others.is_empty() {
            self.broadcast(
                others.into_iter().filter(|&m| m != id),
                Event::Join { room: name, nick, ident, away, account, realname, ts: now_ms() },
            );
        }
        if warming {
            return self.replay_from_store(id, key.to_string(), upto, history_len, joined);
        }
        self.reply(id, joined);
    }

    pub(super) fn part(&mut self, id: SessionId, room: &str, reason: Option<String>, req: Req) {
        let Some(key) = self.member_room(id, room, &req) else { return };
        let session = &self.sessions[&id];
        let event = Event::Part {
            room: self.rooms[&key].name.clone(),
            nick: session.nick.clone(),
            ident: session.ident.clone(),
            reason: reason.map(|r| r.as_str().into()),
            ts: now_ms(),
        };
        let members = self.rooms[&key].members();
        let recipients =
            if members.len() <= self.config.presence_limit { members.to_vec() } else { vec![id] };
        self.leave_room(id, &key);
        if let Event::Part { room, reason, .. } = &event {
            let reason = reason.as_deref().map(Into::into);
            self.tell_nodes(id, Act::Part { room: room.clone(), reason });
        }
        self.broadcast(recipients, event);
    }

    pub(super) fn leave_room(&mut self, id: SessionId, key: &str) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.rooms.retain(|k| **k != *key);
            if let Some(room) = self.rooms.get_mut(key) {
                room.forget(id, &s.folded);
            }
        }
        self.forget_if_unused(key);
    }

    /// Forgets a room that its last member left and that holds nothing anyone chose: no
    /// message ever stored, no topic, no settings or bans, no founding account (a founder
    /// who was not logged in alone does not count),
    /// not the lobby nor a configured ephemeral room. Like an IRC channel, it is gone once
    /// empty (here and in the store), so rooms made and left in a loop cost nothing lasting.
    pub(super) fn forget_if_unused(&mut self, key: &str) {
        let Some(room) = self.rooms.get(key) else { return };
        let unused = room.members().is_empty()
            && room.last_mid == 0
            && room.topic.is_empty()
            && room.bans.is_empty()
            && room.op_nicks.len() <= 1
            && room.founder.is_none()
            && !room.ephemeral
            && room.modes == crate::event::RoomModes { no_external: true, ..Default::default() }
            && key != fold(&self.config.lobby);
        if unused {
            self.rooms.remove(key);
            if let Some(cluster) = &mut self.cluster {
                // Its members may be on other nodes: the store keeps it.
                cluster.forget_room(key);
                return;
            }
            self.persister.write(Write::ForgetRoom(key.to_string()));
            self.pending.push_back(None);
        }
    }

    pub(super) fn topic(&mut self, id: SessionId, room: &str, topic: Option<String>, req: Req) {
        let Some(topic) = topic else {
            let Some(key) = self.find_room(id, room, &req) else { return };
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
        let Some(key) = self.member_room(id, room, &req) else { return };
        if self.rooms[&key].modes.topic_lock
            && self.refused_unless_operator(id, &key, &req, RoomAction::SetTopic)
        {
            return;
        }
        let by = self.sessions[&id].nick.clone();
        let r = self.rooms.get_mut(&key).expect("checked");
        r.topic = clip_bytes(&topic, MAX_TOPIC_BYTES).into();
        r.topic_by = Some(by.clone());
        r.topic_ts = now_ms();
        let event = Event::Topic {
            req: None,
            room: r.name.clone(),
            topic: r.topic.clone(),
            by: Some(by),
            changed: true,
        };
        let recipients = r.members().to_vec();
        let (room_name, topic) = (r.name.clone(), r.topic.to_string().into());
        self.save_room(&key);
        self.tell_nodes(id, Act::Topic { room: room_name, topic });
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

    pub(super) fn set_ephemeral(&mut self, id: SessionId, room: &str, on: bool, req: Req) {
        let Some(key) = self.member_room(id, room, &req) else { return };
        if self.refused_unless_operator(id, &key, &req, RoomAction::ChangeSettings) {
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
        let recipients = r.members().to_vec();
        self.save_room(&key);
        self.broadcast(recipients, event);
    }
}
