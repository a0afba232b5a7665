//! The TCP port: accepts connections and picks the front door from the first bytes a client
//! sends (`{` means native JSON, a first line starting with `CAP `, `NICK `, `PASS ` or `USER `
//! means IRC, anything else text mode), so that one port serves every kind of client. The
//! dedicated IRC port (`--irc`) skips the sniffing. In help-desk mode text-mode visitors go to
//! the help desk instead, and a silent one is never greeted (it would read the greeting as
//! the answer to its first question).
//!
//! A connection whose first byte opens a TLS handshake record (0x16) is served over TLS when a
//! certificate is configured ([`crate::tls`]): the handshake runs in the connection's own task,
//! within the time allowed to log in, and the same sniffing then applies inside TLS. The IRC
//! TLS port (`--irc-tls`, 6697 by convention) is TLS and IRC only. Without a certificate a
//! ClientHello is told, in one clear-text line, to connect without TLS.
//!
//! Each accepted connection is first counted against the server's caps ([`crate::peers`]):
//! one over a cap is told why in one line and closed at once, with no task spawned for it.
//! The others get TCP keepalive ([`crate::keepalive`]). Failures to accept (descriptors
//! exhausted), the recoveries from them and refusals are logged at most once a minute each
//! ([`crate::throttled_log`]).

use crate::config::SessionSettings;
use crate::conn::{self, read_available};
use crate::door::helpdesk::HelpdeskDoor;
use crate::door::irc::{IrcDoor, MAX_IRC_LINE};
use crate::door::native::NativeDoor;
use crate::door::text::{GREETING, TextDoor};
use crate::door::{Door, SessionCtx};
use crate::http::{Web, looks_like_http};
use crate::peers::{Admitted, Peers, Refused};
use crate::throttled_log::ThrottledLog;
use crate::tls::{HANDSHAKE_RECORD, Tls};
use crate::transport::Transport;
use crate::ws::Subprotocol;
use crate::ws::transport::{Outgoing, WsTransport};
use natter_core::HubHandle;
use natter_core::metrics::Disconnect;
use natter_proto::line::LineBuffer;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, timeout_at};

/// How long a silent new connection waits before it is greeted as a person in text mode.
const GREET_AFTER: Duration = Duration::from_millis(250);

/// The same wait when TLS is on: a TLS client greeted in clear text cannot finish its
/// handshake, and a busy client (thousands of handshakes at once) may send its ClientHello
/// well after connecting.
const GREET_AFTER_WITH_TLS: Duration = Duration::from_secs(1);

/// How long the sniffer waits for the end of a first line that has begun, to tell IRC from
/// text mode.
const FIRST_LINE_WAIT: Duration = Duration::from_millis(250);

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// Any client: the door is picked from the first bytes.
    Sniff,
    /// IRC only (the `--irc` port).
    Irc,
    /// IRC over TLS only (the `--irc-tls` port).
    IrcTls,
    /// HTTP only (the `--http` and `--metrics` listeners), over TLS when the client opens
    /// with a handshake and a certificate is configured.
    Http,
}

/// How long the accept loop pauses after a failed accept (out of descriptors: nothing frees
/// one faster by trying again at once).
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// At most one line a minute for each thing a peer can make the accept loop log.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Most bytes read (and dropped) from a refused connection before its refusal is written:
/// closing a socket with unread bytes resets it, and the refusal would be lost.
const REFUSED_DRAIN: usize = 4096;

/// What a listener gives every connection it accepts.
pub struct Accepting {
    /// The hub.
    pub hub: HubHandle,
    /// Every session's settings.
    pub settings: Arc<SessionSettings>,
    /// Which doors this port serves.
    pub front: Front,
    /// The connection caps and address cloaks; every connection holds them until it ends,
    /// and the server's shutdown waits for that.
    pub peers: Arc<Peers>,
    /// TCP keepalive for accepted connections; `None` when off.
    pub keepalive: Option<socket2::TcpKeepalive>,
    /// The certificate, when TLS is configured (required for [`Front::IrcTls`]).
    pub tls: Option<Arc<Tls>>,
    /// What HTTP serves on this port; `None`: no HTTP here.
    pub web: Option<Arc<Web>>,
}

/// Accepts connections until `stop` changes.
pub async fn accept_loop(listener: TcpListener, accepting: Accepting, mut stop: watch::Receiver<bool>) {
    let (failures, recoveries, refusals) =
        (ThrottledLog::every(LOG_EVERY), ThrottledLog::every(LOG_EVERY), ThrottledLog::every(LOG_EVERY));
    // Accepts failed in a row.
    let mut failed = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if failed > 0 {
                        if recoveries.ready().is_some() {
                            tracing::warn!(failed, "accepting connections again");
                        }
                        failed = 0;
                    }
                    accept(stream, peer, &accepting, &refusals);
                }
                Err(e) => {
                    failed += 1;
                    if let Some(held_back) = failures.ready() {
                        accept_failed(&e, held_back);
                    }
                    // Back off instead of spinning; the connection waits in the backlog.
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                }
            },
            _ = stop.changed() => break,
        }
    }
}

/// Accepts connections on the Unix socket until `stop` changes: the same sniffing as the
/// main port (no TLS: the socket never leaves the machine), each peer shown as this machine.
pub async fn accept_unix_loop(
    listener: tokio::net::UnixListener,
    accepting: Accepting,
    mut stop: watch::Receiver<bool>,
) {
    let (failures, refusals) = (ThrottledLog::every(LOG_EVERY), ThrottledLog::every(LOG_EVERY));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let admitted = match accepting.peers.admit(UNIX_PEER) {
                        Ok(admitted) => admitted,
                        Err(refused) => {
                            if let Some(held_back) = refusals.ready() {
                                tracing::info!(peer = "unix", reason = %refused, held_back, "refused a connection");
                            }
                            let _ = stream.try_write(format!("*** bye: {refused}\r\n").as_bytes());
                            continue;
                        }
                    };
                    tracing::info!(peer = "unix", "connected");
                    let deadline = Instant::now() + accepting.settings.register_timeout;
                    let greet_at = Instant::now() + GREET_AFTER;
                    let (hub, settings) = (accepting.hub.clone(), accepting.settings.clone());
                    let sniffing = Sniffing { hub, settings, admitted, deadline, greet_at, web: accepting.web.clone() };
                    tokio::spawn(sniff(stream, sniffing));
                }
                Err(e) => {
                    if let Some(held_back) = failures.ready() {
                        accept_failed(&e, held_back);
                    }
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                }
            },
            _ = stop.changed() => break,
        }
    }
}

/// How a Unix-socket peer is shown and counted: this machine (it is one, whoever it is).
const UNIX_PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Logs a failed accept (throttled by the caller), naming the descriptor limit when that is
/// what ran out.
fn accept_failed(e: &std::io::Error, held_back: u64) {
    #[cfg(unix)]
    let out_of_descriptors = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
    #[cfg(not(unix))]
    let out_of_descriptors = false;
    if out_of_descriptors {
        let limit = crate::fd_limit::current().unwrap_or(0);
        tracing::warn!(
            error = %e,
            limit,
            held_back,
            "cannot accept connections: out of file descriptors; new connections wait until some \
             close (raise the limit: LimitNOFILE= under systemd, ulimit -n in a shell)"
        );
    } else {
        tracing::warn!(error = %e, held_back, "accept failed");
    }
}

/// Counts a new connection and starts its task, or turns it away.
fn accept(stream: TcpStream, peer: SocketAddr, accepting: &Accepting, refusals: &ThrottledLog) {
    let admitted = match accepting.peers.admit(peer) {
        Ok(admitted) => admitted,
        Err(refused) => {
            if let Some(held_back) = refusals.ready() {
                tracing::info!(%peer, reason = %refused, held_back, "refused a connection");
            }
            refuse(&stream, peer, accepting.front, refused);
            return;
        }
    };
    tracing::info!(%peer, "connected");
    let _ = stream.set_nodelay(true);
    if let Some(keepalive) = &accepting.keepalive {
        crate::keepalive::enable(&stream, keepalive);
    }
    let (hub, settings) = (accepting.hub.clone(), accepting.settings.clone());
    let deadline = Instant::now() + settings.register_timeout;
    match (accepting.front, &accepting.tls) {
        (Front::Sniff, tls) => {
            tokio::spawn(handle(stream, hub, settings, admitted, tls.clone(), accepting.web.clone()));
        }
        (Front::Http, tls) => {
            let web = accepting.web.clone().unwrap_or_default();
            tokio::spawn(http_only(Conn { stream, hub, settings, deadline, admitted }, tls.clone(), web));
        }
        (Front::Irc, _) => {
            let conn = Conn { stream, hub, settings, deadline, admitted };
            tokio::spawn(plain_irc(conn));
        }
        (Front::IrcTls, Some(tls)) => {
            let conn = Conn { stream, hub, settings, deadline, admitted };
            tokio::spawn(irc_over_tls(conn, tls.clone()));
        }
        (Front::IrcTls, None) => unreachable!("the IRC TLS port is only opened with a certificate"),
    }
}

/// Tells a refused peer why, in one line its client shows (IRC's `ERROR` on the IRC port;
/// on the shared port the text-mode goodbye, which natter's own client shows too), without
/// waiting: a new socket's send buffer is empty. What the peer already sent is read first,
/// since closing a socket with unread bytes resets it and the line would be lost.
fn refuse(stream: &TcpStream, peer: SocketAddr, front: Front, refused: Refused) {
    drain(stream);
    let line = match front {
        Front::Irc | Front::IrcTls => format!("ERROR :Closing Link: {} ({refused})\r\n", peer.ip()),
        Front::Sniff => format!("*** bye: {refused}\r\n"),
        Front::Http => format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{refused}\n",
            refused.to_string().len() + 1
        ),
    };
    let _ = stream.try_write(line.as_bytes());
}

/// Reads (and drops) what the peer already sent, at most [`REFUSED_DRAIN`] bytes, so that a
/// line written before closing is not lost to a reset.
fn drain(stream: &TcpStream) {
    let mut scratch = [0u8; 1024];
    let mut drained = 0;
    while drained < REFUSED_DRAIN {
        match stream.try_read(&mut scratch) {
            Ok(n) if n > 0 => drained += n,
            _ => break,
        }
    }
}

/// What the first byte of a new connection says.
enum FirstByte {
    /// A TLS handshake record.
    Tls,
    /// Anything else (still unread).
    Plain,
    /// Nothing yet.
    Silent,
    /// The peer left.
    Gone,
}

/// Peeks at the first byte, waiting until `until` at most; reads nothing.
async fn peek_first(stream: &TcpStream, until: Instant) -> FirstByte {
    let mut byte = [0u8; 1];
    match timeout_at(until, stream.peek(&mut byte)).await {
        Ok(Ok(1)) if byte[0] == HANDSHAKE_RECORD => FirstByte::Tls,
        Ok(Ok(1)) => FirstByte::Plain,
        Ok(_) => FirstByte::Gone,
        Err(_) => FirstByte::Silent,
    }
}

/// Runs the TLS handshake within the time allowed to log in; `None` (logged) when it failed
/// or ran out of time.
async fn handshake(stream: TcpStream, tls: &Tls, deadline: Instant) -> Option<crate::tls::TlsTransport> {
    let peer = stream.peer_addr().ok();
    match timeout_at(deadline, tls.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::info!(peer = ?peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(peer = ?peer, "TLS handshake timeout: disconnected");
            None
        }
    }
}

/// The plain IRC port: IRC, unless the client opens with a TLS handshake (a client set up for
/// TLS on the wrong port), which is told in one clear-text line where TLS is. The IRC session
/// gets a task of its own, so that it does not carry this wait's state.
async fn plain_irc(conn: Conn<TcpStream>) {
    if let FirstByte::Tls = peek_first(&conn.stream, conn.deadline).await {
        drain(&conn.stream);
        let line = match conn.settings.tls.and_then(|policy| policy.sts) {
            Some(sts) => format!("ERROR :Closing Link: this port does not speak TLS; use port {} for IRC over TLS\r\n", sts.port),
            None => "ERROR :Closing Link: this port does not speak TLS; connect without TLS, or to the IRC TLS port (usually 6697)\r\n".to_string(),
        };
        let _ = conn.stream.try_write(line.as_bytes());
        return;
    }
    let lines = LineBuffer::new(IrcDoor::line_limit(&conn.settings));
    tokio::spawn(serve(conn, lines, IrcDoor::default()));
}

/// The IRC TLS port: the handshake, then IRC. A client speaking plain IRC there is told, in
/// clear text, to use TLS or the plain port.
async fn irc_over_tls(conn: Conn<TcpStream>, tls: Arc<Tls>) {
    let Conn { stream, hub, settings, deadline, admitted } = conn;
    match peek_first(&stream, deadline).await {
        FirstByte::Tls => {}
        FirstByte::Plain => {
            drain(&stream);
            let line = "ERROR :Closing Link: this port speaks IRC over TLS only; enable TLS in your client, \
                        or connect without TLS to the plain IRC port\r\n";
            let _ = stream.try_write(line.as_bytes());
            return;
        }
        FirstByte::Silent | FirstByte::Gone => return,
    }
    let Some(stream) = handshake(stream, &tls, deadline).await else { return };
    let conn = Conn { stream, hub, settings, deadline, admitted };
    let lines = LineBuffer::new(IrcDoor::line_limit(&conn.settings));
    tokio::spawn(serve(conn, lines, IrcDoor::default()));
}

/// Tells TLS from plain text by the first byte, runs the TLS handshake when it is TLS, then
/// sniffs the door from the first bytes inside.
async fn handle(
    stream: TcpStream,
    hub: HubHandle,
    settings: Arc<SessionSettings>,
    admitted: Admitted,
    tls: Option<Arc<Tls>>,
    web: Option<Arc<Web>>,
) {
    let start = Instant::now();
    let deadline = start + settings.register_timeout;
    let greet_at = start + if tls.is_some() { GREET_AFTER_WITH_TLS } else { GREET_AFTER };
    match peek_first(&stream, greet_at.min(deadline)).await {
        FirstByte::Tls => match tls {
            Some(tls) => {
                let Some(stream) = handshake(stream, &tls, deadline).await else { return };
                // Greeted (when silent) counting from the end of the handshake.
                let greet_at = Instant::now() + GREET_AFTER;
                sniff(stream, Sniffing { hub, settings, admitted, deadline, greet_at, web }).await;
            }
            None => {
                let peer = stream.peer_addr().ok();
                tracing::info!(peer = ?peer, "TLS handshake refused: no certificate configured (--tls-cert)");
                drain(&stream);
                let line = "*** bye: this server does not speak TLS; connect without TLS\r\n";
                let _ = stream.try_write(line.as_bytes());
            }
        },
        FirstByte::Gone => {}
        FirstByte::Plain | FirstByte::Silent => {
            sniff(stream, Sniffing { hub, settings, admitted, deadline, greet_at, web }).await
        }
    }
}

/// Sniffs the first bytes, then hands the connection to a task of its own for the chosen door:
/// the long-lived task then holds only that door's state, not the sniffer's nor the other
/// doors' (the size of that task is most of what an idle connection costs). A silent client
/// is greeted as a person at `greet_at`.
async fn sniff<S: Transport + AsyncRead>(stream: S, sniffing: Sniffing) {
    let web = sniffing.web.clone();
    let Some((conn, lines)) = first_line(stream, sniffing).await else { return };
    if let Some(web) = web
        && looks_like_http(lines.peek())
    {
        let Conn { stream, hub, settings, admitted, .. } = conn;
        tokio::spawn(http(stream, lines.peek().to_vec(), hub, settings, admitted, web));
        return;
    }
    start_door(conn, lines);
}

/// Sniffs the first message of a WebSocket connection that named no subprotocol (no HTTP
/// inside), then starts its door.
async fn sniff_websocket<S: Transport>(stream: S, sniffing: Sniffing) {
    if let Some((conn, lines)) = first_line(stream, sniffing).await {
        start_door(conn, lines);
    }
}

/// Waits for the first line (or the greeting time, or the deadline); `None` when the
/// connection ended meanwhile.
async fn first_line<S: Transport>(mut stream: S, sniffing: Sniffing) -> Option<(Conn<S>, LineBuffer)> {
    let Sniffing { hub, settings, admitted, deadline, greet_at, web: _ } = sniffing;
    let mut lines = LineBuffer::new(settings.max_line as usize);
    // Help-desk visitors are never greeted: as if they had been already; nor is a client
    // whose greeting time is its deadline (WebSocket: the page speaks first).
    let mut greeted = settings.helpdesk.is_some() || greet_at >= deadline;
    // Set once the first line has begun: how long to wait for its end.
    let mut line_wait: Option<Instant> = None;
    loop {
        let wait = match line_wait {
            Some(at) => at.min(deadline),
            // A silent connection looks now and then whether the server is stopping.
            None if greeted => (Instant::now() + conn::STOP_CHECK).min(deadline),
            None => greet_at.min(deadline),
        };
        // The peer hung up before its first line.
        let lost = || {
            hub.metrics().disconnected(Disconnect::ConnectionLost);
            None
        };
        match timeout_at(wait, poll_fn(|cx| stream.poll_read_ready(cx))).await {
            Ok(Ok(())) => match read_available(&mut stream, &mut lines) {
                Ok(0) => return lost(),
                Ok(_) => match first_byte(&lines) {
                    Some(b'{') => break,
                    Some(_) if lines.peek().contains(&b'\n') || lines.pending() > 512 => break,
                    Some(_) => {
                        line_wait.get_or_insert(Instant::now() + FIRST_LINE_WAIT);
                        continue;
                    }
                    None => continue,
                },
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return lost(),
            },
            Ok(Err(_)) => return lost(),
            Err(_) if hub.is_stopped() => {
                hub.metrics().disconnected(Disconnect::Shutdown);
                write_line(&mut stream, b"*** bye: server shutting down\r\n").await;
                return None;
            }
            Err(_) if admitted.is_evicted() => {
                tracing::info!(peer = %admitted.peer(), "disconnected: not logged in while newer connections waited");
                hub.metrics().disconnected(Disconnect::Evicted);
                let _ = stream.write_all(format!("*** bye: {}\r\n", crate::peers::EVICTED).as_bytes()).await;
                return None;
            }
            Err(_) if line_wait.is_some() && Instant::now() < deadline => break,
            Err(_) if greeted && Instant::now() < deadline => {}
            Err(_) if !greeted && Instant::now() < deadline => {
                greeted = true;
                if !write_line(&mut stream, GREETING.as_bytes()).await {
                    return None;
                }
            }
            // A visitor still thinking about its first question becomes a guest all the same.
            Err(_) if settings.helpdesk.is_some() => break,
            Err(_) => {
                hub.metrics().disconnected(Disconnect::RegistrationTimeout);
                write_line(&mut stream, b"*** bye: registration timeout: log in within the time allowed\r\n")
                    .await;
                return None;
            }
        }
    }
    Some((Conn { stream, hub, settings, deadline, admitted }, lines))
}

/// Starts the door the first bytes chose, in a task of its own.
fn start_door<S: Transport>(conn: Conn<S>, lines: LineBuffer) {
    let settings = conn.settings.clone();
    match first_byte(&lines) {
        Some(b'{') => tokio::spawn(serve(conn, lines, NativeDoor::new(settings.max_line as usize))),
        _ if looks_like_irc(lines.peek()) => {
            let mut irc = LineBuffer::new(MAX_IRC_LINE);
            irc.extend(lines.peek());
            tokio::spawn(serve(conn, irc, IrcDoor::default()))
        }
        _ => match settings.helpdesk {
            Some(desk) => tokio::spawn(serve(conn, lines, HelpdeskDoor::new(desk))),
            None => tokio::spawn(serve(conn, lines, TextDoor::default())),
        },
    };
}

/// Writes a line the sniffer answers by itself (greeting, goodbye), through any transport
/// buffering (TLS); false when the peer is gone. Bounded by the socket's buffer: a new
/// connection's is empty, and the lines are short.
async fn write_line<S: Transport>(stream: &mut S, line: &[u8]) -> bool {
    stream.write_all(line).await.is_ok() && stream.flush().await.is_ok()
}

fn first_byte(lines: &LineBuffer) -> Option<u8> {
    lines.peek().iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// True when the first line is an IRC registration command (`CAP LS`, `NICK x`, ...). The
/// word must be followed by a space: a text-mode user who types the nickname `nick` stays in
/// text mode.
fn looks_like_irc(bytes: &[u8]) -> bool {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    let rest = &bytes[start..];
    ["CAP ", "NICK ", "PASS ", "USER "]
        .iter()
        .any(|w| rest.len() >= w.len() && rest[..w.len()].eq_ignore_ascii_case(w.as_bytes()))
}

/// What the sniffer needs besides the stream.
struct Sniffing {
    hub: HubHandle,
    settings: Arc<SessionSettings>,
    admitted: Admitted,
    /// When the client must be logged in.
    deadline: Instant,
    /// When a silent client is greeted in text mode (never, when it is the deadline).
    greet_at: Instant,
    /// What HTTP serves, when HTTP is recognised here.
    web: Option<Arc<Web>>,
}

/// The `--http` and `--metrics` listeners: HTTP, inside TLS when the client opens with a
/// handshake and a certificate is configured.
async fn http_only(conn: Conn<TcpStream>, tls: Option<Arc<Tls>>, web: Arc<Web>) {
    let Conn { stream, hub, settings, deadline, admitted } = conn;
    match (peek_first(&stream, deadline).await, tls) {
        (FirstByte::Tls, Some(tls)) => {
            let Some(stream) = handshake(stream, &tls, deadline).await else { return };
            http(stream, Vec::new(), hub, settings, admitted, web).await;
        }
        (FirstByte::Tls, None) => {
            drain(&stream);
            let _ = stream
                .try_write(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
        }
        (FirstByte::Plain, _) => http(stream, Vec::new(), hub, settings, admitted, web).await,
        (FirstByte::Silent | FirstByte::Gone, _) => {}
    }
}

/// Serves an HTTP connection; one upgraded to WebSocket becomes a session.
async fn http<S: Transport + AsyncRead>(
    stream: S,
    early: Vec<u8>,
    hub: HubHandle,
    settings: Arc<SessionSettings>,
    admitted: Admitted,
    web: Arc<Web>,
) {
    if let Some(upgraded) = crate::http::serve(stream, early, &hub, &admitted, web).await {
        websocket(upgraded.stream, &upgraded.early, upgraded.subprotocol, hub, settings, admitted);
    }
}

/// Starts the session of a connection upgraded to WebSocket: IRC for the IRCv3
/// subprotocols, else whatever the first message says (never greeted: a browser's page
/// speaks first).
fn websocket<S: Transport>(
    stream: S,
    early: &[u8],
    subprotocol: Subprotocol,
    hub: HubHandle,
    settings: Arc<SessionSettings>,
    admitted: Admitted,
) {
    let deadline = Instant::now() + settings.register_timeout;
    let outgoing = match subprotocol {
        Subprotocol::IrcBinary => Outgoing::Binary,
        Subprotocol::IrcText | Subprotocol::Sniff => Outgoing::Text,
    };
    let stream = WsTransport::new(stream, early, outgoing);
    match subprotocol {
        Subprotocol::IrcText | Subprotocol::IrcBinary => {
            let lines = LineBuffer::new(IrcDoor::line_limit(&settings));
            let conn = Conn { stream, hub, settings, deadline, admitted };
            tokio::spawn(serve(conn, lines, IrcDoor::default()));
        }
        Subprotocol::Sniff => {
            let sniffing = Sniffing { hub, settings, admitted, deadline, greet_at: deadline, web: None };
            tokio::spawn(sniff_websocket(stream, sniffing));
        }
    }
}

/// An accepted connection on its way to a door.
struct Conn<S> {
    stream: S,
    hub: HubHandle,
    settings: Arc<SessionSettings>,
    /// When the client must be logged in.
    deadline: Instant,
    /// The peer and its place in the connection counts, handed to the session.
    admitted: Admitted,
}

/// The connection's task, ready to spawn. Not an `async fn`: the context is made and the door
/// told of a client certificate before the task exists, so that the task is the connection
/// loop's future alone, with no copy of what it was made from beside it (idle connections
/// pay for every byte of it; `tokio::spawn` allocates it in its allocator size class).
fn serve<D: Door, S: Transport>(
    conn: Conn<S>,
    lines: LineBuffer,
    mut door: D,
) -> impl std::future::Future<Output = ()> + Send {
    let Conn { stream, hub, settings, deadline, admitted } = conn;
    let mut ctx = SessionCtx::admitted(hub, settings, D::KIND, admitted);
    ctx.secure = S::SECURE;
    if S::MESSAGES {
        ctx.over_websocket();
    }
    if let Some(fingerprint) = stream.client_certificate() {
        door.on_client_certificate(&fingerprint);
    }
    conn::run(stream, lines, door, ctx, deadline)
}

#[cfg(test)]
mod tests {
    use super::looks_like_irc;

    #[test]
    fn irc_is_recognised_by_its_first_line() {
        for yes in
            ["CAP LS 302\r\n", "NICK ann\r\n", "nick ann", "PASS secret\r\n", "USER a 0 * :A\r\n", "  CAP LS"]
        {
            assert!(looks_like_irc(yes.as_bytes()), "{yes}");
        }
        for no in ["nick\n", "ann\n", "{\"type\":\"hello\"}", "capybara\n", "", "CAP"] {
            assert!(!looks_like_irc(no.as_bytes()), "{no}");
        }
    }
}
