//! The SQLite [`Store`].
//!
//! One writer connection, used only by [`Store::commit`] (the core's group-commit thread), and a
//! small pool of read-only connections for [`Store::history`] and [`Store::load`]. In WAL mode a
//! reader sees the last committed state and never waits for a writer, so a long batch commit
//! does not stall history requests. An in-memory database (`:memory:`) is private to one
//! connection, so there every call goes through the writer connection instead.

use crate::error::{io_error, load_error, open_error};
use crate::schema;
use natter_core::store::{
    AccountRecord, HistoryQuery, LoadWindow, LoadedRoom, MailboxSize, PrivateTarget, RoomRecord, Store,
    StoreError, StoredMessage, StoredPrivate, TokenDigest, TokenRecord, Write, account_key, conversation,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, ToSql, params};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How long a connection waits for another one's lock before failing: long enough to ride out a
/// checkpoint or a second process briefly holding the database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read connections kept open between calls; more are opened when more readers run at once.
const MAX_IDLE_READERS: usize = 4;

/// Which failure an acknowledged commit must survive: the trade between commit latency and
/// durability is the operator's, so it is a constructor option rather than a constant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Survives a crash or `kill -9` of the server process, which is natter's promise:
    /// `synchronous=NORMAL` in WAL mode writes each commit to the operating system before
    /// returning, and only fsyncs at checkpoints. A power loss or kernel crash may lose the last
    /// commits (never corrupting the database).
    #[default]
    Process,
    /// Also survives a power loss or an operating-system crash: `synchronous=FULL` fsyncs the
    /// write-ahead log on every commit, at the cost of one disk flush per batch.
    PowerLoss,
}

impl Durability {
    fn synchronous(self) -> &'static str {
        match self {
            Durability::Process => "NORMAL",
            Durability::PowerLoss => "FULL",
        }
    }
}

/// The embedded message store: what `natter serve` uses unless told otherwise, because it
/// needs no database server and keeps every acknowledged message across restarts.
pub struct SqliteStore {
    /// The path as given, for error messages and for opening read connections.
    path: String,
    /// The only connection that writes; for `:memory:` the only connection at all.
    writer: Mutex<Connection>,
    /// Idle read connections; `None` when reads must go through `writer` (`:memory:`).
    readers: Option<Mutex<Vec<Connection>>>,
    /// An exclusive lock on `<path>.lock`, held while the store is open: a second natter on
    /// the same file is refused at start instead of both writing (`None` in memory).
    _lock: Option<std::fs::File>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Locks `<path>.lock` for this process alone (released by the system when the process ends,
/// however it ends), or says that another server holds it.
fn take_lock(path: &str) -> Result<std::fs::File, StoreError> {
    let lock_path = format!("{path}.lock");
    let refuse = |reason: String| StoreError::Open { path: path.to_owned(), reason };
    let file =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(
            |e| {
                refuse(format!(
                    "cannot create the lock file {lock_path} ({e}); check that the directory exists and \
                 that this user may create files in it"
                ))
            },
        )?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(refuse(format!(
            "another natter server is using this database (it holds {lock_path}); stop it, or give \
             this one another --db"
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(refuse(format!("cannot lock {lock_path} ({e})"))),
    }
}

/// True for the paths SQLite keeps in the process's memory rather than in a file.
fn is_memory(path: &str) -> bool {
    path == ":memory:" || path.is_empty()
}

/// Converts a stored u64 into SQLite's i64; ids and times beyond i64 cannot be stored.
fn to_i64(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Io(format!("{what} {v} is too large to store (above 2^63-1)")))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock dropped any open transaction, which rolled it back: the
    // connection is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

const MESSAGE_COLUMNS: &str = "room, mid, ts, nick, sender_key, cid, text, action, notice";

const ACCOUNT_COLUMNS: &str = "folded, name, hash, created_ts, last_login_ts, scram";

fn account_from_row(r: &Row<'_>) -> rusqlite::Result<AccountRecord> {
    Ok(AccountRecord {
        folded: r.get(0)?,
        name: r.get(1)?,
        hash: r.get(2)?,
        created_ts: r.get::<_, i64>(3)? as u64,
        last_login_ts: r.get::<_, Option<i64>>(4)?.map(|t| t as u64),
        scram: r.get(5)?,
    })
}

const PRIVATE_COLUMNS: &str = "mid, ts, from_key, nick, to_key, to_nick, text, action, notice, undelivered";

fn private_from_row(r: &Row<'_>) -> rusqlite::Result<StoredPrivate> {
    Ok(StoredPrivate {
        mid: r.get::<_, i64>(0)? as u64,
        ts: r.get::<_, i64>(1)? as u64,
        from_key: r.get(2)?,
        nick: r.get(3)?,
        to_key: r.get(4)?,
        to_nick: r.get(5)?,
        text: r.get(6)?,
        action: r.get(7)?,
        notice: r.get(8)?,
        undelivered: r.get(9)?,
    })
}

fn message_from_row(r: &Row<'_>) -> rusqlite::Result<StoredMessage> {
    Ok(StoredMessage {
        room: r.get(0)?,
        mid: r.get::<_, i64>(1)? as u64,
        ts: r.get::<_, i64>(2)? as u64,
        nick: r.get(3)?,
        sender_key: r.get(4)?,
        cid: r.get(5)?,
        text: r.get(6)?,
        action: r.get(7)?,
        notice: r.get(8)?,
    })
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    ///
    /// `path` is a file path, or `:memory:` for a database that lives and dies with this store
    /// (for tests and throwaway servers). Fails with [`StoreError::Open`] saying what to do when
    /// the file cannot be created, is not a database, or was written by a newer natter.
    pub fn open(path: &str, durability: Durability) -> Result<Self, StoreError> {
        // "" is SQLite's private temporary database: like ":memory:", invisible to a second
        // connection.
        let memory = is_memory(path);
        let file_lock = if memory { None } else { Some(take_lock(path)?) };
        Self::open_locked(path, durability, file_lock, true)
    }

    /// Opens the database for an administration command (`natter user`) that may run while a
    /// server uses the same file. When no server holds the lock this is [`SqliteStore::open`]
    /// (the file is created and migrated as needed). When one does, the database is opened
    /// beside it without the lock: SQLite's WAL mode lets the two write in turn (each write
    /// is one short transaction), and the server reads accounts from the store at every
    /// login, so what the command changes takes effect at once. The schema is then left
    /// alone (migrating under a running server is not safe), so it must already be the one
    /// this natter writes.
    pub fn open_beside_server(path: &str) -> Result<Self, StoreError> {
        if is_memory(path) {
            return Err(StoreError::Open {
                path: path.to_owned(),
                reason: "an in-memory database lives inside one process; give the --db file the server uses"
                    .into(),
            });
        }
        match take_lock(path) {
            Ok(lock) => Self::open_locked(path, Durability::Process, Some(lock), true),
            Err(_) if std::path::Path::new(&format!("{path}.lock")).exists() => {
                Self::open_locked(path, Durability::Process, None, false)
            }
            Err(e) => Err(e),
        }
    }

    fn open_locked(
        path: &str,
        durability: Durability,
        file_lock: Option<std::fs::File>,
        migrate: bool,
    ) -> Result<Self, StoreError> {
        let memory = is_memory(path);
        // The mutexes above do the locking, so SQLite's own per-connection mutex is not needed.
        // No URI flag: a path is a path, so "file:...?mode=memory" cannot sneak in a database
        // that the read connections would not share.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_EXRESCODE;
        let mut writer = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, &e))?;
        writer.busy_timeout(BUSY_TIMEOUT).map_err(|e| open_error(path, &e))?;
        // Room for every statement the writer runs (inserts of several sizes, history reads
        // of an in-memory store) without evicting one another.
        writer.set_prepared_statement_cache_capacity(32);
        // The first statement that reads the file: a file that is not a database fails here.
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| open_error(path, &e))?;
        if !memory && !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path: path.to_owned(),
                reason: format!(
                    "could not switch the database to WAL mode (it stayed in {mode} mode); \
                     SQLite needs a local filesystem with shared memory support"
                ),
            });
        }
        writer
            .execute_batch(&format!(
                "PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
                durability.synchronous()
            ))
            .map_err(|e| open_error(path, &e))?;
        let from =
            if migrate { schema::migrate(&mut writer, path)? } else { schema::check_current(&writer, path)? };
        tracing::info!(
            path,
            ?durability,
            schema_version = schema::SCHEMA_VERSION,
            upgraded_from = from,
            "opened the SQLite message store"
        );
        let store = Self {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: (!memory).then(|| Mutex::new(Vec::new())),
            _lock: file_lock,
        };
        if !memory {
            // Open one reader now, so that a problem with read connections shows at startup.
            let reader = store.open_reader().map_err(|e| open_error(path, &e))?;
            lock(store.readers.as_ref().expect("file store has readers")).push(reader);
        }
        Ok(store)
    }

    fn open_reader(&self) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_EXRESCODE;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(conn)
    }

    /// Runs one statement on the writer (a short write of its own: an account, a certificate,
    /// a token); the rows it changed, or `what` failed.
    fn write_one(&self, sql: &str, params: impl rusqlite::Params, what: &str) -> Result<usize, StoreError> {
        lock(&self.writer)
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(params))
            .map_err(|e| io_error(what, &e))
    }

    /// Runs `f` on a read connection: one from the pool, a new one, or the writer for
    /// `:memory:`. A connection that failed is dropped rather than pooled.
    fn read<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        let Some(pool) = &self.readers else {
            return f(&mut lock(&self.writer));
        };
        let pooled = lock(pool).pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.open_reader()?,
        };
        let result = f(&mut conn);
        if result.is_ok() {
            let mut idle = lock(pool);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
        result
    }

    fn commit_in(conn: &mut Connection, batch: &[Write]) -> Result<(), StoreError> {
        let tx = conn.transaction().map_err(|e| io_error("cannot begin a write transaction", &e))?;
        let sql_err = |e: rusqlite::Error| io_error("cannot write a batch", &e);
        // Runs of messages go in multi-row inserts: one statement per row spends more on
        // running the statement than on the row itself. Writes keep their order.
        let mut i = 0;
        while i < batch.len() {
            match &batch[i] {
                Write::Message(_) => {
                    let run = batch[i..].iter().take_while(|w| matches!(w, Write::Message(_))).count();
                    let rows = INSERT_ROWS.iter().copied().find(|&n| n <= run).unwrap_or(1);
                    let mut insert = tx.prepare_cached(insert_messages_sql(rows)).map_err(sql_err)?;
                    let mut index = 1;
                    for write in &batch[i..i + rows] {
                        let Write::Message(m) = write else { unreachable!("a run of messages") };
                        let values: [&dyn ToSql; 9] = [
                            &m.room,
                            &to_i64(m.mid, "message id")?,
                            &to_i64(m.ts, "timestamp")?,
                            &m.nick,
                            &m.sender_key,
                            &m.cid,
                            &m.text,
                            &m.action,
                            &m.notice,
                        ];
                        for value in values {
                            insert.raw_bind_parameter(index, value).map_err(sql_err)?;
                            index += 1;
                        }
                    }
                    insert.raw_execute().map_err(sql_err)?;
                    i += rows;
                }
                Write::ForgetRoom(key) => {
                    tx.prepare_cached(
                        "DELETE FROM rooms WHERE key = ?1 AND NOT EXISTS (SELECT 1 FROM messages WHERE room = ?1)",
                    )
                    .and_then(|mut s| s.execute(params![key]))
                    .map_err(sql_err)?;
                    i += 1;
                }
                Write::Private(m) => {
                    let (low, high) = conversation(&m.from_key, &m.to_key);
                    let (mid, ts) = (to_i64(m.mid, "message id")?, to_i64(m.ts, "timestamp")?);
                    tx.prepare_cached(&format!(
                        "INSERT INTO private_messages (low, high, {PRIVATE_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                    ))
                    .and_then(|mut s| {
                        s.execute(params![
                            low,
                            high,
                            mid,
                            ts,
                            m.from_key,
                            m.nick,
                            m.to_key,
                            m.to_nick,
                            m.text,
                            m.action,
                            m.notice,
                            m.undelivered
                        ])
                    })
                    .map_err(sql_err)?;
                    i += 1;
                }
                // Only a shared store numbers messages (`commit_numbered`).
                Write::CountOnly(_) => i += 1,
                Write::Delivered { to_key, upto } => {
                    let upto = i64::try_from(*upto).unwrap_or(i64::MAX);
                    tx.prepare_cached(
                        "UPDATE private_messages SET undelivered = 0
                         WHERE to_key = ?1 AND mid <= ?2 AND undelivered = 1",
                    )
                    .and_then(|mut s| s.execute(params![to_key, upto]))
                    .map_err(sql_err)?;
                    i += 1;
                }
                Write::Room(r) => {
                    let created_ts = to_i64(r.created_ts, "room creation time")?;
                    let rules = crate::rules::encode(&r.rules);
                    tx.prepare_cached(
                        "INSERT INTO rooms (key, name, topic, topic_by, ephemeral, created_ts, rules)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                         ON CONFLICT (key) DO UPDATE SET
                            name = excluded.name, topic = excluded.topic,
                            topic_by = excluded.topic_by, ephemeral = excluded.ephemeral,
                            created_ts = excluded.created_ts, rules = excluded.rules",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            r.folded,
                            r.name,
                            r.topic,
                            r.topic_by,
                            r.ephemeral,
                            created_ts,
                            rules
                        ])
                    })
                    .map_err(sql_err)?;
                    i += 1;
                }
            }
        }
        tx.commit().map_err(|e| io_error("cannot commit a batch", &e))
    }
}

/// Rows per message insert statement, largest first: a run of messages is cut greedily into
/// these (at most 9 x 64 = 576 parameters, well under SQLite's limit of 32,766).
const INSERT_ROWS: [usize; 4] = [64, 16, 4, 1];

/// The insert of `rows` messages, `rows` one of [`INSERT_ROWS`].
fn insert_messages_sql(rows: usize) -> &'static str {
    static SQL: std::sync::LazyLock<Vec<(usize, String)>> = std::sync::LazyLock::new(|| {
        INSERT_ROWS
            .iter()
            .map(|&rows| {
                let values = vec!["(?,?,?,?,?,?,?,?,?)"; rows].join(",");
                let sql = format!("INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES {values}");
                (rows, sql)
            })
            .collect()
    });
    SQL.iter().find(|(n, _)| *n == rows).map(|(_, sql)| sql.as_str()).expect("one of INSERT_ROWS")
}

/// Every room with its last id and its latest messages: at most `recent`, and with
/// `within_ms` none older than that before the room's newest (the rows are read newest first
/// and the read stops at the first one outside, so a quiet room costs one row).
fn load_in(
    conn: &mut Connection,
    recent: usize,
    within_ms: Option<u64>,
    each: &mut dyn FnMut(LoadedRoom),
) -> rusqlite::Result<()> {
    // One read transaction, so that every room is seen at the same instant.
    let tx = conn.transaction()?;
    let records = tx
        .prepare_cached(
            "SELECT key, name, topic, topic_by, ephemeral, created_ts, rules FROM rooms ORDER BY key",
        )?
        .query_map([], |r| {
            Ok(RoomRecord {
                folded: r.get(0)?,
                name: r.get(1)?,
                topic: r.get(2)?,
                topic_by: r.get(3)?,
                ephemeral: r.get(4)?,
                created_ts: r.get::<_, i64>(5)? as u64,
                rules: crate::rules::decode(&r.get::<_, String>(6)?),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let recent = i64::try_from(recent).unwrap_or(i64::MAX);
    {
        let mut last = tx.prepare_cached("SELECT max(mid) FROM messages WHERE room = ?1")?;
        let mut latest = tx.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room = ?1 ORDER BY mid DESC LIMIT ?2"
        ))?;
        for record in records {
            let last_mid: Option<i64> = last.query_row([&record.folded], |r| r.get(0))?;
            let mut msgs = Vec::new();
            for row in latest.query_map(params![record.folded, recent], message_from_row)? {
                let m = row?;
                if let (Some(within), Some(newest)) = (within_ms, msgs.first().map(|n: &StoredMessage| n.ts))
                    && m.ts.saturating_add(within) < newest
                {
                    break;
                }
                msgs.push(m);
            }
            msgs.reverse();
            each(LoadedRoom { record, last_mid: last_mid.map_or(0, |m| m as u64), recent: msgs });
        }
    }
    tx.finish()
}

/// The inclusive lower bound for values above `after` (everything without one); `None` when
/// no stored value can be above it.
fn above(after: Option<u64>) -> Option<i64> {
    match after {
        None => Some(i64::MIN),
        Some(a) => i64::try_from(a).ok().and_then(|a| a.checked_add(1)),
    }
}

/// The inclusive upper bound for values below `before` (everything without one); `None` when
/// no value is below it.
fn below(before: Option<u64>) -> Option<i64> {
    match before {
        None => Some(i64::MAX),
        Some(0) => None,
        Some(b) => Some(i64::try_from(b - 1).unwrap_or(i64::MAX)),
    }
}

fn history_in(
    conn: &mut Connection,
    room: &str,
    query: HistoryQuery,
) -> rusqlite::Result<(Vec<StoredMessage>, bool)> {
    // Inclusive bounds in i64 (ids and times are stored as i64): a bound outside that range
    // either admits everything on its side or nothing at all.
    let (Some(low), Some(high), Some(low_ts), Some(high_ts)) =
        (above(query.after), below(query.before), above(query.after_ts), below(query.before_ts))
    else {
        return Ok((Vec::new(), false));
    };
    let forwards = query.forwards();
    let order = if forwards { "ASC" } else { "DESC" };
    // The time filter rides on the (room, mid) key: times grow with ids, so the scan from the
    // right end stops soon after the first matching row.
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages
         WHERE room = ?1 AND mid BETWEEN ?2 AND ?3 AND ts BETWEEN ?5 AND ?6
         ORDER BY mid {order} LIMIT ?4"
    );
    let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
    // One row past the page tells whether more remain.
    let mut page = conn
        .prepare_cached(&sql)?
        .query_map(params![room, low, high, i64::from(query.limit) + 1, low_ts, high_ts], message_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let more = page.len() > limit;
    page.truncate(limit);
    if !forwards {
        page.reverse();
    }
    Ok((page, more))
}

/// One page of the conversation between `a` and `b`: [`history_in`] over the
/// conversation's index.
fn private_history_in(
    conn: &mut Connection,
    a: &str,
    b: &str,
    query: HistoryQuery,
) -> rusqlite::Result<(Vec<StoredPrivate>, bool)> {
    let (Some(low), Some(high), Some(low_ts), Some(high_ts)) =
        (above(query.after), below(query.before), above(query.after_ts), below(query.before_ts))
    else {
        return Ok((Vec::new(), false));
    };
    let (first, second) = conversation(a, b);
    let forwards = query.forwards();
    let order = if forwards { "ASC" } else { "DESC" };
    let sql = format!(
        "SELECT {PRIVATE_COLUMNS} FROM private_messages
         WHERE low = ?1 AND high = ?2 AND mid BETWEEN ?3 AND ?4 AND ts BETWEEN ?6 AND ?7
         ORDER BY mid {order} LIMIT ?5"
    );
    let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
    let mut page = conn
        .prepare_cached(&sql)?
        .query_map(
            params![first, second, low, high, i64::from(query.limit) + 1, low_ts, high_ts],
            private_from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let more = page.len() > limit;
    page.truncate(limit);
    if !forwards {
        page.reverse();
    }
    Ok((page, more))
}

/// Deletes at most `max_rows` messages sent before `before_ts`: each room's oldest, then the
/// oldest private ones, each run stopping at the first message recent enough (times grow with
/// ids). Rooms are walked through the messages' key one `min(room)` at a time, so a room with
/// nothing old costs one index lookup and one row.
fn prune_in(conn: &mut Connection, before_ts: i64, max_rows: u32) -> rusqlite::Result<u32> {
    let tx = conn.transaction()?;
    let mut left = i64::from(max_rows);
    {
        let mut next_room = tx.prepare_cached("SELECT min(room) FROM messages WHERE room > ?1")?;
        let mut oldest =
            tx.prepare_cached("SELECT mid, ts FROM messages WHERE room = ?1 ORDER BY mid LIMIT ?2")?;
        let mut delete = tx.prepare_cached("DELETE FROM messages WHERE room = ?1 AND mid <= ?2")?;
        let mut after = String::new();
        while left > 0 {
            let Some(room): Option<String> = next_room.query_row([&after], |r| r.get(0))? else { break };
            let mut last_old = None;
            let mut rows = oldest.query(params![room, left])?;
            while let Some(row) = rows.next()? {
                let (mid, ts): (i64, i64) = (row.get(0)?, row.get(1)?);
                if ts >= before_ts {
                    break;
                }
                last_old = Some(mid);
            }
            drop(rows);
            if let Some(mid) = last_old {
                left -= delete.execute(params![room, mid])? as i64;
            }
            after = room;
        }
        if left > 0 {
            let mut last_old = None;
            let mut oldest =
                tx.prepare_cached("SELECT mid, ts FROM private_messages ORDER BY mid LIMIT ?1")?;
            let mut rows = oldest.query([left])?;
            while let Some(row) = rows.next()? {
                let (mid, ts): (i64, i64) = (row.get(0)?, row.get(1)?);
                if ts >= before_ts {
                    break;
                }
                last_old = Some(mid);
            }
            drop(rows);
            if let Some(mid) = last_old {
                left -=
                    tx.prepare_cached("DELETE FROM private_messages WHERE mid <= ?1")?.execute([mid])? as i64;
            }
        }
    }
    tx.commit()?;
    Ok(max_rows - left.max(0) as u32)
}

impl Store for SqliteStore {
    fn load_each(&self, recent: usize, room: &mut dyn FnMut(LoadedRoom)) -> Result<(), StoreError> {
        self.read(|conn| load_in(conn, recent, None, room)).map_err(|e| load_error(&self.path, &e))
    }

    fn load_each_within(
        &self,
        window: LoadWindow,
        room: &mut dyn FnMut(LoadedRoom),
    ) -> Result<(), StoreError> {
        self.read(|conn| load_in(conn, window.messages, Some(window.ms), room))
            .map_err(|e| load_error(&self.path, &e))
    }

    fn commit(&self, batch: &[Write]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        Self::commit_in(&mut lock(&self.writer), batch)
    }

    fn history(&self, room: &str, query: HistoryQuery) -> Result<(Vec<StoredMessage>, bool), StoreError> {
        self.read(|conn| history_in(conn, room, query)).map_err(|e| io_error("cannot read the history", &e))
    }

    fn last_private_mid(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            conn.prepare_cached("SELECT max(mid) FROM private_messages")?
                .query_row([], |r| r.get::<_, Option<i64>>(0))
        })
        .map(|mid| mid.map_or(0, |m| m as u64))
        .map_err(|e| io_error("cannot read the last private message id", &e))
    }

    fn mailboxes(&self) -> Result<Vec<MailboxSize>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT to_key, count(*), sum(length(CAST(text AS BLOB))) FROM private_messages
                 WHERE undelivered = 1 GROUP BY to_key ORDER BY to_key",
            )?
            .query_map([], |r| {
                Ok(MailboxSize {
                    to_key: r.get(0)?,
                    count: r.get::<_, i64>(1)? as u32,
                    bytes: r.get::<_, i64>(2)? as u64,
                })
            })?
            .collect()
        })
        .map_err(|e| io_error("cannot read the mailboxes", &e))
    }

    fn mailbox(&self, to_key: &str, limit: u32) -> Result<Vec<StoredPrivate>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {PRIVATE_COLUMNS} FROM private_messages
                 WHERE to_key = ?1 AND undelivered = 1 ORDER BY mid LIMIT ?2"
            ))?
            .query_map(params![to_key, limit], private_from_row)?
            .collect()
        })
        .map_err(|e| io_error("cannot read a mailbox", &e))
    }

    fn private_history(
        &self,
        a: &str,
        b: &str,
        query: HistoryQuery,
    ) -> Result<(Vec<StoredPrivate>, bool), StoreError> {
        self.read(|conn| private_history_in(conn, a, b, query))
            .map_err(|e| io_error("cannot read the private history", &e))
    }

    fn private_targets(
        &self,
        party: &str,
        after_ts: u64,
        before_ts: u64,
        limit: u32,
    ) -> Result<Vec<PrivateTarget>, StoreError> {
        let (Some(low_ts), Some(high_ts)) = (above(Some(after_ts)), below(Some(before_ts))) else {
            return Ok(Vec::new());
        };
        // SQLite gives the bare columns of the row with the max(mid) of each group: the
        // latest message of each conversation in the range.
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT CASE WHEN from_key = ?1 THEN to_key ELSE from_key END AS other,
                        CASE WHEN from_key = ?1 THEN to_nick ELSE nick END,
                        ts, max(mid)
                 FROM private_messages
                 WHERE (low = ?1 OR high = ?1) AND ts BETWEEN ?2 AND ?3
                 GROUP BY other ORDER BY ts, other LIMIT ?4",
            )?
            .query_map(params![party, low_ts, high_ts, limit], |r| {
                Ok(PrivateTarget { other_key: r.get(0)?, nick: r.get(1)?, ts: r.get::<_, i64>(2)? as u64 })
            })?
            .collect()
        })
        .map_err(|e| io_error("cannot read the private conversations", &e))
    }

    fn prune(&self, before_ts: u64, max_rows: u32) -> Result<u32, StoreError> {
        let before_ts = i64::try_from(before_ts).unwrap_or(i64::MAX);
        prune_in(&mut lock(&self.writer), before_ts, max_rows)
            .map_err(|e| io_error("cannot delete messages past the retention time", &e))
    }

    fn account(&self, folded: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE folded = ?1"))?
                .query_row([folded], account_from_row)
                .optional()
        })
        .map_err(|e| io_error("cannot read an account", &e))
    }

    fn accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY folded"))?
                .query_map([], account_from_row)?
                .collect()
        })
        .map_err(|e| io_error("cannot read the accounts", &e))
    }

    fn create_account(&self, account: &AccountRecord) -> Result<bool, StoreError> {
        let created_ts = to_i64(account.created_ts, "account creation time")?;
        let last = account.last_login_ts.map(|t| to_i64(t, "last login time")).transpose()?;
        let added = self.write_one(&format!(
                "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING"
            ), params![account.folded, account.name, account.hash, created_ts, last, account.scram], "cannot register an account")?;
        Ok(added == 1)
    }

    fn set_account_hash(&self, folded: &str, hash: &str, scram: Option<&str>) -> Result<bool, StoreError> {
        let changed = self.write_one(
            "UPDATE accounts SET hash = ?2, scram = ?3 WHERE folded = ?1",
            params![folded, hash, scram],
            "cannot change an account's password",
        )?;
        Ok(changed == 1)
    }

    fn set_account_scram(&self, folded: &str, scram: &str) -> Result<bool, StoreError> {
        let changed = self.write_one(
            "UPDATE accounts SET scram = ?2 WHERE folded = ?1",
            params![folded, scram],
            "cannot store an account's SCRAM credential",
        )?;
        Ok(changed == 1)
    }

    fn account_by_certificate(&self, fingerprint: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {} FROM account_certificates c JOIN accounts a ON a.folded = c.folded \
                 WHERE c.fingerprint = ?1",
                ACCOUNT_COLUMNS.split(", ").map(|c| format!("a.{c}")).collect::<Vec<_>>().join(", ")
            ))?
            .query_row([fingerprint], account_from_row)
            .optional()
        })
        .map_err(|e| io_error("cannot read a certificate's account", &e))
    }

    fn add_certificate(&self, folded: &str, fingerprint: &str, ts: u64) -> Result<bool, StoreError> {
        let ts = to_i64(ts, "certificate time")?;
        let added = self.write_one(
            "INSERT INTO account_certificates (fingerprint, folded, added_ts) \
                 SELECT ?2, folded, ?3 FROM accounts WHERE folded = ?1 ON CONFLICT DO NOTHING",
            params![folded, fingerprint, ts],
            "cannot register a certificate",
        )?;
        Ok(added == 1)
    }

    fn remove_certificate(&self, folded: &str, fingerprint: &str) -> Result<bool, StoreError> {
        let removed = self.write_one(
            "DELETE FROM account_certificates WHERE folded = ?1 AND fingerprint = ?2",
            params![folded, fingerprint],
            "cannot unregister a certificate",
        )?;
        Ok(removed == 1)
    }

    fn certificates(&self, folded: &str) -> Result<Vec<String>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT fingerprint FROM account_certificates WHERE folded = ?1 ORDER BY added_ts, fingerprint",
            )?
            .query_map([folded], |r| r.get(0))?
            .collect()
        })
        .map_err(|e| io_error("cannot read an account's certificates", &e))
    }

    fn touch_account(&self, folded: &str, ts: u64) -> Result<(), StoreError> {
        let ts = to_i64(ts, "last login time")?;
        self.write_one(
            "UPDATE accounts SET last_login_ts = ?2 WHERE folded = ?1",
            params![folded, ts],
            "cannot record a login",
        )?;
        Ok(())
    }

    fn delete_account(&self, folded: &str) -> Result<bool, StoreError> {
        let mut writer = lock(&self.writer);
        let delete = |conn: &mut Connection| -> rusqlite::Result<usize> {
            let tx = conn.transaction()?;
            tx.prepare_cached("DELETE FROM resume_tokens WHERE account = ?1")?.execute(params![folded])?;
            tx.execute("DELETE FROM account_certificates WHERE folded = ?1", params![folded])?;
            let deleted =
                tx.prepare_cached("DELETE FROM accounts WHERE folded = ?1")?.execute(params![folded])?;
            // Its private messages go with it: whoever registers the name next must not read
            // them. (A rare admin command: the scan of the `high` side is fine.)
            tx.prepare_cached("DELETE FROM private_messages WHERE low = ?1 OR high = ?1")?
                .execute(params![account_key(folded)])?;
            tx.commit()?;
            Ok(deleted)
        };
        let deleted = delete(&mut writer).map_err(|e| io_error("cannot delete an account", &e))?;
        Ok(deleted == 1)
    }

    fn add_resume_token(
        &self,
        token: &TokenRecord,
        keep: usize,
        expired_before: u64,
    ) -> Result<(), StoreError> {
        let created = to_i64(token.created_ts, "token creation time")?;
        let used = to_i64(token.last_used_ts, "token use time")?;
        let expired_before = to_i64(expired_before, "token expiry time")?;
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let mut writer = lock(&self.writer);
        (|| {
            let tx = writer.transaction()?;
            tx.prepare_cached("DELETE FROM resume_tokens WHERE last_used_ts < ?1")?.execute(params![expired_before])?;
            tx.prepare_cached(
                "INSERT INTO resume_tokens (digest, account, created_ts, last_used_ts) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![&token.digest.0[..], token.folded, created, used])?;
            // The newest `keep` stay (the one just added among them).
            tx.prepare_cached(
                "DELETE FROM resume_tokens WHERE account = ?1 AND digest NOT IN (
                    SELECT digest FROM resume_tokens WHERE account = ?1
                    ORDER BY last_used_ts DESC, digest = ?2 DESC LIMIT ?3)",
            )?
            .execute(params![token.folded, &token.digest.0[..], keep])?;
            tx.commit()
        })()
        .map_err(|e| io_error("cannot keep a resume token", &e))
    }

    fn use_resume_token(
        &self,
        digest: &TokenDigest,
        now: u64,
        expired_before: u64,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let now = to_i64(now, "token use time")?;
        let expired_before = to_i64(expired_before, "token expiry time")?;
        let mut writer = lock(&self.writer);
        (|| {
            let tx = writer.transaction()?;
            let found: Option<(String, i64)> = tx
                .prepare_cached("SELECT account, last_used_ts FROM resume_tokens WHERE digest = ?1")?
                .query_row(params![&digest.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let account = match found {
                None => None,
                Some((_, used)) if used < expired_before => {
                    tx.prepare_cached("DELETE FROM resume_tokens WHERE digest = ?1")?
                        .execute(params![&digest.0[..]])?;
                    None
                }
                Some((folded, _)) => {
                    tx.prepare_cached("UPDATE resume_tokens SET last_used_ts = ?2 WHERE digest = ?1")?
                        .execute(params![&digest.0[..], now])?;
                    tx.prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE folded = ?1"))?
                        .query_row([folded], account_from_row)
                        .optional()?
                }
            };
            tx.commit()?;
            Ok(account)
        })()
        .map_err(|e| io_error("cannot read a resume token", &e))
    }

    fn revoke_resume_token(&self, digest: &TokenDigest) -> Result<bool, StoreError> {
        let deleted = self.write_one(
            "DELETE FROM resume_tokens WHERE digest = ?1",
            params![&digest.0[..]],
            "cannot revoke a resume token",
        )?;
        Ok(deleted == 1)
    }

    fn revoke_resume_tokens(&self, folded: &str) -> Result<usize, StoreError> {
        self.write_one(
            "DELETE FROM resume_tokens WHERE account = ?1",
            params![folded],
            "cannot revoke an account's resume tokens",
        )
    }

    fn outside_writes(&self) -> Result<u64, StoreError> {
        // SQLite's data_version of a connection changes when another connection commits,
        // never for its own commits: the writer is the only connection of the server that
        // writes, so a change is another process's write.
        let version: i64 = lock(&self.writer)
            .pragma_query_value(None, "data_version", |r| r.get(0))
            .map_err(|e| io_error("cannot read the database's data version", &e))?;
        Ok(version as u64)
    }

    fn probe(&self) -> Result<(), StoreError> {
        // Writes the schema version back as it is: page 1 of the database goes through the
        // write-ahead log and its sync like any commit (the write lock taken, the disk written),
        // costs the same however big the database is, and changes nothing.
        let mut writer = lock(&self.writer);
        let tx = writer
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| io_error("cannot begin a write transaction", &e))?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| io_error("cannot read the schema version", &e))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(|e| io_error("cannot write to the database", &e))?;
        tx.commit().map_err(|e| io_error("cannot commit a write", &e))
    }

    fn close(&self) -> Result<(), StoreError> {
        // Fold the write-ahead log into the database so that the file alone is a complete copy
        // (for backups) and the next start has no log to replay; refresh the query planner's
        // statistics while at it.
        let writer = lock(&self.writer);
        writer
            .execute_batch("PRAGMA optimize;")
            .map_err(|e| io_error("cannot optimize the database at shutdown", &e))?;
        if self.readers.is_some() {
            // Idle readers hold no snapshot, so the checkpoint can complete.
            writer
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .optional()
                .map_err(|e| io_error("cannot checkpoint the database at shutdown", &e))?;
        }
        Ok(())
    }
}
