//! Accounts in the hub, without any network: registering, logging in and out, changing a
//! password, the login throttle, the bounded password checkers, and nick protection.

mod common;

use natter_core::event::AccountChange;
use natter_core::hub::{self, NickProtection, SessionId};
use natter_core::memory_store::MemoryStore;
use natter_core::password::{PasswordProblem, hash_password};
use natter_core::refusal::Throttled;
use natter_core::store::AccountRecord;
use natter_core::{Command, DoorNote, Event, HubConfig, HubHandle, NextBatch, Outbox, Refusal, Store};
use std::sync::Arc;
use std::time::Duration;

struct Peer {
    id: SessionId,
    outbox: Outbox,
}

impl Peer {
    /// The next events, up to and including the first that `last` picks (waiting up to 10 s
    /// of real time for a password check).
    async fn until(&self, last: impl Fn(&Event) -> bool) -> Vec<Event> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.outbox.next_batch(&mut buf)).await {
                Ok(NextBatch::Ready) => {
                    for piece in buf.drain(..) {
                        out.extend(piece.deliveries().iter().map(|d| d.event.clone()));
                    }
                    if out.iter().any(&last) {
                        return out;
                    }
                }
                Ok(NextBatch::Closed(_)) => return out,
                Err(_) => panic!("no answer; got {out:?}"),
            }
        }
    }

    /// The answer to an account command: the account event, or the refusal.
    async fn answer(&self) -> Result<(AccountChange, String), Refusal> {
        let events = self.until(|e| matches!(e, Event::Account { .. } | Event::Error { .. })).await;
        for e in events {
            match e {
                Event::Account { change, account, .. } => return Ok((change, account.to_string())),
                Event::Error { refusal, .. } => return Err(refusal),
                _ => {}
            }
        }
        unreachable!()
    }

    /// Everything sent so far, after a barrier through the hub.
    async fn drain(&self, hub: &HubHandle) -> Vec<Event> {
        hub.command(self.id, Command::local(DoorNote::new("barrier"))).await.unwrap();
        self.until(|e| matches!(e, Event::Local(_))).await
    }
}

async fn join(hub: &HubHandle, nick: &str) -> Peer {
    try_join(hub, nick).await.unwrap()
}

async fn try_join(hub: &HubHandle, nick: &str) -> Result<Peer, Refusal> {
    let outbox = Outbox::new(4096);
    let registration = common::registration(nick, &outbox);
    match hub.register(registration).await.unwrap() {
        Ok(r) => Ok(Peer { id: r.session, outbox }),
        Err(e) => Err(e.0),
    }
}

fn start(protection: NickProtection) -> (HubHandle, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let config = HubConfig { nick_protection: protection, ..HubConfig::default() };
    (hub::start(config, store.clone()).unwrap(), store)
}

fn login(name: &str, password: &str, from: &str) -> Command {
    Command::Login {
        name: name.into(),
        password: password.into(),
        from: Some(from.parse().unwrap()),
        req: None,
    }
}

fn register(password: &str) -> Command {
    Command::Register { password: password.into(), from: Some("192.0.2.200".parse().unwrap()), req: None }
}

fn stored(store: &MemoryStore, name: &str, password: &str) {
    let record = AccountRecord {
        folded: name.to_lowercase(),
        name: name.into(),
        hash: hash_password(password).unwrap(),
        created_ts: 1,
        last_login_ts: None,
        scram: None,
    };
    assert!(store.create_account(&record).unwrap());
}

#[tokio::test]
async fn a_nick_is_registered_once_and_its_owner_logs_in_again_later() {
    let (hub, store) = start(NickProtection::Off);
    let ann = join(&hub, "Ann").await;
    hub.command(ann.id, register("correct horse")).await.unwrap();
    assert_eq!(ann.answer().await, Ok((AccountChange::Registered, "Ann".into())));
    let record = store.account("ann").unwrap().unwrap();
    assert!(record.hash.starts_with("$argon2id$"));
    // Registering again, or logging in while logged in, is refused.
    hub.command(ann.id, register("correct horse")).await.unwrap();
    assert_eq!(ann.answer().await, Err(Refusal::AlreadyLoggedIn { account: "Ann".into() }));
    hub.command(ann.id, login("ann", "correct horse", "192.0.2.1")).await.unwrap();
    assert_eq!(ann.answer().await, Err(Refusal::AlreadyLoggedIn { account: "Ann".into() }));
    hub.command(ann.id, Command::Logout { req: None }).await.unwrap();
    assert_eq!(ann.answer().await, Ok((AccountChange::LoggedOut, "Ann".into())));
    hub.command(ann.id, Command::Logout { req: None }).await.unwrap();
    assert_eq!(ann.answer().await, Err(Refusal::NotLoggedIn));
    // Someone else cannot register the same name, in any case.
    let other = join(&hub, "other").await;
    hub.command(other.id, Command::Nick { nick: "ANN2".into(), req: None }).await.unwrap();
    hub.command(ann.id, Command::Quit { reason: None }).await.unwrap();
    hub.command(other.id, Command::Nick { nick: "ANN".into(), req: None }).await.unwrap();
    hub.command(other.id, register("another password")).await.unwrap();
    assert_eq!(other.answer().await, Err(Refusal::AccountExists { name: "Ann".into() }));
    // Its owner logs in from another session, by any case of the name.
    let back = join(&hub, "back").await;
    hub.command(back.id, login("aNN", "correct horse", "192.0.2.1")).await.unwrap();
    assert_eq!(back.answer().await, Ok((AccountChange::LoggedIn, "Ann".into())));
    assert!(store.account("ann").unwrap().unwrap().last_login_ts.is_some());
}

#[tokio::test]
async fn weak_passwords_are_refused_and_unknown_accounts_look_like_wrong_passwords() {
    let (hub, store) = start(NickProtection::Off);
    stored(&store, "bob", "bob's password");
    let ann = join(&hub, "ann").await;
    for (password, problem) in [
        ("", PasswordProblem::TooShort),
        ("1234567", PasswordProblem::TooShort),
        (&*"x".repeat(257), PasswordProblem::TooLong),
    ] {
        hub.command(ann.id, register(password)).await.unwrap();
        assert_eq!(ann.answer().await, Err(Refusal::WeakPassword { problem }));
    }
    assert_eq!(store.account("ann").unwrap(), None);
    // The same refusal whether the account exists or not, and for impossible passwords.
    let addr = "192.0.2.9";
    for (name, password) in
        [("bob", "wrong password"), ("nobody", "wrong password"), ("bob", ""), ("bob", &*"x".repeat(300))]
    {
        hub.command(ann.id, login(name, password, addr)).await.unwrap();
        assert_eq!(ann.answer().await, Err(Refusal::BadCredentials), "{name}");
    }
    // Four wrong: the address waits; the account (three) does not yet.
    hub.command(ann.id, login("bob", "bob's password", addr)).await.unwrap();
    assert_eq!(ann.answer().await, Err(Refusal::TooManyAttempts { wait_secs: 1, by: Throttled::Address }));
    hub.command(ann.id, login("bob", "bob's password", "192.0.2.10")).await.unwrap();
    assert_eq!(ann.answer().await, Ok((AccountChange::LoggedIn, "bob".into())));
}

#[tokio::test(start_paused = true)]
async fn wrong_passwords_make_the_account_and_the_address_wait() {
    let (hub, store) = start(NickProtection::Off);
    stored(&store, "bob", "bob's password");
    let mallory = join(&hub, "mallory").await;
    for _ in 0..4 {
        hub.command(mallory.id, login("bob", "guess guess", "192.0.2.66")).await.unwrap();
        assert_eq!(mallory.answer().await, Err(Refusal::BadCredentials));
    }
    // The right password from elsewhere is not even checked while the account waits.
    let bob = join(&hub, "bobby").await;
    hub.command(bob.id, login("bob", "bob's password", "198.51.100.7")).await.unwrap();
    assert_eq!(bob.answer().await, Err(Refusal::TooManyAttempts { wait_secs: 1, by: Throttled::Account }));
    // Another account from the guesser's address waits too (the address is counted).
    hub.command(mallory.id, login("carol", "guess guess", "192.0.2.66")).await.unwrap();
    assert_eq!(
        mallory.answer().await,
        Err(Refusal::TooManyAttempts { wait_secs: 1, by: Throttled::Address })
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    hub.command(bob.id, login("bob", "bob's password", "198.51.100.7")).await.unwrap();
    assert_eq!(bob.answer().await, Ok((AccountChange::LoggedIn, "bob".into())));
    // The right password forgave the account.
    hub.command(bob.id, Command::Logout { req: None }).await.unwrap();
    bob.answer().await.unwrap();
    hub.command(bob.id, login("bob", "guess guess", "198.51.100.7")).await.unwrap();
    assert_eq!(bob.answer().await, Err(Refusal::BadCredentials));
}

#[tokio::test]
async fn a_password_changes_only_with_the_current_one() {
    let (hub, store) = start(NickProtection::Off);
    let ann = join(&hub, "ann").await;
    let passwd = |old: &str, new: &str| Command::Passwd {
        old: old.into(),
        new: new.into(),
        from: Some("192.0.2.1".parse().unwrap()),
        req: None,
    };
    hub.command(ann.id, passwd("whatever1", "whatever2")).await.unwrap();
    assert_eq!(ann.answer().await, Err(Refusal::NotLoggedIn));
    hub.command(ann.id, register("first password")).await.unwrap();
    ann.answer().await.unwrap();
    let before = store.account("ann").unwrap().unwrap().hash;
    hub.command(ann.id, passwd("wrong password", "second password")).await.unwrap();
    assert_eq!(ann.answer().await, Err(Refusal::BadCredentials));
    hub.command(ann.id, passwd("first password", "short")).await.unwrap();
    assert_eq!(ann.answer().await, Err(Refusal::WeakPassword { problem: PasswordProblem::TooShort }));
    assert_eq!(store.account("ann").unwrap().unwrap().hash, before);
    hub.command(ann.id, passwd("first password", "second password")).await.unwrap();
    assert_eq!(ann.answer().await, Ok((AccountChange::PasswordChanged, "ann".into())));
    let other = join(&hub, "other").await;
    hub.command(other.id, login("ann", "first password", "192.0.2.2")).await.unwrap();
    assert_eq!(other.answer().await, Err(Refusal::BadCredentials));
    hub.command(other.id, login("ann", "second password", "192.0.2.2")).await.unwrap();
    assert_eq!(other.answer().await, Ok((AccountChange::LoggedIn, "ann".into())));
}

#[tokio::test]
async fn the_hub_answers_others_while_a_burst_of_logins_is_checked() {
    let (hub, store) = start(NickProtection::Off);
    stored(&store, "bob", "bob's password");
    let mut guests = Vec::new();
    for i in 0..20 {
        guests.push(join(&hub, &format!("guest{i}")).await);
    }
    let chatter = join(&hub, "chatter").await;
    chatter.drain(&hub).await;
    for (i, g) in guests.iter().enumerate() {
        // Each from its own address: the throttle is not what holds them back.
        hub.command(g.id, login("bob", "bob's password", &format!("10.0.0.{i}"))).await.unwrap();
    }
    // A ping through the hub comes back at once, before the checks are done.
    hub.command(chatter.id, Command::local(DoorNote::new("ping"))).await.unwrap();
    chatter.until(|e| matches!(e, Event::Local(_))).await;
    // What the last guest has been sent so far holds no answer: its login was still being
    // checked when the ping came back.
    let mut buf = Vec::new();
    let last = guests.last().unwrap();
    while let Ok(NextBatch::Ready) =
        tokio::time::timeout(Duration::ZERO, last.outbox.next_batch(&mut buf)).await
    {}
    let answered = buf.iter().flat_map(|p| p.deliveries()).any(|d| matches!(d.event, Event::Account { .. }));
    assert!(!answered, "the hub waited for the logins before answering the ping");
    for g in &guests {
        assert_eq!(g.answer().await, Ok((AccountChange::LoggedIn, "bob".into())));
    }
}

#[tokio::test]
async fn a_flood_of_logins_is_queued_up_to_a_bound_and_the_rest_refused() {
    let (hub, store) = start(NickProtection::Off);
    stored(&store, "bob", "bob's password");
    let mut guests = Vec::new();
    for i in 0..80 {
        guests.push(join(&hub, &format!("guest{i}")).await);
    }
    for (i, g) in guests.iter().enumerate() {
        hub.command(g.id, login("bob", "bob's password", &format!("10.0.{}.{}", i / 200, i % 200)))
            .await
            .unwrap();
    }
    // One request at a time per session.
    hub.command(guests[79].id, login("bob", "bob's password", "10.1.0.1")).await.unwrap();
    let mut busy = 0;
    let mut ok = 0;
    for g in &guests {
        match g.answer().await {
            Ok(_) => ok += 1,
            Err(Refusal::AccountsBusy) => busy += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(ok + busy, 80);
    assert!(busy >= 80 - 66, "at most 2 running and 64 queued: {ok} checked, {busy} refused");
    assert!(ok >= 66, "{ok}");
}

#[tokio::test(start_paused = true)]
async fn under_enforce_a_registered_nick_must_log_in_within_the_grace_time() {
    let (hub, store) = start(NickProtection::Enforce);
    stored(&store, "bob", "bob's password");
    let (hub, _) = (hub::start(HubConfig::default(), store.clone()).unwrap(), hub);
    let squatter = join(&hub, "Bob").await;
    let events = squatter.drain(&hub).await;
    assert!(events.contains(&Event::NickProtected { nick: "Bob".into(), grace_secs: 30 }), "{events:?}");
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert!(!squatter.drain(&hub).await.iter().any(|e| matches!(e, Event::Nick { .. })));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = squatter.drain(&hub).await;
    let renamed = events.iter().find_map(|e| match e {
        Event::Nick { old, new, .. } => Some((old.to_string(), new.to_string())),
        _ => None,
    });
    let (old, new) = renamed.expect("renamed");
    assert_eq!(old, "Bob");
    assert!(new.starts_with("Guest") && new.len() == 10, "{new}");

    // Logging in within the time stops the timer.
    let owner = join(&hub, "bob").await;
    hub.command(owner.id, login("bob", "bob's password", "192.0.2.1")).await.unwrap();
    assert_eq!(owner.answer().await, Ok((AccountChange::LoggedIn, "bob".into())));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!owner.drain(&hub).await.iter().any(|e| matches!(e, Event::Nick { .. })));
}

#[tokio::test]
async fn look_alikes_of_a_registered_nick_are_refused_to_all_but_its_owner() {
    let store = Arc::new(MemoryStore::new());
    stored(&store, "paypal", "paypal password");
    let hub = hub::start(HubConfig::default(), store.clone()).unwrap();
    // Cyrillic а in place of the Latin a.
    let fake = "p\u{0430}yp\u{0430}l";
    assert_eq!(
        try_join(&hub, fake).await.err(),
        Some(Refusal::NickRegistered { nick: fake.into(), account: "paypal".into() })
    );
    let owner = join(&hub, "someone").await;
    hub.command(owner.id, Command::Nick { nick: fake.into(), req: None }).await.unwrap();
    assert!(
        owner
            .drain(&hub)
            .await
            .iter()
            .any(|e| matches!(e, Event::Error { refusal: Refusal::NickRegistered { .. }, .. }))
    );
    hub.command(owner.id, login("paypal", "paypal password", "192.0.2.1")).await.unwrap();
    owner.answer().await.unwrap();
    hub.command(owner.id, Command::Nick { nick: fake.into(), req: None }).await.unwrap();
    assert!(owner.drain(&hub).await.iter().any(|e| matches!(e, Event::Nick { new, .. } if &**new == fake)));
}

#[tokio::test]
async fn under_optional_anyone_may_hold_a_registered_nick_until_its_owner_reclaims_it() {
    let store = Arc::new(MemoryStore::new());
    stored(&store, "bob", "bob's password");
    let config = HubConfig { nick_protection: NickProtection::Optional, ..HubConfig::default() };
    let hub = hub::start(config, store.clone()).unwrap();
    let squatter = join(&hub, "bob").await;
    assert!(squatter.drain(&hub).await.contains(&Event::NickProtected { nick: "bob".into(), grace_secs: 0 }));
    let owner = join(&hub, "owner").await;
    hub.command(owner.id, Command::Nick { nick: "bob".into(), req: None }).await.unwrap();
    assert!(
        owner
            .drain(&hub)
            .await
            .iter()
            .any(|e| matches!(e, Event::Error { refusal: Refusal::NickInUse { .. }, .. }))
    );
    hub.command(owner.id, login("bob", "bob's password", "192.0.2.1")).await.unwrap();
    owner.answer().await.unwrap();
    hub.command(owner.id, Command::Nick { nick: "bob".into(), req: None }).await.unwrap();
    let events = owner.drain(&hub).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Nick { old, new, .. } if &**old == "owner" && &**new == "bob")),
        "{events:?}"
    );
    let squatted = squatter.drain(&hub).await;
    assert!(
        squatted.iter().any(
            |e| matches!(e, Event::Nick { old, new, .. } if &**old == "bob" && new.starts_with("Guest"))
        ),
        "{squatted:?}"
    );
}

#[tokio::test]
async fn with_protection_off_registered_nicks_are_first_come_first_served() {
    let store = Arc::new(MemoryStore::new());
    stored(&store, "bob", "bob's password");
    let config = HubConfig { nick_protection: NickProtection::Off, ..HubConfig::default() };
    let hub = hub::start(config, store.clone()).unwrap();
    let squatter = join(&hub, "bob").await;
    let events = squatter.drain(&hub).await;
    assert!(!events.iter().any(|e| matches!(e, Event::NickProtected { .. })), "{events:?}");
    assert!(try_join(&hub, "b\u{043e}b").await.is_err(), "a look-alike of someone online is still refused");
}

fn join_room(room: &str) -> Command {
    Command::Join { room: room.into(), key: None, req: None }
}

/// Whether the session was told it is an operator of `room` (when joining, or by a change).
fn is_op(events: &[Event], room: &str, nick: &str) -> bool {
    events.iter().any(|e| match e {
        Event::Joined { room: r, operators, .. } => &**r == room && operators.iter().any(|o| &**o == nick),
        Event::RoomChanged { room: r, changes, .. } => {
            &**r == room
                && changes.iter().any(
                    |c| matches!(c, natter_core::RoomChange::Operator { nick: n, on: true } if n == nick),
                )
        }
        _ => false,
    })
}

#[tokio::test]
async fn a_room_keeps_its_operator_by_account_across_nicks_and_restarts() {
    let store = Arc::new(MemoryStore::new());
    stored(&store, "ann", "ann's password");
    let config = HubConfig { nick_protection: NickProtection::Off, ..HubConfig::default() };
    let hub = hub::start(config.clone(), store.clone()).unwrap();
    let ann = join(&hub, "ann").await;
    hub.command(ann.id, login("ann", "ann's password", "192.0.2.1")).await.unwrap();
    ann.answer().await.unwrap();
    hub.command(ann.id, join_room("#team")).await.unwrap();
    assert!(is_op(&ann.drain(&hub).await, "#team", "ann"), "the founder is operator");
    // Stored before the restart below: a message's acknowledgement comes after its commit.
    hub.command(ann.id, Command::say(natter_core::Target::Room("#team".into()), "hi".into())).await.unwrap();
    ann.until(|e| matches!(e, Event::Ack { .. })).await;
    hub.command(ann.id, Command::Quit { reason: None }).await.unwrap();

    // Someone else on the nick `ann`, not logged in, is not operator.
    let imposter = join(&hub, "ann").await;
    imposter.drain(&hub).await;
    hub.command(imposter.id, join_room("#team")).await.unwrap();
    assert!(!is_op(&imposter.drain(&hub).await, "#team", "ann"));
    hub.command(imposter.id, Command::Quit { reason: None }).await.unwrap();

    // After a restart, the owner under another nick joins first, then logs in: operator again.
    let hub = hub::start(config, store.clone()).unwrap();
    let back = join(&hub, "annie").await;
    hub.command(back.id, join_room("#team")).await.unwrap();
    assert!(!is_op(&back.drain(&hub).await, "#team", "annie"));
    hub.command(back.id, login("ann", "ann's password", "192.0.2.1")).await.unwrap();
    let events = back.until(|e| matches!(e, Event::RoomChanged { .. })).await;
    assert!(matches!(events[0], Event::Account { .. }), "the login's answer first: {events:?}");
    assert!(is_op(&events, "#team", "annie"), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, Event::RoomChanged { by, .. } if &**by == "ChanServ")));
    hub.command(back.id, Command::say(natter_core::Target::Room("#team".into()), "hi".into())).await.unwrap();
    back.until(|e| matches!(e, Event::Ack { .. })).await;
    let rooms = store.load(0).unwrap();
    let team = rooms.iter().find(|r| r.record.folded == "#team").unwrap();
    assert_eq!(team.record.rules.founder.as_deref(), Some("ann"));
    assert_eq!(team.record.rules.operators, ["~ann"]);
}

#[tokio::test]
async fn an_operator_kept_by_nick_is_kept_by_account_once_logged_in() {
    let store = Arc::new(MemoryStore::new());
    let config = HubConfig { nick_protection: NickProtection::Off, ..HubConfig::default() };
    let hub = hub::start(config, store.clone()).unwrap();
    let bob = join(&hub, "bob").await;
    hub.command(bob.id, join_room("#b")).await.unwrap();
    assert!(is_op(&bob.drain(&hub).await, "#b", "bob"));
    hub.command(bob.id, register("bob's password")).await.unwrap();
    bob.answer().await.unwrap();
    bob.drain(&hub).await;
    // The switch is stored with the room: a message's acknowledgement comes after its commit.
    hub.command(bob.id, Command::say(natter_core::Target::Room("#b".into()), "kept".into())).await.unwrap();
    bob.until(|e| matches!(e, Event::Ack { .. })).await;
    let rooms = store.load(0).unwrap();
    let b = rooms.iter().find(|r| r.record.folded == "#b").unwrap();
    assert_eq!(b.record.rules.operators, ["~bob"]);
    assert_eq!(b.record.rules.founder, None, "founded before the account existed");
}

#[tokio::test(start_paused = true)]
async fn an_address_may_register_only_a_few_accounts_an_hour() {
    let config =
        HubConfig { nick_protection: NickProtection::Off, registrations_per_hour: 2, ..HubConfig::default() };
    let hub = hub::start(config, Arc::new(MemoryStore::new())).unwrap();
    let from = |addr: &str| Some(addr.parse().unwrap());
    let register_from =
        |addr: &str| Command::Register { password: "long enough".into(), from: from(addr), req: None };
    for nick in ["one", "two"] {
        let p = join(&hub, nick).await;
        hub.command(p.id, register_from("198.51.100.9")).await.unwrap();
        assert_eq!(p.answer().await, Ok((AccountChange::Registered, nick.into())));
    }
    let third = join(&hub, "three").await;
    hub.command(third.id, register_from("198.51.100.9")).await.unwrap();
    assert_eq!(third.answer().await, Err(Refusal::TooManyRegistrations { wait_secs: 3600 }));
    // Another address is not held back; the first may register again after the hour.
    hub.command(third.id, register_from("203.0.113.4")).await.unwrap();
    assert_eq!(third.answer().await, Ok((AccountChange::Registered, "three".into())));
    tokio::time::advance(Duration::from_secs(3600)).await;
    let fourth = join(&hub, "four").await;
    hub.command(fourth.id, register_from("198.51.100.9")).await.unwrap();
    assert_eq!(fourth.answer().await, Ok((AccountChange::Registered, "four".into())));
}
