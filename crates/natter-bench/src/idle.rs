//! `natter bench idle`: N logged-in connections that say nothing, held open.
//!
//! Measures what an idle connection costs the server (resident memory per connection) and
//! checks that it can hold that many at once. Connections keep reading (and discarding) so
//! the join notices they receive never back up into the server.

use crate::Context;
use crate::conn::{LineReader, ReadHalf, Session, WriteHalf};
use crate::dialect::{Dialect, Incoming, Protocol};
use crate::stats;
use anyhow::bail;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::watch;

/// Options of the idle scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct IdleArgs {
    /// Connections to open and hold.
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub clients: u32,
    /// Seconds to hold them once all are open (and memory was measured).
    #[arg(long, default_value_t = 0.0)]
    pub hold: f64,
    /// Seconds to wait once all are open, before the server is let go quiet and its memory
    /// read: a natter server parks idle connections after `natter serve --park-after` (10 s
    /// by default), and their memory is what it is once they are parked.
    #[arg(long, default_value_t = 0.0)]
    pub wait: f64,
    /// Longest wait, in seconds, for the server to go quiet before reading its memory.
    #[arg(long, default_value_t = 10.0)]
    pub settle: f64,
    /// Retries per failed connection.
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
}

/// Results of an idle run.
#[derive(Debug, Clone)]
pub struct IdleReport {
    /// The options used.
    pub args: IdleArgs,
    /// Server address as given.
    pub addr: String,
    /// Connections logged in and joined.
    pub opened: u64,
    /// Connections that failed for good.
    pub failed: u64,
    /// The first failure, if any.
    pub first_failure: Option<String>,
    /// Connections the server closed while they were held.
    pub dropped: u64,
    /// Time to open them all.
    pub open_time: Duration,
    /// Server RSS before connecting and after all were open, KiB.
    pub rss_kib: Option<(u64, u64)>,
    /// Server CPU time from before the first connection until all were open and the server
    /// had gone quiet: what logging them all in and into the lobby cost (a join storm into one
    /// room).
    pub server_cpu: Option<stats::CpuTicks>,
}

impl IdleReport {
    /// Server KiB per held connection, when memory was measured.
    pub fn kib_per_connection(&self) -> Option<f64> {
        let (before, after) = self.rss_kib?;
        (self.opened > 0).then(|| after.saturating_sub(before) as f64 / self.opened as f64)
    }

    /// The printable and JSON forms.
    pub fn report(&self) -> crate::Report {
        let mut t = format!("idle: {} connections to {}\n", self.args.clients, self.addr);
        t += &format!(
            "connections    {} open, {} failed, {} dropped by the server while held\n",
            self.opened, self.failed, self.dropped
        );
        t += &format!(
            "open time      {:.3} s ({:.0} connections/s)\n",
            self.open_time.as_secs_f64(),
            self.opened as f64 / self.open_time.as_secs_f64().max(1e-9)
        );
        match (self.rss_kib, self.kib_per_connection()) {
            (Some((b, a)), Some(per)) => {
                t += &format!(
                    "server rss     {b} KiB before, {a} KiB with all open: {per:.2} KiB per connection\n"
                )
            }
            _ => t += "server rss     not measured (pass --server-pid PID)\n",
        }
        if let Some(cpu) = self.server_cpu {
            let per = if cpu.seconds() > 0.0 { self.opened as f64 / cpu.seconds() } else { 0.0 };
            t += &format!(
                "server cpu     {:.2} s to log them in and into the lobby ({per:.0} joins per server CPU-second)\n",
                cpu.seconds()
            );
        }
        t += "note           memory is only meaningful against a freshly started server: \
              memory freed by earlier runs is reused without growing the RSS\n";
        if let Some(f) = &self.first_failure {
            t += &format!("first failure  {f}\n");
        }
        let json = serde_json::json!({
            "scenario": "idle",
            "addr": self.addr,
            "clients": self.args.clients,
            "opened": self.opened,
            "failed": self.failed,
            "first_failure": self.first_failure,
            "dropped": self.dropped,
            "hold_s": self.args.hold,
            "open_s": self.open_time.as_secs_f64(),
            "server_rss_before_kib": self.rss_kib.map(|r| r.0),
            "server_rss_after_kib": self.rss_kib.map(|r| r.1),
            "kib_per_connection": self.kib_per_connection(),
            "server_cpu_s": self.server_cpu.map(|c| c.seconds()),
        });
        crate::Report { text: t, json }
    }
}

/// Runs the scenario.
pub async fn run(ctx: &Context, args: &IdleArgs) -> anyhow::Result<IdleReport> {
    if args.clients == 0 {
        bail!("idle needs at least 1 connection (-n)");
    }
    let hold = crate::secs("--hold", args.hold)?;
    let settle = crate::secs("--settle", args.settle)?;
    let wait = crate::secs("--wait", args.wait)?;
    stats::raise_file_limit(u64::from(args.clients) + 64)?;
    let pid = ctx.common.single_pid()?;
    if pid.is_none() {
        ctx.progress.line("no --server-pid: connections are held but server memory is not measured");
    }
    let rss_before = pid.map(stats::read_rss_kib).transpose()?;
    let cpu_before = pid.map(stats::CpuTicks::read).transpose()?;

    let dropped = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let protocol = ctx.common.protocol;
    let task_dropped = dropped.clone();
    ctx.progress.line(&format!("opening {} connections to {}", args.clients, ctx.target.addr));
    let opened = crate::conn::open_many(
        &ctx.target,
        args.clients as usize,
        |i| ctx.nick(i),
        4096,
        ctx.common.connect_concurrency,
        args.retries,
        ctx.deadline,
        &ctx.progress,
        move |_, (mut reader, mut writer): Session| {
            let dropped = task_dropped.clone();
            let mut stop = stop_rx.clone();
            if protocol.over_websocket() {
                // Frames must be decoded to answer pings and see the close: the connection's
                // own reader does it, its handshake buffer swapped for a small one.
                reader.shrink_buffer(WS_HOLD_BUFFER);
                return tokio::spawn(hold_messages(reader, writer, protocol, stop, dropped));
            }
            // Drop the handshake buffer (it may have grown for a large member list) and keep
            // only a small one: thousands of these are held at once.
            let read = match reader.into_inner() {
                crate::conn::ReadHalf::Plain(read) => read,
                crate::conn::ReadHalf::Tls(read) => {
                    return tokio::spawn(hold_tls(read, writer, protocol, stop, dropped));
                }
            };
            tokio::spawn(async move {
                let irc = protocol.dialect() == Dialect::Irc;
                let mut tail = Vec::new();
                let mut replies = Vec::new();
                loop {
                    tokio::select! {
                        biased;
                        _ = stop.changed() => break,
                        r = read.readable() => if r.is_err() {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            return;
                        },
                    }
                    if !discard_ready(&read, irc.then_some((&mut tail, &mut replies))) {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    // IRC servers ping idle clients; answer so they are not dropped.
                    for reply in replies.drain(..) {
                        let _ = crate::conn::send(&mut writer, &reply).await;
                    }
                }
                drop((read, writer));
            })
        },
    )
    .await;
    let count = opened.sessions.iter().flatten().count() as u64;
    ctx.progress.line(&format!(
        "{count} connections open after {:.2} s, {} failed",
        opened.elapsed.as_secs_f64(),
        opened.failures.len()
    ));

    let (mut rss, mut server_cpu) = (None, None);
    if let (Some(pid), Some(before), Some(cpu_before)) = (pid, rss_before, cpu_before) {
        if !wait.is_zero() {
            ctx.progress.line(&format!("waiting {:.1} s before measuring", wait.as_secs_f64()));
            tokio::time::sleep(wait.min(ctx.remaining())).await;
        }
        if !crate::settle_server(ctx, &[pid], settle).await? {
            ctx.progress.line("server still busy; reading its memory anyway");
        }
        rss = Some((before, stats::read_rss_kib(pid)?));
        server_cpu = Some(stats::CpuTicks::read(pid)?.since(cpu_before));
    }
    let hold_until = Instant::now() + hold.min(ctx.remaining());
    let mut last_print = Instant::now();
    while Instant::now() < hold_until {
        tokio::time::sleep(Duration::from_millis(100).min(hold_until - Instant::now())).await;
        if last_print.elapsed() >= Duration::from_secs(1) {
            last_print = Instant::now();
            let d = dropped.load(Ordering::Relaxed);
            ctx.progress.line(&format!("holding {} connections ({d} dropped)", count.saturating_sub(d)));
        }
    }
    let dropped_now = dropped.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);
    Ok(IdleReport {
        args: args.clone(),
        addr: ctx.common.addr.clone(),
        opened: count,
        failed: opened.failures.len() as u64,
        first_failure: opened.failures.first().cloned(),
        dropped: dropped_now,
        open_time: opened.elapsed,
        rss_kib: rss,
        server_cpu,
    })
}

/// Holds a TLS connection open: reads (and drops) what the server sends, answering IRC
/// PINGs, until `stop`. TLS records must be read whole, so this reads with a small buffer of
/// its own rather than the shared scratch space of plain connections.
async fn hold_tls(
    mut read: tokio::io::ReadHalf<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    mut writer: crate::conn::WriteHalf,
    protocol: crate::dialect::Protocol,
    mut stop: tokio::sync::watch::Receiver<bool>,
    dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use tokio::io::AsyncReadExt as _;
    let irc = protocol.dialect() == Dialect::Irc;
    let (mut tail, mut buf) = (Vec::new(), vec![0u8; 1024]);
    loop {
        let n = tokio::select! {
            biased;
            _ = stop.changed() => break,
            r = read.read(&mut buf) => r,
        };
        match n {
            Ok(0) | Err(_) => {
                dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(n) if irc => {
                for reply in irc_pongs(&mut tail, &buf[..n]) {
                    let _ = crate::conn::send(&mut writer, &reply).await;
                }
            }
            Ok(_) => {}
        }
    }
}

/// Read buffer kept per held WebSocket connection (it grows for a longer message).
const WS_HOLD_BUFFER: usize = 1024;

/// Holds a WebSocket connection open: reads its messages until `stop`, answering WebSocket
/// pings, and IRC PINGs with `ws-irc`.
async fn hold_messages(
    mut reader: LineReader<ReadHalf>,
    mut writer: WriteHalf,
    protocol: Protocol,
    mut stop: watch::Receiver<bool>,
    dropped: Arc<AtomicU64>,
) {
    let irc = protocol.dialect() == Dialect::Irc;
    let mut replies = Vec::new();
    loop {
        while let Some(line) = reader.next_line() {
            if irc && let Incoming::Ping(reply) = protocol.classify(line) {
                replies.push(reply);
            }
        }
        for reply in replies.drain(..) {
            let _ = crate::conn::send(&mut writer, &reply).await;
        }
        if let Some(ping) = reader.take_pong() {
            let _ = writer.pong(ping.as_slice()).await;
        }
        let read = tokio::select! {
            biased;
            _ = stop.changed() => return,
            r = reader.fill() => r,
        };
        if !matches!(read, Ok(n) if n > 0) {
            dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
}

thread_local! {
    /// One read buffer per worker thread, shared by all idle connections on it: large reads
    /// keep the join-notice storm cheap without holding a large buffer per connection.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 64 * 1024]);
}

/// Reads and discards whatever is ready on `read` without waiting; with `irc`, collects the
/// answers to PINGs. Returns false when the server closed the connection.
fn discard_ready(read: &OwnedReadHalf, mut irc: Option<(&mut Vec<u8>, &mut Vec<Vec<u8>>)>) -> bool {
    SCRATCH.with(|buf| {
        let mut buf = buf.borrow_mut();
        loop {
            match read.try_read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    if let Some((tail, replies)) = irc.as_mut() {
                        replies.extend(irc_pongs(tail, &buf[..n]));
                    }
                    if n < buf.len() {
                        return true;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
    })
}

/// Extracts the `PING` lines from IRC bytes (keeping a partial line in `tail`) and returns
/// the `PONG` answers.
pub fn irc_pongs(tail: &mut Vec<u8>, bytes: &[u8]) -> Vec<Vec<u8>> {
    tail.extend_from_slice(bytes);
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(pos) = memchr::memchr(b'\n', &tail[start..]) {
        let line = tail[start..start + pos].strip_suffix(b"\r").unwrap_or(&tail[start..start + pos]);
        if let crate::dialect::Incoming::Ping(reply) = crate::dialect::Protocol::Irc.classify(line) {
            out.push(reply);
        }
        start += pos + 1;
    }
    tail.drain(..start);
    // Only PINGs matter here, and they are short: do not hold long lines.
    if tail.len() > 1024 {
        tail.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pongs_across_reads() {
        let mut tail = Vec::new();
        assert!(irc_pongs(&mut tail, b":s 372 x :motd\r\nPI").is_empty());
        assert_eq!(irc_pongs(&mut tail, b"NG :abc\r\n"), vec![b"PONG :abc\r\n".to_vec()]);
        assert!(tail.is_empty());
    }
}
