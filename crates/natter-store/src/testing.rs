//! A throwaway PostgreSQL server for tests (the `testing` feature): `initdb` in a temporary
//! directory, `postgres` on a free loopback port, stopped (by its process id) and deleted when
//! dropped. Each test gets a database of its own ([`Postgres::database`]), so tests in one
//! binary share a server and still run in parallel.
//!
//! PostgreSQL refuses to run as root, and CI machines (and this project's development machine)
//! run tests as root: there the server runs as the unprivileged user `nobody`, through
//! `setpriv` (or `runuser`), in a directory handed to that user. Debian keeps the binaries off
//! `PATH`, in `/usr/lib/postgresql/VERSION/bin`: they are looked for there (the newest
//! version), then through `pg_config --bindir`, then on `PATH`; `NATTER_PG_BIN` overrides.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long the server may take to start or stop before the test fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// A running throwaway PostgreSQL server.
pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// The unprivileged user to run as (uid, gid), when this process is root.
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
}

/// The directory holding `initdb` and `postgres`, if PostgreSQL is installed.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("NATTER_PG_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").is_file().then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if bin.join("initdb").is_file() {
            return Some(bin);
        }
    }
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
}

/// True when tests that need PostgreSQL can run. When it is missing: with
/// `NATTER_REQUIRE_TOOLS` set (CI) this panics, so that the tests fail rather than pass
/// without running; otherwise it says the tests are skipped and returns false.
pub fn available() -> bool {
    if bin_dir().is_some() {
        return true;
    }
    let what = "PostgreSQL is not installed (apt-get install postgresql; or set NATTER_PG_BIN to the \
                directory holding initdb and postgres)";
    if std::env::var_os("NATTER_REQUIRE_TOOLS").is_some_and(|v| !v.is_empty()) {
        panic!("NATTER_REQUIRE_TOOLS is set but {what}");
    }
    eprintln!("SKIPPED: {what} (set NATTER_REQUIRE_TOOLS=1 to fail instead)");
    false
}

/// The uid and gid of `nobody`, when this process is root (and must not run PostgreSQL as
/// itself).
fn unprivileged() -> Option<(u32, u32)> {
    // SAFETY: getuid cannot fail; getpwnam returns a pointer into static storage or null, read
    // at once in this single call.
    unsafe {
        if libc::getuid() != 0 {
            return None;
        }
        let pw = libc::getpwnam(c"nobody".as_ptr());
        if pw.is_null() {
            panic!(
                "this test runs as root and PostgreSQL refuses root, but there is no user `nobody` to run it as"
            );
        }
        Some(((*pw).pw_uid, (*pw).pw_gid))
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Postgres {
    /// Makes a new database cluster and starts its server; panics (failing the test) saying
    /// why when that is not possible. Call [`available`] first.
    pub fn start() -> Postgres {
        let bin = bin_dir().expect("PostgreSQL is installed (check available() first)");
        let run_as = unprivileged();
        let dir = tempfile::Builder::new().prefix("natter-pg-").tempdir().expect("a temporary directory");
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("chown the temporary directory");
        }
        let mut pg = Postgres { bin, dir, port: 0, run_as, child: None };
        let data = pg.data();
        let out = pg
            .command("initdb")
            .args(["--auth=trust", "--username=natter", "--encoding=UTF8", "--no-locale", "--no-sync", "-D"])
            .arg(&data)
            .stdin(Stdio::null())
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        pg.start_server();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `program` of PostgreSQL's, run as the unprivileged user when this process is root, in
    /// the temporary directory.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = match self.run_as {
            Some((uid, gid)) if Path::new("/usr/bin/setpriv").exists() || which("setpriv") => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}")).arg(format!("--regid={gid}")).arg("--clear-groups").arg(path);
                c
            }
            Some(_) => {
                let mut c = Command::new("runuser");
                c.args(["-u", "nobody", "--"]).arg(path);
                c
            }
            None => Command::new(path),
        };
        command.current_dir(self.dir.path()).env_remove("PGDATA");
        command
    }

    /// Starts `postgres` on a free port (its current one, after a [`Postgres::stop`]) and
    /// waits until it accepts connections.
    fn start_server(&mut self) {
        let keep_port = self.port != 0;
        for _ in 0..5 {
            if !keep_port {
                self.port = free_port();
            }
            let log = std::fs::File::create(self.dir.path().join("postgres.log")).expect("create the log");
            let child = self
                .command("postgres")
                .arg("-D")
                .arg(self.data())
                .args(["-p", &self.port.to_string(), "-k"])
                .arg(self.dir.path())
                .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off"])
                .args(["-c", "max_connections=200"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("run postgres");
            self.child = Some(child);
            match self.wait_ready() {
                Ok(()) => return,
                Err(exited) if exited && !keep_port => continue,
                Err(_) => break,
            }
        }
        panic!("PostgreSQL did not start: {}", self.log());
    }

    /// Waits until the server accepts a connection; `Err(true)` when it exited instead (a
    /// port taken in the meantime), `Err(false)` at the deadline.
    fn wait_ready(&mut self) -> Result<(), bool> {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && child.try_wait().ok().flatten().is_some()
            {
                self.child = None;
                return Err(true);
            }
            let config =
                format!("host=127.0.0.1 port={} user=natter dbname=postgres connect_timeout=2", self.port);
            if off_runtime(|| postgres::Client::connect(&config, postgres::NoTls).is_ok()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(false)
    }

    /// What the server logged, for a failure message.
    pub fn log(&self) -> String {
        let mut text = String::new();
        let _ = std::fs::File::open(self.dir.path().join("postgres.log"))
            .and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a new, empty database and returns its URL (user `natter`, no password needed).
    pub fn database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let name = format!("natter_test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let url = self.url("postgres");
        off_runtime(|| {
            let mut admin =
                postgres::Client::connect(&url, postgres::NoTls).expect("connect to the test server");
            admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create a test database");
        });
        self.url(&name)
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://natter@127.0.0.1:{}/{name}", self.port)
    }

    /// A connection to the `postgres` database, for setting up tests (not from an async
    /// task: the synchronous client runs a runtime of its own).
    pub fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.url("postgres"), postgres::NoTls).expect("connect to the test server")
    }

    /// Stops the server (a fast shutdown: sessions are ended, what was committed is kept) and
    /// waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = child.id() as libc::pid_t;
        // SAFETY: signalling our own child, which has not been reaped (we hold its handle).
        unsafe { libc::kill(pid, libc::SIGINT) };
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the server again after [`Postgres::stop`], on the same port and data.
    pub fn restart(&mut self) {
        self.start_server();
    }
}

/// Runs `f` on a thread of its own: the synchronous PostgreSQL client starts a runtime, which
/// tokio refuses on a thread that drives async tasks, and the harness is used from async tests
/// too.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server the tests running right now share, started by the first of them and stopped when
/// the last one lets it go; `None` when PostgreSQL is not installed (see [`available`]).
pub fn shared() -> Option<std::sync::Arc<Postgres>> {
    use std::sync::{Arc, Mutex, Weak};
    static SHARED: Mutex<Weak<Postgres>> = Mutex::new(Weak::new());
    if !available() {
        return None;
    }
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(pg) = shared.upgrade() {
        return Some(pg);
    }
    let pg = Arc::new(Postgres::start());
    *shared = Arc::downgrade(&pg);
    Some(pg)
}
