//! The text of a bench message: who sent it, its sequence number and when, in plain ASCII.
//!
//! Receivers must learn the send time and the sender without a JSON parse, so the text is
//! `TAG PHASE SENDER SEQ SENT_NS` padded with dots to the requested size. The tag is unique
//! per run, so stray messages from other people or an earlier run are told apart, and the
//! text never needs JSON or IRC escaping.

use std::io::Write as _;

/// Whether a message belongs to the warm-up or the measured phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Sent before measuring, to fill caches and grow buffers; not counted in the results.
    Warmup,
    /// Counted in the results.
    Measured,
}

/// A decoded bench payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload {
    /// Phase the message was sent in.
    pub phase: Phase,
    /// Index of the sending client (0-based).
    pub sender: u32,
    /// Sequence number within the sender's phase (0-based).
    pub seq: u32,
    /// Send time in nanoseconds since the bench started (one clock for all connections).
    pub sent_ns: u64,
}

/// Writes a payload of at least `size` bytes (more only if the fields need it) into `out`,
/// replacing its content.
pub fn encode(out: &mut String, tag: &str, p: &Payload, size: usize) {
    out.clear();
    let phase = match p.phase {
        Phase::Warmup => 'w',
        Phase::Measured => 'm',
    };
    // Writing into a String cannot fail.
    let mut buf = std::mem::take(out).into_bytes();
    let _ = write!(buf, "{tag} {phase} {} {} {}", p.sender, p.seq, p.sent_ns);
    if buf.len() < size {
        buf.push(b' ');
        buf.resize(size.max(buf.len()), b'.');
    }
    *out = String::from_utf8(buf).expect("payloads are ASCII");
}

/// Decodes a payload carrying `tag`; `None` for any other text (someone else's message).
pub fn decode(text: &[u8], tag: &[u8]) -> Option<Payload> {
    let rest = text.strip_prefix(tag)?.strip_prefix(b" ")?;
    let (phase, rest) = match rest {
        [b'w', b' ', rest @ ..] => (Phase::Warmup, rest),
        [b'm', b' ', rest @ ..] => (Phase::Measured, rest),
        _ => return None,
    };
    let (sender, rest) = number(rest)?;
    let (seq, rest) = number(rest)?;
    let (sent_ns, _) = number(rest)?;
    Some(Payload { phase, sender: u32::try_from(sender).ok()?, seq: u32::try_from(seq).ok()?, sent_ns })
}

/// Parses a decimal number followed by a space, the end of the text, or the quote that ends
/// a JSON string (receivers hand over the text without searching for its end). At most 19
/// digits, so that the sum cannot overflow and needs no checks (this runs per delivery).
#[inline]
fn number(s: &[u8]) -> Option<(u64, &[u8])> {
    let digits = s.iter().take(20).take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let n = s[..digits].iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    match &s[digits..] {
        [] => Some((n, &[])),
        [b' ', rest @ ..] => Some((n, rest)),
        [b'"', ..] => Some((n, &[])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_pads() {
        let p = Payload { phase: Phase::Measured, sender: 3, seq: 17, sent_ns: 1_732_212_345_123 };
        let mut s = String::new();
        encode(&mut s, "nbx1", &p, 64);
        assert_eq!(s.len(), 64);
        assert!(s.starts_with("nbx1 m 3 17 1732212345123 ...."));
        assert_eq!(decode(s.as_bytes(), b"nbx1"), Some(p));
        // Too small a size: the fields win, no padding.
        encode(&mut s, "nbx1", &Payload { phase: Phase::Warmup, ..p }, 4);
        assert_eq!(s, "nbx1 w 3 17 1732212345123");
        assert_eq!(decode(s.as_bytes(), b"nbx1").unwrap().phase, Phase::Warmup);
    }

    #[test]
    fn rejects_foreign_text() {
        assert_eq!(decode(b"hello there", b"nbx1"), None);
        assert_eq!(decode(b"nbx2 m 1 2 3", b"nbx1"), None);
        assert_eq!(decode(b"nbx1 m 1 2", b"nbx1"), None);
        assert_eq!(decode(b"nbx1 m 1 2 3x", b"nbx1"), None);
        assert_eq!(decode(b"nbx1 q 1 2 3", b"nbx1"), None);
        assert_eq!(decode(b"nbx1 m 1 99999999999 3", b"nbx1"), None);
        assert_eq!(decode(b"nbx1 m 1 2 99999999999999999999999", b"nbx1"), None);
        // As sliced out of a JSON frame: the text runs on to the end of the line.
        let p = decode(br#"nbx1 m 1 2 3","mid":4}"#, b"nbx1").unwrap();
        assert_eq!((p.sender, p.seq, p.sent_ns), (1, 2, 3));
    }
}
