//! Connections to PostgreSQL: a small pool of synchronous clients that survives a restart of
//! the database server, and errors that say which server failed without ever showing its
//! password.
//!
//! The client is rust-postgres' synchronous `postgres` crate (each client drives its own
//! connection on a private single-thread runtime): the [`Store`](natter_core::Store) trait is
//! blocking and is called from the hub's commit thread and tokio's blocking pool, so a blocking
//! client fits it without a runtime of our own (it must never be called on an async thread:
//! its runtime would refuse to start inside tokio's). The pool is a mutex over idle clients
//! and a count of open ones (at most [`MAX_CONNECTIONS`]) rather than `r2d2`: what it must do
//! on failure (drop every idle client after a restart, try once more on a fresh connection
//! when nothing was sent yet) is the part r2d2 would not do for us.

use natter_core::StoreError;
use postgres::config::Host;
use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Row, Statement};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long opening a connection may take before the operation fails: a server that is down
/// or unreachable must not stall the hub's commit thread for long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one statement may run (PostgreSQL's `statement_timeout`): no operation of natter's
/// takes more than milliseconds, so anything longer is a stuck or overloaded server, and
/// waiting forever would hang the hub.
const STATEMENT_TIMEOUT_MS: u32 = 10_000;

/// How long a statement may wait for a row lock (`lock_timeout`): shorter than the statement's
/// own limit, so that a lock held by someone else (an administrator's open transaction, a
/// stuck session) is named as such.
const LOCK_TIMEOUT_MS: u32 = 5_000;

/// How long sent data may stay unacknowledged before the kernel gives up on the connection
/// (`TCP_USER_TIMEOUT`): a server that vanished from the network fails the operation instead of
/// hanging it. Keepalives find a dead idle connection on the same scale.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);

/// Idle connections kept between operations; more are opened when more run at once.
const MAX_IDLE: usize = 8;

/// Connections open at once, in use or idle: each is a PostgreSQL backend process, and the
/// server's `max_connections` (100 by default) is shared by every node; more readers than this
/// wait for a connection.
const MAX_CONNECTIONS: usize = 16;

/// How long an operation waits for a connection when all of them are busy.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);

/// One connection with the statements prepared on it.
pub(crate) struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
    /// Its place among the pool's connections, given back when it is dropped.
    _slot: Slot,
}

/// Runs statements on a client or an open transaction, preparing each SQL text once per
/// connection (a prepared statement saves the server parsing and planning it at every call).
pub(crate) struct Sql<'a> {
    client: &'a mut Client,
    statements: &'a mut HashMap<String, Statement>,
}

impl Sql<'_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Every row `sql` returns.
    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query(&statement, params)
    }

    /// The one row `sql` returns.
    pub(crate) fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query_one(&statement, params)
    }

    /// The row `sql` returns, if any.
    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query_opt(&statement, params)
    }

    /// Runs `sql`, one or several statements without parameters (migrations).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.client.batch_execute(sql)
    }

    /// Runs `sql`; the rows it changed.
    pub(crate) fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.execute(&statement, params)
    }
}

/// A failure inside a transaction: the database's, or a value natter cannot store (found
/// before it was sent).
pub(crate) enum TxError {
    Db(postgres::Error),
    Value(StoreError),
}

impl From<postgres::Error> for TxError {
    fn from(e: postgres::Error) -> Self {
        TxError::Db(e)
    }
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError::Value(e)
    }
}

/// Where the database is, as the operator may see it: hosts, ports and database name, never
/// the password.
pub(crate) struct Target {
    /// `HOST:PORT` (several joined by commas), for "PostgreSQL at ... is unavailable".
    pub(crate) address: String,
    /// The URL with its password replaced by `***`, for [`StoreError::Open`].
    pub(crate) url: String,
    /// The password, to scrub from any message that might quote it.
    password: Option<String>,
}

impl Target {
    fn of(url: &str, config: &Config) -> Self {
        let ports = config.get_ports();
        let address = config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                match host {
                    Host::Tcp(name) => format!("{name}:{port}"),
                    Host::Unix(dir) => format!("{}/.s.PGSQL.{port}", dir.display()),
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        let password =
            config.get_password().map(|p| String::from_utf8_lossy(p).into_owned()).filter(|p| !p.is_empty());
        let mut target = Self {
            address: if address.is_empty() { "localhost:5432".into() } else { address },
            url: redact_url(url),
            password,
        };
        // A password the URL's syntax hides badly (an unencoded `/` or `@` in it) is still
        // taken out of the URL shown.
        target.url = target.scrub(&target.url);
        target
    }

    /// `text` with the password (if it occurs) replaced by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        match &self.password {
            Some(p) => text.replace(p.as_str(), "***"),
            None => text.to_owned(),
        }
    }
}

/// `url` with the password of its `user:password@` part replaced by `***`, and any
/// `password=` parameter too: what logs and errors may show.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            let userinfo = &out[rest..rest + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    if let Some(query) = out.find('?') {
        let (head, params) = out.split_at(query + 1);
        let params: Vec<String> = params
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out = format!("{head}{}", params.join("&"));
    }
    out
}

/// True when `e` says the server is down, restarting or unreachable (rather than that a
/// statement was wrong): the connection is dropped and the operator is told the server is
/// unavailable.
fn unavailable(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let code = code.code();
        // Class 08: connection exceptions; 57P01-57P03: the server is shutting down, crashed,
        // or is not accepting connections yet.
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03");
    }
    // No SQLSTATE: the client's own failure. An I/O error (refused, reset) or a timeout means
    // the server is out of reach; anything else (a value that does not convert) does not.
    let io = std::error::Error::source(e).is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
    io || e.to_string().contains("timeout")
}

/// The connections to one database.
pub(crate) struct Pool {
    config: Config,
    pub(crate) target: Target,
    connections: Arc<Connections>,
}

/// The pool's idle connections and how many are open in all, under one lock.
struct Connections {
    state: Mutex<State>,
    /// Signalled when a connection goes idle or is closed: a waiting checkout may go on.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    idle: Vec<Conn>,
    /// Open connections, idle or in use: at most [`MAX_CONNECTIONS`].
    open: usize,
}

/// A place among the [`MAX_CONNECTIONS`], held by a connection for as long as it lives: every
/// way a connection ends (dropped after a failure, drained after a restart) gives it back.
struct Slot(Arc<Connections>);

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.0.state).open -= 1;
        self.0.changed.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Pool {
    fn drop(&mut self) {
        // The idle connections hold the pool's bookkeeping alive (each returns its slot to
        // it): close them, or they would outlive the store.
        self.drain();
    }
}

/// Why no connection could be had.
enum Checkout {
    /// Connecting failed.
    Connect(postgres::Error),
    /// All [`MAX_CONNECTIONS`] stayed busy for [`CHECKOUT_TIMEOUT`].
    Busy,
}

impl Pool {
    /// A pool for the database at `url` (`postgres://user:password@host:port/dbname`, or any
    /// form libpq accepts); connects nothing yet.
    pub(crate) fn new(url: &str) -> Result<Self, StoreError> {
        let mut config: Config = url.parse().map_err(|e: postgres::Error| StoreError::Open {
            path: redact_url(url),
            reason: format!(
                "this is not a PostgreSQL URL natter can read ({}); write it as \
                 postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                scrub_any(url, &with_cause(&e))
            ),
        })?;
        let target = Target::of(url, &config);
        if config.get_ssl_mode() == postgres::config::SslMode::Require {
            return Err(StoreError::Open {
                path: target.url,
                reason:
                    "natter does not speak TLS to PostgreSQL (yet): remove sslmode=require, and keep the \
                         database on the same host or a private network"
                        .into(),
            });
        }
        let mut options = config.get_options().unwrap_or_default().to_owned();
        options.push_str(&format!(
            " -c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS} \
             -c idle_in_transaction_session_timeout={}",
            STATEMENT_TIMEOUT_MS * 3
        ));
        config
            .options(options.trim())
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_user_timeout(TCP_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(TCP_TIMEOUT)
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3);
        if config.get_application_name().is_none() {
            config.application_name("natter");
        }
        let connections =
            Arc::new(Connections { state: Mutex::new(State::default()), changed: Condvar::new() });
        Ok(Self { config, target, connections })
    }

    /// Connects once, so that a wrong URL, password or database shows at startup with what to
    /// do about it; the connection is kept for the first operation.
    pub(crate) fn first_connect(&self) -> Result<(), StoreError> {
        match self.checkout() {
            Ok((conn, _)) => {
                self.checkin(conn);
                Ok(())
            }
            Err(Checkout::Connect(e)) => Err(self.open_error("cannot connect", &e)),
            Err(Checkout::Busy) => Err(self.busy("cannot connect")),
        }
    }

    /// A connection: an idle one (`true`), or a new one (`false`) when fewer than
    /// [`MAX_CONNECTIONS`] are open; else waits (at most [`CHECKOUT_TIMEOUT`]) for one.
    fn checkout(&self) -> Result<(Conn, bool), Checkout> {
        let deadline = Instant::now() + CHECKOUT_TIMEOUT;
        let mut state = lock(&self.connections.state);
        loop {
            if let Some(conn) = state.idle.pop() {
                if conn.client.is_closed() {
                    // Its slot is given back on drop, which takes the lock.
                    drop(state);
                    drop(conn);
                    state = lock(&self.connections.state);
                    continue;
                }
                return Ok((conn, true));
            }
            if state.open < MAX_CONNECTIONS {
                state.open += 1;
                drop(state);
                let slot = Slot(self.connections.clone());
                let client = self.config.connect(NoTls).map_err(Checkout::Connect)?;
                return Ok((Conn { client, statements: HashMap::new(), _slot: slot }, false));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Checkout::Busy);
            }
            state = self
                .connections
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn checkin(&self, conn: Conn) {
        let mut state = lock(&self.connections.state);
        if state.idle.len() < MAX_IDLE && !conn.client.is_closed() {
            state.idle.push(conn);
            drop(state);
            self.connections.changed.notify_one();
        } else {
            drop(state);
            drop(conn);
        }
    }

    /// Closes every idle connection: after the server went away they are all dead, and at
    /// shutdown they are no longer needed.
    pub(crate) fn drain(&self) {
        let idle = std::mem::take(&mut lock(&self.connections.state).idle);
        drop(idle);
    }

    /// The error for a checkout that failed during `what`.
    fn checkout_error(&self, what: &str, e: Checkout) -> StoreError {
        match e {
            Checkout::Connect(e) => self.error(what, &e),
            Checkout::Busy => self.busy(what),
        }
    }

    fn busy(&self, what: &str) -> StoreError {
        StoreError::Io(format!(
            "{what}: all {MAX_CONNECTIONS} connections to PostgreSQL at {} stayed busy for {} seconds; the \
             database is too slow for the load, or a statement is stuck",
            self.target.address,
            CHECKOUT_TIMEOUT.as_secs()
        ))
    }

    /// Runs the read `f` outside a transaction. A read is safe to repeat, so when a pooled
    /// connection turns out dead (the server restarted since it was used) the pool is emptied
    /// and `f` runs once more on a new connection.
    pub(crate) fn read<T>(
        &self,
        what: &str,
        mut f: impl FnMut(&mut Sql<'_>) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut retried = false;
        loop {
            let (mut conn, pooled) = self.checkout().map_err(|e| self.checkout_error(what, e))?;
            let Conn { client, statements, .. } = &mut conn;
            let result = f(&mut Sql { client, statements });
            match result {
                Ok(value) => {
                    self.checkin(conn);
                    return Ok(value);
                }
                Err(e) if unavailable(&e) => {
                    drop(conn);
                    self.drain();
                    if pooled && !retried {
                        retried = true;
                        continue;
                    }
                    return Err(self.error(what, &e));
                }
                Err(e) => {
                    self.checkin(conn);
                    return Err(self.error(what, &e));
                }
            }
        }
    }

    /// Runs `f` in one transaction and commits it: all of `f`'s writes or none. Only the
    /// `BEGIN` is repeated on a new connection when a pooled one turns out dead: once a
    /// statement of `f` may have reached the server, whether it took effect is unknown, and the
    /// caller is told it failed.
    pub(crate) fn write<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Sql<'_>) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        let mut retried = false;
        let mut conn = loop {
            let (mut conn, pooled) = self.checkout().map_err(|e| self.checkout_error(what, e))?;
            match conn.client.batch_execute("BEGIN") {
                Ok(()) => break conn,
                Err(e) if unavailable(&e) => {
                    drop(conn);
                    self.drain();
                    if pooled && !retried {
                        retried = true;
                        continue;
                    }
                    return Err(self.error(what, &e));
                }
                Err(e) => {
                    self.checkin(conn);
                    return Err(self.error(what, &e));
                }
            }
        };
        let result = {
            let Conn { client, statements, .. } = &mut conn;
            let mut sql = Sql { client, statements };
            f(&mut sql).and_then(|value| Ok(sql.client.batch_execute("COMMIT").map(|()| value)?))
        };
        match result {
            Ok(value) => {
                self.checkin(conn);
                Ok(value)
            }
            Err(TxError::Value(e)) => {
                if conn.client.batch_execute("ROLLBACK").is_ok() {
                    self.checkin(conn);
                }
                Err(e)
            }
            Err(TxError::Db(e)) if unavailable(&e) => {
                drop(conn);
                self.drain();
                Err(self.error(what, &e))
            }
            Err(TxError::Db(e)) => {
                // The statement failed, the connection did not: end the transaction and keep it.
                if conn.client.batch_execute("ROLLBACK").is_ok() {
                    self.checkin(conn);
                }
                Err(self.error(what, &e))
            }
        }
    }

    /// The store error for `e` during `what`.
    pub(crate) fn error(&self, what: &str, e: &postgres::Error) -> StoreError {
        let detail = describe(e);
        let text = if unavailable(e) {
            format!(
                "PostgreSQL at {} is unavailable: {detail} ({what}); natter connects again at the next \
                 operation",
                self.target.address
            )
        } else {
            let hint = match e.code().map(|c| c.code()) {
                Some("55P03") => format!(
                    "; another session held a lock natter needs for over {} s (an open transaction in psql, \
                     or a stuck session: see pg_stat_activity)",
                    LOCK_TIMEOUT_MS / 1000
                ),
                Some("57014") => format!(
                    "; the statement ran over {} s: the database is overloaded or stuck",
                    STATEMENT_TIMEOUT_MS / 1000
                ),
                _ => String::new(),
            };
            format!("{what}: {detail}{hint}")
        };
        StoreError::Io(self.target.scrub(&text))
    }

    /// The startup error for `e` during `what`.
    pub(crate) fn open_error(&self, what: &str, e: &postgres::Error) -> StoreError {
        let reason = match e.as_db_error() {
            Some(db) => format!("{what}: {}", describe(e)).replace("  ", " ") + &hint(db.code().code()),
            None => format!(
                "PostgreSQL at {} is unavailable: {} ({what}); check that it runs and that the URL's host and \
                 port are right",
                self.target.address,
                describe(e)
            ),
        };
        StoreError::Open { path: self.target.url.clone(), reason: self.target.scrub(&reason) }
    }
}

/// What the operator can do about a server's refusal at startup, by its SQLSTATE.
fn hint(code: &str) -> String {
    match code {
        "28P01" | "28000" => "; check the user name and password in the URL".into(),
        "3D000" => "; create the database first (createdb), or name an existing one in the URL".into(),
        "42501" => {
            "; the role needs CREATE on the database (or schema public) to make natter's tables".into()
        }
        _ => String::new(),
    }
}

/// A one-line account of `e`: the server's message (with its detail) for a server error,
/// else what the client saw.
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_owned(),
        },
        None => with_cause(e),
    }
}

/// `e` and what caused it (the client's own errors keep the operating system's reason, such
/// as "Connection refused", in their source).
fn with_cause(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    if let Some(cause) = std::error::Error::source(e) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

/// `text` with the password of `url` scrubbed, for errors raised before the URL was parsed.
fn scrub_any(url: &str, text: &str) -> String {
    let redacted = redact_url(url);
    if redacted == url {
        return text.to_owned();
    }
    // The password is what redaction removed: the difference between the two forms.
    let common_start = url.bytes().zip(redacted.bytes()).take_while(|(a, b)| a == b).count();
    let common_end = url.bytes().rev().zip(redacted.bytes().rev()).take_while(|(a, b)| a == b).count();
    let password = url.get(common_start..url.len().saturating_sub(common_end)).unwrap_or("");
    if password.is_empty() { text.to_owned() } else { text.replace(password, "***") }
}
