//! Delivery: how events reach sessions. Every event of a batch of commands goes into one
//! shared log; each session stages the ranges of it that concern it, and at the end of the
//! batch gets them in one push to its outbox (one lock and at most one wakeup per session).

use super::state::{HeldItem, Session};
use super::{Hub, SessionId};
use crate::event::{Delivery, Event, deliver};
use crate::limits::MAX_HELD;
use crate::outbox::Piece;
use crate::refusal::Refusal;
use crate::request::Req;
use rustc_hash::FxHashSet;
use std::sync::Arc;
use thin_vec::ThinVec;

/// Reason given to a session whose outbox overflowed.
pub(super) const TOO_SLOW: &str =
    "too slow: your connection fell too far behind; reconnect to catch up from history";

/// A batch log longer than this is shared only with sessions that get at least
/// 1/[`SPARSE_SHARE`] of it; the others get a copy of their part. So what a slow reader's
/// outbox keeps alive stays within a small multiple of what it holds.
const SHARED_LOG_MIN: usize = 64;
const SPARSE_SHARE: usize = 8;

/// A session's staged list is kept after a batch that needed more ranges than this, until a
/// batch in which the session receives nothing: a busy one does not regrow it for every
/// batch, an idle one holds none (a join storm would otherwise leave every joiner a list of
/// the dozens of join notices it was staged).
const KEEP_STAGED_AFTER: usize = 4;

/// Stages log entry `entry` for session `id`: it extends the session's last range when that
/// ends right there (a member receiving a room's every message holds one range per batch).
#[inline]
pub(super) fn stage(dirty: &mut Vec<SessionId>, id: SessionId, s: &mut Session, entry: u32) {
    if s.mirror {
        // Another node's session: its own node delivers to it.
        return;
    }
    match s.staged.last_mut() {
        Some(last) if last.end == entry => last.end += 1,
        Some(_) => s.staged.push(entry..entry + 1),
        None => {
            dirty.push(id);
            s.staged.push(entry..entry + 1);
        }
    }
}

impl Hub {
    /// Sends an event to one session (at the end of the current batch).
    pub(super) fn reply(&mut self, id: SessionId, event: Event) {
        let entry = self.log_entry(deliver(event));
        if let Some(s) = self.sessions.get_mut(&id) {
            stage(&mut self.dirty, id, s, entry);
        }
    }

    /// Appends a delivery to the log of the current batch; sessions are then given its index.
    pub(super) fn log_entry(&mut self, delivery: Delivery) -> u32 {
        let entry = u32::try_from(self.log.len()).expect("a batch logs far fewer than 4 billion events");
        let sum = self.log_sums.last().copied().unwrap_or(0) + u64::from(delivery.weight);
        self.log_sums.push(sum);
        self.log.push(delivery);
        entry
    }

    /// Hands every session its staged part of this batch's log: one lock and at most one
    /// wakeup per session per batch. Sessions whose outbox is full are disconnected.
    pub(super) fn flush(&mut self) {
        // Published before anything is handed out: whoever sees a message of this batch then
        // finds it counted.
        self.metrics.publish(&self.tally, self.rooms.len());
        for id in std::mem::take(&mut self.staged_kept) {
            if let Some(s) = self.sessions.get_mut(&id)
                && s.staged.is_empty()
            {
                s.staged = ThinVec::new();
            }
        }
        while !self.dirty.is_empty() {
            let log: Arc<[Delivery]> = std::mem::take(&mut self.log).into();
            let sums = std::mem::replace(&mut self.log_sums, vec![0]);
            let weight = |r: &std::ops::Range<u32>| sums[r.end as usize] - sums[r.start as usize];
            let mut pieces = std::mem::take(&mut self.pieces);
            let mut too_slow = Vec::new();
            for id in std::mem::take(&mut self.dirty) {
                let Some(s) = self.sessions.get_mut(&id) else { continue };
                let share: usize = s.staged.iter().map(|r| r.len()).sum();
                if share == 0 {
                    continue;
                }
                if let Some(held) = s.rare.as_mut().and_then(|r| r.held.as_mut()) {
                    // Behind a history page being read: wait there, in order.
                    for r in s.staged.drain(..) {
                        let deliveries = log[r.start as usize..r.end as usize].iter().cloned();
                        held.queue.extend(deliveries.map(HeldItem::Ready));
                    }
                    self.staged_kept.push(id);
                    if held.queue.len() > MAX_HELD {
                        too_slow.push(id);
                    }
                    continue;
                }
                if log.len() > SHARED_LOG_MIN && share * SPARSE_SHARE < log.len() {
                    // A piece keeps its whole log alive until written: a slow reader that gets
                    // a little of many busy batches would hold far more than its own outbox.
                    // A small share gets a log of its own instead.
                    let bytes = s.staged.iter().map(weight).sum();
                    let own: Arc<[Delivery]> = s
                        .staged
                        .drain(..)
                        .flat_map(|r| log[r.start as usize..r.end as usize].iter().cloned())
                        .collect();
                    pieces.push(Piece::weighed(own, 0..share as u32, bytes));
                } else {
                    pieces.extend(s.staged.drain(..).map(|range| {
                        let bytes = weight(&range);
                        Piece::weighed(log.clone(), range, bytes)
                    }));
                }
                if pieces.len() <= KEEP_STAGED_AFTER {
                    s.staged = ThinVec::new();
                } else {
                    self.staged_kept.push(id);
                }
                if s.outbox.push_pieces(&mut pieces).is_err() {
                    pieces.clear();
                    too_slow.push(id);
                }
            }
            self.pieces = pieces;
            for id in too_slow {
                if let Some(s) = self.sessions.get(&id) {
                    tracing::info!(nick = %s.nick, "disconnected: too slow");
                }
                self.metrics.disconnected(crate::metrics::Disconnect::SlowReader);
                self.remove_session(id, TOO_SLOW, true);
            }
        }
        self.log.clear();
        self.log_sums.truncate(1);
    }

    /// Refuses a request of `id`.
    pub(super) fn refuse(&mut self, id: SessionId, req: Req, refusal: Refusal) {
        self.reply(id, Event::Error { req, refusal });
    }

    /// Delivers one shared event to many sessions.
    pub(super) fn broadcast(&mut self, recipients: impl IntoIterator<Item = SessionId>, event: Event) {
        let entry = self.log_entry(deliver(event));
        for sid in recipients {
            if let Some(s) = self.sessions.get_mut(&sid) {
                stage(&mut self.dirty, sid, s, entry);
            }
        }
    }

    /// Sessions sharing at least one room with `id`, plus `id` itself.
    pub(super) fn neighbours(&self, id: SessionId) -> Vec<SessionId> {
        let mut seen = FxHashSet::default();
        seen.insert(id);
        if let Some(s) = self.sessions.get(&id) {
            for key in &s.rooms {
                if let Some(room) = self.rooms.get(&**key)
                    && room.members().len() <= self.config.presence_limit
                {
                    seen.extend(room.members().iter().copied());
                }
            }
        }
        seen.into_iter().collect()
    }
}
