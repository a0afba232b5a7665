//! Which web pages may open a WebSocket to natter: the page natter serves itself (its origin's
//! host is the host the browser asked for) and the origins the operator lists
//! (`web_origins`). A browser always sends `Origin` with a WebSocket handshake, so another
//! site's script cannot borrow a visitor's network position (a server on their LAN or
//! loopback) to chat in their name. Clients that are not browsers send no `Origin` and are let
//! in: they are not someone else's page.

use http::HeaderMap;
use http::header::{HOST, ORIGIN};

/// Whether the handshake's `Origin` may connect; `configured` holds the operator's origins,
/// normalised by the configuration (lowercase, no trailing slash).
pub(crate) fn allowed(headers: &HeaderMap, configured: &[String]) -> bool {
    let Some(origin) = headers.get(ORIGIN) else { return true };
    let Ok(origin) = origin.to_str() else { return false };
    let origin = origin.trim().trim_end_matches('/');
    if configured.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin)) {
        return true;
    }
    // The page's own origin: `scheme://` and then exactly the host (and port) asked for.
    let Some((scheme, host)) = origin.split_once("://") else { return false };
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return false;
    }
    headers
        .get(HOST)
        .and_then(|asked| asked.to_str().ok())
        .is_some_and(|asked| !asked.is_empty() && asked.trim().eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(host).unwrap());
        if let Some(origin) = origin {
            headers.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        headers
    }

    #[test]
    fn the_page_itself_and_listed_origins_may_connect() {
        assert!(allowed(&headers(None, "chat:7878"), &[]));
        assert!(allowed(&headers(Some("http://chat:7878"), "chat:7878"), &[]));
        assert!(allowed(&headers(Some("https://Chat:7878"), "chat:7878"), &[]));
        let listed = ["https://web.example".to_string()];
        assert!(allowed(&headers(Some("https://web.example"), "chat:7878"), &listed));
    }

    #[test]
    fn other_pages_may_not() {
        for origin in
            ["http://evil.example", "http://chat:7879", "null", "file://", "chrome-extension://chat:7878"]
        {
            assert!(!allowed(&headers(Some(origin), "chat:7878"), &[]), "{origin}");
        }
        assert!(!allowed(&headers(Some("http://"), ""), &[]));
    }
}
