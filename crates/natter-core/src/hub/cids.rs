//! Client message ids (`cid`): the ids a sender already used, so that a message resent after
//! a reconnect is acknowledged, not delivered twice.
//!
//! An id belongs to the identity that sent it, never to a nickname: a newcomer who takes a
//! departed user's nick and sends with that user's ids must neither receive the original's
//! acknowledgement nor make the owner's later message with that id count as a resend. A client
//! that gives a secret at login (`Registration::client_secret`) is that identity across its
//! reconnects; a session that gives none is its own identity, for as long as it lasts.

use super::SessionId;
use crate::store::StoredMessage;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::num::NonZeroU64;

/// Whose ids: a client (by the digest of its secret) or a single session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Scope {
    /// A session that gave no secret: its ids die with it.
    Session(SessionId),
    /// A client that gave a secret: its ids outlive its sessions (and are stored).
    Client(NonZeroU64),
}

impl Scope {
    /// The scope of the ids session `id` sends, given the client digests of the sessions that
    /// gave a secret.
    pub fn of(id: SessionId, clients: &FxHashMap<SessionId, NonZeroU64>) -> Self {
        clients.get(&id).map_or(Scope::Session(id), |&digest| Scope::Client(digest))
    }

    /// What the store keeps of `cid` sent under this scope, so that a resend after a restart
    /// is still recognised: `digest:cid` for a client, nothing for a session (which a restart
    /// ends anyway).
    pub fn stored(self, cid: &str) -> Option<String> {
        match self {
            Scope::Client(digest) => Some(format!("{digest:016x}:{cid}")),
            Scope::Session(_) => None,
        }
    }
}

/// Where a message with a `cid` went: ids are unique per sender and target, as in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CidTarget<'a> {
    /// A room, by its folded name.
    Room(&'a str),
    /// A user, by the folded nick.
    Nick(&'a str),
}

impl<'a> CidTarget<'a> {
    /// A room (`to_room`) or a user, by its folded name.
    pub fn new(to_room: bool, folded: &'a str) -> Self {
        if to_room { CidTarget::Room(folded) } else { CidTarget::Nick(folded) }
    }
}

/// Recently accepted client message ids, so that a resend is acknowledged, not repeated,
/// even for messages that are never stored (private, ephemeral rooms) or not yet committed.
///
/// Keys are keyed 64-bit hashes of (scope, target, cid), so remembering one costs no
/// allocation; the hasher's random keys keep anyone from aiming collisions at another's ids.
pub(crate) struct CidCache {
    seen: FxHashMap<u64, Seen>,
    order: VecDeque<u64>,
    hasher: std::hash::RandomState,
}

/// What is remembered of a message sent with a `cid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    /// Its stored id (none for a message never stored: private, ephemeral).
    pub mid: Option<u64>,
    /// When it was first sent.
    pub ts: u64,
    /// A room message delivered, but refused by the store (single server): its resend is
    /// stored under its first id and time, not delivered again.
    pub unstored: bool,
}

impl Default for CidCache {
    fn default() -> Self {
        Self { seen: FxHashMap::default(), order: VecDeque::new(), hasher: std::hash::RandomState::new() }
    }
}

impl CidCache {
    const CAPACITY: usize = 1 << 16;

    fn key(&self, scope: Scope, target: CidTarget<'_>, cid: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one((scope, target, cid))
    }

    /// What is remembered of the message first sent with `cid`.
    pub fn get(&self, scope: Scope, target: CidTarget<'_>, cid: &str) -> Option<Seen> {
        self.seen.get(&self.key(scope, target, cid)).copied()
    }

    /// Remembers `cid` (forgetting the oldest beyond the capacity); told again, it is stored.
    /// Returns its key, for [`CidCache::not_stored`].
    pub fn insert(
        &mut self,
        scope: Scope,
        target: CidTarget<'_>,
        cid: &str,
        mid: Option<u64>,
        ts: u64,
    ) -> u64 {
        let key = self.key(scope, target, cid);
        if self.seen.insert(key, Seen { mid, ts, unstored: false }).is_none() {
            self.order.push_back(key);
            if self.order.len() > Self::CAPACITY
                && let Some(old) = self.order.pop_front()
            {
                self.seen.remove(&old);
            }
        }
        key
    }

    /// The store refused the message remembered under `key` (single server): a room message,
    /// delivered already, is marked [`Seen::unstored`] (its resend is stored, not delivered
    /// again); any other is forgotten (its resend is new).
    pub fn not_stored(&mut self, key: u64, room: bool) {
        if room {
            if let Some(seen) = self.seen.get_mut(&key) {
                seen.unstored = true;
            }
        } else {
            self.seen.remove(&key);
        }
    }

    /// Forgets `cid` (its message was not stored after all: a resend is new).
    pub fn forget(&mut self, scope: Scope, target: CidTarget<'_>, cid: &str) {
        let key = self.key(scope, target, cid);
        // Its place in `order` stays until its turn; removing a key twice is harmless.
        self.seen.remove(&key);
    }

    /// Remembers the id of a stored message of room `room` (folded), loaded at start-up. Ids
    /// stored without a client's digest (by natter before ids were scoped, when they were a
    /// nickname's) are left out: nobody can prove they sent them.
    pub fn load(&mut self, room: &str, m: &StoredMessage) {
        if let Some(cid) = &m.cid {
            self.load_id(room, cid, m.mid, m.ts);
        }
    }

    /// Remembers a client id as stored (`digest:cid`) of message `mid` of room `room`: one
    /// loaded at start-up, or one another node of a cluster stored.
    pub fn load_id(&mut self, room: &str, stored: &str, mid: u64, ts: u64) {
        let Some((digest, cid)) = stored.split_once(':') else { return };
        let digest = (digest.len() == 16).then(|| u64::from_str_radix(digest, 16).ok()).flatten();
        let Some(digest) = digest.and_then(NonZeroU64::new) else { return };
        self.insert(Scope::Client(digest), CidTarget::Room(room), cid, Some(mid), ts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(cid: Option<&str>) -> StoredMessage {
        StoredMessage {
            room: "#r".into(),
            mid: 7,
            ts: 1000,
            nick: "ann".into(),
            sender_key: "ann".into(),
            cid: cid.map(Into::into),
            text: "hi".into(),
            action: false,
            notice: false,
        }
    }

    #[test]
    fn ids_are_apart_per_scope_and_target() {
        let mut cache = CidCache::default();
        let (ann, bob) = (Scope::Session(SessionId(1)), Scope::Session(SessionId(2)));
        let client = Scope::Client(NonZeroU64::new(1).unwrap());
        cache.insert(ann, CidTarget::Room("#r"), "c1", Some(3), 10);
        assert_eq!(
            cache.get(ann, CidTarget::Room("#r"), "c1"),
            Some(Seen { mid: Some(3), ts: 10, unstored: false })
        );
        let key = cache.insert(ann, CidTarget::Room("#r"), "c1", Some(3), 10);
        cache.not_stored(key, true);
        assert!(cache.get(ann, CidTarget::Room("#r"), "c1").unwrap().unstored);
        cache.insert(ann, CidTarget::Room("#r"), "c1", Some(3), 10);
        assert!(!cache.get(ann, CidTarget::Room("#r"), "c1").unwrap().unstored, "stored at last");
        let key = cache.insert(ann, CidTarget::Nick("bob"), "c1", Some(4), 10);
        cache.not_stored(key, false);
        assert_eq!(cache.get(ann, CidTarget::Nick("bob"), "c1"), None, "a private one is forgotten");
        assert_eq!(cache.get(bob, CidTarget::Room("#r"), "c1"), None);
        assert_eq!(cache.get(client, CidTarget::Room("#r"), "c1"), None);
        assert_eq!(cache.get(ann, CidTarget::Nick("#r"), "c1"), None);
        assert_eq!(cache.get(ann, CidTarget::Room("#s"), "c1"), None);
    }

    #[test]
    fn stored_ids_come_back_under_their_client_and_old_ones_are_left_out() {
        let digest = NonZeroU64::new(0x0123_4567_89ab_cdef).unwrap();
        let form = Scope::Client(digest).stored("a:1").unwrap();
        assert_eq!(form, "0123456789abcdef:a:1");
        assert_eq!(Scope::Session(SessionId(1)).stored("a:1"), None);
        let mut cache = CidCache::default();
        cache.load("#r", &stored(Some(&form)));
        assert_eq!(
            cache.get(Scope::Client(digest), CidTarget::Room("#r"), "a:1"),
            Some(Seen { mid: Some(7), ts: 1000, unstored: false })
        );
        for old in ["a-1", "123:a-1", "zzzzzzzzzzzzzzzz:a", "0000000000000000:a"] {
            cache.load("#r", &stored(Some(old)));
        }
        cache.load("#r", &stored(None));
        assert_eq!(cache.seen.len(), 1);
    }
}
