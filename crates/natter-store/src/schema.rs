//! The SQLite schema and its migrations.
//!
//! Each entry of [`MIGRATIONS`] takes the schema from version `i` to `i + 1`; the version a
//! database is at lives in `PRAGMA user_version` (0 for a new, empty file). Migrations are only
//! ever appended: a released entry is never edited, so that every database, however old, goes
//! through the same steps.

use crate::error::{describe, open_error};
use natter_core::StoreError;
use rusqlite::Connection;

/// The schema version this build writes: databases above it were written by a newer natter and
/// are refused rather than misread.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The migrations, in order.
const MIGRATIONS: &[&str] = &[
    // 1: rooms and messages.
    //
    // Both tables are WITHOUT ROWID: their primary keys are what every query looks up by, so
    // storing the rows in the key's b-tree saves a second index and a second lookup. Messages
    // deliberately have no foreign key to rooms: the store keeps whatever the core writes, in
    // whatever order (a message may be committed in the same batch as its room, or before it).
    "CREATE TABLE rooms (
        key TEXT NOT NULL PRIMARY KEY,
        name TEXT NOT NULL,
        topic TEXT NOT NULL,
        topic_by TEXT,
        ephemeral INTEGER NOT NULL CHECK (ephemeral IN (0, 1)),
        created_ts INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE messages (
        room TEXT NOT NULL,
        mid INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        nick TEXT NOT NULL,
        sender_key TEXT NOT NULL,
        cid TEXT,
        text TEXT NOT NULL,
        action INTEGER NOT NULL CHECK (action IN (0, 1)),
        PRIMARY KEY (room, mid)
    ) STRICT, WITHOUT ROWID;

    CREATE UNIQUE INDEX messages_dedupe ON messages (room, sender_key, cid) WHERE cid IS NOT NULL;",
    // 2: notices (messages that must never be answered automatically) keep their kind in
    // history. Existing rows are ordinary messages.
    "ALTER TABLE messages ADD COLUMN notice INTEGER NOT NULL DEFAULT 0 CHECK (notice IN (0, 1));",
    // 3: no index over every client id ever sent. It cost a random b-tree insert per message
    // (nearly half of each write, and more as history grows); resent ids are recognised by the
    // hub over a window of recent messages, which it reloads from the store at startup.
    "DROP INDEX messages_dedupe;",
    // 4: who runs a room (its operators' nicks), its modes and its bans, as one JSON object
    // (`rules.rs`): read and written whole with the room, never queried inside.
    "ALTER TABLE rooms ADD COLUMN rules TEXT NOT NULL DEFAULT '{}';",
];

/// Brings the database on `conn` up to [`SCHEMA_VERSION`], one transaction per migration, and
/// returns the version it was at.
pub(crate) fn migrate(conn: &mut Connection, path: &str) -> Result<u32, StoreError> {
    let found: i64 =
        conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| open_error(path, &e))?;
    // user_version is a signed 32-bit field: a negative one was not written by natter.
    let found = u32::try_from(found).map_err(|_| StoreError::Open {
        path: path.to_owned(),
        reason: format!("unknown schema version {found}: this file was not written by natter"),
    })?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::Open {
            path: path.to_owned(),
            reason: format!(
                "the database has schema version {found}, but this natter only knows versions up to \
                 {SCHEMA_VERSION}: it was written by a newer natter; run that version, or restore a \
                 backup made before the upgrade"
            ),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let to = i as u32 + 1;
        let run = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            // The header's user_version is written through the same transaction, so a crash
            // leaves either the old schema at the old version or the new one at the new.
            tx.pragma_update(None, "user_version", to)?;
            tx.commit()
        };
        run(conn).map_err(|e| StoreError::Open {
            path: path.to_owned(),
            reason: format!("migrating the schema from version {i} to {to} failed: {}", describe(&e)),
        })?;
        tracing::info!(path, version = to, "migrated the message store schema");
    }
    Ok(found)
}
