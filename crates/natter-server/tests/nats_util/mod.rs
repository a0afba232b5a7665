//! A `nats-server` of the test's own: on a free loopback port, with its configuration and log
//! in a temporary directory, ready when it greets a client, killed by PID on drop. Tests that
//! need a cluster bus use it through [`NatsServer::start`] after [`nats_available`].
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started nats-server has to greet a client before the test fails.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// True when `nats-server` runs. When it is missing the test is skipped with a message, unless
/// `NATTER_REQUIRE_TOOLS` is set (`.ci/run` sets it after installing it): then a missing
/// nats-server fails the test, so CI can never pass by skipping.
pub fn nats_available() -> bool {
    if nats_server_program().is_some() {
        return true;
    }
    let what = "not installed: nats-server (apt-get install nats-server)";
    if std::env::var_os("NATTER_REQUIRE_TOOLS").is_some_and(|v| !v.is_empty()) {
        panic!("NATTER_REQUIRE_TOOLS is set but {what}");
    }
    eprintln!("SKIPPED: {what} (set NATTER_REQUIRE_TOOLS=1 to fail instead)");
    false
}

/// The nats-server program: on the `PATH`, or where Debian puts it (`/usr/sbin`, which is not
/// on an ordinary user's `PATH`).
fn nats_server_program() -> Option<PathBuf> {
    ["nats-server", "/usr/sbin/nats-server"]
        .into_iter()
        .map(PathBuf::from)
        .find(|program| Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success()))
}

/// What the server is started with besides its port.
#[derive(Debug, Clone, Default)]
pub struct NatsOptions {
    /// The largest message the server takes (its `max_payload`); `None`: its default, 1 MiB.
    pub max_payload: Option<usize>,
    /// A user and password every client must give.
    pub user: Option<(String, String)>,
}

/// A running (or stopped, between [`NatsServer::kill`] and [`NatsServer::restart`])
/// nats-server.
pub struct NatsServer {
    child: Option<Child>,
    /// Its client port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a server on a free loopback port and waits until it greets a client. The port
    /// is one the system just gave out and took back; should another process take it first,
    /// the server cannot listen and another port is tried.
    pub fn start(options: &NatsOptions) -> Self {
        let mut tries = 0;
        loop {
            tries += 1;
            let dir = tempfile::tempdir().expect("a temporary directory");
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut config = format!("listen: \"127.0.0.1:{port}\"\n");
            if let Some(max) = options.max_payload {
                config.push_str(&format!("max_payload: {max}\n"));
            }
            if let Some((user, password)) = &options.user {
                config.push_str(&format!(
                    "authorization {{\n  user: \"{user}\"\n  password: \"{password}\"\n}}\n"
                ));
            }
            std::fs::write(dir.path().join("nats.conf"), config).unwrap();
            let mut server = Self { child: None, port, dir };
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(why) if tries < 3 && why.contains("address already in use") => continue,
                Err(why) => panic!("{why}"),
            }
        }
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats.log")
    }

    /// What the server logged so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Kills the server (SIGKILL: no goodbye to its clients) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and configuration and waits until it greets
    /// a client.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart a killed server only");
        self.spawn_and_wait().unwrap_or_else(|why| panic!("{why}"));
    }

    /// Spawns nats-server, then connects with retry until it sends its `INFO` greeting; the
    /// error (with its log) when it exits or does not greet in time.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let program = nats_server_program().expect("nats-server is installed (see nats_available)");
        let child = Command::new(program)
            .arg("-c")
            .arg(self.dir.path().join("nats.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Err(format!("nats-server exited ({status}) before it was ready:\n{}", self.log()));
            }
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut greeting = String::new();
                if BufReader::new(stream).read_line(&mut greeting).is_ok() && greeting.starts_with("INFO ") {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(format!("nats-server did not greet within {READY_WITHIN:?}:\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
