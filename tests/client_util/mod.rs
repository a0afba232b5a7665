//! Helpers for the client's end-to-end tests: a real `natter serve` on a free port with its own
//! database, that can be killed and restarted on the same port with the same store.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Path of the `natter` binary under test.
pub const NATTER: &str = env!("CARGO_BIN_EXE_natter");

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "natter-client-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server; killed on drop.
pub struct Server {
    child: Option<Child>,
    pub addr: String,
    pub dir: TempDir,
    extra: Vec<String>,
}

fn spawn(tcp: &str, db: &PathBuf, extra: &[String]) -> (Child, String) {
    let mut child = Command::new(NATTER)
        .args(["serve", "--tcp", tcp, "--udp", "off", "--db"])
        .arg(db)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn natter serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.split_whitespace().skip_while(|w| *w != "tcp").nth(1)
                && line.starts_with("listening")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(addr) => (child, addr),
        Err(_) => {
            let _ = child.kill();
            panic!("natter serve did not print `listening tcp ADDR` within 30 s");
        }
    }
}

impl Server {
    /// Starts a server on a free port with a fresh database and no rate limit.
    pub fn start() -> Self {
        Self::start_with(&["--msg-rate", "0"])
    }

    /// Starts a server with extra flags.
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = TempDir::new("srv");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, addr) = spawn("127.0.0.1:0", &dir.0.join("natter.db"), &extra);
        Server { child: Some(child), addr, dir, extra }
    }

    /// Starts a server on `tcp` (`127.0.0.1:0` for any free port) with the database file
    /// `db`, another server's: two servers run one after the other on one SQLite file share
    /// accounts and history, as the nodes of a cluster share their store.
    pub fn start_on(tcp: &str, db: &std::path::Path, extra: &[&str]) -> Self {
        let dir = TempDir::new("node");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, addr) = spawn(tcp, &db.to_path_buf(), &extra);
        // `restart` would use the empty directory's database: this server is not restarted.
        Server { child: Some(child), addr, dir, extra }
    }

    /// Sends the server a signal (`STOP`, `CONT`...), as `kill -SIGNAL` does.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the server runs").id();
        let status =
            Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().expect("run kill");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// Kills the server abruptly (as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same address with the same database.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // The port is free once the old process is gone; retry briefly if the OS lags.
            if std::net::TcpListener::bind(&self.addr).is_ok() || Instant::now() > deadline {
                break;
            }
            // Polling interval of the wait for the observable condition (the port is free).
            std::thread::sleep(Duration::from_millis(50));
        }
        let (child, addr) = spawn(&self.addr.clone(), &self.dir.0.join("natter.db"), &self.extra);
        assert_eq!(addr, self.addr);
        self.child = Some(child);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An address that refuses connections as long as the returned socket lives: the socket is
/// bound but never listens, so the port stays ours (no other test's server can take it).
pub fn refusing_addr() -> (tokio::net::TcpSocket, String) {
    let held = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    held.bind("127.0.0.1:0".parse().unwrap()).expect("bind a loopback port");
    let addr = held.local_addr().unwrap().to_string();
    (held, addr)
}
