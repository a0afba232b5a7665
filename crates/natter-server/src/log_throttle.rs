//! Warnings a peer can cause at will (accept failures when descriptors run out, refused
//! connections) are logged at most once a minute each, with a count of those left out: a
//! flood of them must not become a flood of log lines (546 lines for 1,100 connections, when
//! every failed accept was logged).

use std::time::Duration;
use tokio::time::Instant;

/// How often a throttled line is logged at most.
pub const EVERY: Duration = Duration::from_secs(60);

/// One kind of throttled log line.
#[derive(Debug, Default)]
pub struct Throttle {
    last: Option<Instant>,
    /// Occurrences not logged since the last line.
    left_out: u64,
}

impl Throttle {
    /// Counts one occurrence at `now`; `Some(n)` when it is to be logged, `n` being how many
    /// were left out since the last line.
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(at) if now.duration_since(at) < EVERY => {
                self.left_out += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.left_out))
            }
        }
    }

    /// Starts afresh: the next occurrence is logged at once.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn once_a_minute_with_the_count_left_out() {
        let mut t = Throttle::default();
        assert_eq!(t.hit(Instant::now()), Some(0), "the first is logged");
        // A failed accept every 50 ms (the accept loop's pause) for 25 s: not one more line.
        for _ in 0..500 {
            tokio::time::advance(Duration::from_millis(50)).await;
            assert_eq!(t.hit(Instant::now()), None);
        }
        tokio::time::advance(EVERY).await;
        assert_eq!(t.hit(Instant::now()), Some(500), "the next line says how many were left out");
        assert_eq!(t.hit(Instant::now()), None);
        t.reset();
        assert_eq!(t.hit(Instant::now()), Some(0));
    }
}
