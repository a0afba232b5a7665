//! Attacks on the server's memory, replayed with the real binary over real sockets: what a
//! hostile or broken client can make the server hold is bounded, and the server says so.

mod common;

use common::{Server, json, native};
use std::io::Write;
use std::time::Duration;

/// A text of about 15 KB that still fits a line.
fn big(i: usize) -> String {
    format!("{i} {}", "x".repeat(15_000))
}

/// A reader that stops reading while big messages flow is cut once its backlog passes the
/// outbox's byte bound (2 MiB by default), long before its 4,096 events: 2,000 messages of
/// 15 KB would otherwise pin 30 MB for it.
#[test]
fn a_slow_reader_of_big_messages_is_cut_by_bytes_not_by_count() {
    let server = Server::start(&["--msg-rate", "0"]);
    let mut slow = native(server.tcp, "slow");
    slow.line(r##"{"type":"join","room":"#side","id":"side"}"##);
    slow.expect(r#""id":"side""#);
    // The watcher shares only #side with the slow reader, so it sees the slow reader go without
    // having to keep up with the 30 MB itself (a watcher in #lobby could be cut as too slow too).
    let mut watcher = native(server.tcp, "watcher");
    watcher.line(r##"{"type":"join","room":"#side","id":"side"}"##);
    watcher.expect(r#""id":"side""#);
    watcher.line(r##"{"type":"part","room":"#lobby"}"##);
    watcher.expect(r##""type":"part","room":"#lobby","nick":"watcher""##);
    let mut talker = native(server.tcp, "talker");
    // The talker reads its acknowledgements as it goes, as a client does.
    let mut acks = talker.stream.try_clone().unwrap();
    let drain = std::thread::spawn(move || std::io::copy(&mut acks, &mut std::io::sink()));
    let mut frames = Vec::new();
    for i in 0..2000 {
        frames.extend_from_slice(
            format!("{}\n", serde_json::json!({"type": "send", "room": "#lobby", "text": big(i)})).as_bytes(),
        );
    }
    let writer = std::thread::spawn(move || talker.stream.write_all(&frames));
    let quit = watcher.expect_within(r#""type":"quit","nick":"slow""#, Duration::from_secs(60));
    assert!(json(&quit)["reason"].as_str().unwrap().starts_with("too slow"), "{quit}");
    writer.join().unwrap().unwrap();
    drop(server);
    let _ = drain.join();
}

/// A client that asks for big history pages far faster than it reads them gets four pages
/// on their way at a time, each cut to 256 KiB, and a `busy` refusal for every request beyond:
/// every request is answered, and the server holds a megabyte for it, not hundreds.
#[test]
fn a_history_flood_gets_bounded_pages_and_busy_refusals() {
    let server = Server::start(&["--msg-rate", "0", "--command-rate", "0"]);
    let mut filler = native(server.tcp, "filler");
    for i in 0..100 {
        filler.line(
            &serde_json::json!({"type": "send", "room": "#lobby", "text": big(i), "id": i}).to_string(),
        );
    }
    filler.expect(r#""id":99"#);
    let mut reader = native(server.tcp, "reader");
    let asks: String = (0..200)
        .map(|i| {
            format!("{}\n", serde_json::json!({"type": "history", "room": "#lobby", "limit": 500, "id": i}))
        })
        .collect();
    reader.send(asks.as_bytes());
    let (mut pages, mut busy) = (0, 0);
    for _ in 0..200 {
        let frame = json(&reader.next().expect("an answer for every request"));
        match frame["type"].as_str() {
            Some("history") => {
                let messages = frame["messages"].as_array().unwrap();
                let bytes: usize = messages.iter().map(|m| m["text"].as_str().unwrap().len()).sum();
                assert!(bytes <= 256 * 1024, "a page of {bytes} bytes");
                assert!(messages.len() < 100 && frame["more"] == true, "cut short, and says so");
                pages += 1;
            }
            Some("error") => {
                assert_eq!(frame["code"], "busy", "{frame}");
                busy += 1;
            }
            _ => panic!("{frame}"),
        }
    }
    assert_eq!(pages + busy, 200);
    assert!(busy > 0 && pages >= 4, "{pages} pages, {busy} refused");
    reader.ping();
}
