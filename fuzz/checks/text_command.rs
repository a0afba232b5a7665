//! The `text_command` target's check, shared with the corpus replay in `cargo test`: lines
//! typed in text mode, the terminal client and UDP, decoded like peer bytes, then parsed as a
//! slash command or a message; must never panic.

/// Panics when decoding or parsing `data` does.
pub fn check(data: &[u8]) {
    let _ = natter_proto::command::parse_input(&natter_proto::decode::decode_text(data));
}
