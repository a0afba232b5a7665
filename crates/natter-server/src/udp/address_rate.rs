//! Datagrams per source address.
//!
//! An address is an IP address, not an IP and a port ([`AddressKey`], as for the TCP caps and
//! the cloaks): one machine has 64,000 ports, and a limit per port let 5,000 datagrams from
//! 5,000 ports each start their own stream. IPv6 hosts get a /64 each, so an IPv6 address
//! counts by its /64.
//!
//! The limit is a token bucket per address kept in the form of the generic cell rate
//! algorithm (one timestamp per bucket). Buckets live in a fixed table indexed by a keyed hash
//! of the address, so that the table is the same size however many addresses send (forged
//! ones included) and nobody can aim at another address's bucket. Two addresses that share a
//! bucket share its rate; with thousands of buckets that is rare, and it can only make the
//! limit stricter, never looser.

pub(crate) use crate::address::AddressKey;
use std::hash::BuildHasher;
use tokio::time::Instant;

/// Buckets in the table (8 bytes each).
const BUCKETS: usize = 16 * 1024;

/// Token buckets of datagrams per [`AddressKey`], in a table of fixed size.
pub(crate) struct AddressRates {
    /// Per bucket, the time (ns since `start`) at which it is full again.
    full_at: Box<[u64]>,
    hasher: std::collections::hash_map::RandomState,
    /// Nanoseconds one datagram costs; 0 = unlimited.
    cost: u64,
    /// How far ahead of now a bucket may be: the burst.
    tolerance: u64,
    start: Instant,
}

impl AddressRates {
    /// `rate` datagrams per second per address in bursts of twice that; 0 = unlimited.
    pub fn new(rate: u32) -> Self {
        let cost = if rate == 0 { 0 } else { 1_000_000_000 / u64::from(rate) };
        Self {
            full_at: vec![0; BUCKETS].into_boxed_slice(),
            hasher: std::collections::hash_map::RandomState::new(),
            cost,
            tolerance: cost * 2 * u64::from(rate),
            start: Instant::now(),
        }
    }

    /// Takes one datagram from `key`'s bucket; false when it is empty (drop the datagram).
    pub fn allow(&mut self, key: AddressKey) -> bool {
        if self.cost == 0 {
            return true;
        }
        let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let slot = &mut self.full_at[self.hasher.hash_one(key) as usize % BUCKETS];
        let next = (*slot).max(now) + self.cost;
        if next - now > self.tolerance {
            return false;
        }
        *slot = next;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(s: &str) -> AddressKey {
        AddressKey::of(s.parse().unwrap())
    }

    #[test]
    fn an_address_is_an_ipv4_address_or_an_ipv6_slash_64() {
        assert_eq!(key("192.0.2.1"), key("::ffff:192.0.2.1"));
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        // IPv4 addresses are not folded into one /64 (::ffff:0:0/96 is inside ::/64).
        assert_ne!(key("::ffff:192.0.2.1"), key("::ffff:198.51.100.1"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_twice_the_rate_then_the_rate() {
        let mut rates = AddressRates::new(10);
        let (ann, bob) = (key("192.0.2.1"), key("192.0.2.2"));
        assert_eq!((0..100).filter(|_| rates.allow(ann)).count(), 20, "the burst");
        assert!(rates.allow(bob), "another address has its own bucket");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!((0..100).filter(|_| rates.allow(ann)).count(), 10, "a second's worth");
        let mut unlimited = AddressRates::new(0);
        assert!((0..100_000).all(|_| unlimited.allow(ann)));
    }
}
