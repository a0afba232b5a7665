//! The connection library: one async [`Client`] that the TUI, line mode, tests and
//! `natter bench` share, so that reconnecting, catching up and resending are written once.
//!
//! A background task owns the TCP connection. It logs in, keeps the list of joined rooms and
//! the highest message id (`mid`) seen in each, pings for lag, and when the connection drops it
//! reconnects with exponential backoff and jitter, joins the rooms again, fetches every stored
//! message it missed (`history {after: last mid}`, page by page) and resends the messages that
//! were not acknowledged yet, with their original client ids (`cid`) so the server never stores
//! one twice. Every chat message reaches the [`Event`] stream exactly once.
//!
//! Given several servers (the nodes of one cluster, [`ConnectOptions::servers`]), it moves on
//! to the next one when its connection is lost or an attempt fails, round robin, and backs off
//! only after a full round failed: message ids are the cluster's, so the catch-up and the
//! resends work the same on any node.
//!
//! This file is the public face ([`Client`] and what it takes and reports); the task behind it
//! is split by job:
//!
//! - `actor`: the task's loops (reconnect, session) and routing each server frame;
//! - `login`: the `hello`/`welcome` handshake and the reconnect backoff;
//! - `wire`: the TCP connection as frames, with the size limits;
//! - `requests`: the ledger of request ids in flight, and waiting for idle;
//! - `catch_up`: delivering each message once, and fetching what was missed;
//! - `resend`: the outbox of messages not acknowledged yet;
//! - `account`: staying logged in to an account across reconnects (saved resume tokens).

mod account;
mod actor;
mod catch_up;
mod login;
mod requests;
mod resend;
mod wire;

pub use login::backoff_delay;
pub use requests::frame_id;

use actor::{Cmd, Shared};
use catch_up::CatchUp;
use natter_proto::native::{ClientFrame, ErrorCode, MessageFrame, ServerFrame};
use requests::Requests;
use resend::Outgoing;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The session's state, owned by its background task.
///
/// Defined here, beside the public handle, so that each of the actor's jobs (its loop,
/// login, catch-up, resend) can live in a file of its own and share it.
struct Actor {
    opts: ConnectOptions,
    cmds: mpsc::UnboundedReceiver<Cmd>,
    events: mpsc::UnboundedSender<Event>,
    shared: Arc<Mutex<Shared>>,
    /// Nickname in use (or being tried at login).
    nick: String,
    /// Rooms joined (display names), in order.
    rooms: Vec<String>,
    /// Rooms (folded) whose `joined` arrived on the current connection.
    joined_here: HashSet<String>,
    catch_up: CatchUp,
    outbox: VecDeque<Outgoing>,
    requests: Requests,
    /// Number of the current connection, from 1; 0 before the first.
    generation: u64,
    connected_once: bool,
    /// Logins in a row refused because the nickname is taken.
    nick_taken_streak: u32,
    /// Index in [`ConnectOptions::servers`] of the server connected to, or tried next.
    current: usize,
    /// The server of the previous connection, to tell the user when a reconnect lands on
    /// another one.
    last_server: Option<String>,
    /// Given at every login: the server remembers our message ids (`cid`) under it, so that a
    /// resend after a reconnect is recognised as ours. `None` if the system had no randomness
    /// to make one (our ids then last one connection: a resend may be shown twice).
    client_secret: Option<String>,
    /// The saved login for this server and nickname (`ConnectOptions::saved_logins`), whose
    /// token `hello` gives.
    saved_login: Option<crate::saved_login::SavedLogin>,
}

/// The port `natter serve` listens on by default, so `HOST` alone is enough to connect.
pub const DEFAULT_PORT: u16 = 7878;

/// The room every session is put in at login; it needs no explicit join.
pub const LOBBY: &str = "#lobby";

/// Largest server frame accepted. Generous, because a history page carries many messages;
/// anything bigger is reported and skipped rather than buffered without bound.
pub const MAX_FRAME: usize = 4 * 1024 * 1024;

/// The most servers one client is given: each is tried in turn when the others are down, so a
/// longer list only lengthens a round of failed attempts (and is more likely a mistake).
pub const MAX_SERVERS: usize = 16;

/// One server the client may connect to: one node of a cluster, or the only server.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `host:port`.
    pub addr: String,
    /// TLS, and which certificates to trust, for this server (certificates are remembered per
    /// `host:port`); `None` for plain TCP.
    pub tls: Option<crate::tls::ClientTls>,
}

impl Endpoint {
    /// A server reached over plain TCP.
    pub fn plain(addr: impl Into<String>) -> Self {
        Self { addr: addr.into(), tls: None }
    }
}

/// How to reach the server and how to behave when the connection is lost. Tests shorten the
/// delays; people keep the defaults.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The servers, in the order they are tried: the first at start, the next one whenever a
    /// connection is lost or an attempt fails, round robin. Several servers are the nodes of
    /// one cluster (they share accounts, rooms and message ids). Never empty.
    pub servers: Vec<Endpoint>,
    /// Nickname to log in with; `_` is appended while it is taken.
    pub nick: String,
    /// Rooms to join after login, besides the lobby the server joins by itself.
    pub rooms: Vec<String>,
    /// Reconnect after the connection drops (true), or end the session (false).
    pub reconnect: bool,
    /// First reconnect delay; it doubles on each failed attempt.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// How often to ping the server (lag display, dead-connection detection).
    pub ping_interval: Duration,
    /// How long to wait for a TCP connection or a login answer.
    pub connect_timeout: Duration,
    /// How many times to try `nick_`, `nick__`... when the nickname is taken.
    pub nick_retries: u32,
    /// Deliver the latest messages a room's first join brings, as [`Event::Message`]s marked
    /// `history` (the TUI fills its scrollback with them). Line mode turns this off: a script
    /// wants what happens from now on. Messages missed while reconnecting are delivered either
    /// way.
    pub join_history: bool,
    /// Where to keep the resume token of an account logged in to, so that reconnects and the
    /// next start log in to it again without the password; `None` (the default): nowhere,
    /// and a reconnect is not logged in to an account.
    pub saved_logins: Option<crate::saved_login::SavedLogins>,
}

impl ConnectOptions {
    /// Options with the defaults people want, for one server over plain TCP: reconnect with
    /// 0.5 s to 30 s backoff, ping every 15 s.
    pub fn new(addr: impl Into<String>, nick: impl Into<String>) -> Self {
        Self {
            servers: vec![Endpoint::plain(addr)],
            nick: nick.into(),
            rooms: Vec::new(),
            reconnect: true,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            ping_interval: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(10),
            nick_retries: 5,
            join_history: true,
            saved_logins: None,
        }
    }
}

/// Why a client operation failed. Each message says what went wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection could not be made.
    #[error("could not connect to {addr}: {source}; check the address and that `natter serve` runs there")]
    Connect {
        /// The address tried.
        addr: String,
        /// The system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The server refused the login (bad nickname, nickname taken, version...).
    #[error("the server at {addr} refused the login: {message} ({})", code.as_str())]
    Login {
        /// The server's address.
        addr: String,
        /// The server's error code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// None of several servers could be reached at start: each with its reason.
    #[error(
        "could not connect to any of the {} servers; check the addresses and that `natter serve` runs there:{}",
        .0.len(),
        .0.iter().map(|(addr, why)| format!("\n  {addr}: {why}")).collect::<String>()
    )]
    NoServer(Vec<(String, String)>),
    /// The TLS handshake failed or did not finish in time.
    #[error("{0}")]
    Tls(String),
    /// The server's certificate is not the one expected (changed since first use, or not the
    /// one pinned): never retried, since trying again cannot make it right.
    #[error("{0}")]
    CertificateRefused(String),
    /// The server did not speak the protocol as expected (closed early, no answer...).
    #[error("{0}")]
    Protocol(String),
    /// The connection dropped before the answer arrived.
    #[error("not connected to the server (reconnecting); try again in a moment")]
    Disconnected,
    /// The server answered the request with an error.
    #[error("{message} ({})", code.as_str())]
    Server {
        /// The server's error code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// The frame is longer than the server accepts; it was not sent.
    #[error("not sent: {0}")]
    TooLong(String),
    /// The client was shut down (quit, or every handle dropped).
    #[error("the client has quit")]
    Closed,
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A room, e.g. `#lobby`.
    Room(String),
    /// A private message to a nickname.
    Nick(String),
}

/// The connection's state, for the status line and line mode's progress messages.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Logged in (first time or after a reconnect).
    Connected {
        /// Server address.
        addr: String,
        /// Server name and version from `welcome`.
        server: String,
        /// Nickname in use.
        nick: String,
        /// True when this is a reconnect.
        reconnected: bool,
        /// The server of the previous connection, when this one is to another server (the
        /// client moved to another node of the cluster).
        moved_from: Option<String>,
    },
    /// The connection is down; the next attempt starts after `delay`.
    Reconnecting {
        /// The server the next attempt goes to.
        next: String,
        /// Attempt number, from 1.
        attempt: u32,
        /// Wait before the attempt.
        delay: Duration,
        /// Why the previous connection ended or the last attempt failed.
        reason: String,
    },
    /// Missed messages of a room were fetched after a reconnect.
    CaughtUp {
        /// The room.
        room: String,
        /// How many messages were missed.
        count: usize,
    },
    /// The session is over; no more events follow.
    Closed {
        /// Why.
        reason: String,
    },
}

/// What the client reports to its user, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Connection state changed.
    Status(Status),
    /// A chat message, delivered exactly once: from others, one's own once acknowledged, from
    /// the history a join brings, or fetched to catch up after a reconnect.
    Message {
        /// The message.
        msg: MessageFrame<'static>,
        /// True for one's own message (built from the server's `ack`).
        own: bool,
        /// True when it comes from stored history rather than live.
        history: bool,
    },
    /// One of our messages was accepted by the server.
    Acked {
        /// Its client id.
        cid: String,
        /// Its server id, when stored.
        mid: Option<u64>,
        /// True when a resend found it already accepted (nothing was doubled).
        duplicate: bool,
    },
    /// One of our messages was refused; it will not be retried.
    SendFailed {
        /// Its client id.
        cid: String,
        /// The server's error code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// Any other server frame: presence, topics, member lists, answers to
    /// [`Client::submit`], errors. `joined` frames arrive here with their history moved out
    /// into [`Event::Message`]s.
    Frame(ServerFrame<'static>),
    /// Round-trip time of the last ping.
    Lag(Duration),
    /// Something odd that is not fatal, e.g. an unreadable frame from the server.
    Warning(String),
}

/// The stream of [`Event`]s of one [`Client`].
pub type Events = mpsc::UnboundedReceiver<Event>;

/// A handle on a natter session. Cheap to clone; the session ends when [`Client::quit`] is
/// called or the last handle is dropped.
#[derive(Clone)]
pub struct Client {
    tx: mpsc::UnboundedSender<Cmd>,
    shared: Arc<Mutex<Shared>>,
    cid_prefix: Arc<str>,
    cid_next: Arc<AtomicU64>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("nick", &self.nick()).finish()
    }
}

impl Client {
    /// Connects and logs in, then keeps the session alive in the background. Fails when the
    /// first connection or login fails, so that a mistyped address is reported at once;
    /// later drops are handled by reconnecting (when [`ConnectOptions::reconnect`] is set).
    /// Needs a tokio runtime.
    pub async fn connect(opts: ConnectOptions) -> Result<(Client, Events), ClientError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Mutex::new(Shared { nick: opts.nick.clone(), ..Default::default() }));
        let (first_tx, first_rx) = oneshot::channel();
        let actor = Actor::new(opts, rx, ev_tx, shared.clone());
        tokio::spawn(actor.run(first_tx));
        match first_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(ClientError::Closed),
        }
        let client = Client {
            tx,
            shared,
            cid_prefix: format!("{:012x}", login::random_u64() & 0xffff_ffff_ffff).into(),
            cid_next: Arc::new(AtomicU64::new(1)),
        };
        Ok((client, ev_rx))
    }

    /// The nickname currently in use (it changes with `/nick` or when the wanted one was taken).
    pub fn nick(&self) -> String {
        self.shared.lock().map(|s| s.nick.clone()).unwrap_or_default()
    }

    /// True while logged in; false while reconnecting.
    pub fn is_connected(&self) -> bool {
        self.shared.lock().map(|s| s.connected).unwrap_or(false)
    }

    /// How many sent messages wait for the server's acknowledgement.
    pub fn pending(&self) -> usize {
        self.shared.lock().map(|s| s.unacked).unwrap_or(0)
    }

    /// Rooms joined, in joining order.
    pub fn rooms(&self) -> Vec<String> {
        self.shared.lock().map(|s| s.rooms.clone()).unwrap_or_default()
    }

    /// Queues a message and returns its client id. It is sent now, or after the reconnect when
    /// the connection is down, and resent until acknowledged ([`Event::Acked`]) or refused
    /// ([`Event::SendFailed`]); the server drops resends it already has.
    pub fn send(&self, target: Target, text: impl Into<String>, action: bool) -> String {
        let n = self.cid_next.fetch_add(1, Ordering::Relaxed);
        let cid = format!("{}-{n}", self.cid_prefix);
        let out = Outgoing::new(cid.clone(), target, text.into(), action);
        if let Ok(mut s) = self.shared.lock() {
            s.unacked += 1;
        }
        if self.tx.send(Cmd::Send(out)).is_err()
            && let Ok(mut s) = self.shared.lock()
        {
            s.unacked = s.unacked.saturating_sub(1);
        }
        cid
    }

    /// Sends a message to a room; see [`Client::send`].
    pub fn say(&self, room: &str, text: impl Into<String>) -> String {
        self.send(Target::Room(room.to_string()), text, false)
    }

    /// Sends any other frame; its answer (or error) arrives as an [`Event::Frame`]. A request id
    /// is set by the client. While disconnected the frame is dropped with an [`Event::Warning`].
    pub fn submit(&self, frame: ClientFrame) {
        let _ = self.tx.send(Cmd::Submit(frame));
    }

    /// Sends a frame and waits for its answer, which is not reported as an event.
    pub async fn request(&self, frame: ClientFrame) -> Result<ServerFrame<'static>, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Cmd::Request(frame, tx)).map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Fetches one page of a room's stored history: messages with ids below `before` or above
    /// `after` (the latest without either), oldest first, and whether more remain.
    pub async fn history(
        &self,
        room: &str,
        before: Option<u64>,
        after: Option<u64>,
        limit: u32,
    ) -> Result<(Vec<MessageFrame<'static>>, bool), ClientError> {
        let frame = ClientFrame::History { room: room.into(), before, after, limit: Some(limit), id: None };
        match self.request(frame).await? {
            ServerFrame::History { messages, more, .. } => Ok((messages, more)),
            other => Err(ClientError::Protocol(format!("unexpected answer to history: {other:?}"))),
        }
    }

    /// Waits until every queued message is acknowledged or refused and every submitted request
    /// answered: what a script needs before quitting so that nothing is lost.
    pub async fn wait_idle(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::WaitIdle(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Says goodbye to the server and ends the session; returns once the connection is closed.
    pub async fn quit(&self, reason: Option<String>) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Quit(reason, tx)).is_ok() {
            let _ = rx.await;
        }
    }
}
