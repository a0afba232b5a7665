//! Private messages in the hub, without any network: offline delivery to accounts, the
//! private history of accounts (and nothing stored for guests), and retention.

mod common;

use common::{Peer, join};
use natter_core::hub::{self, MAX_MAILBOX_MESSAGES, NickProtection};
use natter_core::memory_store::MemoryStore;
use natter_core::password::hash_password;
use natter_core::store::{AccountRecord, HistoryQuery, RoomRecord, StoredMessage, StoredPrivate, Write};
use natter_core::{Command, Event, HubConfig, HubHandle, Refusal, Store, Target};
use std::sync::Arc;

fn config() -> HubConfig {
    HubConfig { nick_protection: NickProtection::Off, ..HubConfig::default() }
}

fn account(store: &MemoryStore, name: &str) {
    let record = AccountRecord {
        folded: name.to_lowercase(),
        name: name.into(),
        hash: hash_password(&format!("{}'s password", name.to_lowercase())).unwrap(),
        created_ts: 1,
        last_login_ts: None,
        scram: None,
    };
    assert!(store.create_account(&record).unwrap());
}

async fn log_in(hub: &HubHandle, peer: &Peer, name: &str) -> Vec<Event> {
    let password = format!("{name}'s password");
    let login =
        Command::Login { name: name.into(), password: password.as_str().into(), from: None, req: None };
    hub.command(peer.id, login).await.unwrap();
    let events = peer.until(|e| matches!(e, Event::Account { .. } | Event::Error { .. })).await;
    assert!(events.iter().any(|e| matches!(e, Event::Account { .. })), "{events:?}");
    // What the login brought comes after its answer: a barrier behind it collects it.
    let mut all = events;
    all.extend(peer.drain(hub).await);
    all
}

async fn say_to(hub: &HubHandle, peer: &Peer, nick: &str, text: &str) -> Event {
    hub.command(peer.id, Command::say(Target::Nick(nick.into()), text.into())).await.unwrap();
    let events = peer.until(|e| matches!(e, Event::Ack { .. } | Event::Error { .. })).await;
    events.into_iter().last().unwrap()
}

/// The private messages delivered among `events`: (from, to, text, ts).
fn messages(events: &[Event]) -> Vec<(String, String, String, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) if m.room.is_none() => Some((
                m.from.to_string(),
                m.to.as_deref().unwrap_or("").to_string(),
                m.text.to_string(),
                m.ts,
            )),
            _ => None,
        })
        .collect()
}

fn history(nick: &str, query: HistoryQuery) -> Command {
    Command::History { room: nick.into(), query, around: false, req: None }
}

async fn page(
    hub: &HubHandle,
    peer: &Peer,
    nick: &str,
    query: HistoryQuery,
) -> (Vec<(String, String)>, bool) {
    hub.command(peer.id, history(nick, query)).await.unwrap();
    let events = peer.until(|e| matches!(e, Event::History { .. } | Event::Error { .. })).await;
    match events.into_iter().last().unwrap() {
        Event::History { messages, more, .. } => {
            (messages.iter().map(|m| (m.from.to_string(), m.text.to_string())).collect(), more)
        }
        other => panic!("no page: {other:?}"),
    }
}

fn latest(limit: u32) -> HistoryQuery {
    HistoryQuery { limit, ..HistoryQuery::default() }
}

#[tokio::test]
async fn a_message_to_an_offline_account_waits_for_its_next_login_and_comes_once() {
    let store = Arc::new(MemoryStore::new());
    account(&store, "Bob");
    let hub = hub::start(config(), store.clone()).unwrap();
    let ann = join(&hub, "ann").await;
    // A guest writes to the registered name: kept, and ann is told so.
    let Event::Ack { offline: true, message, .. } = say_to(&hub, &ann, "bob", "are you there?").await else {
        panic!("no offline ack")
    };
    let sent_ts = message.ts;
    assert!(message.mid.is_some(), "stored before the ack");
    // A name that is neither online nor registered keeps today's error.
    let Event::Error { refusal, .. } = say_to(&hub, &ann, "nobody", "hello?").await else { panic!() };
    assert_eq!(refusal, Refusal::NoSuchRecipient { nick: "nobody".into() });
    hub.shutdown("restart").await;

    // After a restart, bob logs in under another nick: the message comes after the login's
    // answer, addressed to him, with its original time.
    let hub = hub::start(config(), store.clone()).unwrap();
    let bob = join(&hub, "bobby").await;
    let events = log_in(&hub, &bob, "bob").await;
    let login_at = events.iter().position(|e| matches!(e, Event::Account { .. })).unwrap();
    let mail_at = events.iter().position(|e| matches!(e, Event::Message(_))).unwrap();
    assert!(login_at < mail_at, "{events:?}");
    assert_eq!(messages(&events), [("ann".into(), "bobby".into(), "are you there?".into(), sent_ts)]);
    // Never twice: not at another login, nor after another restart.
    let again = join(&hub, "bob2").await;
    assert_eq!(messages(&log_in(&hub, &again, "bob").await), []);
    hub.shutdown("restart").await;
    let hub = hub::start(config(), store.clone()).unwrap();
    let bob = join(&hub, "bob").await;
    assert_eq!(messages(&log_in(&hub, &bob, "bob").await), []);
    // While bob is logged in, a message to his name reaches him at once.
    let ann = join(&hub, "ann").await;
    let Event::Ack { offline: false, .. } = say_to(&hub, &ann, "bob", "now?").await else { panic!() };
    assert_eq!(messages(&bob.drain(&hub).await).len(), 1);
    assert_eq!(store.mailboxes().unwrap(), vec![]);
}

#[tokio::test]
async fn a_full_mailbox_refuses_more_by_count_and_by_bytes() {
    let store = Arc::new(MemoryStore::new());
    account(&store, "bob");
    account(&store, "dan");
    let hub = hub::start(config(), store.clone()).unwrap();
    let ann = join(&hub, "ann").await;
    for i in 0..MAX_MAILBOX_MESSAGES {
        let ack = say_to(&hub, &ann, "bob", &format!("message {i}")).await;
        assert!(matches!(ack, Event::Ack { offline: true, .. }), "{ack:?}");
    }
    let Event::Error { refusal, .. } = say_to(&hub, &ann, "bob", "one more").await else { panic!() };
    assert!(matches!(refusal, Refusal::MailboxFull { ref nick, .. } if &**nick == "bob"), "{refusal:?}");
    // Bytes: two long messages fill dan's.
    let long = "x".repeat(40 * 1024);
    assert!(matches!(say_to(&hub, &ann, "dan", &long).await, Event::Ack { offline: true, .. }));
    assert!(matches!(say_to(&hub, &ann, "dan", &long).await, Event::Error { .. }));
    // Delivered at the login, the mailbox takes messages again.
    let bob = join(&hub, "bob").await;
    assert_eq!(messages(&log_in(&hub, &bob, "bob").await).len(), MAX_MAILBOX_MESSAGES as usize);
    hub.command(bob.id, Command::Quit { reason: None }).await.unwrap();
    ann.drain(&hub).await;
    assert!(matches!(say_to(&hub, &ann, "bob", "again").await, Event::Ack { offline: true, .. }));
}

#[tokio::test]
async fn private_history_is_kept_for_accounts_and_read_only_by_the_parties() {
    let store = Arc::new(MemoryStore::new());
    account(&store, "ann");
    account(&store, "carol");
    let hub = hub::start(config(), store.clone()).unwrap();
    let ann = join(&hub, "ann").await;
    log_in(&hub, &ann, "ann").await;
    // bob is a guest; ann's account keeps their conversation.
    let bob = join(&hub, "bob").await;
    for (from, to, text) in [(&ann, "bob", "one"), (&bob, "ann", "two"), (&ann, "bob", "three")] {
        assert!(matches!(say_to(&hub, from, to, text).await, Event::Ack { offline: false, .. }));
    }
    let all = page(&hub, &ann, "BOB", latest(10)).await;
    assert_eq!(
        all,
        (
            vec![("ann".into(), "one".into()), ("bob".into(), "two".into()), ("ann".into(), "three".into())],
            false
        )
    );
    // Paged like a room: the newest, then before the oldest of it.
    hub.command(ann.id, history("bob", latest(2))).await.unwrap();
    let events = ann.until(|e| matches!(e, Event::History { .. })).await;
    let Some(Event::History { messages, more: true, .. }) = events.last() else { panic!("{events:?}") };
    let oldest = messages[0].mid.unwrap();
    let before = HistoryQuery { before: Some(oldest), limit: 2, ..HistoryQuery::default() };
    assert_eq!(page(&hub, &ann, "bob", before).await, (vec![("ann".into(), "one".into())], false));
    // bob, a guest, has nothing stored to read; carol, logged in, reads only her own.
    assert_eq!(page(&hub, &bob, "ann", latest(10)).await, (vec![], false));
    let carol = join(&hub, "carol").await;
    log_in(&hub, &carol, "carol").await;
    assert_eq!(page(&hub, &carol, "bob", latest(10)).await, (vec![], false));
    assert_eq!(page(&hub, &carol, "ann", latest(10)).await, (vec![], false));
    // A target that is no nickname is refused; a huge limit is cut to the largest page.
    hub.command(ann.id, history("bad nick!", latest(10))).await.unwrap();
    let events = ann.until(|e| matches!(e, Event::Error { .. })).await;
    assert!(matches!(events.last(), Some(Event::Error { refusal: Refusal::InvalidNick { .. }, .. })));
    assert_eq!(page(&hub, &ann, "bob", latest(u32::MAX)).await.0.len(), 3);
}

#[tokio::test]
async fn guests_private_messages_are_never_stored() {
    let store = Arc::new(MemoryStore::new());
    let hub = hub::start(config(), store.clone()).unwrap();
    let ann = join(&hub, "ann").await;
    let bob = join(&hub, "bob").await;
    let Event::Ack { message, offline: false, .. } = say_to(&hub, &ann, "bob", "between guests").await else {
        panic!()
    };
    assert_eq!(message.mid, None);
    assert_eq!(messages(&bob.drain(&hub).await).len(), 1);
    assert_eq!(store.last_private_mid().unwrap(), 0, "nothing on disk");
    assert_eq!(store.private_history("ann", "bob", latest(10)).unwrap(), (vec![], false));
}

#[tokio::test]
async fn retention_deletes_what_is_older_at_start() {
    let store = Arc::new(MemoryStore::new());
    let day = 86_400_000;
    let now = natter_core::time::now_ms();
    let record = RoomRecord {
        folded: "#old".into(),
        name: "#old".into(),
        topic: String::new(),
        topic_by: None,
        ephemeral: false,
        created_ts: 1,
        rules: Default::default(),
    };
    let room_message = |mid: u64, ts: u64| {
        Write::Message(StoredMessage {
            room: "#old".into(),
            mid,
            ts,
            nick: "ann".into(),
            sender_key: "ann".into(),
            cid: None,
            text: format!("{mid}"),
            action: false,
            notice: false,
        })
    };
    let private = |mid: u64, ts: u64| {
        Write::Private(StoredPrivate {
            mid,
            ts,
            from_key: "~ann".into(),
            nick: "ann".into(),
            to_key: "bob".into(),
            to_nick: "bob".into(),
            text: format!("{mid}"),
            action: false,
            notice: false,
            undelivered: false,
        })
    };
    store
        .commit(&[
            Write::Room(record),
            room_message(1, now - 3 * day),
            room_message(2, now - 2 * day),
            room_message(3, now - day / 2),
            private(1, now - 3 * day),
            private(2, now - day / 2),
        ])
        .unwrap();
    let config = HubConfig { retention: Some(std::time::Duration::from_secs(86_400)), ..config() };
    let hub = hub::start(config, store.clone()).unwrap();
    // The commit thread prunes before its first commit: once a message is acknowledged,
    // what was older than a day is gone.
    let ann = join(&hub, "ann").await;
    hub.command(ann.id, Command::say(Target::Room("#lobby".into()), "hi".into())).await.unwrap();
    ann.until(|e| matches!(e, Event::Ack { .. })).await;
    let kept = store.history("#old", latest(10)).unwrap().0;
    assert_eq!(kept.iter().map(|m| m.mid).collect::<Vec<_>>(), [3]);
    let kept = store.private_history("~ann", "bob", latest(10)).unwrap().0;
    assert_eq!(kept.iter().map(|m| m.mid).collect::<Vec<_>>(), [2]);
}

#[tokio::test]
async fn a_message_the_recipient_ignores_is_not_kept_in_its_history() {
    let store = Arc::new(MemoryStore::new());
    account(&store, "ann");
    let hub = hub::start(config(), store.clone()).unwrap();
    let ann = join(&hub, "ann").await;
    log_in(&hub, &ann, "ann").await;
    let bob = join(&hub, "bob").await;
    hub.command(ann.id, Command::Ignore { nick: Some("bob".into()), req: None }).await.unwrap();
    ann.drain(&hub).await;
    assert!(matches!(say_to(&hub, &bob, "ann", "let me in").await, Event::Ack { .. }));
    assert_eq!(messages(&ann.drain(&hub).await), []);
    assert_eq!(page(&hub, &ann, "bob", latest(10)).await, (vec![], false));
}
