//! The cluster bus over NATS: [`NatsBus`] carries the hub's payloads between the nodes of a
//! cluster through a NATS server (or a NATS cluster), as the core's [`Bus`] trait asks.
//!
//! Core NATS is what the trait describes: fire and forget, one publisher's messages on one
//! subject in order, nothing kept for a subscriber that is away. `no_echo` keeps a node's own
//! publications from coming back to it. The hub calls [`Bus::publish`] from its loop, which must
//! never wait on the network: a publication goes into a bounded queue that one task drains into
//! the client, and a full queue is an error the hub counts, not a stall. Each subscription is a
//! bounded channel too; a reader that falls behind loses messages, and the hub refills them
//! from the store. The client reconnects for ever with backoff and resubscribes by itself;
//! [`Bus::connected`] tells the hub when an outage began and ended, so that it can catch up
//! from the store.

use crate::throttled_log::ThrottledLog;
use async_nats::{ConnectOptions, Event, ServerAddr};
use bytes::Bytes;
use futures_util::StreamExt as _;
use natter_core::bus::{
    Bus, BusCounts, BusError, BusMessage, SUBSCRIPTION_CAPACITY, Subscribing, valid_pattern, valid_subject,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Publications waiting for the client: a few seconds of a busy node's traffic, so a short
/// stall of NATS costs nothing, while an outage fills it and [`Bus::publish`] says so.
pub const PUBLISH_QUEUE: usize = 4096;

/// How often the client pings the server: a silent, half-open connection is given up after
/// three pings without an answer (15 s), which bounds how long a node can miss the bus
/// without knowing it.
const PING_INTERVAL: Duration = Duration::from_secs(5);

/// How long a subscription waits for the client to take it, and then for the server to
/// confirm it (see [`round_trip`]).
const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long [`NatsBus::close`] spends handing queued publications to NATS before giving up
/// on them: shutdown must not hang on an unreachable server.
const CLOSE_DEADLINE: Duration = Duration::from_secs(5);

/// A connection to NATS as one node of a cluster. Clones share the connection.
#[derive(Clone)]
pub struct NatsBus {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    node_name: String,
    /// The servers as given, without credentials: what log lines and errors name.
    servers: String,
    outbox: mpsc::Sender<Outgoing>,
    publisher: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
    /// Tells the subscriptions' forwarding tasks to stop, whatever NATS is doing.
    closing: watch::Sender<bool>,
    connected: watch::Receiver<bool>,
    counters: Arc<Counters>,
}

enum Outgoing {
    Message {
        subject: String,
        payload: Bytes,
    },
    /// Everything queued before it has been handed to the client: flush, answer and stop.
    Close(oneshot::Sender<()>),
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    queue_full: AtomicU64,
    publish_failed: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    failed_connects: AtomicU64,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus")
            .field("node_name", &self.inner.node_name)
            .field("servers", &self.inner.servers)
            .finish_non_exhaustive()
    }
}

/// The servers of a `--cluster` setting, with the credentials taken out of the URLs (the NATS
/// client only authenticates with credentials given apart, and URLs end up in log lines).
#[derive(Clone, PartialEq, Eq)]
pub struct NatsServers {
    addrs: Vec<ServerAddr>,
    credentials: Option<Credentials>,
}

#[derive(Clone, PartialEq, Eq)]
enum Credentials {
    /// `nats://user:password@host`.
    UserPassword(String, String),
    /// `nats://token@host`.
    Token(String),
}

impl std::fmt::Debug for NatsServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.display())
    }
}

impl NatsServers {
    /// Reads a comma-separated list of NATS URLs (`nats://`, `tls://`, or `host:port`, which
    /// means `nats://host:port`), as NATS clients take them; NATS over WebSocket is not built
    /// in. Credentials may
    /// be in any of them, as `user:password@` or `token@`; when several carry them they must
    /// be the same, since one client authenticates the same way to every server.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut addrs = Vec::new();
        let mut credentials: Option<Credentials> = None;
        for (i, part) in text.split(',').map(str::trim).enumerate() {
            // A password may hold a comma (NATS clients split the list on commas all the same),
            // leaving a piece without its `@`: such a piece is named by its place only.
            let name = if part.contains('@') || !text.contains('@') {
                format!("{:?}", redact(part))
            } else {
                format!("server {} of the list", i + 1)
            };
            if part.is_empty() {
                return Err(format!(
                    "{name} is empty: give NATS URLs separated by commas, e.g. nats://10.0.0.1:4222,nats://10.0.0.2:4222"
                ));
            }
            let mut url = part
                .parse::<ServerAddr>()
                .map_err(|e| {
                    format!("{name} is not a NATS server URL ({e}): write e.g. nats://10.0.0.1:4222")
                })?
                .into_inner();
            if !matches!(url.scheme(), "nats" | "tls") {
                return Err(format!(
                    "{name}: natter speaks to NATS over TCP, not WebSocket: give its client port, e.g. nats://10.0.0.1:4222"
                ));
            }
            let user = decode(url.username());
            let password = url.password().map(decode);
            let found = match (user.is_empty(), password) {
                (true, None) => None,
                (false, None) => Some(Credentials::Token(user)),
                (_, Some(password)) => Some(Credentials::UserPassword(user, password)),
            };
            if let Some(found) = found {
                if credentials.as_ref().is_some_and(|c| *c != found) {
                    return Err(format!(
                        "{name} gives other credentials than the servers before it: the cluster bus uses one set for all"
                    ));
                }
                credentials = Some(found);
                // Cannot fail: the URL has a host (ServerAddr checked its scheme, all of which do).
                let _ = url.set_username("");
                let _ = url.set_password(None);
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(format!("{name} names no host: write e.g. nats://10.0.0.1:4222"));
            }
            addrs.push(ServerAddr::from_url(url).map_err(|e| format!("{name}: {e}"))?);
        }
        Ok(Self { addrs, credentials })
    }

    /// The servers as log lines and errors show them: without credentials.
    pub fn display(&self) -> String {
        let urls: Vec<&str> = self.addrs.iter().map(|a| a.as_url_str().trim_end_matches('/')).collect();
        urls.join(",")
    }
}

/// `%xx` escapes undone: a password with `@` or `:` is written `%40` or `%3A` in a URL.
fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// `url` with whatever comes before the last `@` after the scheme replaced by `***`: for
/// naming a URL that may not even parse without showing its password.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    match rest.rfind('@') {
        Some(at) => format!("{scheme}***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// What the client's events change: the connected state and when the current outage began.
struct EventState {
    connected: watch::Sender<bool>,
    outage_since: Mutex<Option<Instant>>,
    servers: String,
    node: String,
    counters: Arc<Counters>,
    slow_consumer_log: ThrottledLog,
    server_error_log: ThrottledLog,
}

impl EventState {
    fn on_event(&self, event: Event) {
        let (servers, node) = (&self.servers, &self.node);
        match event {
            // Logged before the state changes, so that whoever sees the change finds the line.
            Event::Connected => {
                let since = self.outage_since.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(since) = since {
                    tracing::info!(
                        servers,
                        node,
                        outage_secs = since.elapsed().as_secs_f32(),
                        "cluster bus: reconnected to NATS"
                    );
                }
                self.connected.send_replace(true);
            }
            Event::Disconnected => {
                let mut outage_since = self.outage_since.lock().unwrap_or_else(|e| e.into_inner());
                if outage_since.is_none() {
                    *outage_since = Some(Instant::now());
                    tracing::warn!(
                        servers,
                        node,
                        "cluster bus: lost the connection to NATS; reconnecting (until then other nodes' events \
                         come late, from the store)"
                    );
                }
                drop(outage_since);
                self.connected.send_replace(false);
            }
            Event::LameDuckMode => {
                tracing::info!(
                    servers,
                    node,
                    "cluster bus: the NATS server is shutting down; moving to another"
                )
            }
            Event::SlowConsumer(sid) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(held_back) = self.slow_consumer_log.ready() {
                    tracing::warn!(
                        node,
                        sid,
                        held_back,
                        "cluster bus: NATS messages dropped: this node reads them too slowly"
                    );
                }
            }
            Event::ServerError(error) => {
                if let Some(held_back) = self.server_error_log.ready() {
                    tracing::warn!(servers, node, held_back, "cluster bus: the NATS server says: {error}");
                }
            }
            // Each failed reconnection attempt: the outage was logged when it began.
            Event::ClientError(error) => {
                self.counters.failed_connects.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(servers, node, "cluster bus: {error}")
            }
            Event::Draining | Event::Closed => tracing::debug!(servers, node, "cluster bus: {event}"),
        }
    }
}

impl NatsBus {
    /// Connects to the NATS servers in `urls` (comma-separated, see [`NatsServers::parse`]) as
    /// node `node_name`, the connection's name on the server. Failing to reach any of them
    /// now is an error naming them; once connected, the bus reconnects for ever.
    pub async fn connect(urls: &str, node_name: &str) -> Result<Self, BusError> {
        let servers = NatsServers::parse(urls).map_err(BusError::Unavailable)?;
        Self::connect_to(&servers, node_name).await
    }

    /// [`NatsBus::connect`] with the servers already read.
    pub async fn connect_to(servers: &NatsServers, node_name: &str) -> Result<Self, BusError> {
        let shown = servers.display();
        let (connected_tx, connected) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let events = Arc::new(EventState {
            connected: connected_tx,
            outage_since: Mutex::new(None),
            servers: shown.clone(),
            node: node_name.to_owned(),
            counters: counters.clone(),
            slow_consumer_log: ThrottledLog::every(Duration::from_secs(1)),
            server_error_log: ThrottledLog::every(Duration::from_secs(1)),
        });
        let mut options = match &servers.credentials {
            Some(Credentials::UserPassword(user, password)) => {
                ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            Some(Credentials::Token(token)) => ConnectOptions::with_token(token.clone()),
            None => ConnectOptions::new(),
        };
        let on_event = events.clone();
        options = options
            .name(node_name)
            .no_echo()
            .ping_interval(PING_INTERVAL)
            .max_reconnects(None)
            .request_timeout(Some(ROUND_TRIP_TIMEOUT))
            .subscription_capacity(SUBSCRIPTION_CAPACITY)
            .event_callback(move |event| {
                let events = on_event.clone();
                async move { events.on_event(event) }
            });
        let client = options
            .connect(servers.addrs.clone())
            .await
            .map_err(|e| BusError::Unavailable(connect_failure(&shown, &e)))?;
        events.connected.send_replace(true);
        tracing::info!(
            servers = shown,
            node = node_name,
            max_payload = client.max_payload(),
            "cluster bus: connected to NATS"
        );

        let (outbox, queued) = mpsc::channel(PUBLISH_QUEUE);
        let publisher = tokio::spawn(publish_queued(client.clone(), queued, counters.clone()));
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                node_name: node_name.to_owned(),
                servers: shown,
                outbox,
                publisher: Mutex::new(Some(publisher)),
                closed: AtomicBool::new(false),
                closing: watch::channel(false).0,
                connected,
                counters,
            }),
        })
    }

    /// This node's name, as NATS shows the connection.
    pub fn node_name(&self) -> &str {
        &self.inner.node_name
    }

    /// What was published, refused, received and dropped so far.
    pub fn counts(&self) -> BusCounts {
        let c = &self.inner.counters;
        BusCounts {
            published: c.published.load(Ordering::Relaxed),
            queue_full: c.queue_full.load(Ordering::Relaxed),
            publish_failed: c.publish_failed.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed_connects: c.failed_connects.load(Ordering::Relaxed),
        }
    }

    /// Stops the bus at shutdown: publishing is refused from now on, what is queued is handed
    /// to NATS and flushed (for at most a few seconds), every subscription's channel ends and
    /// the connection is drained. Later calls do nothing.
    pub async fn close(&self) {
        let inner = &self.inner;
        if inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let deadline = tokio::time::Instant::now() + CLOSE_DEADLINE;
        let (done, flushed) = oneshot::channel();
        let handed_over = tokio::time::timeout_at(deadline, async {
            inner.outbox.send(Outgoing::Close(done)).await.ok()?;
            flushed.await.ok()
        })
        .await;
        if !matches!(handed_over, Ok(Some(()))) {
            tracing::warn!(
                servers = inner.servers,
                node = inner.node_name,
                "cluster bus: NATS did not take the last messages within {CLOSE_DEADLINE:?}; dropped them"
            );
        }
        if let Some(publisher) = inner.publisher.lock().unwrap_or_else(|e| e.into_inner()).take() {
            publisher.abort();
        }
        inner.closing.send_replace(true);
        // Unsubscribes, then closes the connection. While the client is reconnecting it takes
        // no command: then it is left to stop with the runtime.
        let _ = tokio::time::timeout_at(deadline, inner.client.drain()).await;
    }
}

/// Why the first connection failed, in words that say what to check.
fn connect_failure(servers: &str, error: &async_nats::ConnectError) -> String {
    use async_nats::ConnectErrorKind as Kind;
    match error.kind() {
        Kind::AuthorizationViolation | Kind::Authentication => format!(
            "NATS at {servers} refused this node's credentials: check the user and password (or token) in --cluster"
        ),
        Kind::Tls => format!("TLS with NATS at {servers} failed ({error})"),
        Kind::Dns => format!("cannot resolve the NATS server name in {servers} ({error})"),
        _ => format!("cannot connect to NATS at {servers} ({error}): is nats-server running there?"),
    }
}

/// A subject no node subscribes to: a request on it comes back from the server itself ("no
/// responders").
const ROUND_TRIP_SUBJECT: &str = "_NATTER.round-trip";

/// Whether the server answered a request sent now: it has then read everything this
/// connection sent before (the client has no ping that reports its pong).
async fn round_trip(client: &async_nats::Client) -> bool {
    match client.request(ROUND_TRIP_SUBJECT, Bytes::new()).await {
        Ok(_) => true,
        Err(e) => e.kind() == async_nats::RequestErrorKind::NoResponders,
    }
}

/// Hands the queued publications to the client in order, until [`NatsBus::close`] or the
/// last handle is gone.
async fn publish_queued(
    client: async_nats::Client,
    mut queued: mpsc::Receiver<Outgoing>,
    counters: Arc<Counters>,
) {
    let failure_log = ThrottledLog::every(Duration::from_secs(1));
    while let Some(outgoing) = queued.recv().await {
        match outgoing {
            Outgoing::Message { subject, payload } => match client.publish(subject, payload).await {
                Ok(()) => {
                    counters.published.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    counters.publish_failed.fetch_add(1, Ordering::Relaxed);
                    if let Some(held_back) = failure_log.ready() {
                        tracing::warn!(held_back, "cluster bus: NATS refused a message: {error}");
                    }
                }
            },
            Outgoing::Close(done) => {
                let _ = client.flush().await;
                let _ = done.send(());
                return;
            }
        }
    }
}

/// Moves one subscription's messages from the client into the reader's bounded channel,
/// dropping what does not fit, until the reader goes away, the subscription ends or the bus
/// closes.
async fn forward(
    mut subscription: async_nats::Subscriber,
    tx: mpsc::Sender<BusMessage>,
    mut closing: watch::Receiver<bool>,
    pattern: String,
    counters: Arc<Counters>,
) {
    let drop_log = ThrottledLog::every(Duration::from_secs(1));
    loop {
        let message = tokio::select! {
            message = subscription.next() => message,
            () = tx.closed() => break,
            _ = closing.wait_for(|closing| *closing) => break,
        };
        let Some(message) = message else { break };
        let message = BusMessage { subject: message.subject.to_string(), payload: message.payload };
        match tx.try_send(message) {
            Ok(()) => {
                counters.received.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(held_back) = drop_log.ready() {
                    tracing::warn!(
                        pattern,
                        held_back,
                        "cluster bus: a message dropped: this node's reader is {SUBSCRIPTION_CAPACITY} messages behind"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => break,
        }
    }
    // Dropping the subscription unsubscribes it.
}

impl Bus for NatsBus {
    fn max_payload(&self) -> usize {
        self.inner.client.max_payload()
    }

    fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Relaxed) {
            return Err(BusError::Closed);
        }
        if !valid_subject(subject) {
            return Err(BusError::Subject(subject.to_owned()));
        }
        let max = inner.client.max_payload();
        if payload.len() > max {
            return Err(BusError::TooLarge { size: payload.len(), max });
        }
        inner.outbox.try_send(Outgoing::Message { subject: subject.to_owned(), payload }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                inner.counters.queue_full.fetch_add(1, Ordering::Relaxed);
                BusError::Unavailable(format!(
                    "the queue of {PUBLISH_QUEUE} messages for NATS is full (NATS at {} is slow or unreachable)",
                    inner.servers
                ))
            }
            mpsc::error::TrySendError::Closed(_) => BusError::Closed,
        })
    }

    /// Always `Some`: `false` from the moment the client finds the connection lost (a read
    /// error, or three pings without answer) until it is connected again.
    fn connected(&self) -> Option<watch::Receiver<bool>> {
        Some(self.inner.connected.clone())
    }

    fn counts(&self) -> Option<BusCounts> {
        Some(NatsBus::counts(self))
    }

    fn subscribe(&self, pattern: &str) -> Subscribing<'_> {
        let pattern = pattern.to_owned();
        Box::pin(async move {
            let inner = &self.inner;
            if inner.closed.load(Ordering::Relaxed) {
                return Err(BusError::Closed);
            }
            if !valid_pattern(&pattern) {
                return Err(BusError::Subject(pattern));
            }
            // The client takes no command while it reconnects: an outage is an error here, not
            // a wait without end.
            let subscription = tokio::time::timeout(
                ROUND_TRIP_TIMEOUT,
                inner.client.subscribe(pattern.clone()),
            )
            .await
            .map_err(|_| {
                BusError::Unavailable(format!(
                    "NATS at {} did not take a subscription to {pattern} within {ROUND_TRIP_TIMEOUT:?}",
                    inner.servers
                ))
            })?
            .map_err(|e| {
                BusError::Unavailable(format!(
                    "NATS at {} refused a subscription to {pattern}: {e}",
                    inner.servers
                ))
            })?;
            // In force once the server has read it: what this node's next publication causes
            // elsewhere, and what others publish once they hear of it, then reach this node.
            // Unconfirmed (NATS is away), it is still made: the client sends it again when it
            // reconnects.
            if !round_trip(&inner.client).await {
                tracing::debug!(pattern, "cluster bus: NATS did not confirm a subscription in time");
            }
            let (tx, rx) = mpsc::channel(SUBSCRIPTION_CAPACITY);
            tokio::spawn(forward(
                subscription,
                tx,
                inner.closing.subscribe(),
                pattern,
                inner.counters.clone(),
            ));
            Ok(rx)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_out_of_the_urls() {
        let servers = NatsServers::parse("nats://natter:p%40ss@10.0.0.1:4222, 10.0.0.2:4223").unwrap();
        assert_eq!(servers.display(), "nats://10.0.0.1:4222,nats://10.0.0.2:4223");
        assert!(servers.credentials == Some(Credentials::UserPassword("natter".into(), "p@ss".into())));
        assert!(!format!("{servers:?}").contains("p@ss") && !format!("{servers:?}").contains("p%40ss"));
        let token = NatsServers::parse("tls://s3cret@nats.example:4443").unwrap();
        assert!(token.credentials == Some(Credentials::Token("s3cret".into())));
        assert_eq!(token.display(), "tls://nats.example:4443");
    }

    #[test]
    fn bad_urls_are_named_without_their_password() {
        for bad in ["http://u:secret@host:4222", "nats://u:secret@:4222", "wss://u:secret@host:443"] {
            let e = NatsServers::parse(bad).unwrap_err();
            assert!(!e.contains("secret") && e.contains("***@"), "{e}");
        }
        let e = NatsServers::parse("nats://u:secret@host:4222,").unwrap_err();
        assert!(e.contains("server 2 of the list is empty") && !e.contains("secret"), "{e}");
        let e = NatsServers::parse("nats://a:pw-first@h1,nats://a:pw-second@h2").unwrap_err();
        assert!(e.contains("other credentials") && e.contains("***@h2") && !e.contains("pw-"), "{e}");
        let e = NatsServers::parse("nats://u:pass,word@host:4222").unwrap_err();
        assert!(e.contains("server 1 of the list") && !e.contains("pass"), "{e}");
        assert_eq!(redact("nats://a:b@c@host:1"), "nats://***@host:1");
        assert_eq!(redact("host:4222"), "host:4222");
    }
}
