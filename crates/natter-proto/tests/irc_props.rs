//! Property tests of the IRC line format, wider than the unit tests in `irc.rs`: vendor and
//! client-only tag keys, tag values with every character that needs escaping (CR and LF
//! included), sources with `!`/`@`, tabs and control codes in parameters, and arbitrary bytes
//! decoded the way the IRC door decodes them.

use natter_proto::decode::decode_text;
use natter_proto::irc::{self, Message, UserHost};
use proptest::prelude::*;

/// A tag key: optional client-only `+`, optional vendor `host/`, then a name.
fn tag_key() -> impl Strategy<Value = String> {
    (
        proptest::bool::ANY,
        proptest::option::of("[a-z0-9]{1,6}(\\.[a-z]{2,4}){0,2}"),
        "[a-zA-Z0-9][a-zA-Z0-9-]{0,10}",
    )
        .prop_map(|(client, vendor, name)| {
            let mut key = String::new();
            if client {
                key.push('+');
            }
            if let Some(v) = vendor {
                key.push_str(&v);
                key.push('/');
            }
            key.push_str(&name);
            key
        })
}

/// A tag value: anything but NUL, biased towards the characters that need escaping. Empty
/// values are `None` (the model's rule).
fn tag_value() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof!["[^\0]{1,16}", "[;\\\\ \r\ns:a]{1,16}"])
}

/// A middle parameter: no space, no NUL/CR/LF, not starting with `:`, not empty.
fn middle() -> impl Strategy<Value = String> {
    "[^ :\r\n\0][^ \r\n\0]{0,16}"
}

/// The last parameter may be anything on one line, including empty or starting with `:`.
fn last() -> impl Strategy<Value = String> {
    prop_oneof!["[^\r\n\0]{0,40}", "[: \t\x01\x03]{0,6}", middle()]
}

fn message() -> impl Strategy<Value = Message> {
    (
        proptest::collection::vec((tag_key(), tag_value()), 0..5),
        proptest::option::of(prop_oneof![
            "[^ \r\n\0]{1,20}",
            "[a-zA-Z][a-zA-Z0-9_-]{0,8}![~a-z]{0,8}@[a-z0-9.:]{1,16}",
        ]),
        prop_oneof!["[A-Za-z]{1,12}", "[0-9]{3}"],
        proptest::collection::vec(middle(), 0..8),
        proptest::option::of(last()),
    )
        .prop_map(|(tags, prefix, command, mut params, trailing)| {
            let mut seen = std::collections::HashSet::new();
            let tags = tags.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect();
            params.extend(trailing);
            Message { tags, prefix, command, params }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_inverts_serialize(m in message()) {
        let line = m.serialize();
        prop_assert!(!line.contains(['\r', '\n', '\0']), "one message, one line: {:?}", line);
        prop_assert_eq!(irc::parse(&line), Ok(m));
    }

    /// Whatever parses must survive a serialize/parse round trip unchanged.
    #[test]
    fn parsed_lines_round_trip(line in "[@:; =+/a-zA-Z0-9\\\\#!.\t-]{0,120}") {
        if let Ok(m) = irc::parse(&line) {
            prop_assert_eq!(irc::parse(&m.serialize()), Ok(m));
        }
    }

    /// Arbitrary bytes, decoded as the IRC door decodes them, never panic the parser.
    #[test]
    fn parse_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let text = decode_text(&bytes);
        if let Ok(m) = irc::parse(&text) {
            prop_assert_eq!(irc::parse(&m.serialize()), Ok(m));
        }
        let _ = irc::split_tags(&text);
        let _ = irc::split_userhost(&text);
    }

    #[test]
    fn parse_never_panics_on_strings(line in any::<String>()) {
        let _ = irc::parse(&line);
    }

    #[test]
    fn tag_values_unescape_what_was_escaped(value in "[^\0]{0,40}") {
        let mut escaped = String::new();
        irc::escape_tag_value(&value, &mut escaped);
        prop_assert!(!escaped.contains([' ', ';', '\r', '\n']), "{:?}", escaped);
        prop_assert_eq!(irc::unescape_tag_value(&escaped), value);
    }

    #[test]
    fn userhost_splits_what_was_joined(
        nick in "[^!@]{0,12}",
        user in "[^@]{0,12}",
        host in "[^\0]{0,20}",
    ) {
        let joined = format!("{nick}!{user}@{host}");
        prop_assert_eq!(irc::split_userhost(&joined), UserHost { nick: &nick, user: &user, host: &host });
    }
}
