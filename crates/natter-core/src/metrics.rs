//! Counters for whoever runs the server: connections and sessions per front door, rooms,
//! messages, why sessions ended, how long the store takes to commit.
//!
//! Plain relaxed atomics, one set per hub, shared by the hub, its commit thread and the front
//! doors (through [`HubHandle::metrics`](crate::HubHandle::metrics)). The core knows no wire
//! format: natter-server reads a [`Metrics`] when it is scraped and encodes it for Prometheus.
//! Nothing here is touched per delivery: the hub counts messages in plain fields and publishes
//! them once per batch of commands, gauges are set where sessions and rooms come and go, and a
//! commit is timed once per group commit.

use crate::vocab::SessionKind;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Why a session or connection ended: each is counted where the server decides it, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    /// The peer said goodbye (a quit command, `/quit`, IRC `QUIT`).
    Quit,
    /// The peer closed or reset the connection without a goodbye.
    ConnectionLost,
    /// The peer read too slowly: its outbox overflowed, or it took no bytes for 30 seconds.
    SlowReader,
    /// The peer kept sending messages over its rate after being told.
    Flood,
    /// The peer sent too many invalid requests (or SASL attempts).
    BadInput,
    /// The peer stopped answering (IRC ping timeout; a UDP member fell silent).
    IdleTimeout,
    /// The peer did not log in within the registration deadline.
    RegistrationTimeout,
    /// The peer had not logged in and newer connections needed its place.
    Evicted,
    /// The login was refused for good (a wrong server password, TLS required, no guest name).
    LoginRefused,
    /// A server operator ended the session.
    Killed,
    /// The server shut down.
    Shutdown,
}

impl Disconnect {
    /// Every reason, in [`Disconnect::index`] order.
    pub const ALL: [Disconnect; 11] = [
        Disconnect::Quit,
        Disconnect::ConnectionLost,
        Disconnect::SlowReader,
        Disconnect::Flood,
        Disconnect::BadInput,
        Disconnect::IdleTimeout,
        Disconnect::RegistrationTimeout,
        Disconnect::Evicted,
        Disconnect::LoginRefused,
        Disconnect::Killed,
        Disconnect::Shutdown,
    ];

    /// This reason's place in [`Disconnect::ALL`] (an exhaustive match: a new reason cannot
    /// be forgotten here).
    pub const fn index(self) -> usize {
        match self {
            Disconnect::Quit => 0,
            Disconnect::ConnectionLost => 1,
            Disconnect::SlowReader => 2,
            Disconnect::Flood => 3,
            Disconnect::BadInput => 4,
            Disconnect::IdleTimeout => 5,
            Disconnect::RegistrationTimeout => 6,
            Disconnect::Evicted => 7,
            Disconnect::LoginRefused => 8,
            Disconnect::Killed => 9,
            Disconnect::Shutdown => 10,
        }
    }
}

/// Upper bounds of the commit-latency buckets, in microseconds: a group commit on a local disk
/// takes from a few hundred microseconds (no fsync) to tens of milliseconds (fsync on a busy
/// disk); the last buckets catch a store in trouble.
pub const COMMIT_BUCKETS_US: [u64; 14] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    10_000_000,
];

/// A histogram of commit durations: a count per bucket (not cumulative; the last one is
/// above every bound), their sum and how many failed.
#[derive(Debug, Default)]
struct CommitTimes {
    buckets: [AtomicU64; COMMIT_BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
    failed: AtomicU64,
}

/// The commit durations as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSnapshot {
    /// Commits within each of [`COMMIT_BUCKETS_US`] and above the one before (not
    /// cumulative); the last entry counts those above every bound.
    pub buckets: [u64; COMMIT_BUCKETS_US.len() + 1],
    /// Every commit timed.
    pub count: u64,
    /// Their total duration, in microseconds.
    pub sum_us: u64,
    /// Commits that failed (counted in the histogram too: a failure took its time as well).
    pub failed: u64,
}

/// The counters of one hub. See the module's documentation.
#[derive(Debug, Default)]
pub struct Metrics {
    connections: [AtomicU64; SessionKind::ALL.len()],
    /// Of those, the ones over WebSocket (a transport, not a door: they speak a door's protocol).
    websockets: AtomicU64,
    /// Of those, the ones parked: idle, waiting without a task of their own.
    parked: AtomicU64,
    sessions: [AtomicU64; SessionKind::ALL.len()],
    rooms: AtomicU64,
    received: AtomicU64,
    delivered: AtomicU64,
    disconnects: [AtomicU64; Disconnect::ALL.len()],
    commits: CommitTimes,
    /// When the store last committed successfully (ms since the Unix epoch; 0: never).
    last_commit_ok_ms: AtomicU64,
    /// When a commit last failed (ms since the Unix epoch; 0: never).
    last_commit_failed_ms: AtomicU64,
    /// Probe writes the commit thread made for readiness checks.
    probes: AtomicU64,
}

impl Metrics {
    /// A connection of `kind` was handed to its front door (front doors call this, and
    /// [`Metrics::connection_closed`] once when it ends).
    pub fn connection_opened(&self, kind: SessionKind) {
        self.connections[kind.index()].fetch_add(1, Relaxed);
    }

    /// A connection counted by [`Metrics::connection_opened`] ended.
    pub fn connection_closed(&self, kind: SessionKind) {
        self.connections[kind.index()].fetch_sub(1, Relaxed);
    }

    /// Connections of `kind` open now.
    pub fn connections(&self, kind: SessionKind) -> u64 {
        self.connections[kind.index()].load(Relaxed)
    }

    /// One of the open connections is over WebSocket (`open`), or such a one ended.
    pub fn websocket_changed(&self, open: bool) {
        if open {
            self.websockets.fetch_add(1, Relaxed);
        } else {
            self.websockets.fetch_sub(1, Relaxed);
        }
    }

    /// Connections over WebSocket open now (counted by the protocol they speak as well).
    pub fn websockets(&self) -> u64 {
        self.websockets.load(Relaxed)
    }

    /// An open connection parked (`parked`), or one came back from the park.
    pub fn parked_changed(&self, parked: bool) {
        if parked {
            self.parked.fetch_add(1, Relaxed);
        } else {
            self.parked.fetch_sub(1, Relaxed);
        }
    }

    /// Connections parked now (counted by their door as well).
    pub fn parked(&self) -> u64 {
        self.parked.load(Relaxed)
    }

    /// Counts a session or connection ended for `why`, where the server decided it.
    pub fn disconnected(&self, why: Disconnect) {
        self.disconnects[why.index()].fetch_add(1, Relaxed);
    }

    /// Sessions or connections ended for `why` since the start.
    pub fn disconnects(&self, why: Disconnect) -> u64 {
        self.disconnects[why.index()].load(Relaxed)
    }

    /// Sessions of `kind` logged in now.
    pub fn sessions(&self, kind: SessionKind) -> u64 {
        self.sessions[kind.index()].load(Relaxed)
    }

    /// Rooms the hub holds now (in use, or kept for their topic, settings or history).
    pub fn rooms(&self) -> u64 {
        self.rooms.load(Relaxed)
    }

    /// Room and private messages the hub received from clients since the start.
    pub fn messages_received(&self) -> u64 {
        self.received.load(Relaxed)
    }

    /// Room and private messages handed to recipients since the start (one per recipient).
    pub fn messages_delivered(&self) -> u64 {
        self.delivered.load(Relaxed)
    }

    /// The commit durations so far.
    pub fn commits(&self) -> CommitSnapshot {
        let buckets = std::array::from_fn(|i| self.commits.buckets[i].load(Relaxed));
        CommitSnapshot {
            buckets,
            count: buckets.iter().sum(),
            sum_us: self.commits.sum_us.load(Relaxed),
            failed: self.commits.failed.load(Relaxed),
        }
    }

    /// When the store last committed successfully, and when a commit last failed (ms since
    /// the Unix epoch; 0: never): whether the store is writable is judged from these first.
    pub fn last_commits(&self) -> (u64, u64) {
        (self.last_commit_ok_ms.load(Relaxed), self.last_commit_failed_ms.load(Relaxed))
    }

    /// The commit thread finished a group commit that took `took`.
    pub(crate) fn commit_done(&self, took: Duration, ok: bool) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket =
            COMMIT_BUCKETS_US.iter().position(|&bound| us <= bound).unwrap_or(COMMIT_BUCKETS_US.len());
        self.commits.buckets[bucket].fetch_add(1, Relaxed);
        self.commits.sum_us.fetch_add(us, Relaxed);
        self.store_answered(ok);
        if !ok {
            self.commits.failed.fetch_add(1, Relaxed);
        }
    }

    /// Probe writes made for readiness checks since the start.
    pub fn store_probes(&self) -> u64 {
        self.probes.load(Relaxed)
    }

    /// The commit thread made a probe write (readiness checks): `ok` or not.
    pub(crate) fn probed(&self, ok: bool) {
        self.probes.fetch_add(1, Relaxed);
        self.store_answered(ok);
    }

    /// The store answered a write (a commit or a probe): `ok` or not, now.
    pub(crate) fn store_answered(&self, ok: bool) {
        let now = crate::time::now_ms();
        if ok {
            self.last_commit_ok_ms.store(now, Relaxed);
        } else {
            self.last_commit_failed_ms.store(now, Relaxed);
        }
    }

    /// A session of `kind` logged in (`up`) or ended.
    pub(crate) fn session_changed(&self, kind: SessionKind, up: bool) {
        let gauge = &self.sessions[kind.index()];
        if up {
            gauge.fetch_add(1, Relaxed);
        } else {
            gauge.fetch_sub(1, Relaxed);
        }
    }

    /// The hub's running totals, published at the end of each batch of commands.
    pub(crate) fn publish(&self, tally: &Tally, rooms: usize) {
        self.received.store(tally.received, Relaxed);
        self.delivered.store(tally.delivered, Relaxed);
        self.rooms.store(rooms as u64, Relaxed);
    }

    /// Every session ended at once (the hub stopped).
    pub(crate) fn sessions_cleared(&self) {
        for gauge in &self.sessions {
            gauge.store(0, Relaxed);
        }
    }
}

/// The hub's own message counts: plain fields, bumped on the hub's task as it works and copied
/// to [`Metrics`] once per batch, so that a fanout to a thousand members costs one addition.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub received: u64,
    pub delivered: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_and_kind_has_its_own_place() {
        for (i, why) in Disconnect::ALL.iter().enumerate() {
            assert_eq!(why.index(), i, "{why:?}");
        }
        for (i, kind) in SessionKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i, "{kind:?}");
        }
    }

    #[test]
    fn commit_durations_land_in_cumulative_buckets() {
        let m = Metrics::default();
        m.commit_done(Duration::from_micros(100), true);
        m.commit_done(Duration::from_micros(250), true);
        m.commit_done(Duration::from_millis(3), false);
        m.commit_done(Duration::from_secs(60), true);
        let s = m.commits();
        assert_eq!(s.count, 4);
        assert_eq!(s.failed, 1);
        assert_eq!(s.buckets[0], 2, "250 us is within the first bound");
        assert_eq!(s.buckets[4], 1, "3 ms is within 5 ms");
        assert_eq!(s.buckets.iter().take(COMMIT_BUCKETS_US.len()).sum::<u64>(), 3);
        assert_eq!(*s.buckets.last().unwrap(), 1, "a minute is above every bound");
        assert_eq!(s.sum_us, 100 + 250 + 3_000 + 60_000_000);
        let (ok, failed) = m.last_commits();
        assert!(ok > 0 && failed > 0);
    }
}
