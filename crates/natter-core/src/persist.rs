//! Group commit: one thread takes every write queued since its last commit and stores them in
//! one transaction, then tells the hub how many writes it covered and whether it succeeded.
//!
//! The hub never waits for storage. Under load, batches grow and the per-message cost of a
//! commit shrinks; when idle, a lone message waits at most [`LINGER`] for company.
//!
//! The same thread applies retention (`history_days`): at start and every [`PRUNE_EVERY`], it
//! deletes what is older, [`PRUNE_BATCH`] messages at a time with commits in between, so that
//! a first prune of a big database never holds commits back for long.

use crate::metrics::Metrics;
use crate::store::{Store, Write};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use tokio::sync::{mpsc, oneshot};

/// Largest batch committed in one transaction.
const MAX_BATCH: usize = 4096;
/// How long the thread keeps collecting after the first write of a batch. Bigger batches cost
/// far less per message (one transaction, each index page written once); the sender's ack waits
/// at most this much longer, delivery to the room not at all.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// Most messages one retention batch deletes (one short write transaction).
const PRUNE_BATCH: u32 = 1000;
/// How often retention looks for messages that have grown too old.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// The result of one commit, covering `count` writes in the order they were queued.
#[derive(Debug)]
pub(crate) struct Committed {
    pub count: usize,
    /// On success, when the store numbers messages (a cluster): the id each write got, one
    /// per write (`None` for writes that take none); empty otherwise.
    pub result: Result<Vec<Option<u64>>, String>,
}

/// Commits `batch`, numbering its messages when `numbered` (see [`Store::commit_numbered`]).
fn commit(store: &dyn Store, batch: &[Write], numbered: bool) -> Result<Vec<Option<u64>>, String> {
    if !numbered {
        return store.commit(batch).map(|()| Vec::new()).map_err(|e| e.to_string());
    }
    let ids = store.commit_numbered(batch).map_err(|e| e.to_string())?;
    let mut ids = ids.into_iter();
    let per_write = batch
        .iter()
        .map(|w| match w {
            Write::Message(_) | Write::CountOnly(_) | Write::Private(_) => ids.next(),
            _ => None,
        })
        .collect();
    Ok(per_write)
}

/// What the commit thread is asked to do.
// A write goes by value, as it did before probes existed: boxing it would cost an allocation
// per stored message to save bytes in the rare probe.
#[allow(clippy::large_enum_variant)]
enum Job {
    /// Store this with the next group commit.
    Write(Write),
    /// Write to the store after the writes queued before, and answer whether it worked
    /// (readiness checks: `Store::probe`).
    Probe(oneshot::Sender<Result<(), String>>),
}

/// Handle held by the hub.
pub(crate) struct Persister {
    tx: Option<std_mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Persister {
    /// Starts the commit thread; outcomes arrive on `done`, and each commit's duration goes
    /// in `metrics`. With `keep` (retention), messages older than that are deleted at start and
    /// every [`PRUNE_EVERY`]. With `numbered` (a cluster), the store gives messages their ids.
    pub fn start(
        store: Arc<dyn Store>,
        done: mpsc::UnboundedSender<Committed>,
        keep: Option<std::time::Duration>,
        metrics: Arc<Metrics>,
        numbered: bool,
    ) -> std::io::Result<Self> {
        let (tx, rx) = std_mpsc::channel::<Job>();
        let thread = std::thread::Builder::new().name("natter-commit".into()).spawn(move || {
            let mut batch = Vec::new();
            let mut probes = Vec::new();
            let mut prune_at = keep.map(|_| std::time::Instant::now());
            loop {
                if let (Some(keep), Some(at)) = (keep, prune_at)
                    && at <= std::time::Instant::now()
                {
                    prune_at = Some(prune_once(&*store, keep));
                }
                let first = match prune_at {
                    Some(at) => {
                        match rx.recv_timeout(at.saturating_duration_since(std::time::Instant::now())) {
                            Ok(first) => first,
                            Err(std_mpsc::RecvTimeoutError::Timeout) => continue,
                            Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
                        }
                    }
                    None => match rx.recv() {
                        Ok(first) => first,
                        Err(_) => break,
                    },
                };
                match first {
                    Job::Write(w) => {
                        batch.push(w);
                        // Sleep through the linger, then take everything queued meanwhile:
                        // waiting in recv_timeout instead would wake this thread once per
                        // queued write, and each wakeup takes the core from the hub.
                        std::thread::sleep(LINGER);
                    }
                    Job::Probe(answer) => probes.push(answer),
                }
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(Job::Write(w)) => batch.push(w),
                        Ok(Job::Probe(answer)) => probes.push(answer),
                        Err(_) => break,
                    }
                }
                if !batch.is_empty() {
                    let started = std::time::Instant::now();
                    let result = commit(&*store, &batch, numbered);
                    metrics.commit_done(started.elapsed(), result.is_ok());
                    if let Err(e) = &result {
                        tracing::error!(error = %e, writes = batch.len(), "group commit failed");
                    }
                    let _ = done.send(Committed { count: batch.len(), result });
                    batch.clear();
                }
                if !probes.is_empty() {
                    // One write answers every probe that came in meanwhile.
                    let result = store.probe().map_err(|e| e.to_string());
                    metrics.probed(result.is_ok());
                    for answer in probes.drain(..) {
                        let _ = answer.send(result.clone());
                    }
                }
            }
            if let Err(e) = store.close() {
                tracing::error!(error = %e, "closing the store failed");
            }
        })?;
        Ok(Self { tx: Some(tx), thread: Some(thread) })
    }

    /// A persister that stores nothing; stands in after [`Persister::finish`].
    pub fn stopped() -> Self {
        Self { tx: None, thread: None }
    }

    /// Queues a write; it is committed with whatever else is queued.
    pub fn write(&self, write: Write) {
        if let Some(tx) = &self.tx {
            // The thread only stops after `finish`, so a send cannot fail before that.
            let _ = tx.send(Job::Write(write));
        }
    }

    /// Asks for a probe write behind the writes queued so far; `answer` gets its outcome
    /// (dropped unanswered once the store is closing, which the asker sees as the hub gone).
    pub fn probe(&self, answer: oneshot::Sender<Result<(), String>>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Job::Probe(answer));
        }
    }

    /// Commits everything queued, closes the store and waits for the thread to end.
    pub fn finish(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One retention batch: deletes up to [`PRUNE_BATCH`] messages older than `keep`, and says
/// when the next batch is due (at once, after whatever commits are waiting, while there is
/// more to delete).
fn prune_once(store: &dyn Store, keep: std::time::Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    let before_ts = crate::time::now_ms().saturating_sub(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX));
    match store.prune(before_ts, PRUNE_BATCH) {
        Ok(deleted) if deleted >= PRUNE_BATCH => {
            tracing::debug!(deleted, "deleted messages past the retention time; more to go");
            now
        }
        Ok(deleted) => {
            if deleted > 0 {
                tracing::info!(deleted, "deleted messages past the retention time");
            }
            now + PRUNE_EVERY
        }
        Err(e) => {
            tracing::error!(error = %e, "deleting messages past the retention time failed");
            now + PRUNE_EVERY
        }
    }
}
