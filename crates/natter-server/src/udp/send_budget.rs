//! The server's UDP send rate, in bytes per second for all members together.
//!
//! Whatever the caps on members and addresses, a server with many members (or a bug) must not
//! blast: beyond the budget, members wait their turn (their outboxes then fill, and one that
//! falls too far behind is cut as any slow reader is), and the replies to addresses that are not
//! members are dropped. Each member task takes from the budget as it sends, so the budget is
//! one atomic timestamp (the generic cell rate algorithm), not a lock.

use crate::throttled_log::ThrottledLog;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// How much sending may run ahead of the rate at once.
const BURST: Duration = Duration::from_millis(250);

/// The shared budget of one UDP socket.
pub(crate) struct SendBudget {
    /// Nanoseconds since `start` at which every byte sent so far is paid for.
    paid_until: AtomicU64,
    /// Bytes per second; 0 = unlimited.
    rate: u64,
    start: Instant,
    /// Says (once per ten seconds) that members are waiting.
    full: ThrottledLog,
}

impl SendBudget {
    /// A budget of `rate` bytes per second; 0 = unlimited.
    pub fn new(rate: u64) -> Self {
        Self { paid_until: AtomicU64::new(0), rate, start: Instant::now(), full: ThrottledLog::new() }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn cost(&self, bytes: usize) -> u64 {
        let nanos =
            u128::try_from(bytes).unwrap_or(u128::MAX).saturating_mul(1_000_000_000) / u128::from(self.rate);
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }

    /// Books `bytes` and says how long to wait before sending them (zero within the budget).
    /// A member calls this for each datagram: waiting is how the budget is kept.
    pub fn book(&self, bytes: usize) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        let cost = self.cost(bytes);
        let now = self.now();
        let burst = BURST.as_nanos() as u64;
        let mut current = self.paid_until.load(Ordering::Relaxed);
        loop {
            let next = current.max(now).saturating_add(cost);
            match self.paid_until.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    let wait = Duration::from_nanos(next.saturating_sub(now).saturating_sub(burst));
                    if !wait.is_zero()
                        && let Some(held_back) = self.full.ready()
                    {
                        tracing::warn!(
                            bytes_per_second = self.rate,
                            held_back,
                            "UDP send rate reached: members wait"
                        );
                    }
                    return wait;
                }
                Err(seen) => current = seen,
            }
        }
    }

    /// Books `bytes` only if they can go now; false means do not send them. For replies that
    /// may be dropped (to addresses that are not members).
    pub fn try_spend(&self, bytes: usize) -> bool {
        if self.rate == 0 {
            return true;
        }
        let cost = self.cost(bytes);
        let now = self.now();
        let burst = BURST.as_nanos() as u64;
        let mut current = self.paid_until.load(Ordering::Relaxed);
        loop {
            let next = current.max(now).saturating_add(cost);
            if next - now > burst {
                return false;
            }
            match self.paid_until.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn members_wait_beyond_the_budget_and_replies_are_dropped() {
        // 100 KB/s: the burst is 25 KB.
        let budget = SendBudget::new(100_000);
        assert!((0..25).all(|_| budget.try_spend(1000)));
        assert!(!budget.try_spend(1000), "the burst is spent");
        assert_eq!(budget.book(1000), Duration::from_millis(10), "a member waits for its turn");
        assert_eq!(budget.book(10_000), Duration::from_millis(110), "and the next one behind it");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(budget.try_spend(1000));
        let unlimited = SendBudget::new(0);
        assert!((0..10_000).all(|_| unlimited.try_spend(65_000) && unlimited.book(65_000).is_zero()));
    }
}
