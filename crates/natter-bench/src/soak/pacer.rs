//! Paced chatter: every room gets `rate` messages per second, spoken by its members in turn.
//!
//! One task sends every message of the run on a fixed schedule (message `n` at `n / (rooms *
//! rate)` seconds, rooms taking turns), so the load is steady and the same from run to run.
//! A message's text carries its sender, the sender's count of messages so far and its send
//! time (see [`crate::payload`]).

use super::reader::{Link, Shared};
use crate::payload::{self, Payload, Phase};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What to send.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The rooms' names.
    pub rooms: Vec<String>,
    /// Messages per second in each room.
    pub rate: f64,
    /// How long to chatter.
    pub duration: Duration,
    /// Message text size in bytes.
    pub size: usize,
    /// The run's tag, which starts every text.
    pub tag: String,
}

/// What was sent.
#[derive(Debug, Clone, Default)]
pub struct Chatter {
    /// Messages sent into each room (written whole to a live connection).
    pub room_sent: Vec<u64>,
    /// Messages not sent: their sender's connection failed, or the room had no member left.
    pub failed: u64,
    /// The furthest the pacer fell behind its schedule (the load generator was busy).
    pub max_behind: Duration,
    /// From the first message to the last.
    pub elapsed: Duration,
}

/// Sends the plan's messages through the members of each room (`members[r]` for room `r`)
/// until its duration or `deadline` passes.
pub async fn chatter(
    plan: Plan,
    members: Vec<Vec<Arc<Link>>>,
    shared: Arc<Shared>,
    deadline: Instant,
) -> Chatter {
    let rooms = plan.rooms.len();
    let mut out = Chatter { room_sent: vec![0; rooms], ..Chatter::default() };
    let mut turn = vec![0usize; rooms];
    let (mut text, mut frame) = (String::new(), Vec::new());
    let per_second = plan.rate * rooms as f64;
    let started = Instant::now();
    let end = (started + plan.duration).min(deadline);
    for n in 0u64.. {
        let due = started + Duration::from_secs_f64(n as f64 / per_second);
        if due >= end {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        out.max_behind = out.max_behind.max(due.elapsed());
        let r = (n % rooms as u64) as usize;
        let Some(link) = next_sender(&members[r], &mut turn[r]) else {
            out.failed += 1;
            continue;
        };
        // Only this task sends: the count is the number of the next message.
        let seq = link.sent.load(Ordering::Relaxed);
        let p = Payload { phase: Phase::Measured, sender: link.index, seq, sent_ns: shared.now_ns() };
        payload::encode(&mut text, &plan.tag, &p, plan.size);
        frame.clear();
        shared.protocol.write_send(&mut frame, &plan.rooms[r], &text, &seq.to_string());
        let written = crate::conn::send(&mut *link.writer.lock().await, &frame).await;
        match written {
            Ok(()) => {
                out.room_sent[r] += 1;
                link.sent.store(seq + 1, Ordering::Relaxed);
            }
            Err(e) => {
                link.alive.store(false, Ordering::Relaxed);
                out.failed += 1;
                shared.problem(|| format!("a sender could not write: {e}"));
            }
        }
    }
    out.elapsed = started.elapsed();
    out
}

/// The room's next member in turn whose connection is still up.
fn next_sender<'a>(members: &'a [Arc<Link>], turn: &mut usize) -> Option<&'a Arc<Link>> {
    for _ in 0..members.len() {
        let link = &members[*turn % members.len()];
        *turn = (*turn + 1) % members.len();
        if link.alive.load(Ordering::Relaxed) {
            return Some(link);
        }
    }
    None
}
