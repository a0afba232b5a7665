//! Slow readers: clients that join busy rooms, read for a while, then stop reading.
//!
//! The server must cut them (native `bye` "too slow", IRC `ERROR`) once their backlog passes
//! its outbox bound, rather than hold their backlog without end or slow the rooms down for
//! everyone else. Whether it did can only be seen from here once the reader looks again: at
//! the end of the run each one reads what is left and reports the goodbye, the closed
//! connection, or a stream that is still flowing (not cut).

use crate::conn::{self, Target};
use crate::dialect::Incoming;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What became of a slow reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlowOutcome {
    /// The server closed the connection; the reason it gave, if any.
    Cut(Option<String>),
    /// The connection was still up and delivering at the end of the run.
    NotCut,
    /// It never got going (no login, or a join was refused); the error.
    Failed(String),
}

/// One slow reader's story.
#[derive(Debug, Clone)]
pub struct SlowEnd {
    /// Rooms it joined.
    pub joined: usize,
    /// Seconds from its start until it stopped reading, if it got that far.
    pub stopped_after: Option<f64>,
    /// Bytes it read at the end before learning its fate (its backlog in the kernel's
    /// buffers, and what the server still sent).
    pub drained_bytes: u64,
    /// What became of it.
    pub outcome: SlowOutcome,
}

/// What a slow reader is to do.
#[derive(Debug, Clone)]
pub struct SlowPlan {
    /// Where to connect; the reader logs in and stays in the lobby like everyone else.
    pub target: Target,
    /// Its nickname.
    pub nick: String,
    /// The rooms it joins, one after the other (the server's command budget paces them),
    /// before the chatter starts: a join into a busy room brings a replay of its history,
    /// which is not what this reader is about.
    pub rooms: Vec<String>,
    /// It stops reading this long after the chatter started.
    pub read_for: Duration,
    /// At the end, the connection counts as not cut once no byte came for this long.
    pub quiet: Duration,
    /// Nothing runs past this instant.
    pub deadline: Instant,
}

/// How a slow reader keeps in step with the run.
#[derive(Debug)]
pub struct Signals {
    /// Dropped once it joined every room (or gave up).
    pub joined: tokio::sync::mpsc::Sender<()>,
    /// When the chatter started, once it has.
    pub chatter: watch::Receiver<Option<Instant>>,
    /// Set when the run is over.
    pub stop: watch::Receiver<bool>,
}

/// Runs one slow reader until the run is over, then reports.
pub async fn slow_reader(plan: SlowPlan, signals: Signals) -> SlowEnd {
    let Signals { joined: joined_all, mut chatter, mut stop } = signals;
    let started = Instant::now();
    let mut end = SlowEnd { joined: 0, stopped_after: None, drained_bytes: 0, outcome: SlowOutcome::NotCut };
    let joined = AtomicUsize::new(0);
    let setup = async {
        let mut session = conn::open(&plan.target, &plan.nick, 4096).await?;
        for room in &plan.rooms {
            conn::join(&mut session, plan.target.protocol, &plan.nick, room).await?;
            joined.fetch_add(1, Ordering::Relaxed);
        }
        drop(joined_all);
        // Keep reading (and discarding) until it is time to stop.
        let (reader, _) = &mut session;
        loop {
            while reader.next_line().is_some() {}
            let stop_at = chatter.borrow().map(|t| t + plan.read_for);
            let read = match stop_at {
                Some(at) => match tokio::time::timeout_at(at.into(), reader.fill()).await {
                    Ok(read) => read,
                    Err(_) => break,
                },
                None => tokio::select! {
                    changed = chatter.changed() => match changed {
                        Ok(()) => continue,
                        Err(_) => break, // the run is ending before any chatter
                    },
                    read = reader.fill() => read,
                },
            };
            match read {
                Ok(0) => anyhow::bail!("the server closed the connection while it was still reading"),
                Err(e) => return Err(e.context("connection error while it was still reading")),
                Ok(_) => {}
            }
        }
        anyhow::Ok(session)
    };
    let session = tokio::select! {
        biased;
        _ = stop.changed() => Err(anyhow::anyhow!(if joined.load(Ordering::Relaxed) < plan.rooms.len() {
            "still joining rooms at the end of the run"
        } else {
            "the run ended before it was to stop reading"
        })),
        s = setup => s,
    };
    end.joined = joined.load(Ordering::Relaxed);
    let (mut reader, writer) = match session {
        Ok(s) => s,
        Err(e) => {
            end.outcome =
                SlowOutcome::Failed(format!("{e:#} ({} of {} rooms joined)", end.joined, plan.rooms.len()));
            return end;
        }
    };
    end.stopped_after = Some(started.elapsed().as_secs_f64());
    // Not reading now: the server's outbox for us fills while the rooms chatter.
    let _ = stop.changed().await;
    // Look again: read the backlog until the goodbye, the end of the stream, or silence.
    let protocol = plan.target.protocol;
    end.outcome = loop {
        let mut bye = None;
        while let Some(line) = reader.next_line() {
            end.drained_bytes += line.len() as u64 + 1;
            if let Incoming::Bye(reason) = protocol.classify(line) {
                bye = Some(reason);
                break;
            }
        }
        if let Some(reason) = bye {
            break SlowOutcome::Cut(Some(reason));
        }
        let until = (Instant::now() + plan.quiet).min(plan.deadline);
        match tokio::time::timeout_at(until.into(), reader.fill()).await {
            Err(_) => break SlowOutcome::NotCut,
            Ok(Ok(0)) => break SlowOutcome::Cut(None),
            Ok(Err(e)) => break SlowOutcome::Cut(Some(format!("connection error: {e:#}"))),
            Ok(Ok(_)) => {}
        }
    };
    drop(writer);
    end
}
