//! Connections: in-place line framing, login and join, and opening many at once.
//!
//! The receive path must keep up with millions of lines per second on one core, so lines are
//! found with `memchr` directly in the read buffer and handed out as slices, without copying
//! them into a separate line buffer (as `natter_proto::line::LineBuffer` would). The same
//! reader serves the handshake, so bytes that arrive together with `welcome` are not lost.
//!
//! Over WebSocket (`--protocol ws`, `ws-irc`) the same reader hands out each message as a
//! line, decoded in place by [`crate::websocket::MessageDecoder`], and the writer frames each
//! line it is given as one masked message: the scenarios run unchanged.

use crate::dialect::{Handshake, Protocol};
use crate::websocket::{self, ClientHandshake, ControlPayload, Decoded, FrameError, MessageDecoder};
use anyhow::{Context as _, anyhow, bail};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// A TLS connection of the load generator.
type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// The receiving half of a bench connection: plain TCP, or TLS (`--tls`).
#[derive(Debug)]
pub enum ReadHalf {
    /// Plain TCP.
    Plain(OwnedReadHalf),
    /// TLS.
    Tls(tokio::io::ReadHalf<TlsStream>),
}

/// The sending half of a bench connection: the socket, and over WebSocket the framing of
/// what is sent. Send with [`send`], which frames and flushes.
#[derive(Debug)]
pub struct WriteHalf {
    io: WriteIo,
    /// Set once the WebSocket handshake is done: every line sent becomes a masked message.
    ws: Option<WsWriter>,
}

/// The socket under a [`WriteHalf`]: TLS holds written bytes in its records until flushed.
#[derive(Debug)]
enum WriteIo {
    Plain(OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<TlsStream>),
}

/// The framing state of a WebSocket writer.
#[derive(Debug)]
struct WsWriter {
    /// This connection's masking key.
    mask: [u8; 4],
    /// Framed bytes, reused from one send to the next.
    framed: Vec<u8>,
}

impl WriteHalf {
    fn new(io: WriteIo) -> Self {
        Self { io, ws: None }
    }

    /// Writes `bytes` and flushes them. Over WebSocket each line of `bytes` (ended by `\n` or
    /// `\r\n`, or the end) goes out as one masked text message without its line end, as
    /// natter's WebSocket door and `text.ircv3.net` expect.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let Some(ws) = &mut self.ws else { return write_flush(&mut self.io, bytes).await };
        ws.framed.clear();
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            websocket::encode_frame(&mut ws.framed, true, websocket::opcode::TEXT, line, Some(ws.mask));
        }
        write_flush(&mut self.io, &ws.framed).await
    }

    /// Answers a WebSocket ping with a pong carrying its payload; nothing without WebSocket.
    pub async fn pong(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let Some(ws) = &mut self.ws else { return Ok(()) };
        ws.framed.clear();
        websocket::encode_frame(&mut ws.framed, true, websocket::opcode::PONG, payload, Some(ws.mask));
        write_flush(&mut self.io, &ws.framed).await
    }

    /// Writes bytes as they are, before any WebSocket framing (the handshake request).
    async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        write_flush(&mut self.io, bytes).await
    }
}

async fn write_flush(io: &mut WriteIo, bytes: &[u8]) -> std::io::Result<()> {
    match io {
        WriteIo::Plain(w) => w.write_all(bytes).await,
        WriteIo::Tls(w) => {
            w.write_all(bytes).await?;
            w.flush().await
        }
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Plain(r) => Pin::new(r).poll_read(cx, buf),
            ReadHalf::Tls(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

/// Writes all of `bytes` and flushes them onto the wire (over WebSocket: one message per
/// line, see [`WriteHalf::send`]).
pub async fn send(write: &mut WriteHalf, bytes: &[u8]) -> std::io::Result<()> {
    write.send(bytes).await
}

/// Longest line accepted from the server; `joined` frames list every member of a room and can
/// be large with thousands of connections.
pub const MAX_LINE: usize = 16 << 20;

/// Reads a byte stream and yields its lines (without `\n` or `\r\n`) straight from the buffer;
/// after [`LineReader::start_websocket`], the payloads of its WebSocket messages instead.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    ws: Option<WsReader>,
}

/// The WebSocket side of a [`LineReader`].
#[derive(Debug)]
struct WsReader {
    decoder: MessageDecoder,
    /// Why no more messages come: the server's close frame, or frames that broke the protocol.
    end: Option<WsEnd>,
}

#[derive(Debug)]
enum WsEnd {
    Closed(ControlPayload),
    Broken(FrameError),
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// Wraps `inner` with a read buffer of `capacity` bytes (grown for longer lines).
    pub fn new(inner: R, capacity: usize) -> Self {
        Self { inner, buf: vec![0; capacity.max(16)], start: 0, end: 0, ws: None }
    }

    /// From now on, yields WebSocket messages rather than lines; bytes already buffered are
    /// taken as frames.
    pub fn start_websocket(&mut self) {
        self.ws =
            Some(WsReader { decoder: MessageDecoder::new(MAX_LINE - websocket::MAX_HEADER), end: None });
    }

    /// Reads more bytes; returns how many, 0 at end of stream (over WebSocket also after the
    /// server's close frame; frames that break the protocol are an error). Cancel-safe: a
    /// cancelled call has read nothing.
    pub async fn fill(&mut self) -> anyhow::Result<usize> {
        match self.ws.as_ref().and_then(|ws| ws.end.as_ref()) {
            Some(WsEnd::Closed(_)) => return Ok(0),
            Some(WsEnd::Broken(e)) => bail!("WebSocket: {e}"),
            None => {}
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() >= MAX_LINE {
                bail!("the server sent a line longer than {MAX_LINE} bytes");
            } else {
                let grown = (self.buf.len() * 2).min(MAX_LINE);
                self.buf.resize(grown, 0);
            }
        }
        let n = self.inner.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// The next complete line (or WebSocket message) already received, if any.
    #[inline]
    pub fn next_line(&mut self) -> Option<&[u8]> {
        if self.ws.is_some() {
            return self.next_message();
        }
        let pending = &self.buf[self.start..self.end];
        let pos = memchr::memchr(b'\n', pending)?;
        let line_start = self.start;
        self.start += pos + 1;
        let mut line = &self.buf[line_start..line_start + pos];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        Some(line)
    }

    /// The next WebSocket message already received, decoded in place.
    #[inline]
    fn next_message(&mut self) -> Option<&[u8]> {
        let ws = self.ws.as_mut()?;
        if ws.end.is_some() {
            return None;
        }
        let at = self.start;
        match ws.decoder.decode(&mut self.buf[at..self.end]) {
            Ok(Decoded::Message { payload, consumed }) => {
                self.start += consumed;
                Some(&self.buf[at + payload.start..at + payload.end])
            }
            Ok(Decoded::NeedInput { consumed }) => {
                self.start += consumed;
                None
            }
            Ok(Decoded::Closed { consumed, close }) => {
                self.start += consumed;
                ws.end = Some(WsEnd::Closed(close));
                None
            }
            Err(e) => {
                ws.end = Some(WsEnd::Broken(e));
                None
            }
        }
    }

    /// The payload of a WebSocket ping to answer (with [`WriteHalf::pong`]), if one came.
    pub fn take_pong(&mut self) -> Option<ControlPayload> {
        self.ws.as_mut()?.decoder.take_pong()
    }

    /// Why the server closed the WebSocket, when it sent a close frame.
    pub fn close_reason(&self) -> Option<String> {
        match self.ws.as_ref()?.end.as_ref()? {
            WsEnd::Closed(close) => Some(close.close_reason()),
            WsEnd::Broken(e) => Some(e.to_string()),
        }
    }

    /// Gives back memory: the buffer becomes `capacity` bytes when what is pending fits (it
    /// grows again for a longer line). For connections held by the thousand.
    pub fn shrink_buffer(&mut self, capacity: usize) {
        let pending = self.end - self.start;
        let capacity = capacity.max(16);
        if pending <= capacity && self.buf.len() > capacity {
            let mut buf = vec![0; capacity];
            buf[..pending].copy_from_slice(&self.buf[self.start..self.end]);
            self.buf = buf;
            self.start = 0;
            self.end = pending;
        }
    }

    /// Gives back the underlying stream, dropping buffered bytes.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// A logged-in connection that has joined the bench room.
pub type Session = (LineReader<ReadHalf>, WriteHalf);

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// Server address.
    pub addr: SocketAddr,
    /// Every address given (the nodes of a cluster): [`open_many`] spreads connections over
    /// them in turn.
    pub spread: Arc<[SocketAddr]>,
    /// Wire dialect.
    pub protocol: Protocol,
    /// Room to be in (native sessions start in `#lobby`).
    pub room: String,
    /// Limit for connecting plus handshake of one connection.
    pub handshake_timeout: Duration,
    /// TLS (`--tls`), with the certificate it accepts.
    pub tls: Option<natter_client::tls::ClientTls>,
}

/// Connects, logs in as `nick` and joins the room, answering keep-alives on the way.
/// `buffer` is the read buffer size kept for the session.
pub async fn open(target: &Target, nick: &str, buffer: usize) -> anyhow::Result<Session> {
    tokio::time::timeout(target.handshake_timeout, open_inner(target, nick, buffer)).await.map_err(|_| {
        anyhow!(
            "{nick}: no login/join answer from {} within {:?}; is it a {:?} server, and not overloaded?",
            target.addr,
            target.handshake_timeout,
            target.protocol
        )
    })?
}

async fn open_inner(target: &Target, nick: &str, buffer: usize) -> anyhow::Result<Session> {
    let mut session = connect(target, nick, buffer).await?;
    let p = target.protocol;
    send(&mut session.1, &p.login(nick)).await?;
    handshake(&mut session.0, &mut session.1, nick, "login", |line| p.login_step(line)).await?;
    join(&mut session, p, nick, &target.room).await?;
    Ok(session)
}

/// Connects to the target: TCP, TLS with `--tls`, and the WebSocket handshake when the
/// protocol runs over WebSocket. Nothing is sent in the chat protocol yet.
pub async fn connect(target: &Target, nick: &str, buffer: usize) -> anyhow::Result<Session> {
    let stream = TcpStream::connect(target.addr)
        .await
        .with_context(|| format!("{nick}: cannot connect to {}", target.addr))?;
    stream.set_nodelay(true)?;
    let (read, write) = match &target.tls {
        None => {
            let (read, write) = stream.into_split();
            (ReadHalf::Plain(read), WriteIo::Plain(write))
        }
        Some(tls) => {
            let (stream, _) = tls.connect(stream).await.map_err(|e| anyhow!("{nick}: {e}"))?;
            let (read, write) = tokio::io::split(stream);
            (ReadHalf::Tls(read), WriteIo::Tls(write))
        }
    };
    let mut session = (LineReader::new(read, buffer), WriteHalf::new(write));
    if target.protocol.over_websocket() {
        upgrade(&mut session, target).await.with_context(|| format!("{nick}: WebSocket handshake"))?;
    }
    Ok(session)
}

/// The path natter serves its WebSocket door on.
pub const WEBSOCKET_PATH: &str = "/ws";

/// The WebSocket opening handshake: sends the upgrade request, checks the `101` answer, and
/// switches the reader and the writer to WebSocket messages.
async fn upgrade(session: &mut Session, target: &Target) -> anyhow::Result<()> {
    let (reader, write) = session;
    let handshake =
        ClientHandshake::new(&target.addr.to_string(), WEBSOCKET_PATH, target.protocol.subprotocol());
    write.send_raw(&handshake.request).await?;
    let mut check = handshake.response();
    loop {
        while let Some(line) = reader.next_line() {
            if check.line(line)? {
                reader.start_websocket();
                write.ws = Some(WsWriter { mask: websocket::random_mask(), framed: Vec::new() });
                return Ok(());
            }
        }
        if reader.fill().await? == 0 {
            bail!("the server closed the connection before answering the upgrade");
        }
    }
}

/// Joins `room` on a logged-in session and waits until the server confirms it, answering
/// keep-alives on the way. Lines of other kinds that arrive meanwhile (deliveries of rooms
/// joined before) are skipped. With a native session and the lobby, it only waits for the
/// lobby's `joined` that follows `welcome`.
pub async fn join(session: &mut Session, protocol: Protocol, nick: &str, room: &str) -> anyhow::Result<()> {
    let (reader, write) = session;
    if let Some(join) = protocol.join(room) {
        send(write, &join).await?;
    }
    handshake(reader, write, nick, "join", |line| protocol.join_step(line, room)).await
}

/// Reads until `step` says the login or join step `what` is done, answering keep-alives.
pub(crate) async fn handshake(
    reader: &mut LineReader<ReadHalf>,
    write: &mut WriteHalf,
    nick: &str,
    what: &str,
    mut step: impl FnMut(&[u8]) -> Handshake,
) -> anyhow::Result<()> {
    loop {
        while let Some(line) = reader.next_line() {
            match step(line) {
                Handshake::Done => return Ok(()),
                Handshake::Continue(None) => {}
                Handshake::Continue(Some(reply)) => send(write, &reply).await?,
                Handshake::Failed(why) => bail!("{nick}: {what} refused: {why}"),
            }
        }
        if let Some(ping) = reader.take_pong() {
            write.pong(ping.as_slice()).await?;
        }
        if reader.fill().await? == 0 {
            let why = reader.close_reason().map(|r| format!(" ({r})")).unwrap_or_default();
            bail!("{nick}: the server closed the connection during {what}{why}");
        }
    }
}

/// Outcome of [`open_many`].
#[derive(Debug)]
pub struct Opened<T> {
    /// One entry per requested connection: the caller's value, or `None` if it failed.
    pub sessions: Vec<Option<T>>,
    /// Errors of the connections that failed for good, in no particular order.
    pub failures: Vec<String>,
    /// Time taken.
    pub elapsed: Duration,
}

/// Opens `count` sessions with at most `concurrency` handshakes in flight, retrying each
/// failure `retries` times. `on_open` runs as soon as a session is ready, so it can start
/// reading at once (the server may otherwise consider it a slow reader while the others are
/// still connecting). Stops starting new connections at `deadline`.
#[allow(clippy::too_many_arguments)]
pub async fn open_many<T, F>(
    target: &Target,
    count: usize,
    nick: impl Fn(usize) -> String,
    buffer: usize,
    concurrency: usize,
    retries: u32,
    deadline: Instant,
    progress: &crate::Progress,
    on_open: F,
) -> Opened<T>
where
    T: Send + 'static,
    F: Fn(usize, Session) -> T + Send + Sync + 'static,
{
    let room = |_| target.room.clone();
    open_many_in(target, room, count, nick, buffer, concurrency, retries, deadline, progress, on_open).await
}

/// [`open_many`] with a room of its own for each connection: `room(i)` is the room that
/// connection `i` joins instead of `target.room`.
#[allow(clippy::too_many_arguments)]
pub async fn open_many_in<T, F>(
    target: &Target,
    room: impl Fn(usize) -> String,
    count: usize,
    nick: impl Fn(usize) -> String,
    buffer: usize,
    concurrency: usize,
    retries: u32,
    deadline: Instant,
    progress: &crate::Progress,
    on_open: F,
) -> Opened<T>
where
    T: Send + 'static,
    F: Fn(usize, Session) -> T + Send + Sync + 'static,
{
    let started = Instant::now();
    let on_open = Arc::new(on_open);
    let done = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    let mut sessions: Vec<Option<T>> = (0..count).map(|_| None).collect();
    let mut failures = Vec::new();
    let mut next = 0;
    let mut last_progress = Instant::now();
    loop {
        while next < count && set.len() < concurrency.max(1) && Instant::now() < deadline {
            let addr = target.spread.get(next % target.spread.len().max(1)).copied().unwrap_or(target.addr);
            let target = Target { room: room(next), addr, ..target.clone() };
            let nick = nick(next);
            let on_open = on_open.clone();
            let done = done.clone();
            let i = next;
            set.spawn(async move {
                let mut attempt = 0;
                loop {
                    match open(&target, &nick, buffer).await {
                        Ok(session) => {
                            done.fetch_add(1, Ordering::Relaxed);
                            return (i, Ok(on_open(i, session)));
                        }
                        Err(e) if attempt >= retries => return (i, Err(format!("{e:#}"))),
                        Err(_) => {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(100 << attempt.min(5))).await;
                        }
                    }
                }
            });
            next += 1;
        }
        let Some(joined) = set.join_next().await else { break };
        match joined {
            Ok((i, Ok(value))) => sessions[i] = Some(value),
            Ok((_, Err(e))) => failures.push(e),
            Err(e) => failures.push(format!("connection task failed: {e}")),
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            progress.line(&format!(
                "connected {}/{count} ({} failed)",
                done.load(Ordering::Relaxed),
                failures.len()
            ));
        }
    }
    if next < count {
        failures.push(format!("{} connections not attempted: the overall --timeout passed", count - next));
    }
    Opened { sessions, failures, elapsed: started.elapsed() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_across_reads_and_growth() {
        let (mut tx, rx) = tokio::io::duplex(16);
        let writer = tokio::spawn(async move {
            tx.write_all(b"one\r\ntwo\nthree-is-a-longer-line-than-the-buffer\nfour").await.unwrap();
        });
        let mut r = LineReader::new(rx, 16);
        let mut got = Vec::new();
        loop {
            while let Some(l) = r.next_line() {
                got.push(String::from_utf8(l.to_vec()).unwrap());
            }
            if r.fill().await.unwrap() == 0 {
                break;
            }
        }
        writer.await.unwrap();
        assert_eq!(got, ["one", "two", "three-is-a-longer-line-than-the-buffer"]);
    }

    /// The HTTP answer as lines, then WebSocket messages in place: a message longer than the
    /// buffer, one in fragments around a ping, frames split across reads, and the close.
    #[tokio::test]
    async fn websocket_messages_after_the_answer() {
        use crate::websocket::{encode_frame, opcode};
        let mut bytes = b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec();
        encode_frame(&mut bytes, true, opcode::TEXT, b"first", None);
        encode_frame(&mut bytes, true, opcode::TEXT, &[b'x'; 100], None);
        encode_frame(&mut bytes, false, opcode::TEXT, b"a", None);
        encode_frame(&mut bytes, true, opcode::PING, b"p", None);
        encode_frame(&mut bytes, true, opcode::CONTINUATION, b"b", None);
        encode_frame(&mut bytes, true, opcode::CLOSE, b"\x03\xe8done", None);
        let (mut tx, rx) = tokio::io::duplex(7);
        let writer = tokio::spawn(async move {
            for piece in bytes.chunks(5) {
                tx.write_all(piece).await.unwrap();
            }
        });
        let mut r = LineReader::new(rx, 16);
        let (mut got, mut pongs, mut http) = (Vec::new(), Vec::new(), true);
        loop {
            while let Some(l) = r.next_line() {
                if http && l.is_empty() {
                    // The answer's blank line: WebSocket starts after it.
                    http = false;
                    r.start_websocket();
                } else {
                    got.push(String::from_utf8(l.to_vec()).unwrap());
                }
            }
            pongs.extend(r.take_pong());
            if r.fill().await.unwrap() == 0 {
                break;
            }
        }
        writer.await.unwrap();
        assert_eq!(
            got,
            ["HTTP/1.1 101 Switching Protocols".to_string(), "first".into(), "x".repeat(100), "ab".into()]
        );
        assert_eq!(pongs.len(), 1);
        assert_eq!(r.close_reason().unwrap(), "close code 1000: done");
    }
}
