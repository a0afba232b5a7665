//! What `natter serve` says when it cannot start: one line naming what was wrong and what to
//! do, each cause once, no backtrace, exit status 1.

mod common;

use common::natter_bin;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `natter serve` with `args` (and stdin closed); returns its error output. A server that
/// starts instead of failing is stopped and the test fails (rather than waiting for it).
fn fails(args: &[&str]) -> String {
    let mut child = Command::new(natter_bin())
        .arg("serve")
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env("NATTER_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let read = std::thread::spawn(move || {
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        err
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("natter serve {args:?} started instead of refusing: {}", read.join().unwrap());
        }
        // Polling for the exit (std has no wait with a timeout), not a guess at readiness.
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = read.join().unwrap();
    assert_eq!(status.code(), Some(1), "{status:?}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line, not a chain or a backtrace:\n{err}");
    assert!(lines[0].starts_with("natter: "), "{err}");
    assert!(!err.contains("Caused by") && !err.contains("backtrace"), "{err}");
    lines[0].to_string()
}

#[test]
fn a_bare_port_asks_for_host_and_port() {
    let line = fails(&["--tcp", "17026", "--db", ":memory:"]);
    assert!(line.contains("HOST:PORT") && line.contains("0.0.0.0:17026"), "{line}");
}

#[test]
fn a_port_in_use_is_named_with_the_flag_to_change() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let line = fails(&["--tcp", &addr, "--udp", "off", "--irc", "off", "--db", ":memory:"]);
    assert!(line.contains(&addr) && line.contains("--tcp"), "{line}");
}

#[test]
fn a_file_that_is_not_a_database_is_named_once_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    std::fs::write(&path, "these are my notes, not a database ".repeat(20)).unwrap();
    let line =
        fails(&["--db", path.to_str().unwrap(), "--tcp", "127.0.0.1:0", "--udp", "off", "--irc", "off"]);
    assert_eq!(line.matches(path.to_str().unwrap()).count(), 1, "{line}");
    assert!(line.contains("move it aside or choose another --db"), "{line}");
}

#[test]
fn a_second_server_on_the_same_database_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("natter.db");
    let first = common::Server::start_with_db(&db, &[]);
    let line = fails(&["--db", db.to_str().unwrap(), "--tcp", "127.0.0.1:0", "--udp", "off", "--irc", "off"]);
    assert!(line.contains("another natter server is using this database"), "{line}");
    // The first goes on, and once it is gone the file can be used again.
    let mut ann = common::native(first.tcp, "ann");
    ann.line(r#"{"type":"ping","id":1}"#);
    ann.expect(r#""type":"pong""#);
    drop(first);
    let again = common::Server::start_with_db(&db, &[]);
    common::native(again.tcp, "bob");
}

/// Runs `natter serve` on the database at `db` and returns its one line of error.
fn fails_on_db(db: &std::path::Path) -> String {
    fails(&["--db", db.to_str().unwrap(), "--tcp", "127.0.0.1:0", "--udp", "off", "--irc", "off"])
}

/// A natter database holding `n` messages, closed cleanly (everything in the main file).
fn natter_database(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let db = dir.join("natter.db");
    let mut server = common::Server::start_with_db(&db, &["--msg-rate", "0"]);
    let mut ann = common::native(server.tcp, "ann");
    for i in 0..n {
        ann.line(&format!(
            r##"{{"type":"send","room":"#lobby","text":"message {i} {}","id":{i}}}"##,
            "x".repeat(200)
        ));
    }
    ann.expect(&format!(r#""type":"ack","id":{}"#, n - 1));
    server.signal("-TERM");
    assert!(server.wait_exit().success());
    db
}

/// The one sentence for a file that is not natter's: the file named once, what to do.
fn says_move_aside(line: &str, db: &std::path::Path) {
    assert_eq!(line.matches(db.to_str().unwrap()).count(), 1, "{line}");
    assert!(line.contains("move it aside or choose another --db path"), "{line}");
}

#[test]
fn a_truncated_database_is_called_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let db = natter_database(dir.path(), 100);
    let bytes = std::fs::read(&db).unwrap();
    std::fs::write(&db, &bytes[..bytes.len() / 2]).unwrap();
    let line = fails_on_db(&db);
    says_move_aside(&line, &db);
    assert!(line.contains("the database file is damaged: restore it from a backup"), "{line}");
    assert!(!line.contains("malformed"), "SQLite's words or ours, not both: {line}");
}

#[test]
fn damage_found_while_loading_names_the_file_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = natter_database(dir.path(), 100);
    // The schema pages stay whole: the file opens, and the damage shows when the messages are read.
    let mut bytes = std::fs::read(&db).unwrap();
    let half = bytes.len() / 2;
    bytes[half..].fill(0x5a);
    std::fs::write(&db, &bytes).unwrap();
    let line = fails_on_db(&db);
    says_move_aside(&line, &db);
    assert!(line.contains("the database file is damaged"), "{line}");
    assert!(!line.contains("store operation failed") && !line.contains("loading"), "{line}");
}

#[test]
fn another_programs_sqlite_database_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shop.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);").unwrap();
    drop(conn);
    let line = fails_on_db(&db);
    says_move_aside(&line, &db);
    assert!(line.contains("another program's SQLite database") && line.contains("customers"), "{line}");
    // Nothing of natter's was added to it.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)).unwrap();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!((tables, version), (1, 0));
}

#[test]
fn a_database_of_a_newer_natter_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = natter_database(dir.path(), 1);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA user_version = 99;").unwrap();
    drop(conn);
    let line = fails_on_db(&db);
    assert_eq!(line.matches(db.to_str().unwrap()).count(), 1, "{line}");
    assert!(line.contains("schema version 99") && line.contains("written by a newer natter"), "{line}");
}

/// `natter serve` with these TLS files (and nothing else listening); its one line of error.
fn fails_with_tls(cert: &std::path::Path, key: &std::path::Path) -> String {
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    fails(&[
        "--tls-cert",
        cert,
        "--tls-key",
        key,
        "--db",
        ":memory:",
        "--tcp",
        "127.0.0.1:0",
        "--udp",
        "off",
        "--irc",
        "off",
    ])
}

#[test]
fn a_missing_or_invalid_certificate_or_key_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let made = natter_server::cert::make(&["localhost".into()], 30).unwrap();
    let other = natter_server::cert::make(&["localhost".into()], 30).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &made.cert_pem).unwrap();
    std::fs::write(&key, &made.key_pem).unwrap();
    let missing = dir.path().join("missing.pem");

    let line = fails_with_tls(&missing, &key);
    assert!(
        line.contains("missing.pem") && line.contains("--tls-cert") && line.contains("natter cert"),
        "{line}"
    );
    let line = fails_with_tls(&cert, &missing);
    assert!(line.contains("missing.pem") && line.contains("--tls-key"), "{line}");

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
        .unwrap();
    let line = fails_with_tls(&garbage, &key);
    assert!(line.contains("garbage.pem") && line.contains("not valid PEM"), "{line}");
    // A key where the certificate belongs, and the other way round.
    let line = fails_with_tls(&key, &key);
    assert!(line.contains("key.pem") && line.contains("no CERTIFICATE section"), "{line}");
    let line = fails_with_tls(&cert, &cert);
    assert!(line.contains("cert.pem") && line.contains("no PRIVATE KEY section"), "{line}");

    let wrong_key = dir.path().join("other-key.pem");
    std::fs::write(&wrong_key, &other.key_pem).unwrap();
    let line = fails_with_tls(&cert, &wrong_key);
    assert!(line.contains("does not go with the certificate") && line.contains("other-key.pem"), "{line}");

    let line = fails(&["--tls-cert", cert.to_str().unwrap(), "--db", ":memory:"]);
    assert!(line.contains("--tls-key"), "{line}");
    let line = fails(&["--irc-tls", "127.0.0.1:0", "--db", ":memory:"]);
    assert!(line.contains("--tls-cert") && line.contains("natter cert"), "{line}");
}
