//! The hub without any network: sessions are outboxes, commands go straight in.

mod common;

use natter_core::hub::{self, SessionId};
use natter_core::memory_store::MemoryStore;
use natter_core::refusal::{RoomAction, Throttled};
use natter_core::{
    Command, Event, HubConfig, HubHandle, NextBatch, Outbox, Piece, Refusal, Registration, SessionKind,
    Target,
};
use std::sync::Arc;
use std::time::Duration;

struct Peer {
    id: SessionId,
    outbox: Outbox,
}

impl Peer {
    /// Events received so far (waits briefly for the hub's next batch).
    async fn events(&self) -> Vec<Event> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_millis(100), self.outbox.next_batch(&mut buf)).await {
                Ok(NextBatch::Ready) => out.extend(
                    buf.drain(..)
                        .flat_map(|p| p.deliveries().iter().map(|d| d.event.clone()).collect::<Vec<_>>()),
                ),
                Ok(NextBatch::Closed(reason)) => {
                    out.push(Event::Bye { reason: reason.0 });
                    return out;
                }
                Err(_) => return out,
            }
        }
    }
}

async fn join(hub: &HubHandle, nick: &str, capacity: usize) -> Peer {
    let outbox = Outbox::new(capacity);
    let registration = common::registration(nick, &outbox);
    let id = hub.register(registration).await.unwrap().unwrap().session;
    Peer { id, outbox }
}

fn start() -> HubHandle {
    hub::start(HubConfig::default(), Arc::new(MemoryStore::new())).unwrap()
}

fn say(room: &str, text: &str, cid: Option<&str>) -> Command {
    Command::Say {
        target: Target::Room(room.into()),
        text: text.into(),
        action: false,
        notice: false,
        meta: None,
        cid: cid.map(Into::into),
        req: None,
    }
}

fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.text.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn room_messages_reach_others_and_the_sender_gets_an_ack() {
    let hub = start();
    let ann = join(&hub, "ann", 64).await;
    let bob = join(&hub, "bob", 64).await;
    ann.events().await;
    bob.events().await;
    hub.command(ann.id, say("#lobby", "hi", Some("c1"))).await.unwrap();
    assert_eq!(texts(&bob.events().await), ["hi"]);
    let acks: Vec<_> = ann.events().await;
    assert!(matches!(&acks[..], [Event::Ack { duplicate: false, message, .. }] if message.mid == Some(1)));
    // The same client id again: acknowledged as a duplicate, not delivered.
    hub.command(ann.id, say("#lobby", "hi", Some("c1"))).await.unwrap();
    assert!(texts(&bob.events().await).is_empty());
    assert!(matches!(&ann.events().await[..], [Event::Ack { duplicate: true, .. }]));
}

#[tokio::test]
async fn nicks_are_unique_ignoring_case() {
    let hub = start();
    let _ann = join(&hub, "Ann", 64).await;
    let refused = hub
        .register(Registration { kind: SessionKind::Text, ..common::registration("aNN", &Outbox::new(8)) })
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(refused.0, natter_core::Refusal::NickInUse { ref nick } if &**nick == "aNN"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn ignore_mode_hides_room_messages_but_not_private_ones() {
    let hub = start();
    let ann = join(&hub, "ann", 64).await;
    let bob = join(&hub, "bob", 64).await;
    hub.command(ann.id, Command::IgnoreAll { on: None, req: None }).await.unwrap();
    ann.events().await;
    hub.command(bob.id, say("#lobby", "room", None)).await.unwrap();
    hub.command(bob.id, Command::say(Target::Nick("ANN".into()), "pm".into())).await.unwrap();
    assert_eq!(texts(&ann.events().await), ["pm"]);
}

#[tokio::test]
async fn an_overflowing_outbox_disconnects_only_that_session() {
    let hub = start();
    let slow = join(&hub, "slow", 4).await;
    let fast = join(&hub, "fast", 1024).await;
    let sender = join(&hub, "sender", 1024).await;
    for i in 0..20 {
        hub.command(sender.id, say("#lobby", &i.to_string(), None)).await.unwrap();
    }
    let fast_events = fast.events().await;
    assert_eq!(texts(&fast_events).len(), 20);
    assert!(fast_events.iter().any(|e| matches!(e, Event::Quit { nick, reason: Some(r), .. } if &**nick == "slow" && r.contains("too slow"))));
    assert!(matches!(slow.events().await.last(), Some(Event::Bye { .. })));
}

#[tokio::test]
async fn history_is_replayed_on_join() {
    let hub =
        hub::start(HubConfig { history: 2, ..HubConfig::default() }, Arc::new(MemoryStore::new())).unwrap();
    let ann = join(&hub, "ann", 64).await;
    for t in ["a", "b", "c"] {
        hub.command(ann.id, say("#lobby", t, None)).await.unwrap();
    }
    ann.events().await;
    let bob = join(&hub, "bob", 64).await;
    let events = bob.events().await;
    let history = events.iter().find_map(|e| match e {
        Event::Joined { history, .. } => Some(history.iter().map(|m| m.text.to_string()).collect::<Vec<_>>()),
        _ => None,
    });
    assert_eq!(history.unwrap(), ["b", "c"]);
}

fn has_error(events: &[Event], wanted: impl Fn(&Refusal) -> bool) -> bool {
    events.iter().any(|e| matches!(e, Event::Error { refusal, .. } if wanted(refusal)))
}

#[tokio::test]
async fn moderation_is_enforced_by_the_hub() {
    use natter_core::command::RoomChange;
    let hub = start();
    let ann = join(&hub, "ann", 256).await;
    let bob = join(&hub, "bob", 256).await;
    let join_room = |room: &str| Command::Join { room: room.into(), key: None, req: None };
    let mode = |changes| Command::Mode { room: "#m".into(), changes, req: None };
    hub.command(ann.id, join_room("#m")).await.unwrap();
    hub.command(bob.id, join_room("#m")).await.unwrap();
    ann.events().await;
    bob.events().await;

    // Only the creator is an operator.
    hub.command(bob.id, mode(vec![RoomChange::Moderated(true)])).await.unwrap();
    assert!(has_error(&bob.events().await, |r| matches!(r, Refusal::NotRoomOperator { .. })));
    hub.command(ann.id, mode(vec![RoomChange::Moderated(true)])).await.unwrap();
    assert!(matches!(&bob.events().await[..], [Event::RoomChanged { .. }]));
    hub.command(bob.id, say("#m", "hi", None)).await.unwrap();
    assert!(has_error(&bob.events().await, |r| matches!(r, Refusal::CannotSend { .. })));
    assert!(texts(&ann.events().await).is_empty());
    hub.command(ann.id, mode(vec![RoomChange::Voice { nick: "bob".into(), on: true }])).await.unwrap();
    hub.command(bob.id, say("#m", "voiced", None)).await.unwrap();
    assert_eq!(texts(&ann.events().await), ["voiced"]);

    // A ban follows a nick change; the banned member cannot speak once unvoiced.
    hub.command(
        ann.id,
        mode(vec![RoomChange::Moderated(false), RoomChange::Voice { nick: "bob".into(), on: false }]),
    )
    .await
    .unwrap();
    hub.command(ann.id, mode(vec![RoomChange::Ban { mask: "rob!*@*".into(), on: true }])).await.unwrap();
    hub.command(bob.id, say("#m", "still here", None)).await.unwrap();
    assert_eq!(texts(&ann.events().await), ["still here"]);
    hub.command(bob.id, Command::Nick { nick: "rob".into(), req: None }).await.unwrap();
    hub.command(bob.id, say("#m", "banned now", None)).await.unwrap();
    assert!(has_error(&bob.events().await, |r| matches!(r, Refusal::CannotSend { .. })));

    // Kick removes; the ban keeps them out; an invitation lets them back in once.
    hub.command(ann.id, Command::Kick { room: "#m".into(), nick: "rob".into(), reason: None, req: None })
        .await
        .unwrap();
    assert!(bob.events().await.iter().any(|e| matches!(e, Event::Kick { nick, .. } if &**nick == "rob")));
    hub.command(bob.id, join_room("#m")).await.unwrap();
    assert!(has_error(&bob.events().await, |r| matches!(r, Refusal::Banned { .. })));
    hub.command(ann.id, Command::Invite { room: "#m".into(), nick: "rob".into(), req: None }).await.unwrap();
    hub.command(bob.id, join_room("#m")).await.unwrap();
    assert!(bob.events().await.iter().any(|e| matches!(e, Event::Joined { .. })));
}

/// Room traffic shares one log per batch of commands; a session that gets only a little of a
/// busy batch gets a copy of its part instead, so that a slow reader never keeps alive much
/// more than what its own outbox holds.
#[tokio::test]
async fn a_small_share_of_a_busy_batch_does_not_pin_the_whole_log() {
    let hub = start();
    let ann = join(&hub, "ann", 4096).await;
    let bob = join(&hub, "bob", 4096).await;
    let quiet = join(&hub, "quiet", 4096).await;
    for peer in [&ann, &bob] {
        hub.command(peer.id, Command::Join { room: "#busy".into(), key: None, req: None }).await.unwrap();
    }
    for peer in [&ann, &bob, &quiet] {
        peer.events().await;
    }
    // The hub takes up to 256 commands at a time: 100 messages in #busy (bob gets them), one
    // in #lobby (everyone gets it), 199 more in #busy, so the first batch is busy around it.
    for i in 0..300 {
        if i == 100 {
            assert!(hub.try_command(ann.id, say("#lobby", "hello all", None)));
        }
        assert!(hub.try_command(ann.id, say("#busy", &format!("m{i}"), None)));
    }
    let delivered = |ps: &[Piece]| ps.iter().map(Piece::len).sum::<usize>();
    // Wait for the deliveries themselves (as many as expected, or more), not for a while.
    let take = |peer: &Peer, want: usize| {
        let outbox = peer.outbox.clone();
        async move {
            let mut got: Vec<Piece> = Vec::new();
            let filled = tokio::time::timeout(Duration::from_secs(5), async {
                while delivered(&got) < want {
                    let mut buf = Vec::new();
                    match outbox.next_batch(&mut buf).await {
                        NextBatch::Ready => got.extend(buf),
                        NextBatch::Closed(reason) => panic!("outbox closed: {reason:?}"),
                    }
                }
            })
            .await;
            assert!(filled.is_ok(), "only {} of {want} deliveries arrived", delivered(&got));
            got
        }
    };
    let got_bob = take(&bob, 301).await;
    let got_quiet = take(&quiet, 1).await;
    assert_eq!(delivered(&got_bob), 301);
    assert_eq!(delivered(&got_quiet), 1);
    assert!(got_bob.iter().any(|p| p.pinned() > 64), "bob shares the batch's log");
    assert!(got_quiet.iter().all(|p| p.pinned() == p.len()), "quiet keeps only its own delivery");
}

/// `ann` and `bob` logged in, both in `#rust` (`ann` created it: its operator), their joining
/// events read.
async fn ann_and_bob_in_rust(hub: &HubHandle) -> (Peer, Peer) {
    let ann = join(hub, "ann", 64).await;
    let bob = join(hub, "bob", 64).await;
    for peer in [&ann, &bob] {
        hub.command(peer.id, Command::Join { room: "#rust".into(), key: None, req: None }).await.unwrap();
    }
    ann.events().await;
    bob.events().await;
    (ann, bob)
}

/// Room settings are an operator's part: a plain member is refused with the room named, a
/// server operator (who gave an operator password) may, like the room's own operator.
#[tokio::test]
async fn room_settings_need_a_room_or_server_operator() {
    let config = HubConfig { operators: vec![("admin".into(), "s3cret".into())], ..HubConfig::default() };
    let hub = hub::start(config, Arc::new(MemoryStore::new())).unwrap();
    let (_ann, bob) = ann_and_bob_in_rust(&hub).await;
    let ephemeral = || Command::SetEphemeral { room: "#rust".into(), on: true, req: None };
    hub.command(bob.id, ephemeral()).await.unwrap();
    let refused = bob.events().await;
    assert!(
        matches!(&refused[..], [Event::Error { refusal: Refusal::NotRoomOperator { room, action: RoomAction::ChangeSettings }, .. }]
            if &**room == "#rust"),
        "{refused:?}"
    );
    let oper = Command::Oper { name: "admin".into(), password: "s3cret".into(), from: None, req: None };
    hub.command(bob.id, oper).await.unwrap();
    bob.events().await;
    hub.command(bob.id, ephemeral()).await.unwrap();
    let events = bob.events().await;
    assert!(!events.iter().any(|e| matches!(e, Event::Error { .. })), "{events:?}");
}

/// Topics, kick reasons and away messages are cut to one limit for every front door (in bytes,
/// on a character boundary), so that what one client sets fits every other.
#[tokio::test]
async fn long_topics_reasons_and_away_messages_are_cut_for_everyone() {
    use natter_core::hub::{MAX_AWAY_BYTES, MAX_KICK_BYTES, MAX_TOPIC_BYTES};
    let hub = start();
    let (ann, bob) = ann_and_bob_in_rust(&hub).await;
    let long = "é".repeat(1000);
    hub.command(ann.id, Command::Topic { room: "#rust".into(), topic: Some(long.clone()), req: None })
        .await
        .unwrap();
    let topic = bob.events().await.into_iter().find_map(|e| match e {
        Event::Topic { topic, .. } => Some(topic.to_string()),
        _ => None,
    });
    assert_eq!(topic, Some("é".repeat(MAX_TOPIC_BYTES / 2)));
    hub.command(bob.id, Command::Away { text: Some(long.clone()), req: None }).await.unwrap();
    let away = ann.events().await.into_iter().find_map(|e| match e {
        Event::Away { text, .. } => text.map(|t| t.to_string()),
        _ => None,
    });
    assert_eq!(away, Some("é".repeat(MAX_AWAY_BYTES / 2)));
    let kick = Command::Kick { room: "#rust".into(), nick: "bob".into(), reason: Some(long), req: None };
    hub.command(ann.id, kick).await.unwrap();
    let reason = bob.events().await.into_iter().find_map(|e| match e {
        Event::Kick { reason, .. } => reason.map(|r| r.to_string()),
        _ => None,
    });
    assert_eq!(reason, Some("é".repeat(MAX_KICK_BYTES / 2)));
}

/// A store (shared across restarts) that counts the history reads and can hold each until the
/// test lets it go: the hub must keep a page's place among the session's answers however long
/// the read takes. Its commits fail while `failing` is set (a full disk).
struct WatchedStore {
    inner: Arc<MemoryStore>,
    reads: std::sync::atomic::AtomicUsize,
    gate: Option<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>,
    failing: std::sync::atomic::AtomicBool,
}

impl WatchedStore {
    fn new(inner: Arc<MemoryStore>, gate: Option<std::sync::mpsc::Receiver<()>>) -> Arc<Self> {
        let gate = gate.map(std::sync::Mutex::new);
        Arc::new(Self { inner, reads: Default::default(), gate, failing: Default::default() })
    }

    fn reads(&self) -> usize {
        self.reads.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl natter_core::Store for WatchedStore {
    fn load_each(
        &self,
        recent: usize,
        room: &mut dyn FnMut(natter_core::store::LoadedRoom),
    ) -> Result<(), natter_core::StoreError> {
        self.inner.load_each(recent, room)
    }

    fn commit(&self, batch: &[natter_core::store::Write]) -> Result<(), natter_core::StoreError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(natter_core::StoreError::Io("disk full".into()));
        }
        self.inner.commit(batch)
    }

    fn history(
        &self,
        room: &str,
        query: natter_core::store::HistoryQuery,
    ) -> Result<(Vec<natter_core::store::StoredMessage>, bool), natter_core::StoreError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            let _ = gate.lock().unwrap().recv();
        }
        self.inner.history(room, query)
    }

    fn account(&self, folded: &str) -> Result<Option<AccountRecord>, natter_core::StoreError> {
        self.inner.account(folded)
    }

    fn accounts(&self) -> Result<Vec<AccountRecord>, natter_core::StoreError> {
        self.inner.accounts()
    }

    fn create_account(&self, account: &AccountRecord) -> Result<bool, natter_core::StoreError> {
        self.inner.create_account(account)
    }

    fn set_account_hash(
        &self,
        folded: &str,
        hash: &str,
        scram: Option<&str>,
    ) -> Result<bool, natter_core::StoreError> {
        self.inner.set_account_hash(folded, hash, scram)
    }

    fn set_account_scram(&self, folded: &str, scram: &str) -> Result<bool, natter_core::StoreError> {
        self.inner.set_account_scram(folded, scram)
    }

    fn touch_account(&self, folded: &str, ts: u64) -> Result<(), natter_core::StoreError> {
        self.inner.touch_account(folded, ts)
    }

    fn delete_account(&self, folded: &str) -> Result<bool, natter_core::StoreError> {
        self.inner.delete_account(folded)
    }
}

use natter_core::store::AccountRecord;

/// The kinds of events, in order, for comparing sequences.
fn kinds(events: &[Event]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            Event::History { .. } => "history",
            Event::Local(_) => "local",
            Event::Message(_) => "message",
            Event::Ack { .. } => "ack",
            Event::Members { .. } => "members",
            _ => "other",
        })
        .collect()
}

#[tokio::test]
async fn a_history_page_keeps_its_place_among_the_answers() {
    let (open, gate) = std::sync::mpsc::channel();
    let store = WatchedStore::new(Arc::new(MemoryStore::new()), Some(gate));
    let hub = hub::start(HubConfig::default(), store).unwrap();
    let ann = join(&hub, "ann", 64).await;
    let bob = join(&hub, "bob", 64).await;
    ann.events().await;
    bob.events().await;
    let history = Command::History {
        room: "#lobby".into(),
        query: natter_core::store::HistoryQuery { limit: 10, ..Default::default() },
        around: false,
        req: None,
    };
    hub.command(ann.id, history).await.unwrap();
    // Behind the page: a door's own answer, a message from someone else, and a query.
    let marker = natter_core::DoorNote::new("pong");
    hub.command(ann.id, Command::local(marker)).await.unwrap();
    hub.command(bob.id, say("#lobby", "while you read", None)).await.unwrap();
    hub.command(ann.id, Command::Who { room: None, detail: false, page: Default::default(), req: None })
        .await
        .unwrap();
    assert_eq!(kinds(&bob.events().await), ["ack"], "others are not held up");
    assert!(ann.events().await.is_empty(), "everything waits behind the page being read");
    open.send(()).unwrap();
    assert_eq!(kinds(&ann.events().await), ["history", "local", "message", "members"]);
}

/// A client that asks for history pages faster than they are read gets four on their way and
/// a refusal for each one beyond, so the server never holds more than four pages for it.
#[tokio::test]
async fn history_requests_beyond_four_pending_are_refused_and_the_four_arrive_in_order() {
    let (open, gate) = std::sync::mpsc::channel();
    let store = WatchedStore::new(Arc::new(MemoryStore::new()), Some(gate));
    let hub = hub::start(HubConfig::default(), store).unwrap();
    let ann = join(&hub, "ann", 64).await;
    ann.events().await;
    for i in 0..10u32 {
        let req = Some(natter_core::RequestToken::new(i));
        let query = natter_core::store::HistoryQuery { limit: 10, ..Default::default() };
        hub.command(ann.id, Command::History { room: "#lobby".into(), query, around: false, req })
            .await
            .unwrap();
    }
    for _ in 0..4 {
        open.send(()).unwrap();
    }
    let mut events = Vec::new();
    while events.len() < 10 {
        let more = ann.events().await;
        assert!(!more.is_empty(), "only {events:?}");
        events.extend(more);
    }
    let order: Vec<(u32, &str)> = events
        .iter()
        .map(|e| match e {
            Event::History { req, .. } => (*req.as_ref().unwrap().get::<u32>().unwrap(), "page"),
            Event::Error { req, refusal: Refusal::TooManyPending { limit: 4 } } => {
                (*req.as_ref().unwrap().get::<u32>().unwrap(), "busy")
            }
            other => panic!("{other:?}"),
        })
        .collect();
    // The refusals are immediate; the pages come once read, in the order asked.
    let busy: Vec<u32> = order.iter().filter(|(_, k)| *k == "busy").map(|(i, _)| *i).collect();
    let pages: Vec<u32> = order.iter().filter(|(_, k)| *k == "page").map(|(i, _)| *i).collect();
    assert_eq!((pages, busy), (vec![0, 1, 2, 3], vec![4, 5, 6, 7, 8, 9]));
}

/// Rooms made and left without anything worth keeping are forgotten, here and in the store;
/// a room where something was said stays.
#[tokio::test]
async fn a_room_left_empty_and_unused_is_forgotten_and_a_used_one_stays() {
    let store = Arc::new(MemoryStore::new());
    let hub = hub::start(HubConfig::default(), store.clone()).unwrap();
    let ann = join(&hub, "ann", 256).await;
    for room in ["#junk", "#kept"] {
        hub.command(ann.id, Command::Join { room: room.into(), key: None, req: None }).await.unwrap();
    }
    hub.command(ann.id, say("#kept", "worth keeping", None)).await.unwrap();
    for room in ["#junk", "#kept"] {
        hub.command(ann.id, Command::Part { room: room.into(), reason: None, req: None }).await.unwrap();
    }
    ann.events().await;
    hub.command(ann.id, Command::Rooms { req: None }).await.unwrap();
    let listed = match &ann.events().await[..] {
        [Event::Rooms { rooms, .. }] => rooms.iter().map(|r| r.name.to_string()).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(listed, ["#kept", "#lobby"]);
    // The store followed (its writes are committed before the next batch's answers).
    hub.command(ann.id, say("#lobby", "barrier", None)).await.unwrap();
    ann.events().await;
    let stored: Vec<String> =
        natter_core::Store::load(&*store, 0).unwrap().into_iter().map(|r| r.record.name).collect();
    assert!(!stored.contains(&"#junk".to_string()) && stored.contains(&"#kept".to_string()), "{stored:?}");
}

/// Every `ignore` answers with the whole list, so the list is capped: 10,000 ignores must
/// not make the server send (and hold) hundreds of megabytes.
#[tokio::test]
async fn the_ignore_list_is_capped() {
    let hub = start();
    let ann = join(&hub, "ann", 4096).await;
    ann.events().await;
    for i in 0..257 {
        hub.command(ann.id, Command::Ignore { nick: Some(format!("n{i}")), req: None }).await.unwrap();
    }
    let events = ann.events().await;
    assert_eq!(events.len(), 257);
    for (i, event) in events.iter().enumerate() {
        match event {
            Event::Ignoring { nicks, .. } if i < 256 => assert_eq!(nicks.len(), i + 1),
            Event::Error { refusal: Refusal::IgnoreListFull { limit: 256 }, .. } if i == 256 => {}
            other => panic!("ignore {i}: {other:?}"),
        }
    }
    // Ignoring someone already ignored is no new entry, and unignoring makes room.
    hub.command(ann.id, Command::Ignore { nick: Some("n0".into()), req: None }).await.unwrap();
    assert!(matches!(&ann.events().await[..], [Event::Ignoring { nicks, .. }] if nicks.len() == 256));
}

#[tokio::test]
async fn searches_and_lookups_answer_only_what_was_asked() {
    let hub = start();
    let ann = join(&hub, "ann", 64).await;
    let mut others = Vec::new();
    for nick in ["anna", "bob", "annika", "zed"] {
        others.push(join(&hub, nick, 64).await);
    }
    hub.command(others[2].id, Command::HideFromSearches { on: true }).await.unwrap();
    // annika is hidden but shares #lobby with ann, so a mask still finds her; zed leaves the
    // lobby and hides: only his exact nick finds him.
    hub.command(others[3].id, Command::Part { room: "#lobby".into(), reason: None, req: None })
        .await
        .unwrap();
    hub.command(others[3].id, Command::HideFromSearches { on: true }).await.unwrap();
    ann.events().await;
    let nicks = |events: Vec<Event>| match &events[..] {
        [Event::Members { nicks, info, .. }] => {
            assert_eq!(nicks.len(), info.len());
            nicks.iter().map(|n| n.to_string()).collect::<Vec<_>>()
        }
        other => panic!("{other:?}"),
    };
    hub.command(ann.id, Command::Search { mask: "ANN*".into(), req: None }).await.unwrap();
    assert_eq!(nicks(ann.events().await), ["ann", "anna", "annika"]);
    hub.command(ann.id, Command::Search { mask: "z?d".into(), req: None }).await.unwrap();
    assert!(nicks(ann.events().await).is_empty(), "a hidden user sharing no room is not found by a mask");
    hub.command(ann.id, Command::Search { mask: "Zed".into(), req: None }).await.unwrap();
    assert_eq!(nicks(ann.events().await), ["zed"], "an exact nick finds anyone");

    let lookup = Command::Lookup { nicks: vec!["BOB".into(), "nobody".into(), "ann".into()], req: None };
    hub.command(ann.id, lookup).await.unwrap();
    match &ann.events().await[..] {
        [Event::Users { users, .. }] => {
            let found: Vec<&str> = users.iter().map(|u| &*u.nick).collect();
            assert_eq!(found, ["bob", "ann"], "those online, in the order asked");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn server_stats_are_counted_as_sessions_come_and_go() {
    let config = HubConfig { operators: vec![("admin".into(), "pw".into())], ..HubConfig::default() };
    let hub = hub::start(config, Arc::new(MemoryStore::new())).unwrap();
    let ann = join(&hub, "ann", 64).await;
    let bob = join(&hub, "bob", 64).await;
    let cat = join(&hub, "cat", 64).await;
    hub.command(bob.id, Command::HideFromSearches { on: true }).await.unwrap();
    hub.command(bob.id, Command::HideFromSearches { on: true }).await.unwrap();
    hub.command(cat.id, Command::Oper { name: "admin".into(), password: "pw".into(), from: None, req: None })
        .await
        .unwrap();
    hub.command(cat.id, Command::Quit { reason: None }).await.unwrap();
    hub.command(bob.id, Command::ServerStats { req: None }).await.unwrap();
    let stats = bob.events().await.into_iter().find_map(|e| match e {
        Event::ServerStats { stats, .. } => Some(stats),
        _ => None,
    });
    let want = natter_core::event::ServerStats { users: 2, hidden: 1, operators: 0, peak: 3 };
    assert_eq!(stats, Some(want));
    drop(ann);
}

#[tokio::test]
async fn look_alike_nicks_are_refused_while_the_original_is_online() {
    let hub = start();
    let ann = join(&hub, "ann", 64).await;
    let register = |nick: &str| Registration {
        kind: SessionKind::Text,
        lobby: false,
        ..common::registration(nick, &Outbox::new(8))
    };
    for fake in ["\u{ff41}\u{ff4e}\u{ff4e}", "\u{430}nn"] {
        let refused = hub.register(register(fake)).await.unwrap().unwrap_err();
        assert!(
            matches!(&refused.0, Refusal::NickLookalike { nick, like } if &**nick == fake && &**like == "ann"),
            "{refused:?}"
        );
    }
    // Renaming into a look-alike is refused too; renaming to a look-alike of oneself is not.
    let bob = join(&hub, "bob", 64).await;
    hub.command(bob.id, Command::Nick { nick: "\u{430}nn".into(), req: None }).await.unwrap();
    assert!(has_error(&bob.events().await, |r| matches!(r, Refusal::NickLookalike { .. })));
    hub.command(ann.id, Command::Nick { nick: "\u{430}nn".into(), req: None }).await.unwrap();
    assert!(ann.events().await.iter().any(|e| matches!(e, Event::Nick { new, .. } if &**new == "\u{430}nn")));
    // Once the original leaves, its look-alike is free.
    hub.command(ann.id, Command::Quit { reason: None }).await.unwrap();
    ann.events().await;
    assert!(hub.register(register("ann")).await.unwrap().is_ok());
}

async fn register(hub: &HubHandle, nick: &str, kind: SessionKind, lobby: bool) -> Peer {
    let outbox = Outbox::new(64);
    let registration = Registration { kind, lobby, ..common::registration(nick, &outbox) };
    let id = hub.register(registration).await.unwrap().unwrap().session;
    Peer { id, outbox }
}

#[tokio::test]
async fn a_question_for_the_operators_reaches_each_of_them_privately_and_nobody_else() {
    let hub = start();
    // No operator online yet: the visitor is told, not left waiting.
    let guest = register(&hub, "guest-1", SessionKind::Text, false).await;
    guest.events().await;
    let ask = |text: &str| Command::AskOperators { text: text.into(), req: None };
    hub.command(guest.id, ask("anyone?")).await.unwrap();
    assert!(has_error(&guest.events().await, |r| matches!(r, Refusal::NoSuchRecipient { .. })));

    let console = register(&hub, "operator", SessionKind::Console, true).await;
    let member = join(&hub, "ann", 64).await;
    console.events().await;
    member.events().await;
    hub.command(guest.id, ask("where is my order?")).await.unwrap();
    hub.command(guest.id, ask("   ")).await.unwrap();
    let seen = console.events().await;
    assert!(
        matches!(&seen[..], [Event::Message(m)] if m.from.as_ref() == "guest-1"
            && m.to.as_deref() == Some("operator") && m.room.is_none() && &*m.text == "where is my order?"),
        "{seen:?}"
    );
    assert!(member.events().await.is_empty(), "room members never hear guests");
    let own = guest.events().await;
    assert!(has_error(&own, |r| *r == Refusal::EmptyMessage), "{own:?}");
    assert_eq!(own.len(), 1, "no acknowledgement: {own:?}");

    // The operator's answer is an ordinary private message.
    let reply = Command::Say {
        target: Target::Nick("guest-1".into()),
        text: "it ships today".into(),
        action: false,
        notice: false,
        meta: None,
        cid: None,
        req: None,
    };
    hub.command(console.id, reply).await.unwrap();
    assert_eq!(texts(&guest.events().await), ["it ships today"]);
    console.events().await;

    // The operators it asked are told when it leaves; room members are not.
    hub.command(guest.id, Command::Quit { reason: Some("left".into()) }).await.unwrap();
    let seen = console.events().await;
    assert!(
        seen.iter().any(|e| matches!(e, Event::Quit { nick, .. } if nick.as_ref() == "guest-1")),
        "{seen:?}"
    );
    assert!(member.events().await.is_empty());
    // A visitor that never asked leaves without a word to the operators.
    let quiet = register(&hub, "guest-2", SessionKind::Text, false).await;
    console.events().await;
    hub.command(quiet.id, Command::Quit { reason: None }).await.unwrap();
    assert!(console.events().await.is_empty());
}

#[tokio::test]
async fn a_private_message_to_a_silent_udp_member_warns_that_they_may_be_gone() {
    let config = HubConfig { udp_quiet: Duration::ZERO, ..HubConfig::default() };
    let hub = hub::start(config, Arc::new(MemoryStore::new())).unwrap();
    let ann = join(&hub, "ann", 64).await;
    let udp = register(&hub, "udp-5000", SessionKind::Udp, true).await;
    ann.events().await;
    let pm = |to: &str| Command::Say {
        target: Target::Nick(to.into()),
        text: "are you there?".into(),
        action: false,
        notice: false,
        meta: None,
        cid: None,
        req: None,
    };
    hub.command(ann.id, pm("udp-5000")).await.unwrap();
    let events = ann.events().await;
    assert!(
        events.iter().any(
            |e| matches!(e, Event::Notice { text, .. } if text.contains("udp-5000 takes part over UDP"))
        ),
        "{events:?}"
    );
    assert_eq!(texts(&udp.events().await), ["are you there?"], "the message is still delivered");
    // A TCP member is never doubted.
    let bob = join(&hub, "bob", 64).await;
    ann.events().await;
    hub.command(ann.id, pm("bob")).await.unwrap();
    assert!(!ann.events().await.iter().any(|e| matches!(e, Event::Notice { .. })));
    drop(bob);
}

#[tokio::test]
async fn service_and_server_names_are_reserved() {
    let config =
        HubConfig { reserved_nicks: vec!["nickserv".into(), "irc.example".into()], ..HubConfig::default() };
    let hub = hub::start(config, Arc::new(MemoryStore::new())).unwrap();
    let register = |nick: &str| Registration {
        kind: SessionKind::Irc,
        lobby: false,
        ..common::registration(nick, &Outbox::new(8))
    };
    for fake in ["NickServ", "\u{ff2e}ickServ"] {
        let refused = hub.register(register(fake)).await.unwrap().unwrap_err();
        assert!(matches!(&refused.0, Refusal::NickReserved { nick } if &**nick == fake), "{refused:?}");
    }
    let ann = join(&hub, "ann", 64).await;
    ann.events().await;
    hub.command(ann.id, Command::Nick { nick: "NICKSERV".into(), req: None }).await.unwrap();
    assert!(has_error(&ann.events().await, |r| matches!(r, Refusal::NickReserved { .. })));
    assert!(hub.register(register("nickservant")).await.unwrap().is_ok());
}

/// One `who` page: `(nicks, count, more)`.
async fn who_page(
    hub: &HubHandle,
    asker: &Peer,
    room: Option<&str>,
    after: Option<&str>,
    limit: Option<u32>,
) -> (Vec<String>, usize, bool) {
    let page = natter_core::command::Paging { after: after.map(Into::into), limit };
    let who = Command::Who { room: room.map(Into::into), detail: true, page, req: None };
    hub.command(asker.id, who).await.unwrap();
    match &asker.events().await[..] {
        [Event::Members { nicks, info, count, more, .. }] => {
            let listed: Vec<String> = nicks.iter().map(|n| n.to_string()).collect();
            let described: Vec<String> = info.iter().map(|m| m.nick.to_string()).collect();
            assert_eq!(listed, described, "detail describes the page's nicks, in order");
            (listed, *count, *more)
        }
        other => panic!("{other:?}"),
    }
}

/// `who` answers a page of nicks in case-insensitive order, from after a given nick, with the
/// list's size and whether more follow; the order follows renames, parts and quits.
#[tokio::test]
async fn who_pages_go_in_nick_order_and_follow_renames_parts_and_quits() {
    let hub = start();
    let mut peers = Vec::new();
    for nick in ["dan", "Bob", "amy", "cat", "eve"] {
        peers.push(join(&hub, nick, 256).await);
    }
    let ann = &peers[2];
    for p in &peers {
        p.events().await;
    }
    let lobby = Some("#lobby");
    let page = |nicks: &[&str], count, more| (nicks.iter().map(|n| n.to_string()).collect(), count, more);
    assert_eq!(who_page(&hub, ann, lobby, None, Some(2)).await, page(&["amy", "Bob"], 5, true));
    assert_eq!(who_page(&hub, ann, lobby, Some("BOB"), Some(2)).await, page(&["cat", "dan"], 5, true));
    assert_eq!(who_page(&hub, ann, lobby, Some("dan"), Some(2)).await, page(&["eve"], 5, false));
    assert_eq!(who_page(&hub, ann, lobby, Some("zzz"), None).await, page(&[], 5, false));
    // A nick that is not (or no longer) online still marks a place.
    assert_eq!(who_page(&hub, ann, lobby, Some("bz"), Some(1)).await, page(&["cat"], 5, true));
    assert_eq!(who_page(&hub, ann, lobby, None, Some(0)).await, page(&["amy"], 5, true), "0 means 1");
    let all = page(&["amy", "Bob", "cat", "dan", "eve"], 5, false);
    assert_eq!(who_page(&hub, ann, lobby, None, Some(u32::MAX)).await, all, "clamped to the maximum");
    assert_eq!(who_page(&hub, ann, None, None, None).await, all, "the server's list");

    // amy becomes zoe: last in both lists. cat quits. dan leaves the lobby but stays online.
    hub.command(peers[2].id, Command::Nick { nick: "zoe".into(), req: None }).await.unwrap();
    hub.command(peers[3].id, Command::Quit { reason: None }).await.unwrap();
    hub.command(peers[0].id, Command::Part { room: "#lobby".into(), reason: None, req: None }).await.unwrap();
    ann.events().await;
    assert_eq!(who_page(&hub, ann, lobby, None, None).await, page(&["Bob", "eve", "zoe"], 3, false));
    assert_eq!(who_page(&hub, ann, None, Some("b"), Some(2)).await, page(&["Bob", "dan"], 4, true));
    assert_eq!(who_page(&hub, ann, None, Some("dan"), Some(2)).await, page(&["eve", "zoe"], 4, false));
    // A case-only rename keeps the place.
    hub.command(peers[1].id, Command::Nick { nick: "BOB".into(), req: None }).await.unwrap();
    ann.events().await;
    assert_eq!(who_page(&hub, ann, lobby, None, Some(1)).await, page(&["BOB"], 3, true));
}

/// A room bigger than the presence limit lists its first members by nick on joining, with
/// how many it has; `who` answers at most a page of 1,000 however big the room or server, and
/// so does a wildcard search.
#[tokio::test]
async fn big_rooms_list_a_first_page_and_say_how_many_they_have() {
    let config = HubConfig { presence_limit: 10, ..HubConfig::default() };
    let hub = hub::start(config, Arc::new(MemoryStore::new())).unwrap();
    let total = hub::MAX_WHO_PAGE as usize + 5;
    let mut peers = Vec::new();
    for i in (0..total).rev() {
        peers.push(join(&hub, &format!("u{i:04}"), 64).await);
    }
    let last = join(&hub, "aaa", 64).await;
    match &last.events().await[..] {
        [Event::Welcome { .. }, Event::Joined { members, count, .. }] => {
            let want: Vec<String> =
                ["aaa"].into_iter().map(String::from).chain((0..9).map(|i| format!("u{i:04}"))).collect();
            assert_eq!(members.iter().map(|m| m.to_string()).collect::<Vec<_>>(), want);
            assert_eq!(*count, total + 1);
        }
        other => panic!("{other:?}"),
    }
    let (nicks, count, more) = who_page(&hub, &last, Some("#lobby"), None, None).await;
    assert_eq!((nicks.len(), count, more), (1000, total + 1, true));
    assert_eq!(nicks.last().map(String::as_str), Some("u0998"));
    let (nicks, count, more) = who_page(&hub, &last, None, Some("u0998"), None).await;
    assert_eq!((nicks, count, more), ((999..total).map(|i| format!("u{i:04}")).collect(), total + 1, false));
    hub.command(last.id, Command::Search { mask: "U*".into(), req: None }).await.unwrap();
    match &last.events().await[..] {
        [Event::Members { nicks, info, count, more, .. }] => {
            assert_eq!((nicks.len(), info.len(), *count, *more), (1000, 1000, total, true));
            assert_eq!((&*nicks[0], &*nicks[999]), ("u0000", "u0999"));
        }
        other => panic!("{other:?}"),
    }
    hub.command(last.id, Command::Search { mask: "*9?".into(), req: None }).await.unwrap();
    match &last.events().await[..] {
        [Event::Members { nicks, count, more, .. }] => {
            assert_eq!((nicks.len(), *count, *more), (100, 100, false), "u0090..u0099, u0190..u0199, ...");
        }
        other => panic!("{other:?}"),
    }
}

/// Members leave from anywhere in a room (each leaver's place is taken by the last member):
/// messages still reach exactly those who stay, and a leaver is no longer a member.
#[tokio::test]
async fn members_leaving_in_any_order_leave_the_room_whole() {
    let hub = start();
    let mut peers = Vec::new();
    for nick in ["p0", "p1", "p2", "p3", "p4", "p5"] {
        let p = join(&hub, nick, 256).await;
        hub.command(p.id, Command::Join { room: "#r".into(), key: None, req: None }).await.unwrap();
        peers.push(p);
    }
    for i in [1, 4, 0] {
        hub.command(peers[i].id, Command::Part { room: "#r".into(), reason: None, req: None }).await.unwrap();
    }
    for p in &peers {
        p.events().await;
    }
    hub.command(peers[5].id, say("#r", "who is left", None)).await.unwrap();
    for (i, p) in peers.iter().enumerate() {
        let got = texts(&p.events().await);
        let want: &[&str] = if [2, 3].contains(&i) { &["who is left"] } else { &[] };
        assert_eq!(got, want, "p{i}");
    }
    hub.command(peers[4].id, say("#r", "still here?", None)).await.unwrap();
    assert!(matches!(
        &peers[4].events().await[..],
        [Event::Error { refusal: Refusal::NotInRoom { .. }, .. }]
    ));
    let (nicks, count, _) = who_page(&hub, &peers[2], Some("#r"), None, None).await;
    assert_eq!((nicks, count), (vec!["p2".to_string(), "p3".into(), "p5".into()], 3));
    // p5 took p1's place when p1 left: it leaves from there.
    hub.command(peers[5].id, Command::Part { room: "#r".into(), reason: None, req: None }).await.unwrap();
    for p in &peers {
        p.events().await;
    }
    hub.command(peers[2].id, say("#r", "just us", None)).await.unwrap();
    assert_eq!(texts(&peers[3].events().await), ["just us"]);
    assert!(texts(&peers[5].events().await).is_empty());
    peers[2].events().await;
    let (nicks, count, _) = who_page(&hub, &peers[2], Some("#r"), None, None).await;
    assert_eq!((nicks, count), (vec!["p2".to_string(), "p3".into()], 2));
}

/// What a client gives at login besides its nick.
#[derive(Default, Clone, Copy)]
struct Given<'a> {
    addr: Option<&'a str>,
    password: Option<&'a str>,
    secret: Option<&'a str>,
}

/// Logs `nick` in (into the lobby) with what it `given`; the refusal when the hub refuses.
async fn login(hub: &HubHandle, nick: &str, given: Given<'_>) -> Result<Peer, Refusal> {
    let outbox = Outbox::new(256);
    let registration = Registration {
        password: given.password.map(Into::into),
        addr: given.addr.map(|a| a.parse().unwrap()),
        client_secret: given.secret.map(Into::into),
        ..common::registration(nick, &outbox)
    };
    match hub.register(registration).await.unwrap() {
        Ok(registered) => Ok(Peer { id: registered.session, outbox }),
        Err(refused) => Err(refused.0),
    }
}

#[tokio::test(start_paused = true)]
async fn wrong_server_passwords_make_the_address_wait_longer_each_time() {
    let config = HubConfig { password: Some("sesame".into()), ..HubConfig::default() };
    let hub = hub::start(config, Arc::new(MemoryStore::new())).unwrap();
    let guesser = |password| Given { addr: Some("192.0.2.1"), password, secret: None };
    let refusal = |r: Result<Peer, Refusal>| r.err();
    let waits = |wait_secs| Some(Refusal::TooManyAttempts { wait_secs, by: Throttled::Address });
    // No password guesses nothing: refused, never counted.
    for _ in 0..10 {
        assert_eq!(refusal(login(&hub, "ann", guesser(None)).await), Some(Refusal::BadPassword));
    }
    // Three mistakes are free; after the fourth the address waits a second.
    for _ in 0..4 {
        assert_eq!(refusal(login(&hub, "ann", guesser(Some("guess"))).await), Some(Refusal::BadPassword));
    }
    // Even the right password is not checked while it waits: a guesser learns nothing.
    assert_eq!(refusal(login(&hub, "ann", guesser(Some("sesame"))).await), waits(1));
    // Another address is not held back.
    let bob = Given { addr: Some("192.0.2.2"), password: Some("sesame"), secret: None };
    assert!(login(&hub, "bob", bob).await.is_ok());
    tokio::time::advance(Duration::from_secs(1)).await;
    // One more mistake doubles the wait.
    assert_eq!(refusal(login(&hub, "ann", guesser(Some("guess"))).await), Some(Refusal::BadPassword));
    assert_eq!(refusal(login(&hub, "ann", guesser(Some("sesame"))).await), waits(2));
    tokio::time::advance(Duration::from_millis(1500)).await;
    assert_eq!(refusal(login(&hub, "ann", guesser(Some("sesame"))).await), waits(1), "rounded up");
    tokio::time::advance(Duration::from_millis(500)).await;
    assert!(login(&hub, "ann", guesser(Some("sesame"))).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn wrong_operator_passwords_hold_the_name_back_from_every_address() {
    let config = HubConfig { operators: vec![("admin".into(), "pw".into())], ..HubConfig::default() };
    let hub = hub::start(config, Arc::new(MemoryStore::new())).unwrap();
    let mallory = join(&hub, "mallory", 256).await;
    let ann = join(&hub, "ann", 256).await;
    let oper = |password: &str, from: &str| Command::Oper {
        name: "admin".into(),
        password: password.into(),
        from: Some(from.parse().unwrap()),
        req: None,
    };
    let refused = |events: Vec<Event>| {
        events.into_iter().find_map(|e| match e {
            Event::Error { refusal, .. } => Some(refusal),
            _ => None,
        })
    };
    mallory.events().await;
    ann.events().await;
    for _ in 0..4 {
        hub.command(mallory.id, oper("guess", "192.0.2.66")).await.unwrap();
        assert_eq!(refused(mallory.events().await), Some(Refusal::BadOperatorPassword));
    }
    // The name waits, whoever asks and from wherever: the right password is not even checked.
    hub.command(ann.id, oper("pw", "198.51.100.7")).await.unwrap();
    assert_eq!(
        refused(ann.events().await),
        Some(Refusal::TooManyAttempts { wait_secs: 1, by: Throttled::Operator })
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    hub.command(ann.id, oper("pw", "198.51.100.7")).await.unwrap();
    let events = ann.events().await;
    assert!(
        events.iter().any(|e| matches!(e, Event::Notice { text, .. } if text.contains("server operator")))
    );
    // The right password forgave the name, not the guesser's address.
    hub.command(mallory.id, oper("guess", "192.0.2.66")).await.unwrap();
    assert_eq!(refused(mallory.events().await), Some(Refusal::BadOperatorPassword));
    hub.command(mallory.id, oper("guess", "192.0.2.66")).await.unwrap();
    assert!(matches!(
        refused(mallory.events().await),
        Some(Refusal::TooManyAttempts { by: Throttled::Address, .. })
    ));
}

fn ack_of(events: &[Event]) -> Option<(bool, Option<u64>)> {
    events.iter().find_map(|e| match e {
        Event::Ack { duplicate, message, .. } => Some((*duplicate, message.mid)),
        _ => None,
    })
}

/// The attack of issue 11: a newcomer takes a departed user's nick and sends with that user's
/// client ids. Ids belong to the client that sent them (by its secret), not to the nick.
#[tokio::test]
async fn a_newcomer_with_a_departed_users_nick_cannot_touch_their_client_ids() {
    let hub = start();
    let bob = join(&hub, "bob", 256).await;
    let ann_client = Given { secret: Some("ann's secret, 32 random digits"), ..Given::default() };
    let ann = login(&hub, "ann", ann_client).await.unwrap();
    ann.events().await;
    hub.command(ann.id, say("#lobby", "hi", Some("a-1"))).await.unwrap();
    let (duplicate, mid) = ack_of(&ann.events().await).unwrap();
    assert!(!duplicate && mid.is_some());
    hub.command(ann.id, Command::Quit { reason: None }).await.unwrap();
    bob.events().await;

    // Mallory, as "ann", without the secret: her "a-1" is a message of her own, and she plants
    // "a-2", which ann has not used yet.
    let mallory = login(&hub, "ann", Given::default()).await.unwrap();
    mallory.events().await;
    hub.command(mallory.id, say("#lobby", "evil", Some("a-1"))).await.unwrap();
    assert_eq!(ack_of(&mallory.events().await).map(|a| a.0), Some(false), "no ack of ann's message");
    hub.command(mallory.id, say("#lobby", "planted", Some("a-2"))).await.unwrap();
    mallory.events().await;
    assert_eq!(texts(&bob.events().await), ["evil", "planted"]);
    hub.command(mallory.id, Command::Quit { reason: None }).await.unwrap();

    // Ann is back (under another nick even): her resend is recognised, her next id is hers.
    let ann = login(&hub, "ann_", ann_client).await.unwrap();
    ann.events().await;
    hub.command(ann.id, say("#lobby", "hi", Some("a-1"))).await.unwrap();
    assert_eq!(ack_of(&ann.events().await), Some((true, mid)), "the resend is a duplicate");
    hub.command(ann.id, say("#lobby", "mine", Some("a-2"))).await.unwrap();
    assert_eq!(ack_of(&ann.events().await).map(|a| a.0), Some(false), "not swallowed");
    assert_eq!(texts(&bob.events().await), ["mine"]);
}

#[tokio::test]
async fn a_session_without_a_secret_has_ids_of_its_own() {
    let hub = start();
    let ann = join(&hub, "ann", 256).await;
    hub.command(ann.id, say("#lobby", "hi", Some("x"))).await.unwrap();
    ann.events().await;
    hub.command(ann.id, Command::Quit { reason: None }).await.unwrap();
    let again = join(&hub, "ann", 256).await;
    again.events().await;
    hub.command(again.id, say("#lobby", "hi", Some("x"))).await.unwrap();
    assert_eq!(ack_of(&again.events().await).map(|a| a.0), Some(false));
    // Within the session, a resend is still recognised.
    hub.command(again.id, say("#lobby", "hi", Some("x"))).await.unwrap();
    assert_eq!(ack_of(&again.events().await).map(|a| a.0), Some(true));
}

#[tokio::test]
async fn a_clients_ids_are_recognised_after_a_restart_and_by_nobody_else() {
    let store = Arc::new(MemoryStore::new());
    let secret = Given { secret: Some("0123456789abcdef0123456789abcdef"), ..Given::default() };
    let hub = hub::start(HubConfig::default(), store.clone()).unwrap();
    let ann = login(&hub, "ann", secret).await.unwrap();
    hub.command(ann.id, say("#lobby", "kept", Some("k-1"))).await.unwrap();
    let (_, mid) = ack_of(&ann.events().await).unwrap();
    hub.shutdown("restart").await;

    let hub = hub::start(HubConfig::default(), store).unwrap();
    let mallory = login(&hub, "ann", Given::default()).await.unwrap();
    mallory.events().await;
    hub.command(mallory.id, say("#lobby", "kept", Some("k-1"))).await.unwrap();
    assert_eq!(ack_of(&mallory.events().await).map(|a| a.0), Some(false));
    let ann = login(&hub, "ann2", secret).await.unwrap();
    ann.events().await;
    hub.command(ann.id, say("#lobby", "kept", Some("k-1"))).await.unwrap();
    assert_eq!(ack_of(&ann.events().await), Some((true, mid)));
}

/// A store holding `#old` with messages "old 1" to "old N" (and the lobby), as a server
/// leaves it when it stops.
async fn store_with_old_room(n: usize) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    let hub = hub::start(HubConfig::default(), store.clone()).unwrap();
    let ann = join(&hub, "ann", 4096).await;
    hub.command(ann.id, Command::Join { room: "#old".into(), key: None, req: None }).await.unwrap();
    for i in 1..=n {
        hub.command(ann.id, say("#old", &format!("old {i}"), None)).await.unwrap();
    }
    ann.events().await;
    hub.shutdown("restart").await;
    store
}

/// The texts of a `joined` event's replay.
fn replay_of(events: &[Event], room: &str) -> Option<Vec<String>> {
    events.iter().find_map(|e| match e {
        Event::Joined { room: r, history, .. } if &**r == room => {
            Some(history.iter().map(|m| m.text.to_string()).collect())
        }
        _ => None,
    })
}

/// A start reads no room's messages beyond the client ids of its last moments: a room's
/// replay is read from the store when it is first joined, once; later joiners get it from
/// memory, with what was said since.
#[tokio::test]
async fn a_room_is_read_when_first_joined_not_at_start() {
    let store = WatchedStore::new(store_with_old_room(5).await, None);
    let config = HubConfig { history: 4, ..HubConfig::default() };
    let hub = hub::start(config, store.clone()).unwrap();
    let bob = join(&hub, "bob", 256).await;
    bob.events().await;
    let lobby_reads = store.reads();
    assert!(lobby_reads <= 1, "the lobby's replay at most: {lobby_reads}");
    hub.command(bob.id, Command::Join { room: "#old".into(), key: None, req: None }).await.unwrap();
    let events = bob.events().await;
    assert_eq!(replay_of(&events, "#old").unwrap(), ["old 2", "old 3", "old 4", "old 5"]);
    assert_eq!(store.reads(), lobby_reads + 1, "one read for the first join");
    hub.command(bob.id, say("#old", "new 6", None)).await.unwrap();
    bob.events().await;
    let cat = join(&hub, "cat", 256).await;
    cat.events().await;
    hub.command(cat.id, Command::Join { room: "#old".into(), key: None, req: None }).await.unwrap();
    let events = cat.events().await;
    assert_eq!(replay_of(&events, "#old").unwrap(), ["old 3", "old 4", "old 5", "new 6"]);
    assert_eq!(store.reads(), lobby_reads + 1, "the second join reads nothing");
}

/// While a first join's replay is read, what the joiner is sent waits behind its `joined`;
/// a message said meanwhile reaches it live, not twice, and the room keeps it after the
/// stored ones.
#[tokio::test]
async fn what_is_said_while_a_replay_is_read_comes_after_it_once() {
    let (open, gate) = std::sync::mpsc::channel();
    let store = WatchedStore::new(store_with_old_room(3).await, Some(gate));
    let config = HubConfig { lobby: "#hall".into(), ..HubConfig::default() };
    let hub = hub::start(config, store.clone()).unwrap();
    let ann = join(&hub, "ann", 256).await;
    let bob = join(&hub, "bob", 256).await;
    ann.events().await;
    bob.events().await;
    assert_eq!(store.reads(), 0, "a new lobby has nothing stored to read");
    hub.command(ann.id, Command::Join { room: "#old".into(), key: None, req: None }).await.unwrap();
    hub.command(bob.id, Command::Join { room: "#old".into(), key: None, req: None }).await.unwrap();
    hub.command(bob.id, say("#old", "meanwhile", None)).await.unwrap();
    assert!(ann.events().await.is_empty(), "ann's joined waits for the read, and all behind it");
    open.send(()).unwrap();
    open.send(()).unwrap();
    let events = ann.events().await;
    assert_eq!(replay_of(&events, "#old").unwrap(), ["old 1", "old 2", "old 3"]);
    let live: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.text.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(live, ["meanwhile"], "{events:?}");
    let joined_at = events.iter().position(|e| matches!(e, Event::Joined { .. })).unwrap();
    let said_at = events.iter().position(|e| matches!(e, Event::Message(_))).unwrap();
    assert!(joined_at < said_at, "{events:?}");
    let cat = join(&hub, "cat", 256).await;
    cat.events().await;
    hub.command(cat.id, Command::Join { room: "#old".into(), key: None, req: None }).await.unwrap();
    assert_eq!(replay_of(&cat.events().await, "#old").unwrap(), ["old 1", "old 2", "old 3", "meanwhile"]);
}

/// On a single server a room message the store refused was delivered all the same. Its
/// resend (the same `cid`, after a reconnect) is stored under its first id and time and
/// acknowledged as a duplicate: never acknowledged unstored, never delivered twice.
#[tokio::test]
async fn a_resend_of_a_message_the_store_refused_is_stored_not_delivered_again() {
    let store = WatchedStore::new(Arc::new(MemoryStore::new()), None);
    let hub = hub::start(HubConfig::default(), store.clone()).unwrap();
    let bob = join(&hub, "bob", 256).await;
    let secret = Given { secret: Some("0123456789abcdef0123456789abcdef"), ..Given::default() };
    let ann = login(&hub, "ann", secret).await.unwrap();
    ann.events().await;
    bob.events().await;
    let not_stored = |events: &[Event]| has_error(events, |r| matches!(r, Refusal::NotStored { .. }));

    store.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    hub.command(ann.id, say("#lobby", "is this kept?", Some("c1"))).await.unwrap();
    let events = ann.events().await;
    assert!(not_stored(&events) && ack_of(&events).is_none(), "{events:?}");
    let delivered = bob.events().await;
    assert_eq!(texts(&delivered), ["is this kept?"], "delivered to those online");
    let (mid, ts) = delivered
        .iter()
        .find_map(|e| match e {
            Event::Message(m) => Some((m.mid, m.ts)),
            _ => None,
        })
        .unwrap();
    // Resent while the store still fails: refused again, not delivered again.
    hub.command(ann.id, say("#lobby", "is this kept?", Some("c1"))).await.unwrap();
    let events = ann.events().await;
    assert!(not_stored(&events) && ack_of(&events).is_none(), "{events:?}");

    // The store is back; ann reconnects and resends.
    store.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    hub.command(ann.id, Command::Quit { reason: None }).await.unwrap();
    let ann = login(&hub, "ann", secret).await.unwrap();
    ann.events().await;
    hub.command(ann.id, say("#lobby", "is this kept?", Some("c1"))).await.unwrap();
    assert_eq!(ack_of(&ann.events().await), Some((true, mid)), "stored under its first id");
    hub.command(ann.id, say("#lobby", "is this kept?", Some("c1"))).await.unwrap();
    assert_eq!(ack_of(&ann.events().await), Some((true, mid)), "and a duplicate from now on");
    assert!(texts(&bob.events().await).is_empty(), "never delivered twice");
    let query = natter_core::store::HistoryQuery { limit: 10, ..Default::default() };
    let (stored, _) = natter_core::Store::history(&*store, "#lobby", query).unwrap();
    let kept: Vec<_> = stored.iter().map(|m| (m.mid, m.ts, m.text.as_str())).collect();
    assert_eq!(kept, [(mid.unwrap(), ts, "is this kept?")]);
}
