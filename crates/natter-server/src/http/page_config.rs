//! `/config.json`: what the page learns of its server at load that its files cannot say,
//! since they are the same for every server and the Content-Security-Policy forbids inline
//! script: the WebSocket URLs of the other nodes it may move to when its own goes away
//! (`web_peers`). The page's files stay fixed (and cacheable by their ETag); this small answer
//! is made once per listener.

use super::Response;
use super::headers::content_security_policy;
use http::HeaderValue;
use http::header;
use http_body_util::Full;
use hyper::body::Bytes;

/// What a listener tells the page, made once from the settings.
#[derive(Debug, Clone)]
pub(crate) struct PageConfig {
    /// The JSON answer of `/config.json`.
    body: Bytes,
    /// The Content-Security-Policy allowing the peers; `None` when there are none (the
    /// default policy).
    pub(crate) csp: Option<HeaderValue>,
}

impl Default for PageConfig {
    fn default() -> Self {
        Self::new(&[])
    }
}

impl PageConfig {
    /// The configuration for a page whose other nodes are `peers` (checked URLs).
    pub(crate) fn new(peers: &[String]) -> Self {
        let body = serde_json::json!({ "peers": peers }).to_string();
        let csp = (!peers.is_empty())
            .then(|| HeaderValue::from_str(&content_security_policy(peers)).ok())
            .flatten();
        PageConfig { body: Bytes::from(body), csp }
    }

    /// The answer to `GET /config.json`: never cached, so a changed setting is seen at the next
    /// load.
    pub(crate) fn response(&self) -> Response {
        let mut response = Response::new(Full::new(self.body.clone()));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peers_are_told_as_json_and_allowed_by_the_policy() {
        let none = PageConfig::new(&[]);
        assert_eq!(none.body, Bytes::from_static(br#"{"peers":[]}"#));
        assert!(none.csp.is_none());
        let two = PageConfig::new(&["wss://b.example/ws".into(), "wss://c.example/ws".into()]);
        assert_eq!(two.body, Bytes::from_static(br#"{"peers":["wss://b.example/ws","wss://c.example/ws"]}"#));
        let csp = two.csp.unwrap();
        assert!(csp.to_str().unwrap().contains("connect-src 'self' wss://b.example/ws wss://c.example/ws;"));
    }
}
