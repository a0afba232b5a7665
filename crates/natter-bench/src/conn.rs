//! Connections: in-place line framing, login and join, and opening many at once.
//!
//! The receive path must keep up with millions of lines per second on one core, so lines are
//! found with `memchr` directly in the read buffer and handed out as slices, without copying
//! them into a separate line buffer (as `natter_proto::line::LineBuffer` would). The same
//! reader serves the handshake, so bytes that arrive together with `welcome` are not lost.

use crate::dialect::{Handshake, Protocol};
use anyhow::{Context as _, anyhow, bail};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
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

/// The sending half of a bench connection. Send with [`send`]: TLS holds written bytes in
/// its records until flushed.
#[derive(Debug)]
pub enum WriteHalf {
    /// Plain TCP.
    Plain(OwnedWriteHalf),
    /// TLS.
    Tls(tokio::io::WriteHalf<TlsStream>),
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

impl AsyncWrite for WriteHalf {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Plain(w) => Pin::new(w).poll_write(cx, buf),
            WriteHalf::Tls(w) => Pin::new(w).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Plain(w) => Pin::new(w).poll_flush(cx),
            WriteHalf::Tls(w) => Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Plain(w) => Pin::new(w).poll_shutdown(cx),
            WriteHalf::Tls(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}

/// Writes all of `bytes` and flushes them onto the wire.
pub async fn send(write: &mut WriteHalf, bytes: &[u8]) -> std::io::Result<()> {
    write.write_all(bytes).await?;
    write.flush().await
}

/// Longest line accepted from the server; `joined` frames list every member of a room and can
/// be large with thousands of connections.
pub const MAX_LINE: usize = 16 << 20;

/// Reads a byte stream and yields its lines (without `\n` or `\r\n`) straight from the buffer.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// Wraps `inner` with a read buffer of `capacity` bytes (grown for longer lines).
    pub fn new(inner: R, capacity: usize) -> Self {
        Self { inner, buf: vec![0; capacity.max(16)], start: 0, end: 0 }
    }

    /// Reads more bytes; returns how many, 0 at end of stream. Cancel-safe: a cancelled call
    /// has read nothing.
    pub async fn fill(&mut self) -> anyhow::Result<usize> {
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

    /// The next complete line already received, if any.
    #[inline]
    pub fn next_line(&mut self) -> Option<&[u8]> {
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
    let stream = TcpStream::connect(target.addr)
        .await
        .with_context(|| format!("{nick}: cannot connect to {}", target.addr))?;
    stream.set_nodelay(true)?;
    let (read, mut write) = match &target.tls {
        None => {
            let (read, write) = stream.into_split();
            (ReadHalf::Plain(read), WriteHalf::Plain(write))
        }
        Some(tls) => {
            let (stream, _) = tls.connect(stream).await.map_err(|e| anyhow!("{nick}: {e}"))?;
            let (read, write) = tokio::io::split(stream);
            (ReadHalf::Tls(read), WriteHalf::Tls(write))
        }
    };
    let mut reader = LineReader::new(read, buffer);
    let p = target.protocol;
    send(&mut write, &p.login(nick)).await?;
    handshake(&mut reader, &mut write, nick, "login", |line| p.login_step(line)).await?;
    let mut session = (reader, write);
    join(&mut session, p, nick, &target.room).await?;
    Ok(session)
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

async fn handshake(
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
        if reader.fill().await? == 0 {
            bail!("{nick}: the server closed the connection during {what}");
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
            let target = Target { room: room(next), ..target.clone() };
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
}
