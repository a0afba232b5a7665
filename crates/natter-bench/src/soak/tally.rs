//! What one keeping-up reader should have received, and what it did.
//!
//! Every client numbers the messages it sends 0, 1, 2, ... Every member of a room was in it
//! before the first message, so it should see each other member's numbers once and in order:
//! the server keeps the order of one sender's messages (a single connection), but not across
//! senders, whose messages may cross on their way in, so order is checked per sender. A number
//! beyond the next expected one means the ones in between were lost; that shows as soon as the
//! later message arrives, while the soak runs, not only at its end. What never came at all
//! (the tail) is found at the end against the number of messages each member sent.

/// Counts of one reader, or of all of them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Messages received in order, each counted once.
    pub unique: u64,
    /// Messages that arrived with a number already passed: duplicates, or reordered.
    pub out_of_order: u64,
    /// Messages found missing so far (gaps behind a later message of the same sender).
    pub gaps: u64,
}

/// One reader's account of its room.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// For each member of the room (by its place in the room), the number expected next.
    next: Vec<u32>,
    /// What was received.
    pub counts: Counts,
}

impl Tally {
    /// An account for a room of `members` members.
    pub fn new(members: usize) -> Self {
        Self { next: vec![0; members], counts: Counts::default() }
    }

    /// Records message `seq` of the member at place `member` of the room; returns how many
    /// messages this arrival shows were lost, or `None` when the room has no such member.
    #[inline]
    pub fn record(&mut self, member: usize, seq: u32) -> Option<u64> {
        let next = self.next.get_mut(member)?;
        if seq < *next {
            self.counts.out_of_order += 1;
            return Some(0);
        }
        let lost = u64::from(seq - *next);
        *next = seq + 1;
        self.counts.unique += 1;
        self.counts.gaps += lost;
        Some(lost)
    }

    /// Messages this reader should have received once the room's members sent `room_sent`
    /// messages, `own_sent` of them its own (the server does not echo them).
    pub fn expected(room_sent: u64, own_sent: u64) -> u64 {
        room_sent.saturating_sub(own_sent)
    }

    /// Losses at the end: the messages expected but never received (gaps and the tail).
    /// Out-of-order arrivals do not make up for them: whether they were duplicates or late,
    /// they are reported on their own.
    pub fn lost(&self, room_sent: u64, own_sent: u64) -> u64 {
        Self::expected(room_sent, own_sent).saturating_sub(self.counts.unique)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three members; this reader is member 1 and gets members 0 and 2's messages.
    #[test]
    fn everything_in_order() {
        let mut t = Tally::new(3);
        for seq in 0..4 {
            assert_eq!(t.record(0, seq), Some(0));
            assert_eq!(t.record(2, seq), Some(0));
        }
        assert_eq!(t.counts, Counts { unique: 8, out_of_order: 0, gaps: 0 });
        // The room sent 8 + 3 of ours.
        assert_eq!(Tally::expected(11, 3), 8);
        assert_eq!(t.lost(11, 3), 0);
    }

    #[test]
    fn senders_may_interleave_but_each_keeps_its_order() {
        let mut t = Tally::new(2);
        assert_eq!(t.record(1, 0), Some(0));
        assert_eq!(t.record(0, 0), Some(0));
        assert_eq!(t.record(0, 1), Some(0));
        assert_eq!(t.record(1, 1), Some(0));
        assert_eq!(t.counts.out_of_order, 0);
    }

    #[test]
    fn gaps_are_found_when_a_later_message_arrives() {
        let mut t = Tally::new(2);
        assert_eq!(t.record(0, 0), Some(0));
        // 1, 2 and 3 missing.
        assert_eq!(t.record(0, 4), Some(3));
        assert_eq!(t.counts.gaps, 3);
        // A late or repeated message is counted apart and does not undo the loss.
        assert_eq!(t.record(0, 2), Some(0));
        assert_eq!(t.record(0, 4), Some(0));
        assert_eq!(t.counts.out_of_order, 2);
        // Member 0 sent 7 in all, 5 and 6 never came: of the 7 expected, 2 arrived.
        assert_eq!(t.lost(7, 0), 5);
    }

    #[test]
    fn strangers_and_nothing_received() {
        let mut t = Tally::new(2);
        assert_eq!(t.record(2, 0), None);
        assert_eq!(t.counts, Counts::default());
        assert_eq!(t.lost(0, 0), 0);
        assert_eq!(t.lost(10, 3), 7);
        // More own sends than the room counted cannot happen; it must not underflow.
        assert_eq!(t.lost(1, 3), 0);
    }
}
