//! The bus conformance suite: what the hub may rely on from a cluster bus (the core's `Bus`
//! trait), checked the same way on the in-process `LocalBus` and on `NatsBus` through a real
//! nats-server; then what only NATS can do to a node: go away and come back, carry what a
//! stranger publishes, refuse credentials.

mod nats_util;

use bytes::Bytes;
use nats_util::{NatsOptions, NatsServer, nats_available};
use natter_core::bus::{Bus, BusError, BusMessage, LocalBus, SUBSCRIPTION_CAPACITY};
use natter_server::cluster::nats::NatsBus;
use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc::Receiver;

/// How long a message may take to arrive before the test fails.
const ARRIVE_WITHIN: Duration = Duration::from_secs(10);

/// The largest payload the test nats-server takes: small, so that the limit is the server's
/// (read from its greeting), not the client's default.
const NATS_MAX_PAYLOAD: usize = 64 * 1024;

/// Every log line of this test binary (each test's nodes have names of their own to find theirs
/// by): what an operator would read.
static LOG: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing log lines at `info`, as `natter serve` logs by default.
fn capture_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .init();
    });
}

/// The captured lines that mention `word`.
fn log_lines(word: &str) -> Vec<String> {
    let log = LOG.lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&log).lines().filter(|l| l.contains(word)).map(str::to_owned).collect()
}

/// A node of a bus under test.
trait Node: Bus {
    /// Returns once every message published so far to this node's subscriptions (`total` in
    /// all) has been put in their channels or dropped: the barrier before counting drops.
    fn settled(&self, total: u64) -> impl Future<Output = ()> + Send;
}

impl Node for LocalBus {
    async fn settled(&self, _total: u64) {
        // Delivery is done when publish returns.
    }
}

impl Node for NatsBus {
    async fn settled(&self, total: u64) {
        let deadline = tokio::time::Instant::now() + ARRIVE_WITHIN;
        loop {
            let counts = self.counts();
            if counts.received + counts.dropped >= total {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "only {counts:?} of {total} messages arrived");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn next(rx: &mut Receiver<BusMessage>) -> BusMessage {
    tokio::time::timeout(ARRIVE_WITHIN, rx.recv())
        .await
        .expect("a message within the deadline")
        .expect("the subscription is open")
}

/// Publishes, waiting for room when the bus says its queue is full: the pace of a publisher
/// that counts on its messages arriving.
async fn publish(bus: &impl Bus, subject: &str, payload: impl Into<Bytes>) {
    let payload = payload.into();
    let deadline = tokio::time::Instant::now() + ARRIVE_WITHIN;
    loop {
        match bus.publish(subject, payload.clone()) {
            Ok(()) => return,
            Err(BusError::Unavailable(why)) if tokio::time::Instant::now() < deadline => {
                assert!(why.contains("full"), "{why}");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(e) => panic!("publishing on {subject}: {e}"),
        }
    }
}

/// The payloads received up to (not including) the first `end`.
async fn until_end(rx: &mut Receiver<BusMessage>) -> Vec<(String, Bytes)> {
    let mut got = Vec::new();
    loop {
        let m = next(rx).await;
        if m.payload == "end" {
            return got;
        }
        got.push((m.subject, m.payload));
    }
}

// ---- The checks, the same for every bus ----

/// A message reaches every other subscribed node, and not its publisher: the publisher's
/// first message is one published by another node after the first one arrived elsewhere, which
/// an echo would have come before.
async fn reaches_every_other_node_not_the_publisher(nodes: &[impl Node]) {
    let mut rx = Vec::new();
    for node in nodes {
        rx.push(node.subscribe("natter.room.>").await.unwrap());
    }
    nodes[0].publish("natter.room.lobby", Bytes::from_static(b"hello")).unwrap();
    for rx in &mut rx[1..] {
        assert_eq!(
            next(rx).await,
            BusMessage { subject: "natter.room.lobby".into(), payload: "hello".into() }
        );
    }
    nodes[1].publish("natter.room.lobby", Bytes::from_static(b"barrier")).unwrap();
    assert_eq!(next(&mut rx[0]).await.payload, "barrier", "the publisher got its own message back");
}

/// 10,000 messages of one publisher on one subject arrive in order, none lost or doubled (the
/// reader keeps up: it reads each thousand before the next is published).
async fn one_publishers_messages_arrive_in_order(nodes: &[impl Node]) {
    let mut rx = nodes[1].subscribe("natter.room.order").await.unwrap();
    for window in 0..10u32 {
        for i in window * 1000..(window + 1) * 1000 {
            publish(&nodes[0], "natter.room.order", i.to_be_bytes().to_vec()).await;
        }
        for i in window * 1000..(window + 1) * 1000 {
            let m = next(&mut rx).await;
            assert_eq!(m.payload, &i.to_be_bytes()[..], "message {i} out of order");
        }
    }
    publish(&nodes[0], "natter.room.order", "end").await;
    assert_eq!(next(&mut rx).await.payload, "end", "a message arrived twice");
}

/// `*` matches one token, `>` one or more, a subject only itself; a node subscribed twice gets
/// a message twice.
async fn patterns_match_as_in_nats(nodes: &[impl Node]) {
    let mut one = nodes[1].subscribe("natter.*.x").await.unwrap();
    let mut rest = nodes[1].subscribe("natter.>").await.unwrap();
    let mut exact = nodes[1].subscribe("natter.room.x").await.unwrap();
    let mut exact_again = nodes[1].subscribe("natter.room.x").await.unwrap();
    for subject in
        ["natter.room.x", "natter.a.b.c", "natter", "natter.room.x.y", "other.room.x", "natter.room"]
    {
        publish(&nodes[0], subject, subject.to_owned()).await;
    }
    publish(&nodes[0], "natter.end.x", "end").await;
    publish(&nodes[0], "natter.room.x", "end").await;
    let subjects = |got: Vec<(String, Bytes)>| {
        got.into_iter()
            .map(|(s, p)| {
                assert_eq!(s.as_bytes(), &p[..]);
                s
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(subjects(until_end(&mut one).await), ["natter.room.x"]);
    assert_eq!(
        subjects(until_end(&mut rest).await),
        ["natter.room.x", "natter.a.b.c", "natter.room.x.y", "natter.room"]
    );
    assert_eq!(subjects(until_end(&mut exact).await), ["natter.room.x"]);
    assert_eq!(subjects(until_end(&mut exact_again).await), ["natter.room.x"]);
}

/// Subjects with wildcards, empty tokens or spaces are refused for publishing, malformed
/// patterns for subscribing; a payload over the bus's limit is refused with its size, one at
/// the limit arrives whole.
async fn bad_subjects_and_oversized_payloads_are_refused(nodes: &[impl Node]) {
    for subject in
        ["", "natter..x", "natter.*", "natter.>", "natter.room x", "natter.room\r\n", ".natter", "natter."]
    {
        assert!(
            matches!(nodes[0].publish(subject, Bytes::from_static(b"x")), Err(BusError::Subject(s)) if s == subject),
            "{subject:?} was taken"
        );
    }
    for pattern in ["", "natter..x", "natter.>.x", "natter room", "natter.\t"] {
        assert!(
            matches!(nodes[0].subscribe(pattern).await, Err(BusError::Subject(s)) if s == pattern),
            "{pattern:?} was taken"
        );
    }
    let max = nodes[0].max_payload();
    let mut rx = nodes[1].subscribe("natter.big").await.unwrap();
    match nodes[0].publish("natter.big", Bytes::from(vec![7u8; max + 1])) {
        Err(BusError::TooLarge { size, max: limit }) => assert_eq!((size, limit), (max + 1, max)),
        other => panic!("an oversized payload: {other:?}"),
    }
    publish(&nodes[0], "natter.big", vec![7u8; max]).await;
    let m = next(&mut rx).await;
    assert!(m.payload.len() == max && m.payload.iter().all(|b| *b == 7), "{} bytes arrived", m.payload.len());
}

/// A reader that goes away costs neither the publisher nor the other readers anything.
async fn a_dropped_receiver_breaks_nothing(nodes: &[impl Node]) {
    let gone = nodes[1].subscribe("natter.room.drop").await.unwrap();
    let mut same_node = nodes[1].subscribe("natter.room.drop").await.unwrap();
    let mut other_node = nodes[2].subscribe("natter.room.drop").await.unwrap();
    publish(&nodes[0], "natter.room.drop", "first").await;
    assert_eq!(next(&mut same_node).await.payload, "first");
    assert_eq!(next(&mut other_node).await.payload, "first");
    drop(gone);
    for i in 0..100u32 {
        publish(&nodes[0], "natter.room.drop", i.to_string()).await;
    }
    for i in 0..100u32 {
        assert_eq!(next(&mut same_node).await.payload, i.to_string());
        assert_eq!(next(&mut other_node).await.payload, i.to_string());
    }
}

/// Payloads are bytes: every byte value, NUL, invalid UTF-8, line ends, nothing at all.
async fn binary_payloads_arrive_unchanged(nodes: &[impl Node]) {
    let payloads: Vec<Vec<u8>> = vec![
        (0..=255u8).collect(),
        vec![0],
        vec![0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80],
        b"PUB natter.x 3\r\nabc\r\n".to_vec(),
        Vec::new(),
        (0..=255u8).rev().cycle().take(5000).collect(),
    ];
    let mut rx = nodes[1].subscribe("natter.bytes").await.unwrap();
    for payload in &payloads {
        publish(&nodes[0], "natter.bytes", payload.clone()).await;
    }
    for payload in &payloads {
        assert_eq!(next(&mut rx).await.payload, &payload[..]);
    }
}

/// A reader that does not read holds at most `SUBSCRIPTION_CAPACITY` messages; the rest are
/// dropped (and counted), and what it holds is the oldest, in order; once it reads again,
/// new messages arrive.
async fn a_slow_reader_is_bounded(nodes: &[impl Node]) {
    let extra = 100;
    let total = SUBSCRIPTION_CAPACITY + extra;
    let mut slow = nodes[1].subscribe("natter.room.slow").await.unwrap();
    for i in 0..total as u32 {
        publish(&nodes[0], "natter.room.slow", i.to_be_bytes().to_vec()).await;
    }
    nodes[1].settled(total as u64).await;
    assert_eq!(slow.len(), SUBSCRIPTION_CAPACITY, "what a reader that does not read holds");
    for i in 0..SUBSCRIPTION_CAPACITY as u32 {
        assert_eq!(slow.try_recv().unwrap().payload, &i.to_be_bytes()[..]);
    }
    assert!(slow.try_recv().is_err(), "more than the capacity was kept");
    publish(&nodes[0], "natter.room.slow", "after").await;
    assert_eq!(next(&mut slow).await.payload, "after");
}

// ---- The two buses ----

fn local_nodes() -> Vec<LocalBus> {
    let first = LocalBus::new();
    vec![first.join(), first.join(), first]
}

/// Three nodes on a nats-server of the test's own (kept alive with them), or `None` when the
/// server is not installed and that is allowed. They are named `TEST-a`, `TEST-b`, `TEST-c`.
async fn nats_nodes(test: &str) -> Option<(NatsServer, Vec<NatsBus>)> {
    capture_log();
    if !nats_available() {
        return None;
    }
    let server =
        NatsServer::start(&NatsOptions { max_payload: Some(NATS_MAX_PAYLOAD), ..Default::default() });
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        nodes.push(NatsBus::connect(&server.url(), &format!("{test}-{name}")).await.unwrap());
    }
    assert_eq!(nodes[0].max_payload(), NATS_MAX_PAYLOAD, "the limit is the server's");
    Some((server, nodes))
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::$check(&super::local_nodes()).await;
                }
            )*
        }
        mod nats {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some((_server, nodes)) = super::nats_nodes(stringify!($check)).await else { return };
                    super::$check(&nodes).await;
                    for node in &nodes {
                        node.close().await;
                    }
                }
            )*
        }
    };
}

conformance!(
    reaches_every_other_node_not_the_publisher,
    one_publishers_messages_arrive_in_order,
    patterns_match_as_in_nats,
    bad_subjects_and_oversized_payloads_are_refused,
    a_dropped_receiver_breaks_nothing,
    binary_payloads_arrive_unchanged,
    a_slow_reader_is_bounded,
);

// ---- NATS only ----

/// Waits until the bus's connected state is `want`.
async fn wait_connected(bus: &NatsBus, want: bool) {
    let mut connected = Bus::connected(bus).expect("NATS can be cut off");
    tokio::time::timeout(Duration::from_secs(30), connected.wait_for(|c| *c == want))
        .await
        .unwrap_or_else(|_| panic!("{} did not become connected={want}", bus.node_name()))
        .unwrap();
}

/// nats-server killed and started again on its port: the bus says it lost NATS and got it
/// back; publishing meanwhile neither waits nor fails other than with the bus's own error;
/// afterwards, a message reaches the other node on the subscription made before the outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_the_bus_survives_a_server_restart() {
    let Some((mut server, nodes)) = nats_nodes("restart").await else { return };
    let mut rx = nodes[1].subscribe("natter.room.>").await.unwrap();
    nodes[0].publish("natter.room.a", Bytes::from_static(b"before")).unwrap();
    assert_eq!(next(&mut rx).await.payload, "before");

    server.kill();
    wait_connected(&nodes[0], false).await;
    wait_connected(&nodes[1], false).await;
    let started = std::time::Instant::now();
    let mut refused = 0;
    for i in 0..10_000u32 {
        match nodes[0].publish("natter.room.a", Bytes::from(format!("outage {i}"))) {
            Ok(()) => {}
            Err(BusError::Unavailable(why)) if why.contains("full") => refused += 1,
            Err(e) => panic!("publishing during the outage: {e}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(2), "publishing waited: {:?}", started.elapsed());
    assert!(refused > 0, "10,000 messages fitted in a bounded queue");
    assert_eq!(nodes[0].counts().queue_full, refused);

    // An outage long enough for the client to try and fail a few times.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while nodes[0].counts().failed_connects < 3 {
        assert!(tokio::time::Instant::now() < deadline, "no reconnection attempts: {:?}", nodes[0].counts());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.restart();
    wait_connected(&nodes[0], true).await;
    wait_connected(&nodes[1], true).await;
    // The other node resubscribes right after it reconnects; publish until its subscription
    // is back (a bus may lose what comes before), without subscribing again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut tries = 0u32;
    'arrived: loop {
        assert!(tokio::time::Instant::now() < deadline, "nothing published after the restart arrived");
        tries += 1;
        publish(&nodes[0], "natter.room.a", format!("after {tries}")).await;
        let until = tokio::time::Instant::now() + Duration::from_millis(200);
        while let Ok(Some(m)) = tokio::time::timeout_at(until, rx.recv()).await {
            assert_ne!(m.payload, "before", "an old message came again");
            if m.payload.starts_with(b"after ") {
                break 'arrived;
            }
        }
    }
    for node in &nodes {
        node.close().await;
    }
    // One warning when the outage began and one line when it ended, per node, however many
    // times the client tried meanwhile.
    for node in ["restart-a", "restart-b"] {
        let lines = log_lines(node);
        let lost =
            lines.iter().filter(|l| l.contains("WARN") && l.contains("lost the connection to NATS")).count();
        let back = lines.iter().filter(|l| l.contains("INFO") && l.contains("reconnected to NATS")).count();
        assert_eq!((lost, back), (1, 1), "{node}: {lines:#?}");
    }
}

/// A stranger on the NATS server publishes on natter's subjects what no node would: invalid
/// bytes, a message with headers, the largest payload the server takes, then more than that
/// (the server refuses it and closes that client) and then no protocol at all. The node's
/// subscription gets the first three as they are, and the bus goes on working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_garbage_from_a_raw_client_arrives_as_bytes() {
    let Some((server, nodes)) = nats_nodes("garbage").await else { return };
    let mut rx = nodes[0].subscribe("natter.>").await.unwrap();

    let stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = String::new();
    read.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("INFO "), "{line}");
    let big = vec![0xaau8; NATS_MAX_PAYLOAD];
    let mut out = b"CONNECT {\"verbose\":false,\"headers\":true}\r\n".to_vec();
    out.extend_from_slice(b"PUB natter.room.x 4\r\n\xff\x00\xfe\n\r\n");
    out.extend_from_slice(b"HPUB natter.room.x 12 14\r\nNATS/1.0\r\n\r\nab\r\n");
    out.extend_from_slice(format!("PUB natter.room.x {}\r\n", big.len()).as_bytes());
    out.extend_from_slice(&big);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(format!("PUB natter.room.x {}\r\n", NATS_MAX_PAYLOAD + 1).as_bytes());
    write.write_all(&out).await.unwrap();
    // The server's refusal of the oversized message is the barrier: all before it was taken.
    let refusal = tokio::time::timeout(ARRIVE_WITHIN, async {
        loop {
            line.clear();
            if read.read_line(&mut line).await.unwrap() == 0 || line.starts_with("-ERR") {
                return line.clone();
            }
        }
    })
    .await
    .unwrap();
    assert!(refusal.contains("Maximum Payload"), "{refusal}");

    let mut garbage = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    garbage.write_all(b"\x00\x01\xffHELLO natter.room.x\r\n\r\n").await.unwrap();
    let mut reply = String::new();
    let _ = tokio::time::timeout(ARRIVE_WITHIN, BufReader::new(&mut garbage).read_line(&mut reply)).await;

    assert_eq!(next(&mut rx).await.payload, &b"\xff\x00\xfe\n"[..]);
    assert_eq!(next(&mut rx).await.payload, "ab");
    assert_eq!(next(&mut rx).await.payload, &big[..]);
    nodes[1].publish("natter.room.x", Bytes::from_static(b"still here")).unwrap();
    assert_eq!(next(&mut rx).await.payload, "still here");
    assert!(*Bus::connected(&nodes[0]).unwrap().borrow());
    for node in &nodes {
        node.close().await;
    }
}

/// Credentials in the URL are used (NATS clients take them there) and never shown: the wrong
/// password is an error naming the server without it, and so is a server that is not there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_credentials_in_the_url_work_and_stay_secret() {
    capture_log();
    if !nats_available() {
        return;
    }
    let server = NatsServer::start(&NatsOptions {
        user: Some(("natter".into(), "p@ss:word".into())),
        ..Default::default()
    });
    let url = format!("nats://natter:p%40ss%3Aword@127.0.0.1:{}", server.port);
    let a = NatsBus::connect(&url, "node-a").await.unwrap();
    let b = NatsBus::connect(&url, "node-b").await.unwrap();
    assert!(!format!("{a:?}").contains("ss"), "{a:?}");
    let mut rx = b.subscribe("natter.x").await.unwrap();
    a.publish("natter.x", Bytes::from_static(b"in")).unwrap();
    assert_eq!(next(&mut rx).await.payload, "in");

    let wrong = format!("nats://natter:guess-{}@127.0.0.1:{}", std::process::id(), server.port);
    let e = NatsBus::connect(&wrong, "node-c").await.unwrap_err().to_string();
    assert!(e.contains(&format!("nats://127.0.0.1:{}", server.port)) && !e.contains("guess"), "{e}");
    assert!(e.contains("refused this node's credentials"), "{e}");

    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = NatsBus::connect(&format!("nats://u:hidden@127.0.0.1:{nobody}"), "node-d").await.unwrap_err();
    let e = e.to_string();
    assert!(
        e.contains(&format!("127.0.0.1:{nobody}")) && e.contains("nats-server") && !e.contains("hidden"),
        "{e}"
    );
    a.close().await;
    b.close().await;
    let log = String::from_utf8_lossy(&LOG.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    assert!(log.contains("cluster bus: connected to NATS"), "{log}");
    for secret in ["p@ss", "p%40ss", "guess-", "hidden"] {
        assert!(!log.contains(secret), "{secret} logged:\n{log}");
    }
}

/// Closing hands what was queued to NATS first, then refuses more, and ends the node's
/// subscriptions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_close_flushes_then_ends_everything() {
    let Some((_server, nodes)) = nats_nodes("close").await else { return };
    let mut theirs = nodes[1].subscribe("natter.room.close").await.unwrap();
    let mut ours = nodes[0].subscribe("natter.room.close").await.unwrap();
    for i in 0..1000u32 {
        nodes[0].publish("natter.room.close", Bytes::from(i.to_string())).unwrap();
    }
    nodes[0].close().await;
    for i in 0..1000u32 {
        assert_eq!(next(&mut theirs).await.payload, i.to_string());
    }
    assert!(matches!(nodes[0].publish("natter.room.close", Bytes::new()), Err(BusError::Closed)));
    assert!(matches!(nodes[0].subscribe("natter.>").await, Err(BusError::Closed)));
    let end = tokio::time::timeout(ARRIVE_WITHIN, ours.recv()).await.expect("the subscription ends");
    assert_eq!(end, None);
    nodes[0].close().await;
    nodes[1].close().await;
}

/// Closing while NATS is away takes a bounded time (the client takes no command while it
/// reconnects) and still ends the node's subscriptions and refuses publications; subscribing
/// meanwhile takes a bounded time too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_close_during_an_outage_is_bounded() {
    let Some((mut server, nodes)) = nats_nodes("close-outage").await else { return };
    let mut ours = nodes[0].subscribe("natter.room.x").await.unwrap();
    server.kill();
    wait_connected(&nodes[0], false).await;
    // Enough to fill the client's command queue and then the bus's own.
    while nodes[0].publish("natter.room.x", Bytes::from_static(b"lost")).is_ok() {}
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(15), nodes[0].close()).await.expect("close returns");
    assert!(started.elapsed() < Duration::from_secs(12), "close took {:?}", started.elapsed());
    assert!(matches!(nodes[0].publish("natter.room.x", Bytes::new()), Err(BusError::Closed)));
    let end = tokio::time::timeout(ARRIVE_WITHIN, ours.recv()).await.expect("the subscription ends");
    assert_eq!(end, None);
    // Another node subscribing meanwhile waits a bounded time for the server's confirmation,
    // then keeps the subscription for the reconnection.
    let theirs = tokio::time::timeout(Duration::from_secs(15), nodes[1].subscribe("natter.>"))
        .await
        .expect("subscribing during an outage returns");
    assert!(theirs.is_ok(), "{theirs:?}");
}
