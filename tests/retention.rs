//! `history_days` on the real server: room and private messages older than that are deleted
//! from the store when the server starts (and hourly), the others kept.

mod common;

use common::{Server, json, native};

const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn history_days_deletes_older_room_and_private_messages_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("natter.db");
    // A database at the current schema, then messages of three days and of an hour ago.
    let mut first = Server::start_with_db(&db, &[]);
    first.signal("-TERM");
    assert!(first.wait_exit().success());
    let (old, recent) = (now_ms() - 3 * DAY_MS, now_ms() - DAY_MS / 24);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "INSERT INTO rooms (key, name, topic, ephemeral, created_ts) VALUES ('#old', '#old', '', 0, 1)",
    )
    .unwrap();
    for (mid, ts) in [(1, old), (2, old), (3, recent)] {
        conn.execute(
            "INSERT INTO messages (room, mid, ts, nick, sender_key, text, action) VALUES ('#old', ?1, ?2, 'ann', 'ann', ?3, 0)",
            rusqlite::params![mid, ts, format!("room {mid}")],
        )
        .unwrap();
    }
    for (mid, ts) in [(1, old), (2, recent)] {
        conn.execute(
            "INSERT INTO private_messages (mid, low, high, ts, from_key, nick, to_key, to_nick, text, action, notice, undelivered)
             VALUES (?1, '~ann', 'bob', ?2, '~ann', 'ann', 'bob', 'bob', ?3, 0, 0, 0)",
            rusqlite::params![mid, ts, format!("private {mid}")],
        )
        .unwrap();
    }
    drop(conn);

    let server = Server::start_with_db(&db, &["--history-days", "1"]);
    let mut ann = native(server.tcp, "ann");
    // The commit thread prunes before its first commit: this message's ack comes after it.
    ann.line(r##"{"type":"send","room":"#lobby","text":"hi","id":"s"}"##);
    ann.expect(r#""id":"s""#);
    ann.line(r##"{"type":"history","room":"#old","limit":50,"id":"h"}"##);
    let page = json(&ann.expect(r#""id":"h""#));
    let texts: Vec<&str> =
        page["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["room 3"], "{page}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let private: Vec<String> = conn
        .prepare("SELECT text FROM private_messages ORDER BY mid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(private, ["private 2"]);
}

#[test]
fn history_days_must_be_a_number_of_days() {
    let out = std::process::Command::new(common::natter_bin())
        .args(["serve", "--history-days", "lots", "--db", ":memory:"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--history-days"), "{err}");
}
