//! Log lines that a flood cannot multiply: at most one per reason per interval, telling how
//! many like it were left out. A forged datagram costs nothing to send, nor does a connection
//! refused or an accept that fails while descriptors run out (546 lines for 1,100 silent
//! connections, when every failed accept was logged); a log line must not be what they buy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// One line per reason per this long at most, unless told otherwise.
const INTERVAL: Duration = Duration::from_secs(10);

/// The last time one reason was logged, and how many lines it has held back since.
pub(crate) struct ThrottledLog {
    every: Duration,
    start: Instant,
    /// Milliseconds since `start` of the last line, plus one (0: never logged).
    last: AtomicU64,
    held_back: AtomicU64,
}

impl ThrottledLog {
    /// A reason never logged yet, logged at most once per ten seconds.
    pub fn new() -> Self {
        Self::every(INTERVAL)
    }

    /// A reason never logged yet, logged at most once per `every`.
    pub fn every(every: Duration) -> Self {
        Self { every, start: Instant::now(), last: AtomicU64::new(0), held_back: AtomicU64::new(0) }
    }

    /// `Some(n)` when a line may be written now (`n` lines were held back since the last
    /// one); `None` when this one is held back.
    pub fn ready(&self) -> Option<u64> {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
        let last = self.last.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= self.every.as_millis() as u64;
        if due && self.last.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            return Some(self.held_back.swap(0, Ordering::Relaxed));
        }
        self.held_back.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_line_per_interval_with_the_count_of_the_rest() {
        let log = ThrottledLog::new();
        assert_eq!(log.ready(), Some(0));
        assert!((0..1000).all(|_| log.ready().is_none()));
        tokio::time::advance(INTERVAL).await;
        assert_eq!(log.ready(), Some(1000));
        assert_eq!(log.ready(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slower_reason_waits_its_own_interval() {
        let log = ThrottledLog::every(Duration::from_secs(60));
        assert_eq!(log.ready(), Some(0));
        // A failed accept every 50 ms (the accept loop's pause) for 55 s: not one more line.
        for _ in 0..1100 {
            tokio::time::advance(Duration::from_millis(50)).await;
            assert_eq!(log.ready(), None);
        }
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(log.ready(), Some(1100));
    }
}
