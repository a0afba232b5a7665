//! The connection library: one async [`Client`] that the TUI, line mode, tests and
//! `natter bench` share, so that reconnecting, catching up and resending are written once.
//!
//! A background task owns the TCP connection. It logs in, keeps the list of joined rooms and
//! the highest message id (`mid`) seen in each, pings for lag, and when the connection drops it
//! reconnects with exponential backoff and jitter, joins the rooms again, fetches every stored
//! message it missed (`history {after: last mid}`, page by page) and resends the messages that
//! were not acknowledged yet, with their original client ids (`cid`) so the server never stores
//! one twice. Every chat message reaches the [`Event`] stream exactly once.

use natter_proto::line::{LineBuffer, LineEvent};
use natter_proto::names::fold;
use natter_proto::native::{
    ClientFrame, ErrorCode, MessageFrame, RequestId, ServerFrame, client_frame_line, parse_server_frame,
};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

/// The port `natter serve` listens on by default, so `HOST` alone is enough to connect.
pub const DEFAULT_PORT: u16 = 7878;

/// The room every session is put in at login; it needs no explicit join.
pub const LOBBY: &str = "#lobby";

/// Largest server frame accepted. Generous, because a history page carries many messages;
/// anything bigger is reported and skipped rather than buffered without bound.
pub const MAX_FRAME: usize = 4 * 1024 * 1024;

/// How many messages one catch-up request asks for.
const CATCH_UP_PAGE: u32 = 200;

/// How many message ids per room are remembered to drop duplicates.
const SEEN_CAPACITY: usize = 4096;

/// How to reach the server and how to behave when the connection is lost. Tests shorten the
/// delays; people keep the defaults.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `host:port` of the server.
    pub addr: String,
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
}

impl ConnectOptions {
    /// Options with the defaults people want: reconnect with 0.5 s to 30 s backoff, ping every
    /// 15 s.
    pub fn new(addr: impl Into<String>, nick: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            nick: nick.into(),
            rooms: Vec::new(),
            reconnect: true,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            ping_interval: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(10),
            nick_retries: 5,
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
    },
    /// The connection is down; the next attempt starts after `delay`.
    Reconnecting {
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

enum Cmd {
    Send(Outgoing),
    Submit(ClientFrame),
    Request(ClientFrame, oneshot::Sender<Result<ServerFrame<'static>, ClientError>>),
    WaitIdle(oneshot::Sender<()>),
    Quit(Option<String>, oneshot::Sender<()>),
}

#[derive(Debug, Clone)]
struct Outgoing {
    cid: String,
    target: Target,
    text: String,
    action: bool,
    /// Connection generation this was last sent on; resent when it differs from the current.
    sent_on: Option<u64>,
    /// Retry after this instant (rate limited or store failure).
    retry_at: Option<Instant>,
}

#[derive(Default)]
struct Shared {
    nick: String,
    connected: bool,
    pending: usize,
    rooms: Vec<String>,
}

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

fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// A delay for attempt `attempt` (from 1): exponential from `min`, capped at `max`, with jitter
/// so that many clients dropped at once do not reconnect in lockstep. Uniform in [d/2, d].
pub fn backoff_delay(attempt: u32, min: Duration, max: Duration, random: u64) -> Duration {
    let exp = min.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let d = exp.min(max).max(Duration::from_millis(1));
    let half = d / 2;
    let jitter_ns = (random % (half.as_nanos() as u64 + 1)) as u32 as u64;
    half + Duration::from_nanos(jitter_ns.min(half.as_nanos() as u64))
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
            cid_prefix: format!("{:012x}", random_u64() & 0xffff_ffff_ffff).into(),
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
        self.shared.lock().map(|s| s.pending).unwrap_or(0)
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
        let out =
            Outgoing { cid: cid.clone(), target, text: text.into(), action, sent_on: None, retry_at: None };
        if let Ok(mut s) = self.shared.lock() {
            s.pending += 1;
        }
        if self.tx.send(Cmd::Send(out)).is_err()
            && let Ok(mut s) = self.shared.lock()
        {
            s.pending = s.pending.saturating_sub(1);
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

/// What a pending request id stands for.
enum Pending {
    Send(String),
    /// A submitted frame; `answered` when the server always answers it (with the id).
    Fire {
        answered: bool,
    },
    Reply(oneshot::Sender<Result<ServerFrame<'static>, ClientError>>),
    CatchUp(String),
    Rejoin,
    Ping(Instant),
}

/// Message ids already delivered in one room.
#[derive(Default)]
struct Seen {
    last: Option<u64>,
    recent: HashSet<u64>,
    order: VecDeque<u64>,
    /// Ids at or below this were forgotten; they count as seen.
    floor: u64,
}

impl Seen {
    /// Records `mid`; false when it was seen already.
    fn insert(&mut self, mid: u64) -> bool {
        if (mid <= self.floor && self.floor > 0) || !self.recent.insert(mid) {
            return false;
        }
        self.order.push_back(mid);
        if self.order.len() > SEEN_CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.recent.remove(&old);
            self.floor = self.floor.max(old);
        }
        self.last = Some(self.last.map_or(mid, |l| l.max(mid)));
        true
    }
}

enum End {
    Quit,
    Lost(String),
}

struct Conn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    lines: LineBuffer,
    buf: Vec<u8>,
    bye: Option<String>,
    /// The server's line limit from `welcome`, when it told it.
    max_line: Option<usize>,
}

/// Why reading from the server stopped.
enum ReadError {
    Closed(String),
}

/// Why a frame is not sent: the server drops a line over its limit with an error that cannot
/// name the request, so the request would wait for an answer forever.
fn too_long_message(len: usize, max: usize) -> String {
    format!(
        "too long: it takes {len} bytes on the wire and the server accepts at most {max} per line; \
         split it into shorter messages"
    )
}

impl Conn {
    async fn write(&mut self, frame: &ClientFrame) -> Result<(), String> {
        self.write_line(&client_frame_line(frame)).await
    }

    async fn write_line(&mut self, line: &[u8]) -> Result<(), String> {
        self.wr.write_all(line).await.map_err(|e| format!("connection lost: {e}"))
    }

    /// The frame as one line, or why the server would refuse it for its size.
    fn encode(&self, frame: &ClientFrame) -> Result<Vec<u8>, String> {
        let line = client_frame_line(frame);
        let len = line.len() - 1;
        match self.max_line {
            Some(max) if len > max => Err(too_long_message(len, max)),
            _ => Ok(line),
        }
    }

    /// Next readable frame; unreadable ones become warnings. Cancel-safe: bytes are moved into
    /// the line buffer right after each read, with no await in between.
    async fn next_frame(
        &mut self,
        events: &mpsc::UnboundedSender<Event>,
    ) -> Result<ServerFrame<'static>, ReadError> {
        loop {
            while let Some(ev) = self.lines.next_line() {
                match ev {
                    LineEvent::Line(line) => {
                        if line.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        match parse_server_frame(line) {
                            Ok(frame) => return Ok(frame),
                            Err(e) => {
                                let _ =
                                    events.send(Event::Warning(format!("ignored a frame: {}", e.message)));
                            }
                        }
                    }
                    LineEvent::TooLong(max) => {
                        let _ = events.send(Event::Warning(format!(
                            "ignored a frame from the server larger than {max} bytes"
                        )));
                    }
                }
            }
            match self.rd.read(&mut self.buf).await {
                Ok(0) => {
                    let why = match &self.bye {
                        Some(r) => format!("the server closed the connection: {r}"),
                        None => "the server closed the connection".to_string(),
                    };
                    return Err(ReadError::Closed(why));
                }
                Ok(n) => self.lines.extend(&self.buf[..n]),
                Err(e) => return Err(ReadError::Closed(format!("connection lost: {e}"))),
            }
        }
    }
}

fn owned_msg(m: MessageFrame<'_>) -> MessageFrame<'static> {
    MessageFrame {
        room: m.room.map(|r| Cow::Owned(r.into_owned())),
        from: Cow::Owned(m.from.into_owned()),
        to: m.to.map(|r| Cow::Owned(r.into_owned())),
        text: Cow::Owned(m.text.into_owned()),
        action: m.action,
        notice: m.notice,
        mid: m.mid,
        ts: m.ts,
    }
}

/// The request id of a server frame, when it answers one.
pub fn frame_id<'f>(frame: &'f ServerFrame<'_>) -> Option<&'f RequestId> {
    use ServerFrame as S;
    match frame {
        S::Welcome { id, .. }
        | S::Ack { id, .. }
        | S::Topic { id, .. }
        | S::Joined { id, .. }
        | S::Members { id, .. }
        | S::Rooms { id, .. }
        | S::History { id, .. }
        | S::IgnoreMode { id, .. }
        | S::Ignoring { id, .. }
        | S::Notice { id, .. }
        | S::Error { id, .. }
        | S::RoomModes { id, .. }
        | S::Bans { id, .. }
        | S::Invite { id, .. }
        | S::Away { id, .. }
        | S::UserInfo { id, .. }
        | S::Whowas { id, .. }
        | S::Pong { id } => id.as_ref(),
        S::Message(_)
        | S::Join { .. }
        | S::Part { .. }
        | S::Quit { .. }
        | S::Nick { .. }
        | S::Mode { .. }
        | S::Kick { .. }
        | S::Bye { .. } => None,
    }
}

/// Sets the request id of a client frame that can carry one; false for those that cannot.
fn set_frame_id(frame: &mut ClientFrame, new: RequestId) -> bool {
    use ClientFrame as C;
    match frame {
        C::Hello { id, .. }
        | C::Send { id, .. }
        | C::Join { id, .. }
        | C::Part { id, .. }
        | C::Nick { id, .. }
        | C::Topic { id, .. }
        | C::Who { id, .. }
        | C::Rooms { id }
        | C::IgnoreAll { id, .. }
        | C::Ignore { id, .. }
        | C::Unignore { id, .. }
        | C::History { id, .. }
        | C::Ephemeral { id, .. }
        | C::Mode { id, .. }
        | C::Bans { id, .. }
        | C::Kick { id, .. }
        | C::Invite { id, .. }
        | C::Away { id, .. }
        | C::Whois { id, .. }
        | C::Whowas { id, .. }
        | C::Ping { id } => {
            *id = Some(new);
            true
        }
        C::Quit { .. } | C::Login { .. } | C::Broadcast { .. } | C::Sendto { .. } | C::Help {} | C::Ls {} => {
            false
        }
    }
}

/// True for frames the server always answers with a frame carrying the request id (part, nick,
/// ephemeral, kick and mode changes are answered only on error; `mode` without changes is
/// answered with the settings).
fn expects_answer(frame: &ClientFrame) -> bool {
    use ClientFrame as C;
    match frame {
        C::Mode { changes, .. } => changes.is_empty(),
        frame => matches!(
            frame,
            C::Join { .. }
                | C::Topic { .. }
                | C::Who { .. }
                | C::Rooms { .. }
                | C::IgnoreAll { .. }
                | C::Ignore { .. }
                | C::Unignore { .. }
                | C::History { .. }
                | C::Bans { .. }
                | C::Invite { .. }
                | C::Away { .. }
                | C::Whois { .. }
                | C::Whowas { .. }
                | C::Ping { .. }
        ),
    }
}

struct Actor {
    opts: ConnectOptions,
    cmds: mpsc::UnboundedReceiver<Cmd>,
    events: mpsc::UnboundedSender<Event>,
    shared: Arc<Mutex<Shared>>,
    nick: String,
    /// Rooms joined (display names), in order.
    rooms: Vec<String>,
    /// Rooms (folded) joined on the current connection.
    ready: HashSet<String>,
    seen: HashMap<String, Seen>,
    outbox: VecDeque<Outgoing>,
    pending: HashMap<i64, Pending>,
    next_id: i64,
    /// Live messages held back while a room catches up (folded room -> messages, count).
    catching_up: HashMap<String, (Vec<MessageFrame<'static>>, usize)>,
    idle_waiters: Vec<oneshot::Sender<()>>,
    generation: u64,
    connected_once: bool,
    nick_taken_streak: u32,
}

impl Actor {
    fn new(
        opts: ConnectOptions,
        cmds: mpsc::UnboundedReceiver<Cmd>,
        events: mpsc::UnboundedSender<Event>,
        shared: Arc<Mutex<Shared>>,
    ) -> Self {
        Actor {
            nick: opts.nick.clone(),
            opts,
            cmds,
            events,
            shared,
            rooms: vec![LOBBY.to_string()],
            ready: HashSet::new(),
            seen: HashMap::new(),
            outbox: VecDeque::new(),
            pending: HashMap::new(),
            next_id: 1,
            catching_up: HashMap::new(),
            idle_waiters: Vec::new(),
            generation: 0,
            connected_once: false,
            nick_taken_streak: 0,
        }
    }

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    fn sync_shared(&self, connected: bool) {
        if let Ok(mut s) = self.shared.lock() {
            s.nick = self.nick.clone();
            s.connected = connected;
            s.pending = self.outbox.len();
            s.rooms = self.rooms.clone();
        }
    }

    fn id(&mut self, what: Pending) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, what);
        RequestId::Num(id)
    }

    fn is_idle(&self) -> bool {
        self.outbox.is_empty()
            && self.catching_up.is_empty()
            && !self
                .pending
                .values()
                .any(|p| !matches!(p, Pending::Ping(_) | Pending::Rejoin | Pending::Fire { answered: false }))
    }

    fn wake_idle(&mut self) {
        if self.is_idle() {
            for w in self.idle_waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }

    async fn run(mut self, first: oneshot::Sender<Result<(), ClientError>>) {
        let mut first = Some(first);
        let mut attempt = 0u32;
        let reason = loop {
            let reason = match self.login().await {
                Ok((conn, server)) => {
                    attempt = 0;
                    self.sync_shared(true);
                    if let Some(f) = first.take() {
                        let _ = f.send(Ok(()));
                    }
                    match self.session(conn, server).await {
                        End::Quit => break "quit".to_string(),
                        End::Lost(reason) => reason,
                    }
                }
                Err(e) => {
                    if let Some(f) = first.take() {
                        let _ = f.send(Err(e));
                        return;
                    }
                    e.to_string()
                }
            };
            self.sync_shared(false);
            if !self.opts.reconnect {
                break reason;
            }
            attempt += 1;
            let delay = backoff_delay(attempt, self.opts.backoff_min, self.opts.backoff_max, random_u64());
            self.emit(Event::Status(Status::Reconnecting { attempt, delay, reason }));
            if !self.wait_offline(delay).await {
                break "quit".to_string();
            }
        };
        self.sync_shared(false);
        for (_, p) in self.pending.drain() {
            if let Pending::Reply(tx) = p {
                let _ = tx.send(Err(ClientError::Closed));
            }
        }
        for w in self.idle_waiters.drain(..) {
            let _ = w.send(());
        }
        self.emit(Event::Status(Status::Closed { reason }));
        // Answer whatever is still asked of us until every handle is gone.
        while let Some(cmd) = self.cmds.recv().await {
            match cmd {
                Cmd::WaitIdle(tx) => {
                    let _ = tx.send(());
                }
                Cmd::Quit(_, tx) => {
                    let _ = tx.send(());
                }
                Cmd::Request(_, tx) => {
                    let _ = tx.send(Err(ClientError::Closed));
                }
                Cmd::Send(_) | Cmd::Submit(_) => {}
            }
        }
    }

    /// Sleeps `delay` while keeping the handles served; false when asked to quit.
    async fn wait_offline(&mut self, delay: Duration) -> bool {
        let deadline = tokio::time::sleep(delay);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return true,
                cmd = self.cmds.recv() => match cmd {
                    None => return false,
                    Some(Cmd::Quit(_, tx)) => {
                        let _ = tx.send(());
                        return false;
                    }
                    Some(Cmd::Send(out)) => {
                        self.outbox.push_back(out);
                        self.sync_shared(false);
                    }
                    Some(Cmd::Submit(_)) => self.emit(Event::Warning(
                        "not connected (reconnecting); that command was not sent, try again in a moment".into(),
                    )),
                    Some(Cmd::Request(_, tx)) => {
                        let _ = tx.send(Err(ClientError::Disconnected));
                    }
                    Some(Cmd::WaitIdle(tx)) => {
                        if self.is_idle() {
                            let _ = tx.send(());
                        } else {
                            self.idle_waiters.push(tx);
                        }
                    }
                },
            }
        }
    }

    async fn login(&mut self) -> Result<(Conn, String), ClientError> {
        let addr = self.opts.addr.clone();
        let connect = tokio::time::timeout(self.opts.connect_timeout, TcpStream::connect(&addr));
        let stream = match connect.await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => return Err(ClientError::Connect { addr, source }),
            Err(_) => {
                return Err(ClientError::Connect {
                    addr,
                    source: std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"),
                });
            }
        };
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let mut conn = Conn {
            rd,
            wr,
            lines: LineBuffer::new(MAX_FRAME),
            buf: vec![0; 64 * 1024],
            bye: None,
            max_line: None,
        };
        let mut tries = 0;
        loop {
            let hello = ClientFrame::Hello {
                v: natter_proto::PROTOCOL_VERSION,
                nick: self.nick.clone(),
                password: None,
                id: Some(RequestId::Num(0)),
            };
            conn.write(&hello).await.map_err(ClientError::Protocol)?;
            loop {
                let frame =
                    tokio::time::timeout(self.opts.connect_timeout, conn.next_frame(&self.events)).await;
                let frame = match frame {
                    Err(_) => {
                        return Err(ClientError::Protocol(format!(
                            "the server at {addr} did not answer the login in time; is it a natter server?"
                        )));
                    }
                    Ok(Err(ReadError::Closed(why))) => {
                        return Err(ClientError::Protocol(format!("{why} during login")));
                    }
                    Ok(Ok(f)) => f,
                };
                match frame {
                    ServerFrame::Welcome { nick, server, max_line, .. } => {
                        conn.max_line = max_line;
                        self.nick = nick.into_owned();
                        self.nick_taken_streak = 0;
                        return Ok((conn, server.into_owned()));
                    }
                    ServerFrame::Error { code: ErrorCode::NickInUse, message, .. } => {
                        // After a drop our old session may still hold the nick for a moment:
                        // wait for it a few times before picking another one.
                        self.nick_taken_streak += 1;
                        if self.connected_once && self.nick_taken_streak <= 3 {
                            return Err(ClientError::Login {
                                addr,
                                code: ErrorCode::NickInUse,
                                message: message.into(),
                            });
                        }
                        tries += 1;
                        if tries > self.opts.nick_retries {
                            return Err(ClientError::Login {
                                addr,
                                code: ErrorCode::NickInUse,
                                message: format!("{message}; pick another with --nick"),
                            });
                        }
                        let next = format!("{}_", self.nick);
                        self.emit(Event::Warning(format!("nickname {} is taken; trying {next}", self.nick)));
                        self.nick = next;
                        break;
                    }
                    ServerFrame::Error { code, message, .. } => {
                        return Err(ClientError::Login { addr, code, message: message.into_owned() });
                    }
                    ServerFrame::Bye { reason } => {
                        return Err(ClientError::Protocol(format!("the server ended the session: {reason}")));
                    }
                    other => self.emit(Event::Frame(other)),
                }
            }
        }
    }

    async fn session(&mut self, mut conn: Conn, server: String) -> End {
        self.generation += 1;
        self.ready.clear();
        self.catching_up.clear();
        let reconnected = self.connected_once;
        self.connected_once = true;
        self.sync_shared(true);
        self.emit(Event::Status(Status::Connected {
            addr: self.opts.addr.clone(),
            server,
            nick: self.nick.clone(),
            reconnected,
        }));
        let end = self.session_loop(&mut conn).await;
        // Requests of the dead connection will never be answered.
        let pending = std::mem::take(&mut self.pending);
        for (_, p) in pending {
            if let Pending::Reply(tx) = p {
                let _ = tx.send(Err(ClientError::Disconnected));
            }
        }
        // Held-back live messages are fetched again by the next catch-up.
        self.catching_up.clear();
        end
    }

    async fn session_loop(&mut self, conn: &mut Conn) -> End {
        // First login: the rooms asked for; after a reconnect: the rooms we were in.
        let mut wanted: Vec<String> = if self.generation > 1 { Vec::new() } else { self.opts.rooms.clone() };
        for r in &self.rooms {
            if !wanted.iter().any(|w| fold(w) == fold(r)) {
                wanted.push(r.clone());
            }
        }
        for room in wanted {
            if fold(&room) == fold(LOBBY) {
                continue;
            }
            let id = self.id(Pending::Rejoin);
            if let Err(e) = conn.write(&ClientFrame::Join { room, key: None, id: Some(id) }).await {
                return End::Lost(e);
            }
        }
        if let Err(e) = self.flush_outbox(conn).await {
            return End::Lost(e);
        }
        let mut ping = tokio::time::interval(self.opts.ping_interval);
        // The first tick fires at once: the lag shows right after login.
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retry = tokio::time::interval(Duration::from_millis(250));
        retry.tick().await;
        loop {
            let result = tokio::select! {
                frame = conn.next_frame(&self.events) => match frame {
                    Ok(frame) => self.on_frame(frame, conn).await,
                    Err(ReadError::Closed(why)) => return End::Lost(why),
                },
                cmd = self.cmds.recv() => match cmd {
                    None => {
                        let _ = conn.write(&ClientFrame::Quit { reason: None }).await;
                        return End::Quit;
                    }
                    Some(Cmd::Quit(reason, tx)) => {
                        self.quit(conn, reason).await;
                        let _ = tx.send(());
                        return End::Quit;
                    }
                    Some(cmd) => self.on_cmd(cmd, conn).await,
                },
                _ = ping.tick() => self.ping(conn).await,
                _ = retry.tick(), if self.outbox.iter().any(|o| o.retry_at.is_some()) => {
                    self.flush_outbox(conn).await
                }
            };
            if let Err(e) = result {
                return End::Lost(e);
            }
            self.sync_shared(true);
            self.wake_idle();
        }
    }

    async fn quit(&mut self, conn: &mut Conn, reason: Option<String>) {
        if conn.write(&ClientFrame::Quit { reason }).await.is_ok() {
            // Wait briefly for the server to close, so that the quit is processed.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while conn.next_frame(&self.events).await.is_ok() {}
            })
            .await;
        }
        let _ = conn.wr.shutdown().await;
    }

    async fn ping(&mut self, conn: &mut Conn) -> Result<(), String> {
        let limit = self.opts.ping_interval * 2;
        if self.pending.values().any(|p| matches!(p, Pending::Ping(t) if t.elapsed() > limit)) {
            return Err(format!("the server did not answer a ping for {} s", limit.as_secs()));
        }
        let id = self.id(Pending::Ping(Instant::now()));
        conn.write(&ClientFrame::Ping { id: Some(id) }).await
    }

    /// True when a message to `target` can go out on this connection now.
    fn target_ready(&self, target: &Target) -> bool {
        match target {
            Target::Nick(_) => true,
            Target::Room(room) => {
                let key = fold(room);
                // A room we are rejoining must wait for its `joined`; others go (the server
                // answers `not_in_room` if we are not in it).
                self.ready.contains(&key) || !self.rooms.iter().any(|r| fold(r) == key)
            }
        }
    }

    async fn flush_outbox(&mut self, conn: &mut Conn) -> Result<(), String> {
        let now = Instant::now();
        let mut lines = Vec::new();
        let mut refused = Vec::new();
        for i in 0..self.outbox.len() {
            let o = &self.outbox[i];
            if o.sent_on == Some(self.generation) || o.retry_at.is_some_and(|t| t > now) {
                continue;
            }
            if !self.target_ready(&o.target) {
                continue;
            }
            let (room, to) = match &o.target {
                Target::Room(r) => (Some(r.clone()), None),
                Target::Nick(n) => (None, Some(n.clone())),
            };
            let (cid, text, action) = (o.cid.clone(), o.text.clone(), o.action);
            let id = self.id(Pending::Send(cid.clone()));
            let frame = ClientFrame::Send {
                room,
                to,
                text,
                action,
                notice: false,
                cid: Some(cid.clone()),
                id: Some(id.clone()),
            };
            match conn.encode(&frame) {
                Ok(line) => {
                    let o = &mut self.outbox[i];
                    o.sent_on = Some(self.generation);
                    o.retry_at = None;
                    lines.push(line);
                }
                Err(why) => {
                    if let RequestId::Num(n) = id {
                        self.pending.remove(&n);
                    }
                    refused.push((cid, why));
                }
            }
        }
        for (cid, why) in refused {
            self.outbox.retain(|o| o.cid != cid);
            let message = format!("message {why}");
            self.emit(Event::SendFailed { cid, code: ErrorCode::TooLong, message });
        }
        for line in lines {
            conn.write_line(&line).await?;
        }
        Ok(())
    }

    async fn on_cmd(&mut self, cmd: Cmd, conn: &mut Conn) -> Result<(), String> {
        match cmd {
            Cmd::Send(out) => {
                self.outbox.push_back(out);
                self.flush_outbox(conn).await
            }
            Cmd::Submit(mut frame) => {
                let id = self.id(Pending::Fire { answered: expects_answer(&frame) });
                let RequestId::Num(n) = id else { unreachable!("ids are numeric") };
                if !set_frame_id(&mut frame, id) {
                    self.pending.remove(&n);
                }
                match conn.encode(&frame) {
                    Ok(line) => conn.write_line(&line).await,
                    Err(why) => {
                        self.pending.remove(&n);
                        let message = Cow::Owned(format!("request {why}"));
                        self.emit(Event::Frame(ServerFrame::Error {
                            id: None,
                            code: ErrorCode::TooLong,
                            message,
                        }));
                        Ok(())
                    }
                }
            }
            Cmd::Request(mut frame, tx) => {
                let id = self.id(Pending::Fire { answered: false });
                let RequestId::Num(n) = id else { unreachable!("ids are numeric") };
                if !set_frame_id(&mut frame, id) {
                    self.pending.remove(&n);
                    let _ = tx.send(Err(ClientError::Protocol("that frame gets no answer".into())));
                    return Ok(());
                }
                match conn.encode(&frame) {
                    Ok(line) => {
                        self.pending.insert(n, Pending::Reply(tx));
                        conn.write_line(&line).await
                    }
                    Err(why) => {
                        self.pending.remove(&n);
                        let _ = tx.send(Err(ClientError::TooLong(format!("request {why}"))));
                        Ok(())
                    }
                }
            }
            Cmd::WaitIdle(tx) => {
                if self.is_idle() {
                    let _ = tx.send(());
                } else {
                    self.idle_waiters.push(tx);
                }
                Ok(())
            }
            Cmd::Quit(..) => Ok(()),
        }
    }

    fn take_pending(&mut self, frame: &ServerFrame<'_>) -> Option<Pending> {
        match frame_id(frame) {
            Some(RequestId::Num(n)) => self.pending.remove(n),
            _ => None,
        }
    }

    /// Delivers a room message unless it was delivered before.
    fn deliver(&mut self, msg: MessageFrame<'static>, own: bool, history: bool) -> bool {
        if let (Some(room), Some(mid)) = (&msg.room, msg.mid)
            && !self.seen.entry(fold(room)).or_default().insert(mid)
        {
            return false;
        }
        self.emit(Event::Message { msg, own, history });
        true
    }

    async fn on_frame(&mut self, frame: ServerFrame<'static>, conn: &mut Conn) -> Result<(), String> {
        let pending = self.take_pending(&frame);
        match frame {
            ServerFrame::Ack { cid, mid, room, ts, duplicate, .. } => {
                let cid = cid.map(Cow::into_owned).or(match pending {
                    Some(Pending::Send(c)) => Some(c),
                    _ => None,
                });
                let Some(cid) = cid else { return Ok(()) };
                let Some(pos) = self.outbox.iter().position(|o| o.cid == cid) else { return Ok(()) };
                let Some(out) = self.outbox.remove(pos) else { return Ok(()) };
                let to = match &out.target {
                    Target::Nick(n) => Some(Cow::Owned(n.clone())),
                    Target::Room(_) => None,
                };
                let room = room.map(Cow::into_owned).or(match &out.target {
                    Target::Room(r) => Some(r.clone()),
                    Target::Nick(_) => None,
                });
                let msg = MessageFrame {
                    room: room.map(Cow::Owned),
                    from: Cow::Owned(self.nick.clone()),
                    to,
                    text: Cow::Owned(out.text),
                    action: out.action,
                    notice: false,
                    mid,
                    ts,
                };
                // A duplicate without an id (private message) was shown when first acked.
                if mid.is_some() || !duplicate {
                    self.deliver(msg, true, false);
                }
                self.emit(Event::Acked { cid, mid, duplicate });
            }
            ServerFrame::Error { id, code, message } => match pending {
                Some(Pending::Send(cid)) => {
                    if matches!(code, ErrorCode::RateLimited | ErrorCode::StoreFailed) {
                        if let Some(o) = self.outbox.iter_mut().find(|o| o.cid == cid) {
                            o.sent_on = None;
                            o.retry_at = Some(Instant::now() + Duration::from_secs(1));
                        }
                    } else {
                        self.outbox.retain(|o| o.cid != cid);
                        self.emit(Event::SendFailed { cid, code, message: message.into_owned() });
                    }
                }
                Some(Pending::Reply(tx)) => {
                    let _ = tx.send(Err(ClientError::Server { code, message: message.into_owned() }));
                }
                Some(Pending::CatchUp(room)) => {
                    self.emit(Event::Warning(format!(
                        "could not fetch missed messages of {room}: {message}"
                    )));
                    self.finish_catch_up(&room);
                }
                Some(Pending::Rejoin) => {
                    self.emit(Event::Frame(ServerFrame::Error { id: None, code, message }));
                }
                Some(Pending::Ping(_)) => {}
                Some(Pending::Fire { .. }) | None => {
                    self.emit(Event::Frame(ServerFrame::Error { id, code, message }))
                }
            },
            ServerFrame::Joined { id, room, topic, members, ephemeral, operators, voiced, history } => {
                let key = fold(&room);
                if !self.rooms.iter().any(|r| fold(r) == key) {
                    self.rooms.push(room.to_string());
                }
                self.ready.insert(key.clone());
                let history: Vec<MessageFrame<'static>> = history.into_iter().map(owned_msg).collect();
                let last = self.seen.get(&key).and_then(|s| s.last);
                let frame = ServerFrame::Joined {
                    id: id.clone(),
                    room: room.clone(),
                    topic,
                    members,
                    ephemeral,
                    operators,
                    voiced,
                    history: if matches!(pending, Some(Pending::Reply(_))) {
                        history.clone()
                    } else {
                        Vec::new()
                    },
                };
                match pending {
                    Some(Pending::Reply(tx)) => {
                        let _ = tx.send(Ok(frame));
                    }
                    _ => self.emit(Event::Frame(frame)),
                }
                match last {
                    // Rejoined after a reconnect: deliver what we missed, from the join's history
                    // when it reaches back far enough, else page through `history {after}`.
                    Some(last) => {
                        let covers =
                            history.first().and_then(|m| m.mid).is_some_and(|first| first <= last + 1);
                        let newest = history.iter().filter_map(|m| m.mid).max();
                        if covers || newest.is_none_or(|n| n <= last) {
                            let mut count = 0;
                            for m in history {
                                if m.mid.is_some_and(|mid| mid > last) && self.deliver(m, false, true) {
                                    count += 1;
                                }
                            }
                            self.emit(Event::Status(Status::CaughtUp { room: room.into_owned(), count }));
                        } else {
                            self.catching_up.insert(key, (Vec::new(), 0));
                            let id = self.id(Pending::CatchUp(room.to_string()));
                            conn.write(&ClientFrame::History {
                                room: room.into_owned(),
                                before: None,
                                after: Some(last),
                                limit: Some(CATCH_UP_PAGE),
                                id: Some(id),
                            })
                            .await?;
                        }
                    }
                    None => {
                        for m in history {
                            self.deliver(m, false, true);
                        }
                    }
                }
                self.flush_outbox(conn).await?;
            }
            ServerFrame::History { id, room, messages, more } => match pending {
                Some(Pending::CatchUp(name)) => {
                    let key = fold(&room);
                    let newest = messages.iter().filter_map(|m| m.mid).max();
                    let mut count = 0;
                    for m in messages {
                        if self.deliver(owned_msg(m), false, true) {
                            count += 1;
                        }
                    }
                    if let Some((_, c)) = self.catching_up.get_mut(&key) {
                        *c += count;
                    }
                    match newest {
                        Some(after) if more => {
                            let id = self.id(Pending::CatchUp(name));
                            conn.write(&ClientFrame::History {
                                room: room.into_owned(),
                                before: None,
                                after: Some(after),
                                limit: Some(CATCH_UP_PAGE),
                                id: Some(id),
                            })
                            .await?;
                        }
                        _ => self.finish_catch_up(&name),
                    }
                }
                Some(Pending::Reply(tx)) => {
                    let _ = tx.send(Ok(ServerFrame::History { id, room, messages, more }));
                }
                _ => self.emit(Event::Frame(ServerFrame::History { id, room, messages, more })),
            },
            ServerFrame::Message(m) => {
                let m = owned_msg(m);
                if let Some(room) = &m.room
                    && let Some((held, _)) = self.catching_up.get_mut(&fold(room))
                {
                    held.push(m);
                    return Ok(());
                }
                self.deliver(m, false, false);
            }
            ServerFrame::Pong { id } => match pending {
                Some(Pending::Ping(sent)) => self.emit(Event::Lag(sent.elapsed())),
                Some(Pending::Reply(tx)) => {
                    let _ = tx.send(Ok(ServerFrame::Pong { id }));
                }
                _ => {}
            },
            ServerFrame::Nick { old, new, ts } => {
                if fold(&old) == fold(&self.nick) {
                    self.nick = new.to_string();
                }
                self.emit(Event::Frame(ServerFrame::Nick { old, new, ts }));
            }
            ServerFrame::Part { room, nick, reason, ts } => {
                if fold(&nick) == fold(&self.nick) {
                    let key = fold(&room);
                    self.rooms.retain(|r| fold(r) != key);
                    self.ready.remove(&key);
                    self.seen.remove(&key);
                    self.catching_up.remove(&key);
                }
                let frame = ServerFrame::Part { room, nick, reason, ts };
                match pending {
                    Some(Pending::Reply(tx)) => {
                        let _ = tx.send(Ok(frame));
                    }
                    _ => self.emit(Event::Frame(frame)),
                }
            }
            ServerFrame::Bye { reason } => {
                conn.bye = Some(reason.to_string());
                self.emit(Event::Frame(ServerFrame::Bye { reason }));
            }
            other => match pending {
                Some(Pending::Reply(tx)) => {
                    let _ = tx.send(Ok(other));
                }
                _ => self.emit(Event::Frame(other)),
            },
        }
        Ok(())
    }

    fn finish_catch_up(&mut self, room: &str) {
        let key = fold(room);
        if let Some((held, mut count)) = self.catching_up.remove(&key) {
            for m in held {
                if self.deliver(m, false, false) {
                    count += 1;
                }
            }
            self.emit(Event::Status(Status::CaughtUp { room: room.to_string(), count }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(5));
        for r in [0, 1, 12345, u64::MAX] {
            let d1 = backoff_delay(1, min, max, r);
            assert!(d1 >= Duration::from_millis(50) && d1 <= min, "{d1:?}");
            let d3 = backoff_delay(3, min, max, r);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400), "{d3:?}");
            let d30 = backoff_delay(30, min, max, r);
            assert!(d30 >= max / 2 && d30 <= max, "{d30:?}");
        }
        assert_ne!(backoff_delay(5, min, max, 1), backoff_delay(5, min, max, 999_999_999));
    }

    #[test]
    fn seen_drops_duplicates_and_forgets_old_ids() {
        let mut s = Seen::default();
        assert!(s.insert(5));
        assert!(!s.insert(5));
        assert!(s.insert(3));
        assert_eq!(s.last, Some(5));
        for mid in 10..(10 + SEEN_CAPACITY as u64 + 10) {
            assert!(s.insert(mid));
        }
        assert!(!s.insert(3), "forgotten ids below the floor count as seen");
        assert!(!s.insert(12));
    }

    #[test]
    fn request_ids_are_set_on_frames_that_carry_them() {
        let mut f = ClientFrame::Who { room: None, detail: false, id: None };
        assert!(set_frame_id(&mut f, RequestId::Num(3)));
        assert_eq!(f, ClientFrame::Who { room: None, detail: false, id: Some(RequestId::Num(3)) });
        assert!(!set_frame_id(&mut ClientFrame::Quit { reason: None }, RequestId::Num(1)));
    }

    #[test]
    fn wait_idle_waits_for_the_frames_the_server_always_answers() {
        let room = || "#r".to_string();
        assert!(expects_answer(&ClientFrame::Whois { nick: "bob".into(), id: None }));
        assert!(expects_answer(&ClientFrame::Bans { room: room(), id: None }));
        assert!(expects_answer(&ClientFrame::Away { text: None, id: None }));
        assert!(expects_answer(&ClientFrame::Topic { room: room(), topic: None, id: None }));
        assert!(expects_answer(&ClientFrame::Mode { room: room(), changes: Vec::new(), id: None }));
        let op = vec![natter_proto::native::ModeChange::Op { nick: "bob".into(), on: true }];
        assert!(!expects_answer(&ClientFrame::Mode { room: room(), changes: op, id: None }));
        let kick = ClientFrame::Kick { room: room(), nick: "bob".into(), reason: None, id: None };
        assert!(!expects_answer(&kick));
        assert!(!expects_answer(&ClientFrame::Part { room: room(), reason: None, id: None }));
    }
}
