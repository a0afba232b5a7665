//! The PostgreSQL schema and its migrations.
//!
//! Each entry of [`MIGRATIONS`] takes the schema from version `i` to `i + 1`; the versions a
//! database went through are rows of `natter_schema`. Migrations are only ever appended, never
//! edited once released. They run at open in one transaction under an advisory lock, so that
//! several nodes starting at once against one database migrate it once: the first takes the
//! lock and migrates, the others wait for it and then find nothing left to do.
//!
//! Text a user chooses freely and that must be kept byte for byte whatever it holds (message
//! text, topics, client message ids: they may contain NUL, which PostgreSQL's `text` refuses,
//! and one refused value would fail the whole group commit it is in) is `bytea` holding UTF-8.
//! Names (nicks, rooms, accounts) are validated before they reach the store and stay `text`. Every text column that is
//! ordered or compared uses the "C" collation, so that the database orders names by their
//! bytes like the other stores (and like Rust's `str`), whatever the database's locale.

use super::pool::Pool;
use natter_core::StoreError;

/// The schema version this build writes: a database above it was migrated by a newer natter
/// and is refused rather than misread.
pub const PG_SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The advisory lock held while migrating: any fixed number other programs are unlikely to use
/// ("natter" in ASCII, and 1).
const MIGRATION_LOCK: i64 = 0x6e61_7474_6572_0001;

/// The migrations, in order.
const MIGRATIONS: &[&str] = &[
    // 1: everything SQLite's schema 8 holds, plus what a cluster shares: each room's id
    // counter and the private messages' (row-locked by the committing transaction, so that
    // ids are gap-free and agreed by every node), the claimed nicknames, the nodes'
    // heartbeats, a counter of account writes (`outside_writes`), and shared settings (the
    // cloak key every node must use).
    r#"
    CREATE TABLE rooms (
        key TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        name TEXT NOT NULL,
        topic BYTEA NOT NULL,
        topic_by TEXT,
        ephemeral BOOLEAN NOT NULL,
        created_ts BIGINT NOT NULL,
        rules TEXT NOT NULL DEFAULT '{}'
    );

    CREATE TABLE messages (
        room TEXT COLLATE "C" NOT NULL,
        mid BIGINT NOT NULL,
        ts BIGINT NOT NULL,
        nick TEXT NOT NULL,
        sender_key TEXT NOT NULL,
        cid BYTEA,
        text BYTEA NOT NULL,
        action BOOLEAN NOT NULL,
        notice BOOLEAN NOT NULL,
        PRIMARY KEY (room, mid)
    );

    CREATE TABLE room_counters (
        room TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        last_mid BIGINT NOT NULL
    );

    CREATE TABLE private_counter (
        only_row BOOLEAN NOT NULL PRIMARY KEY DEFAULT TRUE CHECK (only_row),
        last_mid BIGINT NOT NULL
    );
    INSERT INTO private_counter (last_mid) VALUES (0);

    CREATE TABLE accounts (
        folded TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        name TEXT NOT NULL,
        hash TEXT NOT NULL,
        created_ts BIGINT NOT NULL,
        last_login_ts BIGINT,
        scram TEXT
    );

    CREATE TABLE account_certificates (
        fingerprint TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        folded TEXT COLLATE "C" NOT NULL,
        added_ts BIGINT NOT NULL
    );
    CREATE INDEX account_certificates_by_account ON account_certificates (folded, added_ts);

    CREATE TABLE account_writes (
        only_row BOOLEAN NOT NULL PRIMARY KEY DEFAULT TRUE CHECK (only_row),
        writes BIGINT NOT NULL
    );
    INSERT INTO account_writes (writes) VALUES (0);

    CREATE TABLE private_messages (
        mid BIGINT NOT NULL PRIMARY KEY,
        low TEXT COLLATE "C" NOT NULL,
        high TEXT COLLATE "C" NOT NULL,
        ts BIGINT NOT NULL,
        from_key TEXT COLLATE "C" NOT NULL,
        nick TEXT NOT NULL,
        to_key TEXT COLLATE "C" NOT NULL,
        to_nick TEXT NOT NULL,
        text BYTEA NOT NULL,
        action BOOLEAN NOT NULL,
        notice BOOLEAN NOT NULL,
        undelivered BOOLEAN NOT NULL
    );
    CREATE INDEX private_conversations ON private_messages (low, high, mid);
    CREATE INDEX private_by_high ON private_messages (high, mid);
    CREATE INDEX private_mailboxes ON private_messages (to_key, mid) WHERE undelivered;

    CREATE TABLE resume_tokens (
        digest BYTEA NOT NULL PRIMARY KEY CHECK (octet_length(digest) = 32),
        account TEXT COLLATE "C" NOT NULL,
        created_ts BIGINT NOT NULL,
        last_used_ts BIGINT NOT NULL
    );
    CREATE INDEX resume_tokens_account ON resume_tokens (account, last_used_ts);
    CREATE INDEX resume_tokens_last_used ON resume_tokens (last_used_ts);

    CREATE TABLE nick_claims (
        folded TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        node TEXT COLLATE "C" NOT NULL,
        session BIGINT NOT NULL
    );
    CREATE INDEX nick_claims_by_node ON nick_claims (node);

    CREATE TABLE node_heartbeats (
        node TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        seen_ts BIGINT NOT NULL
    );

    CREATE TABLE shared_settings (
        name TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        value TEXT NOT NULL
    );
    "#,
];

/// Brings the database up to [`PG_SCHEMA_VERSION`] and returns the version it was at.
pub(crate) fn migrate(pool: &Pool) -> Result<u32, StoreError> {
    let refuse = |reason: String| StoreError::Open { path: pool.target.url.clone(), reason };
    let found = pool
        .write("cannot migrate the schema", |sql| {
            // A migration of a big database may take minutes (and the other nodes starting
            // meanwhile wait for its lock): the limits of ordinary statements do not apply.
            sql.batch("SET LOCAL lock_timeout = '10min'; SET LOCAL statement_timeout = '30min'")?;
            sql.query_one("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
            sql.batch(
                "CREATE TABLE IF NOT EXISTS natter_schema (
                    version INTEGER NOT NULL PRIMARY KEY,
                    applied TIMESTAMPTZ NOT NULL DEFAULT now()
                 )",
            )?;
            let found: i32 =
                sql.query_one("SELECT coalesce(max(version), 0) FROM natter_schema", &[])?.get(0);
            let found = u32::try_from(found).unwrap_or(u32::MAX);
            // A newer schema is left alone, and refused below.
            for (i, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
                sql.batch(migration)?;
                let to = i as i32 + 1;
                sql.execute("INSERT INTO natter_schema (version) VALUES ($1)", &[&to])?;
            }
            Ok(found)
        })
        .map_err(|e| match e {
            StoreError::Io(reason) if reason.contains("permission denied") => refuse(format!(
                "{reason}; natter makes its own tables: the role in the URL needs CREATE on the database's \
                 public schema (make it the database's owner)"
            )),
            StoreError::Io(reason) => refuse(reason),
            other => other,
        })?;
    if found > PG_SCHEMA_VERSION {
        return Err(refuse(format!(
            "the database has natter schema version {found}, but this natter only knows versions up to \
             {PG_SCHEMA_VERSION}: it was migrated by a newer natter; run that version (on every node)"
        )));
    }
    for to in found + 1..=PG_SCHEMA_VERSION {
        tracing::info!(database = %pool.target.url, version = to, "migrated the PostgreSQL schema");
    }
    Ok(found)
}
