//! Carries the hub's events to the other nodes over the bus, and theirs to the hub.
//!
//! Every node publishes on one subject, [`SUBJECT`], and reads it: the bus keeps one
//! publisher's messages in order on one subject, and the hub needs a node's events in the
//! order they happened (a session's login before its joins). What the bus brings that does not
//! decode is logged (at most once per ten seconds per reason) and dropped.

use super::codec;
use crate::throttled_log::ThrottledLog;
use natter_core::HubHandle;
use natter_core::bus::{Bus, BusError};
use natter_core::cluster::NodeEvent;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The subject every node publishes its events on.
pub const SUBJECT: &str = "natter.cluster.events";

/// The bridge's two tasks.
pub struct Bridge {
    outbound: JoinHandle<()>,
    inbound: JoinHandle<()>,
    given_up: Arc<AtomicU64>,
}

impl Bridge {
    /// Subscribes to the other nodes' events (before anything of this node's goes out, so that
    /// the answers to its `Hello` are heard), then carries events both ways until `stop`.
    pub async fn start(
        hub: HubHandle,
        outlet: mpsc::UnboundedReceiver<NodeEvent>,
        bus: Arc<dyn Bus>,
        stop: watch::Receiver<bool>,
    ) -> Result<Self, BusError> {
        let incoming = bus.subscribe(SUBJECT).await?;
        if let Some(connected) = bus.connected() {
            tokio::spawn(watch_outages(connected, hub.clone()));
        }
        let given_up = Arc::new(AtomicU64::new(0));
        let outbound = tokio::spawn(publish(outlet, bus.clone(), given_up.clone()));
        let inbound = tokio::spawn(receive(incoming, hub, bus.max_payload(), stop));
        Ok(Self { outbound, inbound, given_up })
    }

    /// How many events it gave up publishing so far (the bus refused them, or had no room for
    /// [`PUBLISH_WAIT`]), each counted once however often it was tried: for `/metrics`.
    pub fn given_up(&self) -> Arc<AtomicU64> {
        self.given_up.clone()
    }

    /// Waits until everything the hub said went to the bus (the hub has stopped), and stops
    /// reading.
    pub async fn finish(self) {
        let _ = self.outbound.await;
        self.inbound.abort();
    }
}

/// Tells the hub each time the bus comes back after an outage.
async fn watch_outages(mut connected: watch::Receiver<bool>, hub: HubHandle) {
    let mut was = *connected.borrow_and_update();
    while connected.changed().await.is_ok() {
        let now = *connected.borrow_and_update();
        if now && !was {
            tracing::info!("the cluster bus is back: catching up from the store");
            if hub.bus_back().await.is_err() {
                return;
            }
        }
        was = now;
    }
}

/// How long an event waits for room in the bus's queue before it is given up.
const PUBLISH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// How long apart it tries while it waits.
const PUBLISH_RETRY: std::time::Duration = std::time::Duration::from_millis(2);

async fn publish(
    mut outlet: mpsc::UnboundedReceiver<NodeEvent>,
    bus: Arc<dyn Bus>,
    given_up: Arc<AtomicU64>,
) {
    let refused = ThrottledLog::new();
    // False after an event was given up, until the bus takes one again: during an outage
    // events are dropped at once rather than each waiting.
    let mut patient = true;
    while let Some(event) = outlet.recv().await {
        let payload: bytes::Bytes = codec::encode(&event).into();
        // A full queue (a burst faster than NATS takes it) is waited out, a little: the
        // hub's events wait in order behind, and nothing is lost that a short wait saves.
        let give_up = tokio::time::Instant::now() + PUBLISH_WAIT;
        loop {
            match bus.publish(SUBJECT, payload.clone()) {
                Ok(()) => {
                    patient = true;
                    break;
                }
                Err(BusError::Unavailable(_)) if patient && tokio::time::Instant::now() < give_up => {
                    tokio::time::sleep(PUBLISH_RETRY).await;
                }
                Err(e) => {
                    patient = false;
                    given_up.fetch_add(1, Ordering::Relaxed);
                    if let Some(held_back) = refused.ready() {
                        // The store has what matters; the others find the gap or resynchronise.
                        tracing::warn!(error = %e, held_back, "the cluster bus did not take an event");
                    }
                    break;
                }
            }
        }
    }
}

async fn receive(
    mut incoming: mpsc::Receiver<natter_core::bus::BusMessage>,
    hub: HubHandle,
    max: usize,
    mut stop: watch::Receiver<bool>,
) {
    let malformed = ThrottledLog::new();
    loop {
        let message = tokio::select! {
            _ = stop.changed() => return,
            message = incoming.recv() => match message {
                Some(message) => message,
                None => return,
            },
        };
        match codec::decode(&message.payload, max) {
            Ok(event) => {
                if hub.node_event(event).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                if let Some(held_back) = malformed.ready() {
                    tracing::warn!(error = %e, held_back, "dropped a message from the cluster bus");
                }
            }
        }
    }
}
