//! What only the PostgreSQL store does: survive a restart of the database server, migrate once
//! when several nodes start at once, refuse a newer schema, say what is wrong without showing
//! the password, notice other nodes' account writes. (What every store does is in
//! `conformance.rs`.)

use natter_core::store::{AccountRecord, HistoryQuery, RoomRecord, Store, StoreError, StoredMessage, Write};
use natter_store::testing::{self, Postgres};
use natter_store::{PG_SCHEMA_VERSION, PostgresStore};
use std::sync::{Arc, Barrier};

const PASSWORD: &str = "s3cret-pässword";

fn room(key: &str) -> RoomRecord {
    RoomRecord {
        folded: key.into(),
        name: key.into(),
        topic: String::new(),
        topic_by: None,
        ephemeral: false,
        created_ts: 1,
        rules: Default::default(),
    }
}

fn msg(room: &str, mid: u64, text: &str) -> StoredMessage {
    StoredMessage {
        room: room.into(),
        mid,
        ts: 1_700_000_000_000 + mid % 1_000_000,
        nick: "Ann".into(),
        sender_key: "ann".into(),
        cid: None,
        text: text.into(),
        action: false,
        notice: false,
    }
}

fn texts(store: &dyn Store, room: &str) -> Vec<(u64, String)> {
    let query = HistoryQuery { limit: 100, ..Default::default() };
    store.history(room, query).unwrap().0.into_iter().map(|m| (m.mid, m.text)).collect()
}

/// The URL of a new database of `pg`, with a password in it (the test server trusts loopback
/// logins, so it is never checked: it is there to be kept out of every message).
fn url_with_password(pg: &Postgres) -> String {
    pg.database().replacen("natter@", &format!("natter:{}@", PASSWORD), 1)
}

#[test]
fn a_restart_of_postgresql_fails_the_writes_during_it_and_loses_nothing_committed() {
    if !testing::available() {
        return;
    }
    // A server of its own: this test stops it.
    let mut pg = Postgres::start();
    let url = url_with_password(&pg);
    let store = PostgresStore::open(&url).unwrap();
    store.commit(&[Write::Room(room("#r")), Write::Message(msg("#r", 1, "before"))]).unwrap();
    assert_eq!(store.commit_numbered(&[Write::Message(msg("#r", 0, "numbered"))]).unwrap(), [2]);

    pg.stop();
    let during = store.commit_numbered(&[Write::Message(msg("#r", 0, "during"))]).unwrap_err().to_string();
    let address = format!("PostgreSQL at 127.0.0.1:{} is unavailable", pg.port());
    eprintln!("during the outage: {during}");
    assert!(during.contains(&address), "{during}");
    assert!(!during.contains(PASSWORD), "the password stays out of errors: {during}");
    let read = store.history("#r", HistoryQuery { limit: 5, ..Default::default() }).unwrap_err().to_string();
    assert!(read.contains(&address) && read.contains("cannot read the history"), "{read}");

    pg.restart();
    // The next operations reconnect by themselves.
    assert_eq!(store.commit_numbered(&[Write::Message(msg("#r", 0, "after"))]).unwrap(), [3]);
    assert_eq!(
        texts(&store, "#r"),
        [(1, "before".into()), (2, "numbered".into()), (3, "after".into())],
        "everything committed survived; the failed write left nothing"
    );

    // A restart with nothing tried during it: the pooled connections are dead, and the first
    // read and write after it still succeed.
    pg.stop();
    pg.restart();
    assert_eq!(texts(&store, "#r").len(), 3);
    pg.stop();
    pg.restart();
    store.commit(&[Write::Message(msg("#r", 4, "fourth"))]).unwrap();
    assert_eq!(store.load(10).unwrap()[0].last_mid, 4);
}

#[test]
fn three_nodes_starting_at_once_migrate_once() {
    let Some(pg) = testing::shared() else { return };
    let url = pg.database();
    let start = Arc::new(Barrier::new(3));
    let nodes: Vec<_> = (0..3)
        .map(|_| {
            let (url, start) = (url.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                PostgresStore::open(&url).map(|_| ())
            })
        })
        .collect();
    for node in nodes {
        node.join().unwrap().unwrap();
    }
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let versions: Vec<i32> = client
        .query("SELECT version FROM natter_schema ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=PG_SCHEMA_VERSION as i32).collect::<Vec<_>>());
    // And a later start finds nothing to do.
    PostgresStore::open(&url).unwrap();
}

#[test]
fn a_database_migrated_by_a_newer_natter_is_refused() {
    let Some(pg) = testing::shared() else { return };
    let url = url_with_password(&pg);
    PostgresStore::open(&url).unwrap();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client
        .execute("INSERT INTO natter_schema (version) VALUES ($1)", &[&(PG_SCHEMA_VERSION as i32 + 1)])
        .unwrap();
    let err = PostgresStore::open(&url).unwrap_err();
    let text = err.to_string();
    eprintln!("newer: {text}");
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(
        text.contains("newer natter") && text.contains(&format!("version {}", PG_SCHEMA_VERSION + 1)),
        "{text}"
    );
    assert!(!text.contains(PASSWORD) && text.contains("natter:***@"), "{text}");
}

#[test]
fn errors_at_startup_say_what_to_do_and_never_show_the_password() {
    let Some(pg) = testing::shared() else { return };
    // No such database.
    let missing = pg.url("no_such_database").replacen("natter@", &format!("natter:{PASSWORD}@"), 1);
    let text = PostgresStore::open(&missing).unwrap_err().to_string();
    eprintln!("no database: {text}");
    assert!(text.contains("no_such_database") && text.contains("create the database first"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    // Nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nowhere = format!("postgresql://natter:{PASSWORD}@127.0.0.1:{port}/natter");
    let text = PostgresStore::open(&nowhere).unwrap_err().to_string();
    eprintln!("no server: {text}");
    assert!(text.contains(&format!("PostgreSQL at 127.0.0.1:{port} is unavailable")), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    // Not a URL it can read.
    let text = PostgresStore::open(&format!("postgres://natter:{PASSWORD}@127.0.0.1:notaport/x"))
        .unwrap_err()
        .to_string();
    eprintln!("no URL: {text}");
    assert!(text.contains("not a PostgreSQL URL") && !text.contains(PASSWORD), "{text}");
    // A role that may log in but not create tables (PostgreSQL 15 gives nobody but the owner
    // CREATE on the public schema).
    let db = pg.database();
    pg.admin()
        .batch_execute(
            "DO $$ BEGIN CREATE ROLE visitor LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
        )
        .unwrap();
    let mut owner = postgres::Client::connect(&db, postgres::NoTls).unwrap();
    owner.batch_execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC").unwrap();
    let text = PostgresStore::open(&db.replacen("natter@", "visitor@", 1)).unwrap_err().to_string();
    eprintln!("no CREATE: {text}");
    assert!(text.contains("permission denied") && text.contains("needs CREATE"), "{text}");
    // TLS to PostgreSQL is not spoken: a URL requiring it is refused at start, saying so.
    let tls = format!("{}?sslmode=require", pg.database());
    let text = PostgresStore::open(&tls).unwrap_err().to_string();
    eprintln!("tls: {text}");
    assert!(text.contains("does not speak TLS") && text.contains("sslmode=require"), "{text}");
    // The redaction itself, with the password in a parameter too.
    assert_eq!(
        natter_store::redact_url("postgres://u:p%40ss@h:1/d?password=x&sslmode=disable"),
        "postgres://u:***@h:1/d?password=***&sslmode=disable"
    );
}

#[test]
fn a_numbered_commit_is_all_or_nothing_and_its_counters_roll_back_with_it() {
    let Some(pg) = testing::shared() else { return };
    let store = PostgresStore::open(&pg.database()).unwrap();
    assert_eq!(store.commit_numbered(&[Write::Message(msg("#r", 0, "one"))]).unwrap(), [1]);
    // The second message takes id 2 and the third is given 2 as well: the batch fails whole.
    let err = store
        .commit_numbered(&[Write::Message(msg("#r", 0, "two")), Write::Message(msg("#r", 2, "clash"))])
        .unwrap_err();
    assert!(err.to_string().contains("cannot write a batch"), "{err}");
    assert_eq!(texts(&store, "#r"), [(1, "one".into())]);
    // No id was used up by the failed batch.
    assert_eq!(store.commit_numbered(&[Write::Message(msg("#r", 0, "two"))]).unwrap(), [2]);
    // Ids beyond what PostgreSQL's bigint holds are refused, not wrapped.
    let err = store.commit(&[Write::Message(msg("#r", u64::MAX, "huge"))]).unwrap_err();
    assert!(err.to_string().contains("too large"), "{err}");
    // A numbered commit after plain ones goes on from the highest stored id.
    store.commit(&[Write::Message(msg("#r", 10, "plain"))]).unwrap();
    assert_eq!(store.commit_numbered(&[Write::Message(msg("#r", 0, "next"))]).unwrap(), [11]);
}

#[test]
fn account_writes_of_another_node_are_noticed_and_ones_own_are_not() {
    let Some(pg) = testing::shared() else { return };
    let url = pg.database();
    let (a, b) = (PostgresStore::open(&url).unwrap(), PostgresStore::open(&url).unwrap());
    let account = |name: &str| AccountRecord {
        folded: name.into(),
        name: name.into(),
        hash: "$argon2id$x".into(),
        created_ts: 1,
        last_login_ts: None,
        scram: None,
    };
    let seen = a.outside_writes().unwrap();
    assert!(a.create_account(&account("ann")).unwrap());
    assert!(a.add_certificate("ann", &"aa".repeat(32), 1).unwrap());
    a.touch_account("ann", 5).unwrap();
    assert_eq!(a.outside_writes().unwrap(), seen, "its own writes");
    assert!(!a.create_account(&account("ann")).unwrap());
    assert_eq!(a.outside_writes().unwrap(), seen, "a write that changed nothing");
    assert!(b.create_account(&account("bob")).unwrap());
    let after = a.outside_writes().unwrap();
    assert_ne!(after, seen, "another node's write");
    assert!(b.delete_account("bob").unwrap());
    assert_ne!(a.outside_writes().unwrap(), after);
}

#[test]
fn message_text_keeps_any_character_and_the_shared_setting_is_set_once() {
    let Some(pg) = testing::shared() else { return };
    let url = pg.database();
    let store = PostgresStore::open(&url).unwrap();
    let text = "nul \0 and \u{7f} and 🎉 and \u{202e}";
    store.commit(&[Write::Message(msg("#r", 1, text))]).unwrap();
    assert_eq!(texts(&store, "#r"), [(1, text.to_owned())]);
    store.probe().unwrap();
    let first = store.shared_setting("cloak_key", || "first".into()).unwrap();
    let other = PostgresStore::open(&url).unwrap();
    assert_eq!(other.shared_setting("cloak_key", || "second".into()).unwrap(), first);
    assert_eq!(first, "first");
}

#[test]
fn many_readers_at_once_share_a_bounded_number_of_connections_closed_with_the_store() {
    let Some(pg) = testing::shared() else { return };
    let url = pg.database();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let store = Arc::new(PostgresStore::open(&url).unwrap());
    store.commit(&[Write::Message(msg("#r", 1, "one"))]).unwrap();
    let mut admin = pg.admin();
    let mut backends = move || -> i64 {
        admin.query_one("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", &[&name]).unwrap().get(0)
    };
    let readers: Vec<_> = (0..40)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    assert_eq!(texts(store.as_ref(), "#r").len(), 1);
                }
            })
        })
        .collect();
    let mut most = 0;
    while !readers.iter().all(|r| r.is_finished()) {
        most = most.max(backends());
    }
    for reader in readers {
        reader.join().unwrap();
    }
    assert!(most <= 16, "at most 16 connections at once, saw {most}");
    assert!(backends() <= 8, "at most 8 kept idle");
    drop(store);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while backends() > 0 {
        assert!(std::time::Instant::now() < deadline, "the store's connections end with it");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A lock held elsewhere (a stuck session, an administrator's open transaction) fails the
/// write after the lock timeout with a clear error instead of hanging the commit thread, and
/// the store works again once the lock is gone.
#[test]
fn a_write_waiting_on_a_lock_held_elsewhere_gives_up_instead_of_hanging() {
    let Some(pg) = testing::shared() else { return };
    let url = pg.database();
    let store = PostgresStore::open(&url).unwrap();
    store.commit_numbered(&[Write::Message(msg("#r", 0, "one"))]).unwrap();
    let mut other = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut holder = other.transaction().unwrap();
    holder.execute("SELECT 1 FROM room_counters WHERE room = '#r' FOR UPDATE", &[]).unwrap();
    let started = std::time::Instant::now();
    let err = store.commit_numbered(&[Write::Message(msg("#r", 0, "two"))]).unwrap_err().to_string();
    let waited = started.elapsed();
    eprintln!("after {waited:?}: {err}");
    assert!(err.contains("cannot write a batch") && err.contains("lock timeout"), "{err}");
    assert!(waited < std::time::Duration::from_secs(30), "gave up after {waited:?}");
    holder.rollback().unwrap();
    assert_eq!(store.commit_numbered(&[Write::Message(msg("#r", 0, "two"))]).unwrap(), [2]);
}
