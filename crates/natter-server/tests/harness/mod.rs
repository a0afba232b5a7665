//! In-process server harness for fast server tests: the real [`natter_server::Server`] bound
//! to port 0 with an in-memory store, running in the test's own runtime, and small clients that
//! talk to it over real sockets.
//!
//! Timer tests run with paused time (`#[tokio::test(start_paused = true)]`) and call
//! [`freeze_clock`] first: tokio otherwise auto-advances a paused clock to the next timer
//! whenever the runtime is idle, and a runtime waiting for a socket is idle. Frozen, the clock
//! moves only when the test calls `tokio::time::advance`, so "not before the deadline" can be
//! checked with a barrier instead of a race. [`Watchdog`] fails such a test (which cannot use
//! tokio timeouts: frozen time never reaches them) after real seconds instead of hanging.
#![allow(dead_code)]

use natter_server::{Server, Settings};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, UdpSocket};

/// Settings for a test server: every listener on a free loopback port, nothing stored on disk,
/// no message rate limit; otherwise the defaults of `natter serve`, as `natter serve`
/// resolves them (so that they cannot drift apart).
pub fn settings() -> Settings {
    let args = natter_server::Args {
        tcp: Some("127.0.0.1:0".into()),
        udp: Some("127.0.0.1:0".into()),
        irc: Some("127.0.0.1:0".into()),
        db: Some(":memory:".into()),
        msg_rate: Some(0),
        ..natter_server::Args::default()
    };
    Settings::resolve(args).expect("the defaults resolve")
}

/// A server running in the test's runtime.
pub struct TestServer {
    /// The TCP port (native, text mode and IRC, sniffed).
    pub tcp: SocketAddr,
    /// The UDP port.
    pub udp: SocketAddr,
    /// The dedicated IRC port.
    pub irc: SocketAddr,
    /// The IRC-over-TLS port, when TLS is configured.
    pub irc_tls: Option<SocketAddr>,
    /// The operations listener (`/metrics`, `/healthz`, `/readyz`), when one is configured.
    pub metrics: Option<SocketAddr>,
    server: Server,
}

impl TestServer {
    /// Starts a server with [`settings`].
    pub async fn start() -> Self {
        Self::start_with(settings()).await
    }

    /// Starts a server with these settings; every listener must be on.
    pub async fn start_with(settings: Settings) -> Self {
        let server = Server::start(&settings).await.expect("start the server");
        TestServer {
            tcp: server.tcp.expect("tcp on"),
            udp: server.udp.expect("udp on"),
            irc: server.irc.expect("irc on"),
            irc_tls: server.irc_tls,
            metrics: server.metrics,
            server,
        }
    }

    /// Starts a server as a node of a cluster on `store` (shared with the other nodes), with
    /// [`settings`].
    pub async fn node(
        store: std::sync::Arc<dyn natter_core::Store>,
        link: natter_server::ClusterLink,
    ) -> Self {
        let settings = settings();
        let server = Server::start_with(&settings, store, Some(link)).await.expect("start the node");
        TestServer {
            tcp: server.tcp.expect("tcp on"),
            udp: server.udp.expect("udp on"),
            irc: server.irc.expect("irc on"),
            irc_tls: server.irc_tls,
            metrics: server.metrics,
            server,
        }
    }

    /// Reads the TLS certificate again, as SIGHUP does.
    pub fn reload_tls(&self) -> Result<(), natter_server::tls::CertError> {
        self.server.reload_tls()
    }

    /// Stops the server as `natter serve` does on SIGTERM (goodbyes, then the listeners close).
    pub async fn shutdown(self, reason: &str) {
        self.server.shutdown(reason).await;
    }
}

/// Keeps the paused clock from auto-advancing while it lives (see the module docs).
pub struct FrozenClock(#[allow(dead_code)] std::sync::mpsc::Sender<()>);

/// Freezes a paused clock: from now on only `tokio::time::advance` moves it. Tokio does not
/// auto-advance while a blocking task runs; this one runs until the guard is dropped.
pub fn freeze_clock() -> FrozenClock {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    tokio::task::spawn_blocking(move || {
        let _ = rx.recv();
    });
    FrozenClock(tx)
}

/// Ends the test process when a test has not finished after `limit` of real time: a frozen
/// clock makes tokio timeouts useless, and a hung test must not hang the suite.
pub struct Watchdog(std::sync::mpsc::Sender<()>);

impl Watchdog {
    pub fn arm(what: &'static str, limit: Duration) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("{what}: still running after {limit:?} of real time; aborting");
                std::process::abort();
            }
        });
        Watchdog(tx)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// A line-oriented TCP client (native JSON, text mode or IRC).
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_ping: u64,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let (read, writer) = TcpStream::connect(addr).await.expect("connect").into_split();
        Client { reader: BufReader::new(read), writer, next_ping: 0 }
    }

    /// A native client logged in as `nick`, its welcome and lobby join read.
    pub async fn native(addr: SocketAddr, nick: &str) -> Self {
        let mut c = Client::connect(addr).await;
        c.line(&format!(r#"{{"type":"hello","nick":"{nick}"}}"#)).await;
        c.expect(r#""type":"welcome""#).await;
        c.expect(r#""type":"joined""#).await;
        c
    }

    /// This end's address, which the server sees as the peer's.
    pub fn local_addr(&self) -> SocketAddr {
        self.writer.local_addr().expect("local address")
    }

    /// Writes raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write");
    }

    /// Writes one line.
    pub async fn line(&mut self, text: &str) {
        self.send(format!("{text}\n").as_bytes()).await;
    }

    /// The next line, or `None` at end of stream.
    pub async fn next(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(String::from_utf8_lossy(&buf).trim_end().to_string()),
        }
    }

    /// Reads lines until one contains `needle`; returns the lines before it and that line.
    pub async fn until(&mut self, needle: &str) -> (Vec<String>, String) {
        let mut seen = Vec::new();
        while let Some(line) = self.next().await {
            if line.contains(needle) {
                return (seen, line);
            }
            seen.push(line);
        }
        panic!("connection closed before a line containing {needle:?}; saw {seen:#?}");
    }

    /// Reads lines until one contains `needle`, and returns it.
    pub async fn expect(&mut self, needle: &str) -> String {
        self.until(needle).await.1
    }

    /// Native barrier: sends a `ping` and reads until its `pong`. The server answers in order,
    /// so everything it had to say before handling the ping has arrived; returns those lines.
    pub async fn ping(&mut self) -> Vec<String> {
        self.next_ping += 1;
        let id = self.next_ping;
        self.line(&format!(r#"{{"type":"ping","id":{id}}}"#)).await;
        self.until(&format!(r#"{{"type":"pong","id":{id}}}"#)).await.0
    }

    /// What the server has written and not yet been read, without waiting. Call after a
    /// barrier that proves the server is done.
    pub fn pending(&mut self) -> String {
        let mut out = String::from_utf8_lossy(self.reader.buffer()).into_owned();
        let mut buf = [0u8; 4096];
        loop {
            match self.reader.get_ref().try_read(&mut buf) {
                Ok(0) => {
                    out.push_str("<closed>");
                    return out;
                }
                Ok(n) => out.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(_) => return out,
            }
        }
    }

    /// Reads to the end of the stream (the server closed it) and returns what came before.
    pub async fn rest(&mut self) -> String {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).await.expect("read to the end");
        String::from_utf8_lossy(&rest).into_owned()
    }
}

/// Parses a native frame.
pub fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// A UDP member.
pub struct Udp {
    socket: UdpSocket,
    server: SocketAddr,
}

impl Udp {
    pub async fn new(server: SocketAddr) -> Self {
        Udp { socket: UdpSocket::bind("127.0.0.1:0").await.expect("bind udp"), server }
    }

    pub fn port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }

    pub async fn send(&self, bytes: &[u8]) {
        self.socket.send_to(bytes, self.server).await.expect("send datagram");
    }

    /// The datagrams that have arrived and not been read, without waiting. Call after a
    /// barrier that proves the server is done.
    pub fn pending(&self) -> String {
        let mut buf = vec![0u8; 65536];
        let mut out = String::new();
        while let Ok((n, _)) = self.socket.try_recv_from(&mut buf) {
            out.push_str(&String::from_utf8_lossy(&buf[..n]));
            out.push('\n');
        }
        out
    }

    /// Receives datagrams until one contains `needle`.
    pub async fn expect(&self, needle: &str) -> String {
        let mut buf = vec![0u8; 65536];
        let mut seen = Vec::new();
        loop {
            let (n, _) = self.socket.recv_from(&mut buf).await.expect("receive datagram");
            let d = String::from_utf8_lossy(&buf[..n]).into_owned();
            if d.contains(needle) {
                return d;
            }
            seen.push(d);
            assert!(seen.len() < 1000, "no datagram containing {needle:?}; saw {seen:#?}");
        }
    }
}
