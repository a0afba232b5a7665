//! The `irc_line` target's check, shared with the corpus replay in `cargo test`
//! (`crates/natter-proto/tests/fuzz_corpus.rs`): IRC lines as the IRC door sees them, bytes
//! decoded to text, then parsed. Besides not panicking, anything that parses must serialize to
//! one line that parses to the same message.

use natter_proto::decode::decode_text;
use natter_proto::irc;

/// Panics when `data` breaks the rule above.
pub fn check(data: &[u8]) {
    let text = decode_text(data);
    let _ = irc::split_tags(&text);
    let _ = irc::split_userhost(&text);
    if let Ok(m) = irc::parse(&text) {
        let line = m.serialize();
        assert!(!line.contains(['\r', '\n', '\0']), "serialized to more than one line: {line:?}");
        assert_eq!(irc::parse(&line).as_ref(), Ok(&m), "round trip of {text:?} via {line:?}");
        if let Some(prefix) = &m.prefix {
            let _ = irc::split_userhost(prefix);
        }
    }
}
