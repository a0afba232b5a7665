//! Login throttling: after wrong passwords, a source address (and an operator name) must wait
//! before its next attempt is even checked, twice as long after each further failure.
//!
//! Without it a password falls to guessing at line speed (one connection tried 105,000 server
//! passwords and 88,000 operator passwords a second). The hub refuses an attempt that comes too
//! early without looking at the password, so the refusal tells a guesser nothing, and it never
//! sleeps: it serves everyone from one task. Time is tokio's clock, so that tests run the
//! schedule on paused time.
//!
//! The table is bounded: it keeps the keys that failed most recently (65,536 by default, a few
//! megabytes when full), so a spray of addresses costs a fixed amount of memory and evicts the
//! keys that have been quiet longest.

use lru::LruCache;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::time::Duration;
use tokio::time::Instant;

/// How long a key waits after its wrong passwords. After failure `n`, the next attempt is
/// refused for `base × 2^(n − free − 1)` (capped), so the first `free` mistakes cost nothing:
/// a person who mistypes retries at once, a guesser soon waits minutes per guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Wrong passwords forgiven outright, before any wait.
    pub free: u32,
    /// The first wait.
    pub base: Duration,
    /// The longest wait.
    pub cap: Duration,
    /// A key with no wrong password for this long starts again from nothing.
    pub forget_after: Duration,
    /// Keys remembered at most (addresses and operator names together).
    pub capacity: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            free: 3,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
            forget_after: Duration::from_secs(15 * 60),
            capacity: 65_536,
        }
    }
}

impl Policy {
    /// The wait after `failures` wrong passwords in a row.
    pub fn wait_after(&self, failures: u32) -> Duration {
        let Some(over) = failures.checked_sub(self.free + 1) else { return Duration::ZERO };
        self.base.saturating_mul(1u32 << over.min(24)).min(self.cap)
    }
}

/// What a wrong password counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key<'a> {
    /// The address the attempt came from (IPv6 by its /64: one host has them all).
    Address(IpAddr),
    /// The server operator name the attempt named.
    Operator(&'a str),
    /// The account (folded name) a login named: a guesser spreading over many addresses
    /// still waits per account.
    Account(&'a str),
}

/// One key's record.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// The wrong-password table.
pub(crate) struct Throttle {
    policy: Policy,
    /// Keyed hashes of the keys, least recently failed first. Hashes keep an entry small
    /// whatever name was tried; the random keys keep anyone from aiming at another's entry.
    failures: LruCache<u64, Failures>,
    hasher: std::hash::RandomState,
}

impl Throttle {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            failures: LruCache::sparse(NonZeroUsize::new(policy.capacity.max(1)).expect("at least 1")),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn hash(&self, key: Key<'_>) -> u64 {
        match key {
            Key::Address(ip) => self.hasher.hash_one((0u8, address_prefix(ip))),
            Key::Operator(name) => self.hasher.hash_one((1u8, name)),
            Key::Account(name) => self.hasher.hash_one((2u8, name)),
        }
    }

    /// How much longer `key` must wait before an attempt is checked; `None`: it may try now.
    pub fn wait(&self, key: Key<'_>, now: Instant) -> Option<Duration> {
        let entry = self.failures.peek(&self.hash(key))?;
        if now.saturating_duration_since(entry.last) >= self.policy.forget_after {
            return None;
        }
        let until = entry.last + self.policy.wait_after(entry.count);
        (until > now).then(|| until - now)
    }

    /// The longest wait among `keys`, with the key that imposes it (the later key on a tie).
    pub fn longest_wait<'k>(&self, keys: &[Key<'k>], now: Instant) -> Option<(Key<'k>, Duration)> {
        keys.iter().filter_map(|&k| self.wait(k, now).map(|w| (k, w))).max_by_key(|&(_, w)| w)
    }

    /// Counts a wrong password against `key`; returns how many it has now, in a row.
    pub fn fail(&mut self, key: Key<'_>, now: Instant) -> u32 {
        let hash = self.hash(key);
        let forget_after = self.policy.forget_after;
        match self.failures.get_mut(&hash) {
            Some(entry) if now.saturating_duration_since(entry.last) < forget_after => {
                entry.count = entry.count.saturating_add(1);
                entry.last = now;
                entry.count
            }
            Some(entry) => {
                *entry = Failures { count: 1, last: now };
                1
            }
            None => {
                // Full: the key quiet longest goes (most likely one already forgiven).
                self.failures.push(hash, Failures { count: 1, last: now });
                1
            }
        }
    }

    /// Forgets the wrong passwords against `key` (its right password was given).
    pub fn forgive(&mut self, key: Key<'_>) {
        let hash = self.hash(key);
        self.failures.pop(&hash);
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Keys remembered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.failures.len()
    }
}

/// The part of an address that names a host: all of an IPv4 address (also when mapped into
/// IPv6), the first 64 bits of an IPv6 one.
pub(crate) fn address_prefix(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// How many wrong-password lines the log takes: a flood of guesses from a spray of addresses
/// must not fill the disk. Lines beyond the budget are counted and the count logged with the
/// next line that fits.
pub(crate) struct LogBudget {
    tokens: u32,
    refilled: Instant,
    skipped: u64,
}

impl LogBudget {
    /// Lines per minute, and at once.
    const PER_MINUTE: u32 = 30;

    pub fn new(now: Instant) -> Self {
        Self { tokens: Self::PER_MINUTE, refilled: now, skipped: 0 }
    }

    /// `Some(lines skipped since the last one logged)` when this line may be logged.
    pub fn take(&mut self, now: Instant) -> Option<u64> {
        let minutes = now.saturating_duration_since(self.refilled).as_secs() / 60;
        if minutes > 0 {
            self.tokens = Self::PER_MINUTE;
            self.refilled = now;
        }
        if self.tokens == 0 {
            self.skipped += 1;
            return None;
        }
        self.tokens -= 1;
        Some(std::mem::take(&mut self.skipped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_wait_doubles_after_the_free_mistakes_and_stops_at_the_cap() {
        let p = Policy::default();
        let waits: Vec<u64> = (0..16).map(|n| p.wait_after(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(p.wait_after(u32::MAX), p.cap);
    }

    #[test]
    fn an_address_waits_after_its_failures_and_others_do_not() {
        let now = Instant::now();
        let mut t = Throttle::new(Policy::default());
        let guesser = Key::Address("192.0.2.1".parse().unwrap());
        let other = Key::Address("192.0.2.2".parse().unwrap());
        for n in 1..=3 {
            assert_eq!(t.fail(guesser, now), n);
            assert_eq!(t.wait(guesser, now), None, "free mistake {n}");
        }
        t.fail(guesser, now);
        assert_eq!(t.wait(guesser, now), Some(secs(1)));
        assert_eq!(t.wait(guesser, now + Duration::from_millis(400)), Some(Duration::from_millis(600)));
        assert_eq!(t.wait(guesser, now + secs(1)), None);
        t.fail(guesser, now + secs(1));
        assert_eq!(t.wait(guesser, now + secs(1)), Some(secs(2)));
        assert_eq!(t.wait(other, now), None);
    }

    #[test]
    fn ipv6_hosts_are_counted_by_their_64_bit_prefix() {
        let now = Instant::now();
        let mut t = Throttle::new(Policy { free: 0, ..Policy::default() });
        t.fail(Key::Address("2001:db8:1:2::1".parse().unwrap()), now);
        assert!(t.wait(Key::Address("2001:db8:1:2:ffff::9".parse().unwrap()), now).is_some());
        assert!(t.wait(Key::Address("2001:db8:1:3::1".parse().unwrap()), now).is_none());
        t.fail(Key::Address("::ffff:192.0.2.7".parse().unwrap()), now);
        assert!(t.wait(Key::Address("192.0.2.7".parse().unwrap()), now).is_some());
    }

    #[test]
    fn a_quiet_key_is_forgiven_and_a_right_password_forgives_at_once() {
        let now = Instant::now();
        let p = Policy::default();
        let mut t = Throttle::new(p);
        let admin = Key::Operator("admin");
        for _ in 0..10 {
            t.fail(admin, now);
        }
        assert_eq!(t.wait(admin, now), Some(p.wait_after(10)));
        // Even a wait longer than the forgetting time ends with it.
        let long = Policy { cap: p.forget_after * 2, base: p.forget_after * 2, ..p };
        let mut t2 = Throttle::new(Policy { free: 0, ..long });
        t2.fail(admin, now);
        assert!(t2.wait(admin, now + p.forget_after - Duration::from_secs(1)).is_some());
        assert_eq!(t2.wait(admin, now + p.forget_after), None);
        // Quiet for the forgetting time: the next mistake is the first again.
        assert_eq!(t.fail(admin, now + p.forget_after), 1);
        t.fail(admin, now + p.forget_after);
        t.forgive(admin);
        assert_eq!(t.wait(admin, now + p.forget_after), None);
        assert_eq!(t.fail(admin, now + p.forget_after), 1);
        // An operator name and an address that spell alike are different keys.
        assert_eq!(t.wait(Key::Address("127.0.0.1".parse().unwrap()), now), None);
    }

    #[test]
    fn the_longest_wait_of_several_keys_is_the_one_in_force() {
        let now = Instant::now();
        let mut t = Throttle::new(Policy { free: 0, ..Policy::default() });
        let (addr, admin) = (Key::Address("192.0.2.1".parse().unwrap()), Key::Operator("admin"));
        t.fail(addr, now);
        for _ in 0..3 {
            t.fail(admin, now);
        }
        assert_eq!(t.longest_wait(&[addr, admin], now), Some((admin, secs(4))));
        assert_eq!(t.longest_wait(&[addr], now), Some((addr, secs(1))));
        assert_eq!(t.longest_wait(&[Key::Operator("other")], now), None);
    }

    #[test]
    fn a_spray_of_addresses_stays_within_the_capacity() {
        let now = Instant::now();
        let mut t = Throttle::new(Policy { capacity: 1000, ..Policy::default() });
        for i in 0..50_000u32 {
            t.fail(Key::Address(IpAddr::V4(i.into())), now + Duration::from_millis(u64::from(i)));
        }
        assert_eq!(t.len(), 1000);
        // The most recent failures are the ones kept.
        assert_eq!(t.fail(Key::Address(IpAddr::V4(49_999u32.into())), now + secs(50)), 2);
    }

    #[test]
    fn the_log_takes_a_bounded_number_of_lines_and_counts_the_rest() {
        let now = Instant::now();
        let mut budget = LogBudget::new(now);
        let logged = (0..1000).filter(|_| budget.take(now).is_some()).count();
        assert_eq!(logged, LogBudget::PER_MINUTE as usize);
        assert_eq!(budget.take(now + secs(60)), Some(1000 - u64::from(LogBudget::PER_MINUTE)));
        assert_eq!(budget.take(now + secs(61)), Some(0));
    }
}
