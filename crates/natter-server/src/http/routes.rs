//! Which answer each request gets.

use super::replies::{not_allowed, text};
use super::upgrade;
use super::{Context, Response, assets, headers};
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;

/// Answers one request.
pub(super) async fn respond<B>(mut request: Request<B>, context: &Context) -> Response {
    let web = &context.web;
    let path = request.uri().path().to_owned();
    let mut response = match path.as_str() {
        // IRC web clients open their WebSocket on `/`; the page on `/ws`.
        "/ws" if web.page => websocket(&mut request, context),
        "/" if web.page && upgrade::is_websocket(&request) => websocket(&mut request, context),
        "/" | "/index.html" if web.page => file(&request, "index.html"),
        "/config.json" if web.page => match *request.method() {
            Method::GET | Method::HEAD => web.page_config.response(),
            _ => not_allowed("GET, HEAD"),
        },
        _ if web.page && path.starts_with("/assets/") => file(&request, &path["/assets/".len()..]),
        "/metrics" | "/healthz" | "/readyz" if web.ops.is_some() => {
            super::ops::respond(&request, context).await
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    };
    headers::secure(response.headers_mut(), web.page_config.csp.as_ref());
    response
}

/// A WebSocket handshake: `101` and the connection is taken over when hyper lets it go.
fn websocket<B>(request: &mut Request<B>, context: &Context) -> Response {
    if request.method() != Method::GET {
        return not_allowed("GET");
    }
    match upgrade::accept(request, &context.web.origins) {
        Ok(accepted) => {
            let on_upgrade = hyper::upgrade::on(request);
            if let Ok(mut slot) = context.upgrade.lock() {
                *slot = Some((on_upgrade, accepted.subprotocol));
            }
            let mut response = Response::new(Full::default());
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            *response.headers_mut() = accepted.headers;
            response
        }
        Err(refused) => {
            let mut response = text(refused.status, refused.message);
            response.headers_mut().extend(refused.headers);
            response
        }
    }
}

/// One of the page's files, or `304` when the browser's copy is current.
fn file<B>(request: &Request<B>, name: &str) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return not_allowed("GET, HEAD");
    }
    let Some(asset) = assets::find(name) else { return text(StatusCode::NOT_FOUND, "not found\n") };
    let etag = HeaderValue::from_static(asset.etag());
    let current = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| tag.trim() == asset.etag() || tag.trim() == "*");
    let mut response = if current {
        let mut response = Response::new(Full::default());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let mut response = Response::new(Full::new(Bytes::from_static(asset.body)));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        response
    };
    response.headers_mut().insert(header::ETAG, etag);
    // Revalidated on every load: a new server version's page is never mixed with an old one.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
