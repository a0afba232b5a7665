//! Group commit: one thread takes every write queued since its last commit and stores them in
//! one transaction, then tells the hub how many writes it covered and whether it succeeded.
//!
//! The hub never waits for storage. Under load, batches grow and the per-message cost of a
//! commit shrinks; when idle, a lone message waits at most [`LINGER`] for company.

use crate::store::{Store, Write};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use tokio::sync::mpsc;

/// Largest batch committed in one transaction.
const MAX_BATCH: usize = 4096;
/// How long the thread keeps collecting after the first write of a batch. Bigger batches cost
/// far less per message (one transaction, each index page written once); the sender's ack waits
/// at most this much longer, delivery to the room not at all.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// The result of one commit, covering `count` writes in the order they were queued.
#[derive(Debug)]
pub(crate) struct Committed {
    pub count: usize,
    pub result: Result<(), String>,
}

/// Handle held by the hub.
pub(crate) struct Persister {
    tx: Option<std_mpsc::Sender<Write>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Persister {
    /// Starts the commit thread; outcomes arrive on `done`.
    pub fn start(store: Arc<dyn Store>, done: mpsc::UnboundedSender<Committed>) -> std::io::Result<Self> {
        let (tx, rx) = std_mpsc::channel::<Write>();
        let thread = std::thread::Builder::new().name("natter-commit".into()).spawn(move || {
            let mut batch = Vec::new();
            while let Ok(first) = rx.recv() {
                batch.push(first);
                // Sleep through the linger, then take everything queued meanwhile: waiting in
                // recv_timeout instead would wake this thread once per queued write, and each
                // wakeup takes the core from the hub.
                std::thread::sleep(LINGER);
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(w) => batch.push(w),
                        Err(_) => break,
                    }
                }
                let result = store.commit(&batch).map_err(|e| e.to_string());
                if let Err(e) = &result {
                    tracing::error!(error = %e, writes = batch.len(), "group commit failed");
                }
                let _ = done.send(Committed { count: batch.len(), result });
                batch.clear();
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
            let _ = tx.send(write);
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
