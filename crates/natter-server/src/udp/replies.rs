//! What an address that is not a member is told: how to prove that it receives (the address
//! token), or that it may not join (a cap). Each reply is worded in the dialect of the
//! datagram it answers and fits in three times that datagram's bytes (QUIC's rule against
//! amplification: until an address has proved that it receives, the server must not send it
//! more than it sent, much). A reply that cannot fit is shortened, and when not even its
//! shortest form fits (a datagram of a byte or two), nothing is sent.

use super::members::Full;
use super::tokens::AddressToken;
use crate::config::UdpFormat;
use crate::door::udp_tutorial::{SEPARATOR, SERVER_WHO};
use natter_proto::native::{ErrorCode, ServerFrame, write_server_frame};

/// How many times the bytes it received the server may send an address that has not proved
/// that it receives.
pub(crate) const AMPLIFICATION: usize = 3;

/// The language of a first datagram, and so of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Native JSON frames.
    Json,
    /// Text-mode lines (`nc -u`).
    Text,
    /// `WHO____TEXT` datagrams for the tutorial's client (`--udp-format tutorial`).
    Tutorial,
}

impl Dialect {
    /// The dialect of a first datagram: JSON when it starts with `{`, else what `format` says
    /// text members get.
    pub fn of(datagram: &[u8], format: UdpFormat) -> Self {
        match (datagram.iter().find(|b| !b.is_ascii_whitespace()), format) {
            (Some(b'{'), _) => Dialect::Json,
            (_, UdpFormat::Text) => Dialect::Text,
            (_, UdpFormat::Tutorial) => Dialect::Tutorial,
        }
    }
}

/// The token a person types back: `/ok TOKEN` (any case, surrounding blanks and line ends
/// allowed). `None` when the datagram is not that.
pub(crate) fn typed_token(datagram: &[u8]) -> Option<&[u8]> {
    let text = datagram.trim_ascii();
    let (command, token) = text.split_at_checked(3)?;
    if !command.eq_ignore_ascii_case(b"/ok") || !token.first().is_some_and(u8::is_ascii_whitespace) {
        return None;
    }
    Some(token.trim_ascii())
}

/// The longest of `forms` that fits in `budget` bytes (they come longest first).
fn fit(forms: impl IntoIterator<Item = Vec<u8>>, budget: usize) -> Option<Vec<u8>> {
    forms.into_iter().find(|form| form.len() <= budget)
}

fn error_frame(message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    write_server_frame(
        &ServerFrame::Error { id: None, code: ErrorCode::Other, message: message.into() },
        &mut out,
    );
    out
}

/// The answer to a datagram of `received` bytes from an address that has not proved that it
/// receives: the token to send back, as short as the budget needs.
pub(crate) fn challenge(dialect: Dialect, token: &AddressToken, received: usize) -> Option<Vec<u8>> {
    let token = token.as_str();
    let budget = received.saturating_mul(AMPLIFICATION);
    match dialect {
        Dialect::Json => {
            let mut out = Vec::new();
            write_server_frame(&ServerFrame::Verify { token: token.into() }, &mut out);
            fit([out], budget)
        }
        Dialect::Text => fit(
            [
                format!("*** To join, send: /ok {token} (this shows that the address is yours)\r\n"),
                format!("*** To join: /ok {token}\r\n"),
                format!("/ok {token}\r\n"),
            ]
            .map(String::into_bytes),
            budget,
        ),
        Dialect::Tutorial => fit(
            [
                format!("{SERVER_WHO}{SEPARATOR}to join, type: /ok {token}"),
                format!("{SERVER_WHO}{SEPARATOR}/ok {token}"),
            ]
            .map(String::into_bytes),
            budget,
        ),
    }
}

/// The answer to a datagram of `received` bytes from an address that may not join.
pub(crate) fn refusal(dialect: Dialect, full: Full, received: usize) -> Option<Vec<u8>> {
    let short = match full {
        Full::Server(_) => "server full",
        Full::Address(_) => "address full",
    };
    let long = match full {
        Full::Server(n) => format!("{short}: natter has {n} UDP members, the most it takes; try again later"),
        Full::Address(n) => {
            format!("{short}: {n} UDP members come from your address, the most allowed; try again later")
        }
    };
    let budget = received.saturating_mul(AMPLIFICATION);
    match dialect {
        Dialect::Json => fit([error_frame(&long), error_frame(short)], budget),
        Dialect::Text => {
            fit([format!("*** {long}\r\n"), format!("*** {short}\r\n")].map(String::into_bytes), budget)
        }
        Dialect::Tutorial => fit(
            [format!("{SERVER_WHO}{SEPARATOR}{long}"), format!("{SERVER_WHO}{SEPARATOR}{short}")]
                .map(String::into_bytes),
            budget,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::udp::tokens::Tokens;

    fn token() -> AddressToken {
        Tokens::new().unwrap().address_token("192.0.2.1:5000".parse().unwrap())
    }

    #[test]
    fn the_dialect_is_read_from_the_first_datagram() {
        assert_eq!(Dialect::of(b"  {\"type\":\"hello\"}", UdpFormat::Tutorial), Dialect::Json);
        assert_eq!(Dialect::of(b"hi", UdpFormat::Text), Dialect::Text);
        assert_eq!(Dialect::of(b"hi", UdpFormat::Tutorial), Dialect::Tutorial);
        assert_eq!(Dialect::of(b"", UdpFormat::Text), Dialect::Text);
    }

    #[test]
    fn a_typed_token_is_read_leniently_and_nothing_else_is_one() {
        assert_eq!(typed_token(b"/ok k7m2qx\n"), Some(&b"k7m2qx"[..]));
        assert_eq!(typed_token(b"  /OK   K7M2QX \r\n"), Some(&b"K7M2QX"[..]));
        for not_one in [&b"/okk7m2qx"[..], b"/ok", b"ok k7m2qx", b"/nick ok", b"", b"\xff\xfe"] {
            assert_eq!(typed_token(not_one), None, "{:?}", String::from_utf8_lossy(not_one));
        }
    }

    #[test]
    fn every_reply_fits_in_three_times_what_was_received() {
        let token = token();
        for dialect in [Dialect::Json, Dialect::Text, Dialect::Tutorial] {
            for received in 0..200 {
                for reply in [
                    challenge(dialect, &token, received),
                    refusal(dialect, Full::Server(10_000), received),
                    refusal(dialect, Full::Address(16), received),
                ]
                .into_iter()
                .flatten()
                {
                    assert!(reply.len() <= 3 * received, "{dialect:?}: {} bytes for {received}", reply.len());
                }
            }
        }
        // A person's `hi` and Enter (3 bytes) draws nothing; `hello` and Enter, the token alone.
        assert_eq!(challenge(Dialect::Text, &token, 3), None);
        assert_eq!(
            challenge(Dialect::Text, &token, 6),
            Some(format!("/ok {}\r\n", token.as_str()).into_bytes())
        );
        let full = challenge(Dialect::Text, &token, 100).unwrap();
        assert!(
            String::from_utf8(full)
                .unwrap()
                .starts_with(&format!("*** To join, send: /ok {}", token.as_str()))
        );
        // A native `hello` is long enough for the whole frame.
        let hello = br#"{"type":"hello","nick":"jay"}"#;
        let verify = challenge(Dialect::Json, &token, hello.len()).unwrap();
        assert_eq!(
            verify,
            format!("{{\"type\":\"verify\",\"token\":\"{}\"}}\n", token.as_str()).into_bytes()
        );
        let tutorial = String::from_utf8(challenge(Dialect::Tutorial, &token, 12).unwrap()).unwrap();
        assert_eq!(tutorial.split(SEPARATOR).count(), 2, "the tutorial client's shape: {tutorial}");
    }
}
