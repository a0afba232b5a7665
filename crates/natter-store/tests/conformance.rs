//! The same assertions against `MemoryStore` (the reference), `SqliteStore` (in memory and on
//! disk) and `PostgresStore` (a throwaway server, a database per subject), plus a differential
//! test that replays one pseudo-random workload on all of them and requires identical answers.

use natter_core::memory_store::MemoryStore;
use natter_core::store::{
    HistoryQuery, LoadWindow, LoadedRoom, MailboxSize, PrivateTarget, RoomRecord, Store, StoredMessage,
    StoredPrivate, Write,
};
use natter_store::{Durability, PostgresStore, SqliteStore};
use tempfile::TempDir;

/// A store under test; the directory keeps the database file alive.
struct Subject {
    name: &'static str,
    store: Box<dyn Store>,
    _dir: Option<TempDir>,
    /// The PostgreSQL server the store's database lives on, kept running while it is used.
    _pg: Option<std::sync::Arc<natter_store::testing::Postgres>>,
}

fn subjects() -> Vec<Subject> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("natter.db");
    vec![
        Subject { name: "memory", store: Box::new(MemoryStore::new()), _dir: None, _pg: None },
        Subject {
            name: "sqlite :memory:",
            store: Box::new(SqliteStore::open(":memory:", Durability::Process).unwrap()),
            _dir: None,
            _pg: None,
        },
        Subject {
            name: "sqlite file",
            store: Box::new(SqliteStore::open(path.to_str().unwrap(), Durability::Process).unwrap()),
            _dir: Some(dir),
            _pg: None,
        },
    ]
    .into_iter()
    .chain(natter_store::testing::shared().map(|pg| Subject {
        name: "postgres",
        store: Box::new(PostgresStore::open(&pg.database()).unwrap()),
        _dir: None,
        _pg: Some(pg),
    }))
    .collect()
}

/// Runs `check` against every store.
fn each(check: impl Fn(&dyn Store)) {
    for s in subjects() {
        eprintln!("-- {}", s.name);
        check(s.store.as_ref());
    }
}

fn room(key: &str) -> RoomRecord {
    RoomRecord {
        folded: key.to_owned(),
        name: key.to_uppercase(),
        topic: String::new(),
        topic_by: None,
        ephemeral: false,
        created_ts: 1_700_000_000_000,
        rules: Default::default(),
    }
}

fn msg(room: &str, mid: u64, sender: &str, cid: Option<&str>) -> StoredMessage {
    StoredMessage {
        room: room.to_owned(),
        mid,
        ts: 1_700_000_000_000 + mid * 10,
        nick: sender.to_uppercase(),
        sender_key: sender.to_owned(),
        cid: cid.map(str::to_owned),
        text: format!("message {mid} in {room}"),
        action: mid.is_multiple_of(7),
        notice: mid.is_multiple_of(5),
    }
}

fn q(before: Option<u64>, after: Option<u64>, limit: u32) -> HistoryQuery {
    HistoryQuery { before, after, limit, ..Default::default() }
}

fn mids(page: &(Vec<StoredMessage>, bool)) -> (Vec<u64>, bool) {
    (page.0.iter().map(|m| m.mid).collect(), page.1)
}

/// Room `#r` with messages 1..=n, one batch.
fn fill(store: &dyn Store, n: u64) {
    let mut batch = vec![Write::Room(room("#r"))];
    batch.extend((1..=n).map(|mid| Write::Message(msg("#r", mid, "alice", None))));
    store.commit(&batch).unwrap();
}

#[test]
fn empty_store() {
    each(|s| {
        assert!(s.load(10).unwrap().is_empty());
        assert_eq!(mids(&s.history("#none", q(None, None, 10)).unwrap()), (vec![], false));
        s.commit(&[]).unwrap();
        s.close().unwrap();
    });
}

#[test]
fn messages_round_trip_exactly() {
    each(|s| {
        let m = StoredMessage {
            room: "#ünïcode".into(),
            mid: 42,
            ts: 1_700_000_000_123,
            nick: "Zoë".into(),
            sender_key: "zoë".into(),
            cid: Some("c-1 \0 nul".into()),
            text: "héllo\nwith \"quotes\" and \0 nul and 🎉".into(),
            action: true,
            notice: false,
        };
        let mut r = room("#ünïcode");
        r.topic = "a topic with \0 nul".into();
        r.topic_by = Some("Zoë".into());
        r.ephemeral = true;
        s.commit(&[Write::Room(r.clone()), Write::Message(m.clone())]).unwrap();
        let loaded = s.load(10).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].record, r);
        assert_eq!(loaded[0].last_mid, 42);
        assert_eq!(loaded[0].recent, vec![m.clone()]);
        assert_eq!(s.history("#ünïcode", q(None, None, 5)).unwrap(), (vec![m], false));
    });
}

#[test]
fn room_writes_upsert() {
    each(|s| {
        s.commit(&[Write::Room(room("#a"))]).unwrap();
        let mut changed = room("#a");
        changed.topic = "new".into();
        changed.topic_by = Some("bob".into());
        changed.name = "#A-renamed".into();
        changed.created_ts = 5;
        changed.rules.operators = vec!["ann".into()];
        changed.rules.modes.moderated = true;
        changed.rules.modes.key = Some("k".into());
        changed.rules.bans.push(natter_core::event::BanInfo {
            mask: "zed!*@*".into(),
            by: "ann".into(),
            ts: 3,
        });
        s.commit(&[Write::Room(changed.clone())]).unwrap();
        let loaded = s.load(0).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].record, changed);
        // And back to no topic setter.
        s.commit(&[Write::Room(room("#a"))]).unwrap();
        assert_eq!(s.load(0).unwrap()[0].record, room("#a"));
    });
}

#[test]
fn load_orders_rooms_by_key_and_keeps_recent_oldest_first() {
    each(|s| {
        s.commit(&[Write::Room(room("#b")), Write::Room(room("#a")), Write::Room(room("#c"))]).unwrap();
        let batch: Vec<Write> = (1..=10)
            .map(|mid| Write::Message(msg("#a", mid, "alice", None)))
            .chain((1..=3).map(|mid| Write::Message(msg("#b", mid, "bob", None))))
            .collect();
        s.commit(&batch).unwrap();
        let loaded = s.load(4).unwrap();
        let keys: Vec<&str> = loaded.iter().map(|r| r.record.folded.as_str()).collect();
        assert_eq!(keys, ["#a", "#b", "#c"]);
        let summary: Vec<(u64, Vec<u64>)> =
            loaded.iter().map(|r| (r.last_mid, r.recent.iter().map(|m| m.mid).collect())).collect();
        assert_eq!(summary, vec![(10, vec![7, 8, 9, 10]), (3, vec![1, 2, 3]), (0, vec![])]);
        // recent = 0 still reports the last id.
        let loaded = s.load(0).unwrap();
        assert_eq!(loaded[0].last_mid, 10);
        assert!(loaded[0].recent.is_empty());
        // A huge recent is fine.
        assert_eq!(s.load(usize::MAX).unwrap()[0].recent.len(), 10);
    });
}

#[test]
fn a_start_reads_only_each_rooms_last_moments() {
    // msg() sends one message every 10 ms: a 25 ms window holds the newest and the two
    // before it; the message count caps it too; a quiet room still gives its newest.
    each(|s| {
        s.commit(&[Write::Room(room("#busy")), Write::Room(room("#quiet")), Write::Room(room("#empty"))])
            .unwrap();
        let batch: Vec<Write> = (1..=10)
            .map(|mid| Write::Message(msg("#busy", mid, "alice", Some("c"))))
            .chain([Write::Message(msg("#quiet", 1, "bob", None))])
            .collect();
        s.commit(&batch).unwrap();
        let load = |window: LoadWindow| {
            let mut rooms: Vec<LoadedRoom> = Vec::new();
            s.load_each_within(window, &mut |r| rooms.push(r)).unwrap();
            rooms
                .iter()
                .map(|r| {
                    (r.record.folded.clone(), r.last_mid, r.recent.iter().map(|m| m.mid).collect::<Vec<_>>())
                })
                .collect::<Vec<_>>()
        };
        let by_time = load(LoadWindow { messages: 100, ms: 25 });
        assert_eq!(
            by_time,
            [
                ("#busy".to_owned(), 10, vec![8, 9, 10]),
                ("#empty".to_owned(), 0, vec![]),
                ("#quiet".to_owned(), 1, vec![1])
            ]
        );
        let by_count = load(LoadWindow { messages: 2, ms: u64::MAX });
        assert_eq!(by_count[0], ("#busy".to_owned(), 10, vec![9, 10]));
        assert_eq!(load(LoadWindow { messages: 0, ms: 1000 })[0], ("#busy".to_owned(), 10, vec![]));
    });
}

#[test]
fn messages_without_a_room_record_are_kept_but_not_loaded() {
    each(|s| {
        s.commit(&[Write::Message(msg("#ghost", 1, "alice", None))]).unwrap();
        assert!(s.load(10).unwrap().is_empty());
        assert_eq!(mids(&s.history("#ghost", q(None, None, 10)).unwrap()), (vec![1], false));
    });
}

#[test]
fn stores_keep_every_message_they_are_given() {
    // Resent client ids are the hub's business (over a window of recent messages); a store
    // keeps what it is given, so a write never pays for an index over all of history.
    each(|s| {
        let batch = vec![
            Write::Room(room("#r")),
            Write::Message(msg("#r", 1, "alice", Some("x"))),
            Write::Message(msg("#r", 2, "alice", Some("x"))),
            Write::Message(msg("#r", 3, "bob", None)),
        ];
        s.commit(&batch).unwrap();
        s.commit(&[Write::Message(msg("#r", 4, "alice", Some("x")))]).unwrap();
        assert_eq!(mids(&s.history("#r", q(None, None, 10)).unwrap()), (vec![1, 2, 3, 4], false));
        let recent = s.load(2).unwrap();
        assert_eq!(recent[0].last_mid, 4);
        // The cids come back with the recent messages: that is how the hub rebuilds its window.
        assert_eq!(recent[0].recent.iter().map(|m| m.cid.as_deref()).collect::<Vec<_>>(), [None, Some("x")]);
    });
}

#[test]
fn history_latest_page() {
    each(|s| {
        fill(s, 10);
        assert_eq!(mids(&s.history("#r", q(None, None, 3)).unwrap()), (vec![8, 9, 10], true));
        assert_eq!(mids(&s.history("#r", q(None, None, 10)).unwrap()), ((1..=10).collect(), false));
        assert_eq!(mids(&s.history("#r", q(None, None, 11)).unwrap()), ((1..=10).collect(), false));
        assert_eq!(mids(&s.history("#r", q(None, None, u32::MAX)).unwrap()), ((1..=10).collect(), false));
        assert_eq!(mids(&s.history("#r", q(None, None, 0)).unwrap()), (vec![], true));
        assert_eq!(mids(&s.history("#R", q(None, None, 5)).unwrap()), (vec![], false));
    });
}

#[test]
fn history_before() {
    each(|s| {
        fill(s, 10);
        assert_eq!(mids(&s.history("#r", q(Some(8), None, 3)).unwrap()), (vec![5, 6, 7], true));
        assert_eq!(mids(&s.history("#r", q(Some(4), None, 3)).unwrap()), (vec![1, 2, 3], false));
        assert_eq!(mids(&s.history("#r", q(Some(3), None, 3)).unwrap()), (vec![1, 2], false));
        assert_eq!(mids(&s.history("#r", q(Some(1), None, 3)).unwrap()), (vec![], false));
        assert_eq!(mids(&s.history("#r", q(Some(0), None, 3)).unwrap()), (vec![], false));
        assert_eq!(mids(&s.history("#r", q(Some(5), None, 0)).unwrap()), (vec![], true));
        assert_eq!(mids(&s.history("#r", q(Some(1), None, 0)).unwrap()), (vec![], false));
        assert_eq!(mids(&s.history("#r", q(Some(100), None, 2)).unwrap()), (vec![9, 10], true));
        assert_eq!(mids(&s.history("#r", q(Some(u64::MAX), None, 2)).unwrap()), (vec![9, 10], true));
    });
}

#[test]
fn history_after() {
    each(|s| {
        fill(s, 10);
        assert_eq!(mids(&s.history("#r", q(None, Some(3), 3)).unwrap()), (vec![4, 5, 6], true));
        assert_eq!(mids(&s.history("#r", q(None, Some(7), 3)).unwrap()), (vec![8, 9, 10], false));
        assert_eq!(mids(&s.history("#r", q(None, Some(8), 3)).unwrap()), (vec![9, 10], false));
        assert_eq!(mids(&s.history("#r", q(None, Some(10), 3)).unwrap()), (vec![], false));
        assert_eq!(mids(&s.history("#r", q(None, Some(0), 3)).unwrap()), (vec![1, 2, 3], true));
        assert_eq!(mids(&s.history("#r", q(None, Some(5), 0)).unwrap()), (vec![], true));
        assert_eq!(mids(&s.history("#r", q(None, Some(u64::MAX), 3)).unwrap()), (vec![], false));
        assert_eq!(mids(&s.history("#r", q(None, Some(i64::MAX as u64), 3)).unwrap()), (vec![], false));
    });
}

#[test]
fn history_between() {
    each(|s| {
        fill(s, 10);
        // Both bounds: the newest `limit` inside the range, `more` = older ones in the range.
        assert_eq!(mids(&s.history("#r", q(Some(9), Some(2), 3)).unwrap()), (vec![6, 7, 8], true));
        assert_eq!(mids(&s.history("#r", q(Some(9), Some(5), 3)).unwrap()), (vec![6, 7, 8], false));
        assert_eq!(mids(&s.history("#r", q(Some(9), Some(6), 3)).unwrap()), (vec![7, 8], false));
        assert_eq!(mids(&s.history("#r", q(Some(5), Some(5), 3)).unwrap()), (vec![], false));
        assert_eq!(mids(&s.history("#r", q(Some(3), Some(8), 3)).unwrap()), (vec![], false));
        assert_eq!(mids(&s.history("#r", q(Some(5), Some(4), 3)).unwrap()), (vec![], false));
        assert_eq!(mids(&s.history("#r", q(Some(6), Some(4), 3)).unwrap()), (vec![5], false));
        assert_eq!(mids(&s.history("#r", q(Some(u64::MAX), Some(0), 2)).unwrap()), (vec![9, 10], true));
    });
}

#[test]
fn history_with_gaps_in_ids() {
    each(|s| {
        let mut batch = vec![Write::Room(room("#r"))];
        batch.extend([2, 3, 10, 11, 50].map(|mid| Write::Message(msg("#r", mid, "a", None))));
        s.commit(&batch).unwrap();
        assert_eq!(mids(&s.history("#r", q(Some(11), None, 2)).unwrap()), (vec![3, 10], true));
        assert_eq!(mids(&s.history("#r", q(None, Some(3), 2)).unwrap()), (vec![10, 11], true));
        assert_eq!(mids(&s.history("#r", q(None, Some(4), 9)).unwrap()), (vec![10, 11, 50], false));
    });
}

#[test]
fn pages_walk_the_whole_room_both_ways() {
    each(|s| {
        fill(s, 25);
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let (page, more) = s.history("#r", q(before, None, 4)).unwrap();
            seen.splice(0..0, page.iter().map(|m| m.mid));
            if !more {
                break;
            }
            before = Some(page[0].mid);
        }
        assert_eq!(seen, (1..=25).collect::<Vec<_>>());
        let mut seen = Vec::new();
        let mut after = Some(0);
        loop {
            let (page, more) = s.history("#r", q(None, after, 4)).unwrap();
            seen.extend(page.iter().map(|m| m.mid));
            if !more {
                break;
            }
            after = Some(page.last().unwrap().mid);
        }
        assert_eq!(seen, (1..=25).collect::<Vec<_>>());
    });
}

/// A small deterministic generator, so that failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn same_answers_as_memory_store_on_a_random_workload() {
    let subjects = subjects();
    let rooms = ["#a", "#b", "#c", "#ä"];
    let senders = ["alice", "bob", "carol"];
    let mut rng = Lcg(7);
    let mut next_mid = [0u64; 4];
    for round in 0..60 {
        let mut batch = Vec::new();
        for _ in 0..rng.next(12) {
            let r = rng.next(4) as usize;
            if rng.next(10) == 0 {
                let mut rec = room(rooms[r]);
                rec.topic = format!("topic {round}");
                rec.ephemeral = rng.next(2) == 0;
                batch.push(Write::Room(rec));
            } else {
                // Ids normally grow; the core skips none, but the store must not care.
                next_mid[r] += 1 + rng.next(2);
                let cid = match rng.next(3) {
                    0 => None,
                    _ => Some(format!("c{}", rng.next(15))),
                };
                let sender = senders[rng.next(3) as usize];
                batch.push(Write::Message(msg(rooms[r], next_mid[r], sender, cid.as_deref())));
            }
        }
        for s in &subjects {
            s.store.commit(&batch).unwrap_or_else(|e| panic!("{} commit round {round}: {e}", s.name));
        }
    }
    for recent in [0, 1, 5, 1000] {
        let expected = subjects[0].store.load(recent).unwrap();
        for s in &subjects[1..] {
            assert_eq!(s.store.load(recent).unwrap(), expected, "{} load({recent})", s.name);
        }
    }
    let bound = |rng: &mut Lcg| match rng.next(4) {
        0 => None,
        _ => Some(rng.next(140)),
    };
    for _ in 0..2000 {
        let room = ["#a", "#b", "#c", "#ä", "#missing"][rng.next(5) as usize];
        let query = q(bound(&mut rng), bound(&mut rng), rng.next(12) as u32);
        let expected = subjects[0].store.history(room, query).unwrap();
        for s in &subjects[1..] {
            assert_eq!(s.store.history(room, query).unwrap(), expected, "{} {room} {query:?}", s.name);
        }
    }
}

/// The time of message `mid` as `msg` stores it.
fn t(mid: u64) -> u64 {
    1_700_000_000_000 + mid * 10
}

#[test]
fn history_by_time() {
    each(|store| {
        fill(store, 20);
        let before = HistoryQuery { before_ts: Some(t(7)), limit: 3, ..Default::default() };
        assert_eq!(mids(&store.history("#r", before).unwrap()), (vec![4, 5, 6], true));
        let after = HistoryQuery { after_ts: Some(t(17)), limit: 10, ..Default::default() };
        assert_eq!(mids(&store.history("#r", after).unwrap()), (vec![18, 19, 20], false));
        // Between two times (exclusive), oldest first or newest first.
        let between =
            HistoryQuery { after_ts: Some(t(2)), before_ts: Some(t(9)), limit: 3, ..Default::default() };
        assert_eq!(mids(&store.history("#r", between).unwrap()), (vec![6, 7, 8], true));
        let oldest = HistoryQuery { oldest: true, ..between };
        assert_eq!(mids(&store.history("#r", oldest).unwrap()), (vec![3, 4, 5], true));
        // Times between two messages, and mixed id and time bounds.
        let mixed =
            HistoryQuery { after: Some(10), before_ts: Some(t(13) + 5), limit: 10, ..Default::default() };
        assert_eq!(mids(&store.history("#r", mixed).unwrap()), (vec![11, 12, 13], false));
        let none = HistoryQuery { before_ts: Some(t(1)), limit: 10, ..Default::default() };
        assert_eq!(mids(&store.history("#r", none).unwrap()), (vec![], false));
        let extreme =
            HistoryQuery { after_ts: Some(u64::MAX), before_ts: Some(0), limit: 5, ..Default::default() };
        assert_eq!(mids(&store.history("#r", extreme).unwrap()), (vec![], false));
    });
}

#[test]
fn history_latest_after_an_id_takes_the_newest() {
    each(|store| {
        fill(store, 20);
        // CHATHISTORY LATEST msgid=...: newest first, stopping at the id.
        let latest = HistoryQuery { after: Some(15), before: Some(u64::MAX), limit: 3, ..Default::default() };
        assert_eq!(mids(&store.history("#r", latest).unwrap()), (vec![18, 19, 20], true));
        let oldest =
            HistoryQuery { after: Some(3), before: Some(10), limit: 2, oldest: true, ..Default::default() };
        assert_eq!(mids(&store.history("#r", oldest).unwrap()), (vec![4, 5], true));
    });
}

#[test]
fn notices_keep_their_kind() {
    each(|store| {
        fill(store, 10);
        let (page, _) = store.history("#r", q(None, None, 10)).unwrap();
        let notices: Vec<u64> = page.iter().filter(|m| m.notice).map(|m| m.mid).collect();
        assert_eq!(notices, vec![5, 10]);
    });
}

/// A batch mixing long runs of messages (several multi-row statement sizes) with room writes
/// keeps every field of every message, in order, and applies the room writes in place.
#[test]
fn mixed_batches_keep_every_message_and_room_write() {
    each(|s| {
        let mut batch = vec![Write::Room(room("#a"))];
        batch.extend((1..=150).map(|mid| Write::Message(msg("#a", mid, "alice", Some(&format!("c{mid}"))))));
        let mut topical = room("#a");
        topical.topic = "midway".into();
        batch.push(Write::Room(topical));
        batch.extend((151..=157).map(|mid| Write::Message(msg("#a", mid, "bob", None))));
        s.commit(&batch).unwrap();
        let (page, more) = s.history("#a", q(None, None, 500)).unwrap();
        assert!(!more);
        let want: Vec<StoredMessage> = (1..=157)
            .map(|mid| match mid {
                ..=150 => msg("#a", mid, "alice", Some(&format!("c{mid}"))),
                _ => msg("#a", mid, "bob", None),
            })
            .collect();
        assert_eq!(page, want);
        let loaded = s.load(10).unwrap();
        assert_eq!(loaded[0].record.topic, "midway");
        assert_eq!(loaded[0].last_mid, 157);
    });
}

/// A room is forgotten only while it has no stored message: a room with history stays.
#[test]
fn forgetting_a_room_removes_it_only_without_messages() {
    each(|s| {
        fill(s, 3);
        s.commit(&[Write::Room(room("#empty"))]).unwrap();
        s.commit(&[Write::ForgetRoom("#empty".into()), Write::ForgetRoom("#r".into())]).unwrap();
        let names: Vec<String> = s.load(0).unwrap().into_iter().map(|r| r.record.folded).collect();
        assert_eq!(names, ["#r"]);
        assert_eq!(mids(&s.history("#r", q(None, None, 10)).unwrap()).0, [1, 2, 3]);
    });
}

fn account(folded: &str, hash: &str) -> natter_core::store::AccountRecord {
    natter_core::store::AccountRecord {
        folded: folded.to_owned(),
        name: folded.to_uppercase(),
        hash: hash.to_owned(),
        created_ts: 1_700_000_000_000,
        last_login_ts: None,
        scram: None,
    }
}

#[test]
fn accounts_are_created_once_listed_in_order_changed_and_deleted() {
    each(|s| {
        assert_eq!(s.accounts().unwrap(), vec![]);
        assert_eq!(s.account("bob").unwrap(), None);
        assert!(s.create_account(&account("bob", "$argon2id$one")).unwrap());
        assert!(s.create_account(&account("alice", "$argon2id$two")).unwrap());
        // A second registration of a taken name changes nothing.
        assert!(!s.create_account(&account("bob", "$argon2id$three")).unwrap());
        assert_eq!(s.account("bob").unwrap(), Some(account("bob", "$argon2id$one")));
        let names: Vec<String> = s.accounts().unwrap().into_iter().map(|a| a.folded).collect();
        assert_eq!(names, ["alice", "bob"]);

        assert!(s.set_account_hash("bob", "$argon2id$new", None).unwrap());
        assert!(!s.set_account_hash("nobody", "$argon2id$new", None).unwrap());
        assert_eq!(s.account("bob").unwrap().unwrap().hash, "$argon2id$new");

        s.touch_account("bob", 1_700_000_000_123).unwrap();
        s.touch_account("nobody", 1).unwrap();
        assert_eq!(s.account("bob").unwrap().unwrap().last_login_ts, Some(1_700_000_000_123));
        assert_eq!(s.account("nobody").unwrap(), None);

        assert!(s.delete_account("bob").unwrap());
        assert!(!s.delete_account("bob").unwrap());
        assert_eq!(s.account("bob").unwrap(), None);
        // Deleted names may be registered again.
        assert!(s.create_account(&account("bob", "$argon2id$again")).unwrap());
    });
}

#[test]
fn accounts_keep_any_unicode_name_and_live_beside_rooms_and_messages() {
    each(|s| {
        let mut a = account("zoë", "$argon2id$x");
        a.name = "Zoë".into();
        assert!(s.create_account(&a).unwrap());
        s.commit(&[Write::Room(room("#a")), Write::Message(msg("#a", 1, "zoë", None))]).unwrap();
        assert_eq!(s.account("zoë").unwrap().unwrap().name, "Zoë");
        assert_eq!(s.load(10).unwrap().len(), 1);
    });
}

mod resume_tokens {
    use super::each;
    use natter_core::store::{AccountRecord, Store, TokenDigest, TokenRecord};

    const DAY: u64 = 24 * 60 * 60 * 1000;
    const T0: u64 = 1_800_000_000_000;

    fn account(store: &dyn Store, folded: &str) {
        let record = AccountRecord {
            folded: folded.into(),
            name: folded.to_uppercase(),
            hash: "$argon2id$test".into(),
            created_ts: T0,
            last_login_ts: None,
            scram: None,
        };
        assert!(store.create_account(&record).unwrap());
    }

    fn digest(n: u8) -> TokenDigest {
        TokenDigest([n; 32])
    }

    fn add(store: &dyn Store, folded: &str, n: u8, ts: u64) {
        let token =
            TokenRecord { digest: digest(n), folded: folded.into(), created_ts: ts, last_used_ts: ts };
        store.add_resume_token(&token, 10, ts.saturating_sub(90 * DAY)).unwrap();
    }

    fn owner(store: &dyn Store, n: u8, now: u64) -> Option<String> {
        store.use_resume_token(&digest(n), now, now.saturating_sub(90 * DAY)).unwrap().map(|a| a.folded)
    }

    #[test]
    fn a_token_logs_in_to_its_account_until_revoked() {
        each(|store| {
            account(store, "ann");
            account(store, "bob");
            add(store, "ann", 1, T0);
            add(store, "ann", 2, T0 + 1);
            add(store, "bob", 3, T0 + 2);
            assert_eq!(owner(store, 1, T0 + 10).as_deref(), Some("ann"));
            assert_eq!(owner(store, 3, T0 + 10).as_deref(), Some("bob"));
            assert_eq!(owner(store, 9, T0 + 10), None, "never issued");
            assert!(store.revoke_resume_token(&digest(1)).unwrap());
            assert!(!store.revoke_resume_token(&digest(1)).unwrap());
            assert_eq!(owner(store, 1, T0 + 11), None);
            assert_eq!(owner(store, 2, T0 + 11).as_deref(), Some("ann"));
            assert_eq!(store.revoke_resume_tokens("ann").unwrap(), 1);
            assert_eq!(owner(store, 2, T0 + 12), None);
            // Deleting an account deletes its tokens; a new account of the name gets none.
            assert!(store.delete_account("bob").unwrap());
            account(store, "bob");
            assert_eq!(owner(store, 3, T0 + 13), None);
            assert_eq!(store.revoke_resume_tokens("bob").unwrap(), 0);
        });
    }

    #[test]
    fn an_account_keeps_its_ten_most_recently_used_tokens() {
        each(|store| {
            account(store, "ann");
            for n in 0..10 {
                add(store, "ann", n, T0 + u64::from(n));
            }
            // Using the oldest makes it the most recent: the second oldest goes next.
            assert_eq!(owner(store, 0, T0 + 100).as_deref(), Some("ann"));
            add(store, "ann", 10, T0 + 200);
            assert_eq!(owner(store, 1, T0 + 300), None, "dropped");
            for n in [0, 2, 3, 4, 5, 6, 7, 8, 9, 10] {
                assert_eq!(owner(store, n, T0 + 300).as_deref(), Some("ann"), "token {n}");
            }
        });
    }

    #[test]
    fn a_token_unused_for_ninety_days_expires() {
        each(|store| {
            account(store, "ann");
            add(store, "ann", 1, T0);
            add(store, "ann", 2, T0);
            // Used on day 89: good for another 90 days from then.
            assert_eq!(owner(store, 1, T0 + 89 * DAY).as_deref(), Some("ann"));
            assert_eq!(owner(store, 2, T0 + 90 * DAY + 1), None, "expired");
            assert!(!store.revoke_resume_token(&digest(2)).unwrap(), "and deleted");
            assert_eq!(owner(store, 1, T0 + 178 * DAY).as_deref(), Some("ann"));
            // A new token sweeps every expired one away.
            add(store, "ann", 3, T0 + 400 * DAY);
            assert!(!store.revoke_resume_token(&digest(1)).unwrap(), "swept");
        });
    }
}

#[test]
fn scram_credentials_are_set_with_the_password_or_alone() {
    each(|s| {
        assert!(s.create_account(&account("bob", "$argon2id$one")).unwrap());
        assert_eq!(s.account("bob").unwrap().unwrap().scram, None);
        assert!(s.set_account_scram("bob", "SCRAM-SHA-256$4096:c2FsdA==$a:b").unwrap());
        assert!(!s.set_account_scram("nobody", "SCRAM-SHA-256$4096:c2FsdA==$a:b").unwrap());
        assert_eq!(
            s.account("bob").unwrap().unwrap().scram.as_deref(),
            Some("SCRAM-SHA-256$4096:c2FsdA==$a:b")
        );
        // A new password replaces both secrets; none clears the old SCRAM credential.
        assert!(s.set_account_hash("bob", "$argon2id$two", Some("SCRAM-SHA-256$4096:eA==$c:d")).unwrap());
        assert_eq!(s.account("bob").unwrap().unwrap().scram.as_deref(), Some("SCRAM-SHA-256$4096:eA==$c:d"));
        assert!(s.set_account_hash("bob", "$argon2id$three", None).unwrap());
        assert_eq!(s.account("bob").unwrap().unwrap().scram, None);
        let mut with = account("carol", "$argon2id$c");
        with.scram = Some("SCRAM-SHA-256$1:eQ==$e:f".into());
        assert!(s.create_account(&with).unwrap());
        assert_eq!(s.account("carol").unwrap().unwrap(), with);
    });
}

#[test]
fn certificates_belong_to_one_account_and_go_with_it() {
    each(|s| {
        assert!(s.create_account(&account("bob", "$argon2id$one")).unwrap());
        assert!(s.create_account(&account("ann", "$argon2id$two")).unwrap());
        let (fp1, fp2) = ("aa".repeat(32), "bb".repeat(32));
        assert!(s.add_certificate("bob", &fp1, 2).unwrap());
        assert!(s.add_certificate("bob", &fp2, 1).unwrap());
        // One fingerprint, one account; no certificate for an account that does not exist.
        assert!(!s.add_certificate("ann", &fp1, 3).unwrap());
        assert!(!s.add_certificate("bob", &fp1, 3).unwrap());
        assert!(!s.add_certificate("nobody", &"cc".repeat(32), 3).unwrap());
        assert_eq!(s.certificates("bob").unwrap(), [fp2.clone(), fp1.clone()]);
        assert_eq!(s.certificates("ann").unwrap(), Vec::<String>::new());
        assert_eq!(s.account_by_certificate(&fp1).unwrap().map(|a| a.folded), Some("bob".into()));
        assert_eq!(s.account_by_certificate(&"cc".repeat(32)).unwrap(), None);
        assert!(!s.remove_certificate("ann", &fp1).unwrap());
        assert!(s.remove_certificate("bob", &fp1).unwrap());
        assert_eq!(s.account_by_certificate(&fp1).unwrap(), None);
        // Deleting the account takes its certificates: a new account of that name has none.
        assert!(s.delete_account("bob").unwrap());
        assert_eq!(s.account_by_certificate(&fp2).unwrap(), None);
        assert!(s.create_account(&account("bob", "$argon2id$again")).unwrap());
        assert_eq!(s.certificates("bob").unwrap(), Vec::<String>::new());
    });
}

/// Private message `mid` from party `from` to party `to`, sent at `t(mid)`.
fn pm(mid: u64, from: &str, to: &str, undelivered: bool) -> StoredPrivate {
    StoredPrivate {
        mid,
        ts: t(mid),
        from_key: from.to_owned(),
        nick: from.trim_start_matches('~').to_uppercase(),
        to_key: to.to_owned(),
        to_nick: to.trim_start_matches('~').to_uppercase(),
        text: format!("private {mid} ünïcode"),
        action: mid.is_multiple_of(3),
        notice: mid.is_multiple_of(4),
        undelivered,
    }
}

fn pmids(page: &(Vec<StoredPrivate>, bool)) -> (Vec<u64>, bool) {
    (page.0.iter().map(|m| m.mid).collect(), page.1)
}

#[test]
fn private_messages_round_trip_and_page_per_conversation_both_ways() {
    each(|s| {
        assert_eq!(s.last_private_mid().unwrap(), 0);
        assert_eq!(s.private_history("~ann", "~bob", q(None, None, 10)).unwrap(), (vec![], false));
        // ann and bob talk both ways; carol (a guest) talks to ann in between.
        let mut batch = Vec::new();
        for mid in 1..=9 {
            let m = match mid % 3 {
                0 => pm(mid, "carol", "~ann", false),
                1 => pm(mid, "~ann", "~bob", false),
                _ => pm(mid, "~bob", "~ann", false),
            };
            batch.push(Write::Private(m));
        }
        s.commit(&batch).unwrap();
        assert_eq!(s.last_private_mid().unwrap(), 9);
        // The same conversation whichever party asks.
        let all = s.private_history("~bob", "~ann", q(None, None, 100)).unwrap();
        assert_eq!(pmids(&all), (vec![1, 2, 4, 5, 7, 8], false));
        assert_eq!(all.0[0], pm(1, "~ann", "~bob", false));
        assert_eq!(s.private_history("~ann", "~bob", q(None, None, 100)).unwrap(), all);
        assert_eq!(
            pmids(&s.private_history("~ann", "carol", q(None, None, 100)).unwrap()),
            (vec![3, 6, 9], false)
        );
        // Nobody else's: bob never talked to carol.
        assert_eq!(pmids(&s.private_history("~bob", "carol", q(None, None, 100)).unwrap()), (vec![], false));
        // Paging like a room's.
        assert_eq!(pmids(&s.private_history("~ann", "~bob", q(None, None, 2)).unwrap()), (vec![7, 8], true));
        assert_eq!(
            pmids(&s.private_history("~ann", "~bob", q(Some(7), None, 2)).unwrap()),
            (vec![4, 5], true)
        );
        assert_eq!(
            pmids(&s.private_history("~ann", "~bob", q(Some(4), None, 2)).unwrap()),
            (vec![1, 2], false)
        );
        assert_eq!(
            pmids(&s.private_history("~ann", "~bob", q(None, Some(2), 2)).unwrap()),
            (vec![4, 5], true)
        );
        let by_time =
            HistoryQuery { after_ts: Some(t(4)), before_ts: Some(t(8)), limit: 10, ..Default::default() };
        assert_eq!(pmids(&s.private_history("~ann", "~bob", by_time).unwrap()), (vec![5, 7], false));
        // Bounds outside what SQLite stores answer nothing, not an error.
        assert_eq!(
            pmids(&s.private_history("~ann", "~bob", q(None, Some(u64::MAX), 2)).unwrap()),
            (vec![], false)
        );
    });
}

#[test]
fn mailboxes_hold_undelivered_messages_until_marked_delivered() {
    each(|s| {
        assert_eq!(s.mailboxes().unwrap(), vec![]);
        s.commit(&[
            Write::Private(pm(1, "carol", "~bob", true)),
            Write::Private(pm(2, "~ann", "~bob", true)),
            Write::Private(pm(3, "~ann", "~dan", true)),
            Write::Private(pm(4, "~ann", "~bob", false)),
            Write::Private(pm(5, "~ann", "~bob", true)),
        ])
        .unwrap();
        let bytes = |mids: &[u64]| mids.iter().map(|&m| pm(m, "", "", true).text.len() as u64).sum::<u64>();
        assert_eq!(
            s.mailboxes().unwrap(),
            vec![
                MailboxSize { to_key: "~bob".into(), count: 3, bytes: bytes(&[1, 2, 5]) },
                MailboxSize { to_key: "~dan".into(), count: 1, bytes: bytes(&[3]) },
            ]
        );
        let waiting: Vec<u64> = s.mailbox("~bob", 10).unwrap().iter().map(|m| m.mid).collect();
        assert_eq!(waiting, [1, 2, 5]);
        assert_eq!(s.mailbox("~bob", 2).unwrap().iter().map(|m| m.mid).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(s.mailbox("~bob", 2).unwrap()[0], pm(1, "carol", "~bob", true));
        // Delivered up to 2: only 5 still waits; dan's mailbox is untouched.
        s.commit(&[Write::Delivered { to_key: "~bob".into(), upto: 2 }]).unwrap();
        assert_eq!(s.mailbox("~bob", 10).unwrap().iter().map(|m| m.mid).collect::<Vec<_>>(), [5]);
        assert_eq!(s.mailbox("~dan", 10).unwrap().len(), 1);
        s.commit(&[Write::Delivered { to_key: "~bob".into(), upto: u64::MAX }]).unwrap();
        assert_eq!(s.mailbox("~bob", 10).unwrap(), vec![]);
        assert_eq!(s.mailboxes().unwrap().len(), 1);
        // Delivered messages stay in the conversation's history, no longer marked.
        let kept = s.private_history("~ann", "~bob", q(None, None, 10)).unwrap().0;
        assert_eq!(
            kept.iter().map(|m| (m.mid, m.undelivered)).collect::<Vec<_>>(),
            [(2, false), (4, false), (5, false)]
        );
    });
}

#[test]
fn prune_deletes_old_messages_in_bounded_batches() {
    each(|s| {
        // Rooms #a (1..=6) and #b (1..=3), private 1..=5; cut-off: everything before t(4).
        let mut batch = vec![Write::Room(room("#a")), Write::Room(room("#b"))];
        batch.extend((1..=6).map(|mid| Write::Message(msg("#a", mid, "alice", None))));
        batch.extend((1..=3).map(|mid| Write::Message(msg("#b", mid, "bob", None))));
        batch.extend((1..=5).map(|mid| Write::Private(pm(mid, "~ann", "~bob", mid == 5))));
        s.commit(&batch).unwrap();
        let cut = |mid: u64| msg("#a", mid, "x", None).ts;
        // #a 1..=3 and #b 1..=3 by their times (msg: ts = base + 10 mid) and private ones by
        // theirs (t(mid)): pick a cut-off that takes #a 1..=3, all of #b, private 1..=3.
        let before = cut(4);
        assert!(t(3) < before && t(4) >= before, "the test's times interleave as planned");
        let mut total = 0;
        let mut batches = 0;
        loop {
            let n = s.prune(before, 4).unwrap();
            assert!(n <= 4, "a batch deletes at most what it is allowed");
            total += n;
            batches += 1;
            if n < 4 {
                break;
            }
        }
        assert_eq!((total, batches), (9, 3));
        assert_eq!(s.prune(before, 4).unwrap(), 0, "nothing old is left");
        assert_eq!(mids(&s.history("#a", q(None, None, 10)).unwrap()), (vec![4, 5, 6], false));
        assert_eq!(mids(&s.history("#b", q(None, None, 10)).unwrap()), (vec![], false));
        assert_eq!(
            pmids(&s.private_history("~ann", "~bob", q(None, None, 10)).unwrap()),
            (vec![4, 5], false)
        );
        // Rooms stay (their settings are not messages); the private sequence goes on.
        assert_eq!(s.load(10).unwrap().len(), 2);
        assert_eq!(s.last_private_mid().unwrap(), 5);
        assert_eq!(s.mailbox("~bob", 10).unwrap().len(), 1);
    });
}

#[test]
fn deleting_an_account_deletes_its_private_messages() {
    each(|s| {
        assert!(s.create_account(&account("bob", "$argon2id$x")).unwrap());
        s.commit(&[
            Write::Private(pm(1, "~ann", "~bob", false)),
            Write::Private(pm(2, "~bob", "carol", false)),
            Write::Private(pm(3, "carol", "~bob", true)),
            Write::Private(pm(4, "~ann", "carol", false)),
        ])
        .unwrap();
        assert!(s.delete_account("bob").unwrap());
        assert_eq!(s.private_history("~ann", "~bob", q(None, None, 10)).unwrap(), (vec![], false));
        assert_eq!(s.private_history("~bob", "carol", q(None, None, 10)).unwrap(), (vec![], false));
        assert_eq!(s.mailbox("~bob", 10).unwrap(), vec![]);
        assert_eq!(s.mailboxes().unwrap(), vec![]);
        // Others' conversations stay.
        assert_eq!(pmids(&s.private_history("~ann", "carol", q(None, None, 10)).unwrap()), (vec![4], false));
    });
}

#[test]
fn a_partys_conversations_are_listed_by_their_latest_message_in_a_time_range() {
    each(|s| {
        s.commit(&[
            Write::Private(pm(1, "~ann", "~bob", false)),
            Write::Private(pm(2, "carol", "~ann", false)),
            Write::Private(pm(3, "~bob", "~ann", false)),
            Write::Private(pm(4, "~bob", "carol", false)),
            Write::Private(pm(5, "~ann", "dan", true)),
        ])
        .unwrap();
        let target = |other: &str, nick: &str, mid: u64| PrivateTarget {
            other_key: other.into(),
            nick: nick.into(),
            ts: t(mid),
        };
        // ann's three conversations, by their latest message; the nick as that message had it.
        assert_eq!(
            s.private_targets("~ann", 0, u64::MAX, 10).unwrap(),
            vec![target("carol", "CAROL", 2), target("~bob", "BOB", 3), target("dan", "DAN", 5)]
        );
        // A time range (exclusive) and a limit (the oldest first).
        assert_eq!(
            s.private_targets("~ann", t(1), t(5), 10).unwrap(),
            vec![target("carol", "CAROL", 2), target("~bob", "BOB", 3)]
        );
        assert_eq!(s.private_targets("~ann", 0, u64::MAX, 1).unwrap(), vec![target("carol", "CAROL", 2)]);
        assert_eq!(s.private_targets("~nobody", 0, u64::MAX, 10).unwrap(), vec![]);
        assert_eq!(s.private_targets("~ann", u64::MAX, 0, 10).unwrap(), vec![]);
    });
}

/// The methods a cluster needs ([`Store::commit_numbered`], nick claims, heartbeats), against
/// the stores several nodes can share: `MemoryStore` (the reference; two "nodes" are two
/// handles on one store) and `PostgresStore` (two stores opened on one database, as two nodes
/// would).
mod cluster {
    use super::{msg, pm, q, room};
    use natter_core::memory_store::MemoryStore;
    use natter_core::store::{Store, Write};
    use natter_store::PostgresStore;
    use std::sync::{Arc, Barrier};

    /// Two handles on one shared store, and what keeps it alive.
    struct Shared {
        name: &'static str,
        nodes: [Arc<dyn Store>; 2],
        _pg: Option<Arc<natter_store::testing::Postgres>>,
    }

    fn shared_subjects() -> Vec<Shared> {
        let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut subjects = vec![Shared { name: "memory", nodes: [memory.clone(), memory], _pg: None }];
        if let Some(pg) = natter_store::testing::shared() {
            let url = pg.database();
            let open = || -> Arc<dyn Store> { Arc::new(PostgresStore::open(&url).unwrap()) };
            subjects.push(Shared { name: "postgres", nodes: [open(), open()], _pg: Some(pg) });
        }
        subjects
    }

    fn each_shared(check: impl Fn(&[Arc<dyn Store>; 2])) {
        for s in shared_subjects() {
            eprintln!("-- {}", s.name);
            check(&s.nodes);
        }
    }

    #[test]
    fn numbered_commits_are_gap_free_per_room_keep_given_ids_and_count_only_takes_one() {
        each_shared(|[s, _]| {
            assert_eq!(s.commit_numbered(&[]).unwrap(), Vec::<u64>::new());
            let ids = s
                .commit_numbered(&[
                    Write::Room(room("#a")),
                    Write::Message(msg("#a", 0, "ann", None)),
                    Write::Message(msg("#a", 0, "bob", Some("c1"))),
                    Write::Message(msg("#b", 0, "ann", None)),
                    Write::CountOnly("#a".into()),
                    Write::Private(pm(0, "~ann", "~bob", true)),
                    Write::Private(pm(0, "~bob", "~ann", false)),
                    Write::Message(msg("#a", 10, "ann", None)),
                    Write::Message(msg("#a", 0, "ann", None)),
                    Write::Delivered { to_key: "~bob".into(), upto: 1 },
                ])
                .unwrap();
            assert_eq!(ids, [1, 2, 1, 3, 1, 2, 10, 11]);
            // What is stored carries the ids given; the count-only id holds nothing.
            let (page, more) = s.history("#a", q(None, None, 10)).unwrap();
            assert!(!more);
            assert_eq!(page.iter().map(|m| m.mid).collect::<Vec<_>>(), [1, 2, 10, 11]);
            assert_eq!(page[1].cid.as_deref(), Some("c1"));
            assert_eq!(page[1].text, msg("#a", 0, "bob", None).text, "stored as given, numbered");
            // A room with no room record is numbered all the same (and not loaded).
            assert_eq!(s.commit_numbered(&[Write::Message(msg("#b", 0, "bob", None))]).unwrap(), [2]);
            assert_eq!(
                s.history("#b", q(None, None, 10)).unwrap().0.iter().map(|m| m.mid).collect::<Vec<_>>(),
                [1, 2]
            );
            let loaded = s.load(10).unwrap();
            assert_eq!(loaded.len(), 1);
            assert_eq!(loaded[0].last_mid, 11);
            // A count-only id at the end of a room counts as its last id.
            assert_eq!(s.commit_numbered(&[Write::CountOnly("#a".into())]).unwrap(), [12]);
            assert_eq!(s.load(0).unwrap()[0].last_mid, 12);
            // The private sequence is one, across conversations; a given id moves it.
            assert_eq!(s.last_private_mid().unwrap(), 2);
            let ids = s
                .commit_numbered(&[
                    Write::Private(pm(0, "carol", "~dan", true)),
                    Write::Private(pm(7, "~ann", "~bob", false)),
                    Write::Private(pm(0, "~ann", "~bob", false)),
                ])
                .unwrap();
            assert_eq!(ids, [3, 7, 8]);
            assert_eq!(s.last_private_mid().unwrap(), 8);
            let mailbox: Vec<(u64, bool)> =
                s.mailbox("~bob", 10).unwrap().iter().map(|m| (m.mid, m.undelivered)).collect();
            assert_eq!(mailbox, Vec::<(u64, bool)>::new(), "delivered up to 1 in the first batch");
            assert_eq!(s.mailbox("~dan", 10).unwrap().iter().map(|m| m.mid).collect::<Vec<_>>(), [3]);
            // Writes without ids give none.
            assert_eq!(
                s.commit_numbered(&[Write::Room(room("#c")), Write::ForgetRoom("#c".into())]).unwrap(),
                Vec::<u64>::new()
            );
        });
    }

    /// Two nodes commit to one room at the same time: every id is used once, none is skipped,
    /// and each node's ids increase.
    #[test]
    fn two_nodes_committing_to_one_room_get_distinct_gap_free_increasing_ids() {
        const BATCHES: usize = 40;
        each_shared(|nodes| {
            nodes[0].commit(&[Write::Room(room("#r"))]).unwrap();
            let start = Arc::new(Barrier::new(2));
            let threads: Vec<_> = nodes
                .iter()
                .enumerate()
                .map(|(n, store)| {
                    let (store, start) = (store.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        let mut mine = Vec::new();
                        for b in 0..BATCHES {
                            // One to three messages, sometimes with another room in between
                            // (locked in a different order than the batch mentions them).
                            let mut batch = vec![Write::Message(msg("#z", 0, "x", None))];
                            for _ in 0..1 + (b + n) % 3 {
                                batch.push(Write::Message(msg(
                                    "#r",
                                    0,
                                    if n == 0 { "ann" } else { "bob" },
                                    None,
                                )));
                            }
                            let ids = store.commit_numbered(&batch).unwrap();
                            mine.extend_from_slice(&ids[1..]);
                        }
                        mine
                    })
                })
                .collect();
            let mut all = Vec::new();
            for thread in threads {
                let mine = thread.join().unwrap();
                assert!(mine.windows(2).all(|w| w[0] < w[1]), "a node's ids increase: {mine:?}");
                all.extend(mine);
            }
            all.sort_unstable();
            let n = all.len() as u64;
            assert_eq!(all, (1..=n).collect::<Vec<_>>(), "distinct and gap-free");
            let (page, _) = nodes[1].history("#r", q(None, None, u32::MAX)).unwrap();
            assert_eq!(page.iter().map(|m| m.mid).collect::<Vec<_>>(), all);
            assert_eq!(
                nodes[0].load(0).unwrap().iter().find(|r| r.record.folded == "#r").unwrap().last_mid,
                n
            );
        });
    }

    /// Two nodes claim the same nicknames at the same moment: exactly one wins each.
    #[test]
    fn a_nick_claim_race_has_exactly_one_winner_and_only_the_holder_releases() {
        const NICKS: usize = 30;
        each_shared(|nodes| {
            let start = Arc::new(Barrier::new(2));
            let threads: Vec<_> = nodes
                .iter()
                .enumerate()
                .map(|(n, store)| {
                    let (store, start) = (store.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        (0..NICKS)
                            .map(|i| store.claim_nick(&format!("nick{i}"), &format!("node{n}"), 7).unwrap())
                            .collect::<Vec<bool>>()
                    })
                })
                .collect();
            let won: Vec<Vec<bool>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            for (i, (first, second)) in won[0].iter().zip(&won[1]).enumerate() {
                assert!(first != second, "nick{i}: exactly one node wins ({first} {second})");
            }
            let [a, b] = nodes;
            // Claiming again is idempotent for the holder; another session of the same node
            // is someone else.
            let holder = if won[0][0] { "node0" } else { "node1" };
            let other = if won[0][0] { "node1" } else { "node0" };
            assert!(a.claim_nick("nick0", holder, 7).unwrap());
            assert!(!b.claim_nick("nick0", holder, 8).unwrap());
            assert!(!b.claim_nick("nick0", other, 7).unwrap());
            // Only the holder's release frees it.
            b.release_nick("nick0", other, 7).unwrap();
            b.release_nick("nick0", holder, 8).unwrap();
            assert!(!b.claim_nick("nick0", other, 7).unwrap());
            a.release_nick("nick0", holder, 7).unwrap();
            assert!(b.claim_nick("nick0", other, 7).unwrap());
            // Releasing what nobody holds is nothing.
            a.release_nick("never-claimed", holder, 1).unwrap();
        });
    }

    #[test]
    fn silent_nodes_are_found_by_their_last_heartbeat_and_forgetting_one_frees_its_nicks() {
        each_shared(|[a, b]| {
            assert_eq!(a.silent_nodes(u64::MAX).unwrap(), Vec::<String>::new());
            a.heartbeat("node-a", 1_000).unwrap();
            b.heartbeat("node-b", 2_000).unwrap();
            assert_eq!(a.silent_nodes(1_500).unwrap(), ["node-a"]);
            assert_eq!(b.silent_nodes(1_000).unwrap(), Vec::<String>::new(), "exclusive");
            assert_eq!(b.silent_nodes(5_000).unwrap(), ["node-a", "node-b"]);
            a.heartbeat("node-a", 3_000).unwrap();
            assert_eq!(b.silent_nodes(2_500).unwrap(), ["node-b"]);
            // node-b falls silent: node-a forgets it, and its nicknames are free.
            assert!(b.claim_nick("bob", "node-b", 1).unwrap());
            assert!(b.claim_nick("bea", "node-b", 2).unwrap());
            assert!(a.claim_nick("ann", "node-a", 1).unwrap());
            assert!(!a.claim_nick("bob", "node-a", 3).unwrap());
            a.forget_node("node-b").unwrap();
            assert_eq!(a.silent_nodes(u64::MAX).unwrap(), ["node-a"]);
            assert!(a.claim_nick("bob", "node-a", 3).unwrap());
            assert!(a.claim_nick("bea", "node-a", 4).unwrap());
            // node-a's own claims were not touched; forgetting an unknown node is nothing.
            assert!(!b.claim_nick("ann", "node-b", 9).unwrap());
            b.forget_node("node-x").unwrap();
        });
    }
}
