//! The operations endpoints: `/metrics` (Prometheus), `/healthz` (the server answers) and
//! `/readyz` (the store takes writes), from [`crate::metrics::Ops`]. Served on every HTTP
//! listener, or only on `--metrics ADDR` when that is set.

use super::replies::{not_allowed, text};
use super::{Context, Response};
use crate::metrics::CONTENT_TYPE;
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::Full;

/// Answers `/metrics`, `/healthz` or `/readyz` (the router sends only those here, and only
/// where the listener serves them).
pub(super) async fn respond<B>(request: &Request<B>, context: &Context) -> Response {
    let Some(ops) = &context.web.ops else { return text(StatusCode::NOT_FOUND, "not found\n") };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return not_allowed("GET, HEAD");
    }
    match request.uri().path() {
        "/metrics" => {
            let mut response = Response::new(Full::new(ops.encode().into()));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        "/readyz" => match ops.ready().await {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, why),
        },
        _ => text(StatusCode::OK, "ok\n"),
    }
}
