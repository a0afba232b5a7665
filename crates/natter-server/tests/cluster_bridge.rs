//! Two natter servers as nodes of one cluster in this process: a shared in-memory store and
//! the in-process bus. Clients of different doors on different nodes share rooms and private
//! messages; what the bus brings that is not an event is dropped without harm.

mod harness;

use bytes::Bytes;
use harness::{Client, TestServer, json};
use natter_core::bus::{Bus, LocalBus};
use natter_core::cluster::ClusterOptions;
use natter_core::memory_store::MemoryStore;
use natter_server::ClusterLink;
use std::sync::Arc;

async fn two_nodes() -> (TestServer, TestServer, LocalBus) {
    let store: Arc<dyn natter_core::Store> = Arc::new(MemoryStore::new());
    let bus = LocalBus::new();
    let link =
        |name: &str, bus: LocalBus| ClusterLink { bus: Arc::new(bus), options: ClusterOptions::new(name) };
    let a = TestServer::node(store.clone(), link("a", bus.join())).await;
    let b = TestServer::node(store, link("b", bus.join())).await;
    (a, b, bus)
}

/// An IRC client on `addr` registered as `nick`, and the lines of its welcome burst.
async fn irc(addr: std::net::SocketAddr, nick: &str) -> (Client, Vec<String>) {
    let mut c = Client::connect(addr).await;
    c.line(&format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}")).await;
    c.line("PING :ready").await;
    let (burst, _) = c.until("PONG").await;
    (c, burst)
}

#[tokio::test]
async fn clients_of_different_doors_on_different_nodes_share_rooms_and_private_messages() {
    let (a, b, _bus) = two_nodes().await;
    let mut ann = Client::native(a.tcp, "ann").await;
    let (mut bob, burst) = irc(b.irc, "bob").await;
    // bob's node lists ann, who is on the other node, among the lobby's members.
    let names = burst.iter().find(|l| l.contains(" 353 ")).expect("names");
    assert!(names.contains("ann"), "{names}");
    ann.expect("\"join\"").await;

    ann.line(r##"{"type":"send","room":"#lobby","text":"hello from a","cid":"c1"}"##).await;
    let ack = ann.expect("\"ack\"").await;
    assert_eq!(json(&ack)["mid"], 1, "{ack}");
    let line = bob.expect("PRIVMSG #lobby").await;
    assert!(line.starts_with(":ann!") && line.ends_with(":hello from a"), "{line}");

    bob.line("PRIVMSG ann :and back, privately").await;
    let pm = ann.expect("and back, privately").await;
    let pm = json(&pm);
    assert_eq!((pm["from"].as_str(), pm["to"].as_str()), (Some("bob"), Some("ann")), "{pm}");

    // A text-mode user on node a sees bob's room message with the store's order.
    let mut cat = Client::connect(a.tcp).await;
    cat.line("cat").await;
    cat.expect("cat").await;
    bob.line("PRIVMSG #lobby :second").await;
    cat.expect("second").await;
    let line = ann.expect("second").await;
    assert_eq!(json(&line)["mid"], 2, "{line}");

    // bob quits: node a shows it.
    bob.line("QUIT :done").await;
    let quit = ann.expect("\"quit\"").await;
    assert_eq!(json(&quit)["nick"], "bob", "{quit}");
    a.shutdown("test over").await;
    b.shutdown("test over").await;
}

#[tokio::test]
async fn what_the_bus_brings_that_is_not_an_event_is_dropped() {
    let (a, b, bus) = two_nodes().await;
    let stranger = bus.join();
    let subject = natter_server::cluster::bridge::SUBJECT;
    for garbage in [
        &b""[..],
        b"\xff\xfe\x00",
        b"{\"v\":1",
        br#"{"v":9,"node":"x","event":"Hello"}"#,
        br#"{"v":1,"node":"not a name","event":"Hello"}"#,
        br#"{"v":1,"node":"x","event":{"SessionUp":{"session":1}}}"#,
        br##"{"v":1,"node":"x","event":{"SessionUp":{"session":1,"nick":"bad nick!","ident":"i","realname":"","kind":"Irc","account":null,"away":null,"bot":false,"rooms":["#lobby"]}}}"##,
        br##"{"v":1,"node":"x","event":{"Act":{"session":99,"act":{"Join":{"room":"#lobby"}}}}}"##,
    ] {
        stranger.publish(subject, Bytes::from_static(garbage)).unwrap();
    }
    stranger.publish(subject, Bytes::from(vec![b'{'; 2 << 20].split_off(0))).unwrap_err();
    let mut ann = Client::native(a.tcp, "ann").await;
    // A well-formed login from a node that never said hello is not believed either.
    let ghost = br##"{"v":1,"node":"x","event":{"SessionUp":{"session":1,"nick":"ghost","ident":"i@h","realname":"","kind":"Irc","account":null,"away":null,"bot":false,"rooms":["#lobby"]}}}"##;
    stranger.publish(subject, Bytes::from_static(ghost)).unwrap();
    // Both nodes still serve, and still hear each other.
    let mut bob = Client::native(b.tcp, "bob").await;
    ann.expect("\"join\"").await;
    bob.line(r##"{"type":"send","room":"#lobby","text":"still here"}"##).await;
    ann.expect("still here").await;
    // Everything the stranger published came before bob's message: the lobby is ann and bob.
    ann.line(r##"{"type":"who","room":"#lobby"}"##).await;
    let members = json(&ann.expect("\"members\"").await);
    assert_eq!(members["nicks"], serde_json::json!(["ann", "bob"]), "{members}");
    a.shutdown("test over").await;
    b.shutdown("test over").await;
}
