//! The headers every HTTP answer carries: the page may run only its own script and style,
//! never inside another site's frame, and tells browsers not to guess content types or leak
//! its address to the sites its links lead to.

use http::HeaderValue;
use http::header::{self, HeaderMap};

/// The Content-Security-Policy: the page's own files only (no inline script or style), its
/// own origin for the WebSocket, never framed.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'; object-src 'none'";

/// The Content-Security-Policy of a server whose page may move to other nodes: theirs
/// WebSocket URLs are added to `connect-src` (they were checked to hold nothing a policy
/// would read as syntax: `config::web_peers`).
pub(crate) fn content_security_policy(peers: &[String]) -> String {
    if peers.is_empty() {
        return CONTENT_SECURITY_POLICY.to_string();
    }
    CONTENT_SECURITY_POLICY
        .replace("connect-src 'self';", &format!("connect-src 'self' {};", peers.join(" ")))
}

/// Adds the security headers to an answer; `csp` is the policy when it is not the default
/// ([`content_security_policy`]).
pub(crate) fn secure(headers: &mut HeaderMap, csp: Option<&HeaderValue>) {
    let csp = csp.cloned().unwrap_or(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // For browsers older than frame-ancestors.
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_allowed_to_the_page_for_websockets_only() {
        assert_eq!(content_security_policy(&[]), CONTENT_SECURITY_POLICY);
        let csp = content_security_policy(&["wss://b.example/ws".into(), "ws://10.0.0.3:7878/ws".into()]);
        assert!(csp.contains("; connect-src 'self' wss://b.example/ws ws://10.0.0.3:7878/ws; "), "{csp}");
        assert_eq!(csp.replace(" wss://b.example/ws ws://10.0.0.3:7878/ws", ""), CONTENT_SECURITY_POLICY);
        assert!(HeaderValue::from_str(&csp).is_ok());
    }
}
