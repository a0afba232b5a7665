//! HTTP on natter's ports: the chat page, the WebSocket handshake, and the operations
//! endpoints. The shared TCP port hands a connection here when its first line is an HTTP
//! request line (`GET / HTTP/1.1` cannot be a nickname); `--http` and `--metrics` listeners
//! speak only HTTP. hyper parses and answers HTTP/1.1; an upgraded connection leaves hyper
//! and becomes an ordinary session of the connection loop over a WebSocket transport.

mod assets;
mod headers;
mod page_config;
pub(crate) use page_config::PageConfig;
mod ops;
pub(crate) mod origin;
mod replies;
mod rewind;
mod routes;
mod upgrade;

use crate::peers::Admitted;
use crate::transport::Transport;
use crate::ws::Subprotocol;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::{TokioIo, TokioTimer};
use natter_core::HubHandle;
use rewind::Rewind;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncRead;
use tokio::time::Instant;

/// How long a client has to send a request's headers (and an idle kept-alive connection
/// waits for its next request).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The most bytes of a request's head (request line and headers) read.
const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// How long one HTTP connection is kept at most (its requests then finish, and the client
/// opens another): a page load takes a moment, a scraper reconnects.
const MAX_LIFETIME: Duration = Duration::from_secs(120);

/// How often an HTTP connection looks whether the server is stopping, its time is up, or
/// its place is wanted.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// What one listener's HTTP serves.
#[derive(Debug, Clone, Default)]
pub(crate) struct Web {
    /// The chat page, its files and the WebSocket endpoint.
    pub page: bool,
    /// `/metrics`, `/healthz`, `/readyz`, answered from these; `None`: not here.
    pub ops: Option<Arc<crate::metrics::Ops>>,
    /// Origins besides the page's own whose pages may open WebSocket connections.
    pub origins: Vec<String>,
    /// What the page is told of the other nodes it may move to (`web_peers`), and the
    /// Content-Security-Policy that lets it.
    pub page_config: PageConfig,
}

/// An answer.
type Response = http::Response<Full<Bytes>>;

/// What a request's handler may use.
struct Context {
    web: Arc<Web>,
    /// The WebSocket handshake accepted on this connection, taken over when hyper lets go.
    upgrade: Mutex<Option<(OnUpgrade, Subprotocol)>>,
}

/// True when a connection's first line is an HTTP request line.
pub(crate) fn looks_like_http(first: &[u8]) -> bool {
    let line = first.split(|&b| b == b'\n').next().unwrap_or_default();
    ["GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ", "PATCH "]
        .iter()
        .any(|method| line.starts_with(method.as_bytes()))
        && line.windows(7).any(|w| w == b" HTTP/1")
}

/// A connection upgraded to WebSocket, handed back to become a session.
pub(crate) struct Upgraded<S> {
    /// The connection, after the `101` answer.
    pub stream: S,
    /// Bytes the client sent after its handshake request (frames already read).
    pub early: Vec<u8>,
    /// What it speaks inside.
    pub subprotocol: Subprotocol,
}

/// Serves one HTTP connection until it closes, is upgraded (then it is handed back, to
/// become a WebSocket session), or its time is up. `early` holds the bytes the sniffer
/// already read.
pub(crate) async fn serve<S: Transport + AsyncRead>(
    stream: S,
    early: Vec<u8>,
    hub: &HubHandle,
    admitted: &Admitted,
    web: Arc<Web>,
) -> Option<Upgraded<S>> {
    let peer = admitted.peer();
    let context = Arc::new(Context { web, upgrade: Mutex::new(None) });
    let service = {
        let context = context.clone();
        hyper::service::service_fn(move |request: http::Request<Incoming>| {
            let context = context.clone();
            async move { Ok::<_, Infallible>(routes::respond(request, &context).await) }
        })
    };
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).max_buf_size(MAX_REQUEST_HEAD);
    let connection =
        builder.serve_connection(TokioIo::new(Rewind::new(early, stream)), service).with_upgrades();
    tokio::pin!(connection);
    let until = Instant::now() + MAX_LIFETIME;
    let mut ending = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended");
                }
                break;
            }
            () = tokio::time::sleep(CHECK_EVERY), if !ending => {
                // Its place goes to newer connections when too many wait unregistered, as a
                // silent chat connection's does.
                if hub.is_stopped() || Instant::now() >= until || admitted.is_evicted() {
                    ending = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
    let (on_upgrade, subprotocol) = context.upgrade.lock().ok().and_then(|mut slot| slot.take())?;
    let upgraded = on_upgrade.await.ok()?;
    let Ok(parts) = upgraded.downcast::<TokioIo<Rewind<S>>>() else {
        tracing::warn!(%peer, "WebSocket upgrade of an unexpected connection type: closed");
        return None;
    };
    let (stream, mut early) = parts.io.into_inner().into_parts();
    early.extend_from_slice(&parts.read_buf);
    tracing::info!(%peer, protocol = subprotocol.name().unwrap_or("natter"), "WebSocket connected");
    Some(Upgraded { stream, early, subprotocol })
}

#[cfg(test)]
mod tests {
    use super::looks_like_http;

    #[test]
    fn request_lines_are_recognised() {
        for yes in ["GET / HTTP/1.1\r\n", "HEAD /healthz HTTP/1.0\n", "POST /x HTTP/1.1"] {
            assert!(looks_like_http(yes.as_bytes()), "{yes}");
        }
        for no in ["GET\n", "get / HTTP/1.1\n", "GETTY\n", "GET me\n", "NICK ann\r\n", "{\"type\":\"hello\"}"]
        {
            assert!(!looks_like_http(no.as_bytes()), "{no}");
        }
    }
}
