//! How many accounts one address may register: an account is kept for good (a row in the
//! store, an entry in the hub's table of registered names), so registering in a loop would
//! grow both without bound. An address (IPv6: its /64) may register a few an hour; the
//! table of addresses is bounded like the login throttle's.

use crate::throttle::address_prefix;
use lru::LruCache;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::time::Duration;
use tokio::time::Instant;

/// The window the count is kept over.
const WINDOW: Duration = Duration::from_secs(3600);
/// Addresses remembered at most.
const CAPACITY: usize = 65_536;

/// Registrations per address over the last hour.
pub(crate) struct RegistrationLimit {
    per_hour: u32,
    /// Each address's count and when its window started.
    seen: LruCache<IpAddr, (u32, Instant)>,
}

impl RegistrationLimit {
    /// At most `per_hour` registrations per address an hour; 0: no limit.
    pub fn new(per_hour: u32) -> Self {
        Self { per_hour, seen: LruCache::new(NonZeroUsize::new(CAPACITY).expect("nonzero")) }
    }

    /// Counts a registration from `addr`, or says how long until it may register again.
    pub fn take(&mut self, addr: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let Some(addr) = addr.filter(|_| self.per_hour > 0) else { return Ok(()) };
        let key = address_prefix(addr);
        match self.seen.get_mut(&key) {
            Some((count, start)) if now.saturating_duration_since(*start) < WINDOW => {
                if *count >= self.per_hour {
                    return Err(*start + WINDOW - now);
                }
                *count += 1;
            }
            Some(entry) => *entry = (1, now),
            None => {
                self.seen.push(key, (1, now));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_registers_a_few_an_hour_and_others_are_not_held_back() {
        let now = Instant::now();
        let mut limit = RegistrationLimit::new(3);
        let a = Some("192.0.2.1".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(limit.take(a, now), Ok(()));
        }
        assert_eq!(limit.take(a, now + Duration::from_secs(600)), Err(Duration::from_secs(3000)));
        assert_eq!(limit.take(Some("192.0.2.2".parse().unwrap()), now), Ok(()));
        // The same /64 is one address.
        let mut v6 = RegistrationLimit::new(1);
        assert_eq!(v6.take(Some("2001:db8::1".parse().unwrap()), now), Ok(()));
        assert!(v6.take(Some("2001:db8::2".parse().unwrap()), now).is_err());
        // After the hour, a new window.
        assert_eq!(limit.take(a, now + WINDOW), Ok(()));
        // No address (the console), or no limit: always.
        assert_eq!(limit.take(None, now), Ok(()));
        let mut off = RegistrationLimit::new(0);
        for _ in 0..100 {
            assert_eq!(off.take(a, now), Ok(()));
        }
    }
}
