//! Bounded line framing over a byte stream.
//!
//! TCP hands us bytes in arbitrary pieces: half a line, or three lines and a half. A
//! [`LineBuffer`] accumulates them and yields complete lines, never depending on read
//! boundaries, and never growing beyond its limit: an oversized line is reported once and its
//! remaining bytes are skipped up to the next newline, so the session can continue.

/// One result of [`LineBuffer::next_line`].
#[derive(Debug, PartialEq, Eq)]
pub enum LineEvent<'a> {
    /// A complete line without its terminator (`\n` or `\r\n`).
    Line(&'a [u8]),
    /// A line exceeded the limit; its bytes were dropped. Carries the limit, for the error text.
    TooLong(usize),
}

/// Accumulates stream bytes and splits them into lines of at most `max` bytes.
#[derive(Debug)]
pub struct LineBuffer {
    buf: Vec<u8>,
    /// Offset of the first byte not yet handed out.
    start: usize,
    /// Bytes before this offset (relative to `start`) are known to hold no newline.
    scanned: usize,
    max: usize,
    /// True while dropping the rest of an oversized line.
    discarding: bool,
}

impl LineBuffer {
    /// Creates an empty buffer that accepts lines up to `max` bytes (terminator excluded).
    pub fn new(max: usize) -> Self {
        Self { buf: Vec::new(), start: 0, scanned: 0, max, discarding: false }
    }

    /// Appends bytes received from the peer.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            self.scanned = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Appends bytes that `fill` writes at the end of the buffer, after reserving at least
    /// `room` bytes of spare capacity: a socket read lands here directly, with no zeroed
    /// intermediate buffer and no second copy. `fill` must only append, and returns how many
    /// bytes it appended (0 at end of stream).
    pub fn append_with<E>(
        &mut self,
        room: usize,
        fill: impl FnOnce(&mut Vec<u8>) -> Result<usize, E>,
    ) -> Result<usize, E> {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            self.scanned = 0;
        } else if self.start > 0 && self.buf.capacity() - self.buf.len() < room {
            // Move the pending partial line to the front instead of growing the buffer.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.reserve(room);
        let filled = fill(&mut self.buf);
        // A read that found nothing (a stale readiness, the end of the stream, an error) gives
        // the room back: an idle connection must not keep it.
        self.shrink_when_idle();
        filled
    }

    /// True when no partial line is pending.
    pub fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }

    /// True when the buffer holds nothing and is in the middle of nothing (no oversized line
    /// being dropped): it then behaves as `LineBuffer::new(self.max())` does, so a holder
    /// that keeps many idle buffers may keep that instead.
    pub fn is_fresh(&self) -> bool {
        self.is_empty() && !self.discarding
    }

    /// The longest line accepted, in bytes.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The bytes received and not yet handed out; used to recognise a protocol by its first
    /// bytes.
    pub fn peek(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Number of bytes of the pending partial line.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Releases memory once everything was consumed, so idle sessions stay small.
    pub fn shrink_when_idle(&mut self) {
        if self.is_empty() {
            self.buf = Vec::new();
            self.start = 0;
            self.scanned = 0;
        }
    }

    /// Returns the next complete line, a [`LineEvent::TooLong`] report, or `None` when more
    /// bytes are needed.
    pub fn next_line(&mut self) -> Option<LineEvent<'_>> {
        loop {
            let pending = &self.buf[self.start..];
            let found = pending[self.scanned..].iter().position(|&b| b == b'\n');
            match found {
                Some(pos) => {
                    let end = self.scanned + pos;
                    let line_start = self.start;
                    self.start += end + 1;
                    self.scanned = 0;
                    if self.discarding {
                        self.discarding = false;
                        continue;
                    }
                    let mut line = &self.buf[line_start..line_start + end];
                    if let [rest @ .., b'\r'] = line {
                        line = rest;
                    }
                    if line.len() > self.max {
                        return Some(LineEvent::TooLong(self.max));
                    }
                    return Some(LineEvent::Line(line));
                }
                None => {
                    self.scanned = pending.len();
                    // A line longer than the limit cannot become valid: drop what we hold and
                    // skip to the next newline. `+ 1` leaves room for a trailing `\r`.
                    if pending.len() > self.max + 1 {
                        self.buf.truncate(self.start);
                        self.scanned = 0;
                        let was_discarding = self.discarding;
                        self.discarding = true;
                        if !was_discarding {
                            return Some(LineEvent::TooLong(self.max));
                        }
                    }
                    return None;
                }
            }
        }
    }

    /// Hands out the pending partial line as if it were terminated; used when a peer that
    /// never sends newlines has paused (one write per message, as simple socket clients do).
    pub fn take_partial(&mut self) -> Option<&[u8]> {
        if self.is_empty() {
            return None;
        }
        let line_start = self.start;
        self.start = self.buf.len();
        self.scanned = 0;
        if self.discarding {
            self.discarding = false;
            return None;
        }
        let mut line = &self.buf[line_start..];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(lb: &mut LineBuffer) -> Vec<Result<Vec<u8>, usize>> {
        let mut out = Vec::new();
        while let Some(ev) = lb.next_line() {
            out.push(match ev {
                LineEvent::Line(l) => Ok(l.to_vec()),
                LineEvent::TooLong(n) => Err(n),
            });
        }
        out
    }

    #[test]
    fn append_with_keeps_the_pending_partial_line_when_it_compacts() {
        let mut lb = LineBuffer::new(100);
        let fill = |bytes: &'static [u8]| {
            move |buf: &mut Vec<u8>| -> Result<usize, ()> {
                buf.extend_from_slice(bytes);
                Ok(bytes.len())
            }
        };
        assert_eq!(lb.append_with(8, fill(b"one\ntw")), Ok(6));
        assert_eq!(drain(&mut lb), vec![Ok(b"one".to_vec())]);
        // Asking for more room than is spare moves "tw" to the front; the line stays whole.
        assert_eq!(lb.append_with(4096, fill(b"o\nthree\n")), Ok(8));
        assert_eq!(drain(&mut lb), vec![Ok(b"two".to_vec()), Ok(b"three".to_vec())]);
        assert!(lb.is_empty());
        assert_eq!(lb.append_with(16, fill(b"")), Ok(0));
        // Nothing pending and nothing read: the reserved room is given back.
        assert_eq!(lb.buf.capacity(), 0);
        assert_eq!(lb.append_with(16, |_: &mut Vec<u8>| Err::<usize, ()>(())), Err(()));
        assert_eq!(lb.buf.capacity(), 0);
    }

    #[test]
    fn splits_many_lines_in_one_read_and_strips_crlf() {
        let mut lb = LineBuffer::new(100);
        lb.extend(b"one\r\ntwo\nthr");
        assert_eq!(drain(&mut lb), vec![Ok(b"one".to_vec()), Ok(b"two".to_vec())]);
        lb.extend(b"ee\n");
        assert_eq!(drain(&mut lb), vec![Ok(b"three".to_vec())]);
        assert!(lb.is_empty());
    }

    #[test]
    fn oversized_line_is_reported_once_and_skipped() {
        let mut lb = LineBuffer::new(4);
        lb.extend(b"abcdefgh");
        assert_eq!(drain(&mut lb), vec![Err(4)]);
        lb.extend(b"ijkl");
        assert_eq!(drain(&mut lb), vec![]);
        lb.extend(b"mn\nok\n");
        assert_eq!(drain(&mut lb), vec![Ok(b"ok".to_vec())]);
    }

    #[test]
    fn a_buffer_is_fresh_only_when_nothing_is_pending_or_being_dropped() {
        let mut lb = LineBuffer::new(4);
        assert!(lb.is_fresh());
        lb.extend(b"ab");
        assert!(!lb.is_fresh(), "a partial line is pending");
        lb.extend(
            b"
",
        );
        drain(&mut lb);
        assert!(lb.is_fresh());
        lb.extend(b"abcdefgh");
        assert_eq!(drain(&mut lb), vec![Err(4)]);
        assert!(lb.is_empty());
        assert!(!lb.is_fresh(), "the rest of an oversized line is still to be dropped");
        lb.extend(
            b"ij
",
        );
        drain(&mut lb);
        assert!(lb.is_fresh());
        assert_eq!(lb.max(), 4);
    }

    #[test]
    fn oversized_complete_line_is_reported() {
        let mut lb = LineBuffer::new(3);
        lb.extend(b"abcd\nab\n");
        assert_eq!(drain(&mut lb), vec![Err(3), Ok(b"ab".to_vec())]);
    }

    #[test]
    fn partial_line_can_be_taken_after_a_pause() {
        let mut lb = LineBuffer::new(10);
        lb.extend(b"hi there");
        assert_eq!(drain(&mut lb), vec![]);
        assert_eq!(lb.take_partial(), Some(&b"hi there"[..]));
        assert!(lb.is_empty());
        assert_eq!(lb.take_partial(), None);
    }

    proptest::proptest! {
        /// However the stream is cut into reads, the same lines come out.
        #[test]
        fn framing_is_independent_of_read_boundaries(
            lines in proptest::collection::vec("[a-z ]{0,20}", 0..20),
            cuts in proptest::collection::vec(0usize..400, 0..10),
        ) {
            let stream: Vec<u8> = lines.iter().flat_map(|l| format!("{l}\n").into_bytes()).collect();
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= stream.len()).collect();
            cuts.push(0);
            cuts.push(stream.len());
            cuts.sort_unstable();
            let mut lb = LineBuffer::new(64);
            let mut got = Vec::new();
            for w in cuts.windows(2) {
                lb.extend(&stream[w[0]..w[1]]);
                for ev in drain(&mut lb) {
                    got.push(String::from_utf8(ev.unwrap()).unwrap());
                }
            }
            proptest::prop_assert_eq!(got, lines);
        }

        #[test]
        fn never_panics_and_never_exceeds_limit(chunks: Vec<Vec<u8>>) {
            let mut lb = LineBuffer::new(16);
            for c in chunks {
                lb.extend(&c);
                while let Some(ev) = lb.next_line() {
                    if let LineEvent::Line(l) = ev { proptest::prop_assert!(l.len() <= 16); }
                }
                proptest::prop_assert!(lb.pending() <= 17);
            }
        }
    }
}
