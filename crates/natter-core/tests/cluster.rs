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

/// Which relayed events the stand-in bus loses: every `n`th (0: none).
#[derive(Clone, Copy)]
struct Loss {
    every: u64,
}

/// `n` nodes on `store`, each event of each relayed to the others unless `loss` drops it.
fn cluster(n: usize, store: Arc<MemoryStore>, loss: Loss, config: HubConfig) -> Vec<HubHandle> {
    let mut hubs = Vec::new();
    let mut outlets = Vec::new();
    for i in 0..n {
        let mut options = ClusterOptions::new(format!("node{i}"));
        options.gap_wait = Duration::from_millis(50);
        let (hub, outlet) = hub::start_clustered(config.clone(), store.clone(), options).unwrap();
        hubs.push(hub);
        outlets.push(outlet);
    }
    let counter = Arc::new(AtomicU64::new(0));
    for (i, mut outlet) in outlets.into_iter().enumerate() {
        let others: Vec<HubHandle> =
            hubs.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, h)| h.clone()).collect();
        let counter = counter.clone();
        tokio::spawn(async move {
            while let Some(event) = outlet.recv().await {
                let k = counter.fetch_add(1, Ordering::Relaxed) + 1;
                if loss.every > 0 && k.is_multiple_of(loss.every) {
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
