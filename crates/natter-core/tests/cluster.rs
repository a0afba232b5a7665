//! Hubs as the nodes of a cluster, in one process: one shared store that numbers messages
//! (the in-memory reference store) and a relay standing in for the bus, which can lose events.
//! Every node must deliver every room message once, in the one order the store gave.

mod common;

use common::{Peer, join};
use natter_core::cluster::{ClusterOptions, NodeEvent};
use natter_core::memory_store::MemoryStore;
use natter_core::store::Store;
use natter_core::{Command, Event, HubConfig, HubHandle, Target, hub};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Which relayed room messages the stand-in bus loses: every `n`th (0: none).
#[derive(Clone, Copy)]
struct Loss {
    every: u64,
}

/// Set, every room message after this many relayed is lost (the tail of a burst); one test
/// uses it.
static TAIL_AFTER: AtomicU64 = AtomicU64::new(u64::MAX);

/// Set, no event reaches any node (the bus is down); one test uses it.
static OUTAGE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set, a node's events stop reaching the others (as when its process is killed).
static CUT: [std::sync::atomic::AtomicBool; 4] = [const { std::sync::atomic::AtomicBool::new(false) }; 4];

/// `n` nodes on `store`, each event of each relayed to the others unless `loss` drops it.
fn cluster(n: usize, store: Arc<MemoryStore>, loss: Loss, config: HubConfig) -> Vec<HubHandle> {
    cluster_cut(n, store, loss, config, None)
}

/// [`cluster`], where node `cut` stops being heard once `CUT[cut]` is set (one test uses it).
fn cluster_cut(
    n: usize,
    store: Arc<MemoryStore>,
    loss: Loss,
    config: HubConfig,
    cut: Option<usize>,
) -> Vec<HubHandle> {
    let mut hubs = Vec::new();
    let mut outlets = Vec::new();
    for i in 0..n {
        let mut options = ClusterOptions::new(format!("node{i}"));
        options.gap_wait = Duration::from_millis(50);
        options.heartbeat = Duration::from_millis(50);
        // Short only where a node's death is the test: on a loaded machine a busy node can
        // miss a few heartbeats, and would be taken for gone.
        options.silence = if cut == Some(1) { Duration::from_millis(300) } else { Duration::from_secs(30) };
        let (hub, outlet) = hub::start_clustered(config.clone(), store.clone(), options).unwrap();
        hubs.push(hub);
        outlets.push(outlet);
    }
    let counter = Arc::new(AtomicU64::new(0));
    for (i, mut outlet) in outlets.into_iter().enumerate() {
        let others: Vec<HubHandle> =
            hubs.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, h)| h.clone()).collect();
        let counter = counter.clone();
        let outage = cut == Some(usize::MAX);
        let tail = cut == Some(usize::MAX - 1);
        let cut = cut.filter(|&c| c == i);
        tokio::spawn(async move {
            while let Some(event) = outlet.recv().await {
                if matches!(event.event, natter_core::cluster::ClusterEvent::RoomMessage(_)) {
                    let k = counter.fetch_add(1, Ordering::Relaxed) + 1;
                    if loss.every > 0 && k.is_multiple_of(loss.every) {
                        continue;
                    }
                    if tail && k > TAIL_AFTER.load(Ordering::Relaxed) {
                        continue;
                    }
                }
                if cut.is_some_and(|c| CUT[c].load(Ordering::Relaxed)) {
                    continue;
                }
                if outage && OUTAGE.load(Ordering::Relaxed) {
                    continue;
                }
                for hub in &others {
                    let _ = hub.node_event(event.clone()).await;
                }
            }
        });
    }
    hubs
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

fn join_room(room: &str) -> Command {
    Command::Join { room: room.into(), key: None, req: None }
}

/// The room messages `peer` receives until it has `count` of them, as (id, text).
async fn messages(peer: &Peer, count: usize) -> Vec<(u64, String)> {
    let mut got = Vec::new();
    while got.len() < count {
        let events = peer.until(|e| matches!(e, Event::Message(_))).await;
        for e in events {
            if let Event::Message(m) = e
                && m.room.is_some()
            {
                got.push((m.mid.unwrap_or(0), m.text.to_string()));
            }
        }
    }
    got
}

/// The acks `peer` receives until it has `count` of them, as (id, duplicate).
async fn acks(peer: &Peer, count: usize) -> Vec<(Option<u64>, bool)> {
    let mut got = Vec::new();
    while got.len() < count {
        for e in peer.until(|e| matches!(e, Event::Ack { .. } | Event::Error { .. })).await {
            match e {
                Event::Ack { message, duplicate, .. } => got.push((message.mid, duplicate)),
                Event::Error { refusal, .. } => panic!("refused: {refusal:?}"),
                _ => {}
            }
        }
    }
    got
}

/// Three nodes, one user each in `#lobby`, each sending `per_node` messages at once: returns
/// what each user received from the others, and the store.
async fn three_nodes_talk(loss: Loss, per_node: usize) -> (Vec<Vec<(u64, String)>>, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let hubs = cluster(3, store.clone(), loss, HubConfig::default());
    let mut peers = Vec::new();
    for (i, hub) in hubs.iter().enumerate() {
        let peer = join(hub, &format!("user{i}")).await;
        peer.drain(hub).await;
        peers.push(peer);
    }
    for (i, (hub, peer)) in hubs.iter().zip(&peers).enumerate() {
        for k in 0..per_node {
            hub.command(peer.id, say("#lobby", &format!("{i}:{k}"), None)).await.unwrap();
        }
    }
    let mut received = Vec::new();
    for peer in &peers {
        let (mut acked, mut got) = (0, Vec::new());
        while acked < per_node || got.len() < 2 * per_node {
            for e in peer.until(|e| matches!(e, Event::Ack { .. } | Event::Message(_))).await {
                match e {
                    Event::Ack { .. } => acked += 1,
                    Event::Message(m) => got.push((m.mid.unwrap_or(0), m.text.to_string())),
                    _ => {}
                }
            }
        }
        assert_eq!(acked, per_node);
        received.push(got);
    }
    (received, store)
}

/// Every user got every other user's messages once, in the store's order.
fn assert_one_order(received: &[Vec<(u64, String)>], store: &MemoryStore, per_node: usize) {
    let (stored, _) = store
        .history("#lobby", natter_core::store::HistoryQuery { limit: 10_000, ..Default::default() })
        .unwrap();
    assert_eq!(stored.len(), 3 * per_node);
    let ids: Vec<u64> = stored.iter().map(|m| m.mid).collect();
    assert_eq!(ids, (1..=3 * per_node as u64).collect::<Vec<_>>(), "gap-free ids");
    for (i, got) in received.iter().enumerate() {
        let expected: Vec<(u64, String)> = stored
            .iter()
            .filter(|m| !m.text.starts_with(&format!("{i}:")))
            .map(|m| (m.mid, m.text.clone()))
            .collect();
        assert_eq!(got, &expected, "user{i} received the others' messages once, in the store's order");
    }
}

#[tokio::test]
async fn messages_from_three_nodes_arrive_everywhere_once_in_one_order() {
    let (received, store) = three_nodes_talk(Loss { every: 0 }, 100).await;
    assert_one_order(&received, &store, 100);
}

#[tokio::test]
async fn messages_the_bus_loses_are_read_back_from_the_store_in_order() {
    let (received, store) = three_nodes_talk(Loss { every: 7 }, 100).await;
    assert_one_order(&received, &store, 100);
}

#[tokio::test]
async fn an_ephemeral_room_skips_what_the_bus_lost_and_goes_on() {
    let store = Arc::new(MemoryStore::new());
    let config = HubConfig { ephemeral_rooms: vec!["#quiet".into()], ..HubConfig::default() };
    let hubs = cluster(2, store.clone(), Loss { every: 2 }, config);
    let a = join(&hubs[0], "ann").await;
    let b = join(&hubs[1], "bob").await;
    for (hub, peer) in hubs.iter().zip([&a, &b]) {
        hub.command(peer.id, join_room("#quiet")).await.unwrap();
        peer.drain(hub).await;
    }
    for k in 0..10 {
        hubs[0].command(a.id, say("#quiet", &format!("m{k}"), None)).await.unwrap();
    }
    assert_eq!(acks(&a, 10).await.len(), 10);
    // Every other event was lost, and the store keeps nothing of the room: bob gets the
    // others, in order, and none of them has a stored id.
    let got = messages(&b, 5).await;
    let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["m0", "m2", "m4", "m6", "m8"]);
    assert!(got.iter().all(|(mid, _)| *mid == 0), "{got:?}");
    let (stored, _) = store
        .history("#quiet", natter_core::store::HistoryQuery { limit: 100, ..Default::default() })
        .unwrap();
    assert!(stored.is_empty(), "an ephemeral room's messages are kept nowhere: {stored:?}");
}

#[tokio::test]
async fn a_client_that_resends_on_another_node_is_recognised() {
    let store = Arc::new(MemoryStore::new());
    let hubs = cluster(2, store.clone(), Loss { every: 0 }, HubConfig::default());
    let secret = |nick: &str, outbox: &natter_core::Outbox| {
        let mut r = common::registration(nick, outbox);
        r.client_secret = Some("the client's own secret".into());
        r
    };
    let outbox = natter_core::Outbox::new(4096);
    let first = hubs[0].register(secret("ann", &outbox)).await.unwrap().unwrap();
    let ann = Peer { id: first.session, outbox };
    let watcher = join(&hubs[1], "bob").await;
    watcher.drain(&hubs[1]).await;
    hubs[0].command(ann.id, say("#lobby", "once", Some("c1"))).await.unwrap();
    assert_eq!(acks(&ann, 1).await, [(Some(1), false)]);
    assert_eq!(messages(&watcher, 1).await, [(1, "once".to_string())]);

    // ann's connection to node 0 is gone; her client moves to node 1 and resends.
    hubs[0].command(ann.id, Command::Quit { reason: None }).await.unwrap();
    let outbox = natter_core::Outbox::new(4096);
    let moved = hubs[1].register(secret("ann2", &outbox)).await.unwrap().unwrap();
    let ann = Peer { id: moved.session, outbox };
    hubs[1].command(ann.id, say("#lobby", "once", Some("c1"))).await.unwrap();
    assert_eq!(acks(&ann, 1).await, [(Some(1), true)], "acknowledged as the message already stored");
    hubs[1].command(ann.id, say("#lobby", "next", Some("c2"))).await.unwrap();
    assert_eq!(acks(&ann, 1).await, [(Some(2), false)]);
    let got = messages(&watcher, 1).await;
    assert_eq!(got, [(2, "next".to_string())], "the resend was not delivered again");
}

#[tokio::test]
async fn events_under_this_nodes_own_name_are_ignored() {
    let store = Arc::new(MemoryStore::new());
    let hubs = cluster(1, store, Loss { every: 0 }, HubConfig::default());
    let ann = join(&hubs[0], "ann").await;
    ann.drain(&hubs[0]).await;
    let forged = natter_core::cluster::RoomMessage {
        room: "#lobby".into(),
        room_name: "#lobby".into(),
        mid: 1,
        ts: 1,
        from: "mallory".into(),
        from_key: "mallory".into(),
        ident: "m@x".into(),
        account: None,
        text: "forged".into(),
        action: false,
        notice: false,
        bot: false,
        ephemeral: false,
        cid: None,
        meta: None,
    };
    let event =
        NodeEvent { node: "node0".into(), event: natter_core::cluster::ClusterEvent::RoomMessage(forged) };
    hubs[0].node_event(event).await.unwrap();
    let events = ann.drain(&hubs[0]).await;
    assert!(!events.iter().any(|e| matches!(e, Event::Message(_))), "{events:?}");
}

/// The nicks of a `Who` answer for `room`.
async fn members(hub: &HubHandle, peer: &Peer, room: &str) -> Vec<String> {
    let who = Command::Who { room: Some(room.into()), detail: false, page: Default::default(), req: None };
    hub.command(peer.id, who).await.unwrap();
    for e in peer.until(|e| matches!(e, Event::Members { .. } | Event::Error { .. })).await {
        match e {
            Event::Members { nicks, .. } => return nicks.iter().map(|n| n.to_string()).collect(),
            Event::Error { .. } => return Vec::new(),
            _ => {}
        }
    }
    unreachable!()
}

/// Waits until `peer` has been sent an event that `wanted` picks, and returns it.
async fn seen(peer: &Peer, wanted: impl Fn(&Event) -> bool) -> Event {
    peer.until(&wanted).await.into_iter().find(|e| wanted(e)).unwrap()
}

#[tokio::test]
async fn users_on_other_nodes_are_members_and_their_comings_and_goings_are_shown() {
    let store = Arc::new(MemoryStore::new());
    let hubs = cluster(3, store, Loss { every: 0 }, HubConfig::default());
    let ann = join(&hubs[0], "ann").await;
    seen(&ann, |e| matches!(e, Event::Joined { .. })).await;
    let bob = join(&hubs[1], "bob").await;
    seen(&ann, |e| matches!(e, Event::Join { nick, .. } if &**nick == "bob")).await;
    let cat = join(&hubs[2], "cat").await;
    seen(&ann, |e| matches!(e, Event::Join { nick, .. } if &**nick == "cat")).await;
    seen(&bob, |e| matches!(e, Event::Join { nick, .. } if &**nick == "cat")).await;
    for (hub, peer) in hubs.iter().zip([&ann, &bob, &cat]) {
        assert_eq!(members(hub, peer, "#lobby").await, ["ann", "bob", "cat"]);
    }

    // A nickname held on one node is taken everywhere.
    let refused = common::try_join(&hubs[2], "bob").await.err();
    assert!(matches!(refused, Some(natter_core::Refusal::NickInUse { .. })), "{refused:?}");

    hubs[1].command(bob.id, Command::Nick { nick: "robert".into(), req: None }).await.unwrap();
    seen(&ann, |e| matches!(e, Event::Nick { old, new, .. } if &**old == "bob" && &**new == "robert")).await;
    hubs[2].command(cat.id, join_room("#side")).await.unwrap();
    hubs[0].command(ann.id, join_room("#side")).await.unwrap();
    seen(&cat, |e| matches!(e, Event::Join { nick, room, .. } if &**nick == "ann" && &**room == "#side"))
        .await;
    let part = Command::Part { room: "#side".into(), reason: Some("later".into()), req: None };
    hubs[2].command(cat.id, part).await.unwrap();
    seen(&ann, |e| matches!(e, Event::Part { nick, .. } if &**nick == "cat")).await;
    hubs[2].command(cat.id, Command::Quit { reason: Some("bye".into()) }).await.unwrap();
    let quit = seen(&ann, |e| matches!(e, Event::Quit { .. })).await;
    assert!(
        matches!(&quit, Event::Quit { nick, reason: Some(r), .. } if &**nick == "cat" && &**r == "bye"),
        "{quit:?}"
    );
    assert_eq!(members(&hubs[0], &ann, "#lobby").await, ["ann", "robert"]);
    assert_eq!(members(&hubs[1], &bob, "#lobby").await, ["ann", "robert"]);
}

#[tokio::test]
async fn two_nodes_racing_for_one_nick_leave_it_to_one_session() {
    let store = Arc::new(MemoryStore::new());
    let hubs = cluster(2, store, Loss { every: 0 }, HubConfig::default());
    // Both log in as "ann" at once: each node has it free when asked.
    let (a, b) = tokio::join!(join(&hubs[0], "ann"), join(&hubs[1], "ann"));
    // The store gives it to one; the other is renamed and told.
    let renamed = tokio::select! {
        e = seen(&a, |e| matches!(e, Event::Notice { text, .. } if text.contains("in use on another node"))) => (0, e),
        e = seen(&b, |e| matches!(e, Event::Notice { text, .. } if text.contains("in use on another node"))) => (1, e),
    };
    let (loser, winner) = if renamed.0 == 0 { (&a, &b) } else { (&b, &a) };
    let (loser_hub, winner_hub) = if renamed.0 == 0 { (&hubs[0], &hubs[1]) } else { (&hubs[1], &hubs[0]) };
    let guest = match &renamed.1 {
        Event::Notice { text, .. } => text.rsplit(' ').next().unwrap().to_string(),
        _ => unreachable!(),
    };
    assert!(guest.starts_with("Guest"), "{guest}");
    // Both nodes end up showing the winner as ann and the loser by its guest name.
    // (Listed in the order of folded nicks.)
    let expected = vec!["ann".to_string(), guest.clone()];
    for _ in 0..100 {
        if members(winner_hub, winner, "#lobby").await == expected
            && members(loser_hub, loser, "#lobby").await == expected
        {
            return;
        }
        // The winner's node learns the loser's new name over the bus: ask again after it.
        loser.drain(loser_hub).await;
        winner.drain(winner_hub).await;
    }
    panic!(
        "never agreed: {:?} / {:?}",
        members(winner_hub, winner, "#lobby").await,
        members(loser_hub, loser, "#lobby").await
    );
}

#[tokio::test]
async fn a_ban_and_a_topic_set_on_one_node_hold_on_the_others() {
    let store = Arc::new(MemoryStore::new());
    let hubs = cluster(2, store, Loss { every: 0 }, HubConfig::default());
    let ann = join(&hubs[0], "ann").await;
    hubs[0].command(ann.id, join_room("#club")).await.unwrap();
    seen(&ann, |e| matches!(e, Event::Joined { room, .. } if &**room == "#club")).await;
    let bob = join(&hubs[1], "bob").await;
    hubs[1].command(bob.id, join_room("#club")).await.unwrap();
    seen(&ann, |e| matches!(e, Event::Join { nick, room, .. } if &**nick == "bob" && &**room == "#club"))
        .await;

    let topic = Command::Topic { room: "#club".into(), topic: Some("members only".into()), req: None };
    hubs[0].command(ann.id, topic).await.unwrap();
    seen(&bob, |e| matches!(e, Event::Topic { topic, .. } if &**topic == "members only")).await;

    // ann founded #club on node 0: she bans bob, and node 1 holds him to it.
    let ban = natter_core::RoomChange::Ban { mask: "bob!*@*".into(), on: true };
    hubs[0]
        .command(ann.id, Command::Mode { room: "#club".into(), changes: vec![ban], req: None })
        .await
        .unwrap();
    seen(&bob, |e| matches!(e, Event::RoomChanged { .. })).await;
    hubs[1].command(bob.id, say("#club", "can I?", None)).await.unwrap();
    let refused = seen(&bob, |e| matches!(e, Event::Error { .. })).await;
    assert!(
        matches!(&refused, Event::Error { refusal: natter_core::Refusal::CannotSend { .. }, .. }),
        "{refused:?}"
    );

    // And a kick on node 0 puts bob out on node 1.
    let kick =
        Command::Kick { room: "#club".into(), nick: "bob".into(), reason: Some("rules".into()), req: None };
    hubs[0].command(ann.id, kick).await.unwrap();
    seen(&bob, |e| matches!(e, Event::Kick { nick, .. } if &**nick == "bob")).await;
    assert_eq!(members(&hubs[1], &bob, "#club").await, ["ann"]);
}

#[tokio::test]
async fn the_users_of_a_node_that_stops_quit_on_the_others() {
    let store = Arc::new(MemoryStore::new());
    let hubs = cluster_cut(2, store.clone(), Loss { every: 0 }, HubConfig::default(), Some(1));
    let ann = join(&hubs[0], "ann").await;
    let bob = join(&hubs[1], "bob").await;
    seen(&ann, |e| matches!(e, Event::Join { nick, .. } if &**nick == "bob")).await;
    // Node 1 stops without a word (as a killed process does): nothing more of it is heard,
    // and its heartbeat in the store stops.
    CUT[1].store(true, Ordering::Relaxed);
    hubs[1].shutdown("gone").await;
    // (Stopping in order took it out of the store; a killed node's last heartbeat stays.)
    store.heartbeat("node1", 1).unwrap();
    drop(bob);
    let quit = seen(&ann, |e| matches!(e, Event::Quit { .. })).await;
    assert!(matches!(&quit, Event::Quit { nick, .. } if &**nick == "bob"), "{quit:?}");
    assert_eq!(members(&hubs[0], &ann, "#lobby").await, ["ann"]);
    // Its nickname is free again.
    common::join(&hubs[0], "bob").await;
}

fn pm(to: &str, text: &str) -> Command {
    Command::Say {
        target: Target::Nick(to.into()),
        text: text.into(),
        action: false,
        notice: false,
        meta: None,
        cid: None,
        req: None,
    }
}

#[tokio::test]
async fn a_private_message_reaches_its_recipient_on_another_node_only() {
    let store = Arc::new(MemoryStore::new());
    let hubs = cluster(3, store, Loss { every: 0 }, HubConfig::default());
    let ann = join(&hubs[0], "ann").await;
    let bob = join(&hubs[1], "bob").await;
    let cat = join(&hubs[2], "cat").await;
    seen(&ann, |e| matches!(e, Event::Join { nick, .. } if &**nick == "cat")).await;
    hubs[0].command(ann.id, pm("BOB", "psst")).await.unwrap();
    let got = seen(&bob, |e| matches!(e, Event::Message(_))).await;
    let Event::Message(m) = got else { unreachable!() };
    assert_eq!((&*m.from, &*m.text, m.to.as_deref()), ("ann", "psst", Some("bob")));
    assert!(m.room.is_none());
    assert!(matches!(seen(&ann, |e| matches!(e, Event::Ack { .. })).await, Event::Ack { .. }));
    // Answered the other way, and nobody else got either.
    hubs[1].command(bob.id, pm("ann", "hi back")).await.unwrap();
    let got = seen(&ann, |e| matches!(e, Event::Message(_))).await;
    assert!(matches!(&got, Event::Message(m) if &*m.text == "hi back"), "{got:?}");
    let others = cat.drain(&hubs[2]).await;
    assert!(!others.iter().any(|e| matches!(e, Event::Message(_))), "{others:?}");
}

#[tokio::test]
async fn an_invitation_on_one_node_opens_an_invite_only_room_on_another() {
    let store = Arc::new(MemoryStore::new());
    let hubs = cluster(2, store, Loss { every: 0 }, HubConfig::default());
    let ann = join(&hubs[0], "ann").await;
    hubs[0].command(ann.id, join_room("#vip")).await.unwrap();
    let invite_only = natter_core::RoomChange::InviteOnly(true);
    hubs[0]
        .command(ann.id, Command::Mode { room: "#vip".into(), changes: vec![invite_only], req: None })
        .await
        .unwrap();
    seen(&ann, |e| matches!(e, Event::RoomChanged { .. })).await;
    let bob = join(&hubs[1], "bob").await;
    seen(&ann, |e| matches!(e, Event::Join { nick, .. } if &**nick == "bob")).await;
    hubs[1].command(bob.id, join_room("#vip")).await.unwrap();
    let refused = seen(&bob, |e| matches!(e, Event::Error { .. })).await;
    assert!(
        matches!(&refused, Event::Error { refusal: natter_core::Refusal::InviteOnly { .. }, .. }),
        "{refused:?}"
    );
    hubs[0]
        .command(ann.id, Command::Invite { room: "#vip".into(), nick: "bob".into(), req: None })
        .await
        .unwrap();
    seen(&bob, |e| matches!(e, Event::Invite { .. })).await;
    hubs[1].command(bob.id, join_room("#vip")).await.unwrap();
    seen(&ann, |e| matches!(e, Event::Join { nick, room, .. } if &**nick == "bob" && &**room == "#vip"))
        .await;
}

#[tokio::test]
async fn a_server_operator_ends_a_session_of_another_node() {
    let store = Arc::new(MemoryStore::new());
    let config = HubConfig { operators: vec![("root".into(), "secret".into())], ..HubConfig::default() };
    let hubs = cluster(2, store, Loss { every: 0 }, config);
    let ann = join(&hubs[0], "ann").await;
    let bob = join(&hubs[1], "bob").await;
    seen(&ann, |e| matches!(e, Event::Join { nick, .. } if &**nick == "bob")).await;
    let oper = Command::Oper { name: "root".into(), password: "secret".into(), from: None, req: None };
    hubs[0].command(ann.id, oper).await.unwrap();
    seen(&ann, |e| matches!(e, Event::Notice { .. })).await;
    // An announcement reaches those who hear them on every node.
    hubs[1].command(bob.id, Command::HearAnnouncements { on: true }).await.unwrap();
    bob.drain(&hubs[1]).await;
    hubs[0]
        .command(ann.id, Command::Announce { text: "maintenance at noon".into(), req: None })
        .await
        .unwrap();
    let heard = seen(&bob, |e| matches!(e, Event::Announcement { .. })).await;
    assert!(
        matches!(&heard, Event::Announcement { from, text, .. } if &**from == "ann" && &**text == "maintenance at noon"),
        "{heard:?}"
    );
    let kill = Command::Kill { nick: "bob".into(), reason: "spam".into(), req: None };
    hubs[0].command(ann.id, kill).await.unwrap();
    // bob's own node ends his session, with the reason; ann sees him quit.
    let mut buf = Vec::new();
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), bob.outbox.next_batch(&mut buf)).await.unwrap() {
            natter_core::NextBatch::Closed(reason) => break reason,
            natter_core::NextBatch::Ready => buf.clear(),
        }
    };
    assert_eq!(&*closed.0, "spam");
    let quit = seen(&ann, |e| matches!(e, Event::Quit { .. })).await;
    assert!(matches!(&quit, Event::Quit { nick, .. } if &**nick == "bob"), "{quit:?}");
}

#[tokio::test]
async fn a_node_that_stops_in_order_says_so_at_once() {
    let store = Arc::new(MemoryStore::new());
    let hubs = cluster(2, store, Loss { every: 0 }, HubConfig::default());
    let ann = join(&hubs[0], "ann").await;
    let bob = join(&hubs[1], "bob").await;
    seen(&ann, |e| matches!(e, Event::Join { nick, .. } if &**nick == "bob")).await;
    hubs[1].shutdown("maintenance").await;
    drop(bob);
    let quit = seen(&ann, |e| matches!(e, Event::Quit { .. })).await;
    assert!(
        matches!(&quit, Event::Quit { nick, reason: Some(r), .. } if &**nick == "bob" && &**r == "maintenance"),
        "{quit:?}"
    );
}

#[tokio::test]
async fn after_a_bus_outage_what_was_said_meanwhile_is_read_from_the_store() {
    let store = Arc::new(MemoryStore::new());
    // (`usize::MAX`: this cluster's relay obeys OUTAGE.)
    let hubs = cluster_cut(2, store, Loss { every: 0 }, HubConfig::default(), Some(usize::MAX));
    let ann = join(&hubs[0], "ann").await;
    let bob = join(&hubs[1], "bob").await;
    seen(&ann, |e| matches!(e, Event::Join { nick, .. } if &**nick == "bob")).await;
    hubs[1].command(bob.id, say("#lobby", "before", None)).await.unwrap();
    assert_eq!(messages(&ann, 1).await, [(1, "before".to_string())]);
    OUTAGE.store(true, Ordering::Relaxed);
    for k in 0..600 {
        hubs[1].command(bob.id, say("#lobby", &format!("during {k}"), None)).await.unwrap();
    }
    assert_eq!(acks(&bob, 601).await.len(), 601);
    OUTAGE.store(false, Ordering::Relaxed);
    // Nothing else is said: the bus coming back alone brings the 600 (more than one read).
    hubs[0].bus_back().await.unwrap();
    let got = messages(&ann, 600).await;
    assert_eq!(got.first(), Some(&(2, "during 0".to_string())));
    assert_eq!(got.last(), Some(&(601, "during 599".to_string())));
    assert!(got.windows(2).all(|w| w[1].0 == w[0].0 + 1), "in order, none twice");
}

/// Two nodes "a" and "b" on `store` (gaps wait 50 ms), each event relayed to the other, except
/// b's room messages whose number (counting from 1) `lost` picks.
fn pair(store: Arc<dyn Store>, lost: fn(u64) -> bool) -> Vec<HubHandle> {
    let mut hubs = Vec::new();
    let mut outlets = Vec::new();
    for name in ["a", "b"] {
        let mut options = ClusterOptions::new(name);
        options.gap_wait = Duration::from_millis(50);
        let (hub, outlet) = hub::start_clustered(HubConfig::default(), store.clone(), options).unwrap();
        hubs.push(hub);
        outlets.push(outlet);
    }
    for (i, mut outlet) in outlets.into_iter().enumerate() {
        let other = hubs[1 - i].clone();
        let mut room_messages = 0;
        tokio::spawn(async move {
            while let Some(event) = outlet.recv().await {
                if i == 1 && matches!(event.event, natter_core::cluster::ClusterEvent::RoomMessage(_)) {
                    room_messages += 1;
                    if lost(room_messages) {
                        continue;
                    }
                }
                let _ = other.node_event(event).await;
            }
        });
    }
    hubs
}

type StoreResult<T> = Result<T, natter_core::StoreError>;

/// What a test's store does differently from the reference store it wraps ([`Twisted`]).
trait Twist: Send + Sync + 'static {
    /// Before a numbered commit; an error fails it.
    fn before_commit_numbered(&self) -> StoreResult<()> {
        Ok(())
    }

    /// A history read, given the reference store's `read`.
    fn history(
        &self,
        read: &dyn Fn() -> StoreResult<(Vec<natter_core::store::StoredMessage>, bool)>,
    ) -> StoreResult<(Vec<natter_core::store::StoredMessage>, bool)> {
        read()
    }
}

/// The reference store with a twist; everything else a cluster uses is the reference's.
struct Twisted<T> {
    inner: MemoryStore,
    twist: T,
}

impl<T: Twist> Twisted<T> {
    fn new(twist: T) -> Arc<Self> {
        Arc::new(Self { inner: MemoryStore::new(), twist })
    }
}

impl<T: Twist> Store for Twisted<T> {
    fn load_each(
        &self,
        recent: usize,
        room: &mut dyn FnMut(natter_core::store::LoadedRoom),
    ) -> StoreResult<()> {
        self.inner.load_each(recent, room)
    }
    fn commit(&self, batch: &[natter_core::store::Write]) -> StoreResult<()> {
        self.inner.commit(batch)
    }
    fn commit_numbered(&self, batch: &[natter_core::store::Write]) -> StoreResult<Vec<u64>> {
        self.twist.before_commit_numbered()?;
        self.inner.commit_numbered(batch)
    }
    fn history(
        &self,
        room: &str,
        query: natter_core::store::HistoryQuery,
    ) -> StoreResult<(Vec<natter_core::store::StoredMessage>, bool)> {
        self.twist.history(&|| self.inner.history(room, query))
    }
    fn claim_nick(&self, folded: &str, node: &str, session: u64) -> StoreResult<bool> {
        self.inner.claim_nick(folded, node, session)
    }
    fn release_nick(&self, folded: &str, node: &str, session: u64) -> StoreResult<()> {
        self.inner.release_nick(folded, node, session)
    }
    fn heartbeat(&self, node: &str, now: u64) -> StoreResult<()> {
        self.inner.heartbeat(node, now)
    }
    fn silent_nodes(&self, before: u64) -> StoreResult<Vec<String>> {
        self.inner.silent_nodes(before)
    }
    fn forget_node(&self, node: &str) -> StoreResult<()> {
        self.inner.forget_node(node)
    }
}

/// Commits fail while set (PostgreSQL away).
struct Failing(std::sync::atomic::AtomicBool);

impl Twist for Failing {
    fn before_commit_numbered(&self) -> StoreResult<()> {
        if self.0.load(Ordering::Relaxed) {
            return Err(natter_core::StoreError::Io("PostgreSQL at db:5432 is unavailable".into()));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_message_the_store_refused_is_refused_to_its_sender_and_its_resend_is_new() {
    let store = Twisted::new(Failing(true.into()));
    let hubs = pair(store.clone(), |_| false);
    let ann = join(&hubs[0], "ann").await;
    let bob = join(&hubs[1], "bob").await;
    seen(&ann, |e| matches!(e, Event::Join { nick, .. } if &**nick == "bob")).await;
    hubs[0].command(ann.id, say("#lobby", "lost?", Some("c1"))).await.unwrap();
    let refused = seen(&ann, |e| matches!(e, Event::Error { .. } | Event::Ack { .. })).await;
    assert!(
        matches!(&refused, Event::Error { refusal: natter_core::Refusal::NotStored { problem }, .. } if problem.contains("unavailable")),
        "{refused:?}"
    );
    // Nobody got it: it was never stored nor numbered.
    let events = bob.drain(&hubs[1]).await;
    assert!(!events.iter().any(|e| matches!(e, Event::Message(_))), "{events:?}");
    store.twist.0.store(false, Ordering::Relaxed);
    hubs[0].command(ann.id, say("#lobby", "lost?", Some("c1"))).await.unwrap();
    assert_eq!(acks(&ann, 1).await, [(Some(1), false)], "the resend is new, and stored");
    assert_eq!(messages(&bob, 1).await, [(1, "lost?".to_string())]);
}

#[tokio::test]
async fn an_accounts_owner_takes_its_nick_back_from_a_guest_on_another_node() {
    let store = Arc::new(MemoryStore::new());
    let record = natter_core::store::AccountRecord {
        folded: "bob".into(),
        name: "bob".into(),
        hash: natter_core::password::hash_password("bob's password").unwrap(),
        created_ts: 1,
        last_login_ts: None,
        scram: None,
    };
    assert!(store.create_account(&record).unwrap());
    let config =
        HubConfig { nick_protection: natter_core::hub::NickProtection::Optional, ..HubConfig::default() };
    let hubs = cluster(2, store, Loss { every: 0 }, config);
    // A guest holds "bob" on node 1.
    let squatter = join(&hubs[1], "bob").await;
    let owner = join(&hubs[0], "owner").await;
    // (Node 0 learns of the guest over the relay: asked until it has.)
    for _ in 0..100 {
        if members(&hubs[0], &owner, "#lobby").await == ["bob", "owner"] {
            break;
        }
        squatter.drain(&hubs[1]).await;
    }
    let login = Command::Login {
        name: "bob".into(),
        password: "bob's password".into(),
        from: Some("192.0.2.1".parse().unwrap()),
        req: None,
    };
    hubs[0].command(owner.id, login).await.unwrap();
    owner.answer().await.unwrap();
    hubs[0].command(owner.id, Command::Nick { nick: "bob".into(), req: None }).await.unwrap();
    // The guest's own node renames the guest, and the owner keeps the nickname.
    let renamed = seen(&squatter, |e| matches!(e, Event::Nick { old, .. } if &**old == "bob")).await;
    let Event::Nick { new: guest, .. } = renamed else { unreachable!() };
    assert!(guest.starts_with("Guest"), "{guest}");
    for _ in 0..100 {
        let lists = [members(&hubs[0], &owner, "#lobby").await, members(&hubs[1], &squatter, "#lobby").await];
        if lists[0] == lists[1]
            && lists[0].contains(&"bob".to_string())
            && lists[0].contains(&guest.to_string())
        {
            let events = owner.drain(&hubs[0]).await;
            assert!(
                !events.iter().any(
                    |e| matches!(e, Event::Notice { text, .. } if text.contains("in use on another node"))
                ),
                "the owner was not renamed: {events:?}"
            );
            return;
        }
    }
    panic!("the nodes never agreed on bob and the guest");
}

#[tokio::test]
async fn the_last_messages_of_a_burst_the_bus_lost_are_read_from_the_store_once_it_is_quiet() {
    let store = Arc::new(MemoryStore::new());
    // (`usize::MAX - 1`: this cluster's relay obeys TAIL_AFTER.)
    let hubs = cluster_cut(2, store, Loss { every: 0 }, HubConfig::default(), Some(usize::MAX - 1));
    let ann = join(&hubs[0], "ann").await;
    let bob = join(&hubs[1], "bob").await;
    seen(&ann, |e| matches!(e, Event::Join { nick, .. } if &**nick == "bob")).await;
    TAIL_AFTER.store(5, Ordering::Relaxed);
    for k in 1..=10 {
        hubs[1].command(bob.id, say("#lobby", &format!("m{k}"), None)).await.unwrap();
    }
    assert_eq!(acks(&bob, 10).await.len(), 10);
    // No later message shows the gap: the room going quiet does.
    let got = messages(&ann, 10).await;
    assert_eq!(got, (1..=10).map(|k| (k, format!("m{k}"))).collect::<Vec<_>>());
}

/// History reads wait at a gate while it is closed (a slow store read while the bus goes on
/// delivering).
#[derive(Default)]
struct Gate {
    closed: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
    /// Told when a read reaches the closed gate.
    waiting: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
    /// Set, a read queries the store first and then waits at the gate (its answer grows
    /// stale); else it waits first.
    read_first: std::sync::atomic::AtomicBool,
}

impl Gate {
    /// Closes the gate and waits until a read has reached it.
    async fn close_until_a_read_waits(&self) {
        let (tell, reached) = std::sync::mpsc::channel();
        *self.waiting.lock().unwrap() = Some(tell);
        *self.closed.lock().unwrap() = true;
        tokio::task::spawn_blocking(move || reached.recv_timeout(Duration::from_secs(30)).unwrap())
            .await
            .unwrap();
    }

    /// Lets the waiting reads go.
    fn open(&self) {
        *self.closed.lock().unwrap() = false;
        self.opened.notify_all();
    }
}

impl Twist for Gate {
    fn history(
        &self,
        read: &dyn Fn() -> StoreResult<(Vec<natter_core::store::StoredMessage>, bool)>,
    ) -> StoreResult<(Vec<natter_core::store::StoredMessage>, bool)> {
        let early = self.read_first.load(Ordering::Relaxed).then(read);
        let mut closed = self.closed.lock().unwrap();
        if *closed {
            if let Some(tell) = self.waiting.lock().unwrap().take() {
                let _ = tell.send(());
            }
            // (Bounded: a failed test must not leave its runtime waiting for this thread.)
            let (guard, _) = self.opened.wait_timeout_while(closed, Duration::from_secs(30), |c| *c).unwrap();
            closed = guard;
        }
        drop(closed);
        early.unwrap_or_else(read)
    }
}

#[tokio::test]
async fn a_store_read_that_returns_what_the_bus_delivered_meanwhile_hides_no_later_gap() {
    let store = Twisted::new(Gate { read_first: false.into(), ..Gate::default() });
    // The relay loses b's room messages from the fourth on (the tail of a burst that the bus
    // refused).
    let hubs = pair(store.clone(), |k| k >= 4);
    let ann = join(&hubs[0], "ann").await;
    let bob = join(&hubs[1], "bob").await;
    seen(&ann, |e| matches!(e, Event::Join { nick, .. } if &**nick == "bob")).await;
    // m1 reaches ann; the room goes quiet and asks the store what came after, and that read
    // waits at the gate while m2 and m3 reach ann over the bus.
    // (The gate closes once m1 is delivered: every node's first read of the room is done.)
    hubs[1].command(bob.id, say("#lobby", "m1", None)).await.unwrap();
    assert_eq!(messages(&ann, 1).await, [(1, "m1".to_string())]);
    store.twist.close_until_a_read_waits().await;
    for text in ["m2", "m3"] {
        hubs[1].command(bob.id, say("#lobby", text, None)).await.unwrap();
    }
    assert_eq!(messages(&ann, 2).await, [(2, "m2".to_string()), (3, "m3".to_string())]);
    store.twist.open();
    // The read brings m2 and m3 again. Then 600 messages are lost on the bus: the room going
    // quiet reads them from the store, more than one read's worth.
    for k in 4..604 {
        hubs[1].command(bob.id, say("#lobby", &format!("m{k}"), None)).await.unwrap();
    }
    let got = messages(&ann, 600).await;
    assert_eq!(got, (4..604).map(|k| (k, format!("m{k}"))).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_catch_up_read_that_grew_stale_gives_up_nothing() {
    let store = Twisted::new(Gate { read_first: true.into(), ..Gate::default() });
    // The relay loses b's second room message.
    let hubs = pair(store.clone(), |k| k == 2);
    let ann = join(&hubs[0], "ann").await;
    let bob = join(&hubs[1], "bob").await;
    seen(&ann, |e| matches!(e, Event::Join { nick, .. } if &**nick == "bob")).await;
    // m1 reaches ann; the room goes quiet and reads what came after m1: nothing, and that
    // answer waits at the gate while m2 (lost on the bus) and m3 are sent.
    // (The gate closes once m1 is delivered: every node's first read of the room is done.)
    hubs[1].command(bob.id, say("#lobby", "m1", None)).await.unwrap();
    assert_eq!(messages(&ann, 1).await, [(1, "m1".to_string())]);
    store.twist.close_until_a_read_waits().await;
    store.twist.read_first.store(false, Ordering::Relaxed);
    for text in ["m2", "m3"] {
        hubs[1].command(bob.id, say("#lobby", text, None)).await.unwrap();
    }
    assert_eq!(acks(&bob, 3).await.len(), 3);
    // m3 waits for m2 at ann's node. The stale answer ("nothing after m1") proves nothing
    // about m2, which was stored after it was read: the gap is read, and m2 delivered.
    store.twist.open();
    assert_eq!(messages(&ann, 2).await, [(2, "m2".to_string()), (3, "m3".to_string())]);
}

/// A question for the operators (the help desk's) reaches an operator on another node: being
/// an operator travels with the session, and the question goes to the operator's own node.
#[tokio::test]
async fn a_question_for_the_operators_reaches_an_operator_on_another_node() {
    let store = Arc::new(MemoryStore::new());
    let config = HubConfig { operators: vec![("root".into(), "secret".into())], ..HubConfig::default() };
    let hubs = cluster(2, store, Loss { every: 0 }, config);
    let op = join(&hubs[1], "op").await;
    let guest = join(&hubs[0], "guest").await;
    seen(&op, |e| matches!(e, Event::Join { nick, .. } if &**nick == "guest")).await;
    let ask = |text: &str| Command::AskOperators { text: text.into(), req: None };
    hubs[0].command(guest.id, ask("anyone?")).await.unwrap();
    let refused = seen(&guest, |e| matches!(e, Event::Error { .. })).await;
    assert!(
        matches!(&refused, Event::Error { refusal: natter_core::Refusal::NoSuchRecipient { .. }, .. }),
        "no operator anywhere yet: {refused:?}"
    );
    let oper = Command::Oper { name: "root".into(), password: "secret".into(), from: None, req: None };
    hubs[1].command(op.id, oper).await.unwrap();
    seen(&op, |e| matches!(e, Event::Notice { .. })).await;
    // What op says after becoming an operator reaches node 0 after the news of it.
    hubs[1].command(op.id, say("#lobby", "at your service", None)).await.unwrap();
    assert_eq!(messages(&guest, 1).await, [(1, "at your service".to_string())]);
    hubs[0].command(guest.id, ask("where is my order?")).await.unwrap();
    let question = seen(&op, |e| matches!(e, Event::Message(m) if m.room.is_none())).await;
    assert!(
        matches!(&question, Event::Message(m) if &*m.from == "guest" && m.to.as_deref() == Some("op")
            && &*m.text == "where is my order?"),
        "{question:?}"
    );
    // The operator hears when the guest leaves, though they share no room.
    hubs[0]
        .command(guest.id, Command::Part { room: "#lobby".into(), reason: None, req: None })
        .await
        .unwrap();
    seen(&op, |e| matches!(e, Event::Part { nick, .. } if &**nick == "guest")).await;
    hubs[0].command(guest.id, Command::Quit { reason: Some("thanks".into()) }).await.unwrap();
    let quit = seen(&op, |e| matches!(e, Event::Quit { .. })).await;
    assert!(matches!(&quit, Event::Quit { nick, .. } if &**nick == "guest"), "{quit:?}");
}

/// A room new to a node starts its order there after the newest message a read of the store
/// finds. A member who joined while that read was on its way was shown what the node had
/// then: a message stored elsewhere in between is delivered to them, not taken for history
/// they saw (a loaded machine made that window wide enough to lose a message).
#[tokio::test]
async fn a_message_said_while_a_room_starts_here_reaches_who_joined_meanwhile() {
    let store = Twisted::new(Gate::default());
    let hubs = pair(store.clone(), |_| false);
    let cat = join(&hubs[0], "cat").await;
    let bob = join(&hubs[1], "bob").await;
    seen(&cat, |e| matches!(e, Event::Join { nick, .. } if &**nick == "bob")).await;
    // Every read of the store waits from now on: the room's start on both nodes, the joins'
    // replays.
    let first_read = store.twist.close_until_a_read_waits();
    let joins = async {
        hubs[0].command(cat.id, join_room("#new")).await.unwrap();
        hubs[1].command(bob.id, join_room("#new")).await.unwrap();
    };
    tokio::join!(first_read, joins);
    hubs[0].command(cat.id, say("#new", "said meanwhile", None)).await.unwrap();
    // Stored (cat's answer waits behind her join's replay): read past the gate.
    let query = natter_core::store::HistoryQuery { limit: 10, ..Default::default() };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.inner.history("#new", query).unwrap().0.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never stored");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    store.twist.open();
    let shown = |e: &Event| match e {
        Event::Message(m) => &*m.text == "said meanwhile",
        Event::Joined { history, .. } => history.iter().any(|m| &*m.text == "said meanwhile"),
        _ => false,
    };
    seen(&bob, shown).await;
    let rest = bob.drain(&hubs[1]).await;
    assert!(!rest.iter().any(shown), "shown twice: {rest:?}");
}
