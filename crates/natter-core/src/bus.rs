//! The bus between the nodes of a cluster: what the core needs from it, and the in-process bus.
//!
//! A bus carries opaque payloads on subjects (NATS's model: dot-separated tokens, `*` matches
//! one token and `>` the rest), fire and forget. It is the fast path between nodes, never the
//! record: every message that matters is in the shared store first, and a node that finds a
//! gap in what the bus brought refills it from there. So a bus may lose messages (it is down,
//! a subscriber fell behind) but must not reorder one publisher's messages on one subject, and
//! must never hand a node its own publications back.
//!
//! The core knows no encoding of what travels: the cluster codec (in the server) turns events
//! into payloads. [`LocalBus`] joins hubs in one process (tests, and the reference behaviour);
//! the NATS bus lives in the server.

use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Messages a subscription holds for a reader that has not taken them yet; beyond, the bus
/// drops (as NATS does with a slow consumer) and the reader recovers from the store.
pub const SUBSCRIPTION_CAPACITY: usize = 8192;

/// One message from the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusMessage {
    /// The subject it was published on.
    pub subject: String,
    /// Its bytes, as published.
    pub payload: Bytes,
}

/// Why the bus did not take a message or a subscription.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus was closed (the server is stopping).
    #[error("the cluster bus is closed")]
    Closed,
    /// The payload is over the bus's limit.
    #[error("a cluster bus message of {size} bytes is over the bus's limit of {max} bytes")]
    TooLarge {
        /// The payload's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The subject is not a valid subject (or pattern, for a subscription).
    #[error("{0:?} is not a valid cluster bus subject")]
    Subject(String),
    /// The bus could not be reached; the text says what the bus's client said.
    #[error("the cluster bus is unavailable: {0}")]
    Unavailable(String),
}

/// A subscription being made.
pub type Subscribing<'a> =
    Pin<Box<dyn Future<Output = Result<mpsc::Receiver<BusMessage>, BusError>> + Send + 'a>>;

/// A bus between nodes. Implementations must be safe to share between tasks.
pub trait Bus: Send + Sync + 'static {
    /// The largest payload [`Bus::publish`] takes.
    fn max_payload(&self) -> usize;

    /// Queues `payload` for every other node subscribed to a pattern matching `subject`, and
    /// never waits: the hub calls it. `Ok` means queued, not delivered.
    fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError>;

    /// Starts receiving what other nodes publish on subjects matching `pattern`. Messages of
    /// one publisher on one subject arrive in the order published; when the reader falls more
    /// than [`SUBSCRIPTION_CAPACITY`] behind, the bus drops what does not fit.
    fn subscribe(&self, pattern: &str) -> Subscribing<'_>;

    /// Whether the bus is connected now, and news when that changes (what was published
    /// during an outage is lost: the hub reads it from the store once the bus is back).
    /// `None` for a bus that cannot be cut off (the in-process one).
    fn connected(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        None
    }

    /// What the bus has done since it started, for the operator (`/metrics`): a dropped or
    /// refused message costs latency (the hub reads it from the store), and only these counts
    /// say it happened. `None` for a bus that keeps none (the in-process one loses nothing).
    fn counts(&self) -> Option<BusCounts> {
        None
    }
}

/// What a bus has done since it started ([`Bus::counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusCounts {
    /// Publications handed to the bus's client.
    pub published: u64,
    /// Publications refused because the queue to the bus was full.
    pub queue_full: u64,
    /// Publications the bus's client refused after they were queued (closed, or over a new
    /// server's smaller limit).
    pub publish_failed: u64,
    /// Messages put into a subscription's channel.
    pub received: u64,
    /// Messages dropped because a subscription's reader was [`SUBSCRIPTION_CAPACITY`] behind
    /// (or, rarely, because the client's own buffer was full: then as many as it reported).
    pub dropped: u64,
    /// Attempts to reconnect to the bus that failed (during outages).
    pub failed_connects: u64,
}

/// Whether `subject` is a valid subject to publish on: non-empty dot-separated tokens of
/// printable ASCII without wildcards or spaces.
pub fn valid_subject(subject: &str) -> bool {
    subject
        .split('.')
        .all(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic() && b != b'*' && b != b'>'))
}

/// Whether `pattern` is a valid subscription: a subject whose tokens may be `*`, and whose
/// last token may be `>`.
pub fn valid_pattern(pattern: &str) -> bool {
    let tokens: Vec<&str> = pattern.split('.').collect();
    tokens
        .iter()
        .enumerate()
        .all(|(i, t)| *t == "*" || (*t == ">" && i + 1 == tokens.len()) || valid_subject(t))
}

/// Whether `subject` matches `pattern` (NATS rules).
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut subject = subject.split('.');
    for token in pattern.split('.') {
        match (token, subject.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (t, Some(s)) if t == s => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

struct Subscriber {
    /// The handle that subscribed: it never gets its own publications.
    node: u64,
    pattern: String,
    tx: mpsc::Sender<BusMessage>,
}

#[derive(Default)]
struct Shared {
    subscribers: Vec<Subscriber>,
    next_node: u64,
}

/// A bus inside one process: each [`LocalBus::join`] is one node's handle on it.
#[derive(Clone)]
pub struct LocalBus {
    shared: Arc<Mutex<Shared>>,
    node: u64,
}

impl std::fmt::Debug for LocalBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBus").field("node", &self.node).finish_non_exhaustive()
    }
}

/// The largest payload a [`LocalBus`] takes: NATS's default.
pub const LOCAL_MAX_PAYLOAD: usize = 1024 * 1024;

impl Default for LocalBus {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalBus {
    /// A new bus, and the first node's handle on it.
    pub fn new() -> Self {
        Self { shared: Arc::new(Mutex::new(Shared { subscribers: Vec::new(), next_node: 1 })), node: 0 }
    }

    /// Another node's handle on the same bus.
    pub fn join(&self) -> Self {
        let mut shared = self.shared();
        let node = shared.next_node;
        shared.next_node += 1;
        Self { shared: self.shared.clone(), node }
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Bus for LocalBus {
    fn max_payload(&self) -> usize {
        LOCAL_MAX_PAYLOAD
    }

    fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        if !valid_subject(subject) {
            return Err(BusError::Subject(subject.to_owned()));
        }
        if payload.len() > LOCAL_MAX_PAYLOAD {
            return Err(BusError::TooLarge { size: payload.len(), max: LOCAL_MAX_PAYLOAD });
        }
        let mut shared = self.shared();
        shared.subscribers.retain(|s| !s.tx.is_closed());
        for s in shared.subscribers.iter().filter(|s| s.node != self.node) {
            if subject_matches(&s.pattern, subject) {
                // A full subscription drops, as a slow NATS consumer does.
                let _ = s.tx.try_send(BusMessage { subject: subject.to_owned(), payload: payload.clone() });
            }
        }
        Ok(())
    }

    fn subscribe(&self, pattern: &str) -> Subscribing<'_> {
        let pattern = pattern.to_owned();
        Box::pin(async move {
            if !valid_pattern(&pattern) {
                return Err(BusError::Subject(pattern));
            }
            let (tx, rx) = mpsc::channel(SUBSCRIPTION_CAPACITY);
            self.shared().subscribers.push(Subscriber { node: self.node, pattern, tx });
            Ok(rx)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_match_as_in_nats() {
        assert!(subject_matches("a.b", "a.b"));
        assert!(subject_matches("a.*", "a.b"));
        assert!(!subject_matches("a.*", "a.b.c"));
        assert!(subject_matches("a.>", "a.b.c"));
        assert!(!subject_matches("a.>", "a"));
        assert!(!subject_matches("a.b", "a.b.c"));
        assert!(!subject_matches("a.b.c", "a.b"));
        assert!(valid_pattern("a.*.>") && !valid_pattern("a.>.b") && !valid_pattern("a..b"));
        assert!(valid_subject("natter.room.x") && !valid_subject("a b") && !valid_subject("a.*"));
    }
}
