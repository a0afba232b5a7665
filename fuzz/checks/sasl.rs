//! The `sasl` target's check, shared with the corpus replay in `cargo test`
//! (`crates/natter-proto/tests/fuzz_corpus.rs`): SASL messages as the IRC door sees them.
//! The input is split into `AUTHENTICATE` parameters at newlines and fed to the chunk
//! assembler; whatever message comes out goes to every mechanism's parser. Besides not
//! panicking: the assembler never holds more than its bound, and any message split by
//! `to_chunks` is put back together exactly.

use natter_proto::sasl::{self, Chunks, MAX_MESSAGE};

/// Panics when `data` breaks the rules above.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut chunks = Chunks::default();
    for line in text.split('\n') {
        if let Ok(Some(message)) = chunks.push(line) {
            assert!(message.len() <= MAX_MESSAGE, "a message beyond the bound came out");
            parse_all(&message);
        }
    }
    parse_all(data);
    // The raw bytes as a message: split and joined again, whole.
    if data.len() <= MAX_MESSAGE / 4 * 3 {
        let mut again = Chunks::default();
        let mut out = None;
        for line in sasl::to_chunks(data) {
            assert!(line.len() <= sasl::CHUNK);
            out = again.push(&line).expect("to_chunks makes valid chunks");
        }
        assert_eq!(out.as_deref(), Some(data), "to_chunks then Chunks changed the message");
    }
}

fn parse_all(message: &[u8]) {
    let _ = sasl::parse_plain(message);
    if let Ok(first) = sasl::parse_scram_first(message) {
        assert!(!first.name.is_empty() && !first.nonce.contains(','));
        let _ = sasl::parse_scram_final(message, &first.gs2_header, &first.nonce);
    }
    let _ = sasl::parse_scram_final(message, "n,,", "abc");
}
