//! Queries: who is online, in a room, matching a mask; rooms; one user's details. Each answer
//! costs what it contains, except the full lists (`who` of the server, `rooms`), whose answer
//! is the list.

use super::state::Session;
use super::{Hub, SessionId};
use crate::event::{Event, MemberInfo, RoomStanding, RoomSummary, UserInfo};
use crate::refusal::Refusal;
use crate::request::Req;
use crate::vocab::Name;
use natter_proto::names::{Glob, fold};
use rustc_hash::FxHashSet;

/// Longest mask a search matches against every user, in characters; the rest is ignored.
const MAX_MASK_CHARS: usize = 64;

impl Hub {
    /// A user as described to `asker` outside any room.
    fn describe(
        &self,
        asker: SessionId,
        mine: &FxHashSet<&String>,
        id: SessionId,
        s: &Session,
    ) -> MemberInfo {
        MemberInfo {
            nick: s.nick.clone(),
            ident: s.ident.clone(),
            realname: s.realname.clone(),
            op: false,
            voice: false,
            away: s.away.clone(),
            server_op: s.server_op,
            hidden: s.hidden,
            shares_room: id == asker || s.rooms.iter().any(|k| mine.contains(k)),
        }
    }

    /// The users whose nick matches `mask`. A mask without wildcards is one lookup; one with
    /// them is matched against every nick, but only the matches are copied into the answer.
    /// Users hidden from searches are found by wildcards only when they share a room with the
    /// asker.
    pub(super) fn search(&mut self, id: SessionId, mask: &str, req: Req) {
        let mask = mask.char_indices().nth(MAX_MASK_CHARS).map_or(mask, |(cut, _)| &mask[..cut]);
        let mine: FxHashSet<&String> = self.sessions[&id].rooms.iter().collect();
        let mut info: Vec<MemberInfo> = if mask.contains(['*', '?']) {
            let glob = Glob::new(&fold(mask));
            self.sessions
                .iter()
                .filter(|(_, s)| glob.matches(&s.folded))
                .map(|(sid, s)| self.describe(id, &mine, sid, s))
                .filter(|m| !m.hidden || m.shares_room)
                .collect()
        } else {
            self.nicks
                .get(&fold(mask))
                .map(|&sid| self.describe(id, &mine, sid, &self.sessions[&sid]))
                .into_iter()
                .collect()
        };
        info.sort_by_cached_key(|m| fold(&m.nick));
        let nicks = info.iter().map(|m| m.nick.clone()).collect();
        self.reply(id, Event::Members { req, room: None, nicks, info });
    }

    /// The users named in `nicks` who are online, in the order asked.
    pub(super) fn lookup(&mut self, id: SessionId, nicks: &[String], req: Req) {
        let mine: FxHashSet<&String> = self.sessions[&id].rooms.iter().collect();
        let users = nicks
            .iter()
            .filter_map(|n| self.nicks.get(&fold(n)))
            .map(|&sid| self.describe(id, &mine, sid, &self.sessions[&sid]))
            .collect();
        self.reply(id, Event::Users { req, users });
    }

    /// The server's counts, kept up to date as sessions come and go.
    pub(super) fn server_stats(&mut self, id: SessionId, req: Req) {
        self.reply(id, Event::ServerStats { req, stats: self.stats });
    }

    pub(super) fn who(&mut self, id: SessionId, room: Option<&str>, detail: bool, req: Req) {
        let (room_name, mut members): (Option<Name>, Vec<SessionId>) = match room {
            None => (None, self.sessions.keys().collect()),
            Some(room) => {
                let Some(key) = self.find_room(id, room, &req) else { return };
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
                        hidden: s.hidden,
                        shares_room: *m == id || s.rooms.iter().any(|k| mine.contains(k)),
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        self.reply(id, Event::Members { req, room: room_name, nicks, info });
    }

    pub(super) fn list_rooms(&mut self, id: SessionId, req: Req) {
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

    pub(super) fn whois(&mut self, id: SessionId, nick: &str, req: Req) {
        let Some(&target) = self.nicks.get(&fold(nick)) else {
            return self.refuse(id, req, Refusal::NoSuchNick { nick: nick.into() });
        };
        let s = &self.sessions[&target];
        // The address behind a cloak is for the server's operators, and one's own.
        let real_host = if target == id || self.sessions[&id].server_op { s.real_host.clone() } else { None };
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
            real_host,
        };
        self.reply(id, Event::UserInfo { req, user: Box::new(user) });
    }

    pub(super) fn whowas(&mut self, id: SessionId, nick: &str, count: usize, req: Req) {
        let key = fold(nick);
        let count = if count == 0 { usize::MAX } else { count };
        let entries =
            self.whowas.iter().rev().filter(|p| fold(&p.nick) == key).take(count).cloned().collect();
        self.reply(id, Event::Whowas { req, nick: nick.into(), entries });
    }

    /// The session's rooms whose latest message falls in `(after_ts, before_ts)`, oldest
    /// activity first: answered from memory (each room keeps its recent messages).
    pub(super) fn active_rooms(
        &mut self,
        id: SessionId,
        after_ts: u64,
        before_ts: u64,
        limit: u32,
        req: Req,
    ) {
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
        self.reply(id, Event::ActiveRooms { req, rooms });
    }
}
