//! Two natter servers as nodes of one cluster in this process, each with its own PostgreSQL
//! store on one shared database (as real nodes have), over the in-process bus: the cluster's
//! store methods (numbered commits, nick claims, heartbeats) through PostgreSQL.

mod harness;

use harness::{Client, TestServer, json};
use natter_core::bus::LocalBus;
use natter_core::cluster::ClusterOptions;
use natter_server::ClusterLink;
use std::sync::Arc;

#[tokio::test]
async fn two_nodes_on_one_postgresql_database_number_one_room_alike_and_share_nicknames() {
    let Some(pg) = natter_store::testing::shared() else { return };
    let url = pg.database();
    let open = |url: String| async move {
        let store: Arc<dyn natter_core::Store> = Arc::new(
            tokio::task::spawn_blocking(move || natter_store::PostgresStore::open(&url))
                .await
                .unwrap()
                .unwrap(),
        );
        store
    };
    let bus = LocalBus::new();
    let link =
        |name: &str, bus: LocalBus| ClusterLink { bus: Arc::new(bus), options: ClusterOptions::new(name) };
    let a = TestServer::node(open(url.clone()).await, link("a", bus.join())).await;
    let b = TestServer::node(open(url.clone()).await, link("b", bus.join())).await;

    let mut ann = Client::native(a.tcp, "ann").await;
    let mut bea = Client::native(b.tcp, "bea").await;
    ann.line(r##"{"type":"send","room":"#lobby","text":"one from a","cid":"c1"}"##).await;
    assert_eq!(json(&ann.expect("\"ack\"").await)["mid"], 1);
    bea.expect("one from a").await;
    bea.line(r##"{"type":"send","room":"#lobby","text":"two from b","cid":"c2"}"##).await;
    assert_eq!(json(&bea.expect("\"ack\"").await)["mid"], 2);
    let line = ann.expect("two from b").await;
    assert_eq!(json(&line)["mid"], 2, "{line}");

    // A nickname held on one node is taken on the other.
    let mut other = Client::connect(b.tcp).await;
    other.line(r#"{"type":"hello","nick":"ann"}"#).await;
    let refused = other.expect("\"error\"").await;
    assert!(refused.contains("nick"), "{refused}");

    // What PostgreSQL holds: both messages, in the order the cluster gave them.
    let stored = tokio::task::spawn_blocking(move || {
        let mut sql = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let rows = sql
            .query(
                "SELECT mid, convert_from(text, 'UTF8') FROM messages WHERE room = '#lobby' ORDER BY mid",
                &[],
            )
            .unwrap();
        rows.iter().map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1))).collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_eq!(stored, [(1, "one from a".to_owned()), (2, "two from b".to_owned())]);
    a.shutdown("test over").await;
    b.shutdown("test over").await;
}
