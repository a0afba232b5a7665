//! Test harness: starts the real `natter` binary on port 0 and talks to it over real sockets.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(5);

/// The binary under test: this build's, or `NATTER_TEST_BIN` to run the same tests against
/// another build (the golden transcripts compare an old and a new binary this way).
pub fn natter_bin() -> std::ffi::OsString {
    std::env::var_os("NATTER_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_natter").into())
}

/// Runs `natter user ARGS --db DB` with `stdin` (the password prompts' answers); true when
/// it succeeded.
pub fn user(db: &std::path::Path, args: &[&str], stdin: &str) -> bool {
    user_output(db, args, stdin).0
}

/// Runs `natter user ARGS --db DB` with `stdin`; whether it succeeded, its standard output
/// and its standard error.
pub fn user_output(db: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(natter_bin())
        .arg("user")
        .args(args)
        .args(["--db", db.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Ids of barrier pings, unique in the test process.
static NEXT_PING: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A running `natter serve`; killed when dropped.
pub struct Server {
    pub child: Child,
    pub tcp: SocketAddr,
    pub udp: Option<SocketAddr>,
    /// The IRC port (`listening irc`); on by default at port 0 unless `--irc off` is passed.
    pub irc: Option<SocketAddr>,
    /// The IRC TLS port (`listening irc-tls`), when `--tls-cert` is passed.
    pub irc_tls: Option<SocketAddr>,
    /// The HTTP-only listener (`listening http`), when `--http ADDR` is passed.
    pub http: Option<SocketAddr>,
    /// The operations listener (`listening metrics`), when `--metrics ADDR` is passed.
    pub metrics: Option<SocketAddr>,
    pub db: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server with a fresh database and extra flags.
    pub fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("natter.db");
        let mut s = Server::start_with_db(&db, extra);
        s._dir = Some(dir);
        s
    }

    /// Starts a server on an existing database path.
    pub fn start_with_db(db: &std::path::Path, extra: &[&str]) -> Server {
        let mut args =
            vec!["serve", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--db", db.to_str().unwrap()];
        if !extra.contains(&"--irc") {
            args.extend_from_slice(&["--irc", "127.0.0.1:0"]);
        }
        args.extend_from_slice(extra);
        let irc_off = extra.windows(2).any(|w| w == ["--irc", "off"]);
        let mut child = Command::new(natter_bin())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start natter serve");
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let (mut tcp, mut udp, mut irc, mut irc_tls) = (None, None, None, None);
        let (mut http, mut metrics) = (None, None);
        let tls = extra.contains(&"--tls-cert") && !extra.windows(2).any(|w| w == ["--irc-tls", "off"]);
        let wants_http = extra.windows(2).any(|w| w[0] == "--http" && w[1] != "off");
        let wants_metrics = extra.contains(&"--metrics");
        let mut line = String::new();
        while tcp.is_none()
            || (udp.is_none() && !extra.windows(2).any(|w| w == ["--udp", "off"]))
            || (irc.is_none() && !irc_off)
            || (irc_tls.is_none() && tls)
            || (http.is_none() && wants_http)
            || (metrics.is_none() && wants_metrics)
        {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                panic!("server exited before listening");
            }
            if let Some(a) = line.trim().strip_prefix("listening tcp ") {
                tcp = Some(a.parse().unwrap());
            }
            if let Some(a) = line.trim().strip_prefix("listening udp ") {
                udp = Some(a.parse().unwrap());
            }
            if let Some(a) = line.trim().strip_prefix("listening irc ") {
                irc = Some(a.parse().unwrap());
            }
            if let Some(a) = line.trim().strip_prefix("listening irc-tls ") {
                irc_tls = Some(a.parse().unwrap());
            }
            if let Some(a) = line.trim().strip_prefix("listening http ") {
                http = Some(a.parse().unwrap());
            }
            if let Some(a) = line.trim().strip_prefix("listening metrics ") {
                metrics = Some(a.parse().unwrap());
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = reader.read_to_string(&mut sink);
        });
        Server {
            child,
            tcp: tcp.unwrap(),
            udp,
            irc,
            irc_tls,
            http,
            metrics,
            db: db.to_path_buf(),
            _dir: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: &str) {
        Command::new("kill").args([sig, &self.pid().to_string()]).status().unwrap();
    }

    /// Waits for the process to exit; returns its exit status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        wait_exit(&mut self.child)
    }
}

/// Waits at most [`WAIT`] for `child` to exit; returns its exit status.
pub fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the process did not exit");
        // Polling interval of the wait for the observable exit (std has no wait with a
        // timeout), not a guess at when the server is ready.
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A line-oriented TCP client (native or text).
pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Client { stream, reader }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn line(&mut self, text: &str) {
        self.send(format!("{text}\n").as_bytes());
    }

    /// Next line, or None on timeout/EOF.
    pub fn next(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(String::from_utf8_lossy(&buf).trim_end().to_string()),
        }
    }

    /// Next line as raw bytes, line terminator (`\r\n` or `\n`) removed, or None on
    /// timeout/EOF: for peers that do not read UTF-8.
    pub fn next_raw(&mut self) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                while buf.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
                    buf.pop();
                }
                Some(buf)
            }
        }
    }

    /// Reads lines until one contains `needle`; panics with what was seen otherwise.
    pub fn expect(&mut self, needle: &str) -> String {
        self.expect_within(needle, WAIT)
    }

    /// [`Client::expect`], for what may take up to `limit` (a failure being noticed).
    pub fn expect_within(&mut self, needle: &str, limit: Duration) -> String {
        let mut seen = Vec::new();
        let deadline = Instant::now() + limit;
        self.stream.set_read_timeout(Some(limit)).unwrap();
        while Instant::now() < deadline {
            match self.next() {
                Some(l) if l.contains(needle) => {
                    self.stream.set_read_timeout(Some(WAIT)).unwrap();
                    return l;
                }
                Some(l) => seen.push(l.chars().take(200).collect::<String>()),
                None => break,
            }
        }
        panic!("expected a line containing {needle:?} within {limit:?}; saw {seen:#?}");
    }

    /// Reads lines until one contains `needle`; returns the lines before it (that one is
    /// consumed too). Panics on timeout or end of stream.
    pub fn until(&mut self, needle: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            match self.next() {
                Some(l) if l.contains(needle) => return seen,
                Some(l) => seen.push(l),
                None => panic!("no line containing {needle:?}; saw {seen:#?}"),
            }
        }
    }

    /// Native barrier: a `ping` and everything read until its `pong`. The server answers in
    /// order, so whatever it sent this client before handling the ping is in the result.
    pub fn ping(&mut self) -> Vec<String> {
        let id = NEXT_PING.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.line(&format!(r#"{{"type":"ping","id":{id}}}"#));
        self.until(&format!(r#"{{"type":"pong","id":{id}}}"#))
    }

    /// IRC barrier: `PING token` and everything read until its `PONG`.
    pub fn irc_ping(&mut self) -> Vec<String> {
        let id = NEXT_PING.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The PONG repeats the token (with or without a colon); the trailing `x` keeps
        // barrier 1 from matching barrier 10.
        self.line(&format!("PING barrier{id}x"));
        self.until(&format!("barrier{id}x"))
    }

    /// Text-mode barrier: `/help` of a made-up command (answered in order, as everything
    /// once logged in, and free of the command budget, unlike `/who *`), and everything read
    /// until its answer.
    pub fn text_barrier(&mut self) -> Vec<String> {
        let id = NEXT_PING.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.line(&format!("/help barrier{id}x"));
        self.until(&format!("/barrier{id}x;"))
    }

    /// Reads lines for `d` and returns them all.
    pub fn drain(&mut self, d: Duration) -> Vec<String> {
        self.stream.set_read_timeout(Some(d)).unwrap();
        let mut out = Vec::new();
        while let Some(l) = self.next() {
            out.push(l);
        }
        self.stream.set_read_timeout(Some(WAIT)).unwrap();
        out
    }

    /// True when the server closed the connection (EOF) within the wait.
    pub fn closed(&mut self) -> bool {
        let deadline = Instant::now() + WAIT;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
        false
    }
}

/// A native-protocol client logged in as `nick`, with the welcome and lobby join consumed.
pub fn native(addr: SocketAddr, nick: &str) -> Client {
    let mut c = Client::connect(addr);
    c.line(&format!(r#"{{"type":"hello","nick":"{nick}"}}"#));
    c.expect(r#""type":"welcome""#);
    c.expect(r#""type":"joined""#);
    c
}

/// A text-mode client logged in as `nick`.
pub fn text(addr: SocketAddr, nick: &str) -> Client {
    let mut c = Client::connect(addr);
    c.line(nick);
    c.expect(&format!("Hello {nick}"));
    c.expect("you are in #lobby");
    c
}

/// A UDP member.
pub struct Udp {
    pub socket: UdpSocket,
    pub server: SocketAddr,
}

impl Udp {
    pub fn new(server: SocketAddr) -> Udp {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(WAIT)).unwrap();
        Udp { socket, server }
    }

    pub fn send(&self, bytes: &[u8]) {
        self.socket.send_to(bytes, self.server).unwrap();
    }

    pub fn recv(&self) -> Option<String> {
        let mut buf = [0u8; 65536];
        match self.socket.recv_from(&mut buf) {
            Ok((n, _)) => Some(String::from_utf8(buf[..n].to_vec()).expect("server sends UTF-8")),
            Err(_) => None,
        }
    }

    /// The next datagram as raw bytes, or None on timeout: for members that do not read UTF-8.
    pub fn recv_raw(&self) -> Option<Vec<u8>> {
        let mut buf = [0u8; 65536];
        match self.socket.recv_from(&mut buf) {
            Ok((n, _)) => Some(buf[..n].to_vec()),
            Err(_) => None,
        }
    }

    pub fn expect(&self, needle: &str) -> String {
        let mut seen = Vec::new();
        while let Some(d) = self.recv() {
            if d.contains(needle) {
                return d;
            }
            seen.push(d.chars().take(200).collect::<String>());
        }
        panic!("expected a datagram containing {needle:?}; saw {seen:#?}");
    }

    pub fn port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }
}

pub fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// Reads `reader` (a child's standard output or error) line by line on a thread of its own;
/// the lines arrive on the returned channel, so a test can wait for one with a deadline.
pub fn line_channel(reader: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// `natter serve` (TCP on port 0, no UDP or IRC, nothing stored) plus `flags`, whose log
/// (standard error, at the default level) is read line by line. Killed on drop.
pub struct LoggedServer {
    pub child: Child,
    /// The TCP address it listens on.
    pub tcp: SocketAddr,
    log: std::sync::mpsc::Receiver<String>,
}

impl LoggedServer {
    /// Starts the server and waits until it listens.
    pub fn start(flags: &[&str]) -> LoggedServer {
        Self::spawn(Command::new(natter_bin()), flags)
    }

    /// Starts the server under a shell's `ulimit` (e.g. `-Sn 256`: at most 256 open files,
    /// a limit the server may raise; `-n 64`: soft and hard, which it cannot).
    pub fn start_with_ulimit(ulimit: &str, flags: &[&str]) -> LoggedServer {
        let mut shell = Command::new("sh");
        shell.arg("-c").arg(format!("ulimit {ulimit} && exec \"$0\" \"$@\"")).arg(natter_bin());
        Self::spawn(shell, flags)
    }

    fn spawn(mut command: Command, flags: &[&str]) -> LoggedServer {
        let mut child = command
            .args(["serve", "--tcp", "127.0.0.1:0", "--udp", "off", "--irc", "off", "--db", ":memory:"])
            .args(flags)
            .env_remove("NATTER_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start natter serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let tcp = loop {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "the server exited");
            if let Some(a) = line.trim().strip_prefix("listening tcp ") {
                break a.parse().unwrap();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = stdout.read_to_string(&mut sink);
        });
        let log = line_channel(child.stderr.take().unwrap());
        LoggedServer { child, tcp, log }
    }

    /// Log lines up to the first containing every one of `needles`.
    pub fn until(&self, needles: &[&str]) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let line = self
                .log
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("no log line with {needles:?}; saw {seen:#?}"));
            let hit = needles.iter().all(|n| line.contains(n));
            seen.push(line);
            if hit {
                return seen;
            }
        }
    }

    /// The next log line, if one comes within `wait`.
    pub fn next_within(&self, wait: Duration) -> Option<String> {
        self.log.recv_timeout(wait).ok()
    }

    /// The log lines written so far and not yet read, without waiting.
    pub fn pending(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `natter serve` (TCP on port 0, no UDP, nothing stored) plus `flags`, with its console on
/// pipes: what the operator reads and types. Killed on drop.
pub struct ConsoleServer {
    pub child: Child,
    stdin: std::process::ChildStdin,
    stdout: std::sync::mpsc::Receiver<String>,
    /// The TCP address it listens on.
    pub tcp: SocketAddr,
}

impl ConsoleServer {
    /// Starts the server and waits until it listens and the console has logged in.
    pub fn start(flags: &[&str]) -> ConsoleServer {
        let mut child = Command::new(natter_bin())
            .args(["serve", "--tcp", "127.0.0.1:0", "--udp", "off", "--db", ":memory:"])
            .args(flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start natter serve");
        let stdin = child.stdin.take().unwrap();
        let stdout = line_channel(child.stdout.take().unwrap());
        let mut server = ConsoleServer { child, stdin, stdout, tcp: "127.0.0.1:1".parse().unwrap() };
        server.tcp = server.listening("tcp");
        server
    }

    /// The address of the `listening KIND` line (`tcp`, `irc`).
    pub fn listening(&mut self, kind: &str) -> SocketAddr {
        let prefix = format!("listening {kind} ");
        self.expect(&prefix).trim().strip_prefix(&prefix).unwrap().parse().unwrap()
    }

    /// Reads the console until a line contains `needle`; returns it.
    pub fn expect(&mut self, needle: &str) -> String {
        let mut seen = Vec::new();
        loop {
            match self.stdout.recv_timeout(WAIT) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("the console never printed {needle:?}; saw {seen:#?}"),
            }
        }
    }

    /// Types a line at the console.
    pub fn type_line(&mut self, line: &str) {
        self.stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    /// Waits for the process to exit; returns how it exited.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        wait_exit(&mut self.child)
    }
}

impl Drop for ConsoleServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Registers an IRC client with CAP negotiation and waits for the end of the burst.
pub fn irc_with_caps(addr: SocketAddr, nick: &str, caps: &str) -> Client {
    let mut c = Client::connect(addr);
    c.line("CAP LS 302");
    c.expect("CAP * LS");
    if !caps.is_empty() {
        c.line(&format!("CAP REQ :{caps}"));
        c.expect("CAP * ACK");
    }
    c.line(&format!("NICK {nick}"));
    c.line(&format!("USER {nick} 0 * :Real {nick}"));
    c.line("CAP END");
    c.expect(&format!(" 001 {nick} :Welcome"));
    c.expect(" 376 ");
    c.expect(" 366 ");
    c
}

/// Checks a `natter bench fanout --json` report: exactly `expected` deliveries, each with its
/// latency sample, nothing lost, out of order, foreign or failed, and a CPU figure.
pub fn assert_no_loss(r: &serde_json::Value, expected: u64) {
    assert_eq!(r["expected"], expected, "{r:#}");
    assert_eq!(r["delivered"], expected, "{r:#}");
    for zero in ["lost", "out_of_order", "disconnects", "errors", "foreign"] {
        assert_eq!(r[zero], 0, "{zero}: {r:#}");
    }
    assert_eq!(r["timed_out"], false, "{r:#}");
    assert_eq!(r["latency"]["samples"], expected, "{r:#}");
    assert!(r["deliveries_per_server_cpu_s"].as_f64().is_some_and(|d| d > 0.0), "{r:#}");
}

/// The value of one series on the server's `/metrics` (e.g. `natter_parked_connections`, or
/// `natter_sessions{door="native"}`), read now.
pub fn metric(addr: SocketAddr, series: &str) -> f64 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {series} in {body}"))
        .trim()
        .parse()
        .unwrap()
}

/// Waits until `series` on the server's `/metrics` has `value`; panics with the last reading
/// after `limit`.
pub fn wait_metric(addr: SocketAddr, series: &str, value: f64, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let now = metric(addr, series);
        if now == value {
            return;
        }
        assert!(Instant::now() < deadline, "{series} is {now}, not {value}");
        // Polling the server's own count: what it counts follows events the test cannot see.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `n` connections are parked (the scrape itself is a connection, never parked);
/// panics with the last count after 20 s.
pub fn wait_parked(addr: SocketAddr, n: u64) {
    wait_metric(addr, "natter_parked_connections", n as f64, Duration::from_secs(20));
}
