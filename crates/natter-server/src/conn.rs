//! The connection loop shared by every TCP front door: one task per connection reads lines,
//! hands them to the door, and writes whatever the hub queued in the session's outbox, all of
//! it in one system call per wakeup.
//!
//! One task (not a reader and a writer) and no buffer held while idle keep an idle connection
//! small; a read borrows a stack buffer only for the duration of one non-blocking read.

use crate::door::{Door, Flow, SessionCtx};
use bytes::Bytes;
use natter_core::{Command, Delivery, Event, OutboxItems};
use natter_proto::line::{LineBuffer, LineEvent};
use std::io;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, sleep_until, timeout};

/// A line left unterminated this long counts as complete (clients that send one message per
/// write and no newline).
pub const PARTIAL_LINE_PAUSE: Duration = Duration::from_millis(100);
/// A peer that accepts no bytes for this long is disconnected.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads what the socket has (without waiting) into `lines`. Returns 0 at end of stream.
pub fn read_available(stream: &TcpStream, lines: &mut LineBuffer) -> io::Result<usize> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.try_read(&mut chunk)?;
    lines.extend(&chunk[..n]);
    Ok(n)
}

/// Runs a session until it ends. `lines` may already hold the bytes used to pick the door;
/// `deadline` is when the session must be logged in (counted from the connection's start).
pub(crate) async fn run<D: Door>(
    mut stream: TcpStream,
    mut lines: LineBuffer,
    mut door: D,
    mut ctx: SessionCtx,
    deadline: Instant,
) {
    let mut batch: Vec<Delivery> = Vec::new();
    let mut closing = false;
    let mut peer_gone = false;
    let mut ticker = tokio::time::interval(D::TICK.unwrap_or(Duration::from_secs(3600)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    if let Flow::Close(reason) = drain_lines(&mut lines, &mut door, &mut ctx).await {
        closing = true;
        ctx.end(reason).await;
    }
    loop {
        let waiting_partial = D::FLUSH_PARTIAL && !closing && !lines.is_empty();
        let registering = ctx.session.is_none() && !closing;
        tokio::select! {
            items = ctx.outbox.next_batch(&mut batch) => {
                let closed = match items {
                    OutboxItems::Ready => None,
                    OutboxItems::Closed(reason) => Some(reason),
                };
                let mut out = Vec::with_capacity(batch.len() * 192);
                for delivery in batch.drain(..) {
                    render_into(&mut door, &delivery, &mut out);
                }
                if let Some(reason) = &closed {
                    door.render(&Event::Bye { reason: reason.0.clone() }, &mut out);
                }
                if !out.is_empty() && !write(&mut stream, &out).await {
                    peer_gone = true;
                }
                if closed.is_some() || peer_gone {
                    break;
                }
            }
            ready = stream.readable(), if !closing => {
                if ready.is_err() {
                    peer_gone = true;
                    break;
                }
                match read_available(&stream, &mut lines) {
                    Ok(0) => { peer_gone = true; break; }
                    Ok(_) => {
                        if let Flow::Close(reason) = drain_lines(&mut lines, &mut door, &mut ctx).await {
                            closing = true;
                            ctx.end(reason).await;
                        }
                        if lines.is_empty() {
                            lines.shrink_when_idle();
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => { peer_gone = true; break; }
                }
            }
            _ = sleep(PARTIAL_LINE_PAUSE), if waiting_partial => {
                let flow = match lines.take_partial() {
                    Some(line) => door.on_line(line, &mut ctx).await,
                    None => Flow::Continue,
                };
                lines.shrink_when_idle();
                if let Flow::Close(reason) = flow {
                    closing = true;
                    ctx.end(reason).await;
                }
            }
            _ = ticker.tick(), if D::TICK.is_some() && !closing => {
                if let Flow::Close(reason) = door.on_tick(&mut ctx) {
                    closing = true;
                    ctx.end(reason).await;
                }
            }
            _ = sleep_until(deadline), if registering => {
                closing = true;
                let secs = ctx.limits.register_timeout.as_secs();
                ctx.end(format!("registration timeout: log in within {secs} seconds of connecting")).await;
            }
        }
    }
    if peer_gone && let Some(session) = ctx.session {
        let _ = ctx.hub.command(session, Command::Quit { reason: Some("connection lost".into()) }).await;
    }
    let _ = stream.shutdown().await;
}

async fn drain_lines<D: Door>(lines: &mut LineBuffer, door: &mut D, ctx: &mut SessionCtx) -> Flow {
    while let Some(event) = lines.next_line() {
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

fn render_into<D: Door>(door: &mut D, delivery: &Delivery, out: &mut Vec<u8>) {
    door.observe(&delivery.event);
    match door.slot(&delivery.event) {
        Some(slot) => {
            let bytes = delivery.cache.get_or_render(slot, || {
                let mut rendered = Vec::new();
                door.render(&delivery.event, &mut rendered);
                Bytes::from(rendered)
            });
            out.extend_from_slice(bytes);
        }
        None => door.render(&delivery.event, out),
    }
}

async fn write(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    matches!(timeout(WRITE_TIMEOUT, stream.write_all(bytes)).await, Ok(Ok(())))
}
