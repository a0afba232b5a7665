//! The WebSocket opening handshake (RFC 6455 §4.2): checks the request, picks the protocol
//! spoken inside, and answers `101 Switching Protocols`; or says, with the right status, what
//! the request lacks.

use super::origin;
use crate::ws::Subprotocol;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, StatusCode};

/// An accepted handshake: the headers of the `101` answer and the protocol chosen.
pub(crate) struct Accepted {
    /// The `101` answer's headers.
    pub headers: HeaderMap,
    /// What the connection speaks inside.
    pub subprotocol: Subprotocol,
}

/// A refused handshake: its status, the headers that say what to send instead, and a line of
/// text for a person.
pub(crate) struct Refused {
    /// The status.
    pub status: StatusCode,
    /// `Sec-WebSocket-Version` or `Upgrade`, when they tell the client what to send.
    pub headers: HeaderMap,
    /// What was wrong.
    pub message: &'static str,
}

impl Refused {
    fn new(status: StatusCode, message: &'static str) -> Self {
        Self { status, headers: HeaderMap::new(), message }
    }
}

/// True when the request asks for a WebSocket (it may still be a bad one).
pub(crate) fn is_websocket<B>(request: &Request<B>) -> bool {
    has_token(request.headers(), header::UPGRADE, "websocket")
}

/// Checks a WebSocket handshake request against RFC 6455 and the allowed origins.
pub(crate) fn accept<B>(request: &Request<B>, origins: &[String]) -> Result<Accepted, Refused> {
    let headers = request.headers();
    if !has_token(headers, header::CONNECTION, "upgrade") || !is_websocket(request) {
        let mut refused = Refused::new(
            StatusCode::UPGRADE_REQUIRED,
            "this address is natter's WebSocket endpoint: connect with a WebSocket client, or open / for the chat page",
        );
        refused.headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        refused.headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        return Err(refused);
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).is_none_or(|version| version != "13") {
        let mut refused =
            Refused::new(StatusCode::UPGRADE_REQUIRED, "unsupported WebSocket version: use version 13");
        refused.headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return Err(refused);
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).filter(|key| valid_key(key.as_bytes())) else {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "missing or malformed Sec-WebSocket-Key: send 16 random bytes in base64",
        ));
    };
    if !origin::allowed(headers, origins) {
        return Err(Refused::new(
            StatusCode::FORBIDDEN,
            "this page's origin may not connect: the server's operator can allow it with web_origins",
        ));
    }
    let subprotocol = choose(headers);
    let mut answer = HeaderMap::new();
    answer.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    answer.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    let accept_key = tungstenite::handshake::derive_accept_key(key.as_bytes());
    if let Ok(value) = HeaderValue::from_str(&accept_key) {
        answer.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    if let Some(name) = subprotocol.name() {
        answer.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(name));
    }
    Ok(Accepted { headers: answer, subprotocol })
}

/// The first protocol the client offers that natter speaks, in the client's order of
/// preference; without one, the first message tells (as on the TCP port).
fn choose(headers: &HeaderMap) -> Subprotocol {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|offered| Subprotocol::from_name(offered.trim()))
        .unwrap_or(Subprotocol::Sniff)
}

/// Whether a comma-separated header holds `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// A key is 16 bytes in base64: 24 characters ending in `==`.
fn valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22].iter().all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(extra: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::get("/ws")
            .header("host", "chat:7878")
            .header("connection", "keep-alive, Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
        for (name, value) in extra {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn a_good_handshake_gets_the_rfc_accept_key() {
        let accepted = accept(&request(&[]), &[]).ok().unwrap();
        // RFC 6455 §1.3's example.
        assert_eq!(accepted.headers[header::SEC_WEBSOCKET_ACCEPT], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(accepted.subprotocol, Subprotocol::Sniff);
        assert!(accepted.headers.get(header::SEC_WEBSOCKET_PROTOCOL).is_none());
    }

    #[test]
    fn the_clients_first_known_subprotocol_is_chosen() {
        let offered = [
            ("sec-websocket-protocol", "chat, binary.ircv3.net"),
            ("sec-websocket-protocol", "text.ircv3.net"),
        ];
        let accepted = accept(&request(&offered), &[]).ok().unwrap();
        assert_eq!(accepted.subprotocol, Subprotocol::IrcBinary);
        assert_eq!(accepted.headers[header::SEC_WEBSOCKET_PROTOCOL], "binary.ircv3.net");
    }

    #[test]
    fn bad_handshakes_say_what_is_wrong() {
        let plain = Request::get("/ws").header("host", "chat").body(()).unwrap();
        assert_eq!(accept(&plain, &[]).err().unwrap().status, StatusCode::UPGRADE_REQUIRED);
        let old = request(&[]);
        let mut old = old.map(|()| ());
        old.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        let refused = accept(&old, &[]).err().unwrap();
        assert_eq!(refused.headers[header::SEC_WEBSOCKET_VERSION], "13");
        let mut short = request(&[]);
        short.headers_mut().insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("c2hvcnQ="));
        assert_eq!(accept(&short, &[]).err().unwrap().status, StatusCode::BAD_REQUEST);
        let foreign = request(&[("origin", "https://evil.example")]);
        assert_eq!(accept(&foreign, &[]).err().unwrap().status, StatusCode::FORBIDDEN);
    }
}
