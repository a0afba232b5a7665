//! Group-commit throughput: how many messages per second `SqliteStore::commit` stores in large
//! batches, the number that bounds how fast the hub can acknowledge messages.
//!
//! Run with `cargo bench -p natter-store --bench insert`; prints one line per case.

use natter_core::store::{RoomRecord, Store, StoredMessage, Write};
use natter_store::{Durability, SqliteStore};
use std::time::Instant;

const TOTAL: u64 = 1_000_000;

fn batches(batch: u64, with_cid: bool) -> Vec<Vec<Write>> {
    let rooms = ["#general", "#rust", "#random", "#ops"];
    (0..TOTAL / batch)
        .map(|b| {
            (0..batch)
                .map(|i| {
                    let n = b * batch + i;
                    let room = rooms[(n % 4) as usize];
                    Write::Message(StoredMessage {
                        room: room.to_owned(),
                        mid: n / 4 + 1,
                        ts: 1_700_000_000_000 + n,
                        nick: format!("User{}", n % 100),
                        sender_key: format!("user{}", n % 100),
                        cid: with_cid.then(|| format!("{n:016x}")),
                        text: format!("message number {n}: some ordinary chat text of a typical length"),
                        action: false,
                        notice: false,
                    })
                })
                .collect()
        })
        .collect()
}

fn run(name: &str, durability: Durability, batch: u64, with_cid: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.db");
    let store = SqliteStore::open(path.to_str().expect("utf-8 path"), durability).expect("open");
    let rooms: Vec<Write> = ["#general", "#rust", "#random", "#ops"]
        .iter()
        .map(|k| {
            Write::Room(RoomRecord {
                folded: (*k).to_owned(),
                name: (*k).to_owned(),
                topic: String::new(),
                topic_by: None,
                ephemeral: false,
                created_ts: 0,
                rules: Default::default(),
            })
        })
        .collect();
    store.commit(&rooms).expect("rooms");
    let work = batches(batch, with_cid);
    let started = Instant::now();
    for b in &work {
        store.commit(b).expect("commit");
    }
    let elapsed = started.elapsed();
    println!(
        "{name:<40} {TOTAL} messages in {:>7.3} s = {:>9.0} messages/s",
        elapsed.as_secs_f64(),
        TOTAL as f64 / elapsed.as_secs_f64()
    );
    store.close().expect("close");
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not and wants a quick run.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    run("batch 10000, no cid, Process", Durability::Process, 10_000, false);
    run("batch 10000, with cid, Process", Durability::Process, 10_000, true);
    run("batch 1000, with cid, Process", Durability::Process, 1_000, true);
    run("batch 100, with cid, Process", Durability::Process, 100, true);
    run("batch 1000, with cid, PowerLoss", Durability::PowerLoss, 1_000, true);
}
