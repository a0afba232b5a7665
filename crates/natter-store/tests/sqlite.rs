//! What only the SQLite store has: files, schema versions, and concurrent connections.

use natter_core::store::{HistoryQuery, RoomRecord, Store, StoreError, StoredMessage, Write};
use natter_store::{Durability, SCHEMA_VERSION, SqliteStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

fn room(key: &str) -> RoomRecord {
    RoomRecord {
        folded: key.to_owned(),
        name: key.to_owned(),
        topic: String::new(),
        topic_by: None,
        ephemeral: false,
        created_ts: 1,
        rules: Default::default(),
    }
}

fn msg(room: &str, mid: u64, cid: Option<&str>) -> StoredMessage {
    StoredMessage {
        room: room.to_owned(),
        mid,
        ts: mid.wrapping_add(1000),
        nick: "Alice".into(),
        sender_key: "alice".into(),
        cid: cid.map(str::to_owned),
        text: format!("hello {mid}"),
        action: false,
        notice: false,
    }
}

fn latest(store: &dyn Store, room: &str, limit: u32) -> Vec<u64> {
    store
        .history(room, HistoryQuery { limit, ..Default::default() })
        .unwrap()
        .0
        .iter()
        .map(|m| m.mid)
        .collect()
}

fn open(path: &std::path::Path) -> Result<SqliteStore, StoreError> {
    SqliteStore::open(path.to_str().unwrap(), Durability::Process)
}

fn open_err(path: &std::path::Path) -> String {
    match open(path) {
        Err(e @ StoreError::Open { .. }) => e.to_string(),
        Err(e) => panic!("expected an Open error, got {e:?}"),
        Ok(_) => panic!("expected an Open error, got a store"),
    }
}

fn user_version(path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap()
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    {
        let store = open(&path).unwrap();
        let batch: Vec<Write> = std::iter::once(Write::Room(room("#r")))
            .chain((1..=5).map(|mid| Write::Message(msg("#r", mid, Some(&format!("c{mid}"))))))
            .collect();
        store.commit(&batch).unwrap();
        // No close(): an acknowledged commit must not depend on a clean shutdown.
    }
    {
        let store = open(&path).unwrap();
        let loaded = store.load(3).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].last_mid, 5);
        assert_eq!(loaded[0].recent.iter().map(|m| m.mid).collect::<Vec<_>>(), [3, 4, 5]);
        // The client ids come back too: the hub rebuilds its dedupe window from them.
        assert_eq!(loaded[0].recent[0].cid.as_deref(), Some("c3"));
        store.commit(&[Write::Message(msg("#r", 6, None))]).unwrap();
        store.close().unwrap();
    }
    let store = SqliteStore::open(path.to_str().unwrap(), Durability::PowerLoss).unwrap();
    assert_eq!(latest(&store, "#r", 100), [1, 2, 3, 4, 5, 6]);
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
}

#[test]
fn memory_databases_are_private_to_each_store() {
    let a = SqliteStore::open(":memory:", Durability::Process).unwrap();
    let b = SqliteStore::open(":memory:", Durability::Process).unwrap();
    a.commit(&[Write::Room(room("#r")), Write::Message(msg("#r", 1, None))]).unwrap();
    assert_eq!(latest(&a, "#r", 10), [1]);
    assert!(latest(&b, "#r", 10).is_empty());
    assert!(b.load(1).unwrap().is_empty());
    a.close().unwrap();
    // "" is SQLite's private temporary database: it too must serve history from its one connection.
    let temp = SqliteStore::open("", Durability::Process).unwrap();
    temp.commit(&[Write::Room(room("#r")), Write::Message(msg("#r", 1, None))]).unwrap();
    assert_eq!(latest(&temp, "#r", 10), [1]);
}

#[test]
fn migrates_an_empty_file_and_a_fresh_path() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let store = open(&empty).unwrap();
    store.commit(&[Write::Room(room("#r"))]).unwrap();
    drop(store);
    assert_eq!(user_version(&empty), i64::from(SCHEMA_VERSION));

    let fresh = dir.path().join("fresh.db");
    drop(open(&fresh).unwrap());
    assert_eq!(user_version(&fresh), i64::from(SCHEMA_VERSION));
    // The journal is WAL, so readers never wait for the writer.
    let conn = rusqlite::Connection::open(&fresh).unwrap();
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn refuses_a_database_from_a_newer_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    drop(open(&path).unwrap());
    let newer = i64::from(SCHEMA_VERSION) + 1;
    rusqlite::Connection::open(&path).unwrap().pragma_update(None, "user_version", newer).unwrap();
    let err = open_err(&path);
    assert!(err.contains(&format!("schema version {newer}")), "{err}");
    assert!(err.contains(&format!("up to {SCHEMA_VERSION}")), "{err}");
    assert!(err.contains("newer natter"), "{err}");
    // Refusing changed nothing.
    assert_eq!(user_version(&path), newer);
}

#[test]
fn a_file_that_is_not_a_database_is_a_clear_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not.db");
    std::fs::write(&path, "this is a text file, not a database\n".repeat(200)).unwrap();
    let err = open_err(&path);
    assert!(err.contains("not an SQLite database"), "{err}");
    assert!(err.contains(path.to_str().unwrap()), "{err}");
}

#[test]
fn a_corrupt_database_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.db");
    {
        let store = open(&path).unwrap();
        let batch: Vec<Write> = std::iter::once(Write::Room(room("#r")))
            .chain((1..=2000).map(|mid| Write::Message(msg("#r", mid, None))))
            .collect();
        store.commit(&batch).unwrap();
        store.close().unwrap();
    }
    // Keep the header, scribble over every page after the first.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 8192, "the test needs a database of several pages");
    for (i, b) in bytes.iter_mut().enumerate().skip(4096) {
        *b = (i * 31 % 251) as u8;
    }
    std::fs::write(&path, bytes).unwrap();
    // Either opening or reading fails; neither panics.
    match open(&path) {
        Err(e) => assert!(matches!(e, StoreError::Open { .. }), "{e:?}"),
        Ok(store) => {
            let read = store
                .load(10)
                .and_then(|_| store.history("#r", HistoryQuery { limit: 10, ..Default::default() }));
            assert!(read.is_err(), "reading a scribbled database succeeded");
        }
    }
}

#[test]
fn an_unwritable_location_is_a_clear_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no").join("such").join("dir").join("n.db");
    let err = open_err(&path);
    assert!(err.contains("directory exists"), "{err}");
}

#[test]
fn ids_beyond_i64_are_refused_and_roll_back_the_batch() {
    let store = SqliteStore::open(":memory:", Durability::Process).unwrap();
    let err = store
        .commit(&[
            Write::Room(room("#r")),
            Write::Message(msg("#r", 1, None)),
            Write::Message(msg("#r", u64::MAX, None)),
        ])
        .unwrap_err();
    assert!(matches!(err, StoreError::Io(_)), "{err:?}");
    // One transaction per batch: nothing of it was stored.
    assert!(store.load(10).unwrap().is_empty());
    assert!(latest(&store, "#r", 10).is_empty());
    // And the store still works.
    store.commit(&[Write::Room(room("#r")), Write::Message(msg("#r", 1, None))]).unwrap();
    assert_eq!(latest(&store, "#r", 10), [1]);
}

#[test]
fn a_reused_message_id_fails_the_whole_batch() {
    let store = SqliteStore::open(":memory:", Durability::Process).unwrap();
    store.commit(&[Write::Message(msg("#r", 1, None))]).unwrap();
    let err =
        store.commit(&[Write::Message(msg("#r", 2, None)), Write::Message(msg("#r", 1, None))]).unwrap_err();
    assert!(matches!(err, StoreError::Io(_)), "{err:?}");
    assert_eq!(latest(&store, "#r", 10), [1]);
}

#[test]
fn history_reads_run_during_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    let store = Arc::new(open(&path).unwrap());
    store.commit(&[Write::Room(room("#r")), Write::Message(msg("#r", 1, None))]).unwrap();
    let committing = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let reads_during_commit = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (store, committing, done, during) =
                (store.clone(), committing.clone(), done.clone(), reads_during_commit.clone());
            std::thread::spawn(move || {
                let mut last_seen = 0;
                while !done.load(Ordering::Acquire) {
                    let was_committing = committing.load(Ordering::Acquire);
                    let (page, _) =
                        store.history("#r", HistoryQuery { limit: 50, ..Default::default() }).unwrap();
                    // Every page is a consistent snapshot: contiguous ids ending at the newest.
                    let ids: Vec<u64> = page.iter().map(|m| m.mid).collect();
                    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
                    let newest = *ids.last().unwrap();
                    assert!(newest >= last_seen, "went back from {last_seen} to {newest}");
                    last_seen = newest;
                    if was_committing && committing.load(Ordering::Acquire) {
                        during.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let mut next = 2;
    let mut long_commit = std::time::Duration::ZERO;
    for size in [10, 1000, 10, 50_000, 10, 1000] {
        let batch: Vec<Write> = (next..next + size).map(|mid| Write::Message(msg("#r", mid, None))).collect();
        next += size;
        committing.store(true, Ordering::Release);
        let started = Instant::now();
        store.commit(&batch).unwrap();
        long_commit = long_commit.max(started.elapsed());
        committing.store(false, Ordering::Release);
    }
    done.store(true, Ordering::Release);
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(store.load(0).unwrap()[0].last_mid, next - 1);
    eprintln!(
        "longest commit {long_commit:?}, reads during commits: {}",
        reads_during_commit.load(Ordering::Relaxed)
    );
    // Reads went on while the writer held its transaction (only checkable when the commit took
    // long enough for a read to fit in it).
    if long_commit > std::time::Duration::from_millis(100) {
        assert!(
            reads_during_commit.load(Ordering::Relaxed) > 0,
            "no read finished during a {long_commit:?} commit"
        );
    }
    store.close().unwrap();
}

#[test]
fn many_threads_share_one_memory_store() {
    let store = Arc::new(SqliteStore::open(":memory:", Durability::Process).unwrap());
    store.commit(&[Write::Room(room("#r"))]).unwrap();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for mid in 1..=200 {
                store.commit(&[Write::Message(msg("#r", mid, None))]).unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let ids = latest(store.as_ref(), "#r", 5);
                    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
                }
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(latest(store.as_ref(), "#r", 3), [198, 199, 200]);
}

/// The child half of `acknowledged_commits_survive_a_crash`: commits, then dies without running
/// any destructor or closing anything, as a `kill -9` would leave it.
fn crash_after_commits(path: &str) -> ! {
    let store = SqliteStore::open(path, Durability::Process).unwrap();
    store.commit(&[Write::Room(room("#r"))]).unwrap();
    for mid in 1..=100 {
        store.commit(&[Write::Message(msg("#r", mid, Some(&format!("c{mid}"))))]).unwrap();
    }
    std::process::abort();
}

#[test]
fn acknowledged_commits_survive_a_crash() {
    const CHILD: &str = "NATTER_STORE_TEST_CRASH_DB";
    if let Ok(path) = std::env::var(CHILD) {
        crash_after_commits(&path);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "acknowledged_commits_survive_a_crash", "--nocapture", "--test-threads=1"])
        .env(CHILD, &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child was meant to die");
    // The log was never checkpointed nor closed: the commits are in the WAL alone.
    assert!(dir.path().join("n.db-wal").exists());
    let store = open(&path).unwrap();
    assert_eq!(store.load(0).unwrap()[0].last_mid, 100);
    assert_eq!(latest(&store, "#r", 1000), (1..=100).collect::<Vec<_>>());
}

fn an_account(folded: &str) -> natter_core::store::AccountRecord {
    natter_core::store::AccountRecord {
        folded: folded.into(),
        name: folded.into(),
        hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        created_ts: 1,
        last_login_ts: None,
        scram: None,
    }
}

#[test]
fn an_admin_tool_writes_accounts_beside_a_running_server_and_the_server_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("natter.db");
    let server = open(&path).unwrap();
    // The server holds the lock: a second server is refused, the admin tool is not.
    assert!(open_err(&path).contains("another natter server"));
    let admin = SqliteStore::open_beside_server(path.to_str().unwrap()).unwrap();
    assert!(admin.create_account(&an_account("bob")).unwrap());
    assert_eq!(server.account("bob").unwrap().map(|a| a.name), Some("bob".to_string()));
    // Both write in turn.
    server.commit(&[Write::Room(room("#a")), Write::Message(msg("#a", 1, None))]).unwrap();
    assert!(admin.set_account_hash("bob", "$argon2id$changed", None).unwrap());
    assert_eq!(server.account("bob").unwrap().unwrap().hash, "$argon2id$changed");
    assert!(admin.delete_account("bob").unwrap());
    assert_eq!(server.account("bob").unwrap(), None);
    assert_eq!(latest(&server, "#a", 10), [1]);
}

#[test]
fn an_admin_tool_without_a_server_creates_and_migrates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    let admin = SqliteStore::open_beside_server(path.to_str().unwrap()).unwrap();
    assert!(admin.create_account(&an_account("bob")).unwrap());
    drop(admin);
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    // It held the lock while it ran, and let go: the server starts and sees the account.
    let server = open(&path).unwrap();
    assert!(server.account("bob").unwrap().is_some());
}

#[test]
fn an_admin_tool_beside_a_server_of_another_schema_version_refuses_to_touch_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("natter.db");
    let _server = open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION - 1).unwrap();
    let err = SqliteStore::open_beside_server(path.to_str().unwrap()).unwrap_err().to_string();
    assert!(err.contains("same natter version as the server"), "{err}");
    assert!(SqliteStore::open_beside_server(":memory:").unwrap_err().to_string().contains("--db file"));
}

#[test]
fn outside_writes_change_only_when_another_process_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("natter.db");
    let server = open(&path).unwrap();
    let start = server.outside_writes().unwrap();
    // The server's own writes do not count.
    server.commit(&[Write::Room(room("#a")), Write::Message(msg("#a", 1, None))]).unwrap();
    assert!(server.create_account(&an_account("own")).unwrap());
    assert_eq!(server.outside_writes().unwrap(), start);
    let admin = SqliteStore::open_beside_server(path.to_str().unwrap()).unwrap();
    assert!(admin.create_account(&an_account("bob")).unwrap());
    let after = server.outside_writes().unwrap();
    assert_ne!(after, start);
    assert_eq!(server.outside_writes().unwrap(), after, "stable until the next outside write");
}
