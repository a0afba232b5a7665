//! A session's bounded outbox: the hub pushes without ever waiting, the session's writer takes
//! everything queued in one go and writes it with one system call.
//!
//! Never blocking the pusher is what keeps one slow reader from slowing everyone else: when the
//! queue is full the push fails, and the hub disconnects that session with a reason.
//!
//! What is queued are [`Piece`]s: ranges of a log of deliveries shared by many sessions (the
//! hub's log of one batch of commands). A message fanned out to a thousand members is one
//! entry in one log, and each member's outbox holds a range covering it and its neighbours: no
//! reference count is touched per recipient, neither when queuing nor when writing.

use crate::event::{Delivery, Event, deliver};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

/// Why an outbox was closed; the writer tells the peer before hanging up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason(pub Arc<str>);

/// A contiguous run of deliveries for one session, in a log shared with other sessions.
#[derive(Debug, Clone)]
pub struct Piece {
    log: Arc<[Delivery]>,
    start: u32,
    end: u32,
    /// Sum of the deliveries' [`Envelope::weight`](crate::event::Envelope::weight).
    weight: u32,
}

impl Piece {
    /// The deliveries `range` of `log`.
    ///
    /// # Panics
    /// When `range` is not within `log`.
    pub fn new(log: Arc<[Delivery]>, range: Range<u32>) -> Self {
        assert!(range.start <= range.end && range.end as usize <= log.len(), "piece out of its log");
        let weight = log[range.start as usize..range.end as usize].iter().map(|d| u64::from(d.weight)).sum();
        Self::weighed(log, range, weight)
    }

    /// The deliveries `range` of `log`, whose weights add up to `weight` (the hub keeps running
    /// sums of its logs, so that it never walks a range per recipient).
    ///
    /// # Panics
    /// When `range` is not within `log`.
    pub fn weighed(log: Arc<[Delivery]>, range: Range<u32>, weight: u64) -> Self {
        assert!(range.start <= range.end && range.end as usize <= log.len(), "piece out of its log");
        let weight = u32::try_from(weight).unwrap_or(u32::MAX);
        Self { log, start: range.start, end: range.end, weight }
    }

    /// A piece of one delivery, for events sent outside the hub's batches.
    pub fn one(delivery: Delivery) -> Self {
        let weight = delivery.weight;
        Self { log: Arc::from([delivery]), start: 0, end: 1, weight }
    }

    /// About how many bytes its deliveries take on a wire.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The deliveries, in order.
    pub fn deliveries(&self) -> &[Delivery] {
        &self.log[self.start as usize..self.end as usize]
    }

    /// How many deliveries this piece keeps alive (its whole log) until it is dropped.
    pub fn pinned(&self) -> usize {
        self.log.len()
    }

    /// Number of deliveries.
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// True when it holds no delivery.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// Told once when a parked outbox ([`Outbox::park`]) receives a delivery or is closed: the
/// server parks connections that have nothing to do, without a task to wake, and this is how
/// it learns that one has something to do again.
pub trait Bell: Send + Sync {
    /// Rings for the outbox parked with `token`. Called outside the outbox's lock, from the
    /// pusher's thread (the hub's): it must not block.
    fn ring(&self, token: u64);
}

#[derive(Default)]
struct State {
    queue: Vec<Piece>,
    /// Deliveries in `queue`, which is what the capacity counts.
    queued: usize,
    /// Their weight, which is what the byte capacity counts.
    queued_bytes: u64,
    closed: Option<CloseReason>,
    /// Who is told when the queue stops being empty or the outbox closes.
    waiter: Waiter,
}

/// Who an outbox tells that it has something: kept under the outbox's own lock, beside the
/// queue, rather than in a `Notify` of its own (one writer waits on an outbox, and every
/// connection has one: 32 bytes less each).
#[derive(Default)]
enum Waiter {
    /// Nobody waits: the writer is busy and looks at the queue before it waits again.
    #[default]
    Nobody,
    /// The writer's task, waiting in [`Outbox::next_batch`].
    Writer(Waker),
    /// The outbox is parked ([`Outbox::park`]): rung (and cleared) instead of waking a writer.
    Bell(Arc<dyn Bell>, u64),
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("queued", &self.queued)
            .field("queued_bytes", &self.queued_bytes)
            .field("closed", &self.closed)
            .field(
                "parked",
                &match &self.waiter {
                    Waiter::Bell(_, token) => Some(*token),
                    _ => None,
                },
            )
            .finish()
    }
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    capacity: usize,
    byte_capacity: u64,
}

/// The sending side is held by the hub; the connection's writer holds a clone and drains it.
#[derive(Debug, Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

/// The push failed because the session is not keeping up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// What [`Outbox::next_batch`] found.
#[derive(Debug, PartialEq)]
pub enum NextBatch {
    /// Pieces were moved into the caller's buffer.
    Ready,
    /// The outbox was closed and is empty: say goodbye with this reason and hang up.
    Closed(CloseReason),
}

impl Outbox {
    /// Creates an outbox whose backlog may reach `capacity` undelivered events (plus one batch
    /// pushed when it was empty), whatever their size.
    pub fn new(capacity: usize) -> Self {
        Self::bounded(capacity, u64::MAX)
    }

    /// Creates an outbox whose backlog may reach `capacity` undelivered events and `bytes`
    /// bytes of them ([`Piece::weight`]), plus one batch pushed when it was empty: a reader
    /// that falls behind on big messages is cut as soon as one that falls behind on small ones.
    pub fn bounded(capacity: usize, bytes: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                capacity: capacity.max(1),
                byte_capacity: bytes.max(1),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue inconsistent (push/swap only).
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a delivery. Fails when the queue is full; silently drops when already closed.
    pub fn push(&self, delivery: Delivery) -> Result<(), Overflow> {
        self.push_pieces(&mut vec![Piece::one(delivery)])
    }

    /// Queues every piece of `staged` at once (one lock, one wakeup), leaving `staged` empty.
    /// Fails, queuing nothing, when they would add to a backlog beyond capacity.
    pub fn push_pieces(&self, staged: &mut Vec<Piece>) -> Result<(), Overflow> {
        let count: usize = staged.iter().map(Piece::len).sum();
        let bytes: u64 = staged.iter().map(|p| u64::from(p.weight)).sum();
        let mut state = self.state();
        if state.closed.is_some() {
            staged.clear();
            return Ok(());
        }
        // A backlog beyond capacity means the reader is not keeping up. A batch that alone is
        // bigger (the acknowledgements of one group commit, say) arriving at an empty queue
        // does not: the reader took everything before it.
        if state.queued > 0
            && (state.queued + count > self.inner.capacity
                || state.queued_bytes + bytes > self.inner.byte_capacity)
        {
            return Err(Overflow);
        }
        let was_empty = state.queue.is_empty();
        // Appended, not swapped: each side keeps its own buffer, sized for its own traffic.
        state.queue.append(staged);
        state.queued += count;
        state.queued_bytes += bytes;
        if was_empty {
            self.wake(state);
        }
        Ok(())
    }

    /// Wakes the writer, or rings the bell of a parked outbox (once), after releasing `state`.
    fn wake(&self, mut state: std::sync::MutexGuard<'_, State>) {
        let waiter = std::mem::take(&mut state.waiter);
        drop(state);
        match waiter {
            Waiter::Nobody => {}
            Waiter::Writer(waker) => waker.wake(),
            Waiter::Bell(bell, token) => bell.ring(token),
        }
    }

    /// Parks the outbox: until [`Outbox::unpark`], the next delivery or the close rings `bell`
    /// with `token` (once) instead of waking a writer. Refused (false) when something is
    /// queued or the outbox is closed: the writer has work, and must not be parked.
    pub fn park(&self, bell: Arc<dyn Bell>, token: u64) -> bool {
        let mut state = self.state();
        if !state.queue.is_empty() || state.closed.is_some() {
            return false;
        }
        state.waiter = Waiter::Bell(bell, token);
        true
    }

    /// True while parked with a bell that has not rung.
    pub fn is_parked(&self) -> bool {
        matches!(self.state().waiter, Waiter::Bell(..))
    }

    /// Takes the bell back: a writer serves the outbox again.
    pub fn unpark(&self) {
        let mut state = self.state();
        if matches!(state.waiter, Waiter::Bell(..)) {
            state.waiter = Waiter::Nobody;
        }
    }

    /// Queues a one-off event for this session only.
    pub fn send(&self, event: Event) -> Result<(), Overflow> {
        self.push(deliver(event))
    }

    /// Closes the outbox. With `discard`, undelivered events are dropped (the peer is too slow
    /// for them anyway); otherwise the writer still drains them first.
    pub fn close(&self, reason: &str, discard: bool) {
        let mut state = self.state();
        if state.closed.is_none() {
            state.closed = Some(CloseReason(reason.into()));
        }
        if discard {
            state.queue = Vec::new();
            state.queued = 0;
            state.queued_bytes = 0;
        }
        self.wake(state);
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.state().closed.is_some()
    }

    /// Number of undelivered events.
    pub fn len(&self) -> usize {
        self.state().queued
    }

    /// Bytes of undelivered events ([`Piece::weight`]).
    pub fn queued_bytes(&self) -> u64 {
        self.state().queued_bytes
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until deliveries are queued or the outbox is closed, and moves all queued pieces
    /// into `buf` (which should be empty; its allocation is reused).
    pub async fn next_batch(&self, buf: &mut Vec<Piece>) -> NextBatch {
        std::future::poll_fn(|cx| {
            let mut state = self.state();
            if !state.queue.is_empty() {
                std::mem::swap(&mut state.queue, buf);
                state.queued = 0;
                state.queued_bytes = 0;
                return Poll::Ready(NextBatch::Ready);
            }
            if let Some(reason) = &state.closed {
                return Poll::Ready(NextBatch::Closed(reason.clone()));
            }
            // Registered under the lock the pusher takes: no push can slip in between.
            match &mut state.waiter {
                Waiter::Writer(waker) => waker.clone_from(cx.waker()),
                waiter => *waiter = Waiter::Writer(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// Takes whatever is queued without waiting; used by writers on their way out.
    pub fn try_batch(&self, buf: &mut Vec<Piece>) -> bool {
        let mut state = self.state();
        if state.queue.is_empty() {
            return false;
        }
        std::mem::swap(&mut state.queue, buf);
        state.queued = 0;
        state.queued_bytes = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn notice(text: &str) -> Event {
        Event::Notice { req: None, room: None, text: text.into() }
    }

    #[tokio::test]
    async fn batches_everything_queued_and_overflows_at_capacity() {
        let outbox = Outbox::new(3);
        for i in 0..3 {
            outbox.send(notice(&i.to_string())).unwrap();
        }
        assert_eq!(outbox.send(notice("x")), Err(Overflow));
        let mut buf = Vec::new();
        assert_eq!(outbox.next_batch(&mut buf).await, NextBatch::Ready);
        assert_eq!(buf.len(), 3);
        buf.clear();
        outbox.send(notice("again")).unwrap();
        assert_eq!(outbox.next_batch(&mut buf).await, NextBatch::Ready);
        assert_eq!(buf.len(), 1);
    }

    #[tokio::test]
    async fn wakes_a_waiting_writer_and_reports_close_after_draining() {
        let outbox = Outbox::new(8);
        let writer = outbox.clone();
        let task = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match writer.next_batch(&mut buf).await {
                    NextBatch::Ready => got += buf.len(),
                    NextBatch::Closed(reason) => return (got, reason),
                }
            }
        });
        tokio::task::yield_now().await;
        outbox.send(notice("a")).unwrap();
        outbox.send(notice("b")).unwrap();
        outbox.close("bye", false);
        let (got, reason) = task.await.unwrap();
        assert_eq!(got, 2);
        assert_eq!(reason, CloseReason("bye".into()));
    }

    /// A writer's wait dropped half-way (a `select!` that took another branch) loses nothing:
    /// what is pushed after is found by its next wait, and wakes it.
    #[tokio::test]
    async fn a_wait_given_up_loses_no_wakeup() {
        let outbox = Outbox::new(8);
        let mut buf = Vec::new();
        let given_up =
            tokio::time::timeout(std::time::Duration::from_millis(1), outbox.next_batch(&mut buf)).await;
        assert!(given_up.is_err());
        let writer = outbox.clone();
        let task = tokio::spawn(async move {
            let mut buf = Vec::new();
            (writer.next_batch(&mut buf).await, buf.len())
        });
        tokio::task::yield_now().await;
        outbox.send(notice("a")).unwrap();
        assert_eq!(task.await.unwrap(), (NextBatch::Ready, 1));
    }

    /// Every connection has an outbox, in one allocation: past 112 bytes (128 with the
    /// `Arc`'s counts) it takes jemalloc's next size class, 160.
    #[test]
    fn an_outbox_stays_in_its_allocator_size_class() {
        assert!(std::mem::size_of::<Inner>() <= 112, "{}", std::mem::size_of::<Inner>());
    }

    #[tokio::test]
    async fn push_pieces_is_all_or_nothing_and_counts_deliveries() {
        let outbox = Outbox::new(3);
        let log: Arc<[Delivery]> = ["a", "b", "c", "d"].map(|t| deliver(notice(t))).into();
        let mut staged = vec![Piece::new(log.clone(), 0..2)];
        outbox.push_pieces(&mut staged).unwrap();
        assert!(staged.is_empty());
        let mut more = vec![Piece::new(log.clone(), 2..3), Piece::new(log.clone(), 3..4)];
        assert_eq!(outbox.push_pieces(&mut more), Err(Overflow));
        assert_eq!((more.len(), outbox.len()), (2, 2));
        let mut buf = Vec::new();
        assert_eq!(outbox.next_batch(&mut buf).await, NextBatch::Ready);
        let texts: Vec<_> = buf.iter().flat_map(Piece::deliveries).map(|d| d.event.clone()).collect();
        assert_eq!(texts, [notice("a"), notice("b")]);
        assert!(outbox.is_empty());
    }

    #[tokio::test]
    async fn a_big_batch_into_an_empty_queue_is_not_a_slow_reader() {
        let outbox = Outbox::new(2);
        let log: Arc<[Delivery]> = ["a", "b", "c", "d"].map(|t| deliver(notice(t))).into();
        outbox.push_pieces(&mut vec![Piece::new(log.clone(), 0..3)]).unwrap();
        // Now there is a backlog of 3 > 2: anything more overflows.
        assert_eq!(outbox.push_pieces(&mut vec![Piece::new(log, 3..4)]), Err(Overflow));
        assert_eq!(outbox.send(notice("e")), Err(Overflow));
        let mut buf = Vec::new();
        assert_eq!(outbox.next_batch(&mut buf).await, NextBatch::Ready);
        assert_eq!(buf.iter().map(Piece::len).sum::<usize>(), 3);
        outbox.send(notice("f")).unwrap();
    }

    #[tokio::test]
    async fn a_backlog_of_big_events_overflows_by_bytes_before_by_count() {
        let big = |i: usize| Event::Notice {
            req: None,
            room: None,
            text: format!("{i}{}", "x".repeat(10_000)).into(),
        };
        let outbox = Outbox::bounded(4096, 32 * 1024);
        outbox.send(big(0)).unwrap();
        outbox.send(big(1)).unwrap();
        outbox.send(big(2)).unwrap();
        assert_eq!(outbox.send(big(3)), Err(Overflow), "four 10 KB events exceed 32 KiB");
        assert_eq!(outbox.len(), 3);
        assert!(outbox.queued_bytes() > 30_000);
        let mut buf = Vec::new();
        assert_eq!(outbox.next_batch(&mut buf).await, NextBatch::Ready);
        assert_eq!(outbox.queued_bytes(), 0);
        // Small events still fit by the thousand.
        for i in 0..100 {
            outbox.send(notice(&i.to_string())).unwrap();
        }
    }

    #[test]
    fn a_piece_weighs_what_its_deliveries_weigh() {
        let log: Arc<[Delivery]> = ["a", "bb", "ccc"].map(|t| deliver(notice(t))).into();
        let piece = Piece::new(log.clone(), 1..3);
        assert_eq!(piece.weight(), log[1].weight + log[2].weight);
        assert_eq!(Piece::one(deliver(notice("bb"))).weight(), log[1].weight);
    }

    #[test]
    #[should_panic(expected = "piece out of its log")]
    fn a_piece_must_lie_within_its_log() {
        let log: Arc<[Delivery]> = [deliver(notice("a"))].into();
        let _ = Piece::new(log, 0..2);
    }

    /// Counts its rings, by token.
    #[derive(Default)]
    struct Rings(Mutex<Vec<u64>>);

    impl Bell for Rings {
        fn ring(&self, token: u64) {
            self.0.lock().unwrap().push(token);
        }
    }

    #[tokio::test]
    async fn a_parked_outbox_rings_once_for_a_delivery_and_keeps_it() {
        let outbox = Outbox::new(8);
        let rings = Arc::new(Rings::default());
        assert!(outbox.park(rings.clone(), 7));
        outbox.send(notice("a")).unwrap();
        outbox.send(notice("b")).unwrap();
        assert_eq!(*rings.0.lock().unwrap(), [7], "rung once, for the first");
        outbox.unpark();
        let mut buf = Vec::new();
        assert_eq!(outbox.next_batch(&mut buf).await, NextBatch::Ready);
        assert_eq!(buf.iter().map(Piece::len).sum::<usize>(), 2);
    }

    #[tokio::test]
    async fn a_busy_or_closed_outbox_is_not_parked_and_closing_rings() {
        let rings = Arc::new(Rings::default());
        let busy = Outbox::new(8);
        busy.send(notice("a")).unwrap();
        assert!(!busy.park(rings.clone(), 1), "a writer with work is not parked");
        let closed = Outbox::new(8);
        closed.close("bye", false);
        assert!(!closed.park(rings.clone(), 2));
        let parked = Outbox::new(8);
        assert!(parked.park(rings.clone(), 3));
        parked.close("server shutting down", false);
        assert_eq!(*rings.0.lock().unwrap(), [3]);
        // Unparked, it wakes its writer again rather than ringing.
        let back = Outbox::new(8);
        assert!(back.park(rings.clone(), 4));
        back.unpark();
        back.send(notice("x")).unwrap();
        assert_eq!(*rings.0.lock().unwrap(), [3]);
        let mut buf = Vec::new();
        assert_eq!(back.next_batch(&mut buf).await, NextBatch::Ready);
    }

    #[tokio::test]
    async fn discarding_close_drops_the_backlog() {
        let outbox = Outbox::new(8);
        outbox.send(notice("a")).unwrap();
        outbox.close("too slow", true);
        let mut buf = Vec::new();
        assert!(matches!(outbox.next_batch(&mut buf).await, NextBatch::Closed(_)));
        assert!(buf.is_empty());
        assert_eq!(outbox.send(notice("late")), Ok(()));
        assert!(outbox.is_empty());
    }
}
