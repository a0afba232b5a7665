//! Catching up: every chat message reaches the events once. The ids delivered per room are
//! remembered ([`Seen`]) so duplicates are dropped; after a reconnect, a rejoined room's
//! missed messages come from the join's history when it reaches back far enough, else page by
//! page (`history {after}`), while live messages for that room are held back until the pages
//! are in, so the order stays right.

use super::Actor;
use super::requests::Pending;
use super::wire::{Conn, owned_msg};
use super::{Event, Status};
use natter_proto::names::fold;
use natter_proto::native::{ClientFrame, MessageFrame};
use std::collections::{HashMap, HashSet, VecDeque};

/// How many messages one catch-up request asks for.
const CATCH_UP_PAGE: u32 = 200;

/// How many message ids per room are remembered to drop duplicates.
const SEEN_CAPACITY: usize = 4096;

/// Message ids already delivered in one room.
#[derive(Default)]
struct Seen {
    last: Option<u64>,
    recent: HashSet<u64>,
    order: VecDeque<u64>,
    /// Ids at or below this were forgotten; they count as seen.
    floor: u64,
}

impl Seen {
    /// Records `mid`; false when it was seen already.
    fn insert(&mut self, mid: u64) -> bool {
        if (mid <= self.floor && self.floor > 0) || !self.recent.insert(mid) {
            return false;
        }
        self.order.push_back(mid);
        if self.order.len() > SEEN_CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.recent.remove(&old);
            self.floor = self.floor.max(old);
        }
        self.last = Some(self.last.map_or(mid, |l| l.max(mid)));
        true
    }
}

/// A room's catch-up in progress: live messages held back, and how many missed ones were
/// delivered so far.
#[derive(Default)]
struct Held {
    live: Vec<MessageFrame<'static>>,
    delivered: usize,
}

/// What the actor remembers to deliver each message once, per folded room name.
#[derive(Default)]
pub(super) struct CatchUp {
    seen: HashMap<String, Seen>,
    /// Rooms whose missed messages are being fetched.
    held: HashMap<String, Held>,
}

impl CatchUp {
    /// True while some room is still fetching what it missed.
    pub(super) fn in_progress(&self) -> bool {
        !self.held.is_empty()
    }

    /// Drops the held-back live messages when the connection ends: the next catch-up fetches
    /// them again.
    pub(super) fn abandon(&mut self) {
        self.held.clear();
    }

    /// Forgets a room we left, so that joining it again starts afresh.
    pub(super) fn forget_room(&mut self, key: &str) {
        self.seen.remove(key);
        self.held.remove(key);
    }

    /// Keeps a live message back while its room catches up; gives it back otherwise.
    pub(super) fn hold(&mut self, m: MessageFrame<'static>) -> Option<MessageFrame<'static>> {
        if let Some(room) = &m.room
            && let Some(held) = self.held.get_mut(&fold(room))
        {
            held.live.push(m);
            return None;
        }
        Some(m)
    }
}

impl Actor {
    /// Delivers a message unless it was delivered before; true when delivered.
    pub(super) fn deliver(&mut self, msg: MessageFrame<'static>, own: bool, history: bool) -> bool {
        if let (Some(room), Some(mid)) = (&msg.room, msg.mid)
            && !self.catch_up.seen.entry(fold(room)).or_default().insert(mid)
        {
            return false;
        }
        self.emit(Event::Message { msg, own, history });
        true
    }

    /// Delivers the history a `joined` brought. On a first join, all of it; on a rejoin after a
    /// reconnect, what we missed: from this history when it reaches back far enough, else by
    /// fetching pages.
    pub(super) async fn deliver_join_history(
        &mut self,
        room: &str,
        history: Vec<MessageFrame<'static>>,
        conn: &mut Conn,
    ) -> Result<(), String> {
        let key = fold(room);
        let Some(last) = self.catch_up.seen.get(&key).and_then(|s| s.last) else {
            if !self.opts.join_history && !self.catch_up.seen.contains_key(&key) {
                // A first join whose history is not wanted: its ids count as seen, so that a
                // catch-up after a reconnect starts after them.
                let seen = self.catch_up.seen.entry(key).or_default();
                for mid in history.iter().filter_map(|m| m.mid) {
                    seen.insert(mid);
                }
                return Ok(());
            }
            for m in history {
                self.deliver(m, false, true);
            }
            return Ok(());
        };
        let covers = history.first().and_then(|m| m.mid).is_some_and(|first| first <= last + 1);
        let newest = history.iter().filter_map(|m| m.mid).max();
        if covers || newest.is_none_or(|n| n <= last) {
            let mut count = 0;
            for m in history {
                if m.mid.is_some_and(|mid| mid > last) && self.deliver(m, false, true) {
                    count += 1;
                }
            }
            self.emit(Event::Status(Status::CaughtUp { room: room.to_string(), count }));
            Ok(())
        } else {
            self.catch_up.held.insert(key, Held::default());
            self.request_missed(room.to_string(), room.to_string(), last, conn).await
        }
    }

    /// Asks for the next page of `room`'s messages after `after`; the answer is matched to
    /// the catch-up of `name` (the room as we named it).
    async fn request_missed(
        &mut self,
        name: String,
        room: String,
        after: u64,
        conn: &mut Conn,
    ) -> Result<(), String> {
        let id = self.requests.register(Pending::CatchUp(name));
        conn.write(&ClientFrame::History {
            room,
            before: None,
            after: Some(after),
            limit: Some(CATCH_UP_PAGE),
            id: Some(id),
        })
        .await
    }

    /// Delivers one page of missed messages of `room` (asked for as `name`), then asks for the
    /// next one or ends the catch-up.
    pub(super) async fn on_missed_page(
        &mut self,
        name: String,
        room: &str,
        messages: Vec<MessageFrame<'_>>,
        more: bool,
        conn: &mut Conn,
    ) -> Result<(), String> {
        let key = fold(room);
        let newest = messages.iter().filter_map(|m| m.mid).max();
        let mut count = 0;
        for m in messages {
            if self.deliver(owned_msg(m), false, true) {
                count += 1;
            }
        }
        if let Some(held) = self.catch_up.held.get_mut(&key) {
            held.delivered += count;
        }
        match newest {
            Some(after) if more => self.request_missed(name, room.to_string(), after, conn).await,
            _ => {
                self.finish_catch_up(&name);
                Ok(())
            }
        }
    }

    /// Ends `room`'s catch-up: delivers the live messages held back and reports the count.
    pub(super) fn finish_catch_up(&mut self, room: &str) {
        let key = fold(room);
        if let Some(Held { live, mut delivered }) = self.catch_up.held.remove(&key) {
            for m in live {
                if self.deliver(m, false, false) {
                    delivered += 1;
                }
            }
            self.emit(Event::Status(Status::CaughtUp { room: room.to_string(), count: delivered }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_drops_duplicates_and_forgets_old_ids() {
        let mut s = Seen::default();
        assert!(s.insert(5));
        assert!(!s.insert(5));
        assert!(s.insert(3));
        assert_eq!(s.last, Some(5));
        for mid in 10..(10 + SEEN_CAPACITY as u64 + 10) {
            assert!(s.insert(mid));
        }
        assert!(!s.insert(3), "forgotten ids below the floor count as seen");
        assert!(!s.insert(12));
    }
}
