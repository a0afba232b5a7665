//! The one field native frames carry over UDP: `token`, which says who sent the datagram.
//!
//! UDP has no connection, so the server knows a client only by its source address, which
//! anyone can write. Over UDP every native frame therefore carries a `token` field next to
//! its own fields: first the address token of a `verify` frame (the proof that the address
//! receives), then the session token of `welcome` (the proof that the datagram comes from
//! the client that logged in). Over TCP the field means nothing and is ignored.

use serde::Deserialize;
use std::borrow::Cow;

/// The field a frame carries its token in.
pub const TOKEN_FIELD: &str = "token";

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    token: Option<Cow<'a, str>>,
}

/// The `token` of a native frame (one line, without its newline), or `None` when the line
/// has none, has it twice, or is no JSON object: a frame that cannot show its token proves
/// nothing. Borrows unless the token has escapes.
pub fn frame_token(line: &[u8]) -> Option<Cow<'_, str>> {
    serde_json::from_slice::<Envelope<'_>>(line).ok()?.token
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::{ClientFrame, parse_client_frame};

    #[test]
    fn the_token_is_read_beside_any_frame_and_ignored_by_the_frame() {
        let line = br##"{"type":"send","room":"#lobby","text":"hi","token":"k7m2qx"}"##;
        assert_eq!(frame_token(line).as_deref(), Some("k7m2qx"));
        assert!(matches!(parse_client_frame(line), Ok(ClientFrame::Send { .. })));
        assert_eq!(frame_token(br#"{"type":"quit","token":"a\u0062c"}"#).as_deref(), Some("abc"));
        for no_proof in [
            &br#"{"type":"quit"}"#[..],
            br#"{"type":"quit","token":"a","token":"b"}"#,
            br#"{"type":"quit","token":7}"#,
            br#"{"type":"quit","token":"a""#,
            b"quit token a",
            b"",
            b"\xff{",
        ] {
            assert_eq!(frame_token(no_proof), None, "{:?}", String::from_utf8_lossy(no_proof));
        }
    }

    proptest::proptest! {
        #[test]
        fn reading_a_token_never_panics(bytes: Vec<u8>) {
            let _ = frame_token(&bytes);
        }
    }
}
