//! Text decoding for peers that do not promise UTF-8.
//!
//! The tutorials natter grew from mix Linux peers (UTF-8) with Windows peers (GBK). We accept
//! UTF-8 first, then GB18030 (a superset of GBK) when it decodes without a single error, and
//! fall back to lossy UTF-8 so that no byte sequence can fail or panic.

use std::borrow::Cow;

/// Decodes bytes from a peer into text, never failing.
///
/// Returns borrowed text for valid UTF-8, the common case, so the hot path does not copy.
pub fn decode_text(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(s);
    }
    let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
    if !had_errors {
        return text;
    }
    String::from_utf8_lossy(bytes)
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

    proptest::proptest! {
        #[test]
        fn never_panics(bytes: Vec<u8>) {
            let _ = decode_text(&bytes);
        }
    }
}
