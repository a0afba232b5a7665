//! The connection loop shared by every TCP front door: one task per connection reads lines,
//! hands them to the door, and writes whatever the hub queued in the session's outbox, all of
//! it in one system call per wakeup.
//!
//! One task (not a reader and a writer) and no buffer held while idle keep an idle connection
//! small; a read borrows a stack buffer only for the duration of one non-blocking read.

use crate::door::{Door, Flow, Pace, SessionCtx};
use crate::transport::Transport;
use crate::write_batch::{Written, write_batch};
use natter_core::metrics::Disconnect;
use natter_core::{Command, Event, NextBatch, Piece};
use natter_proto::line::{LineBuffer, LineEvent};
use std::future::poll_fn;
use std::io;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, sleep_until, timeout};

/// A line left unterminated this long counts as complete (clients that send one message per
/// write and no newline).
pub const PARTIAL_LINE_PAUSE: Duration = Duration::from_millis(100);
/// The delivery buffer is kept only after batches bigger than this (pieces), and only while
/// the next batch is already waiting: an idle connection holds none (not even after the
/// burst of its login), a busy one does not regrow it for every batch.
const KEEP_BATCH_AFTER: usize = 4;
/// How often a session not yet logged in looks whether the server is stopping (logged-in
/// sessions are told by the hub).
pub const STOP_CHECK: Duration = Duration::from_millis(250);
/// A peer that accepts no bytes for this long is disconnected.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How much buffer room one read asks for: enough for typical bursts of lines, small enough
/// that a connection reading a little at a time does not hold much.
const READ_ROOM: usize = 4096;

/// Reads what the stream has (without waiting) into `lines`, straight into its buffer.
/// Returns 0 at end of stream.
pub(crate) fn read_available<S: Transport>(stream: &mut S, lines: &mut LineBuffer) -> io::Result<usize> {
    lines.append_with(READ_ROOM, |buf| stream.try_read_into(buf))
}

/// Runs a session until it ends. `lines` may already hold the bytes used to pick the door;
/// `deadline` is when the session must be logged in (counted from the connection's start).
///
/// Memory per idle connection is dominated by this future, so it holds one timer (the
/// earliest of the registration deadline, the partial-line pause and the door's tick) and
/// boxes the rarely taken paths (handling input, ending the session) instead of embedding
/// their state.
pub(crate) async fn run<D: Door, S: Transport>(
    mut stream: S,
    mut lines: LineBuffer,
    mut door: D,
    mut ctx: SessionCtx,
    deadline: Instant,
) {
    let mut batch: Vec<Piece> = Vec::new();
    // Set once the session is ending by a decision already counted (the door's, the hub's):
    // a peer that then hangs up is not counted again.
    let mut closing = false;
    // Why the peer is gone, when it is (it hung up, or stopped taking bytes).
    let mut peer_gone: Option<Disconnect>;
    // When an unterminated line counts as complete, and when the door's tick runs next.
    let mut partial_due: Option<Instant> = None;
    let mut tick_due = D::TICK.map(|every| Instant::now() + every);
    let timer = sleep_until(deadline);
    tokio::pin!(timer);

    // One boxed step for the door's start and the bytes already read: each await kept in this
    // future adds its state to every idle connection.
    if let Flow::Close(reason) = Box::pin(begin(&mut lines, &mut door, &mut ctx)).await {
        closing = true;
        Box::pin(ctx.end(reason)).await;
    }
    if lines.is_empty() {
        // The bytes used to pick the door were consumed: do not keep their buffer.
        lines.shrink_when_idle();
    } else if D::FLUSH_PARTIAL && !S::MESSAGES {
        partial_due = Some(Instant::now() + PARTIAL_LINE_PAUSE);
    }
    loop {
        let registering = ctx.session.is_none() && !closing;
        let waiting = ctx.pace == Pace::Waiting && !closing;
        let wake = [
            registering.then(|| deadline.min(Instant::now() + STOP_CHECK)),
            partial_due.filter(|_| !closing && !waiting),
            tick_due.filter(|_| !closing),
            waiting.then(|| ctx.budget.due()),
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(at) = wake
            && timer.deadline() != at
        {
            timer.as_mut().reset(at);
        }
        tokio::select! {
            items = ctx.outbox.next_batch(&mut batch) => {
                // Scoped so that the goodbye event is gone before the await below: whatever
                // lives across an await is stored in every connection's future.
                if let Some(pace) = door.paced() {
                    // A client that needs its answers one per read (rare): boxed, off the path
                    // of every other connection.
                    let closed = matches!(items, NextBatch::Closed(_));
                    let bye = match items {
                        NextBatch::Ready => None,
                        NextBatch::Closed(reason) => Some(Event::Bye { reason: reason.0 }),
                    };
                    peer_gone = Box::pin(write_paced(&mut stream, &mut door, &mut batch, bye, pace)).await;
                    closing |= closed;
                    if closed || peer_gone.is_some() {
                        break;
                    }
                    continue;
                }
                let (written, closed) = {
                    let reason = match items {
                        NextBatch::Ready => None,
                        NextBatch::Closed(reason) => Some(reason.0),
                    };
                    let bye = reason.clone().map(|reason| Event::Bye { reason });
                    let taken = batch.len();
                    let written = write_batch(&mut stream, &mut door, &mut batch, bye.as_ref());
                    if batch.is_empty() && (taken <= KEEP_BATCH_AFTER || ctx.outbox.is_empty()) {
                        batch = Vec::new();
                    }
                    (written, reason)
                };
                // Usually the socket takes everything at once; waiting for a full send buffer
                // to drain is the rare case, boxed to keep this future small.
                let is_closed = closed.is_some();
                peer_gone = match written {
                    Written::All => None,
                    Written::Rest(rest) => Box::pin(write_backlog(&mut stream, &mut door, &mut batch, rest, closed)).await,
                    Written::PeerGone => Some(Disconnect::ConnectionLost),
                };
                closing |= is_closed;
                if is_closed || peer_gone.is_some() {
                    break;
                }
            }
            // poll_read_ready rather than readable(): the future is a reference, not 150 bytes
            // of readiness state kept in every idle connection.
            // A session over its command budget is not read until it is within it again:
            // what it sends waits in the socket, and its peer's writes stall.
            ready = poll_fn(|cx| Transport::poll_read_ready(&stream, cx)), if !closing && !waiting => {
                if ready.is_err() {
                    peer_gone = Some(Disconnect::ConnectionLost);
                    break;
                }
                match read_available(&mut stream, &mut lines) {
                    Ok(0) => { peer_gone = Some(Disconnect::ConnectionLost); break; }
                    Ok(_) => {
                        if let Flow::Close(reason) = Box::pin(drain_lines(&mut lines, &mut door, &mut ctx)).await {
                            closing = true;
                            Box::pin(ctx.end(reason)).await;
                        }
                        if lines.is_empty() {
                            lines.shrink_when_idle();
                            partial_due = None;
                        } else if D::FLUSH_PARTIAL && !S::MESSAGES {
                            // The pause counts from the last bytes received.
                            partial_due = Some(Instant::now() + PARTIAL_LINE_PAUSE);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => { peer_gone = Some(Disconnect::ConnectionLost); break; }
                }
            }
            () = &mut timer, if wake.is_some() => {
                let now = Instant::now();
                // A partial line's pause counts from the last bytes received. A task that comes
                // back late may find the timer and the socket ready together, with the rest of
                // the line waiting: it is read first (next turn), not cut off at the pause.
                if partial_due.is_some_and(|due| now >= due) && !waiting && stream.bytes_waiting() {
                    partial_due = Some(now + PARTIAL_LINE_PAUSE);
                    continue;
                }
                let timers = Timers { now, registering, deadline, partial_due: &mut partial_due, tick_due: &mut tick_due };
                if let Some(reason) = Box::pin(on_timer(timers, &mut lines, &mut door, &mut ctx)).await {
                    closing = true;
                    Box::pin(ctx.end(reason)).await;
                }
            }
        }
    }
    // The session's connection counts are given back before the peer or the rooms see the
    // end: whoever reconnects on seeing it finds its place free, and a scrape after it finds
    // the connection gone.
    ctx.release_counts();
    if let Some(why) = peer_gone {
        if !closing {
            ctx.hub.metrics().disconnected(why);
        }
        if let Some(session) = ctx.session {
            let quit = Command::Quit { reason: Some("connection lost".into()) };
            let _ = Box::pin(ctx.hub.command(session, quit)).await;
        }
    }
    // Bounded: a TLS shutdown first sends what rustls still holds, and a peer that reads
    // nothing would hold the task forever. Boxed, so that its timer is not in every idle
    // connection's future.
    let _ = Box::pin(timeout(WRITE_TIMEOUT, stream.shutdown())).await;
}

/// What the connection's one timer stands for when it fires.
struct Timers<'a> {
    now: Instant,
    registering: bool,
    deadline: Instant,
    partial_due: &'a mut Option<Instant>,
    tick_due: &'a mut Option<Instant>,
}

/// Does whatever the timer was set for; returns a reason when the session must end.
async fn on_timer<D: Door>(
    timers: Timers<'_>,
    lines: &mut LineBuffer,
    door: &mut D,
    ctx: &mut SessionCtx,
) -> Option<String> {
    let Timers { now, registering, deadline, partial_due, tick_due } = timers;
    if ctx.pace == Pace::Waiting && ctx.budget.wait_left().is_zero() {
        // Paid for: the lines that waited go on (until the budget runs out again).
        ctx.pace = Pace::Warned;
        if let Flow::Close(reason) = drain_lines(lines, door, ctx).await {
            return Some(reason);
        }
        if lines.is_empty() {
            lines.shrink_when_idle();
        }
    }
    if registering && ctx.hub.is_stopped() {
        ctx.hub.metrics().disconnected(Disconnect::Shutdown);
        return Some("server shutting down".into());
    }
    if registering && ctx.evicted() {
        tracing::info!(peer = %ctx.peer, "disconnected: not logged in while newer connections waited");
        ctx.hub.metrics().disconnected(Disconnect::Evicted);
        return Some(crate::peers::EVICTED.into());
    }
    if registering && now >= deadline {
        let secs = ctx.settings.register_timeout.as_secs();
        tracing::info!(peer = %ctx.peer, "disconnected: registration timeout");
        ctx.hub.metrics().disconnected(Disconnect::RegistrationTimeout);
        return Some(format!("registration timeout: log in within {secs} seconds of connecting"));
    }
    if partial_due.is_some_and(|due| now >= due) && ctx.pace != Pace::Waiting {
        *partial_due = None;
        let flow = match lines.take_partial() {
            Some(line) => door.on_line(line, ctx).await,
            None => Flow::Continue,
        };
        lines.shrink_when_idle();
        if let Flow::Close(reason) = flow {
            return Some(reason);
        }
    }
    if let (Some(due), Some(every)) = (*tick_due, D::TICK)
        && now >= due
    {
        *tick_due = Some(now + every);
        if let Flow::Close(reason) = door.on_tick(ctx) {
            return Some(reason);
        }
    }
    None
}

/// The start of a session: the door's own first step (a help-desk guest logs in at once),
/// then the lines already read while the door was being picked.
async fn begin<D: Door>(lines: &mut LineBuffer, door: &mut D, ctx: &mut SessionCtx) -> Flow {
    match door.on_connect(ctx).await {
        Flow::Continue => drain_lines(lines, door, ctx).await,
        close => close,
    }
}

/// Hands the complete lines read so far to the door, stopping early when the session runs
/// over its command budget (the rest wait in `lines`).
async fn drain_lines<D: Door>(lines: &mut LineBuffer, door: &mut D, ctx: &mut SessionCtx) -> Flow {
    while ctx.pace != Pace::Waiting
        && let Some(event) = lines.next_line()
    {
        let flow = match event {
            LineEvent::Line(line) => door.on_line(line, ctx).await,
            LineEvent::TooLong(max) => door.on_too_long(ctx, max),
        };
        if flow != Flow::Continue {
            return flow;
        }
    }
    Flow::Continue
}

/// A slow reader: waits until the peer took `rest`, then renders and writes the pieces left
/// in `batch` a chunk at a time, as the socket drains (and the goodbye for `bye`, last).
/// Says why the peer is gone when it did not take a chunk within [`WRITE_TIMEOUT`] or hung up.
async fn write_backlog<D: Door, S: Transport>(
    stream: &mut S,
    door: &mut D,
    batch: &mut Vec<Piece>,
    mut rest: Vec<u8>,
    bye: Option<natter_core::Name>,
) -> Option<Disconnect> {
    let bye = bye.map(|reason| Event::Bye { reason });
    loop {
        if let Some(why) = write_encoded(stream, &rest).await {
            return Some(why);
        }
        if batch.is_empty() {
            return None;
        }
        rest = match write_batch(stream, door, batch, bye.as_ref()) {
            Written::All if batch.is_empty() => return None,
            Written::All => Vec::new(),
            Written::Rest(more) => more,
            Written::PeerGone => return Some(Disconnect::ConnectionLost),
        };
    }
}

/// Waits until the peer took `bytes`, already in the transport's encoding ([`Transport::encode`]:
/// a batch's rest, a paced line), and whatever the transport still holds (TLS records), at
/// most [`WRITE_TIMEOUT`]; says why when it did not: it stopped reading
/// ([`Disconnect::SlowReader`]) or hung up.
async fn write_encoded<S: Transport>(stream: &mut S, bytes: &[u8]) -> Option<Disconnect> {
    let all = async {
        let mut written = 0;
        while written < bytes.len() {
            match poll_fn(|cx| stream.poll_write_encoded(cx, &bytes[written..])).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => written += n,
            }
        }
        stream.flush().await
    };
    stalled_or_gone(timeout(WRITE_TIMEOUT, all).await)
}

/// What a bounded write's outcome says about the peer: nothing (it took the bytes), it
/// stopped reading ([`Disconnect::SlowReader`]), or it hung up.
fn stalled_or_gone(outcome: Result<io::Result<()>, tokio::time::error::Elapsed>) -> Option<Disconnect> {
    match outcome {
        Ok(Ok(())) => None,
        Ok(Err(_)) => Some(Disconnect::ConnectionLost),
        Err(_) => Some(Disconnect::SlowReader),
    }
}

/// Writes a batch one line at a time, `pace` apart, for a client that reads each answer with
/// one read and cannot split two that arrive together. Says why when the peer is gone.
async fn write_paced<D: Door, S: Transport>(
    stream: &mut S,
    door: &mut D,
    batch: &mut Vec<Piece>,
    bye: Option<Event>,
    pace: Duration,
) -> Option<Disconnect> {
    let mut out = Vec::new();
    for piece in batch.drain(..) {
        for delivery in piece.deliveries() {
            crate::write_batch::render(door, delivery, &mut out);
        }
    }
    if let Some(event) = &bye {
        door.render(event, &mut out);
    }
    let mut encoded = Vec::new();
    for line in out.split_inclusive(|&b| b == b'\n') {
        encoded.clear();
        stream.encode(line, &mut encoded);
        if let Some(why) = write_encoded(stream, &encoded).await {
            return Some(why);
        }
        tokio::time::sleep(pace).await;
    }
    None
}
