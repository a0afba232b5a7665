//! The operational endpoints: `/metrics` counts what users do (connections, sessions,
//! messages, why sessions end) in a well-formed Prometheus exposition, and `/readyz` says
//! whether the store takes writes, asking it at most once however many ask.

mod harness;

use harness::{Client, TestServer, json, settings};
use natter_core::memory_store::MemoryStore;
use natter_core::store::{HistoryQuery, LoadedRoom, Store, StoreError, StoredMessage, Write};
use natter_core::{Command, Event, HubConfig, NextBatch, Outbox, Registration, SessionKind, Target};
use natter_server::metrics::{BusReadings, Ops};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

/// A scrape, checked line by line and read into `name{labels} -> value`.
struct Scrape {
    samples: HashMap<String, f64>,
    text: String,
}

impl Scrape {
    /// Parses an OpenMetrics text exposition: every line is `# HELP name text`,
    /// `# TYPE name type`, a sample `name{labels} value` of a family described before it, or
    /// the final `# EOF`.
    fn parse(text: &str) -> Self {
        let mut samples = HashMap::new();
        let mut helped = Vec::new();
        let mut typed: Vec<(String, String)> = Vec::new();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.last(), Some(&"# EOF"), "the exposition ends with # EOF:\n{text}");
        let is_name = |n: &str| {
            !n.is_empty()
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !n.starts_with(|c: char| c.is_ascii_digit())
        };
        for line in &lines[..lines.len() - 1] {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) =
                    rest.split_once(' ').unwrap_or_else(|| panic!("HELP without text: {line}"));
                assert!(is_name(name) && !help.trim().is_empty(), "bad HELP line: {line}");
                helped.push(name.to_string());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) =
                    rest.split_once(' ').unwrap_or_else(|| panic!("TYPE without a type: {line}"));
                assert!(is_name(name), "bad TYPE line: {line}");
                assert!(["counter", "gauge", "histogram"].contains(&kind), "unexpected type: {line}");
                assert_eq!(helped.last().map(String::as_str), Some(name), "TYPE without HELP first: {line}");
                typed.push((name.to_string(), kind.to_string()));
            } else {
                assert!(!line.starts_with('#'), "unexpected comment: {line}");
                let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
                let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
                let name = series.split('{').next().unwrap();
                assert!(is_name(name), "bad metric name: {line}");
                if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
                    let inner = labels.strip_prefix('{').and_then(|l| l.strip_suffix('}'));
                    let inner = inner.unwrap_or_else(|| panic!("bad labels: {line}"));
                    for pair in inner.split(',') {
                        let (key, quoted) =
                            pair.split_once('=').unwrap_or_else(|| panic!("bad label: {line}"));
                        assert!(is_name(key) && quoted.len() >= 2, "bad label: {line}");
                        assert!(quoted.starts_with('"') && quoted.ends_with('"'), "unquoted label: {line}");
                    }
                }
                // A sample belongs to the family described last: its name, or the name with
                // a suffix of its type (_total, _bucket, _count, _sum).
                let (family, kind) = typed.last().unwrap_or_else(|| panic!("sample before any TYPE: {line}"));
                let suffix = name
                    .strip_prefix(family.as_str())
                    .unwrap_or_else(|| panic!("sample {name} outside its family {family}: {line}"));
                let allowed: &[&str] = match kind.as_str() {
                    "counter" => &["_total"],
                    "gauge" => &[""],
                    _ => &["_bucket", "_count", "_sum"],
                };
                assert!(allowed.contains(&suffix), "{kind} sample with suffix {suffix:?}: {line}");
                assert!(samples.insert(series.to_string(), value).is_none(), "sample repeated: {line}");
            }
        }
        Scrape { samples, text: text.to_string() }
    }

    /// The value of one series, e.g. `natter_sessions{door="native"}`.
    fn get(&self, series: &str) -> f64 {
        *self.samples.get(series).unwrap_or_else(|| panic!("no {series} in\n{}", self.text))
    }

    fn disconnects(&self, reason: &str) -> f64 {
        self.get(&format!(r#"natter_disconnects_total{{reason="{reason}"}}"#))
    }
}

/// An HTTP answer: its status, headers (names lowercased) and body.
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

/// Sends one HTTP/1.1 request (`method path`) and reads the answer to the end.
async fn request(addr: std::net::SocketAddr, method: &str, path: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!("{method} {path} HTTP/1.1\r\nHost: natter.test\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).expect("a UTF-8 answer");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no end of headers: {raw}"));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|l| l.split_once(':').unwrap_or_else(|| panic!("bad header: {l}")))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer { status, headers, body: body.to_string() }
}

/// Scrapes `/metrics` over HTTP on the server's main port, as Prometheus would.
async fn scrape(server: &TestServer) -> Scrape {
    let answer = request(server.tcp, "GET", "/metrics").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.headers["content-type"], natter_server::metrics::CONTENT_TYPE);
    Scrape::parse(&answer.body)
}

/// A text-mode user logged in as `nick`, its greeting read.
async fn text_user(server: &TestServer, nick: &str) -> Client {
    let mut c = Client::connect(server.tcp).await;
    c.expect("Welcome to natter").await;
    c.line(nick).await;
    c.expect("#lobby").await;
    c
}

#[tokio::test]
async fn connections_sessions_and_messages_are_counted_by_door() {
    let server = TestServer::start().await;
    let before = scrape(&server).await;
    for door in ["native", "text", "irc", "udp", "console"] {
        assert_eq!(before.get(&format!(r#"natter_connections{{door="{door}"}}"#)), 0.0);
        assert_eq!(before.get(&format!(r#"natter_sessions{{door="{door}"}}"#)), 0.0);
    }
    assert_eq!(before.get("natter_messages_received_total"), 0.0);
    assert_eq!(before.get("natter_rooms"), 1.0, "the lobby");

    let mut ann = Client::native(server.tcp, "ann").await;
    let mut bob = Client::native(server.tcp, "bob").await;
    let mut carol = text_user(&server, "carol").await;
    // Connected, not logged in: a connection without a session.
    let mut shy = Client::connect(server.tcp).await;
    shy.line(r#"{"type":"ping","id":1}"#).await;
    shy.expect(r#""type":"pong""#).await;
    for i in 0..3 {
        ann.line(&format!(r##"{{"type":"send","room":"#lobby","text":"hello {i}"}}"##)).await;
    }
    // Bob and Carol saw the third message: all three were counted before it was handed out.
    bob.expect("hello 2").await;
    carol.expect("hello 2").await;
    ann.line(r#"{"type":"send","to":"bob","text":"psst"}"#).await;
    bob.expect("psst").await;
    ann.line(r##"{"type":"join","room":"#second"}"##).await;
    ann.expect(r##""type":"joined","room":"#second""##).await;

    let s = scrape(&server).await;
    assert_eq!(s.get(r#"natter_connections{door="native"}"#), 3.0, "ann, bob and the one not logged in");
    assert_eq!(s.get(r#"natter_connections{door="text"}"#), 1.0);
    assert_eq!(s.get(r#"natter_sessions{door="native"}"#), 2.0);
    assert_eq!(s.get(r#"natter_sessions{door="text"}"#), 1.0);
    assert_eq!(s.get("natter_messages_received_total"), 4.0);
    assert_eq!(
        s.get("natter_messages_delivered_total"),
        3.0 * 2.0 + 1.0,
        "two recipients a room message, one the private one"
    );
    assert_eq!(s.get("natter_rooms"), 2.0);
    assert!(
        s.get("natter_store_commit_seconds_count") >= 1.0,
        "the room messages were committed: {}",
        s.text
    );
    assert_eq!(s.get("natter_hub_queue_depth"), 0.0, "the hub keeps up with four clients");
    assert_eq!(s.get("natter_websocket_connections"), 0.0);

    // A browser's connection: a WebSocket speaking the native protocol counts as native, and
    // as a WebSocket.
    let addr = server.tcp;
    let mut web = tokio::task::spawn_blocking(move || {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        let (mut web, _) = tungstenite::client::client(format!("ws://{addr}/ws"), stream).expect("handshake");
        web.send(tungstenite::Message::text(r#"{"type":"hello","nick":"web"}"#)).unwrap();
        while !web.read().unwrap().to_text().unwrap().contains(r#""type":"joined""#) {}
        web
    })
    .await
    .unwrap();
    let s = scrape(&server).await;
    assert_eq!(s.get("natter_websocket_connections"), 1.0);
    assert_eq!(s.get(r#"natter_connections{door="native"}"#), 4.0);
    assert_eq!(s.get(r#"natter_sessions{door="native"}"#), 3.0);
    // Closed without a chat goodbye: a lost connection, counted before the rooms hear of it.
    tokio::task::spawn_blocking(move || {
        web.close(None).unwrap();
        while web.read().is_ok() {}
    })
    .await
    .unwrap();
    carol.expect("<-- web quit").await;
    let s = scrape(&server).await;
    assert_eq!(s.get("natter_websocket_connections"), 0.0);
    assert_eq!(s.get(r#"natter_sessions{door="native"}"#), 2.0);
    assert_eq!(s.disconnects("connection_lost"), 1.0);

    // Ann says goodbye; Bob's connection drops.
    ann.line(r#"{"type":"quit"}"#).await;
    ann.rest().await;
    drop(bob);
    carol.expect("<-- bob quit").await;
    // Bob's end was counted before the hub heard of it, and so before Carol saw him go.
    let s = scrape(&server).await;
    assert_eq!(s.disconnects("quit"), 1.0);
    assert_eq!(s.disconnects("connection_lost"), 2.0, "the WebSocket's end and bob's drop");
    assert_eq!(s.get(r#"natter_connections{door="native"}"#), 1.0, "the one not logged in");
    assert_eq!(s.get(r#"natter_sessions{door="native"}"#), 0.0);
    assert_eq!(s.get(r#"natter_sessions{door="text"}"#), 1.0);
    for reason in ["slow_reader", "flood", "bad_input", "idle_timeout", "killed", "shutdown"] {
        assert_eq!(s.disconnects(reason), 0.0, "{reason}");
    }
    drop(shy);
}

#[tokio::test]
async fn floods_and_garbage_are_counted_by_reason() {
    let mut settings = settings();
    settings.session.msg_rate = 5;
    settings.session.msg_burst = 5;
    let server = TestServer::start_with(settings).await;
    let mut flood = text_user(&server, "flood").await;
    let burst: String = (0..200).map(|i| format!("spam {i}\n")).collect();
    flood.send(burst.as_bytes()).await;
    flood.expect("bye: flooding").await;
    flood.rest().await;
    let mut junk = Client::connect(server.tcp).await;
    junk.send("{not json\n".repeat(50).as_bytes()).await;
    junk.expect("too many invalid requests").await;
    junk.rest().await;

    let s = scrape(&server).await;
    assert_eq!(s.disconnects("flood"), 1.0);
    assert_eq!(s.disconnects("bad_input"), 1.0);
    assert_eq!(s.disconnects("quit"), 0.0, "the server's decision is counted, not the quit it sends");
    assert_eq!(s.disconnects("connection_lost"), 0.0, "nor the hang-up that follows it");
    assert_eq!(s.get(r#"natter_connections{door="text"}"#), 0.0);
    assert_eq!(s.get(r#"natter_connections{door="native"}"#), 0.0);
    // Messages over the rate are dropped by the front door before the hub sees them.
    let received = s.get("natter_messages_received_total");
    assert!((1.0..=6.0).contains(&received), "{received} of the flood reached the hub");
}

#[tokio::test]
async fn a_slow_reader_is_counted_once() {
    let mut settings = settings();
    // A small outbox (64 KiB) and a reader with a tiny receive window: a few hundred kilobytes
    // of messages fill both.
    settings.session.outbox_kib = 64;
    let server = TestServer::start_with(settings).await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let slow = socket.connect(server.tcp).await.unwrap();
    let (slow_read, mut slow_write) = slow.into_split();
    slow_write.write_all(b"{\"type\":\"hello\",\"nick\":\"slow\"}\n").await.unwrap();
    let mut slow_read = BufReader::new(slow_read);
    let mut line = String::new();
    while !line.contains(r#""type":"joined""#) {
        line.clear();
        assert!(slow_read.read_line(&mut line).await.unwrap() > 0, "the slow reader was welcomed");
    }
    // From here on the slow reader reads nothing.
    let talker = TcpStream::connect(server.tcp).await.unwrap();
    let (talker_read, mut talker_write) = talker.into_split();
    talker_write.write_all(b"{\"type\":\"hello\",\"nick\":\"talker\"}\n").await.unwrap();
    // The talker reads everything it gets (its acks) until it sees the slow reader go.
    let watch = tokio::spawn(async move {
        let mut lines = BufReader::new(talker_read).lines();
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains(r#""type":"quit","nick":"slow""#) {
                return line;
            }
        }
        panic!("the talker's connection ended before the slow reader was cut");
    });
    let text = "z".repeat(8000);
    for i in 0..2000 {
        if watch.is_finished() {
            break;
        }
        let frame = format!("{{\"type\":\"send\",\"room\":\"#lobby\",\"text\":\"{i} {text}\"}}\n");
        talker_write.write_all(frame.as_bytes()).await.unwrap();
    }
    let quit = watch.await.unwrap();
    assert!(json(&quit)["reason"].as_str().unwrap().starts_with("too slow"), "{quit}");
    let s = scrape(&server).await;
    assert_eq!(s.disconnects("slow_reader"), 1.0);
    assert_eq!(s.disconnects("connection_lost"), 0.0);
    assert_eq!(s.get(r#"natter_sessions{door="native"}"#), 1.0, "the talker");
    drop(slow_read);
}

/// With `--metrics ADDR` the endpoints are served there, and only there; each answers GET
/// and HEAD, and says which methods work to anything else.
#[tokio::test]
async fn a_metrics_listener_serves_health_readiness_and_metrics() {
    let mut settings = settings();
    settings.http.metrics = Some("127.0.0.1:0".into());
    let server = TestServer::start_with(settings).await;
    let ops = server.metrics.expect("the metrics listener");
    let health = request(ops, "GET", "/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let ready = request(ops, "GET", "/readyz").await;
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
    let metrics = request(ops, "GET", "/metrics").await;
    assert_eq!(metrics.status, 200);
    Scrape::parse(&metrics.body);
    let head = request(ops, "HEAD", "/metrics").await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    let post = request(ops, "POST", "/metrics").await;
    assert_eq!((post.status, post.headers["allow"].as_str()), (405, "GET, HEAD"));
    // Nothing else there: not the page, not the WebSocket.
    assert_eq!(request(ops, "GET", "/").await.status, 404);
    assert_eq!(request(ops, "GET", "/ws").await.status, 404);
    // And not on the public port.
    for path in ["/metrics", "/healthz", "/readyz"] {
        assert_eq!(request(server.tcp, "GET", path).await.status, 404, "{path}");
    }
}

#[tokio::test]
async fn the_exposition_describes_every_metric() {
    let server = TestServer::start().await;
    let s = scrape(&server).await;
    let ready = request(server.tcp, "GET", "/readyz").await;
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, "ready\n"),
        "served with the page without --metrics"
    );
    for family in [
        "# TYPE natter_connections gauge",
        "# TYPE natter_sessions gauge",
        "# TYPE natter_rooms gauge",
        "# TYPE natter_messages_received counter",
        "# TYPE natter_messages_delivered counter",
        "# TYPE natter_disconnects counter",
        "# TYPE natter_store_commit_seconds histogram",
        "# TYPE natter_store_commit_failures counter",
        "# TYPE natter_store_probes counter",
        "# TYPE natter_hub_queue_depth gauge",
    ] {
        assert!(s.text.contains(family), "no {family:?} in\n{}", s.text);
    }
    // The histogram's buckets are cumulative and end at +Inf with the count.
    let buckets: Vec<f64> = s
        .text
        .lines()
        .filter(|l| l.starts_with("natter_store_commit_seconds_bucket"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    assert!(buckets.len() > 10 && buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert!(s.text.contains(r#"natter_store_commit_seconds_bucket{le="+Inf"}"#));
    assert_eq!(*buckets.last().unwrap(), s.get("natter_store_commit_seconds_count"));
}

/// A store whose writes can be made to fail, or to hang until released.
#[derive(Default)]
struct FlakyStore {
    inner: MemoryStore,
    broken: AtomicBool,
    hung: Mutex<bool>,
    released: Condvar,
    /// Probes that reached the store.
    probes: tokio::sync::watch::Sender<u64>,
}

impl FlakyStore {
    fn write(&self) -> Result<(), StoreError> {
        let mut hung = self.hung.lock().unwrap();
        while *hung {
            hung = self.released.wait(hung).unwrap();
        }
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Io("disk full".into()));
        }
        Ok(())
    }

    fn hang(&self, on: bool) {
        *self.hung.lock().unwrap() = on;
        self.released.notify_all();
    }
}

impl Store for FlakyStore {
    fn load_each(&self, recent: usize, room: &mut dyn FnMut(LoadedRoom)) -> Result<(), StoreError> {
        self.inner.load_each(recent, room)
    }

    fn commit(&self, batch: &[Write]) -> Result<(), StoreError> {
        self.write()?;
        self.inner.commit(batch)
    }

    fn history(&self, room: &str, query: HistoryQuery) -> Result<(Vec<StoredMessage>, bool), StoreError> {
        self.inner.history(room, query)
    }

    fn probe(&self) -> Result<(), StoreError> {
        self.probes.send_modify(|n| *n += 1);
        self.write()
    }
}

/// Sends a room message as a fresh session and waits for the store's answer to it (the ack,
/// or the refusal of a failed commit).
async fn say_and_wait_for_the_store(hub: &natter_core::HubHandle, nick: &str) -> Event {
    let outbox = Outbox::new(64);
    let registration = Registration {
        nick: nick.into(),
        ident: format!("{nick}@test"),
        real_host: None,
        kind: SessionKind::Native,
        outbox: outbox.clone(),
        realname: String::new(),
        lobby: true,
        password: None,
        addr: None,
        client_secret: None,
        resume: None,
        account: None,
        req: None,
    };
    let id = hub.register(registration).await.unwrap().unwrap().session;
    let say = Command::Say {
        target: Target::Room("#lobby".into()),
        text: "kept?".into(),
        action: false,
        notice: false,
        meta: None,
        cid: None,
        req: None,
    };
    hub.command(id, say).await.unwrap();
    let mut batch = Vec::new();
    loop {
        assert!(matches!(outbox.next_batch(&mut batch).await, NextBatch::Ready));
        for piece in batch.drain(..) {
            for d in piece.deliveries() {
                if matches!(d.event, Event::Ack { .. } | Event::Error { .. }) {
                    return d.event.clone();
                }
            }
        }
    }
}

/// Readiness follows the store: ready while it takes writes, not ready with the store's own
/// words when a write fails, not ready within the timeout when it hangs. A crowd of checks
/// against a hanging store costs it one probe, not one each.
#[tokio::test(start_paused = true)]
async fn readiness_follows_the_store_and_a_crowd_of_checks_costs_one_probe() {
    // Time moves only when the test says: the commit thread answers in real time.
    let _frozen = harness::freeze_clock();
    let _watchdog = harness::Watchdog::arm("readiness", std::time::Duration::from_secs(60));
    let store = Arc::new(FlakyStore::default());
    let hub = natter_core::hub::start(HubConfig::default(), store.clone()).unwrap();
    let ops = Arc::new(Ops::new(hub.clone(), None));
    assert_eq!(ops.ready().await, Ok(()));
    assert_eq!(*store.probes.borrow(), 1, "nothing was committed yet: one probe");
    assert_eq!(ops.ready().await, Ok(()));
    assert_eq!(*store.probes.borrow(), 1, "the probe that just succeeded counts as recent");

    // A failed commit: the next check probes, and says what the store said.
    store.broken.store(true, Ordering::SeqCst);
    let answer = say_and_wait_for_the_store(&hub, "ann").await;
    assert!(matches!(answer, Event::Error { .. }), "{answer:?}");
    let why = ops.ready().await.unwrap_err();
    assert!(why.contains("the store refused a write") && why.contains("disk full"), "{why}");
    assert_eq!(*store.probes.borrow(), 2);
    // Asked again at once: the same answer, no new probe.
    assert_eq!(ops.ready().await.unwrap_err(), why);
    assert_eq!(*store.probes.borrow(), 2);

    // A store that hangs: fifty checks at once all answer once the timeout has passed.
    store.broken.store(false, Ordering::SeqCst);
    store.hang(true);
    tokio::time::advance(natter_server::metrics::PROBE_REUSE).await;
    let checks: Vec<_> = (0..50)
        .map(|_| {
            let ops = ops.clone();
            tokio::spawn(async move { ops.ready().await })
        })
        .collect();
    // The first check sent the probe (and waits for it); the store holds it.
    store.probes.subscribe().wait_for(|&n| n == 3).await.unwrap();
    tokio::time::advance(natter_server::metrics::PROBE_TIMEOUT).await;
    for check in checks {
        let why = check.await.unwrap().unwrap_err();
        assert!(why.contains("has not answered a write for 2.0 seconds"), "{why}");
    }
    assert_eq!(*store.probes.borrow(), 3, "one probe for fifty checks");

    // Released: the probe on its way answers (no second one was sent), and the store is
    // ready again.
    store.hang(false);
    tokio::time::advance(natter_server::metrics::PROBE_REUSE).await;
    assert_eq!(ops.ready().await, Ok(()));
    assert_eq!(*store.probes.borrow(), 3);
    let s = Scrape::parse(&ops.encode());
    assert_eq!(s.get("natter_store_commit_failures_total"), 1.0);
    assert_eq!(s.get("natter_store_probes_total"), 3.0);
    hub.shutdown("test over").await;
}

/// Time-outs are counted by what timed out: two connections that never logged in (one that
/// spoke, one that never said a word), a UDP member gone silent, an IRC client that stopped
/// answering PING.
#[tokio::test(start_paused = true)]
async fn timeouts_are_counted_by_reason() {
    use std::time::Duration;
    use tokio::time::advance;
    let _watchdog = harness::Watchdog::arm("timeouts", Duration::from_secs(20));
    let _frozen = harness::freeze_clock();
    let mut settings = settings();
    settings.session.register_timeout = Duration::from_secs(10);
    settings.udp_idle = Duration::from_secs(300);
    let server = TestServer::start_with(settings).await;
    let mut watcher = Client::native(server.tcp, "watcher").await;
    let mut pinger = Client::connect(server.tcp).await;
    pinger.ping().await;
    let mut silent = Client::connect(server.tcp).await;
    let udp = harness::Udp::new(server.udp).await;
    udp.send(b"hi from udp").await;
    watcher.expect("hi from udp").await;
    let mut irc = Client::connect(server.irc).await;
    irc.send(b"NICK ircer\r\nUSER ircer 0 * :Irc Er\r\n").await;
    irc.expect(" 001 ").await;
    // Barrier: its own PING answered, everything of the welcome has been read.
    irc.send(b"PING barrier\r\n").await;
    irc.expect("PONG").await;

    let s = scrape(&server).await;
    assert_eq!(s.get(r#"natter_connections{door="native"}"#), 2.0, "the watcher and the pinger");
    assert_eq!(s.get(r#"natter_connections{door="udp"}"#), 1.0);
    assert_eq!(s.get(r#"natter_connections{door="irc"}"#), 1.0);
    assert_eq!(s.get(r#"natter_sessions{door="udp"}"#), 1.0);
    assert_eq!(s.get(r#"natter_sessions{door="irc"}"#), 1.0);

    advance(Duration::from_secs(10)).await;
    pinger.expect("registration timeout").await;
    pinger.rest().await;
    silent.expect("*** bye: registration timeout").await;
    silent.rest().await;
    advance(Duration::from_secs(290)).await;
    watcher.expect("timed out: no datagram for 300 seconds").await;
    irc.expect("PING").await;
    advance(Duration::from_secs(75)).await;
    irc.expect("Ping timeout").await;
    irc.rest().await;

    let s = scrape(&server).await;
    assert_eq!(s.disconnects("registration_timeout"), 2.0);
    assert_eq!(s.disconnects("idle_timeout"), 2.0, "the UDP member and the IRC client");
    assert_eq!(
        s.disconnects("connection_lost"),
        0.0,
        "their hang-ups after the goodbye are not counted again"
    );
    assert_eq!(s.get(r#"natter_connections{door="native"}"#), 1.0, "the watcher");
    assert_eq!(s.get(r#"natter_connections{door="irc"}"#), 0.0);
    assert_eq!(s.get(r#"natter_sessions{door="udp"}"#), 0.0);
    assert_eq!(s.get(r#"natter_sessions{door="irc"}"#), 0.0);
    server.shutdown("done").await;
}

/// A server operator's KILL is counted as such, not as the victim's quit or lost connection.
#[tokio::test]
async fn a_kill_is_counted_as_a_kill() {
    let mut settings = settings();
    settings.operators = vec![("admin".into(), "sesame".into())];
    let server = TestServer::start_with(settings).await;
    let mut victim = Client::native(server.tcp, "victim").await;
    let mut oper = Client::connect(server.irc).await;
    oper.send(b"NICK boss\r\nUSER boss 0 * :Boss\r\n").await;
    oper.expect(" 001 ").await;
    oper.send(b"OPER admin sesame\r\n").await;
    oper.expect(" 381 ").await;
    oper.send(b"KILL victim :enough\r\n").await;
    victim.expect(r#""type":"bye""#).await;
    victim.rest().await;
    let s = scrape(&server).await;
    assert_eq!(s.disconnects("killed"), 1.0);
    assert_eq!(s.disconnects("quit"), 0.0);
    assert_eq!(s.disconnects("connection_lost"), 0.0);
    assert_eq!(s.get(r#"natter_sessions{door="native"}"#), 0.0);
    assert_eq!(s.get(r#"natter_sessions{door="irc"}"#), 1.0);
}

/// A bus with fixed counts, whose connection the test cuts and restores.
struct CountingBus {
    connected: tokio::sync::watch::Sender<bool>,
    counts: natter_core::bus::BusCounts,
}

impl natter_core::bus::Bus for CountingBus {
    fn max_payload(&self) -> usize {
        1024
    }

    fn publish(&self, _subject: &str, _payload: bytes::Bytes) -> Result<(), natter_core::bus::BusError> {
        Ok(())
    }

    fn subscribe(&self, _pattern: &str) -> natter_core::bus::Subscribing<'_> {
        Box::pin(async { Ok(tokio::sync::mpsc::channel(1).1) })
    }

    fn connected(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        Some(self.connected.subscribe())
    }

    fn counts(&self) -> Option<natter_core::bus::BusCounts> {
        Some(self.counts)
    }
}

/// A node's cluster bus is on `/metrics`: whether it is connected now, and what it published,
/// could not publish (each event once), received and dropped (a server that is no node shows
/// none of it).
#[tokio::test]
async fn a_nodes_bus_is_counted_and_its_outages_shown() {
    let counts = natter_core::bus::BusCounts {
        published: 11,
        queue_full: 2,
        publish_failed: 3,
        received: 17,
        dropped: 5,
        failed_connects: 7,
    };
    let bus = Arc::new(CountingBus { connected: tokio::sync::watch::channel(true).0, counts });
    let hub = natter_core::hub::start(HubConfig::default(), Arc::new(MemoryStore::default())).unwrap();
    let given_up = Arc::new(std::sync::atomic::AtomicU64::new(4));
    let ops = Ops::new(hub.clone(), Some(BusReadings { bus: bus.clone(), given_up }));
    let s = Scrape::parse(&ops.encode());
    for (series, value) in [
        ("natter_bus_connected", 1.0),
        ("natter_bus_published_total", 11.0),
        // Given up by the node (4), and refused by the bus's client once queued (3); the
        // bus's 2 refusals of a full queue are retries of the events given up.
        ("natter_bus_not_published_total", 7.0),
        ("natter_bus_received_total", 17.0),
        ("natter_bus_dropped_total", 5.0),
        ("natter_bus_connect_failures_total", 7.0),
    ] {
        assert_eq!(s.get(series), value, "{series}");
    }
    bus.connected.send_replace(false);
    assert_eq!(Scrape::parse(&ops.encode()).get("natter_bus_connected"), 0.0);
    let alone = Ops::new(hub, None).encode();
    assert!(!alone.contains("natter_bus"), "{alone}");
}
