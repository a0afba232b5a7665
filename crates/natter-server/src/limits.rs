//! Per-session flood control: a token bucket for messages, a budget for every other command
//! and a strike counter for invalid input. The first two answer "warn" first; messages are
//! refused and a flood disconnects; other commands are slowed down, never lost.

use std::sync::OnceLock;
use std::time::Duration;

/// Token bucket: `rate` messages per second on average, `burst` at once. Twelve bytes: the
/// rate and the burst are the session's settings, given on each call, and the time is on
/// [`clock_ms`]; it lives in every connection.
#[derive(Debug)]
pub struct RateLimiter {
    tokens: f32,
    /// When `tokens` was last refilled (ms on [`clock_ms`]).
    last_ms: u32,
    /// Messages refused since the bucket last had a token.
    refused: u32,
}

impl RateLimiter {
    /// A full bucket of `burst` tokens.
    pub fn new(burst: u32) -> Self {
        Self { tokens: burst.max(1) as f32, last_ms: clock_ms(), refused: 0 }
    }

    fn refill(&mut self, rate: u32, burst: u32) {
        let now = clock_ms();
        let earned = now.wrapping_sub(self.last_ms) as f32 / 1000.0 * rate as f32;
        self.tokens = (self.tokens + earned).min(burst.max(1) as f32);
        self.last_ms = now;
    }

    /// True when a message would be allowed now (takes nothing): a door that counted dropped
    /// messages says how many once the session may send again. `rate == 0` allows everything.
    pub fn ready(&mut self, rate: u32, burst: u32) -> bool {
        if rate == 0 {
            return true;
        }
        self.refill(rate, burst);
        self.tokens >= 1.0
    }

    /// Takes a token if there is one. `rate == 0` allows everything.
    pub fn allow(&mut self, rate: u32, burst: u32) -> bool {
        if rate == 0 {
            return true;
        }
        self.refill(rate, burst);
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

/// Counts invalid requests; forgives one per ten seconds of good behaviour. Eight bytes (a
/// time on [`clock_ms`], not an `Instant`): it lives in every connection.
#[derive(Debug, Default)]
pub struct Strikes {
    count: u32,
    /// When the count was last forgiven or started (ms on [`clock_ms`]).
    since_ms: u32,
}

impl Strikes {
    /// Invalid requests tolerated in a burst.
    pub const LIMIT: u32 = 20;

    /// Records one invalid request; true when the session should be closed.
    pub fn hit(&mut self) -> bool {
        let now = clock_ms();
        let forgiven = if self.count == 0 { 0 } else { now.wrapping_sub(self.since_ms) / 10_000 };
        if self.count == 0 || forgiven > 0 {
            self.since_ms = now;
        }
        self.count = self.count.saturating_sub(forgiven) + 1;
        self.count > Self::LIMIT
    }
}

/// The clock budgets run on: milliseconds since the first use in this process, on tokio's
/// clock (so that tests can move it). A `u32` wraps after 49 days; budgets compare times
/// with wrapping arithmetic and never look further than a minute away.
///
/// A runtime whose clock is behind the one that set the origin counts back from it, wrapping:
/// each test has a paused clock of its own, and one that started before the origin was set
/// would otherwise read 0 until its clock passed the origin, its budgets frozen meanwhile
/// (found as a test of the command budget hanging when tests ran side by side).
fn clock_ms() -> u32 {
    static START: OnceLock<tokio::time::Instant> = OnceLock::new();
    let start = *START.get_or_init(tokio::time::Instant::now);
    let now = tokio::time::Instant::now();
    let nanos = match now.checked_duration_since(start) {
        Some(since) => since.as_nanos() as i128,
        None => -(start.duration_since(now).as_nanos() as i128),
    };
    // Rounded down on both sides of the origin, so that a clock moved by exactly N ms always
    // reads N ms later (a budget due in 2 s is due after an advance of 2 s); the low 32 bits
    // are the wrapping time.
    nanos.div_euclid(1_000_000) as u32
}

/// A session's budget for commands other than messages ([`natter_core::Command::cost`]): a
/// generic cell rate algorithm, one timestamp (4 bytes per connection). A burst of
/// [`CommandBudget::BURST_SECONDS`] seconds' worth goes at once; beyond it each command waits
/// until the session has earned it, as IRC servers' "fake lag" does: a client that asks for
/// the whole server's user list in a loop gets it once every two seconds, and nothing is
/// refused.
#[derive(Debug, Clone, Copy)]
pub struct CommandBudget {
    /// When the session will have paid for everything it asked so far (ms on [`clock_ms`]);
    /// in the past when it owes nothing.
    paid_at: u32,
}

impl Default for CommandBudget {
    /// A session that owes nothing: paid up now (not at the clock's 0, which a clock counting
    /// back from its origin would read as a debt).
    fn default() -> Self {
        Self { paid_at: clock_ms() }
    }
}

impl CommandBudget {
    /// Seconds' worth of units a session may spend at once.
    pub const BURST_SECONDS: u32 = 10;

    /// Charges `cost` units to a session that earns `rate` per second (0: no budget).
    /// `None`: within the budget. `Some(owed)`: over it by that much; the session's next
    /// command must wait until [`CommandBudget::due`].
    pub fn charge(&mut self, cost: u32, rate: u16) -> Option<Duration> {
        if cost == 0 || rate == 0 {
            return None;
        }
        let now = clock_ms();
        // The debt already owed, if `paid_at` is ahead of now (wrapping: never more than a
        // minute ahead, so a huge difference means it is in the past).
        let owed = self.paid_at.wrapping_sub(now);
        let owed = if owed > 60_000 { 0 } else { owed };
        let owed = owed + cost * 1000 / u32::from(rate);
        self.paid_at = now.wrapping_add(owed);
        let tolerance = Self::BURST_SECONDS * 1000;
        (owed > tolerance).then(|| Duration::from_millis(u64::from(owed - tolerance)))
    }

    /// How long until the session is back within its budget: zero once its next command may
    /// go. (Ask this, not whether [`CommandBudget::due`] has passed: `due` counts from the
    /// moment it is called, so a time taken before it is always earlier.)
    pub fn wait_left(&self) -> Duration {
        let at = self.paid_at.wrapping_sub(Self::BURST_SECONDS * 1000);
        let ahead = at.wrapping_sub(clock_ms());
        let ahead = if ahead > 60_000 { 0 } else { ahead };
        Duration::from_millis(u64::from(ahead))
    }

    /// When the session is back within its budget: its next command may go then.
    pub fn due(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.wait_left()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_a_burst_then_refuses_then_refills() {
        let mut r = RateLimiter::new(3);
        assert!(r.allow(1, 3) && r.allow(1, 3) && r.allow(1, 3));
        assert!(!r.allow(1, 3));
        assert_eq!(r.excess(), 1);
        assert!(!r.ready(1, 3));
        // A token a second, never more than the burst.
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(!r.ready(1, 3));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(r.allow(1, 3) && !r.allow(1, 3));
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!((0..3).all(|_| r.allow(1, 3)) && !r.allow(1, 3));
        let mut unused = RateLimiter::new(1);
        assert!(unused.ready(1, 1) && unused.ready(1, 1) && unused.allow(1, 1) && !unused.ready(1, 1));
        let mut unlimited = RateLimiter::new(1);
        assert!((0..10_000).all(|_| unlimited.allow(0, 1)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_command_budget_lets_a_burst_through_then_paces_it() {
        let mut budget = CommandBudget::default();
        // Ten units a second, a hundred at once: five 20-unit commands.
        assert!((0..5).all(|_| budget.charge(20, 10).is_none()));
        assert_eq!(budget.charge(20, 10), Some(Duration::from_secs(2)));
        // Waiting is paying: after the wait, the next one is over by its own cost only.
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(budget.charge(20, 10), Some(Duration::from_secs(2)));
        // Free commands never wait, nor anything without a budget; a long quiet spell
        // restores the whole burst.
        assert_eq!(budget.charge(0, 10), None);
        assert!((0..100).all(|_| budget.charge(20, 0).is_none()));
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!((0..5).all(|_| budget.charge(20, 10).is_none()));
    }

    #[test]
    fn strikes_close_after_the_limit() {
        let mut s = Strikes::default();
        assert!((0..Strikes::LIMIT).all(|_| !s.hit()));
        assert!(s.hit());
    }
}
