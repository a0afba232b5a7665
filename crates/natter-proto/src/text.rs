//! Cutting text to a limit counted in bytes (as IRC counts its lengths) without splitting a
//! character.

/// The longest start of `text` of at most `max` bytes that ends on a character boundary.
pub fn clip_bytes(text: &str, max: usize) -> &str {
    let mut cut = max.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_never_splits_a_character() {
        assert_eq!(clip_bytes("héllo", 2), "h");
        assert_eq!(clip_bytes("héllo", 3), "hé");
        assert_eq!(clip_bytes("abc", 10), "abc");
        assert_eq!(clip_bytes("", 0), "");
    }
}
