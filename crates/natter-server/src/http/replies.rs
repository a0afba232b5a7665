//! Plain answers every route gives: a line of text with its status, and `405`.

use super::Response;
use http::StatusCode;
use http::header::{self, HeaderValue};
use http_body_util::Full;
use hyper::body::Bytes;

/// `405` naming the methods that work.
pub(super) fn not_allowed(allow: &'static str) -> Response {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// A plain-text answer (a line: the newline is added when missing).
pub(super) fn text(status: StatusCode, body: impl Into<std::borrow::Cow<'static, str>>) -> Response {
    let body = match body.into() {
        std::borrow::Cow::Borrowed(body) if body.ends_with('\n') => Bytes::from_static(body.as_bytes()),
        body if body.ends_with('\n') => Bytes::from(body.into_owned()),
        body => Bytes::from(format!("{body}\n")),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
