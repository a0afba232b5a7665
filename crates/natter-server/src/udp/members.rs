//! Who the UDP door's members are: each address's task, and the caps on how many there are,
//! in all and per sending address ([`AddressKey`]).
//!
//! The receive loop owns this table alone. A member task that ends says so on a channel, with
//! the number it was admitted under, so that the loop removes exactly that member (the same
//! address may have joined again since) and no scan of the whole table is ever needed.

use super::address_rate::AddressKey;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::SocketAddr;
use tokio::sync::mpsc;

/// Datagrams on their way to one member task.
pub(crate) type Inbox = mpsc::Sender<Vec<u8>>;

struct Member {
    id: u64,
    inbox: Inbox,
}

/// Why an address may not join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The server has its most UDP members.
    Server(usize),
    /// The sending address has its most UDP members.
    Address(u32),
}

/// The members, by address, with their counts per [`AddressKey`].
pub(crate) struct Members {
    by_addr: HashMap<SocketAddr, Member>,
    per_key: HashMap<AddressKey, u32>,
    max_total: usize,
    max_per_key: u32,
    next_id: u64,
}

impl Members {
    /// An empty table with these caps.
    pub fn new(max_total: usize, max_per_key: u32) -> Self {
        Self { by_addr: HashMap::new(), per_key: HashMap::new(), max_total, max_per_key, next_id: 0 }
    }

    /// The inbox of the member at `peer`, unless its task has ended.
    pub fn inbox(&self, peer: SocketAddr) -> Option<&Inbox> {
        self.by_addr.get(&peer).map(|m| &m.inbox).filter(|inbox| !inbox.is_closed())
    }

    /// Members now.
    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    /// Whether `peer` may join now (the caps), without admitting it.
    pub fn room_for(&mut self, peer: SocketAddr) -> Result<(), Full> {
        self.forget_ended(peer);
        if self.by_addr.len() >= self.max_total {
            return Err(Full::Server(self.max_total));
        }
        let key = AddressKey::of(peer.ip());
        if self.per_key.get(&key).copied().unwrap_or(0) >= self.max_per_key {
            return Err(Full::Address(self.max_per_key));
        }
        Ok(())
    }

    /// Admits `peer` (after [`Members::room_for`]) with the inbox of its new task; returns the
    /// number its task reports when it ends.
    pub fn admit(&mut self, peer: SocketAddr, inbox: Inbox) -> u64 {
        self.forget_ended(peer);
        let id = self.next_id;
        self.next_id += 1;
        if self.by_addr.insert(peer, Member { id, inbox }).is_none() {
            *self.per_key.entry(AddressKey::of(peer.ip())).or_insert(0) += 1;
        }
        id
    }

    /// The member task `id` at `peer` has ended.
    pub fn ended(&mut self, peer: SocketAddr, id: u64) {
        if self.by_addr.get(&peer).is_some_and(|m| m.id == id) {
            self.by_addr.remove(&peer);
            self.uncount(peer);
        }
    }

    /// Drops the entry of `peer` if its task has ended but has not said so yet.
    fn forget_ended(&mut self, peer: SocketAddr) {
        if self.by_addr.get(&peer).is_some_and(|m| m.inbox.is_closed()) {
            self.by_addr.remove(&peer);
            self.uncount(peer);
        }
    }

    fn uncount(&mut self, peer: SocketAddr) {
        if let Entry::Occupied(mut count) = self.per_key.entry(AddressKey::of(peer.ip())) {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_in_all_and_per_address_and_ended_members_make_room() {
        let mut members = Members::new(3, 2);
        let (tx, _rx) = mpsc::channel(1);
        let a1 = addr("192.0.2.1:1");
        assert_eq!(members.room_for(a1), Ok(()));
        let id1 = members.admit(a1, tx.clone());
        members.admit(addr("192.0.2.1:2"), tx.clone());
        assert_eq!(members.room_for(addr("192.0.2.1:3")), Err(Full::Address(2)));
        assert_eq!(members.room_for(addr("[::ffff:192.0.2.1]:3")), Err(Full::Address(2)), "the same address");
        members.admit(addr("192.0.2.2:1"), tx.clone());
        assert_eq!(members.room_for(addr("192.0.2.3:1")), Err(Full::Server(3)));
        assert!(members.inbox(a1).is_some());
        members.ended(a1, id1 + 100);
        assert_eq!(members.len(), 3, "another member's end changes nothing");
        members.ended(a1, id1);
        assert!(members.inbox(a1).is_none());
        assert_eq!(members.room_for(addr("192.0.2.1:3")), Ok(()));
    }

    #[test]
    fn a_member_whose_task_ended_is_replaced_not_counted_twice() {
        let mut members = Members::new(10, 1);
        let a = addr("192.0.2.1:1");
        let (tx, rx) = mpsc::channel(1);
        let old = members.admit(a, tx);
        drop(rx);
        assert!(members.inbox(a).is_none(), "its task is gone");
        assert_eq!(members.room_for(a), Ok(()), "its place is free");
        let (tx, _rx) = mpsc::channel(1);
        let new = members.admit(a, tx);
        members.ended(a, old);
        assert!(members.inbox(a).is_some(), "the late end of the old task leaves the new one");
        assert_eq!(members.room_for(addr("192.0.2.1:2")), Err(Full::Address(1)));
        members.ended(a, new);
        assert_eq!(members.len(), 0);
    }
}
