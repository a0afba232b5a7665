//! `natter bench fanout`: N clients in one room; clients `0..S` each send M messages.
//!
//! Every message should reach the N-1 other clients. Receivers count what arrives, check
//! per-sender order, and record latency from the send time embedded in the text. The
//! measured phase starts after an optional warm-up phase has drained, and the server's CPU
//! time is read around the measured phase only.
//!
//! With `--rooms R` the clients are spread over R rooms as [`Layout`] says (client `i` in room
//! `i % R`, the senders too), and a message is owed to the other members of its sender's room
//! only; one that reaches a member of another room is counted as foreign, not delivered.

use crate::Context;
use crate::conn::{LineReader, Session};
use crate::conn::{ReadHalf, WriteHalf};
use crate::dialect::{Dialect, Incoming, Protocol};
use crate::layout::Layout;
use crate::payload::{self, Payload, Phase};
use crate::stats::{self, CpuTicks, Latency, LatencySummary};
use anyhow::bail;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

/// Options of the fanout scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct FanoutArgs {
    /// Clients in the room (senders included); with --rooms, in all rooms together.
    #[arg(short = 'n', long, default_value_t = 100)]
    pub clients: u32,
    /// How many of the clients send.
    #[arg(short = 's', long, default_value_t = 10)]
    pub senders: u32,
    /// Rooms to spread the clients over, client i in room i mod R: with 1, the room is --room
    /// itself; with more, `<room>-0` to `<room>-(R-1)`. Senders are clients 0..S, so every
    /// room has one when --senders is at least --rooms.
    #[arg(long, default_value_t = 1)]
    pub rooms: u32,
    /// Messages per sender.
    #[arg(short = 'm', long, default_value_t = 1000)]
    pub messages: u32,
    /// Messages per second per sender; default: as fast as the server accepts them.
    #[arg(long)]
    pub rate: Option<f64>,
    /// With --rate, offset the senders' schedules evenly within one interval (sender j starts
    /// j/S of 1/rate later), so the server sees a steady stream rather than all senders at
    /// the same instants.
    #[arg(long, requires = "rate")]
    pub stagger: bool,
    /// Message text size in bytes (at least what the sequence and timestamp need).
    #[arg(long, default_value_t = 32)]
    pub size: usize,
    /// Messages per sender sent and drained before measuring (not counted).
    #[arg(long, default_value_t = 0)]
    pub warmup: u32,
    /// At most this many messages per sender awaiting their ack (native only); default: no
    /// limit, the senders write as fast as the server reads, and latency includes the
    /// server's backlog.
    #[arg(long)]
    pub window: Option<u32>,
    /// Before sending, wait up to this many seconds for the server (--server-pid) to go quiet:
    /// after thousands of joins it may still be sending join notices, work that would
    /// otherwise be counted against the deliveries. 0: start at once.
    #[arg(long, default_value_t = 0.0)]
    pub settle: f64,
    /// Stop waiting for deliveries once none arrived for this many seconds.
    #[arg(long, default_value_t = 2.0)]
    pub drain: f64,
    /// Read buffer per connection, bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    pub read_buffer: usize,
}

/// Results of a fanout run.
#[derive(Debug, Clone)]
pub struct FanoutReport {
    /// The options used.
    pub args: FanoutArgs,
    /// Server address as given.
    pub addr: String,
    /// Dialect spoken.
    pub protocol: Protocol,
    /// Deliveries that should have happened in the measured phase.
    pub expected: u64,
    /// Measured-phase bench messages received.
    pub delivered: u64,
    /// `expected - delivered`, never negative.
    pub lost: u64,
    /// Messages that arrived with a sequence number lower than one already seen from the same
    /// sender (duplicates or reordering).
    pub out_of_order: u64,
    /// Messages whose text was not one of this run's payloads (other users, earlier runs),
    /// or that came from a sender in another room (with --rooms).
    pub foreign: u64,
    /// Acknowledgements the senders received (native only).
    pub acks: u64,
    /// Connections the server closed during the run.
    pub disconnects: u64,
    /// Error frames received.
    pub errors: u64,
    /// The first error or disconnect reason seen, to tell the user what happened.
    pub first_error: Option<String>,
    /// Warm-up deliveries received.
    pub warmup_delivered: u64,
    /// From the start of the measured sends until the last sender finished writing.
    pub send_time: Duration,
    /// From the start of the measured sends until the last delivery.
    pub wall: Duration,
    /// Whether the overall timeout cut the run short.
    pub timed_out: bool,
    /// Server CPU time during the measured phase, when `--server-pid` was given.
    pub server_cpu: Option<CpuTicks>,
    /// The same from the per-thread scheduler statistics, in nanoseconds (finer grained).
    pub server_sched_ns: Option<u64>,
    /// CPU time the bench itself used in the measured phase.
    pub bench_cpu: Duration,
    /// Worker threads of the bench.
    pub bench_threads: usize,
    /// Delivery latency.
    pub latency: LatencySummary,
    /// Time to open and join all connections.
    pub setup: Duration,
}

impl FanoutReport {
    /// Deliveries per second of wall time.
    pub fn rate(&self) -> f64 {
        per_sec(self.delivered, self.wall)
    }

    /// Deliveries per server CPU-second, when the server's CPU time is known and non-zero.
    pub fn per_cpu_second(&self) -> Option<f64> {
        let s = self.server_cpu?.seconds();
        (s > 0.0).then(|| self.delivered as f64 / s)
    }

    /// Deliveries per server CPU-second from the scheduler statistics.
    pub fn per_sched_second(&self) -> Option<f64> {
        let ns = self.server_sched_ns?;
        (ns > 0).then(|| self.delivered as f64 / (ns as f64 / 1e9))
    }

    /// Share of the bench's CPU capacity used between the first send and the end of the
    /// drain; near 1 means the bench, not the server, set the pace.
    pub fn bench_load(&self) -> f64 {
        let capacity = (self.send_time.max(self.wall)).as_secs_f64() * self.bench_threads as f64;
        if capacity > 0.0 { self.bench_cpu.as_secs_f64() / capacity } else { 0.0 }
    }

    /// The printable and JSON forms.
    pub fn report(&self) -> crate::Report {
        let a = &self.args;
        let mut pace = match a.rate {
            Some(r) => format!("{r} msg/s per sender"),
            None => "full speed".into(),
        };
        if a.stagger {
            pace += ", staggered";
        }
        if let Some(w) = a.window {
            pace += &format!(", window {w}");
        }
        let rooms = match a.rooms {
            1 => "1 room".to_string(),
            r => format!("{r} rooms"),
        };
        let mut t = format!(
            "fanout: {} clients in {rooms}, {} senders x {} messages ({pace}, {} B text), {} protocol, {}\n",
            a.clients,
            a.senders,
            a.messages,
            a.size,
            self.protocol.name(),
            self.addr
        );
        t += &format!(
            "deliveries     {} of {} expected: {} lost, {} out of order, {} disconnects, {} errors\n",
            self.delivered, self.expected, self.lost, self.out_of_order, self.disconnects, self.errors
        );
        t += &format!(
            "time           setup {:.3} s, sending {:.3} s, first send to last delivery {:.3} s{}\n",
            self.setup.as_secs_f64(),
            self.send_time.as_secs_f64(),
            self.wall.as_secs_f64(),
            if self.timed_out { " (TIMED OUT)" } else { "" }
        );
        t += &format!("deliveries/s   {:.0}\n", self.rate());
        match self.server_cpu {
            Some(cpu) => {
                t += &format!(
                    "server cpu     {:.2} s (user {:.2} + system {:.2}); deliveries per server CPU-second: {}\n",
                    cpu.seconds(),
                    cpu.user_seconds(),
                    cpu.system_seconds(),
                    self.per_cpu_second().map_or("n/a (no CPU time measured)".into(), |r| format!("{r:.0}"))
                );
            }
            None => t += "server cpu     not measured (pass --server-pid PID)\n",
        }
        if let (Some(ns), Some(r)) = (self.server_sched_ns, self.per_sched_second()) {
            t += &format!(
                "server sched   {:.3} s on CPU (all threads, ns resolution): {r:.0} deliveries per CPU-second\n",
                ns as f64 / 1e9
            );
        }
        t += &format!(
            "bench cpu      {:.3} s on {} thread(s), {:.0} % of its capacity{}\n",
            self.bench_cpu.as_secs_f64(),
            self.bench_threads,
            100.0 * self.bench_load(),
            if self.bench_load() > 0.9 { ": the bench may be the bottleneck" } else { "" }
        );
        t += &format!("latency        {}\n", self.latency.line());
        if self.warmup_delivered > 0 {
            t += &format!("warm-up        {} deliveries (not counted above)\n", self.warmup_delivered);
        }
        if self.foreign > 0 {
            t += &format!(
                "note           {} messages not from this run's senders in the receiver's room were ignored\n",
                self.foreign
            );
        }
        if let Some(e) = &self.first_error {
            t += &format!("first problem  {e}\n");
            if e.contains("rate") || e.contains("flood") {
                t += "hint           the server rate-limits senders: run it with its flood limits raised \
                      (natter serve --msg-rate 0)\n";
            }
        }
        let json = serde_json::json!({
            "scenario": "fanout",
            "addr": self.addr,
            "protocol": self.protocol.name(),
            "clients": a.clients,
            "senders": a.senders,
            "rooms": a.rooms,
            "messages": a.messages,
            "rate": a.rate,
            "stagger": a.stagger,
            "size": a.size,
            "warmup": a.warmup,
            "settle": a.settle,
            "expected": self.expected,
            "delivered": self.delivered,
            "lost": self.lost,
            "out_of_order": self.out_of_order,
            "foreign": self.foreign,
            "acks": self.acks,
            "disconnects": self.disconnects,
            "errors": self.errors,
            "first_error": self.first_error,
            "warmup_delivered": self.warmup_delivered,
            "setup_s": self.setup.as_secs_f64(),
            "send_s": self.send_time.as_secs_f64(),
            "wall_s": self.wall.as_secs_f64(),
            "timed_out": self.timed_out,
            "deliveries_per_s": self.rate(),
            "server_cpu_s": self.server_cpu.map(|c| c.seconds()),
            "server_user_s": self.server_cpu.map(|c| c.user_seconds()),
            "server_system_s": self.server_cpu.map(|c| c.system_seconds()),
            "deliveries_per_server_cpu_s": self.per_cpu_second(),
            "server_sched_cpu_s": self.server_sched_ns.map(|ns| ns as f64 / 1e9),
            "deliveries_per_server_sched_cpu_s": self.per_sched_second(),
            "bench_cpu_s": self.bench_cpu.as_secs_f64(),
            "bench_threads": self.bench_threads,
            "window": a.window,
            "latency": self.latency.json(),
        });
        crate::Report { text: t, json }
    }
}

fn per_sec(n: u64, d: Duration) -> f64 {
    if d.is_zero() { 0.0 } else { n as f64 / d.as_secs_f64() }
}

/// State shared by all receivers of a run.
#[derive(Debug)]
struct Shared {
    protocol: Protocol,
    tag: Vec<u8>,
    /// Zero of the nanosecond clock embedded in payloads.
    base: Instant,
    delivered: AtomicU64,
    warm_delivered: AtomicU64,
    disconnects: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn problem(&self, what: String) {
        let mut first = self.first_error.lock().expect("not poisoned");
        first.get_or_insert(what);
    }
}

/// What one receiver saw.
#[derive(Debug, Default)]
struct RecvStats {
    latency: Latency,
    delivered: u64,
    out_of_order: u64,
    foreign: u64,
    acks: u64,
    /// Time of the last measured delivery, ns on the shared clock.
    last_ns: u64,
}

/// One client's sending side, shared by its sender and its receiver (which sees the acks
/// and answers keep-alives).
#[derive(Debug)]
struct Link {
    writer: tokio::sync::Mutex<WriteHalf>,
    /// Messages sent on this connection so far, all phases.
    sent: AtomicU64,
    /// Acks (and errors, which also settle a send) received so far.
    settled: AtomicU64,
    /// Wakes a sender waiting for its window to open.
    settled_changed: Notify,
}

type Writer = Arc<Link>;

/// Runs the scenario.
pub async fn run(ctx: &Context, args: &FanoutArgs) -> anyhow::Result<FanoutReport> {
    if args.clients < 2 {
        bail!("fanout needs at least 2 clients (-n)");
    }
    if args.senders == 0 || args.senders > args.clients {
        bail!("--senders must be between 1 and --clients ({})", args.clients);
    }
    if args.rooms == 0 {
        bail!("--rooms must be at least 1");
    }
    if args.rooms > args.clients {
        bail!(
            "--rooms {} is more than --clients {}: client i is in room i mod --rooms, so some rooms would \
             stay empty; give at most as many rooms as clients",
            args.rooms,
            args.clients
        );
    }
    if args.senders < args.rooms {
        bail!(
            "--senders {} is fewer than --rooms {}: sender j speaks in room j mod --rooms, so some rooms \
             would stay silent; give at least as many senders as rooms",
            args.senders,
            args.rooms
        );
    }
    if args.senders > payload::MAX_SENDERS || args.messages > payload::MAX_SEQ {
        bail!("at most {} senders and {} messages per sender", payload::MAX_SENDERS, payload::MAX_SEQ);
    }
    if let Some(r) = args.rate
        && !(r > 0.0 && r.is_finite())
    {
        bail!("--rate must be a positive number of messages per second");
    }
    if args.window == Some(0) {
        bail!("--window must be at least 1");
    }
    if args.window.is_some() && ctx.common.protocol.dialect() == Dialect::Irc {
        bail!("--window needs acknowledgements, which IRC does not send; use --rate with IRC");
    }
    let drain = crate::secs("--drain", args.drain)?;
    let settle = crate::secs("--settle", args.settle)?;
    stats::raise_file_limit(u64::from(args.clients) + 64)?;
    stats::cpu_total(&ctx.common.server_pid)?;
    let shared = Arc::new(Shared {
        protocol: ctx.common.protocol,
        tag: ctx.tag.as_bytes().to_vec(),
        base: Instant::now(),
        delivered: AtomicU64::new(0),
        warm_delivered: AtomicU64::new(0),
        disconnects: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        first_error: Mutex::new(None),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let layout = Layout { clients: args.clients, rooms: args.rooms };
    let rooms = room_names(&ctx.target.room, args.rooms);

    // Set up: every client logs in, joins its room, and starts reading at once.
    ctx.progress.line(&format!("opening {} connections to {}", args.clients, ctx.target.addr));
    let receiver_shared = shared.clone();
    let sender_count = args.senders;
    let opened = crate::conn::open_many_in(
        &ctx.target,
        |i| rooms[layout.room(i as u32) as usize].clone(),
        args.clients as usize,
        |i| ctx.nick(i),
        args.read_buffer,
        ctx.common.connect_concurrency,
        0,
        ctx.deadline,
        &ctx.progress,
        move |i, (reader, writer): Session| {
            let writer: Writer = Arc::new(Link {
                writer: tokio::sync::Mutex::new(writer),
                sent: AtomicU64::new(0),
                settled: AtomicU64::new(0),
                settled_changed: Notify::new(),
            });
            let next_seq = next_seq_table(layout, sender_count, i as u32);
            let task = tokio::spawn(receive(
                reader,
                writer.clone(),
                receiver_shared.clone(),
                next_seq,
                stop_rx.clone(),
            ));
            (task, writer)
        },
    )
    .await;
    if let Some(first) = opened.failures.first() {
        let _ = stop_tx.send(true);
        bail!("{} of {} connections failed; first: {first}", opened.failures.len(), args.clients);
    }
    let (receivers, writers): (Vec<_>, Vec<_>) = opened.sessions.into_iter().flatten().unzip();
    let placed = match args.rooms {
        1 => ctx.target.room.clone(),
        r => format!("{r} rooms ({}-0 to {}-{})", ctx.target.room, ctx.target.room, r - 1),
    };
    ctx.progress.line(&format!(
        "{} clients in {placed} after {:.2} s",
        writers.len(),
        opened.elapsed.as_secs_f64()
    ));

    let senders = &writers[..args.senders as usize];
    let mut timed_out = false;
    if !settle.is_zero() {
        if ctx.common.server_pid.is_empty() {
            ctx.progress.line("no --server-pid: --settle has no server to watch; sending at once");
        } else {
            if !crate::settle_server(ctx, &ctx.common.server_pid, settle).await? {
                ctx.progress.line("server still busy after --settle; sending anyway");
            }
        }
    }

    if args.warmup > 0 {
        let expected = layout.expected_deliveries(args.senders, args.warmup);
        ctx.progress.line(&format!("warm-up: {} messages per sender", args.warmup));
        let (_, t) = send_all(ctx, args, &shared, senders, &rooms, Phase::Warmup, args.warmup).await;
        timed_out |= t;
        let warm = || shared.warm_delivered.load(Ordering::Relaxed);
        timed_out |= wait_drained(ctx, warm, expected, drain, "warm-up").await;
    }

    let cpu_before = stats::cpu_total(&ctx.common.server_pid)?;
    let sched_before = stats::sched_total(&ctx.common.server_pid);
    let own_before = stats::own_cpu();
    let expected = layout.expected_deliveries(args.senders, args.messages);
    ctx.progress.line(&format!(
        "sending: {} senders x {} messages, {expected} deliveries expected",
        args.senders, args.messages
    ));
    let start_ns = shared.now_ns();
    let (send_time, t) = send_all(ctx, args, &shared, senders, &rooms, Phase::Measured, args.messages).await;
    timed_out |= t;
    let delivered = || shared.delivered.load(Ordering::Relaxed);
    timed_out |= wait_drained(ctx, delivered, expected, drain, "delivered").await;
    if ctx.common.protocol.dialect() == Dialect::Native {
        // The senders' acks travel apart from the deliveries and may trail the last one:
        // stopping the readers before they arrive would report sends as unacknowledged.
        let settled = || senders.iter().map(|s| s.settled.load(Ordering::Relaxed)).sum();
        let sent = senders.iter().map(|s| s.sent.load(Ordering::Relaxed)).sum();
        timed_out |= wait_drained(ctx, settled, sent, drain, "acknowledged").await;
    }
    let cpu_after = stats::cpu_total(&ctx.common.server_pid)?;
    let sched_after = stats::sched_total(&ctx.common.server_pid);
    let bench_cpu = stats::own_cpu().saturating_sub(own_before);

    let _ = stop_tx.send(true);
    let mut total = RecvStats::default();
    for task in receivers {
        let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(5), task).await else { continue };
        total.latency.merge(&s.latency);
        total.delivered += s.delivered;
        total.out_of_order += s.out_of_order;
        total.foreign += s.foreign;
        total.acks += s.acks;
        total.last_ns = total.last_ns.max(s.last_ns);
    }
    drop(writers);

    let first_error = shared.first_error.lock().expect("not poisoned").clone();
    Ok(FanoutReport {
        args: args.clone(),
        addr: ctx.common.addr.clone(),
        protocol: ctx.common.protocol,
        expected,
        delivered: total.delivered,
        lost: expected.saturating_sub(total.delivered),
        out_of_order: total.out_of_order,
        foreign: total.foreign,
        acks: total.acks,
        disconnects: shared.disconnects.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
        first_error,
        warmup_delivered: shared.warm_delivered.load(Ordering::Relaxed),
        send_time,
        wall: Duration::from_nanos(total.last_ns.saturating_sub(start_ns)),
        timed_out,
        server_cpu: cpu_before.zip(cpu_after).map(|(b, a)| a.since(b)),
        server_sched_ns: sched_before.zip(sched_after).map(|(b, a)| a.saturating_sub(b)),
        bench_cpu,
        bench_threads: ctx.threads,
        latency: total.latency.summary(),
        setup: opened.elapsed,
    })
}

/// The rooms' names: `--room` itself for one room, `<room>-0` to `<room>-(R-1)` for several.
fn room_names(base: &str, rooms: u32) -> Vec<String> {
    match rooms {
        1 => vec![base.to_string()],
        r => (0..r).map(|i| format!("{base}-{i}")).collect(),
    }
}

/// Marks a sender of another room in a receiver's table of next sequence numbers. Sequence
/// numbers stay below [`payload::MAX_SEQ`], so no real "next" is ever this.
const OTHER_ROOM: u32 = u32::MAX;
const _: () = assert!(payload::MAX_SEQ < OTHER_ROOM - 1);

/// A receiver's table of the next sequence number it expects from each sender: 0 for the
/// senders of its room, [`OTHER_ROOM`] for the others. The lookup that checks a delivery's
/// order thereby also tells a message from another room apart, at no extra cost per delivery.
fn next_seq_table(layout: Layout, senders: u32, receiver: u32) -> Vec<u32> {
    let room = layout.room(receiver);
    (0..senders).map(|j| if layout.room(j) == room { 0 } else { OTHER_ROOM }).collect()
}

/// Lets every sender send `count` messages of `phase` into its room (sender `i` into
/// `rooms[i % rooms.len()]`); returns the time until the last one finished writing, and
/// whether the deadline cut it short.
async fn send_all(
    ctx: &Context,
    args: &FanoutArgs,
    shared: &Arc<Shared>,
    writers: &[Writer],
    rooms: &[String],
    phase: Phase,
    count: u32,
) -> (Duration, bool) {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (i, w) in writers.iter().enumerate() {
        let job = SendJob {
            sender: i as u32,
            phase,
            count,
            rate: args.rate,
            // Evenly within one interval: sender i of S, i/S of it later.
            offset: match args.rate {
                Some(r) if args.stagger => Duration::from_secs_f64(i as f64 / (writers.len() as f64 * r)),
                _ => Duration::ZERO,
            },
            window: args.window,
            size: args.size,
            room: rooms[i % rooms.len()].clone(),
            tag: ctx.tag.clone(),
        };
        set.spawn(send(job, w.clone(), shared.clone()));
    }
    let all = async {
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => shared.problem(format!("a sender could not write: {e}")),
                Err(e) => shared.problem(format!("a sender task failed: {e}")),
            }
        }
    };
    let timed_out = tokio::time::timeout(ctx.remaining(), all).await.is_err();
    if timed_out {
        set.abort_all();
    }
    (started.elapsed(), timed_out)
}

/// Waits until `counter` reaches `expected`, stops growing for `drain`, or the deadline
/// passes (then returns true). Prints progress every second.
async fn wait_drained(
    ctx: &Context,
    counter: impl Fn() -> u64,
    expected: u64,
    drain: Duration,
    what: &str,
) -> bool {
    let mut last = counter();
    let mut last_change = Instant::now();
    let mut last_print = Instant::now();
    loop {
        let now = counter();
        if now >= expected {
            return false;
        }
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() >= drain {
            ctx.progress.line(&format!(
                "{what} {now}/{expected}: nothing more for {:.1} s, stopping",
                drain.as_secs_f64()
            ));
            return false;
        }
        if ctx.remaining().is_zero() {
            ctx.progress.line(&format!("{what} {now}/{expected}: overall --timeout reached"));
            return true;
        }
        if last_print.elapsed() >= Duration::from_secs(1) {
            last_print = Instant::now();
            ctx.progress.line(&format!(
                "{what} {now}/{expected} ({:.1} %)",
                100.0 * now as f64 / expected.max(1) as f64
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One sender's work for one phase.
#[derive(Debug)]
struct SendJob {
    sender: u32,
    phase: Phase,
    count: u32,
    rate: Option<f64>,
    /// When the paced schedule starts, after the phase's start.
    offset: Duration,
    window: Option<u32>,
    size: usize,
    room: String,
    tag: String,
}

/// Batches this many bytes of frames per write at full speed.
const SEND_BATCH: usize = 16 * 1024;

async fn send(job: SendJob, writer: Writer, shared: Arc<Shared>) -> std::io::Result<()> {
    let started = Instant::now() + job.offset;
    let mut batch = Vec::with_capacity(SEND_BATCH + 1024);
    let mut text = String::new();
    let mut seq = 0u32;
    let phase_char = if job.phase == Phase::Warmup { 'w' } else { 'm' };
    while seq < job.count {
        // Messages due by now: all of them at full speed.
        let due = match job.rate {
            None => job.count,
            Some(r) => match Instant::now().checked_duration_since(started) {
                Some(e) => ((e.as_secs_f64() * r) as u64 + 1).min(u64::from(job.count)) as u32,
                // A staggered sender's schedule has not begun.
                None => 0,
            },
        };
        if due <= seq {
            let r = job.rate.expect("only paced sends wait");
            tokio::time::sleep_until((started + Duration::from_secs_f64(f64::from(seq) / r)).into()).await;
            continue;
        }
        // With a window, no more than `window` messages may await their ack.
        let due = match job.window {
            None => due,
            Some(w) => {
                let open = loop {
                    let notified = writer.settled_changed.notified();
                    let unsettled = writer
                        .sent
                        .load(Ordering::Relaxed)
                        .saturating_sub(writer.settled.load(Ordering::Relaxed));
                    if unsettled < u64::from(w) {
                        break u64::from(w) - unsettled;
                    }
                    notified.await;
                };
                due.min(seq.saturating_add(u32::try_from(open).unwrap_or(u32::MAX)))
            }
        };
        let first = seq;
        while seq < due && batch.len() < SEND_BATCH {
            let p = Payload { phase: job.phase, sender: job.sender, seq, sent_ns: shared.now_ns() };
            payload::encode(&mut text, &job.tag, &p, job.size);
            let cid = format!("{}{phase_char}{seq}", job.sender);
            shared.protocol.write_send(&mut batch, &job.room, &text, &cid);
            seq += 1;
        }
        writer.sent.fetch_add(u64::from(seq - first), Ordering::Relaxed);
        crate::conn::send(&mut *writer.writer.lock().await, &batch).await?;
        batch.clear();
    }
    Ok(())
}

/// Reads one connection until told to stop or the server closes it. `next_seq` is its
/// [`next_seq_table`].
async fn receive(
    mut reader: LineReader<ReadHalf>,
    writer: Writer,
    shared: Arc<Shared>,
    mut next_seq: Vec<u32>,
    mut stop: watch::Receiver<bool>,
) -> RecvStats {
    let mut st = RecvStats::default();
    let mut pongs: Vec<Vec<u8>> = Vec::new();
    // Lines that arrived with the handshake are handled before the first read.
    let mut now = shared.now_ns();
    'read: loop {
        let mut measured = 0u64;
        let mut warm = 0u64;
        let mut settled = 0u64;
        while let Some(line) = reader.next_line() {
            match shared.protocol.classify(line) {
                Incoming::Delivery(text) => match payload::decode(text, &shared.tag) {
                    // This run's message: owed here only if its sender is in this room.
                    Some(p) => match next_seq.get_mut(p.sender as usize) {
                        Some(next) if *next != OTHER_ROOM => {
                            if p.phase == Phase::Measured {
                                measured += 1;
                                st.latency.record_ns(now.saturating_sub(p.sent_ns));
                                if p.seq < *next {
                                    st.out_of_order += 1;
                                } else {
                                    *next = p.seq + 1;
                                }
                            } else {
                                warm += 1;
                            }
                        }
                        _ => st.foreign += 1,
                    },
                    None => st.foreign += 1,
                },
                Incoming::Ack => {
                    st.acks += 1;
                    settled += 1;
                }
                Incoming::Ping(reply) => pongs.push(reply),
                Incoming::Error(e) => {
                    settled += 1;
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                    shared.problem(format!("server error: {e}"));
                }
                Incoming::Bye(reason) => {
                    shared.disconnects.fetch_add(1, Ordering::Relaxed);
                    shared.problem(format!("server closed a session: {reason}"));
                    add_counts(&shared, &mut st, measured, warm, now);
                    break 'read;
                }
                Incoming::Other => {}
            }
        }
        add_counts(&shared, &mut st, measured, warm, now);
        if settled > 0 {
            writer.settled.fetch_add(settled, Ordering::Relaxed);
            writer.settled_changed.notify_one();
        }
        for reply in pongs.drain(..) {
            let _ = crate::conn::send(&mut *writer.writer.lock().await, &reply).await;
        }
        if let Some(ping) = reader.take_pong() {
            let _ = writer.writer.lock().await.pong(ping.as_slice()).await;
        }
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            r = reader.fill() => match r {
                Ok(0) | Err(_) => {
                    if !*stop.borrow() {
                        shared.disconnects.fetch_add(1, Ordering::Relaxed);
                        let why = reader.close_reason().unwrap_or_else(|| "without a reason".into());
                        shared.problem(format!("the server closed a connection: {why}"));
                    }
                    break;
                }
                Ok(_) => now = shared.now_ns(),
            },
        }
    }
    st
}

fn add_counts(shared: &Shared, st: &mut RecvStats, measured: u64, warm: u64, now: u64) {
    if measured > 0 {
        st.delivered += measured;
        st.last_ns = now;
        shared.delivered.fetch_add(measured, Ordering::Relaxed);
    }
    if warm > 0 {
        shared.warm_delivered.fetch_add(warm, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_room_keeps_its_name_several_are_numbered() {
        assert_eq!(room_names("#bench", 1), ["#bench"]);
        assert_eq!(room_names("#lobby", 3), ["#lobby-0", "#lobby-1", "#lobby-2"]);
    }

    #[test]
    fn receivers_expect_only_their_rooms_senders() {
        let layout = Layout { clients: 10, rooms: 4 };
        // Client 5 is in room 1, with senders 1 and 5 of 0..6.
        let table = next_seq_table(layout, 6, 5);
        let theirs: Vec<bool> = table.iter().map(|&n| n != OTHER_ROOM).collect();
        assert_eq!(theirs, [false, true, false, false, false, true]);
        assert!(next_seq_table(Layout { clients: 10, rooms: 1 }, 6, 9).iter().all(|&n| n == 0));
    }
}
