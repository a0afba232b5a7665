//! Who is connected from where. Every TCP connection is counted when it is accepted, against
//! two caps: connections per address (so that one address cannot take every file descriptor)
//! and connections not yet logged in, server-wide (so that silent newcomers, from however many
//! addresses, cannot hold the descriptors the logged-in users need). A connection over the
//! per-address cap is refused with a line saying why, before any task is spawned for it. A
//! newcomer beyond the second cap is let in, and the newcomer that has waited longest is told
//! to go instead ([`Peers::is_evicted`]): a real client logs in within a round trip or two, so
//! whoever holds the oldest places is the one not logging in, and an attacker with many
//! addresses cannot keep everyone else out by holding them. Only when as many evicted
//! connections are still closing as the cap allows is a newcomer refused. The counts are
//! released when the connection ends, or, for the second cap, when it logs in.
//!
//! Peers on this machine (loopback) are exempt from the per-address cap by default: a proxy
//! or an SSH tunnel brings everyone from 127.0.0.1, and so do tests and `natter bench`. The
//! same peers are shown by their address, which tells nobody anything; everyone else is
//! shown by a cloak ([`crate::cloak`]) unless cloaking is off.
//!
//! The per-address table is only touched when a counted connection starts or ends, never
//! for a message; it is a standard (SipHash) map because its keys are chosen by the peers.

use crate::address::{AddressKey, PeerAddr};
use crate::cloak::Cloak;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// Why a connection that has not logged in is closed when newer ones need its place.
pub const EVICTED: &str = "the server is busy: too many connections are logging in, and this one waited longest; log in as soon as you connect";

/// The caps, as configured (0 = no cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Connections one address may hold.
    pub per_address: u32,
    /// Connections not yet logged in, server-wide.
    pub unregistered: usize,
    /// Loopback peers are neither counted per address nor cloaked.
    pub exempt_loopback: bool,
}

/// Why a connection was turned away; its text is the line the peer reads before the server
/// hangs up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The address already holds its share.
    #[error("too many connections from your address ({max} at most); close one and try again")]
    PerAddress {
        /// The cap.
        max: u32,
    },
    /// Too many connections are still logging in, and as many more are being closed.
    #[error("the server is busy: {max} connections are logging in already; try again in a minute")]
    Unregistered {
        /// The cap.
        max: usize,
    },
}

/// The server's connection counts and how it shows addresses. One per server, shared by its
/// listeners and sessions.
#[derive(Debug)]
pub struct Peers {
    caps: Caps,
    cloak: Option<Cloak>,
    /// Connections accepted and not yet logged in (all of them, exempt or not).
    newcomers: Mutex<Newcomers>,
    /// Connections per counted address; an address whose count falls to zero is removed.
    by_address: Mutex<HashMap<AddressKey, u32>>,
    /// The server's shutdown waits until every clone of this sender is gone: every connection
    /// and UDP member holds these counts (and so this sender) until it ends, so it needs no
    /// sender of its own (8 bytes less in every idle connection).
    _alive: Option<crate::Alive>,
    /// Where the server's idle connections wait without a task, once it is started.
    park: std::sync::OnceLock<crate::park::Park>,
}

/// The connections not logged in yet, by their place in the line.
#[derive(Debug, Default)]
struct Newcomers {
    /// The tickets of those waiting, oldest first. A ticket missing from here belongs to a
    /// connection that logged in, ended, or was evicted.
    waiting: BTreeSet<u32>,
    /// The next ticket. It wraps after four billion connections: the ones waiting then are
    /// a few seconds old, so no two waiting hold the same ticket.
    next: u32,
    /// Evicted connections that have not ended yet: they still hold their descriptors.
    evicted: usize,
}

impl Peers {
    /// Counts against `caps`; shows addresses through `cloak` (`None`: uncloaked); holds
    /// `alive` until the last connection is gone.
    pub fn new(caps: Caps, cloak: Option<Cloak>, alive: Option<crate::Alive>) -> Arc<Self> {
        Arc::new(Self {
            caps,
            cloak,
            newcomers: Mutex::default(),
            by_address: Mutex::default(),
            _alive: alive,
            park: std::sync::OnceLock::new(),
        })
    }

    /// Idle connections park in `park` from now on.
    pub(crate) fn set_park(&self, park: crate::park::Park) {
        let _ = self.park.set(park);
    }

    /// Where idle connections park, when parking is on.
    pub(crate) fn park(&self) -> Option<&crate::park::Park> {
        self.park.get()
    }

    /// The caps in force.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// True for a peer the per-address cap and cloaking leave alone.
    pub fn is_exempt(&self, ip: IpAddr) -> bool {
        self.caps.exempt_loopback && ip.to_canonical().is_loopback()
    }

    /// Counts a new connection from `ip`, or says why it is refused. The count is held by the
    /// returned [`Admitted`] (and then by the session it becomes) until the connection ends.
    pub fn admit(self: &Arc<Self>, peer: SocketAddr) -> Result<Admitted, Refused> {
        let ip = peer.ip();
        let counted = self.caps.per_address > 0 && !self.is_exempt(ip);
        if counted {
            let mut table = self.table();
            let held = table.entry(AddressKey::of(ip)).or_insert(0);
            if *held >= self.caps.per_address {
                // The entry existed (a cap of at least 1 was reached): nothing to clean up.
                return Err(Refused::PerAddress { max: self.caps.per_address });
            }
            *held += 1;
        }
        let max = self.caps.unregistered;
        let mut newcomers = self.newcomers();
        if max > 0 && newcomers.waiting.len() >= max {
            if newcomers.evicted >= max {
                drop(newcomers);
                if counted {
                    self.release_address(ip);
                }
                return Err(Refused::Unregistered { max });
            }
            // The one that has waited longest makes room (it sees so at its next check).
            newcomers.waiting.pop_first();
            newcomers.evicted += 1;
        }
        let ticket = newcomers.next;
        newcomers.next = newcomers.next.wrapping_add(1);
        newcomers.waiting.insert(ticket);
        Ok(Admitted { peers: Some(self.clone()), peer: peer.into(), ticket })
    }

    /// True when the newcomer holding `ticket` was told to make room for a later one: it
    /// should hang up (unless it has just logged in).
    pub fn is_evicted(&self, ticket: u32) -> bool {
        !self.newcomers().waiting.contains(&ticket)
    }

    /// The newcomer holding `ticket` logged in: one fewer newcomer (or evicted connection
    /// still open, when it logged in before it saw it was evicted: it stays, it is no ghost).
    pub fn logged_in(&self, ticket: u32) {
        self.leave_line(ticket);
    }

    /// A counted connection from `ip` ended; `ticket` is its place among the newcomers when it
    /// had not logged in.
    pub fn release(&self, ip: IpAddr, ticket: Option<u32>) {
        if let Some(ticket) = ticket {
            self.leave_line(ticket);
        }
        if self.caps.per_address > 0 && !self.is_exempt(ip) {
            self.release_address(ip);
        }
    }

    /// Takes `ticket` out of the newcomers' line, or off the evicted count.
    fn leave_line(&self, ticket: u32) {
        let mut newcomers = self.newcomers();
        if !newcomers.waiting.remove(&ticket) {
            newcomers.evicted = newcomers.evicted.saturating_sub(1);
        }
    }

    /// One connection fewer from `ip`'s address.
    fn release_address(&self, ip: IpAddr) {
        let mut table = self.table();
        let key = AddressKey::of(ip);
        if let Some(held) = table.get_mut(&key) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                table.remove(&key);
            }
        }
    }

    /// Connections accepted and not yet logged in.
    pub fn unregistered(&self) -> usize {
        self.newcomers().waiting.len()
    }

    fn newcomers(&self) -> std::sync::MutexGuard<'_, Newcomers> {
        // Nothing panics while holding it.
        self.newcomers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections held by `ip`'s address (0 for an exempt one, which is not counted).
    pub fn held_by(&self, ip: IpAddr) -> u32 {
        self.table().get(&AddressKey::of(ip)).copied().unwrap_or(0)
    }

    /// How `ip` is shown to other users, and the real address when that is a cloak (for the
    /// server operators and the user itself).
    pub fn shown_host(&self, ip: IpAddr) -> (String, Option<String>) {
        let ip = ip.to_canonical();
        match &self.cloak {
            Some(cloak) if !self.is_exempt(ip) => (cloak.host(ip), Some(ip.to_string())),
            _ => (ip.to_string(), None),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<AddressKey, u32>> {
        // Nothing panics while holding it; a poisoned table still holds good counts.
        self.by_address.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A connection counted by [`Peers::admit`], on its way to a session: released when dropped,
/// unless handed over to the session ([`Admitted::hand_over`]), which releases it itself.
#[derive(Debug)]
pub struct Admitted {
    peers: Option<Arc<Peers>>,
    peer: PeerAddr,
    ticket: u32,
}

impl Admitted {
    /// The peer's address.
    pub fn peer(&self) -> PeerAddr {
        self.peer
    }

    /// Its place among the newcomers ([`Peers::is_evicted`]).
    pub fn ticket(&self) -> u32 {
        self.ticket
    }

    /// True when it was told to make room for a newer connection.
    pub fn is_evicted(&self) -> bool {
        self.peers.as_ref().is_some_and(|peers| peers.is_evicted(self.ticket))
    }

    /// The counts, now the session's to release (see [`Peers::release`]).
    pub fn hand_over(mut self) -> Option<Arc<Peers>> {
        self.peers.take()
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some(peers) = self.peers.take() {
            peers.release(self.peer.ip(), Some(self.ticket));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A peer at `s`, on some port.
    fn at(s: &str) -> SocketAddr {
        SocketAddr::new(ip(s), 40000)
    }

    fn caps(per_address: u32, unregistered: usize) -> Caps {
        Caps { per_address, unregistered, exempt_loopback: true }
    }

    #[test]
    fn one_address_gets_its_share_and_no_more() {
        let peers = Peers::new(caps(2, 0), None, None);
        let a = peers.admit(at("203.0.113.1")).unwrap();
        let b = peers.admit(at("203.0.113.1")).unwrap();
        assert_eq!(peers.admit(at("203.0.113.1")).unwrap_err(), Refused::PerAddress { max: 2 });
        assert!(peers.admit(at("203.0.113.2")).is_ok(), "another address is not held back");
        drop(a);
        let c = peers.admit(at("203.0.113.1")).unwrap();
        assert_eq!(peers.held_by(ip("203.0.113.1")), 2);
        drop((b, c));
        assert_eq!(peers.held_by(ip("203.0.113.1")), 0);
        assert!(peers.table().is_empty(), "no entry is kept for an address that left");
        assert_eq!(peers.unregistered(), 0);
    }

    #[test]
    fn an_ipv6_64_counts_as_one_address() {
        let peers = Peers::new(caps(1, 0), None, None);
        let _a = peers.admit(at("2001:db8:7:7::1")).unwrap();
        assert!(peers.admit(at("2001:db8:7:7::2")).is_err());
        assert!(peers.admit(at("2001:db8:7:8::1")).is_ok());
        let _v4 = peers.admit(at("192.0.2.9")).unwrap();
        assert!(peers.admit(at("::ffff:192.0.2.9")).is_err(), "IPv4 on an IPv6 socket is itself");
    }

    #[test]
    fn loopback_is_exempt_unless_told_otherwise() {
        let peers = Peers::new(caps(1, 0), None, None);
        let _held: Vec<Admitted> = (0..5).map(|_| peers.admit(at("127.0.0.1")).unwrap()).collect();
        let strict = Peers::new(Caps { exempt_loopback: false, ..caps(1, 0) }, None, None);
        let _one = strict.admit(at("::1")).unwrap();
        assert!(strict.admit(at("::1")).is_err());
    }

    #[test]
    fn a_newcomer_beyond_the_cap_takes_the_place_of_the_one_that_waited_longest() {
        let peers = Peers::new(caps(0, 2), None, None);
        let a = peers.admit(at("127.0.0.1")).unwrap();
        let b = peers.admit(at("127.0.0.1")).unwrap();
        let c = peers.admit(at("127.0.0.1")).unwrap();
        assert!(peers.is_evicted(a.ticket()), "the oldest makes room");
        assert!(!peers.is_evicted(b.ticket()) && !peers.is_evicted(c.ticket()));
        assert_eq!(peers.unregistered(), 2);
        // b logs in: its session now holds the count and releases it as logged in.
        let ticket = b.ticket();
        let owner = b.hand_over().unwrap();
        owner.logged_in(ticket);
        assert_eq!(peers.unregistered(), 1);
        owner.release(ip("127.0.0.1"), None);
        assert_eq!(peers.unregistered(), 1, "a logged-in session leaving frees no newcomer slot");
        drop(a);
        drop(c);
        assert_eq!(peers.unregistered(), 0);
        assert_eq!(peers.newcomers().evicted, 0, "the evicted one was counted until it ended");
    }

    #[test]
    fn newcomers_are_refused_only_while_as_many_evicted_ones_are_still_open() {
        let peers = Peers::new(caps(0, 2), None, None);
        let held: Vec<Admitted> = (0..4).map(|_| peers.admit(at("127.0.0.1")).unwrap()).collect();
        // Two waiting, two evicted and not yet gone: the descriptors are at twice the cap.
        assert_eq!(peers.admit(at("127.0.0.1")).unwrap_err(), Refused::Unregistered { max: 2 });
        let mut held = held.into_iter();
        drop(held.next());
        let _late = peers.admit(at("127.0.0.1")).expect("an evicted one ended: room again");
        assert_eq!(peers.unregistered(), 2);
    }

    #[test]
    fn an_evicted_newcomer_that_logs_in_before_it_sees_it_stays() {
        let peers = Peers::new(caps(0, 1), None, None);
        let a = peers.admit(at("127.0.0.1")).unwrap();
        let _b = peers.admit(at("127.0.0.1")).unwrap();
        assert!(peers.is_evicted(a.ticket()));
        let ticket = a.ticket();
        let owner = a.hand_over().unwrap();
        owner.logged_in(ticket);
        assert_eq!(peers.newcomers().evicted, 0);
        assert_eq!(peers.unregistered(), 1);
    }

    #[test]
    fn a_refusal_by_address_gives_back_the_newcomer_slot() {
        let peers = Peers::new(Caps { exempt_loopback: false, ..caps(1, 2) }, None, None);
        let _a = peers.admit(at("127.0.0.1")).unwrap();
        assert!(matches!(peers.admit(at("127.0.0.1")), Err(Refused::PerAddress { .. })));
        assert_eq!(peers.unregistered(), 1);
    }

    #[test]
    fn others_see_a_cloak_and_loopback_as_it_is() {
        let peers = Peers::new(caps(0, 0), Some(Cloak::from_secret("k")), None);
        let (shown, real) = peers.shown_host(ip("::ffff:198.51.100.4"));
        assert!(shown.ends_with(".cloak"), "{shown}");
        assert_eq!(real.as_deref(), Some("198.51.100.4"));
        assert_eq!(peers.shown_host(ip("127.0.0.1")), ("127.0.0.1".to_string(), None));
        let open = Peers::new(caps(0, 0), None, None);
        assert_eq!(open.shown_host(ip("198.51.100.4")), ("198.51.100.4".to_string(), None));
    }

    #[test]
    fn refusals_say_what_to_do() {
        let text = Refused::PerAddress { max: 16 }.to_string();
        assert!(text.contains("16") && text.contains("close one"), "{text}");
        let text = Refused::Unregistered { max: 1000 }.to_string();
        assert!(text.contains("busy") && text.contains("try again"), "{text}");
    }
}
