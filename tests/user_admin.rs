//! `natter user add|passwd|del|list`: account administration against the store, with the
//! password from standard input (never from the command line), also while a server runs.

mod common;

use common::{natter_bin, user_output as user};
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn accounts_are_added_listed_changed_and_deleted_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("natter.db");
    let (ok, out, err) = user(&db, &["list"], "");
    assert!(ok && out.is_empty() && err.contains("no accounts"), "{out} {err}");

    let (ok, out, _) = user(&db, &["add", "Alice"], "correct horse battery\n");
    assert!(ok, "{out}");
    assert_eq!(out, "registered Alice\n");
    let (ok, _, err) = user(&db, &["add", "alice"], "another password\n");
    assert!(!ok);
    assert!(err.contains("the account alice already exists"), "{err}");

    let (ok, out, _) = user(&db, &["list"], "");
    assert!(ok);
    assert!(out.starts_with("Alice\tregistered ") && out.contains("last login never"), "{out}");

    // The password itself is stored only as its argon2id hash.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let hash: String = conn.query_row("SELECT hash FROM accounts", [], |r| r.get(0)).unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    assert!(!hash.contains("correct horse"));

    let (ok, out, _) = user(&db, &["passwd", "ALICE"], "a new password\n");
    assert!(ok && out == "changed the password of ALICE\n", "{out}");
    let changed: String = conn.query_row("SELECT hash FROM accounts", [], |r| r.get(0)).unwrap();
    assert_ne!(changed, hash);

    let (ok, out, _) = user(&db, &["del", "alice"], "");
    assert!(ok && out == "deleted alice\n", "{out}");
    let (ok, _, err) = user(&db, &["del", "alice"], "");
    assert!(!ok && err.contains("no account alice"), "{err}");
    let (ok, _, err) = user(&db, &["passwd", "alice"], "a new password\n");
    assert!(!ok && err.contains("no account alice; `natter user add alice`"), "{err}");
}

#[test]
fn bad_names_and_bad_passwords_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("natter.db");
    for (name, password, says) in [
        ("bob", "short\n", "too short: use at least 8 characters"),
        ("bob", "\n", "too short"),
        ("bob", "", "too short"),
        ("bob", &format!("{}\n", "x".repeat(257)), "too long: use at most 256 bytes"),
        ("NickServ", "long enough password\n", "reserved"),
        ("#room", "long enough password\n", "cannot be an account name"),
        ("", "long enough password\n", "cannot be an account name"),
    ] {
        let (ok, _, err) = user(&db, &["add", name], password);
        assert!(!ok, "{name} {password:?}");
        assert!(err.contains(says), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    let (_, out, _) = user(&db, &["list"], "");
    assert!(out.is_empty(), "{out}");
    // Invalid UTF-8 on standard input is an error, not a panic.
    let mut child = Command::new(natter_bin())
        .args(["user", "add", "bob", "--db", db.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"\xff\xfe password\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading the password"));
}

#[test]
fn a_password_is_never_taken_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("natter.db");
    let (ok, _, err) = user(&db, &["add", "bob", "hunter2hunter2"], "");
    assert!(!ok);
    assert!(err.contains("unexpected argument"), "{err}");
}
