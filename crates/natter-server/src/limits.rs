//! Per-session flood control: a token bucket for messages and a strike counter for invalid
//! input. Both answer "warn" first and "disconnect" only when abuse continues.

use std::time::Instant;

/// Token bucket: `rate` messages per second on average, `burst` at once.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    /// Messages refused since the bucket last had a token.
    refused: u32,
}

impl RateLimiter {
    /// A limiter; `rate == 0` allows everything.
    pub fn new(rate: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self { rate: f64::from(rate), burst, tokens: burst, last: Instant::now(), refused: 0 }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
    }

    /// True when a message would be allowed now (takes nothing): a door that counted dropped
    /// messages says how many once the session may send again.
    pub fn ready(&mut self) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        self.refill();
        self.tokens >= 1.0
    }

    /// Takes a token if there is one.
    pub fn allow(&mut self) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        self.refill();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused = 0;
            true
        } else {
            self.refused += 1;
            false
        }
    }

    /// How many messages in a row were refused.
    pub fn excess(&self) -> u32 {
        self.refused
    }
}

/// Counts invalid requests; forgives one per ten seconds of good behaviour.
#[derive(Debug)]
pub struct Strikes {
    count: u32,
    last: Instant,
}

impl Default for Strikes {
    fn default() -> Self {
        Self { count: 0, last: Instant::now() }
    }
}

impl Strikes {
    /// Invalid requests tolerated in a burst.
    pub const LIMIT: u32 = 20;

    /// Records one invalid request; true when the session should be closed.
    pub fn hit(&mut self) -> bool {
        let now = Instant::now();
        let forgiven = (now.duration_since(self.last).as_secs() / 10) as u32;
        self.count = self.count.saturating_sub(forgiven) + 1;
        if forgiven > 0 {
            self.last = now;
        }
        self.count > Self::LIMIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_refuses() {
        let mut r = RateLimiter::new(1, 3);
        assert!(r.allow() && r.allow() && r.allow());
        assert!(!r.allow());
        assert_eq!(r.excess(), 1);
        assert!(!r.ready());
        let mut unused = RateLimiter::new(1, 1);
        assert!(unused.ready() && unused.ready() && unused.allow() && !unused.ready());
        let mut unlimited = RateLimiter::new(0, 1);
        assert!((0..10_000).all(|_| unlimited.allow()));
    }

    #[test]
    fn strikes_close_after_the_limit() {
        let mut s = Strikes::default();
        assert!((0..Strikes::LIMIT).all(|_| !s.hit()));
        assert!(s.hit());
    }
}
