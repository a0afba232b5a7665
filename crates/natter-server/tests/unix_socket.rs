//! The Unix-domain socket (`--unix`): every door over it, its mode, a stale socket file
//! replaced, a live one never taken over, the file removed at shutdown, and its peers trusted
//! as this machine (require_tls does not apply to them).

mod harness;

use harness::{TestServer, json, settings};
use natter_server::{Server, Settings};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::time::timeout;

fn with_unix(path: &Path) -> Settings {
    Settings { unix: Some(path.to_path_buf()), ..settings() }
}

/// Writes `send` and reads lines until one contains `needle`.
async fn exchange(path: &Path, send: &str, needle: &str) -> String {
    let stream = UnixStream::connect(path).await.expect("connect to the Unix socket");
    let (read, mut write) = stream.into_split();
    write.write_all(send.as_bytes()).await.unwrap();
    let mut lines = BufReader::new(read).lines();
    let mut seen = Vec::new();
    loop {
        let line = timeout(Duration::from_secs(10), lines.next_line()).await.expect("an answer in time");
        match line.unwrap() {
            Some(line) if line.contains(needle) => return line,
            Some(line) => seen.push(line),
            None => panic!("closed before {needle:?}; saw {seen:#?}"),
        }
    }
}

#[tokio::test]
async fn every_door_works_over_the_unix_socket_made_0660_and_removed_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("natter.sock");
    let mut s = with_unix(&path);
    // Plain text from another machine is refused; the Unix socket is not another machine.
    s.require_tls = true;
    s.connections.exempt_loopback = false;
    let server = TestServer::start_with(s).await;
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);

    exchange(&path, "ann\n", "Hello ann").await;
    let welcome = exchange(&path, "{\"type\":\"hello\",\"nick\":\"bob\"}\n", "\"type\":\"welcome\"").await;
    assert_eq!(json(&welcome)["nick"], "bob");
    exchange(&path, "NICK cid\r\nUSER c 0 * :C\r\n", " 001 cid ").await;

    server.shutdown("done").await;
    assert!(!path.exists(), "the socket file is removed at shutdown");
}

#[tokio::test]
async fn a_stale_socket_file_is_replaced_but_a_live_one_or_another_file_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("natter.sock");
    // A server that died leaves its socket file behind.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let server = TestServer::start_with(with_unix(&path)).await;
    exchange(&path, "ann\n", "Hello ann").await;
    // Shown as this machine, uncloaked as loopback is.
    let whois = exchange(&path, "NICK dee\r\nUSER d 0 * :D\r\nWHOIS dee\r\n", " 311 dee dee ").await;
    assert!(whois.contains(" 127.0.0.1 "), "{whois}");

    let e =
        Server::start(&with_unix(&path)).await.err().expect("a live socket is not taken over").to_string();
    assert!(e.contains("another server is listening") && e.contains("--unix"), "{e}");
    exchange(&path, "bob\n", "Hello bob").await;
    server.shutdown("done").await;

    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "mine").unwrap();
    let e = Server::start(&with_unix(&file)).await.err().expect("not a socket").to_string();
    assert!(e.contains("is not a socket"), "{e}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
}
