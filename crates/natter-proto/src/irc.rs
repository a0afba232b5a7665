//! IRC message lines (RFC 1459/2812 with IRCv3 message tags): parsing and serializing, with
//! no I/O so that the rules can be tested on plain strings.
//!
//! A line is `[@tags ][:prefix ]COMMAND[ params][ :trailing]`. The parser is lenient where
//! real clients are sloppy (runs of spaces, a missing trailing colon) and strict where
//! ambiguity would be dangerous (no command, control characters that end lines). It never
//! panics and allocates at most a few times the input size; callers bound the input
//! ([`MAX_LINE`], [`MAX_TAGS`]).

use jiff::SignedDuration;
use jiff::civil::DateTime;
use std::fmt::Write as _;

/// Longest line without tags, CRLF excluded (RFC 1459: 512 bytes including CRLF).
pub const MAX_LINE: usize = 510;
/// Longest tag section a client may send, including `@` and the separating space
/// (IRCv3 message-tags: 4094 bytes for client tags, 8191 in all).
pub const MAX_TAGS: usize = 8191;

/// One IRC message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// IRCv3 tags in order, values unescaped; an empty value is the same as none (`None`).
    pub tags: Vec<(String, Option<String>)>,
    /// Source (`nick!user@host` or a server name), without the colon.
    pub prefix: Option<String>,
    /// Command word or three-digit numeric, as sent (callers compare case-insensitively).
    pub command: String,
    /// Parameters; the last one may contain spaces (it was the trailing one).
    pub params: Vec<String>,
}

/// Why a line is not an IRC message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but spaces (or tags/prefix without a command).
    #[error("no command")]
    NoCommand,
    /// The command is neither letters nor a three-digit numeric.
    #[error("invalid command {0:?}")]
    BadCommand(String),
    /// The line holds NUL, CR or LF, which cannot occur inside a message.
    #[error("control character in the line")]
    ControlChar,
    /// A tag has an empty key or a key with forbidden characters.
    #[error("invalid tag key {0:?}")]
    BadTag(String),
}

impl Message {
    /// A message without tags or prefix.
    pub fn new(command: &str, params: &[&str]) -> Self {
        Self {
            tags: Vec::new(),
            prefix: None,
            command: command.to_string(),
            params: params.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// The value of a tag, `Some(None)` when present without a value.
    pub fn tag(&self, key: &str) -> Option<Option<&str>> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_deref())
    }

    /// Parameter `i`, if present.
    pub fn param(&self, i: usize) -> Option<&str> {
        self.params.get(i).map(String::as_str)
    }

    /// Serializes the message without CRLF. Characters that would end the line (CR, LF,
    /// NUL) are replaced by spaces, so that one message always makes exactly one line.
    pub fn serialize(&self) -> String {
        let mut out = String::new();
        if !self.tags.is_empty() {
            out.push('@');
            for (i, (k, v)) in self.tags.iter().enumerate() {
                if i > 0 {
                    out.push(';');
                }
                out.push_str(k);
                if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                    out.push('=');
                    escape_tag_value(v, &mut out);
                }
            }
            out.push(' ');
        }
        let params: Vec<&str> = self.params.iter().map(String::as_str).collect();
        write_line(&mut out, self.prefix.as_deref(), &self.command, &params);
        out
    }
}

/// Appends `[:prefix ]COMMAND params` (no CRLF) to `out`. The last parameter gets a colon when
/// it needs one (empty, has a space, starts with `:`); middle parameters are expected to be
/// single words. CR, LF and NUL become spaces: a message must never split into two lines.
pub fn write_line(out: &mut String, prefix: Option<&str>, command: &str, params: &[&str]) {
    if let Some(p) = prefix {
        out.push(':');
        push_clean(out, p);
        out.push(' ');
    }
    push_clean(out, command);
    for (i, p) in params.iter().enumerate() {
        out.push(' ');
        let last = i + 1 == params.len();
        if last && (p.is_empty() || p.contains(' ') || p.starts_with(':')) {
            out.push(':');
        }
        push_clean(out, p);
    }
}

fn push_clean(out: &mut String, s: &str) {
    if s.contains(['\r', '\n', '\0']) {
        out.extend(s.chars().map(|c| if matches!(c, '\r' | '\n' | '\0') { ' ' } else { c }));
    } else {
        out.push_str(s);
    }
}

/// Escapes a tag value (`;` `\s` `\\` `\r` `\n`) per IRCv3 message-tags.
pub fn escape_tag_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            ';' => out.push_str("\\:"),
            ' ' => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\0' => {}
            c => out.push(c),
        }
    }
}

/// Reverses [`escape_tag_value`]; an unknown escape stands for the character itself and a
/// lone trailing backslash is dropped, as the spec asks.
pub fn unescape_tag_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn valid_tag_key(key: &str) -> bool {
    let name = key.strip_prefix('+').unwrap_or(key);
    // Optional vendor prefix `host/`: keep it simple and permissive about the host.
    let name = name.rsplit('/').next().unwrap_or(name);
    !name.is_empty()
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'.' | b'+'))
}

/// Splits a line into its tag section (without `@`) and the rest, so that callers can apply
/// the separate length limits of the two parts before parsing.
pub fn split_tags(line: &str) -> (Option<&str>, &str) {
    let line = line.trim_start_matches(' ');
    match line.strip_prefix('@') {
        Some(rest) => match rest.split_once(' ') {
            Some((tags, rest)) => (Some(tags), rest),
            None => (Some(rest), ""),
        },
        None => (None, line),
    }
}

/// Parses one line (a trailing CR/LF is ignored).
pub fn parse(line: &str) -> Result<Message, ParseError> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.contains(['\r', '\n', '\0']) {
        return Err(ParseError::ControlChar);
    }
    let (tag_text, rest) = split_tags(line);
    let mut tags = Vec::new();
    if let Some(text) = tag_text {
        for item in text.split(';').filter(|t| !t.is_empty()) {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k, Some(unescape_tag_value(v)).filter(|v| !v.is_empty())),
                None => (item, None),
            };
            if !valid_tag_key(key) {
                return Err(ParseError::BadTag(key.to_string()));
            }
            // A repeated key: the last value wins (message-tags spec).
            tags.retain(|(k, _): &(String, Option<String>)| k != key);
            tags.push((key.to_string(), value));
        }
    }
    let mut rest = rest.trim_start_matches(' ');
    let mut prefix = None;
    if let Some(p) = rest.strip_prefix(':') {
        let (p, r) = p.split_once(' ').unwrap_or((p, ""));
        prefix = Some(p.to_string());
        rest = r.trim_start_matches(' ');
    }
    let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if command.is_empty() {
        return Err(ParseError::NoCommand);
    }
    let numeric = command.len() == 3 && command.bytes().all(|b| b.is_ascii_digit());
    if !numeric && !command.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ParseError::BadCommand(command.chars().take(32).collect()));
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        if let Some(trailing) = rest.strip_prefix(':') {
            params.push(trailing.to_string());
            break;
        }
        let (word, r) = rest.split_once(' ').unwrap_or((rest, ""));
        params.push(word.to_string());
        rest = r;
    }
    Ok(Message { tags, prefix, command: command.to_string(), params })
}

/// The parts of a message source `nick!user@host`, borrowed from it, so that code receiving
/// a prefix (or a client echoing one) can tell who sent a message without re-parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserHost<'a> {
    /// Everything before the first `!` or `@`; for a server name, the whole source.
    pub nick: &'a str,
    /// Between `!` and `@`; empty when there is no `!`.
    pub user: &'a str,
    /// After the first `@`; empty when there is no `@`.
    pub host: &'a str,
}

/// Splits a source into nick, user and host (missing parts are empty), as the ircdocs
/// `userhost-split` vectors ask: `coolguy@127.0.0.1` has a host but no user, and control
/// characters in the host are kept as they are.
pub fn split_userhost(source: &str) -> UserHost<'_> {
    let (before_at, host) = source.split_once('@').unwrap_or((source, ""));
    let (nick, user) = before_at.split_once('!').unwrap_or((before_at, ""));
    UserHost { nick, user, host }
}

/// Formats a millisecond timestamp as IRCv3 `server-time` (`2024-05-01T12:34:56.789Z`):
/// always three fractional digits and `Z`, in one `String` of the exact size. A timestamp past
/// the end of year 9999, which a four-digit year cannot write, becomes that year's last
/// millisecond.
pub fn server_time(ms: u64) -> String {
    // A civil date-time from the epoch reaches every four-digit year, up to 9999-12-31; a
    // `jiff::Timestamp` stops a day short (it keeps room for any UTC offset).
    const EPOCH: DateTime = DateTime::constant(1970, 1, 1, 0, 0, 0, 0);
    let utc = i64::try_from(ms)
        .ok()
        .and_then(|ms| EPOCH.checked_add(SignedDuration::from_millis(ms)).ok())
        .unwrap_or(DateTime::MAX);
    let mut s = String::with_capacity(24);
    let _ = write!(s, "{utc:.3}Z");
    s
}

/// Splits `text` into pieces of at most `max` bytes, on character boundaries and preferably
/// at a space, so that a long chat message becomes several IRC lines that fit the limit.
pub fn split_text(text: &str, max: usize) -> Vec<&str> {
    let max = max.max(4);
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(space) = rest[..cut].rfind(' ').filter(|&s| s > max / 2) {
            cut = space + 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out.push(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(line: &str) -> Message {
        parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    fn owned(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Cases in the spirit of the ircdocs `parser-tests` msg-split vectors.
    #[test]
    fn splits_like_the_reference_vectors() {
        let cases: &[(&str, Option<&str>, &str, &[&str])] = &[
            ("foo bar baz asdf", None, "foo", &["bar", "baz", "asdf"]),
            (":coolguy foo bar baz asdf", Some("coolguy"), "foo", &["bar", "baz", "asdf"]),
            ("foo bar baz :asdf quux", None, "foo", &["bar", "baz", "asdf quux"]),
            ("foo bar baz :", None, "foo", &["bar", "baz", ""]),
            ("foo bar baz ::asdf", None, "foo", &["bar", "baz", ":asdf"]),
            (":coolguy foo bar baz :  asdf quux ", Some("coolguy"), "foo", &["bar", "baz", "  asdf quux "]),
            (":coolguy PRIVMSG bar :lol :) ", Some("coolguy"), "PRIVMSG", &["bar", "lol :) "]),
            (":coolguy foo bar baz :", Some("coolguy"), "foo", &["bar", "baz", ""]),
            (":coolguy foo bar baz :  ", Some("coolguy"), "foo", &["bar", "baz", "  "]),
            (":src JOIN #chan", Some("src"), "JOIN", &["#chan"]),
            (":src JOIN :#chan", Some("src"), "JOIN", &["#chan"]),
            (":src AWAY", Some("src"), "AWAY", &[]),
            (":src AWAY ", Some("src"), "AWAY", &[]),
            (":cool\tguy foo bar baz", Some("cool\tguy"), "foo", &["bar", "baz"]),
            (
                ":coolguy!ag@net\x035w\x03ork.admin PRIVMSG foo :bar baz",
                Some("coolguy!ag@net\x035w\x03ork.admin"),
                "PRIVMSG",
                &["foo", "bar baz"],
            ),
            (
                ":irc.example.com COMMAND param1 param2 :param3 param3",
                Some("irc.example.com"),
                "COMMAND",
                &["param1", "param2", "param3 param3"],
            ),
            (
                ":gravel.mozilla.org 432  #momo :Erroneous Nickname: Illegal characters",
                Some("gravel.mozilla.org"),
                "432",
                &["#momo", "Erroneous Nickname: Illegal characters"],
            ),
            (":gravel.mozilla.org MODE #tckk +n ", Some("gravel.mozilla.org"), "MODE", &["#tckk", "+n"]),
            (
                ":services.esper.net MODE #foo-bar +o foobar  ",
                Some("services.esper.net"),
                "MODE",
                &["#foo-bar", "+o", "foobar"],
            ),
            ("foo bar baz asdf\r\n", None, "foo", &["bar", "baz", "asdf"]),
        ];
        for (line, prefix, command, params) in cases {
            let m = p(line);
            assert_eq!(m.prefix.as_deref(), *prefix, "{line:?}");
            assert_eq!(m.command, *command, "{line:?}");
            assert_eq!(m.params, owned(params), "{line:?}");
        }
    }

    #[test]
    fn tags_are_unescaped() {
        let m = p("@a=b;c=32;k;rt=ql7 foo");
        assert_eq!(m.tag("a"), Some(Some("b")));
        assert_eq!(m.tag("c"), Some(Some("32")));
        assert_eq!(m.tag("k"), Some(None));
        assert_eq!(m.tag("rt"), Some(Some("ql7")));
        let m = p(r"@a=b\\and\nk;c=72\s45;d=gh\:764 foo");
        assert_eq!(m.tag("a"), Some(Some("b\\and\nk")));
        assert_eq!(m.tag("c"), Some(Some("72 45")));
        assert_eq!(m.tag("d"), Some(Some("gh;764")));
        let m = p(r"@c;h=;a=b :quux ab cd");
        assert_eq!(m.tag("h"), Some(None));
        assert_eq!(m.prefix.as_deref(), Some("quux"));
        assert_eq!(m.params, owned(&["cd"]));
        assert_eq!(m.command, "ab");
        let m = p(r"@tag1=value\\ntest COMMAND");
        assert_eq!(m.tag("tag1"), Some(Some("value\\ntest")));
        let m = p(r"@tag1=value\1 COMMAND");
        assert_eq!(m.tag("tag1"), Some(Some("value1")));
        let m = p(r"@tag1=value1\ COMMAND");
        assert_eq!(m.tag("tag1"), Some(Some("value1")));
        let m = p("@tag1=1;tag2=3;tag3=4;tag1=5 COMMAND");
        assert_eq!(m.tag("tag1"), Some(Some("5")));
        let m = p("@+example.com/draft-x=1;label=abc PING x");
        assert_eq!(m.tag("+example.com/draft-x"), Some(Some("1")));
        assert_eq!(m.tag("label"), Some(Some("abc")));
    }

    #[test]
    fn bad_lines_are_errors_not_panics() {
        assert_eq!(parse(""), Err(ParseError::NoCommand));
        assert_eq!(parse("   "), Err(ParseError::NoCommand));
        assert_eq!(parse(":prefix"), Err(ParseError::NoCommand));
        assert_eq!(parse("@a=b"), Err(ParseError::NoCommand));
        assert_eq!(parse("@a=b :x "), Err(ParseError::NoCommand));
        assert!(matches!(parse("PRIV?MSG x"), Err(ParseError::BadCommand(_))));
        assert!(matches!(parse("12 x"), Err(ParseError::BadCommand(_))));
        assert_eq!(parse("PRIVMSG a\rb"), Err(ParseError::ControlChar));
        assert_eq!(parse("PRIVMSG a\0b"), Err(ParseError::ControlChar));
        assert!(matches!(parse("@=x CMD"), Err(ParseError::BadTag(_))));
        assert!(matches!(parse("@a b=c CMD"), Err(ParseError::BadCommand(_))));
    }

    #[test]
    fn serializes_with_colons_only_where_needed() {
        let mut m = Message::new("PRIVMSG", &["#room", "hello world"]);
        m.prefix = Some("ann!irc@127.0.0.1".into());
        assert_eq!(m.serialize(), ":ann!irc@127.0.0.1 PRIVMSG #room :hello world");
        assert_eq!(Message::new("JOIN", &["#a"]).serialize(), "JOIN #a");
        assert_eq!(Message::new("X", &["a", ""]).serialize(), "X a :");
        assert_eq!(Message::new("X", &[":)"]).serialize(), "X ::)");
        assert_eq!(Message::new("X", &["a\r\nQUIT"]).serialize(), "X a  QUIT");
        let mut m = Message::new("PRIVMSG", &["#a", "b"]);
        m.tags = vec![("time".into(), Some("a b;c\\".into())), ("k".into(), None)];
        assert_eq!(m.serialize(), "@time=a\\sb\\:c\\\\;k PRIVMSG #a b");
    }

    #[test]
    fn server_time_is_iso8601_utc() {
        assert_eq!(server_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(server_time(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(server_time(1_714_566_896_789), "2024-05-01T12:34:56.789Z");
    }

    /// The last millisecond a four-digit year can write; later ones print as this one.
    const LAST_MS: u64 = 253_402_300_799_999;

    #[test]
    fn server_time_at_the_edges_of_its_range_and_of_leap_rules() {
        assert_eq!(server_time(LAST_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(server_time(LAST_MS + 1), "9999-12-31T23:59:59.999Z");
        assert_eq!(server_time(u64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(server_time(1_000), "1970-01-01T00:00:01.000Z");
        assert_eq!(server_time(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(server_time(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
    }

    /// The hand-written formatting `server_time` had before it used jiff (Howard Hinnant's
    /// civil-from-days arithmetic), kept as the reference it must match byte for byte.
    fn server_time_by_hand(ms: u64) -> String {
        let secs = ms / 1000;
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = if m <= 2 { y + 1 } else { y };
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            (rem / 60) % 60,
            rem % 60,
            ms % 1000
        )
    }

    #[test]
    fn long_text_splits_on_boundaries() {
        let text = "é".repeat(300);
        let parts = split_text(&text, 101);
        assert!(parts.iter().all(|p| p.len() <= 101 && !p.is_empty()));
        assert_eq!(parts.concat(), text);
        let parts = split_text("aaaa bbbb cccc", 10);
        assert_eq!(parts, ["aaaa bbbb ", "cccc"]);
        assert_eq!(split_text("", 10), [""]);
    }

    // Round trips (serialize then parse, parse then serialize) are property-tested more widely
    // in tests/irc_props.rs.
    proptest! {
        #[test]
        fn parse_never_panics(line in "\\PC{0,200}") {
            let _ = parse(&line);
        }

        #[test]
        fn server_time_matches_the_hand_written_arithmetic(
            ms in prop_oneof![0..=LAST_MS, 1_500_000_000_000u64..2_500_000_000_000]
        ) {
            let ours = server_time(ms);
            prop_assert_eq!(&ours, &server_time_by_hand(ms));
            prop_assert_eq!(ours.len(), 24);
            // And jiff reads it back as the same instant, wherever its timestamps reach.
            if let Ok(back) = ours.parse::<jiff::Timestamp>() {
                prop_assert_eq!(back.as_millisecond(), ms as i64);
            }
        }
    }
}
