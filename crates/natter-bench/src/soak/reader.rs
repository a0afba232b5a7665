//! Keeping-up readers: clients that read everything at once, and whose rooms' every message
//! must reach them.
//!
//! Each one reads its connection until told to stop, checks every bench message against its
//! [`Tally`], records its latency, and answers keep-alives. Counters shared by all readers are
//! updated once per read, not per message, so the sampler can print them while the soak runs.

use super::tally::{Counts, Tally};
use crate::conn::LineReader;
use crate::conn::{ReadHalf, WriteHalf};
use crate::dialect::{Incoming, Protocol};
use crate::layout::Layout;
use crate::payload::{self, Phase};
use crate::stats::Latency;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::watch;

/// Latency histograms the readers record into, each reader always into the same one: enough
/// of them that readers on different worker threads rarely meet on a lock.
pub const LATENCY_SHARDS: usize = 16;

/// State shared by every reader, the pacer and the sampler.
#[derive(Debug)]
pub struct Shared {
    /// Wire dialect.
    pub protocol: Protocol,
    /// The run's tag, which starts every bench message.
    pub tag: Vec<u8>,
    /// Zero of the nanosecond clock embedded in messages.
    pub base: Instant,
    /// Messages received in order, over all readers.
    pub unique: AtomicU64,
    /// Messages received with a number already passed, over all readers.
    pub out_of_order: AtomicU64,
    /// Messages found missing so far, over all readers.
    pub gaps: AtomicU64,
    /// Keeping-up readers whose connection the server closed.
    pub disconnects: AtomicU64,
    /// Acknowledgements of the readers' own messages, over all readers: they come once the
    /// message is stored, after its deliveries, so the drain waits for them too.
    pub acks: AtomicU64,
    /// Error frames received (a refused message, for one).
    pub errors: AtomicU64,
    /// The first thing that went wrong, to tell the user what happened.
    pub first_problem: Mutex<Option<String>>,
    /// Latency since the sampler last took it.
    pub latency: Vec<Mutex<Latency>>,
}

impl Shared {
    /// Fresh counters for a run tagged `tag`.
    pub fn new(protocol: Protocol, tag: &str) -> Self {
        Self {
            protocol,
            tag: tag.as_bytes().to_vec(),
            base: Instant::now(),
            unique: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            acks: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            first_problem: Mutex::new(None),
            latency: (0..LATENCY_SHARDS).map(|_| Mutex::new(Latency::new())).collect(),
        }
    }

    /// Nanoseconds on the clock embedded in messages.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Keeps `what` if it is the first problem of the run.
    pub fn problem(&self, what: impl FnOnce() -> String) {
        let mut first = self.first_problem.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(what());
        }
    }

    /// Takes the latency recorded since the last call.
    pub fn take_latency(&self) -> Latency {
        let mut all = Latency::new();
        for shard in &self.latency {
            let taken = std::mem::take(&mut *shard.lock().unwrap_or_else(|e| e.into_inner()));
            all.merge(&taken);
        }
        all
    }

    fn shard(&self, index: usize) -> MutexGuard<'_, Latency> {
        self.latency[index % LATENCY_SHARDS].lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A keeping-up client's sending side, shared by the pacer (which sends through it) and the
/// client's reader (which answers keep-alives through it).
#[derive(Debug)]
pub struct Link {
    /// The client's index: the sender field of its messages.
    pub index: u32,
    /// The connection's write half.
    pub writer: tokio::sync::Mutex<WriteHalf>,
    /// Messages this client sent; also the number of its next one.
    pub sent: AtomicU32,
    /// Cleared when the connection is gone, so the pacer picks another sender.
    pub alive: AtomicBool,
}

impl Link {
    /// A link over client `index`'s fresh session's write half.
    pub fn new(index: u32, writer: WriteHalf) -> Self {
        Self {
            index,
            writer: tokio::sync::Mutex::new(writer),
            sent: AtomicU32::new(0),
            alive: AtomicBool::new(true),
        }
    }
}

/// What one reader saw, handed back when it stops.
#[derive(Debug, Default)]
pub struct ReaderEnd {
    /// Its account of its room.
    pub tally: Tally,
    /// Bench messages of another room: a message delivered where it does not belong.
    pub misrouted: u64,
    /// Messages that were not this run's (other users in the lobby, say).
    pub foreign: u64,
    /// Acknowledgements of its own messages (native only).
    pub acks: u64,
    /// Why the server closed the connection, when it did.
    pub disconnected: Option<String>,
}

/// Reads client `link.index`'s connection until `stop` or until the server closes it.
pub async fn keep_up(
    mut reader: LineReader<ReadHalf>,
    link: std::sync::Arc<Link>,
    shared: std::sync::Arc<Shared>,
    layout: Layout,
    mut stop: watch::Receiver<bool>,
) -> ReaderEnd {
    let room = layout.room(link.index);
    let mut end = ReaderEnd { tally: Tally::new(layout.members(room)), ..ReaderEnd::default() };
    let mut pongs: Vec<Vec<u8>> = Vec::new();
    // Lines that arrived with the handshake are handled before the first read.
    let mut now = shared.now_ns();
    loop {
        let mut closed = take_lines(&mut reader, &mut end, &link, &shared, layout, now, &mut pongs);
        for reply in pongs.drain(..) {
            let _ = crate::conn::send(&mut *link.writer.lock().await, &reply).await;
        }
        if let Some(ping) = reader.take_pong() {
            let _ = link.writer.lock().await.pong(ping.as_slice()).await;
        }
        if closed.is_none() {
            tokio::select! {
                biased;
                _ = stop.changed() => return end,
                r = reader.fill() => match r {
                    Ok(0) => closed = Some(reader.close_reason().unwrap_or_else(|| {
                        "the server closed the connection without a reason".into()
                    })),
                    Err(e) => closed = Some(format!("connection error: {e:#}")),
                    Ok(_) => now = shared.now_ns(),
                },
            }
        }
        if let Some(reason) = closed {
            if *stop.borrow() {
                return end; // the end of the run, not the server's doing
            }
            link.alive.store(false, Ordering::Relaxed);
            shared.disconnects.fetch_add(1, Ordering::Relaxed);
            shared.problem(|| format!("the server closed a keeping-up reader: {reason}"));
            end.disconnected = Some(reason);
            return end;
        }
    }
}

/// Handles the complete lines already read, all received at `now`; collects keep-alive
/// answers in `pongs`. Returns the server's goodbye, if one came.
fn take_lines(
    reader: &mut LineReader<ReadHalf>,
    end: &mut ReaderEnd,
    link: &Link,
    shared: &Shared,
    layout: Layout,
    now: u64,
    pongs: &mut Vec<Vec<u8>>,
) -> Option<String> {
    let before = end.tally.counts;
    let room = layout.room(link.index);
    // Taken at the first delivery, held for the rest of the read.
    let mut latency = None;
    let mut closed = None;
    while let Some(line) = reader.next_line() {
        match shared.protocol.classify(line) {
            Incoming::Delivery(text) => match payload::decode(text, &shared.tag) {
                Some(p)
                    if p.phase == Phase::Measured
                        && layout.room(p.sender) == room
                        && end.tally.record(layout.place(p.sender), p.seq).is_some() =>
                {
                    let shard = link.index as usize;
                    latency
                        .get_or_insert_with(|| shared.shard(shard))
                        .record_ns(now.saturating_sub(p.sent_ns));
                }
                Some(p) => {
                    end.misrouted += 1;
                    shared.problem(|| {
                        format!(
                            "client {}'s message reached client {}, in another room",
                            p.sender, link.index
                        )
                    });
                }
                None => end.foreign += 1,
            },
            Incoming::Ack => {
                end.acks += 1;
                shared.acks.fetch_add(1, Ordering::Relaxed);
            }
            Incoming::Ping(reply) => pongs.push(reply),
            Incoming::Error(e) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                shared.problem(|| format!("server error: {e}"));
            }
            Incoming::Bye(reason) => {
                closed = Some(reason);
                break;
            }
            Incoming::Other => {}
        }
    }
    drop(latency);
    publish(shared, &before, &end.tally.counts);
    closed
}

/// Adds what one read changed to the shared counters.
fn publish(shared: &Shared, before: &Counts, after: &Counts) {
    let add = |counter: &AtomicU64, n: u64| {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    };
    add(&shared.unique, after.unique - before.unique);
    add(&shared.out_of_order, after.out_of_order - before.out_of_order);
    add(&shared.gaps, after.gaps - before.gaps);
}
