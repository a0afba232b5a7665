//! The hub's records of sessions and rooms.

use crate::command::{Name, SessionKind};
use crate::event::ChatMessage;
use crate::outbox::Outbox;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::VecDeque;
use std::sync::Arc;

/// Identifies a logged-in session for as long as the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

pub(crate) struct Session {
    pub nick: Name,
    pub key: String,
    pub ident: Name,
    pub kind: SessionKind,
    pub outbox: Outbox,
    /// Keys of the rooms this session is in.
    pub rooms: Vec<String>,
    pub ignore_all: bool,
    /// Folded nick -> nick as typed.
    pub ignoring: FxHashMap<String, Name>,
    /// Deliveries collected during the current hub batch, handed to the outbox in one go.
    pub staged: Vec<crate::event::Delivery>,
}

impl Session {
    /// True when a message from `sender_key` must not be delivered to this session.
    #[inline]
    pub fn blocks(&self, sender_key: &str, room_message: bool) -> bool {
        (room_message && self.ignore_all)
            || (!self.ignoring.is_empty() && self.ignoring.contains_key(sender_key))
    }
}

pub(crate) struct Room {
    pub name: Name,
    pub key: String,
    pub topic: Name,
    pub topic_by: Option<Name>,
    pub ephemeral: bool,
    pub created_ts: u64,
    pub members: Vec<SessionId>,
    pub operators: FxHashSet<SessionId>,
    pub last_mid: u64,
    /// The latest stored messages, replayed on join.
    pub recent: VecDeque<Arc<ChatMessage>>,
}

impl Room {
    pub fn has_member(&self, id: SessionId) -> bool {
        self.members.contains(&id)
    }

    pub fn remember(&mut self, message: Arc<ChatMessage>, keep: usize) {
        if keep == 0 || self.ephemeral {
            return;
        }
        if self.recent.len() >= keep {
            self.recent.pop_front();
        }
        self.recent.push_back(message);
    }
}

/// Recently accepted client message ids, so that a resend is acknowledged, not repeated,
/// even for messages that are never stored (private, ephemeral rooms) or not yet committed.
///
/// Keys are keyed 64-bit hashes of (sender, cid), so remembering one costs no allocation; the
/// hasher's random keys keep anyone from aiming collisions at another user's ids.
pub(crate) struct CidCache {
    seen: FxHashMap<u64, (Option<u64>, u64)>,
    order: VecDeque<u64>,
    hasher: std::hash::RandomState,
}

impl Default for CidCache {
    fn default() -> Self {
        Self { seen: FxHashMap::default(), order: VecDeque::new(), hasher: std::hash::RandomState::new() }
    }
}

impl CidCache {
    const CAPACITY: usize = 1 << 16;

    fn key(&self, sender_key: &str, cid: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one((sender_key, cid))
    }

    pub fn get(&self, sender_key: &str, cid: &str) -> Option<(Option<u64>, u64)> {
        self.seen.get(&self.key(sender_key, cid)).copied()
    }

    pub fn insert(&mut self, sender_key: &str, cid: &str, mid: Option<u64>, ts: u64) {
        let key = self.key(sender_key, cid);
        if self.seen.insert(key, (mid, ts)).is_none() {
            self.order.push_back(key);
            if self.order.len() > Self::CAPACITY
                && let Some(old) = self.order.pop_front()
            {
                self.seen.remove(&old);
            }
        }
    }
}
