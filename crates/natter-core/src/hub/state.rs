//! The hub's records of sessions and rooms.

use super::roster::Roster;
use crate::event::{ChatMessage, RoomModes};
use crate::limits::MAX_REPLAY_BYTES;
use crate::outbox::Outbox;
use crate::vocab::{Name, SessionKind};
use natter_proto::names::Glob;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::VecDeque;
use std::sync::Arc;
use thin_vec::ThinVec;

/// Identifies a logged-in session for as long as the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

pub(crate) struct Session {
    pub nick: Name,
    /// The nick case-folded: what the nick table and ignore lists hold. Shared with the nick
    /// table and the rosters, so that they cost no copy of it per session (and the same
    /// allocation as `nick` when the nick is already folded).
    pub folded: Name,
    pub ident: Name,
    pub kind: SessionKind,
    pub outbox: Outbox,
    /// Keys of the rooms this session is in, shared with the rooms (a `ThinVec`, as
    /// `staged`: its length and capacity live with its items, so that the record keeps to
    /// 128 bytes).
    pub rooms: ThinVec<Name>,
    pub ignore_all: bool,
    /// What this session receives of the current batch's log, as ranges of entries, handed
    /// to the outbox in one go.
    pub staged: ThinVec<std::ops::Range<u32>>,
    pub realname: Name,
    /// Server operator: the console, or a session that gave an operator password.
    pub server_op: bool,
    pub signon_ts: u64,
    pub active_ts: u64,
    /// Hidden from server-wide searches by people who share no room with it.
    pub hidden: bool,
    /// Marked as a bot (IRCv3 bot mode): shown on its messages and in lists.
    pub bot: bool,
    /// Receives server operators' announcements.
    pub hears_announcements: bool,
    /// Asked the server operators something (`AskOperators`): they are told when it leaves.
    pub asked_operators: bool,
    /// The mirror of another node's session (`mirrors.rs`): nothing is delivered to it here.
    pub mirror: bool,
    /// What few sessions have ([`Rare`]); `None` until one of them is set.
    pub rare: Option<Box<Rare>>,
}

/// What few sessions have, behind one box: an idle server's memory is mostly session
/// records, and most sessions never ignore anyone, are never invited, never go away and
/// never read history.
#[derive(Default)]
pub(crate) struct Rare {
    /// Folded nick -> nick as typed.
    pub ignoring: FxHashMap<String, Name>,
    /// Keys of rooms this session was invited into (consumed on join).
    pub invited: FxHashSet<String>,
    pub away: Option<Name>,
    /// While a history page is being read for this session, everything else it is sent
    /// waits here behind it (boxed: few of the sessions that have a `Rare` have one).
    pub held: Option<Box<Held>>,
}

/// What a session is sent while history pages it asked for are being read: each page's place
/// is kept, so that answers arrive in the order of the requests.
#[derive(Default)]
pub(crate) struct Held {
    pub queue: VecDeque<HeldItem>,
}

impl Held {
    /// Takes the deliveries at the front up to the first page still being read.
    pub fn release(&mut self) -> Vec<crate::event::Delivery> {
        let mut ready = Vec::new();
        while let Some(HeldItem::Ready(_)) = self.queue.front() {
            if let Some(HeldItem::Ready(d)) = self.queue.pop_front() {
                ready.push(d);
            }
        }
        ready
    }

    /// Takes every delivery, skipping the pages still being read (the session is leaving).
    pub fn release_all(&mut self) -> Vec<crate::event::Delivery> {
        self.queue
            .drain(..)
            .filter_map(|item| match item {
                HeldItem::Ready(d) => Some(d),
                HeldItem::Waiting(_) => None,
            })
            .collect()
    }
}

/// One item of a [`Held`] queue.
pub(crate) enum HeldItem {
    /// The place of history page `ticket`, still being read.
    Waiting(u64),
    /// A delivery ready to go once everything before it is.
    Ready(crate::event::Delivery),
}

impl Session {
    /// True when a message from `sender_key` must not be delivered to this session.
    #[inline]
    pub fn blocks(&self, sender_key: &str, room_message: bool) -> bool {
        (room_message && self.ignore_all)
            || self
                .rare
                .as_ref()
                .is_some_and(|r| !r.ignoring.is_empty() && r.ignoring.contains_key(sender_key))
    }

    /// The session's seldom-set fields, if any was ever set.
    pub fn rare(&self) -> Option<&Rare> {
        self.rare.as_deref()
    }

    /// The session's seldom-set fields, made when first needed.
    pub fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// The session's seldom-set fields, if any was ever set, to change.
    pub fn rare_mut_if_any(&mut self) -> Option<&mut Rare> {
        self.rare.as_deref_mut()
    }

    /// The away message, if the session is away.
    pub fn away(&self) -> Option<&Name> {
        self.rare()?.away.as_ref()
    }
}

pub(crate) struct Room {
    pub name: Name,
    /// The name case-folded: what the room table holds, and what its members' lists of
    /// rooms share (`Session::rooms`).
    pub folded: Name,
    pub topic: Name,
    pub topic_by: Option<Name>,
    /// When the topic was set (ms; 0 when unknown, e.g. loaded from the store).
    pub topic_ts: u64,
    pub ephemeral: bool,
    pub created_ts: u64,
    /// Members, densely, in no order: what a message's fanout walks (the hot path), so it is
    /// a plain slice. Changed only through [`Room::add_member`] and [`Room::forget`].
    members: Vec<SessionId>,
    /// Where each member is in `members`, by its session's slot (4 bytes rather than its id's
    /// 8: a slot holds one live session at a time, and an entry counts only when `members`
    /// holds that very id there): checking membership and leaving cost O(1), not a scan of
    /// the room (a join storm of n was O(n²) in those scans).
    positions: FxHashMap<u32, u32>,
    /// Members by folded nick: pages of `who` and the list a joiner gets, without sorting.
    pub roster: Roster<SessionId>,
    pub operators: FxHashSet<SessionId>,
    /// Folded nicks, and `~` + folded account names, that are operator when they join
    /// (stored: see `store::RoomRules`).
    pub op_nicks: Vec<String>,
    /// The folded account name of the room's founder, when an account created it.
    pub founder: Option<String>,
    pub last_mid: u64,
    /// The latest stored messages, replayed on join: at most `HubConfig::history` of them
    /// and [`MAX_REPLAY_BYTES`] of text, so a room costs little memory however long its
    /// messages.
    pub recent: VecDeque<Arc<ChatMessage>>,
    /// Bytes of text in `recent`.
    pub recent_bytes: usize,
    /// True while `recent` holds only what was said since the server started, not yet the
    /// stored messages before it: a room is read from the store when first joined, not at
    /// start (see [`Room::warm_up`]).
    pub cold: bool,
    /// When its latest message was sent (ms; 0 when none), known without `recent`.
    pub last_ts: u64,
    pub voiced: FxHashSet<SessionId>,
    pub modes: RoomModes,
    pub bans: Vec<Ban>,
    /// Members matching a ban: kept up to date on ban, join and nick changes so that the
    /// per-message check is one hash lookup.
    pub banned: FxHashSet<SessionId>,
}

/// A ban mask with its folded form (to tell bans apart) and its pattern (to match).
pub(crate) struct Ban {
    pub mask: Name,
    pub folded: String,
    pub glob: Glob,
    pub by: Name,
    pub ts: u64,
}

impl Ban {
    /// A ban on `mask` as given (front doors complete partial masks before they ask).
    pub fn new(mask: &str, by: Name, ts: u64) -> Self {
        let folded = natter_proto::names::fold(mask);
        Self { glob: Glob::new(&folded), mask: mask.into(), folded, by, ts }
    }
}

impl Room {
    /// A new room with natter's defaults: messages only from members, nothing else set.
    pub fn new(name: Name, folded: Name, created_ts: u64) -> Self {
        Self {
            name,
            folded,
            topic: "".into(),
            topic_by: None,
            topic_ts: 0,
            ephemeral: false,
            created_ts,
            members: Vec::new(),
            positions: Default::default(),
            roster: Roster::default(),
            operators: Default::default(),
            op_nicks: Vec::new(),
            founder: None,
            last_mid: 0,
            recent: Default::default(),
            recent_bytes: 0,
            cold: false,
            last_ts: 0,
            voiced: Default::default(),
            modes: RoomModes { no_external: true, ..Default::default() },
            bans: Vec::new(),
            banned: Default::default(),
        }
    }

    /// True when `mask` (folded `nick!user@host`) matches one of the bans.
    pub fn bans_mask(&self, full: &str) -> bool {
        self.bans.iter().any(|b| b.glob.matches(full))
    }

    /// Re-evaluates whether one member matches a ban.
    pub fn recheck_ban(&mut self, id: SessionId, full: &str) {
        if !self.bans.is_empty() && self.bans_mask(full) {
            self.banned.insert(id);
        } else {
            self.banned.remove(&id);
        }
    }

    /// The members, in no particular order.
    #[inline]
    pub fn members(&self) -> &[SessionId] {
        &self.members
    }

    /// Adds a member whose nick folds to `folded` (nothing when already one).
    pub fn add_member(&mut self, id: SessionId, folded: &Name) {
        if self.has_member(id) {
            return;
        }
        let at = u32::try_from(self.members.len()).expect("fewer than 4 billion members");
        self.members.push(id);
        self.positions.insert(id.slot(), at);
        self.roster.insert(folded, id);
    }

    /// Forgets everything about a member who left; `folded` is its nick, folded. The last
    /// member takes the leaver's place, so leaving costs O(1) (and O(log n) in the roster).
    pub fn forget(&mut self, id: SessionId, folded: &str) {
        if let Some(at) = self.position(id) {
            self.positions.remove(&id.slot());
            self.members.swap_remove(at as usize);
            if let Some(&moved) = self.members.get(at as usize) {
                self.positions.insert(moved.slot(), at);
            }
        }
        self.roster.remove(folded, id);
        self.operators.remove(&id);
        self.voiced.remove(&id);
        self.banned.remove(&id);
    }

    #[inline]
    pub fn has_member(&self, id: SessionId) -> bool {
        self.position(id).is_some()
    }

    /// Where member `id` is in `members`.
    fn position(&self, id: SessionId) -> Option<u32> {
        let at = *self.positions.get(&id.slot())?;
        (self.members.get(at as usize) == Some(&id)).then_some(at)
    }

    pub fn remember(&mut self, message: Arc<ChatMessage>, keep: usize) {
        if self.ephemeral {
            return;
        }
        self.last_ts = self.last_ts.max(message.ts);
        if keep == 0 {
            return;
        }
        self.recent_bytes += message.text.len();
        self.recent.push_back(message);
        while self.recent.len() > keep || (self.recent_bytes > MAX_REPLAY_BYTES && self.recent.len() > 1) {
            if let Some(old) = self.recent.pop_front() {
                self.recent_bytes -= old.text.len();
            }
        }
    }
}

impl Room {
    /// Puts the stored messages read for a first join (`older`, oldest first) before what was
    /// said since the start, once: afterwards `recent` is the room's latest messages, as if
    /// they had been loaded at start.
    pub fn warm_up(&mut self, older: Vec<Arc<ChatMessage>>, keep: usize) {
        if !self.cold {
            return;
        }
        self.cold = false;
        let since = std::mem::take(&mut self.recent);
        let first_since = since.front().and_then(|m| m.mid).unwrap_or(u64::MAX);
        self.recent_bytes = 0;
        let older = older.into_iter().filter(|m| m.mid.is_some_and(|mid| mid < first_since));
        for message in older.chain(since) {
            self.remember(message, keep);
        }
    }

    /// The replay for a session that joined when the room's last message was `upto`: at most
    /// `count` of the latest messages up to it (later ones reach the joiner live), none sent
    /// before `since` (ms; retention deleted them from the store, so a replay shows none).
    pub fn replay(&self, upto: u64, count: usize, since: u64) -> Vec<Arc<ChatMessage>> {
        let upto = self.recent.iter().rposition(|m| m.mid.is_none_or(|mid| mid <= upto)).map_or(0, |i| i + 1);
        self.recent.range(upto.saturating_sub(count)..upto).filter(|m| m.ts >= since).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    /// Membership is by slot and checked against the member list: an id whose slot another
    /// session holds now (an earlier generation) is no member, and leaving moves the last
    /// member into the leaver's place.
    #[test]
    fn members_are_found_by_slot_and_told_apart_by_generation() {
        use super::{Room, SessionId};
        let id = |slot: u64, generation: u64| SessionId(generation << 32 | slot);
        let mut room = Room::new("#r".into(), "#r".into(), 0);
        let (ann, bob, cat) = (id(0, 1), id(1, 1), id(2, 1));
        for (who, nick) in [(ann, "ann"), (bob, "bob"), (cat, "cat")] {
            room.add_member(who, &nick.into());
        }
        assert!(!room.has_member(id(0, 2)), "another generation of ann's slot");
        room.forget(ann, "ann");
        assert!(!room.has_member(ann));
        assert!(room.has_member(bob) && room.has_member(cat));
        let dan = id(0, 2);
        room.add_member(dan, &"dan".into());
        assert!(room.has_member(dan) && !room.has_member(ann));
        room.forget(bob, "bob");
        room.forget(dan, "dan");
        assert_eq!(room.members(), &[cat]);
        assert!(room.has_member(cat));
    }

    /// Every session's record is boxed in the hub's table: past 128 bytes it takes jemalloc's
    /// next size class (160), 32 bytes more per connection. Rarely used per-session data lives
    /// in its `Rare` or beside the table (the hub's `clients`).
    #[test]
    fn a_session_record_stays_in_its_allocator_size_class() {
        assert!(std::mem::size_of::<super::Session>() <= 128, "{}", std::mem::size_of::<super::Session>());
    }
}
