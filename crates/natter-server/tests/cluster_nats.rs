//! Two natter servers as nodes of one cluster over a real nats-server, the bus the product
//! uses (`cluster_bridge.rs` runs the same bridge over the in-process bus), with a shared
//! in-memory store: a room message crosses, and still crosses after nats-server was killed and
//! started again.

mod harness;
mod nats_util;

use harness::{Client, TestServer, json};
use nats_util::{NatsOptions, NatsServer, nats_available};
use natter_core::bus::Bus;
use natter_core::cluster::ClusterOptions;
use natter_core::memory_store::MemoryStore;
use natter_server::ClusterLink;
use natter_server::cluster::nats::NatsBus;
use std::sync::Arc;
use std::time::Duration;

/// Waits until `bus` says it is connected (`true`) or not.
async fn wait_connected(bus: &NatsBus, want: bool) {
    let mut connected = Bus::connected(bus).expect("NATS can be cut off");
    tokio::time::timeout(Duration::from_secs(30), connected.wait_for(|c| *c == want))
        .await
        .unwrap_or_else(|_| panic!("{} did not become connected={want}", bus.node_name()))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_over_nats_share_a_room_across_a_nats_restart() {
    if !nats_available() {
        return;
    }
    let mut nats = NatsServer::start(&NatsOptions::default());
    let store: Arc<dyn natter_core::Store> = Arc::new(MemoryStore::new());
    let bus_a = NatsBus::connect(&nats.url(), "a").await.unwrap();
    let bus_b = NatsBus::connect(&nats.url(), "b").await.unwrap();
    let link = |bus: &NatsBus| ClusterLink {
        bus: Arc::new(bus.clone()),
        options: ClusterOptions::new(bus.node_name()),
    };
    let a = TestServer::node(store.clone(), link(&bus_a)).await;
    let b = TestServer::node(store, link(&bus_b)).await;

    let mut ann = Client::native(a.tcp, "ann").await;
    let mut bob = Client::native(b.tcp, "bob").await;
    // bob's join, on the other node, reaches ann.
    ann.expect("\"join\"").await;
    ann.line(r##"{"type":"send","room":"#lobby","text":"hello over nats","cid":"c1"}"##).await;
    assert_eq!(json(&ann.expect("\"ack\"").await)["mid"], 1);
    assert_eq!(json(&bob.expect("hello over nats").await)["mid"], 1);

    nats.kill();
    wait_connected(&bus_a, false).await;
    wait_connected(&bus_b, false).await;
    // Stored and acknowledged while the bus is away.
    ann.line(r##"{"type":"send","room":"#lobby","text":"during the outage","cid":"c2"}"##).await;
    assert_eq!(json(&ann.expect("\"ack\"").await)["mid"], 2);
    nats.restart();
    wait_connected(&bus_a, true).await;
    wait_connected(&bus_b, true).await;
    ann.line(r##"{"type":"send","room":"#lobby","text":"after the restart","cid":"c3"}"##).await;
    assert_eq!(json(&ann.expect("\"ack\"").await)["mid"], 3);
    // bob gets both, in the store's order: the first from what the bus held through the
    // outage, or else read back from the store once the bus is back.
    assert_eq!(json(&bob.expect("during the outage").await)["mid"], 2);
    assert_eq!(json(&bob.expect("after the restart").await)["mid"], 3);

    a.shutdown("test over").await;
    b.shutdown("test over").await;
    bus_a.close().await;
    bus_b.close().await;
}
