//! Someone else's text, shown through `display::safe_line`, can never act on a terminal or
//! break the line it is shown in, and text that could not do either is shown as it is.

use natter_proto::display::{SafeLine, is_safe, safe_line};
use proptest::prelude::*;
use std::borrow::Cow;

/// Text rich in what a terminal obeys: every C0 and C1 control, DEL, ESC sequences, line
/// separators, bidi openers and closers, with letters of several scripts between them.
fn hostile() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap()),
            (0x7fu32..0xa0).prop_map(|c| char::from_u32(c).unwrap()),
            prop::sample::select(vec![
                '\u{1b}', '\r', '\n', '\u{2028}', '\u{2029}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}',
                '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '[', ']',
                ';', '*', ' ', 'é', '漢', 'ש', '🦀',
            ]),
            any::<char>(),
            proptest::char::range('a', 'z'),
        ],
        0..80,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Whether every bidi run in `text` is closed by its own closer, as the Unicode bidi
/// algorithm pairs them (a PDI closes the embeddings inside its isolate only when written out:
/// this stricter check wants each closed explicitly).
fn balanced(text: &str) -> bool {
    let mut open = Vec::new();
    for c in text.chars() {
        match c {
            '\u{202a}' | '\u{202b}' | '\u{202d}' | '\u{202e}' => open.push('\u{202c}'),
            '\u{2066}'..='\u{2068}' => open.push('\u{2069}'),
            // A closer pops its opener's closer; a mismatch or nothing to pop is unbalanced.
            '\u{202c}' | '\u{2069}' if open.pop() != Some(c) => return false,
            _ => {}
        }
    }
    open.is_empty()
}

/// Letters, marks, symbols and spaces of any script: no control, format, line or paragraph
/// separator character.
fn ordinary() -> impl Strategy<Value = String> {
    "[^\\p{C}\\p{Zl}\\p{Zp}]{0,80}"
}

proptest! {
    #[test]
    fn no_control_character_or_line_break_survives(text in hostile()) {
        let shown = safe_line(&text);
        for c in shown.chars() {
            prop_assert!(!c.is_control() || c == '\t', "{:?} in {:?}", c, shown);
            prop_assert!(!matches!(c, '\u{2028}' | '\u{2029}'), "{:?} in {:?}", c, shown);
        }
        prop_assert_eq!(shown.lines().count(), usize::from(!shown.is_empty()));
    }

    #[test]
    fn bidi_runs_never_reach_past_the_text(text in hostile()) {
        let shown = safe_line(&text);
        prop_assert!(balanced(&shown), "{:?}", shown);
    }

    #[test]
    fn ordinary_text_is_shown_unchanged(text in ordinary()) {
        prop_assert!(is_safe(&text));
        prop_assert!(matches!(safe_line(&text), Cow::Borrowed(t) if t == text));
        prop_assert_eq!(SafeLine(&text).to_string(), text);
    }

    #[test]
    fn made_safe_once_is_safe(text in hostile()) {
        let shown = safe_line(&text).into_owned();
        prop_assert!(is_safe(&shown), "{:?}", shown);
        prop_assert!(matches!(safe_line(&shown), Cow::Borrowed(_)));
        prop_assert_eq!(SafeLine(&text).to_string(), shown);
    }

    #[test]
    fn the_text_between_controls_is_kept_in_order(text in hostile()) {
        // Removing what the function writes in place of controls leaves what was there
        // besides them.
        let kept = |t: &str| -> String {
            t.chars()
                .filter(|&c| !c.is_control() && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
                .collect()
        };
        let shown = safe_line(&text);
        let shown_kept: String = kept(&shown)
            .replace(natter_proto::display::LINE_BREAK, "")
            .chars()
            .filter(|&c| !('\u{2400}'..='\u{2421}').contains(&c) && c != '\u{fffd}')
            .collect();
        let text_kept: String = kept(&text)
            .chars()
            .filter(|&c| !('\u{2400}'..='\u{2421}').contains(&c) && c != '\u{fffd}')
            .collect();
        // LINE_BREAK's spaces may merge with the text's: compare without spaces.
        prop_assert_eq!(shown_kept.replace(' ', ""), text_kept.replace(' ', ""));
    }
}
