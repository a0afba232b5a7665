//! What `/metrics` and `/readyz` answer: the hub's counters ([`natter_core::metrics`]) in the
//! Prometheus text format (OpenMetrics), and whether the store takes writes.
//!
//! Everything is read when asked: gauges (connections, sessions, rooms, the hub's queue) are
//! read from the counters the server keeps anyway, so a scrape costs a few hundred loads and
//! the chat's hot path pays nothing for being observed.

use natter_core::HubHandle;
use natter_core::bus::Bus;
use natter_core::metrics::{COMMIT_BUCKETS_US, Disconnect};
use natter_core::vocab::SessionKind;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// The `Content-Type` of what [`Ops::encode`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A store that committed this recently is writable: `/readyz` answers without a probe.
pub const FRESH_COMMIT: Duration = Duration::from_secs(10);
/// A probe's answer is reused for this long: however many ask, the store sees at most one
/// probe a second.
pub const PROBE_REUSE: Duration = Duration::from_secs(1);
/// How long `/readyz` waits for a probe before it says the store is not answering.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The server's operational answers, shared by every HTTP connection.
pub struct Ops {
    registry: Registry,
    hub: HubHandle,
    probe: tokio::sync::Mutex<Probe>,
}

/// The last probe of the store, and the one still on its way (a store that hangs is asked
/// once, not once per check).
#[derive(Default)]
struct Probe {
    /// When the last answer came (and its wall-clock time in ms, to compare with commits').
    last: Option<(Instant, u64, Result<(), String>)>,
    in_flight: Option<(Instant, tokio::sync::oneshot::Receiver<Result<(), String>>)>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops").finish_non_exhaustive()
    }
}

impl Ops {
    /// The metrics and checks of the server around `hub`, and of its cluster's bus when it
    /// is a node of one.
    pub fn new(hub: HubHandle, bus: Option<BusReadings>) -> Self {
        let mut registry = Registry::with_prefix("natter");
        registry.register_collector(Box::new(HubCollector { hub: hub.clone() }));
        if let Some(bus) = bus {
            registry.register_collector(Box::new(bus));
        }
        Self { registry, hub, probe: tokio::sync::Mutex::default() }
    }

    /// Every metric, in the OpenMetrics text format (`# EOF` last), as read now.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing to a String cannot fail, and the collector's own writes are infallible.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// `Ok` when the store takes writes: it committed within [`FRESH_COMMIT`] (and has not
    /// failed since), or it took a probe write now. `Err` says why not, in words for the
    /// operator. Many callers at once share one probe, and a probe's answer is reused for
    /// [`PROBE_REUSE`]; nobody waits longer than [`PROBE_TIMEOUT`] for it.
    pub async fn ready(&self) -> Result<(), String> {
        let (ok_ms, failed_ms) = self.hub.metrics().last_commits();
        let fresh_ms = FRESH_COMMIT.as_millis() as u64;
        if ok_ms > failed_ms && natter_core::time::now_ms().saturating_sub(ok_ms) < fresh_ms {
            return Ok(());
        }
        let mut probe = self.probe.lock().await;
        if let Some((at, at_ms, result)) = &probe.last
            && at.elapsed() < PROBE_REUSE
            // A success is not reused past a commit that failed since.
            && (result.is_err() || failed_ms < *at_ms)
        {
            return result.clone();
        }
        if probe.in_flight.is_none() {
            match self.hub.try_probe_store() {
                Ok(answer) => probe.in_flight = Some((Instant::now(), answer)),
                Err(why) => {
                    let result = Err(why.to_string());
                    probe.last = Some((Instant::now(), natter_core::time::now_ms(), result.clone()));
                    return result;
                }
            }
        }
        let (sent, answer) = probe.in_flight.as_mut().expect("set above");
        let result = match tokio::time::timeout(PROBE_TIMEOUT, answer).await {
            Ok(answered) => {
                probe.in_flight = None;
                match answered {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(format!("the store refused a write: {e}")),
                    Err(_) => Err("the server is shutting down".to_string()),
                }
            }
            // Still on its way: kept, so that a store that hangs is not asked again and again.
            Err(_) => Err(format!(
                "the store has not answered a write for {:.1} seconds",
                sent.elapsed().as_secs_f64()
            )),
        };
        probe.last = Some((Instant::now(), natter_core::time::now_ms(), result.clone()));
        result
    }
}

/// The label value of a reason to disconnect.
fn reason_label(why: Disconnect) -> &'static str {
    match why {
        Disconnect::Quit => "quit",
        Disconnect::ConnectionLost => "connection_lost",
        Disconnect::SlowReader => "slow_reader",
        Disconnect::Flood => "flood",
        Disconnect::BadInput => "bad_input",
        Disconnect::IdleTimeout => "idle_timeout",
        Disconnect::RegistrationTimeout => "registration_timeout",
        Disconnect::Evicted => "evicted",
        Disconnect::LoginRefused => "login_refused",
        Disconnect::Killed => "killed",
        Disconnect::Shutdown => "shutdown",
    }
}

/// Reads the hub's counters at each scrape.
#[derive(Clone)]
struct HubCollector {
    hub: HubHandle,
}

impl std::fmt::Debug for HubCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubCollector").finish_non_exhaustive()
    }
}

/// One metric's value (or values, by label) as read at a scrape.
enum Reading<'a> {
    Counter(u64),
    Gauge(u64),
    /// Per label value (`label`), a gauge or a counter.
    Labelled {
        label: &'static str,
        counter: bool,
        values: &'a [(&'static str, u64)],
    },
    /// Per bucket (upper bound in seconds, the last infinite) its own count, not cumulative;
    /// the count of all and their sum in seconds.
    Histogram {
        buckets: &'a [(f64, u64)],
        count: u64,
        sum: f64,
    },
}

impl EncodeMetric for Reading<'_> {
    fn encode(&self, mut encoder: prometheus_client::encoding::MetricEncoder) -> Result<(), std::fmt::Error> {
        match self {
            Reading::Counter(v) => encoder.encode_counter::<NoLabelSet, _, f64>(v, None),
            Reading::Gauge(v) => encoder.encode_gauge(v),
            Reading::Labelled { label, counter, values } => {
                for (value, v) in values.iter() {
                    let labels = [(*label, *value)];
                    let mut family = encoder.encode_family(&labels)?;
                    if *counter {
                        family.encode_counter::<NoLabelSet, _, f64>(v, None)?;
                    } else {
                        family.encode_gauge(v)?;
                    }
                }
                Ok(())
            }
            Reading::Histogram { buckets, count, sum } => {
                encoder.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)
            }
        }
    }

    fn metric_type(&self) -> MetricType {
        match self {
            Reading::Counter(_) | Reading::Labelled { counter: true, .. } => MetricType::Counter,
            Reading::Gauge(_) | Reading::Labelled { counter: false, .. } => MetricType::Gauge,
            Reading::Histogram { .. } => MetricType::Histogram,
        }
    }
}

/// Writes one metric: its help, its type and its value(s).
fn put(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    reading: Reading,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, reading.metric_type())?;
    reading.encode(metric)
}

impl Collector for HubCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = self.hub.metrics();
        let by_door = |read: &dyn Fn(SessionKind) -> u64| -> Vec<(&'static str, u64)> {
            SessionKind::ALL.iter().map(|&k| (k.name(), read(k))).collect()
        };
        let connections = by_door(&|k| m.connections(k));
        put(
            &mut encoder,
            "connections",
            "Connections open now, by front door (UDP: members; console: the server's terminal).",
            Reading::Labelled { label: "door", counter: false, values: &connections },
        )?;
        put(
            &mut encoder,
            "websocket_connections",
            "Connections open now over WebSocket (also counted in natter_connections by the protocol they speak).",
            Reading::Gauge(m.websockets()),
        )?;
        put(
            &mut encoder,
            "parked_connections",
            "Connections parked now: idle, waiting without a task of their own until their peer or a delivery wakes them (also counted in natter_connections).",
            Reading::Gauge(m.parked()),
        )?;
        let sessions = by_door(&|k| m.sessions(k));
        put(
            &mut encoder,
            "sessions",
            "Sessions logged in now, by front door.",
            Reading::Labelled { label: "door", counter: false, values: &sessions },
        )?;
        put(&mut encoder, "rooms", "Rooms the server holds now.", Reading::Gauge(m.rooms()))?;
        put(
            &mut encoder,
            "messages_received",
            "Room and private messages received from clients (those over a session's rate are dropped before and not counted).",
            Reading::Counter(m.messages_received()),
        )?;
        put(
            &mut encoder,
            "messages_delivered",
            "Room and private messages handed to recipients, one per recipient.",
            Reading::Counter(m.messages_delivered()),
        )?;
        let disconnects: Vec<(&'static str, u64)> =
            Disconnect::ALL.iter().map(|&why| (reason_label(why), m.disconnects(why))).collect();
        put(
            &mut encoder,
            "disconnects",
            "Sessions and connections ended, by the reason the server or the peer gave.",
            Reading::Labelled { label: "reason", counter: true, values: &disconnects },
        )?;
        let commits = m.commits();
        // Per bucket, not cumulative: the encoder adds them up.
        let bounds = COMMIT_BUCKETS_US.iter().map(|&us| us as f64 / 1e6).chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds.zip(commits.buckets).collect();
        put(
            &mut encoder,
            "store_commit_seconds",
            "How long the store took for each group commit of messages.",
            Reading::Histogram { buckets: &buckets, count: commits.count, sum: commits.sum_us as f64 / 1e6 },
        )?;
        put(
            &mut encoder,
            "store_commit_failures",
            "Group commits the store refused (their messages were not acknowledged).",
            Reading::Counter(commits.failed),
        )?;
        put(
            &mut encoder,
            "store_probes",
            "Probe writes /readyz asked of the store (at most one a second, only when no commit succeeded lately).",
            Reading::Counter(m.store_probes()),
        )?;
        put(
            &mut encoder,
            "hub_queue_depth",
            "Commands waiting in the hub's queue now; at the queue's size, front doors wait.",
            Reading::Gauge(self.hub.queue_depth() as u64),
        )
    }
}

/// What `/metrics` reads of a cluster node's bus at each scrape: the bus's own state and counts,
/// and the events the node gave up publishing (counted where it gives up: the bus itself sees
/// each retry of a waiting event as one more refusal).
pub struct BusReadings {
    /// The bus.
    pub bus: Arc<dyn Bus>,
    /// Events the node gave up publishing (`Bridge::given_up`).
    pub given_up: Arc<AtomicU64>,
}

impl std::fmt::Debug for BusReadings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusReadings").finish_non_exhaustive()
    }
}

impl Collector for BusReadings {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(connected) = self.bus.connected() {
            put(
                &mut encoder,
                "bus_connected",
                "1 while the cluster bus (NATS) is connected, 0 during an outage (rooms then catch up from the store).",
                Reading::Gauge(u64::from(*connected.borrow())),
            )?;
        }
        let counts = self.bus.counts();
        let refused_by_client = counts.map_or(0, |c| c.publish_failed);
        put(
            &mut encoder,
            "bus_not_published",
            "Events this node could not publish: the bus had no room for them for 2 s (an outage or a slow NATS), or refused them; the other nodes read what matters from the store.",
            Reading::Counter(self.given_up.load(Ordering::Relaxed) + refused_by_client),
        )?;
        // The rest is the bus's own account (NATS keeps one; the in-process bus none).
        let Some(counts) = counts else { return Ok(()) };
        put(
            &mut encoder,
            "bus_published",
            "Events this node handed to the cluster bus's client.",
            Reading::Counter(counts.published),
        )?;
        put(
            &mut encoder,
            "bus_received",
            "Events received from the other nodes.",
            Reading::Counter(counts.received),
        )?;
        put(
            &mut encoder,
            "bus_dropped",
            "Events from the other nodes dropped because this node was too far behind reading them (the rooms concerned catch up from the store).",
            Reading::Counter(counts.dropped),
        )?;
        put(
            &mut encoder,
            "bus_connect_failures",
            "Attempts to reconnect to the cluster bus that failed.",
            Reading::Counter(counts.failed_connects),
        )
    }
}
