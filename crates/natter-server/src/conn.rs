//! The connection loop shared by every TCP front door: one task per connection reads lines,
//! hands them to the door, and writes whatever the hub queued in the session's outbox, all of
//! it in one system call per wakeup.
//!
//! One task (not a reader and a writer) and no buffer held while idle keep an idle connection
//! small; a read borrows a stack buffer only for the duration of one non-blocking read.

use crate::door::{Door, Flow, Pace, SessionCtx};
use crate::park::Parked;
use crate::transport::{ParkedSocket, Transport};
use crate::write_batch::{Written, write_batch};
use natter_core::metrics::Disconnect;
use natter_core::{Command, Event, NextBatch, Piece};
use natter_proto::line::{LineBuffer, LineEvent};
use std::future::{Future, poll_fn};
use std::io;
use std::marker::PhantomData;
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

/// Where the connection loop starts.
enum Start {
    /// A new connection, which must be logged in by this deadline (counted from the
    /// connection's start).
    Fresh(Instant),
    /// A connection back from the park ([`crate::park`]). Boxed: whatever an async
    /// function is called with stays in its future, which is in every idle connection.
    Resumed(Box<Resumed>),
}

/// How a connection comes back from the park.
struct Resumed {
    /// When its door's next tick is due.
    tick_due: Option<Instant>,
    /// With a reason, its session must end (its tick in the park said so).
    close: Option<String>,
}

/// Runs a session until it ends. `lines` may already hold the bytes used to pick the door;
/// `deadline` is when the session must be logged in (counted from the connection's start).
pub(crate) fn run<D: Door, S: Transport>(
    stream: S,
    lines: LineBuffer,
    door: D,
    ctx: SessionCtx,
    deadline: Instant,
) -> impl Future<Output = ()> + Send {
    serve(stream, lines, door, ctx, Start::Fresh(deadline))
}

/// The connection loop, from its start or back from the park.
///
/// Memory per idle connection is dominated by this future, so it holds one timer (the
/// earliest of the registration deadline, the partial-line pause, the door's tick and the
/// time to park) and boxes the rarely taken paths (handling input, ending the session)
/// instead of embedding their state.
async fn serve<D: Door, S: Transport>(
    mut stream: S,
    mut lines: LineBuffer,
    mut door: D,
    mut ctx: SessionCtx,
    start: Start,
) {
    let mut batch: Vec<Piece> = Vec::new();
    // Set once the session is ending by a decision already counted (the door's, the hub's):
    // a peer that then hangs up is not counted again.
    let mut closing = false;
    // Why the peer is gone, when it is (it hung up, or stopped taking bytes).
    let mut peer_gone: Option<Disconnect>;
    // When an unterminated line counts as complete, and when the door's tick runs next.
    let mut partial_due: Option<Instant> = None;
    // Until the session is logged in, when it must be; then, the last time the connection
    // read or wrote (it parks after the park's pause). One instant for both: this future is
    // in every idle connection.
    let (mut mark, mut tick_due, close) = match start {
        Start::Fresh(deadline) => (deadline, D::TICK.map(|every| Instant::now() + every), None),
        Start::Resumed(resumed) => (Instant::now(), resumed.tick_due, resumed.close),
    };
    let timer = sleep_until(mark);
    tokio::pin!(timer);

    // One boxed step for the door's start and the bytes already read (or the end a tick in
    // the park decided): each await kept in this future adds its state to every idle
    // connection.
    closing |= Box::pin(open(close, &mut lines, &mut door, &mut ctx)).await;
    if lines.is_empty() {
        // The bytes used to pick the door were consumed: do not keep their buffer.
        lines.shrink_when_idle();
    } else if D::FLUSH_PARTIAL && !S::MESSAGES {
        partial_due = Some(Instant::now() + PARTIAL_LINE_PAUSE);
    }
    loop {
        let registering = ctx.session.is_none() && !closing;
        let waiting = ctx.pace == Pace::Waiting && !closing;
        // A logged-in connection with nothing pending parks once it has been idle long enough.
        let parkable = S::PARKABLE
            && stream.at_rest()
            && !registering
            && !closing
            && !waiting
            && partial_due.is_none()
            && lines.is_empty()
            && batch.is_empty()
            && door.paced().is_none();
        let wake = [
            registering.then(|| mark.min(Instant::now() + STOP_CHECK)),
            partial_due.filter(|_| !closing && !waiting),
            tick_due.filter(|_| !closing),
            waiting.then(|| ctx.budget.due()),
            park_time(parkable, mark, &ctx),
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
                if ctx.session.is_some() {
                    mark = Instant::now();
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
                        if ctx.session.is_some() {
                            mark = Instant::now();
                        }
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
                if park_time(parkable, mark, &ctx).is_some_and(|at| now >= at)
                    && let Some(park) = ctx.park().cloned()
                {
                    // Nothing to do for a while: the connection waits in the park, without a
                    // task, until its peer, its outbox or its tick calls.
                    match stream.into_parked() {
                        Ok(socket) => {
                            let transport = PhantomData::<fn() -> S>;
                            ctx.hub.metrics().parked_changed(true);
                            let fresh = lines.is_fresh() && lines.max() == D::line_limit(&ctx.settings);
                            let lines = (!fresh).then(|| Box::new(lines));
                            park.keep(Box::new(ParkedConn { socket, lines, door, ctx, tick_due, transport }));
                        }
                        Err(_) => {
                            drop(park);
                            Box::pin(finish(ctx, Some(Disconnect::ConnectionLost), false)).await;
                        }
                    }
                    return;
                }
                // A partial line's pause counts from the last bytes received. A task that comes
                // back late may find the timer and the socket ready together, with the rest of
                // the line waiting: it is read first (next turn), not cut off at the pause.
                if partial_due.is_some_and(|due| now >= due) && !waiting && stream.bytes_waiting() {
                    partial_due = Some(now + PARTIAL_LINE_PAUSE);
                    continue;
                }
                let timers = Timers { now, registering, deadline: mark, partial_due: &mut partial_due, tick_due: &mut tick_due };
                if let Some(reason) = Box::pin(on_timer(timers, &mut lines, &mut door, &mut ctx)).await {
                    closing = true;
                    Box::pin(ctx.end(reason)).await;
                }
            }
        }
    }
    Box::pin(finish(ctx, peer_gone, closing)).await;
    // Bounded: a TLS shutdown first sends what rustls still holds, and a peer that reads
    // nothing would hold the task forever. Boxed, so that its timer is not in every idle
    // connection's future.
    let _ = Box::pin(timeout(WRITE_TIMEOUT, stream.shutdown())).await;
}

/// The end of a session's connection: its counts given back and, when the peer is gone
/// (`peer_gone`), the disconnect counted (unless `closing`: already counted) and the session
/// quit in the hub.
async fn finish(mut ctx: SessionCtx, peer_gone: Option<Disconnect>, closing: bool) {
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
            let _ = ctx.hub.command(session, quit).await;
        }
    }
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

/// When a connection that is `parkable` and was last busy at `mark` parks: never when it is
/// not, or when the server does not park connections.
fn park_time(parkable: bool, mark: Instant, ctx: &SessionCtx) -> Option<Instant> {
    ctx.park().filter(|_| parkable).map(|park| mark + park.after())
}

/// The start of the connection loop: the session ended for `close` (a tick in the park said
/// so), or the door's start and the lines already read when not logged in yet. True when the
/// session is ending.
async fn open<D: Door>(
    close: Option<String>,
    lines: &mut LineBuffer,
    door: &mut D,
    ctx: &mut SessionCtx,
) -> bool {
    let reason = match close {
        Some(reason) => reason,
        None if ctx.session.is_none() => match begin(lines, door, ctx).await {
            Flow::Continue => return false,
            Flow::Close(reason) => reason,
        },
        None => return false,
    };
    ctx.end(reason).await;
    true
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

/// A connection in the park: its bare socket and what its loop needs to go on; `S` is the
/// transport it is made into again.
struct ParkedConn<D, S> {
    socket: ParkedSocket,
    /// The line buffer, unless it is fresh with the door's limit ([`Door::line_limit`]; as
    /// nearly always: a connection parks with no partial line pending), when it is made anew
    /// on waking.
    lines: Option<Box<LineBuffer>>,
    door: D,
    ctx: SessionCtx,
    tick_due: Option<Instant>,
    transport: PhantomData<fn() -> S>,
}

impl<D: Door, S: Transport> Parked for ParkedConn<D, S> {
    fn socket(&self) -> &ParkedSocket {
        &self.socket
    }

    fn outbox(&self) -> &natter_core::Outbox {
        &self.ctx.outbox
    }

    fn tick_due(&self) -> Option<Instant> {
        self.tick_due
    }

    fn tick(&mut self, now: Instant) -> Result<(), String> {
        self.tick_due = D::TICK.map(|every| now + every);
        match self.door.on_tick(&mut self.ctx) {
            Flow::Continue => Ok(()),
            Flow::Close(reason) => Err(reason),
        }
    }

    fn resume(self: Box<Self>, close: Option<String>) {
        let ParkedConn { socket, lines, door, ctx, tick_due, transport: _ } = *self;
        let lines = lines.map_or_else(|| LineBuffer::new(D::line_limit(&ctx.settings)), |kept| *kept);
        ctx.hub.metrics().parked_changed(false);
        match S::from_parked(socket) {
            Ok(stream) => {
                let start = Start::Resumed(Box::new(Resumed { tick_due, close }));
                tokio::spawn(serve(stream, lines, door, ctx, start));
            }
            // The reactor refused it (out of memory, say): the connection is lost.
            Err(_) => {
                tokio::spawn(finish(ctx, Some(Disconnect::ConnectionLost), close.is_some()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::door::irc::IrcDoor;
    use crate::door::native::NativeDoor;
    use tokio::net::TcpStream;

    /// The size of what `f` returns, without calling it.
    fn returned_size<A, B, C, E, F, Fut>(_f: F) -> usize
    where
        F: FnOnce(A, B, C, SessionCtx, E) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    #[test]
    fn a_connections_future_stays_small() {
        let native = returned_size(serve::<NativeDoor, TcpStream>);
        let irc = returned_size(serve::<IrcDoor, TcpStream>);
        eprintln!("connection future: native {native} bytes, IRC {irc} bytes");
        // Past 1,168 bytes the task (tokio adds 112 bytes of header and trailer) moves up to
        // jemalloc's next size class, 1,536 bytes instead of 1,280: idle memory per connection.
        assert!(native <= 1168, "native {native}");
    }

    /// What an idle native connection costs once parked, beside its session in the hub: past
    /// 160 bytes it takes jemalloc's next size class (192).
    #[test]
    fn a_parked_connection_stays_small() {
        let parked = std::mem::size_of::<ParkedConn<NativeDoor, TcpStream>>();
        assert!(parked <= 160, "{parked}");
        // An IRC connection's door keeps more (caps, modes, its rooms): past 448 bytes, 512.
        let irc = std::mem::size_of::<ParkedConn<IrcDoor, TcpStream>>();
        eprintln!("parked: native {parked} bytes, IRC {irc} bytes");
        assert!(irc <= 448, "IRC {irc}");
    }
}
