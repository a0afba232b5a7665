//! The text of a bench message: who sent it, its sequence number and when, in plain ASCII.
//!
//! Receivers must learn the send time and the sender without a JSON parse, so the text is
//! `TAG PHASE SENDER SEQ SENT_NS` (the numbers fixed-width, in 64 digits: 3, 4 and 8 of them)
//! padded with dots to the requested size. The tag is unique
//! per run, so stray messages from other people or an earlier run are told apart, and the
//! text never needs JSON or IRC escaping.

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

/// Digits of the fixed-width numbers: 64 symbols that need no escaping in JSON or IRC.
const DIGITS: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";

/// Widths of the numbers, in digits of [`DIGITS`] (6 bits each).
const SENDER_WIDTH: usize = 3;
const SEQ_WIDTH: usize = 4;
const TIME_WIDTH: usize = 8;

/// Most senders a payload can name.
pub const MAX_SENDERS: u32 = (1 << (6 * SENDER_WIDTH)) - 1;
/// Most messages per sender a payload can number.
pub const MAX_SEQ: u32 = (1 << (6 * SEQ_WIDTH)) - 1;

/// The value of each byte as a digit, or 64 for a byte that is none.
const VALUES: [u8; 256] = {
    let mut values = [64u8; 256];
    let mut i = 0;
    while i < 64 {
        values[DIGITS[i] as usize] = i as u8;
        i += 1;
    }
    values
};

fn push_number(buf: &mut Vec<u8>, n: u64, width: usize) {
    for i in (0..width).rev() {
        buf.push(DIGITS[((n >> (6 * i)) & 63) as usize]);
    }
}

/// Writes a payload of at least `size` bytes (more only if the fields need it) into `out`,
/// replacing its content. Numbers beyond their width wrap (callers keep within
/// [`MAX_SENDERS`] and [`MAX_SEQ`]; send times reach the width after 78 hours).
pub fn encode(out: &mut String, tag: &str, p: &Payload, size: usize) {
    let phase = match p.phase {
        Phase::Warmup => b'w',
        Phase::Measured => b'm',
    };
    let mut buf = std::mem::take(out).into_bytes();
    buf.clear();
    buf.extend_from_slice(tag.as_bytes());
    buf.extend_from_slice(&[b' ', phase, b' ']);
    push_number(&mut buf, u64::from(p.sender), SENDER_WIDTH);
    buf.push(b' ');
    push_number(&mut buf, u64::from(p.seq), SEQ_WIDTH);
    buf.push(b' ');
    push_number(&mut buf, p.sent_ns, TIME_WIDTH);
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
    let (sender, rest) = number(rest, SENDER_WIDTH)?;
    let (seq, rest) = number(rest, SEQ_WIDTH)?;
    let (sent_ns, _) = number(rest, TIME_WIDTH)?;
    Some(Payload { phase, sender: sender as u32, seq: seq as u32, sent_ns })
}

/// Reads a number of exactly `width` digits followed by a space, the end of the text, or the
/// quote that ends a JSON string (receivers hand over the text without searching for its
/// end). Fixed widths keep this free of data-dependent branches: it runs once per field per
/// delivery, and decimal digit-counting loops mispredicted their way to a fifth of the bench's
/// time.
#[inline]
fn number(s: &[u8], width: usize) -> Option<(u64, &[u8])> {
    let digits = s.get(..width)?;
    let mut n = 0u64;
    let mut bad = 0u8;
    for &c in digits {
        let value = VALUES[usize::from(c)];
        bad |= value;
        n = n << 6 | u64::from(value & 63);
    }
    if bad & 64 != 0 {
        return None;
    }
    match &s[width..] {
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
        encode(&mut s, "nbx1", &p, 40);
        assert_eq!(s.len(), 40);
        assert!(s.starts_with("nbx1 m 003 000H 0PDFviaZ ...."), "{s}");
        assert_eq!(decode(s.as_bytes(), b"nbx1"), Some(p));
        // Too small a size: the fields win, no padding.
        encode(&mut s, "nbx1", &Payload { phase: Phase::Warmup, ..p }, 4);
        assert_eq!(s, "nbx1 w 003 000H 0PDFviaZ");
        assert_eq!(decode(s.as_bytes(), b"nbx1").unwrap().phase, Phase::Warmup);
        let max =
            Payload { phase: Phase::Measured, sender: MAX_SENDERS, seq: MAX_SEQ, sent_ns: (1 << 48) - 1 };
        encode(&mut s, "t", &max, 0);
        assert_eq!(s, "t m ___ ____ ________");
        assert_eq!(decode(s.as_bytes(), b"t"), Some(max));
    }

    #[test]
    fn rejects_foreign_text() {
        assert_eq!(decode(b"hello there", b"nbx1"), None);
        assert_eq!(decode(b"nbx2 m 001 0002 00000003", b"nbx1"), None);
        assert_eq!(decode(b"nbx1 m 001 0002", b"nbx1"), None);
        assert_eq!(decode(b"nbx1 m 001 0002 0000003", b"nbx1"), None);
        assert_eq!(decode(b"nbx1 m 001 0002 00000003x", b"nbx1"), None);
        assert_eq!(decode(b"nbx1 m 00. 0002 00000003", b"nbx1"), None);
        assert_eq!(decode(b"nbx1 m 001 00\xc3\xa9 00000003", b"nbx1"), None);
        assert_eq!(decode(b"nbx1 q 001 0002 00000003", b"nbx1"), None);
        assert_eq!(decode(b"nbx1 m 1 2 3", b"nbx1"), None);
        // As sliced out of a JSON frame: the text runs on to the end of the line.
        let p = decode(br#"nbx1 m 001 0002 00000003","mid":4}"#, b"nbx1").unwrap();
        assert_eq!((p.sender, p.seq, p.sent_ns), (1, 2, 3));
    }
}
