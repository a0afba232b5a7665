//! Writing IRC lines: prefixes, parameters (a text parameter always with its colon), tags,
//! and the 512-byte cut.

use natter_proto::irc::{MAX_LINE, write_line};
use natter_proto::names::fold;
use natter_proto::text::clip_bytes;

/// Name the server gives itself in prefixes, unless configured otherwise.
pub(super) const DEFAULT_SERVER: &str = "natter";

/// Adds one tag (`key=value`, escaped) to a rendered line.
pub(super) fn add_tag(line: &[u8], tag: &str, out: &mut Vec<u8>) {
    out.push(b'@');
    out.extend_from_slice(tag.as_bytes());
    match line.strip_prefix(b"@") {
        Some(rest) => {
            out.push(b';');
            out.extend_from_slice(rest);
        }
        None => {
            out.push(b' ');
            out.extend_from_slice(line);
        }
    }
}

/// `nick!user@host` for a nick and the hub's `user@host`.
pub(super) fn source(nick: &str, ident: &str) -> String {
    if ident.contains('@') { format!("{nick}!{ident}") } else { format!("{nick}!{ident}@{DEFAULT_SERVER}") }
}

/// The length of [`source`]`(nick, ident)`, without making it.
pub(super) fn source_len(nick: &str, ident: &str) -> usize {
    let host = if ident.contains('@') { 0 } else { 1 + DEFAULT_SERVER.len() };
    nick.len() + 1 + ident.len() + host
}

/// Whether two nicks or room names are one under [`fold`], without allocating when both are
/// ASCII (the observer runs for every event delivered to the session).
pub(super) fn same_name(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() { a.eq_ignore_ascii_case(b) } else { fold(a) == fold(b) }
}

/// `(user, host)` of a hub ident (`user@host`).
pub(super) fn split_ident<'a>(ident: &'a str, server: &'a str) -> (&'a str, &'a str) {
    ident.split_once('@').unwrap_or((ident, server))
}

/// Appends one line (CRLF included), cut to the classic 512 bytes if a parameter was long.
pub(super) fn push_line(out: &mut Vec<u8>, tags: &str, prefix: Option<&str>, command: &str, params: &[&str]) {
    push_line_max(out, tags, prefix, command, params, MAX_LINE);
}

/// [`push_line`] with another cut-off (relayed messages may exceed 512 by their prefix).
pub(super) fn push_line_max(
    out: &mut Vec<u8>,
    tags: &str,
    prefix: Option<&str>,
    command: &str,
    params: &[&str],
    max: usize,
) {
    let mut s = String::with_capacity(128);
    write_line(&mut s, prefix, command, params);
    out.extend_from_slice(tags.as_bytes());
    out.extend_from_slice(clip_bytes(&s, max).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// [`push_line_max`] for a message: the text (the last parameter) always goes out as a
/// trailing parameter with its colon, even a single word, as naive bots expect.
pub(super) fn push_text_line(
    out: &mut Vec<u8>,
    tags: &str,
    prefix: &str,
    command: &str,
    target: &str,
    text: &str,
    max: usize,
) {
    let mut s = String::with_capacity(64 + text.len());
    write_line(&mut s, Some(prefix), command, &[target]);
    s.push_str(" :");
    if text.contains(['\r', '\n', '\0']) {
        s.extend(text.chars().map(|c| if matches!(c, '\r' | '\n' | '\0') { ' ' } else { c }));
    } else {
        s.push_str(text);
    }
    out.extend_from_slice(tags.as_bytes());
    out.extend_from_slice(clip_bytes(&s, max).as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {

    #[test]
    fn source_len_is_the_length_of_source() {
        for (nick, ident) in [("ann", "ann@10.0.0.1"), ("bob", "native"), ("é", "u@h"), ("", "")] {
            assert_eq!(super::source_len(nick, ident), super::source(nick, ident).len(), "{nick} {ident}");
        }
    }

    use super::*;

    #[test]
    fn names_compare_as_folded() {
        assert!(same_name("Ann", "aNN") && !same_name("ann", "anne"));
        // Non-ASCII names fold like `fold` does (KELVIN SIGN lowercases to an ASCII `k`).
        assert!(same_name("\u{212a}im", "kim") && same_name("ÉVA", "éva"));
        assert!(!same_name("éva", "eva"));
    }

    #[test]
    fn message_text_is_always_a_trailing_parameter() {
        let mut out = Vec::new();
        push_text_line(&mut out, "", "ann!u@h", "PRIVMSG", "#r", "word", MAX_LINE);
        assert_eq!(out, b":ann!u@h PRIVMSG #r :word\r\n");
    }
}
