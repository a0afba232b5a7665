//! The SQLite schema and its migrations.
//!
//! Each entry of [`MIGRATIONS`] takes the schema from version `i` to `i + 1`; the version a
//! database is at lives in `PRAGMA user_version` (0 for a new, empty file). Migrations are only
//! ever appended: a released entry is never edited, so that every database, however old, goes
//! through the same steps.

use crate::error::{MOVE_ASIDE, describe, open_error, unreadable};
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
    // 5: registered accounts (`docs/accounts.md`), keyed by the folded name. The password is
    // kept only as its argon2id PHC string (salt and parameters inside). Written by the server
    // (register, passwd, last login) and by `natter user` while the server runs.
    "CREATE TABLE accounts (
        folded TEXT NOT NULL PRIMARY KEY,
        name TEXT NOT NULL,
        hash TEXT NOT NULL,
        created_ts INTEGER NOT NULL,
        last_login_ts INTEGER
    ) STRICT, WITHOUT ROWID;",
    // 6: SASL. Each account's SCRAM-SHA-256 credential (RFC 5803 form; NULL for accounts made
    // before, until their next password login), and the TLS client certificates (SHA-256
    // fingerprints) registered to accounts for SASL EXTERNAL.
    "ALTER TABLE accounts ADD COLUMN scram TEXT;
     CREATE TABLE account_certificates (
        fingerprint TEXT NOT NULL PRIMARY KEY,
        folded TEXT NOT NULL,
        added_ts INTEGER NOT NULL
     ) STRICT, WITHOUT ROWID;
     CREATE INDEX account_certificates_by_account ON account_certificates (folded, added_ts);",
    // 7: private messages (`docs/accounts.md`): those of conversations with at least one
    // party logged in to an account, and those waiting in an account's mailbox. Parties are
    // party keys (`~account` or a guest's folded nick); `low`/`high` are the conversation's
    // two keys in order. The id is one server-wide sequence (the rowid), so retention deletes
    // from its start; a conversation pages through its own index, and a party's
    // conversations are found by either key (`CHATHISTORY TARGETS`); the mailbox index holds
    // only the undelivered rows.
    "CREATE TABLE private_messages (
        mid INTEGER PRIMARY KEY,
        low TEXT NOT NULL,
        high TEXT NOT NULL,
        ts INTEGER NOT NULL,
        from_key TEXT NOT NULL,
        nick TEXT NOT NULL,
        to_key TEXT NOT NULL,
        to_nick TEXT NOT NULL,
        text TEXT NOT NULL,
        action INTEGER NOT NULL CHECK (action IN (0, 1)),
        notice INTEGER NOT NULL CHECK (notice IN (0, 1)),
        undelivered INTEGER NOT NULL CHECK (undelivered IN (0, 1))
    ) STRICT;

    CREATE INDEX private_conversations ON private_messages (low, high, mid);
    CREATE INDEX private_by_high ON private_messages (high, mid);
    CREATE INDEX private_mailboxes ON private_messages (to_key, mid) WHERE undelivered = 1;",
    // 8: resume tokens (`natter_core::resume`), keyed by the token's SHA-256 digest: the token
    // itself is never stored. A login with a token looks it up by digest; the index by account
    // serves revoking an account's tokens and keeping at most ten of them, the index by last
    // use serves dropping those unused for 90 days. Deleted with their account.
    "CREATE TABLE resume_tokens (
        digest BLOB NOT NULL PRIMARY KEY CHECK (length(digest) = 32),
        account TEXT NOT NULL,
        created_ts INTEGER NOT NULL,
        last_used_ts INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;

    CREATE INDEX resume_tokens_account ON resume_tokens (account, last_used_ts);
    CREATE INDEX resume_tokens_last_used ON resume_tokens (last_used_ts);",
];

/// The tables every natter database has from schema version 1 on.
const NATTER_TABLES: [&str; 2] = ["messages", "rooms"];

/// Refuses a database natter did not make: at version 0 (never migrated) it must be empty, or
/// natter would add its tables to another program's file; from version 1 on it must have
/// natter's tables.
fn check_owner(conn: &Connection, path: &str, found: u32) -> Result<(), StoreError> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
        .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| open_error(path, &e))?;
    let listed = || {
        // A few names, quoted (another program's names could hold anything).
        let mut shown: Vec<String> = names.iter().take(4).map(|n| format!("{:?}", clip(n))).collect();
        if names.len() > 4 {
            shown.push(format!("and {} more", names.len() - 4));
        }
        shown.join(", ")
    };
    let foreign = if found == 0 {
        !names.is_empty()
    } else {
        !NATTER_TABLES.iter().all(|t| names.iter().any(|n| n == t))
    };
    if !foreign {
        return Ok(());
    }
    let reason = if found == 0 {
        format!(
            "this is another program's SQLite database (it holds {}), not natter's: {MOVE_ASIDE}",
            listed()
        )
    } else if names.is_empty() {
        format!(
            "the database says natter schema version {found} but has no tables: it is damaged; {MOVE_ASIDE}"
        )
    } else {
        format!(
            "the database says natter schema version {found} but lacks natter's tables (it holds {}): it is \
             damaged or another program's; {MOVE_ASIDE}",
            listed()
        )
    };
    Err(StoreError::Open { path: path.to_owned(), reason })
}

/// At most 40 characters of a name, for a message.
fn clip(name: &str) -> String {
    match name.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &name[..i]),
        None => name.to_string(),
    }
}

/// Checks that the database on `conn`, which a running server holds, is at [`SCHEMA_VERSION`]:
/// a tool working beside that server must not migrate it, nor misread an older or newer schema.
pub(crate) fn check_current(conn: &Connection, path: &str) -> Result<u32, StoreError> {
    let found: i64 =
        conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| open_error(path, &e))?;
    if found == i64::from(SCHEMA_VERSION) {
        return Ok(SCHEMA_VERSION);
    }
    Err(StoreError::Open {
        path: path.to_owned(),
        reason: format!(
            "the server using this database runs schema version {found}, and this natter writes version \
             {SCHEMA_VERSION}: run this command with the same natter version as the server, or stop the \
             server first"
        ),
    })
}

/// Brings the database on `conn` up to [`SCHEMA_VERSION`], one transaction per migration, and
/// returns the version it was at.
pub(crate) fn migrate(conn: &mut Connection, path: &str) -> Result<u32, StoreError> {
    let found: i64 =
        conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| open_error(path, &e))?;
    // user_version is a signed 32-bit field: a negative one was not written by natter.
    let found = u32::try_from(found).map_err(|_| StoreError::Open {
        path: path.to_owned(),
        reason: format!(
            "this is another program's SQLite database (schema version {found}, which natter never \
             writes): {MOVE_ASIDE}"
        ),
    })?;
    check_owner(conn, path, found)?;
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
        run(conn).map_err(|e| match unreadable(&e) {
            true => open_error(path, &e),
            false => StoreError::Open {
                path: path.to_owned(),
                reason: format!("migrating the schema from version {i} to {to} failed: {}", describe(&e)),
            },
        })?;
        tracing::info!(path, version = to, "migrated the message store schema");
    }
    Ok(found)
}
