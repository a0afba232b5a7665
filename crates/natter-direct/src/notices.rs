//! Rate-limited notices about strangers, pure (time is passed in).
//!
//! A listener tells its user about every connection or datagram it turns away (a scanner, a
//! stray netcat, an old version), one line each, because an unexpected visitor is worth
//! knowing about. A flood of them must not bury the address and code on the screen, nor
//! make the listener wait on a slow screen: after a short burst, lines are let through at a
//! slow steady rate, and the next line shown (or a summary line) says how many were hidden.

use std::time::{Duration, Instant};

/// Lines shown at once before the limit applies.
pub const NOTICE_BURST: u32 = 5;
/// After the burst, one more line per this period.
pub const NOTICE_EVERY: Duration = Duration::from_secs(5);

/// A token bucket over notice lines that counts what it holds back.
#[derive(Debug)]
pub struct NoticeLimiter {
    tokens: u32,
    refilled_at: Instant,
    hidden: u64,
}

impl NoticeLimiter {
    /// A full bucket: the first [`NOTICE_BURST`] notices are shown at once.
    pub fn new(now: Instant) -> Self {
        Self { tokens: NOTICE_BURST, refilled_at: now, hidden: 0 }
    }

    /// The line to show for `text` now, or `None` when it is held back (and counted). A line
    /// shown after some were held back says how many.
    pub fn admit(&mut self, now: Instant, text: &str) -> Option<String> {
        self.refill(now);
        if self.tokens == 0 {
            self.hidden += 1;
            return None;
        }
        self.tokens -= 1;
        Some(match std::mem::take(&mut self.hidden) {
            0 => text.to_string(),
            n => format!("{text} ({n} similar notices before this one were not shown)"),
        })
    }

    /// A last line counting the notices held back since the last one shown, if any; for when
    /// the listener stops, so the count is never lost.
    pub fn summary(&mut self) -> Option<String> {
        match std::mem::take(&mut self.hidden) {
            0 => None,
            n => Some(format!("{n} more notices about other connections were not shown")),
        }
    }

    fn refill(&mut self, now: Instant) {
        let periods = now.saturating_duration_since(self.refilled_at).as_nanos() / NOTICE_EVERY.as_nanos();
        if periods == 0 {
            return;
        }
        let periods = u32::try_from(periods).unwrap_or(u32::MAX);
        self.tokens = self.tokens.saturating_add(periods).min(NOTICE_BURST);
        // Whole periods only, so a steady trickle keeps its rate; a full bucket restarts now.
        self.refilled_at =
            if self.tokens == NOTICE_BURST { now } else { self.refilled_at + NOTICE_EVERY * periods };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_period_with_the_hidden_count() {
        let t0 = Instant::now();
        let mut n = NoticeLimiter::new(t0);
        for i in 0..NOTICE_BURST {
            assert_eq!(n.admit(t0, &format!("n{i}")), Some(format!("n{i}")));
        }
        assert_eq!(n.admit(t0, "held"), None);
        assert_eq!(n.admit(t0 + NOTICE_EVERY - Duration::from_millis(1), "held"), None);
        let shown = n.admit(t0 + NOTICE_EVERY, "next").unwrap();
        assert_eq!(shown, "next (2 similar notices before this one were not shown)");
        assert_eq!(n.admit(t0 + NOTICE_EVERY, "held"), None, "one per period");
        assert_eq!(n.summary().as_deref(), Some("1 more notices about other connections were not shown"));
        assert_eq!(n.summary(), None, "counted once");
    }

    #[test]
    fn a_quiet_spell_refills_the_burst_and_no_more() {
        let t0 = Instant::now();
        let mut n = NoticeLimiter::new(t0);
        for _ in 0..NOTICE_BURST {
            n.admit(t0, "x").unwrap();
        }
        let later = t0 + NOTICE_EVERY * 1000;
        for _ in 0..NOTICE_BURST {
            assert!(n.admit(later, "x").is_some());
        }
        assert_eq!(n.admit(later, "x"), None);
    }

    #[test]
    fn a_flood_shows_a_bounded_number_of_lines() {
        let t0 = Instant::now();
        let mut n = NoticeLimiter::new(t0);
        // 10,000 strangers over one minute: the burst plus one line per period.
        let shown = (0..10_000u32)
            .filter(|i| n.admit(t0 + Duration::from_millis(u64::from(*i) * 6), "x").is_some())
            .count();
        let periods = (Duration::from_secs(60).as_secs() / NOTICE_EVERY.as_secs()) as usize;
        assert!(shown <= NOTICE_BURST as usize + periods, "{shown} lines");
        assert!(shown >= periods, "{shown} lines");
    }
}
