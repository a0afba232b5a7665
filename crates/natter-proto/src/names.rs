//! Nickname and room-name rules, shared by the server (which enforces them) and clients
//! (which check before sending, to give the error without a round trip).
//!
//! Nicks and room names must survive every front door, IRC included, so they exclude the
//! characters IRC gives meaning to (space, comma, `:` `!` `@` `*` `?` and control characters).
//! They must also look like what they are, so neither may hold a character that shows
//! nothing or turns the text around it ([`is_invisible`]): `#a\u{200B}dmin` would pass for
//! `#admin`, and a right-to-left override in a name reverses the line it is shown in.
//! Comparison is case-insensitive through [`fold`].

use unicode_security::GeneralSecurityProfile;
use unicode_security::general_security_profile::IdentifierType;

/// Longest nickname, in characters.
pub const MAX_NICK_CHARS: usize = 30;
/// Longest room name including the leading `#`, in characters.
pub const MAX_ROOM_CHARS: usize = 50;

/// Why a name was refused; the text tells the user what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The nickname is empty.
    #[error("a nickname cannot be empty")]
    EmptyNick,
    /// The nickname is longer than [`MAX_NICK_CHARS`].
    #[error("nickname too long: at most {MAX_NICK_CHARS} characters")]
    NickTooLong,
    /// The nickname starts with a character that cannot start one.
    #[error("a nickname must start with a letter or one of _[]\\`^{{}}|")]
    NickBadStart,
    /// The nickname contains a forbidden character.
    #[error("a nickname may contain only letters, digits and -_[]\\`^{{}}|, not {0:?}")]
    NickBadChar(char),
    /// The nickname contains a character that shows nothing or changes the text's direction.
    #[error(
        "a nickname cannot contain invisible, unassigned or text-direction characters (it has U+{:04X})",
        u32::from(*.0)
    )]
    NickInvisible(char),
    /// The room name does not start with `#`.
    #[error("room names start with # (for example #lobby)")]
    RoomNoHash,
    /// The room name is only `#` or too long.
    #[error("room names have 1 to {} characters after the #", MAX_ROOM_CHARS - 1)]
    RoomLength,
    /// The room name contains a forbidden character.
    #[error("room names cannot contain spaces, commas, control characters or {0:?}")]
    RoomBadChar(char),
    /// The room name contains a character that shows nothing or changes the text's direction.
    #[error(
        "room names cannot contain invisible, unassigned or text-direction characters (it has U+{:04X})",
        u32::from(*.0)
    )]
    RoomInvisible(char),
}

/// Whether `c` has no place in a name because it cannot be seen or reorders what is around
/// it: Unicode's default-ignorable code points (zero-width spaces and joiners, bidi marks,
/// embeddings, overrides and isolates, variation selectors, Hangul fillers, tags), the
/// deprecated format characters, and code points with no character assigned yet (private use
/// included), which could become any of those. As UTS #39 types them.
pub fn is_invisible(c: char) -> bool {
    matches!(c.identifier_type(), None | Some(IdentifierType::Default_Ignorable | IdentifierType::Deprecated))
}

fn nick_special(c: char) -> bool {
    matches!(c, '_' | '[' | ']' | '\\' | '`' | '^' | '{' | '}' | '|')
}

/// Checks a nickname: letters (any script), digits, `-` and IRC's specials, 1 to 30 characters,
/// not starting with a digit or `-`, none of them invisible ([`is_invisible`]).
pub fn validate_nick(nick: &str) -> Result<(), NameError> {
    let mut chars = nick.chars();
    let first = chars.next().ok_or(NameError::EmptyNick)?;
    if nick.chars().count() > MAX_NICK_CHARS {
        return Err(NameError::NickTooLong);
    }
    // Before the other rules: `\u{3164}` is a letter to them, and invisible.
    if let Some(c) = nick.chars().find(|&c| !c.is_ascii() && is_invisible(c)) {
        return Err(NameError::NickInvisible(c));
    }
    if !(first.is_alphabetic() || nick_special(first)) {
        return Err(NameError::NickBadStart);
    }
    for c in chars {
        if !(c.is_alphanumeric() || c == '-' || nick_special(c)) {
            return Err(NameError::NickBadChar(c));
        }
    }
    Ok(())
}

/// Checks a room name: `#` followed by 1 to 49 printable characters other than space, comma,
/// `:`, control characters and invisible ones ([`is_invisible`]).
pub fn validate_room(room: &str) -> Result<(), NameError> {
    let rest = room.strip_prefix('#').ok_or(NameError::RoomNoHash)?;
    let n = rest.chars().count();
    if n == 0 || n >= MAX_ROOM_CHARS {
        return Err(NameError::RoomLength);
    }
    for c in rest.chars() {
        if c.is_whitespace() || c.is_control() || matches!(c, ',' | ':') {
            return Err(NameError::RoomBadChar(c));
        }
        if !c.is_ascii() && is_invisible(c) {
            return Err(NameError::RoomInvisible(c));
        }
    }
    Ok(())
}

/// What a nickname looks like, for telling look-alikes apart: the Unicode TR39 confusable
/// skeleton of its folded form (`ａｎｎ` in fullwidth letters and `аnn` with a Cyrillic `а`
/// both look like `ann`). Two nicks with one skeleton would let one user pass for the other.
pub fn skeleton(nick: &str) -> String {
    fold(&unicode_security::skeleton(&fold(nick)).collect::<String>())
}

/// Whether a target names a room rather than a user: room names start with `#`, nicknames
/// never do. The one place that rule is written.
pub fn is_room_name(target: &str) -> bool {
    target.starts_with('#')
}

/// Completes a partial ban mask to `nick!user@host`, as people type them: `nick` means
/// `nick!*@*`, `user@host` means `*!user@host`, `nick!user` means `nick!user@*`.
pub fn complete_mask(mask: &str) -> String {
    match (mask.contains('!'), mask.contains('@')) {
        (true, true) => mask.to_string(),
        (true, false) => format!("{mask}@*"),
        (false, true) => format!("*!{mask}"),
        (false, false) => format!("{mask}!*@*"),
    }
}

/// Case-folds a nick or room name for comparison and lookup (`Alice` and `alice` are one nick).
pub fn fold(name: &str) -> String {
    if name.is_ascii() { name.to_ascii_lowercase() } else { name.to_lowercase() }
}

/// A wildcard pattern (`*` any run, `?` one character) matched case-insensitively, as IRC
/// masks are: ban masks, `WHO` masks. Folded once, then matched against many names. Matching
/// is linear in pattern times text: only the last `*` is ever backtracked to, so a pattern
/// like `*a*a*a…` from a client cannot make it exponential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(Vec<char>);

impl Glob {
    /// The pattern, case-folded.
    pub fn new(pattern: &str) -> Self {
        Self(fold(pattern).chars().collect())
    }

    /// Whether the pattern matches `text` (case-insensitively).
    pub fn matches(&self, text: &str) -> bool {
        let p = &self.0;
        let t: Vec<char> = fold(text).chars().collect();
        let (mut pi, mut ti) = (0, 0);
        // The last `*` seen and the text position it has swallowed up to.
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            match p.get(pi) {
                Some('*') => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                Some(&c) if c == '?' || c == t[ti] => {
                    pi += 1;
                    ti += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        star = Some((sp, st + 1));
                        pi = sp + 1;
                        ti = st + 1;
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|&c| c == '*')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alike_nicks_share_a_skeleton() {
        for same in ["ann", "ANN", "\u{ff41}\u{ff4e}\u{ff4e}", "\u{430}nn", "a\u{200b}nn"] {
            assert_eq!(skeleton(same), skeleton("ann"), "{same:?}");
        }
        for other in ["anna", "bob", "an"] {
            assert_ne!(skeleton(other), skeleton("ann"), "{other:?}");
        }
    }

    #[test]
    fn partial_masks_are_completed() {
        assert_eq!(complete_mask("bob"), "bob!*@*");
        assert_eq!(complete_mask("irc@host"), "*!irc@host");
        assert_eq!(complete_mask("bob!irc"), "bob!irc@*");
        assert_eq!(complete_mask("a!b@c"), "a!b@c");
    }

    #[test]
    fn globs_match_like_irc_masks() {
        for (pattern, text, want) in [
            ("*!*@*", "ann!irc@1.2.3.4", true),
            ("ann!*@*", "ann!irc@1.2.3.4", true),
            ("ann!*@*", "anna!irc@1.2.3.4", false),
            ("a?n*", "ann!x@y", true),
            ("*@1.2.*", "bob!irc@1.2.3.4", true),
            ("*@1.3.*", "bob!irc@1.2.3.4", false),
            ("*", "ann", true),
            ("a*", "Ann", true),
            ("?nn", "ann", true),
            ("a?", "ann", false),
            ("*n", "ann", true),
            ("*x*", "ann", false),
            ("a*n*n", "ann", true),
            ("a*n*n*", "ann", true),
            ("a**", "a", true),
            ("", "", true),
            ("", "ann", false),
            ("ann", "annie", false),
            ("b*", "ann", false),
            ("ÉLAN*", "élan!x@y", true),
        ] {
            assert_eq!(Glob::new(pattern).matches(text), want, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn globs_match_in_linear_time() {
        // Exponential backtracking would not finish these in the lifetime of the test.
        let start = std::time::Instant::now();
        assert!(!Glob::new(&"*a".repeat(200)).matches(&"a".repeat(199)));
        assert!(Glob::new(&"*a".repeat(100)).matches(&"a".repeat(200)));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn nicks() {
        for ok in ["alice", "Bob_2", "[x]", "小明", "udp-40000", "a-b"] {
            assert_eq!(validate_nick(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_nick(""), Err(NameError::EmptyNick));
        assert_eq!(validate_nick("1abc"), Err(NameError::NickBadStart));
        assert_eq!(validate_nick("-x"), Err(NameError::NickBadStart));
        assert_eq!(validate_nick("a b"), Err(NameError::NickBadChar(' ')));
        assert_eq!(validate_nick("a@b"), Err(NameError::NickBadChar('@')));
        assert_eq!(validate_nick(&"ä".repeat(MAX_NICK_CHARS)), Ok(()));
        assert_eq!(validate_nick(&"a".repeat(MAX_NICK_CHARS + 1)), Err(NameError::NickTooLong));
    }

    #[test]
    fn names_cannot_hide_characters_or_turn_text_around() {
        // Zero-width, bidi controls and marks, a Hangul filler (a letter that shows as a
        // blank), a variation selector, a tag, a private-use and an unassigned code point.
        for c in [
            '\u{200B}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{202A}',
            '\u{202E}',
            '\u{2066}',
            '\u{2069}',
            '\u{061C}',
            '\u{3164}',
            '\u{FE0F}',
            '\u{E0041}',
            '\u{E000}',
            '\u{FFF0}',
            '\u{AD}',
            '\u{FEFF}',
        ] {
            assert_eq!(validate_room(&format!("#ad{c}min")), Err(NameError::RoomInvisible(c)), "{c:?}");
            assert_eq!(validate_nick(&format!("ad{c}min")), Err(NameError::NickInvisible(c)), "{c:?}");
            assert_eq!(validate_nick(&format!("{c}admin")), Err(NameError::NickInvisible(c)), "{c:?}");
        }
        // The refusal names the code point, which the character itself would not show.
        assert_eq!(
            validate_room("#a\u{202E}b").unwrap_err().to_string(),
            "room names cannot contain invisible, unassigned or text-direction characters (it has U+202E)"
        );
        // Visible names of every script still pass, emoji in rooms too.
        for ok in ["#שלום", "#مرحبا", "#聊天", "#🦀", "#ü-é"] {
            assert_eq!(validate_room(ok), Ok(()), "{ok}");
        }
        for ok in ["שלום", "مرحبا", "小明", "Zoë"] {
            assert_eq!(validate_nick(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rooms() {
        assert_eq!(validate_room("#lobby"), Ok(()));
        assert_eq!(validate_room("#聊天"), Ok(()));
        assert_eq!(validate_room("lobby"), Err(NameError::RoomNoHash));
        assert_eq!(validate_room("#"), Err(NameError::RoomLength));
        assert_eq!(validate_room("#a b"), Err(NameError::RoomBadChar(' ')));
        assert_eq!(validate_room("#a,b"), Err(NameError::RoomBadChar(',')));
        assert_eq!(validate_room("#a:b"), Err(NameError::RoomBadChar(':')));
        assert_eq!(validate_room("#a\u{7}b"), Err(NameError::RoomBadChar('\u{7}')));
        assert_eq!(validate_room(&format!("#{}", "é".repeat(MAX_ROOM_CHARS - 1))), Ok(()));
        assert_eq!(validate_room(&format!("#{}", "a".repeat(MAX_ROOM_CHARS))), Err(NameError::RoomLength));
    }

    #[test]
    fn folding() {
        assert_eq!(fold("AliCE"), "alice");
        assert_eq!(fold("#Lobby"), "#lobby");
        assert_eq!(fold("ÄBC"), "äbc");
    }
}
