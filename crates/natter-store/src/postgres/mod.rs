//! The PostgreSQL [`Store`]: what several natter nodes share to be one chat server.
//!
//! Layout: [`pool`] holds the connections (and survives a restart of PostgreSQL), [`schema`]
//! the tables and their migrations, [`write`] the group commits and the numbering of messages,
//! [`rows`] the conversions; this file answers the [`Store`] methods.

mod pool;
mod rows;
mod schema;
mod write;

pub use pool::redact_url;
pub use schema::PG_SCHEMA_VERSION;

use natter_core::store::{
    AccountRecord, HistoryQuery, LoadWindow, LoadedRoom, MailboxSize, PrivateTarget, Store, StoreError,
    StoredMessage, StoredPrivate, TokenDigest, TokenRecord, Write, account_key, conversation,
};
use pool::{Pool, Sql, TxError};
use rows::{ACCOUNT_COLUMNS, MESSAGE_COLUMNS, PRIVATE_COLUMNS, ROOM_COLUMNS, above, below, to_i64};
use std::sync::atomic::{AtomicU64, Ordering};

/// True when `db` names a PostgreSQL database (`postgres://` or `postgresql://`) rather than
/// an SQLite file.
pub fn is_postgres_url(db: &str) -> bool {
    let lower = db.get(..13).unwrap_or(db).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// The store several nodes share: PostgreSQL decides what they must agree on (each room's
/// message ids, who holds a nickname, which nodes are alive), in the transactions that write.
pub struct PostgresStore {
    pool: Pool,
    /// The account writes this store made itself (see [`Store::outside_writes`]).
    own_account_writes: AtomicU64,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("database", &self.pool.target.url).finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`) and
    /// brings its schema up to date (once, however many nodes start at the same time). Fails
    /// with [`StoreError::Open`] saying what to do when the server cannot be reached, refuses
    /// the login, or holds a schema written by a newer natter. The password never appears in
    /// an error or a log line.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let pool = Pool::new(url)?;
        pool.first_connect()?;
        let from = schema::migrate(&pool)?;
        tracing::info!(
            database = %pool.target.url,
            schema_version = PG_SCHEMA_VERSION,
            upgraded_from = from,
            "opened the PostgreSQL store"
        );
        Ok(Self { pool, own_account_writes: AtomicU64::new(0) })
    }

    /// The value of the shared setting `name`, set to `make()` by whichever node asks first:
    /// what every node of a cluster must agree on (the cloak key) without the operator having
    /// to configure it.
    pub fn shared_setting(&self, name: &str, make: impl FnOnce() -> String) -> Result<String, StoreError> {
        let value = make();
        self.pool.write("cannot read a shared setting", |sql| {
            sql.execute(
                "INSERT INTO shared_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &value],
            )?;
            Ok(sql.query_one("SELECT value FROM shared_settings WHERE name = $1", &[&name])?.try_get(0)?)
        })
    }

    /// Runs a write of accounts or certificates, and notes it as this store's own (not an
    /// outside write) when it changed something.
    fn account_write<T>(
        &self,
        what: &str,
        changed: impl Fn(&T) -> bool,
        f: impl FnOnce(&mut Sql<'_>) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        let value = self.pool.write(what, |sql| {
            let value = f(sql)?;
            if changed(&value) {
                sql.execute("UPDATE account_writes SET writes = writes + 1 WHERE only_row", &[])?;
            }
            Ok(value)
        })?;
        if changed(&value) {
            self.own_account_writes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(value)
    }

    fn load(
        &self,
        recent: usize,
        within_ms: Option<u64>,
        each: &mut dyn FnMut(LoadedRoom),
    ) -> Result<(), StoreError> {
        let recent = i64::try_from(recent).unwrap_or(i64::MAX);
        // One snapshot, so that every room is seen at the same instant; each room is handed
        // out as soon as it is read, so that only one room's messages are held at a time (the
        // hub's callback only files them, well within the transaction's time limits).
        self.pool.write("cannot load the rooms", |sql| {
            sql.batch("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
            let records = sql
                .query(&format!("SELECT {ROOM_COLUMNS} FROM rooms ORDER BY key"), &[])?
                .iter()
                .map(rows::room)
                .collect::<Result<Vec<_>, _>>()?;
            for record in records {
                let last = sql.query_one(
                    "SELECT greatest((SELECT coalesce(max(mid), 0) FROM messages WHERE room = $1),
                                     (SELECT coalesce(max(last_mid), 0) FROM room_counters WHERE room = $1)),
                            (SELECT ts FROM messages WHERE room = $1 ORDER BY mid DESC LIMIT 1)",
                    &[&record.folded],
                )?;
                let last_mid = rows::number(&last, 0)?;
                // The window's edge in time, so that only the rows within it are read (the
                // loop below still stops at the first one outside, as the other stores do).
                let newest: Option<i64> = last.try_get(1)?;
                let since = match (within_ms, newest) {
                    (Some(within), Some(newest)) => {
                        newest.saturating_sub(i64::try_from(within).unwrap_or(i64::MAX))
                    }
                    _ => i64::MIN,
                };
                let mut msgs: Vec<StoredMessage> = Vec::new();
                for row in sql.query(
                    &format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room = $1 AND ts >= $3
                         ORDER BY mid DESC LIMIT $2"
                    ),
                    &[&record.folded, &recent, &since],
                )? {
                    let m = rows::message(&row)?;
                    if let (Some(within), Some(newest)) = (within_ms, msgs.first().map(|n| n.ts))
                        && m.ts.saturating_add(within) < newest
                    {
                        break;
                    }
                    msgs.push(m);
                }
                msgs.reverse();
                each(LoadedRoom { record, last_mid, recent: msgs });
            }
            Ok(())
        })
    }
}

/// One page of `query` from the rows `page_sql` selects (its `$1`, `$2` the conversation or
/// room, then id and time bounds and the limit), and whether more remain.
fn page<T>(
    sql: &mut Sql<'_>,
    page_sql: &str,
    keys: &[&(dyn postgres::types::ToSql + Sync)],
    query: HistoryQuery,
    row: fn(&postgres::Row) -> Result<T, postgres::Error>,
) -> Result<(Vec<T>, bool), postgres::Error> {
    let (Some(low), Some(high), Some(low_ts), Some(high_ts)) =
        (above(query.after), below(query.before), above(query.after_ts), below(query.before_ts))
    else {
        return Ok((Vec::new(), false));
    };
    let order = if query.forwards() { "ASC" } else { "DESC" };
    let limit = i64::from(query.limit) + 1;
    let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = keys.to_vec();
    params.extend_from_slice(&[&low, &high, &low_ts, &high_ts, &limit]);
    let n = keys.len();
    let text = format!(
        "{page_sql} AND mid BETWEEN ${} AND ${} AND ts BETWEEN ${} AND ${} ORDER BY mid {order} LIMIT ${}",
        n + 1,
        n + 2,
        n + 3,
        n + 4,
        n + 5
    );
    // One row past the page tells whether more remain.
    let mut found = sql.query(&text, &params)?.iter().map(row).collect::<Result<Vec<_>, _>>()?;
    let more = found.len() > query.limit as usize;
    found.truncate(query.limit as usize);
    if !query.forwards() {
        found.reverse();
    }
    Ok((found, more))
}

impl Store for PostgresStore {
    fn load_each(&self, recent: usize, room: &mut dyn FnMut(LoadedRoom)) -> Result<(), StoreError> {
        self.load(recent, None, room)
    }

    fn load_each_within(
        &self,
        window: LoadWindow,
        room: &mut dyn FnMut(LoadedRoom),
    ) -> Result<(), StoreError> {
        self.load(window.messages, Some(window.ms), room)
    }

    fn commit(&self, batch: &[Write]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.pool.write("cannot write a batch", |sql| write::apply(sql, batch))
    }

    fn commit_numbered(&self, batch: &[Write]) -> Result<Vec<u64>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        self.pool.write("cannot write a batch", |sql| {
            let (numbered, ids) = write::number(sql, batch)?;
            write::apply(sql, &numbered)?;
            Ok(ids)
        })
    }

    fn claim_nick(&self, folded: &str, node: &str, session: u64) -> Result<bool, StoreError> {
        // Bit for bit: a session id is any u64.
        let session = session as i64;
        self.pool.write("cannot claim a nickname", |sql| {
            // The primary key decides a race: the second insert waits for the first's
            // transaction and then does nothing; the holder is then read back.
            sql.execute(
                "INSERT INTO nick_claims (folded, node, session) VALUES ($1, $2, $3) ON CONFLICT (folded) DO NOTHING",
                &[&folded, &node, &session],
            )?;
            let holder = sql.query_opt("SELECT node, session FROM nick_claims WHERE folded = $1", &[&folded])?;
            Ok(match holder {
                Some(row) => row.try_get::<_, &str>(0)? == node && row.try_get::<_, i64>(1)? == session,
                None => false,
            })
        })
    }

    fn release_nick(&self, folded: &str, node: &str, session: u64) -> Result<(), StoreError> {
        let session = session as i64;
        self.pool.write("cannot release a nickname", |sql| {
            sql.execute(
                "DELETE FROM nick_claims WHERE folded = $1 AND node = $2 AND session = $3",
                &[&folded, &node, &session],
            )?;
            Ok(())
        })
    }

    fn heartbeat(&self, node: &str, now: u64) -> Result<(), StoreError> {
        let now = to_i64(now, "heartbeat time")?;
        self.pool.write("cannot note this node's heartbeat", |sql| {
            sql.execute(
                "INSERT INTO node_heartbeats (node, seen_ts) VALUES ($1, $2)
                 ON CONFLICT (node) DO UPDATE SET seen_ts = excluded.seen_ts",
                &[&node, &now],
            )?;
            Ok(())
        })
    }

    fn silent_nodes(&self, seen_before: u64) -> Result<Vec<String>, StoreError> {
        let seen_before = i64::try_from(seen_before).unwrap_or(i64::MAX);
        self.pool.read("cannot read the nodes' heartbeats", |sql| {
            sql.query("SELECT node FROM node_heartbeats WHERE seen_ts < $1 ORDER BY node", &[&seen_before])?
                .iter()
                .map(|r| r.try_get(0))
                .collect()
        })
    }

    fn forget_node(&self, node: &str) -> Result<(), StoreError> {
        self.pool.write("cannot forget a node", |sql| {
            sql.execute("DELETE FROM nick_claims WHERE node = $1", &[&node])?;
            sql.execute("DELETE FROM node_heartbeats WHERE node = $1", &[&node])?;
            Ok(())
        })
    }

    fn history(&self, room: &str, query: HistoryQuery) -> Result<(Vec<StoredMessage>, bool), StoreError> {
        let select = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE room = $1");
        self.pool.read("cannot read the history", |sql| page(sql, &select, &[&room], query, rows::message))
    }

    fn account(&self, folded: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.pool.read("cannot read an account", |sql| {
            sql.query_opt(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE folded = $1"), &[&folded])?
                .as_ref()
                .map(rows::account)
                .transpose()
        })
    }

    fn accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        self.pool.read("cannot read the accounts", |sql| {
            sql.query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY folded"), &[])?
                .iter()
                .map(rows::account)
                .collect()
        })
    }

    fn create_account(&self, account: &AccountRecord) -> Result<bool, StoreError> {
        let created_ts = to_i64(account.created_ts, "account creation time")?;
        let last = account.last_login_ts.map(|t| to_i64(t, "last login time")).transpose()?;
        self.account_write(
            "cannot register an account",
            |added| *added,
            |sql| {
                let added = sql.execute(
                    &format!(
                        "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT DO NOTHING"
                    ),
                    &[&account.folded, &account.name, &account.hash, &created_ts, &last, &account.scram],
                )?;
                Ok(added == 1)
            },
        )
    }

    fn set_account_hash(&self, folded: &str, hash: &str, scram: Option<&str>) -> Result<bool, StoreError> {
        self.account_write(
            "cannot change an account's password",
            |changed| *changed,
            |sql| {
                let changed = sql.execute(
                    "UPDATE accounts SET hash = $2, scram = $3 WHERE folded = $1",
                    &[&folded, &hash, &scram],
                )?;
                Ok(changed == 1)
            },
        )
    }

    fn set_account_scram(&self, folded: &str, scram: &str) -> Result<bool, StoreError> {
        self.account_write(
            "cannot store an account's SCRAM credential",
            |changed| *changed,
            |sql| {
                let changed =
                    sql.execute("UPDATE accounts SET scram = $2 WHERE folded = $1", &[&folded, &scram])?;
                Ok(changed == 1)
            },
        )
    }

    fn account_by_certificate(&self, fingerprint: &str) -> Result<Option<AccountRecord>, StoreError> {
        let columns = ACCOUNT_COLUMNS.split(", ").map(|c| format!("a.{c}")).collect::<Vec<_>>().join(", ");
        self.pool.read("cannot read a certificate's account", |sql| {
            sql.query_opt(
                &format!(
                    "SELECT {columns} FROM account_certificates c JOIN accounts a ON a.folded = c.folded
                     WHERE c.fingerprint = $1"
                ),
                &[&fingerprint],
            )?
            .as_ref()
            .map(rows::account)
            .transpose()
        })
    }

    fn add_certificate(&self, folded: &str, fingerprint: &str, ts: u64) -> Result<bool, StoreError> {
        let ts = to_i64(ts, "certificate time")?;
        self.account_write(
            "cannot register a certificate",
            |added| *added,
            |sql| {
                let added = sql.execute(
                    "INSERT INTO account_certificates (fingerprint, folded, added_ts)
                     SELECT $2, folded, $3 FROM accounts WHERE folded = $1 ON CONFLICT DO NOTHING",
                    &[&folded, &fingerprint, &ts],
                )?;
                Ok(added == 1)
            },
        )
    }

    fn remove_certificate(&self, folded: &str, fingerprint: &str) -> Result<bool, StoreError> {
        self.account_write(
            "cannot unregister a certificate",
            |removed| *removed,
            |sql| {
                let removed = sql.execute(
                    "DELETE FROM account_certificates WHERE folded = $1 AND fingerprint = $2",
                    &[&folded, &fingerprint],
                )?;
                Ok(removed == 1)
            },
        )
    }

    fn certificates(&self, folded: &str) -> Result<Vec<String>, StoreError> {
        self.pool.read("cannot read an account's certificates", |sql| {
            sql.query(
                "SELECT fingerprint FROM account_certificates WHERE folded = $1 ORDER BY added_ts, fingerprint",
                &[&folded],
            )?
            .iter()
            .map(|r| r.try_get(0))
            .collect()
        })
    }

    fn touch_account(&self, folded: &str, ts: u64) -> Result<(), StoreError> {
        let ts = to_i64(ts, "last login time")?;
        self.pool.write("cannot record a login", |sql| {
            sql.execute("UPDATE accounts SET last_login_ts = $2 WHERE folded = $1", &[&folded, &ts])?;
            Ok(())
        })
    }

    fn delete_account(&self, folded: &str) -> Result<bool, StoreError> {
        let key = account_key(folded);
        self.account_write(
            "cannot delete an account",
            |deleted| *deleted,
            |sql| {
                sql.execute("DELETE FROM resume_tokens WHERE account = $1", &[&folded])?;
                sql.execute("DELETE FROM account_certificates WHERE folded = $1", &[&folded])?;
                let deleted = sql.execute("DELETE FROM accounts WHERE folded = $1", &[&folded])?;
                // Its private messages go with it: whoever registers the name next must not
                // read them.
                sql.execute("DELETE FROM private_messages WHERE low = $1 OR high = $1", &[&key])?;
                Ok(deleted == 1)
            },
        )
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
        let digest = &token.digest.0[..];
        self.pool.write("cannot keep a resume token", |sql| {
            sql.execute("DELETE FROM resume_tokens WHERE last_used_ts < $1", &[&expired_before])?;
            sql.execute(
                "INSERT INTO resume_tokens (digest, account, created_ts, last_used_ts) VALUES ($1, $2, $3, $4)",
                &[&digest, &token.folded, &created, &used],
            )?;
            // The newest `keep` stay (the one just added among them).
            sql.execute(
                "DELETE FROM resume_tokens WHERE account = $1 AND digest NOT IN (
                    SELECT digest FROM resume_tokens WHERE account = $1
                    ORDER BY last_used_ts DESC, (digest = $2) DESC LIMIT $3)",
                &[&token.folded, &digest, &keep],
            )?;
            Ok(())
        })
    }

    fn use_resume_token(
        &self,
        digest: &TokenDigest,
        now: u64,
        expired_before: u64,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let now = to_i64(now, "token use time")?;
        let expired_before = to_i64(expired_before, "token expiry time")?;
        let digest = &digest.0[..];
        self.pool.write("cannot read a resume token", |sql| {
            let found = sql.query_opt(
                "SELECT account, last_used_ts FROM resume_tokens WHERE digest = $1 FOR UPDATE",
                &[&digest],
            )?;
            let Some(found) = found else { return Ok(None) };
            let (folded, used): (String, i64) = (found.try_get(0)?, found.try_get(1)?);
            if used < expired_before {
                sql.execute("DELETE FROM resume_tokens WHERE digest = $1", &[&digest])?;
                return Ok(None);
            }
            sql.execute("UPDATE resume_tokens SET last_used_ts = $2 WHERE digest = $1", &[&digest, &now])?;
            Ok(sql
                .query_opt(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE folded = $1"), &[&folded])?
                .as_ref()
                .map(rows::account)
                .transpose()?)
        })
    }

    fn revoke_resume_token(&self, digest: &TokenDigest) -> Result<bool, StoreError> {
        let digest = &digest.0[..];
        self.pool.write("cannot revoke a resume token", |sql| {
            Ok(sql.execute("DELETE FROM resume_tokens WHERE digest = $1", &[&digest])? == 1)
        })
    }

    fn revoke_resume_tokens(&self, folded: &str) -> Result<usize, StoreError> {
        self.pool.write("cannot revoke an account's resume tokens", |sql| {
            Ok(sql.execute("DELETE FROM resume_tokens WHERE account = $1", &[&folded])? as usize)
        })
    }

    fn outside_writes(&self) -> Result<u64, StoreError> {
        // Every account or certificate write bumps the shared counter; those of this store are
        // taken off, so that the number changes only for another node's or process's writes.
        let all = self.pool.read("cannot read the count of account writes", |sql| {
            rows::number(&sql.query_one("SELECT writes FROM account_writes WHERE only_row", &[])?, 0)
        })?;
        Ok(all.wrapping_sub(self.own_account_writes.load(Ordering::Relaxed)))
    }

    fn last_private_mid(&self) -> Result<u64, StoreError> {
        self.pool.read("cannot read the last private message id", |sql| {
            rows::number(
                &sql.query_one(
                    "SELECT greatest((SELECT coalesce(max(mid), 0) FROM private_messages),
                                     (SELECT last_mid FROM private_counter WHERE only_row))",
                    &[],
                )?,
                0,
            )
        })
    }

    fn mailboxes(&self) -> Result<Vec<MailboxSize>, StoreError> {
        self.pool.read("cannot read the mailboxes", |sql| {
            sql.query(
                "SELECT to_key, count(*), sum(octet_length(text))::int8 FROM private_messages
                 WHERE undelivered GROUP BY to_key ORDER BY to_key",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(MailboxSize {
                    to_key: r.try_get(0)?,
                    count: u32::try_from(r.try_get::<_, i64>(1)?).unwrap_or(u32::MAX),
                    bytes: rows::number(r, 2)?,
                })
            })
            .collect()
        })
    }

    fn mailbox(&self, to_key: &str, limit: u32) -> Result<Vec<StoredPrivate>, StoreError> {
        let limit = i64::from(limit);
        self.pool.read("cannot read a mailbox", |sql| {
            sql.query(
                &format!(
                    "SELECT {PRIVATE_COLUMNS} FROM private_messages
                     WHERE to_key = $1 AND undelivered ORDER BY mid LIMIT $2"
                ),
                &[&to_key, &limit],
            )?
            .iter()
            .map(rows::private)
            .collect()
        })
    }

    fn private_history(
        &self,
        a: &str,
        b: &str,
        query: HistoryQuery,
    ) -> Result<(Vec<StoredPrivate>, bool), StoreError> {
        let (first, second) = conversation(a, b);
        let select = format!("SELECT {PRIVATE_COLUMNS} FROM private_messages WHERE low = $1 AND high = $2");
        self.pool.read("cannot read the private history", |sql| {
            page(sql, &select, &[&first, &second], query, rows::private)
        })
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
        let limit = i64::from(limit);
        // The latest message of each conversation in the range (DISTINCT ON keeps the first row
        // of each `other`, the highest id), then the conversations by that message's time.
        self.pool.read("cannot read the private conversations", |sql| {
            sql.query(
                "SELECT other, nick, ts FROM (
                    SELECT DISTINCT ON (other) other, nick, ts FROM (
                        SELECT CASE WHEN from_key = $1 THEN to_key ELSE from_key END AS other,
                               CASE WHEN from_key = $1 THEN to_nick ELSE nick END AS nick,
                               ts, mid
                        FROM private_messages
                        WHERE (low = $1 OR high = $1) AND ts BETWEEN $2 AND $3
                    ) AS mine ORDER BY other, mid DESC
                 ) AS latest ORDER BY ts, other LIMIT $4",
                &[&party, &low_ts, &high_ts, &limit],
            )?
            .iter()
            .map(|r| {
                Ok(PrivateTarget { other_key: r.try_get(0)?, nick: r.try_get(1)?, ts: rows::number(r, 2)? })
            })
            .collect()
        })
    }

    fn prune(&self, before_ts: u64, max_rows: u32) -> Result<u32, StoreError> {
        let before_ts = i64::try_from(before_ts).unwrap_or(i64::MAX);
        self.pool.write("cannot delete messages past the retention time", |sql| {
            Ok(prune_in(sql, before_ts, max_rows)?)
        })
    }

    fn close(&self) -> Result<(), StoreError> {
        // Every commit is durable when it returns: nothing to flush, only connections to end.
        self.pool.drain();
        Ok(())
    }

    fn probe(&self) -> Result<(), StoreError> {
        // One row of its own, rewritten: a write that goes through the write-ahead log and its
        // flush like any commit, costs the same however big the database is, and takes no lock
        // a commit needs.
        self.pool.write("cannot write to the database", |sql| {
            sql.execute(
                "INSERT INTO shared_settings (name, value) VALUES ('probe', '') ON CONFLICT (name)
                 DO UPDATE SET value = excluded.value",
                &[],
            )?;
            Ok(())
        })
    }
}

/// Deletes at most `max_rows` messages sent before `before_ts`: each room's oldest, then the
/// oldest private ones, each run stopping at the first message recent enough (times grow with
/// ids). Rooms are walked through the messages' key one `min(room)` at a time, so a room with
/// nothing old costs one index lookup and one row.
fn prune_in(sql: &mut Sql<'_>, before_ts: i64, max_rows: u32) -> Result<u32, postgres::Error> {
    let mut left = i64::from(max_rows);
    let mut after = String::new();
    while left > 0 {
        let next: Option<String> =
            sql.query_one("SELECT min(room) FROM messages WHERE room > $1", &[&after])?.try_get(0)?;
        let Some(room) = next else { break };
        let mut last_old = None;
        for row in
            sql.query("SELECT mid, ts FROM messages WHERE room = $1 ORDER BY mid LIMIT $2", &[&room, &left])?
        {
            let (mid, ts): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
            if ts >= before_ts {
                break;
            }
            last_old = Some(mid);
        }
        if let Some(mid) = last_old {
            left -= sql.execute("DELETE FROM messages WHERE room = $1 AND mid <= $2", &[&room, &mid])? as i64;
        }
        after = room;
    }
    if left > 0 {
        let mut last_old = None;
        for row in sql.query("SELECT mid, ts FROM private_messages ORDER BY mid LIMIT $1", &[&left])? {
            let (mid, ts): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
            if ts >= before_ts {
                break;
            }
            last_old = Some(mid);
        }
        if let Some(mid) = last_old {
            left -= sql.execute("DELETE FROM private_messages WHERE mid <= $1", &[&mid])? as i64;
        }
    }
    Ok(max_rows - left.max(0) as u32)
}
