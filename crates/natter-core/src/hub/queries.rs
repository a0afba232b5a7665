//! Queries: who is online, in a room, matching a mask; rooms; one user's details. Each answer
//! costs what it contains: `who` answers a page of a sorted roster, never the whole server;
//! a wildcard search matches the nicks its literal start allows (all for `*x`) and copies one
//! page; `rooms` is the list of rooms.

use super::roster::RosterPage;
use super::state::Session;
use super::{Hub, SessionId};
use crate::command::Paging;
use crate::event::{Event, MemberInfo, RoomStanding, RoomSummary, UserInfo};
use crate::limits::MAX_WHO_PAGE;
use crate::refusal::Refusal;
use crate::request::Req;
use crate::vocab::Name;
use natter_proto::names::{Glob, fold};
use rustc_hash::FxHashSet;
use std::ops::Bound;

/// Longest mask a search matches against every user, in characters; the rest is ignored.
const MAX_MASK_CHARS: usize = 64;

/// Whether session `id` is the asker or shares one of the asker's rooms (`mine`).
fn shares_room(asker: SessionId, mine: &FxHashSet<&str>, id: SessionId, s: &Session) -> bool {
    id == asker || s.rooms.iter().any(|k| mine.contains(&**k))
}

impl Hub {
    /// A user as described to `asker` outside any room.
    fn describe(
        &self,
        asker: SessionId,
        mine: &FxHashSet<&str>,
        now: u64,
        id: SessionId,
        s: &Session,
    ) -> MemberInfo {
        MemberInfo {
            nick: s.nick.clone(),
            ident: s.ident.clone(),
            realname: s.realname.clone(),
            op: false,
            voice: false,
            away: s.away().cloned(),
            server_op: s.server_op,
            hidden: s.hidden,
            shares_room: shares_room(asker, mine, id, s),
            account: self.logged_in.get(&id).cloned(),
            idle_secs: now.saturating_sub(s.active_ts) / 1000,
            bot: s.bot,
        }
    }

    /// The users whose nick matches `mask`, the first [`MAX_WHO_PAGE`] of them in nick order
    /// (with how many match in all). A mask without wildcards is one lookup; one with them
    /// walks the nicks that begin with its literal start (all of them for `*x`), matching
    /// each, and copies only the page into the answer. Users hidden from searches are found
    /// by wildcards only when they share a room with the asker.
    pub(super) fn search(&mut self, id: SessionId, mask: &str, req: Req) {
        let mask = mask.char_indices().nth(MAX_MASK_CHARS).map_or(mask, |(cut, _)| &mask[..cut]);
        let mine: FxHashSet<&str> = self.sessions[&id].rooms.iter().map(|k| &**k).collect();
        let now = crate::time::now_ms();
        let mut info = Vec::new();
        let mut count = 0;
        if mask.contains(['*', '?']) {
            let folded = fold(mask);
            let glob = Glob::new(&folded);
            // Every match begins with the mask's literal start (folding is per character for
            // ASCII; other text is walked whole rather than trusted to fold the same twice).
            let literal = &folded[..folded.find(['*', '?']).unwrap_or(folded.len())];
            let prefix = if literal.is_ascii() { literal } else { "" };
            for (nick, sid) in self.everyone.walk(Bound::Included(prefix)) {
                if !nick.starts_with(prefix) {
                    break;
                }
                let Some(s) = self.sessions.get(&sid) else { continue };
                if !glob.matches(nick) || (s.hidden && !shares_room(id, &mine, sid, s)) {
                    continue;
                }
                count += 1;
                if info.len() < MAX_WHO_PAGE as usize {
                    info.push(self.describe(id, &mine, now, sid, s));
                }
            }
        } else if let Some(&sid) = self.everyone.get(fold(mask).as_str()) {
            info.push(self.describe(id, &mine, now, sid, &self.sessions[&sid]));
            count = 1;
        }
        let nicks = info.iter().map(|m| m.nick.clone()).collect();
        let more = count > info.len();
        self.reply(id, Event::Members { req, room: None, nicks, info, count, more });
    }

    /// The users named in `nicks` who are online, in the order asked.
    pub(super) fn lookup(&mut self, id: SessionId, nicks: &[String], req: Req) {
        let mine: FxHashSet<&str> = self.sessions[&id].rooms.iter().map(|k| &**k).collect();
        let now = crate::time::now_ms();
        let users = nicks
            .iter()
            .filter_map(|n| self.everyone.get(fold(n).as_str()))
            .map(|&sid| self.describe(id, &mine, now, sid, &self.sessions[&sid]))
            .collect();
        self.reply(id, Event::Users { req, users });
    }

    /// The server's counts, kept up to date as sessions come and go.
    pub(super) fn server_stats(&mut self, id: SessionId, req: Req) {
        self.reply(id, Event::ServerStats { req, stats: self.stats });
    }

    /// One page of who is in a room (or, without one, on the server), in nick order: the
    /// roster is kept sorted, so a page costs its size and a walk to where it starts, however
    /// big the room.
    pub(super) fn who(&mut self, id: SessionId, room: Option<&str>, detail: bool, page: Paging, req: Req) {
        let limit = page.limit.unwrap_or(MAX_WHO_PAGE).clamp(1, MAX_WHO_PAGE) as usize;
        let after = page.after.as_deref().map(fold);
        let (room_key, room_name, listed, count) = match room {
            None => (None, None, self.everyone.page(after.as_deref(), limit), self.everyone.len()),
            Some(room) => {
                let Some(key) = self.find_room(id, room, &req) else { return };
                let r = &self.rooms[&key];
                // A secret room shows its members to members only.
                let (listed, count) = if !r.modes.secret || r.has_member(id) {
                    (r.roster.page(after.as_deref(), limit), r.members().len())
                } else {
                    (RosterPage { ids: Vec::new(), more: false }, 0)
                };
                let name = r.name.clone();
                (Some(key), Some(name), listed, count)
            }
        };
        let members: Vec<(SessionId, &Session)> =
            listed.ids.iter().filter_map(|&m| self.sessions.get(&m).map(|s| (m, s))).collect();
        let nicks = members.iter().map(|(_, s)| s.nick.clone()).collect();
        let info = if detail {
            let r = room_key.as_deref().and_then(|k| self.rooms.get(k));
            let mine: FxHashSet<&str> = self.sessions[&id].rooms.iter().map(|k| &**k).collect();
            let now = crate::time::now_ms();
            members
                .iter()
                .map(|&(m, s)| MemberInfo {
                    op: r.is_some_and(|r| r.operators.contains(&m)),
                    voice: r.is_some_and(|r| r.voiced.contains(&m)),
                    ..self.describe(id, &mine, now, m, s)
                })
                .collect()
        } else {
            Vec::new()
        };
        let more = listed.more;
        self.reply(id, Event::Members { req, room: room_name, nicks, info, count, more });
    }

    pub(super) fn list_rooms(&mut self, id: SessionId, req: Req) {
        let mut rooms: Vec<RoomSummary> = self
            .rooms
            .values()
            .filter(|r| !r.modes.secret || r.has_member(id))
            .map(|r| RoomSummary {
                name: r.name.clone(),
                members: r.members().len() as u32,
                topic: r.topic.clone(),
                ephemeral: r.ephemeral,
            })
            .collect();
        rooms.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        self.reply(id, Event::Rooms { req, rooms });
    }

    pub(super) fn whois(&mut self, id: SessionId, nick: &str, req: Req) {
        let Some(&target) = self.everyone.get(fold(nick).as_str()) else {
            return self.refuse(id, req, Refusal::NoSuchNick { nick: nick.into() });
        };
        let s = &self.sessions[&target];
        // The address behind a cloak is for the server's operators, and one's own.
        let real_host = if target == id || self.sessions[&id].server_op {
            self.real_hosts.get(&target).cloned()
        } else {
            None
        };
        let rooms = s
            .rooms
            .iter()
            .filter_map(|k| self.rooms.get(&**k))
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
            away: s.away().cloned(),
            signon_ts: s.signon_ts,
            active_ts: s.active_ts,
            server_op: s.server_op,
            real_host,
            account: self.logged_in.get(&target).cloned(),
            bot: s.bot,
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
            .filter_map(|k| self.rooms.get(&**k))
            .filter(|r| r.last_ts > 0)
            .map(|r| (r.name.clone(), r.last_ts))
            .filter(|&(_, ts)| ts > low && ts < high)
            .collect();
        rooms.sort_unstable_by_key(|&(_, ts)| ts);
        let limit = limit.clamp(1, self.config.max_history_page);
        rooms.truncate(limit as usize);
        if self.logged_in.contains_key(&id) {
            // Its private conversations are in the store too: read, then merged.
            return self.add_private_targets(id, rooms, (low, high), limit, req);
        }
        self.reply(id, Event::ActiveRooms { req, rooms });
    }
}
