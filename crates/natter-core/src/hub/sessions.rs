//! The hub's table of sessions: a slab whose slot a [`SessionId`] names, so that finding a
//! session (once per recipient of every message) is an index and a check, not a hash.

use super::state::{Session, SessionId};

/// A slot: the session in it, and how many sessions it has held, which tells a reused slot's
/// new session from an id of the old one.
struct Slot {
    generation: u32,
    session: Option<Box<Session>>,
}

/// Every logged-in session, by id.
#[derive(Default)]
pub(crate) struct Sessions {
    /// Boxed sessions: the slab keeps slots for sessions that left, and a slot holding a
    /// whole `Session` would cost its size in every idle one.
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl SessionId {
    fn new(slot: u32, generation: u32) -> Self {
        SessionId(u64::from(generation) << 32 | u64::from(slot))
    }

    /// The slot of the table this session is in: one live session's at a time.
    pub(super) fn slot(self) -> u32 {
        (self.0 & 0xffff_ffff) as u32
    }

    fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

impl Sessions {
    /// Stores a session and returns its new id: never one that was used before.
    pub fn insert(&mut self, session: Box<Session>) -> SessionId {
        if let Some(slot) = self.free.pop() {
            let s = &mut self.slots[slot as usize];
            s.generation = s.generation.wrapping_add(1);
            s.session = Some(session);
            return SessionId::new(slot, s.generation);
        }
        let slot = u32::try_from(self.slots.len()).expect("fewer than 4 billion sessions at once");
        self.slots.push(Slot { generation: 1, session: Some(session) });
        SessionId::new(slot, 1)
    }

    #[inline]
    pub fn get(&self, id: &SessionId) -> Option<&Session> {
        match self.slots.get(id.slot() as usize) {
            Some(Slot { generation, session: Some(s) }) if *generation == id.generation() => Some(s),
            _ => None,
        }
    }

    #[inline]
    pub fn get_mut(&mut self, id: &SessionId) -> Option<&mut Session> {
        match self.slots.get_mut(id.slot() as usize) {
            Some(Slot { generation, session: Some(s) }) if *generation == id.generation() => Some(s),
            _ => None,
        }
    }

    pub fn contains_key(&self, id: &SessionId) -> bool {
        self.get(id).is_some()
    }

    /// Takes a session out; its id is never valid again.
    pub fn remove(&mut self, id: &SessionId) -> Option<Box<Session>> {
        let slot = self.slots.get_mut(id.slot() as usize)?;
        if slot.generation != id.generation() {
            return None;
        }
        let session = slot.session.take()?;
        self.free.push(id.slot());
        Some(session)
    }

    /// Every session with its id, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (SessionId, &Session)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.session.as_deref().map(|session| (SessionId::new(i as u32, s.generation), session))
        })
    }

    /// Every session, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &Session> {
        self.slots.iter().filter_map(|s| s.session.as_deref())
    }

    /// Removes every session.
    pub fn clear(&mut self) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.session.take().is_some() {
                self.free.push(i as u32);
            }
        }
    }
}

impl std::ops::Index<&SessionId> for Sessions {
    type Output = Session;

    fn index(&self, id: &SessionId) -> &Session {
        self.get(id).expect("the session exists")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::SessionKind;
    use crate::outbox::Outbox;

    fn session(nick: &str) -> Box<Session> {
        Box::new(Session {
            nick: nick.into(),
            folded: nick.into(),
            ident: nick.into(),
            kind: SessionKind::Native,
            outbox: Outbox::new(1),
            rooms: thin_vec::ThinVec::new(),
            ignore_all: false,
            staged: thin_vec::ThinVec::new(),
            realname: nick.into(),
            server_op: false,
            signon_ts: 0,
            active_ts: 0,
            hidden: false,
            bot: false,
            hears_announcements: false,
            asked_operators: false,
            mirror: false,
            rare: None,
        })
    }

    fn nicks(table: &Sessions) -> Vec<String> {
        let mut all: Vec<String> = table.values().map(|s| s.nick.to_string()).collect();
        all.sort();
        all
    }

    #[test]
    fn a_reused_slot_never_answers_to_the_old_id() {
        let mut table = Sessions::default();
        let ann = table.insert(session("ann"));
        let bob = table.insert(session("bob"));
        assert_eq!(table[&ann].nick.as_ref(), "ann");
        assert_eq!(table.remove(&ann).map(|s| s.nick.to_string()), Some("ann".into()));
        assert!(table.get(&ann).is_none() && table.remove(&ann).is_none());
        let cat = table.insert(session("cat"));
        assert_eq!(cat.slot(), ann.slot(), "the free slot is reused");
        assert_ne!(cat, ann);
        assert!(table.get(&ann).is_none() && table.get_mut(&ann).is_none() && !table.contains_key(&ann));
        assert_eq!(table.get_mut(&cat).map(|s| s.nick.to_string()), Some("cat".into()));
        assert_eq!(nicks(&table), ["bob", "cat"]);
        let mut ids: Vec<SessionId> = table.iter().map(|(id, _)| id).collect();
        ids.sort();
        let mut want = vec![bob, cat];
        want.sort();
        assert_eq!(ids, want);
        table.clear();
        assert!(table.get(&bob).is_none() && table.values().next().is_none());
        let dan = table.insert(session("dan"));
        assert!(![ann, bob, cat].contains(&dan));
    }

    #[test]
    fn ids_from_nowhere_find_nothing() {
        let mut table = Sessions::default();
        table.insert(session("ann"));
        assert!(table.get(&SessionId(7)).is_none());
        assert!(table.get(&SessionId(u64::MAX)).is_none());
        assert!(table.remove(&SessionId(1 << 40)).is_none());
    }
}
