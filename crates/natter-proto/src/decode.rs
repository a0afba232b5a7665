//! Text decoding for peers that do not promise UTF-8.
//!
//! The tutorials natter grew from mix Linux peers (UTF-8) with Windows peers (GBK). We accept
//! UTF-8 first, then GB18030 (a superset of GBK) when it decodes without a single error, and
//! fall back to lossy UTF-8 so that no byte sequence can fail or panic.
//!
//! A peer that sends GBK also reads GBK: [`PeerEncoding`] follows what a peer sends (or what
//! it asked for with `/encoding`, `--encoding`) and encodes what we answer accordingly.

use std::borrow::Cow;
use std::str::FromStr;

/// Which decoding [`decode_text_detect`] used: what a peer's bytes say about the encoding it
/// reads, so that answers can be encoded the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// Pure ASCII: valid in every encoding we speak, so it says nothing.
    Ascii,
    /// Valid UTF-8 with at least one non-ASCII character.
    Utf8,
    /// Not UTF-8, but clean GB18030 (GBK, as Windows peers send).
    Gb18030,
    /// Neither: decoded lossily; says nothing about the peer's encoding.
    Invalid,
}

/// Decodes bytes from a peer into text, never failing.
///
/// Returns borrowed text for valid UTF-8, the common case, so the hot path does not copy.
pub fn decode_text(bytes: &[u8]) -> Cow<'_, str> {
    decode_text_detect(bytes).0
}

/// Decodes like [`decode_text`] and also says which encoding the bytes were in, for front
/// ends that answer a peer in the encoding it sends ([`PeerEncoding::observe`]).
pub fn decode_text_detect(bytes: &[u8]) -> (Cow<'_, str>, Detected) {
    if let Ok(s) = std::str::from_utf8(bytes) {
        let detected = if s.is_ascii() { Detected::Ascii } else { Detected::Utf8 };
        return (Cow::Borrowed(s), detected);
    }
    let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
    if !had_errors {
        return (text, Detected::Gb18030);
    }
    (String::from_utf8_lossy(bytes), Detected::Invalid)
}

/// The encoding a peer asked to read (`/encoding`, `natter direct --encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncodingChoice {
    /// Follow the peer: GB18030 after it sends GBK, UTF-8 after it sends non-ASCII UTF-8.
    #[default]
    Auto,
    /// Always UTF-8.
    Utf8,
    /// Always GB18030 (a superset of GBK).
    Gbk,
}

/// The words `/encoding` and `--encoding` accept, for usage messages.
pub const ENCODING_WORDS: &str = "gbk|utf-8|auto";

impl FromStr for EncodingChoice {
    type Err = String;

    /// Accepts `gbk`, `gb18030`, `gb2312`, `utf-8`, `utf8`, `auto` in any case; the error
    /// names the accepted words.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "utf-8" | "utf8" => Ok(Self::Utf8),
            "gbk" | "gb18030" | "gb2312" | "cp936" => Ok(Self::Gbk),
            other => Err(format!("unknown encoding {other:?}; use one of {ENCODING_WORDS}")),
        }
    }
}

/// The encoding one peer reads, kept per session: starts as UTF-8, follows what the peer
/// sends in [`EncodingChoice::Auto`], or stays as set by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerEncoding {
    choice: EncodingChoice,
    gbk: bool,
}

impl PeerEncoding {
    /// A peer that starts with `choice` (GB18030 at once for [`EncodingChoice::Gbk`]).
    pub fn new(choice: EncodingChoice) -> Self {
        Self { choice, gbk: choice == EncodingChoice::Gbk }
    }

    /// Takes note of how the peer's last input was encoded: in auto mode, GBK input switches
    /// answers to GB18030 and non-ASCII UTF-8 back to UTF-8; ASCII and undecodable bytes
    /// change nothing. Returns true when the output encoding changed.
    pub fn observe(&mut self, detected: Detected) -> bool {
        if self.choice != EncodingChoice::Auto {
            return false;
        }
        let gbk = match detected {
            Detected::Gb18030 => true,
            Detected::Utf8 => false,
            Detected::Ascii | Detected::Invalid => return false,
        };
        let changed = gbk != self.gbk;
        self.gbk = gbk;
        changed
    }

    /// Sets the choice by hand. Auto keeps the current output encoding until the peer's
    /// input says otherwise.
    pub fn set(&mut self, choice: EncodingChoice) {
        self.choice = choice;
        match choice {
            EncodingChoice::Auto => {}
            EncodingChoice::Utf8 => self.gbk = false,
            EncodingChoice::Gbk => self.gbk = true,
        }
    }

    /// The choice as set (auto by default).
    pub fn choice(&self) -> EncodingChoice {
        self.choice
    }

    /// True when answers go out as GB18030, false for UTF-8.
    pub fn is_gbk(&self) -> bool {
        self.gbk
    }

    /// One line describing the setting, for the answer to `/encoding`.
    pub fn describe(&self) -> String {
        let now = if self.gbk { "GBK (GB18030)" } else { "UTF-8" };
        match self.choice {
            EncodingChoice::Auto => {
                format!("encoding is now auto, currently {now}: it follows what you send (GBK or UTF-8)")
            }
            _ => format!("encoding is now {now}, whatever you send (/encoding auto follows your input)"),
        }
    }

    /// `text` in this peer's encoding: borrowed as is for UTF-8, the common case.
    pub fn encode<'a>(&self, text: &'a str) -> Cow<'a, [u8]> {
        if self.gbk { encode_gb18030(text) } else { Cow::Borrowed(text.as_bytes()) }
    }
}

/// `text` in GB18030. Never fails or panics: GB18030 covers all of Unicode; the one code point
/// the WHATWG encoder leaves out (U+E5E5, private use) comes out as an HTML character
/// reference, as `encoding_rs` does. ASCII text (most server lines) is borrowed as is.
pub fn encode_gb18030(text: &str) -> Cow<'_, [u8]> {
    let (bytes, _, _) = encoding_rs::GB18030.encode(text);
    bytes
}

/// Where to cut GB18030 bytes so that the first part has at most `max` bytes and no character
/// is split: the largest character boundary not past `max`, found by scanning from the start
/// (GB18030 cannot be scanned backwards: trail bytes look like lead bytes). Returns 0 only when
/// the first character alone is longer than `max`. Any bytes are accepted: a malformed
/// sequence just counts as short characters.
pub fn gb18030_cut(bytes: &[u8], max: usize) -> usize {
    if bytes.len() <= max {
        return bytes.len();
    }
    let mut i = 0;
    while i < bytes.len() {
        let len = match (bytes[i], bytes.get(i + 1)) {
            (0x00..=0x7F, _) => 1,
            // Four-byte sequences have an ASCII digit second.
            (_, Some(0x30..=0x39)) => 4,
            _ => 2,
        };
        let next = (i + len).min(bytes.len());
        if next > max {
            break;
        }
        i = next;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_passes_through_borrowed() {
        assert!(matches!(decode_text("héllo 你好".as_bytes()), Cow::Borrowed("héllo 你好")));
    }

    #[test]
    fn gbk_bytes_decode_as_chinese() {
        // "你好" in GBK.
        assert_eq!(decode_text(&[0xC4, 0xE3, 0xBA, 0xC3]), "你好");
    }

    #[test]
    fn garbage_decodes_lossily() {
        let out = decode_text(&[0xFF, 0xFE, 0x80, b'a']);
        assert!(out.contains('a'));
        assert!(out.contains('\u{FFFD}'));
    }

    #[test]
    fn detection_names_the_encoding() {
        assert_eq!(decode_text_detect(b"hello").1, Detected::Ascii);
        assert_eq!(decode_text_detect("你好".as_bytes()).1, Detected::Utf8);
        assert_eq!(decode_text_detect(&[0xC4, 0xE3, 0xBA, 0xC3]).1, Detected::Gb18030);
        assert_eq!(decode_text_detect(&[0xFF, 0xFE, 0x80, b'a']).1, Detected::Invalid);
    }

    #[test]
    fn auto_follows_the_peer_and_by_hand_stays() {
        let mut e = PeerEncoding::default();
        assert!(!e.is_gbk());
        assert!(!e.observe(Detected::Ascii));
        assert!(e.observe(Detected::Gb18030));
        assert!(e.is_gbk());
        assert!(!e.observe(Detected::Ascii) && !e.observe(Detected::Invalid));
        assert!(e.is_gbk());
        assert_eq!(&*e.encode("你好, ann"), &[0xC4, 0xE3, 0xBA, 0xC3, b',', b' ', b'a', b'n', b'n']);
        assert!(e.observe(Detected::Utf8));
        assert_eq!(&*e.encode("你好"), "你好".as_bytes());
        e.set(EncodingChoice::Gbk);
        assert!(e.is_gbk() && !e.observe(Detected::Utf8) && e.is_gbk());
        e.set(EncodingChoice::Utf8);
        assert!(!e.is_gbk() && !e.observe(Detected::Gb18030) && !e.is_gbk());
        assert!(PeerEncoding::new(EncodingChoice::Gbk).is_gbk());
        assert_eq!("UTF8".parse::<EncodingChoice>(), Ok(EncodingChoice::Utf8));
        assert_eq!(" gbk ".parse::<EncodingChoice>(), Ok(EncodingChoice::Gbk));
        assert!("bogus".parse::<EncodingChoice>().unwrap_err().contains("gbk|utf-8|auto"));
    }

    #[test]
    fn gb18030_encodes_everything() {
        for c in ['\u{E5E5}', '\u{10FFFF}', '😀', 'é', '\u{FFFD}'] {
            let s = c.to_string();
            let bytes = encode_gb18030(&s);
            assert!(!bytes.is_empty());
        }
        assert!(matches!(encode_gb18030("ascii"), Cow::Borrowed(b"ascii")));
    }

    #[test]
    fn cuts_fall_between_gb18030_characters() {
        let bytes = encode_gb18030("a你好😀b");
        // a | 你 (2) | 好 (2) | 😀 (4) | b
        assert_eq!(gb18030_cut(&bytes, 100), bytes.len());
        assert_eq!(gb18030_cut(&bytes, 2), 1);
        assert_eq!(gb18030_cut(&bytes, 3), 3);
        assert_eq!(gb18030_cut(&bytes, 8), 5);
        assert_eq!(gb18030_cut(&bytes, 9), 9);
        assert_eq!(gb18030_cut(&bytes[1..], 1), 0);
    }

    proptest::proptest! {
        #[test]
        fn cut_pieces_decode_cleanly(text: String, max in 4usize..64) {
            let bytes = encode_gb18030(&text);
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let cut = gb18030_cut(rest, max);
                proptest::prop_assert!(cut > 0 && cut <= max);
                let (_, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(&rest[..cut]);
                proptest::prop_assert!(!had_errors);
                rest = &rest[cut..];
            }
        }

        #[test]
        fn cut_never_panics(bytes: Vec<u8>, max in 0usize..64) {
            proptest::prop_assert!(gb18030_cut(&bytes, max) <= bytes.len());
        }

        #[test]
        fn never_panics(bytes: Vec<u8>) {
            let _ = decode_text(&bytes);
            let (_, detected) = decode_text_detect(&bytes);
            let mut e = PeerEncoding::default();
            e.observe(detected);
        }

        #[test]
        fn gb18030_round_trips(text: String) {
            let bytes = encode_gb18030(&text);
            let (back, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(&bytes);
            proptest::prop_assert!(!had_errors);
            if !text.contains('\u{E5E5}') {
                proptest::prop_assert_eq!(back.as_ref(), text.as_str());
            }
        }
    }
}
