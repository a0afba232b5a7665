//! `natter bench soak`: many connections for a long time, paced chatter in many rooms, and a
//! few slow readers. The question is not speed but whether the server stays healthy: no loss
//! for the readers that keep up, memory that stays flat, descriptors that come back.
//!
//! Layout: `--clients` connections log in (so they are in the lobby, as every client is) and
//! each joins one of `--rooms` rooms, spread evenly (client `i` in room `i % rooms`). A pacer
//! sends `--rate` messages per second into every room, spoken by the room's members in turn
//! (one each per room-size messages, far below the server's message rate limit). Every member
//! checks that it gets every other member's messages once and in order (see [`tally`]), and
//! measures latency from the send time the text carries. `--slow` more clients join
//! `--slow-rooms` rooms each, read for `--slow-after` seconds and then stop: the server must
//! cut them without loss for anyone else. Every `--sample` seconds one line shows the server's
//! memory, descriptors and CPU, and the interval's deliveries, latency and losses; at the end
//! the bench closes every connection and checks that the server's descriptor count comes back
//! to where it was.

mod pacer;
mod reader;
mod sample;
mod slow;
pub mod tally;

use crate::Context;
use crate::conn::Session;
use crate::dialect::Protocol;
use crate::payload;
use crate::stats::{self, Latency, LatencySummary};
use anyhow::bail;
use reader::{Link, ReaderEnd, Shared};
use sample::{Probe, Sample};
use slow::{SlowEnd, SlowOutcome, SlowPlan};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Seconds the overall timeout allows beyond `--duration` when `--timeout` is not given:
/// setting up 15,000 connections, the slow readers' joins, the drain and the closing.
pub const TIMEOUT_MARGIN: f64 = 300.0;

/// Time kept back from the overall deadline for draining, closing and the report.
const TEARDOWN: Duration = Duration::from_secs(30);

/// Longest wait for the keeping-up readers to hand in their accounts once told to stop (they
/// stop at once unless a write to the server is stuck).
const COLLECT: Duration = Duration::from_secs(10);

/// Longest wait for the server's descriptor count to come back down after the bench closed
/// its connections.
const FDS_SETTLE: Duration = Duration::from_secs(15);

/// Options of the soak scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// Keeping-up clients (each in the lobby and one room).
    #[arg(short = 'n', long, default_value_t = 15_000)]
    pub clients: u32,
    /// Rooms; clients are spread evenly over them.
    #[arg(long, default_value_t = 150)]
    pub rooms: u32,
    /// Messages per second in each room.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Slow readers: extra clients that stop reading after --slow-after seconds.
    #[arg(long, default_value_t = 10)]
    pub slow: u32,
    /// Rooms each slow reader joins (at most --rooms), so that its backlog grows quickly.
    /// They join before the chatter starts, paced by the server's command budget: beyond
    /// the first 20 joins, two a second (150 rooms: about 65 s).
    #[arg(long, default_value_t = 150)]
    pub slow_rooms: u32,
    /// Seconds the slow readers read after the chatter starts, before they stop.
    #[arg(long, default_value_t = 5.0)]
    pub slow_after: f64,
    /// Seconds of chatter.
    #[arg(long, default_value_t = 600.0)]
    pub duration: f64,
    /// Seconds between progress lines.
    #[arg(long, default_value_t = 10.0)]
    pub sample: f64,
    /// Message text size in bytes (at least what the sequence and timestamp need).
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// After the chatter, stop waiting for deliveries once none arrived for this many
    /// seconds; also how long a slow reader waits for more bytes before it counts as not cut.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// Read buffer per connection, bytes (grown for longer lines).
    #[arg(long, default_value_t = 4096)]
    pub read_buffer: usize,
    /// Retries per failed connection while setting up.
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
}

/// The slow readers, summed up.
#[derive(Debug, Clone, Default)]
pub struct SlowSummary {
    /// Slow readers started.
    pub started: u32,
    /// Cut by the server.
    pub cut: u32,
    /// Still connected and delivering at the end.
    pub not_cut: u32,
    /// That never got going.
    pub failed: u32,
    /// The reason the server gave the first one it cut.
    pub first_reason: Option<String>,
    /// The first failure.
    pub first_failure: Option<String>,
    /// Rooms joined, all slow readers together.
    pub rooms_joined: usize,
    /// Seconds until the last one stopped reading (its joins done).
    pub stopped_after_max: Option<f64>,
    /// The largest backlog one read at the end, bytes (what the kernel's buffers held for
    /// it, and what the server sent before the goodbye).
    pub drained_bytes_max: u64,
}

/// Results of a soak run.
#[derive(Debug, Clone)]
pub struct SoakReport {
    /// The options used.
    pub args: SoakArgs,
    /// Server address as given.
    pub addr: String,
    /// Dialect spoken.
    pub protocol: Protocol,
    /// Keeping-up clients connected.
    pub connected: u64,
    /// Time to connect them all.
    pub setup: Duration,
    /// Messages sent, all rooms.
    pub sent: u64,
    /// Messages not sent (their sender's connection was gone).
    pub send_failures: u64,
    /// Deliveries due to the keeping-up readers still connected at the end.
    pub expected: u64,
    /// Of those, received (once, in order).
    pub delivered: u64,
    /// `expected - delivered`.
    pub lost: u64,
    /// Arrivals with a number already passed (duplicates or reordering).
    pub out_of_order: u64,
    /// Messages that reached a member of another room.
    pub misrouted: u64,
    /// Messages that were not this run's.
    pub foreign: u64,
    /// Acknowledgements received (native only).
    pub acks: u64,
    /// Keeping-up readers the server closed.
    pub disconnects: u64,
    /// Error frames received.
    pub errors: u64,
    /// The first thing that went wrong.
    pub first_problem: Option<String>,
    /// Latency over the whole chatter.
    pub latency: LatencySummary,
    /// The slow readers.
    pub slow: SlowSummary,
    /// Every progress line, the one at 0 s (all connected, before the chatter) first.
    pub samples: Vec<Sample>,
    /// The server's descriptors before the bench connected.
    pub fds_before: Option<u64>,
    /// Its descriptors after the bench closed every connection (and the server settled).
    pub fds_after: Option<u64>,
    /// Its resident memory before the bench connected, KiB.
    pub rss_before_kib: Option<u64>,
    /// Server CPU time during the chatter and drain.
    pub server_cpu: Option<stats::CpuTicks>,
    /// CPU time the bench used during the chatter and drain.
    pub bench_cpu: Duration,
    /// Worker threads of the bench.
    pub bench_threads: usize,
    /// From the first message to the last.
    pub chatter: Duration,
    /// The furthest the pacer fell behind its schedule.
    pub pacer_behind: Duration,
    /// Whether the overall timeout cut the run short.
    pub timed_out: bool,
}

impl SoakReport {
    /// Whether the keeping-up readers got everything: no loss, no duplicate or reordering,
    /// nothing misrouted, none of them cut.
    pub fn zero_loss(&self) -> bool {
        self.lost == 0
            && self.out_of_order == 0
            && self.misrouted == 0
            && self.disconnects == 0
            && self.send_failures == 0
            && self.errors == 0
    }

    /// The samples taken while the chatter ran (not the one before it).
    fn chatter_samples(&self) -> &[Sample] {
        self.samples.get(1..).unwrap_or_default()
    }

    /// Server RSS of the first and last chatter samples and the highest of all, KiB.
    pub fn rss_first_last_max(&self) -> Option<(u64, u64, u64)> {
        let rss: Vec<u64> = self.chatter_samples().iter().filter_map(|s| s.server.rss_kib).collect();
        Some((*rss.first()?, *rss.last()?, *rss.iter().max()?))
    }

    /// The printable and JSON forms.
    pub fn report(&self) -> crate::Report {
        let a = &self.args;
        let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
        let mut t = format!(
            "soak: {} clients in {} rooms (and the lobby), {} msg/s per room ({:.0} msg/s), {} slow readers \
             in {} rooms each, {} s, {} protocol, {}\n",
            a.clients,
            a.rooms,
            a.rate,
            a.rate * f64::from(a.rooms),
            a.slow,
            a.slow_rooms.min(a.rooms),
            a.duration,
            self.protocol.name(),
            self.addr
        );
        t += &format!("setup          {} connected in {:.1} s\n", self.connected, self.setup.as_secs_f64());
        t += &format!(
            "messages       {} sent in {:.1} s ({} not sent); pacer at most {:.0} ms behind schedule\n",
            self.sent,
            self.chatter.as_secs_f64(),
            self.send_failures,
            self.pacer_behind.as_secs_f64() * 1000.0
        );
        t += &format!(
            "deliveries     {} of {} expected: {} lost, {} out of order, {} misrouted, {} readers cut, {} errors\n",
            self.delivered,
            self.expected,
            self.lost,
            self.out_of_order,
            self.misrouted,
            self.disconnects,
            self.errors
        );
        t += &format!("latency        {}\n", self.latency.line());
        let s = &self.slow;
        t += &format!(
            "slow readers   {} of {} cut by the server, {} not cut, {} failed to start{}\n",
            s.cut,
            s.started,
            s.not_cut,
            s.failed,
            s.first_reason.as_ref().map(|r| format!(" (\"{r}\")")).unwrap_or_default()
        );
        match self.rss_first_last_max() {
            Some((first, last, max)) => {
                let before = self
                    .rss_before_kib
                    .map(|b| format!("{} before connecting, ", mib(b)))
                    .unwrap_or_default();
                t += &format!(
                    "server rss     {before}{} at the first sample, {} at the last ({:+.1} %), highest {}\n",
                    mib(first),
                    mib(last),
                    100.0 * (last as f64 - first as f64) / first.max(1) as f64,
                    mib(max)
                );
            }
            None => t += "server rss     not measured (pass --server-pid PID)\n",
        }
        if let Some(before) = self.fds_before {
            let peak = self.samples.iter().filter_map(|s| s.server.fds).max().unwrap_or(before);
            let after = self.fds_after.map_or("unknown (the server is gone)".into(), |f| f.to_string());
            let verdict = match self.fds_after {
                Some(f) if f <= before => "back to the baseline",
                Some(_) => "NOT back to the baseline",
                None => "",
            };
            t += &format!(
                "server fds     {before} before connecting, {peak} at most, {after} after closing: {verdict}\n"
            );
        }
        if let Some(cpu) = self.server_cpu {
            let secs = self.chatter.as_secs_f64().max(1e-9);
            t += &format!(
                "server cpu     {:.1} s during the chatter ({:.1} % of a core); {} deliveries per server CPU-second\n",
                cpu.seconds(),
                100.0 * cpu.seconds() / secs,
                if cpu.seconds() > 0.0 {
                    format!("{:.0}", self.delivered as f64 / cpu.seconds())
                } else {
                    "n/a".into()
                }
            );
        }
        t += &format!(
            "bench cpu      {:.1} s on {} thread(s)\n",
            self.bench_cpu.as_secs_f64(),
            self.bench_threads
        );
        if self.foreign > 0 {
            t += &format!("note           {} messages from others were ignored\n", self.foreign);
        }
        if let Some(f) = &s.first_failure {
            t += &format!("slow failure   {f}\n");
        }
        if let Some(p) = &self.first_problem {
            t += &format!("first problem  {p}\n");
            if p.contains("rate") || p.contains("flood") {
                t += "hint           the server rate-limits senders: lower --rate or --rooms per client, \
                      or run it with natter serve --msg-rate 0\n";
            }
        }
        t += &format!(
            "verdict        {}{}\n",
            if self.zero_loss() {
                "zero loss for the keeping-up readers"
            } else {
                "LOSS or trouble for keeping-up readers"
            },
            if self.timed_out { " (TIMED OUT: raise --timeout)" } else { "" }
        );
        let rss = self.rss_first_last_max();
        let json = serde_json::json!({
            "scenario": "soak",
            "addr": self.addr,
            "protocol": self.protocol.name(),
            "clients": a.clients,
            "rooms": a.rooms,
            "rate": a.rate,
            "slow": a.slow,
            "slow_rooms": a.slow_rooms.min(a.rooms),
            "slow_after_s": a.slow_after,
            "duration_s": a.duration,
            "sample_s": a.sample,
            "size": a.size,
            "connected": self.connected,
            "setup_s": self.setup.as_secs_f64(),
            "sent": self.sent,
            "send_failures": self.send_failures,
            "chatter_s": self.chatter.as_secs_f64(),
            "pacer_behind_ms": self.pacer_behind.as_secs_f64() * 1000.0,
            "expected": self.expected,
            "delivered": self.delivered,
            "lost": self.lost,
            "out_of_order": self.out_of_order,
            "misrouted": self.misrouted,
            "foreign": self.foreign,
            "acks": self.acks,
            "disconnects": self.disconnects,
            "errors": self.errors,
            "first_problem": self.first_problem,
            "zero_loss": self.zero_loss(),
        });
        // Two objects: one would exceed the macro's recursion limit.
        let server = serde_json::json!({
            "latency": self.latency.json(),
            "slow_readers": {
                "started": s.started,
                "cut": s.cut,
                "not_cut": s.not_cut,
                "failed": s.failed,
                "first_reason": s.first_reason,
                "first_failure": s.first_failure,
                "rooms_joined": s.rooms_joined,
                "stopped_after_max_s": s.stopped_after_max,
                "drained_bytes_max": s.drained_bytes_max,
            },
            "server_rss_before_kib": self.rss_before_kib,
            "server_rss_first_kib": rss.map(|r| r.0),
            "server_rss_last_kib": rss.map(|r| r.1),
            "server_rss_max_kib": rss.map(|r| r.2),
            "server_fds_before": self.fds_before,
            "server_fds_after": self.fds_after,
            "server_cpu_s": self.server_cpu.map(|c| c.seconds()),
            "bench_cpu_s": self.bench_cpu.as_secs_f64(),
            "bench_threads": self.bench_threads,
            "timed_out": self.timed_out,
            "samples": self.samples.iter().map(Sample::json).collect::<Vec<_>>(),
        });
        let mut json = json;
        if let (Some(all), serde_json::Value::Object(more)) = (json.as_object_mut(), server) {
            all.extend(more);
        }
        crate::Report { text: t, json }
    }
}

/// Checked durations of the options.
struct Times {
    duration: Duration,
    sample: Duration,
    slow_after: Duration,
    drain: Duration,
}

fn check(ctx: &Context, args: &SoakArgs) -> anyhow::Result<Times> {
    if args.clients < 2 {
        bail!("soak needs at least 2 clients (-n)");
    }
    if args.rooms == 0 || args.rooms > args.clients / 2 {
        bail!(
            "--rooms must be between 1 and half of --clients ({}): every room needs two members",
            args.clients / 2
        );
    }
    if args.clients > payload::MAX_SENDERS {
        bail!("at most {} clients (-n)", payload::MAX_SENDERS);
    }
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        bail!("--rate must be a positive number of messages per second per room");
    }
    let times = Times {
        duration: crate::secs("--duration", args.duration)?,
        sample: crate::secs("--sample", args.sample)?,
        slow_after: crate::secs("--slow-after", args.slow_after)?,
        drain: crate::secs("--drain", args.drain)?,
    };
    if times.sample < Duration::from_millis(100) {
        bail!("--sample must be at least 0.1 seconds");
    }
    if args.rate * args.duration > f64::from(payload::MAX_SEQ) {
        bail!("--rate x --duration must stay below {} messages per room", payload::MAX_SEQ);
    }
    if args.slow > 0 && args.slow_rooms == 0 {
        bail!("--slow-rooms must be at least 1 when there are slow readers");
    }
    let needed = times.duration + TEARDOWN;
    if ctx.remaining() < needed {
        bail!(
            "--timeout ({:.0} s) leaves too little time for --duration ({:.0} s): give at least {:.0} s, \
             or leave --timeout out (it then defaults to --duration + {TIMEOUT_MARGIN:.0} s)",
            ctx.common.timeout.unwrap_or_default(),
            args.duration,
            needed.as_secs_f64() + 60.0
        );
    }
    Ok(times)
}

/// Runs the scenario.
pub async fn run(ctx: &Context, args: &SoakArgs) -> anyhow::Result<SoakReport> {
    let times = check(ctx, args)?;
    stats::raise_file_limit(u64::from(args.clients) + u64::from(args.slow) + 64)?;
    let pid = ctx.common.single_pid()?;
    if let Some(pid) = pid {
        stats::count_fds(pid)?;
        stats::read_rss_kib(pid)?;
    } else {
        ctx.progress.line("no --server-pid: the server's memory, descriptors and CPU are not measured");
    }
    let mut probe = Probe::new(pid);
    let (before, _) = probe.read();
    let rooms: Vec<String> = (0..args.rooms).map(|r| format!("#{}-{r}", ctx.tag)).collect();
    let layout = crate::layout::Layout { clients: args.clients, rooms: args.rooms };
    let room_of = |i: usize| layout.room(i as u32) as usize;
    let shared = Arc::new(Shared::new(ctx.common.protocol, &ctx.tag));
    let (stop_tx, stop_rx) = watch::channel(false);

    // Set up: every client logs in, joins its room and starts reading at once.
    ctx.progress
        .line(&format!("opening {} connections to {}, {} rooms", args.clients, ctx.target.addr, args.rooms));
    let reader_shared = shared.clone();
    let opened = crate::conn::open_many_in(
        &ctx.target,
        |i| rooms[room_of(i)].clone(),
        args.clients as usize,
        |i| ctx.nick(i),
        args.read_buffer,
        ctx.common.connect_concurrency,
        args.retries,
        ctx.deadline,
        &ctx.progress,
        move |i, (reader, writer): Session| {
            let link = Arc::new(Link::new(i as u32, writer));
            let task = tokio::spawn(reader::keep_up(
                reader,
                link.clone(),
                reader_shared.clone(),
                layout,
                stop_rx.clone(),
            ));
            (task, link)
        },
    )
    .await;
    if let Some(first) = opened.failures.first() {
        let _ = stop_tx.send(true);
        bail!("{} of {} connections failed; first: {first}", opened.failures.len(), args.clients);
    }
    let mut members: Vec<Vec<Arc<Link>>> = vec![Vec::new(); rooms.len()];
    let mut readers = Vec::with_capacity(args.clients as usize);
    for (i, (task, link)) in opened.sessions.into_iter().flatten().enumerate() {
        members[room_of(i)].push(link.clone());
        readers.push((room_of(i), link, task));
    }
    let connected = readers.len() as u64;
    ctx.progress.line(&format!(
        "{connected} clients in {} rooms after {:.1} s",
        rooms.len(),
        opened.elapsed.as_secs_f64()
    ));

    // The slow readers join their rooms while the rooms are quiet.
    let (chatter_tx, chatter_rx) = watch::channel(None);
    let (joined_tx, mut joined_rx) = tokio::sync::mpsc::channel(1);
    let slow_tasks: Vec<_> = (0..args.slow)
        .map(|j| {
            let plan = SlowPlan {
                target: crate::conn::Target { room: crate::dialect::LOBBY.into(), ..ctx.target.clone() },
                nick: ctx.nick(args.clients as usize + j as usize),
                rooms: slow_rooms(j, args.slow_rooms, args.rooms).map(|r| rooms[r].clone()).collect(),
                read_for: times.slow_after,
                quiet: times.drain,
                deadline: ctx.deadline,
            };
            let signals = slow::Signals {
                joined: joined_tx.clone(),
                chatter: chatter_rx.clone(),
                stop: stop_tx.subscribe(),
            };
            tokio::spawn(slow::slow_reader(plan, signals))
        })
        .collect();
    drop(joined_tx);
    if args.slow > 0 {
        ctx.progress.line(&format!(
            "{} slow readers joining {} rooms each",
            args.slow,
            args.slow_rooms.min(args.rooms)
        ));
        // Every slow reader drops its sender once in (or failed): then this returns None.
        let wait = ctx.remaining().saturating_sub(times.duration + TEARDOWN);
        let _ = tokio::time::timeout(wait, joined_rx.recv()).await;
    }

    // The chatter and the samples.
    let chatter_start = Instant::now();
    let _ = chatter_tx.send(Some(chatter_start));
    let mut sampler = Sampler {
        shared: &shared,
        probe,
        out: SampleOut { json: ctx.common.json, progress: ctx.progress.clone() },
        started: chatter_start,
        last: Counters::read(&shared),
        samples: Vec::new(),
        total: Latency::new(),
    };
    sampler.out.print(Sample::header());
    sampler.take(false);
    let cpu_before = pid.and_then(|p| stats::CpuTicks::read(p).ok());
    let own_before = stats::own_cpu();

    let plan = pacer::Plan {
        rooms: rooms.clone(),
        rate: args.rate,
        duration: times.duration,
        size: args.size,
        tag: ctx.tag.clone(),
    };
    let pacer_deadline = ctx.deadline.checked_sub(TEARDOWN).unwrap_or(ctx.deadline);
    let mut pacer = tokio::spawn(pacer::chatter(plan, members.clone(), shared.clone(), pacer_deadline));
    let mut next_sample = chatter_start + times.sample;
    let chatter = loop {
        tokio::select! {
            done = &mut pacer => match done {
                Ok(chatter) => break chatter,
                Err(e) => {
                    let _ = stop_tx.send(true);
                    bail!("the pacer task failed: {e}");
                }
            },
            _ = tokio::time::sleep_until(next_sample.into()) => {
                sampler.take(false);
                next_sample += times.sample;
            }
        }
    };

    // Drain: wait until every delivery due arrived, or none came for a while.
    let due: u64 = chatter
        .room_sent
        .iter()
        .zip(&members)
        .map(|(&sent, m)| sent * (m.len() as u64).saturating_sub(1))
        .sum();
    let acks_due: u64 = chatter.room_sent.iter().sum();
    let timed_out = wait_drained(ctx, &shared, (due, acks_due), times.drain).await;
    sampler.take(true);
    let cpu_after = pid.and_then(|p| stats::CpuTicks::read(p).ok());
    let bench_cpu = stats::own_cpu().saturating_sub(own_before);

    // Stop: slow readers look at their backlog, keeping-up readers hand in their accounts.
    let _ = stop_tx.send(true);
    let mut slow = SlowSummary { started: args.slow, ..SlowSummary::default() };
    let slow_wait = times.drain + Duration::from_secs(30);
    for task in slow_tasks {
        let end = match tokio::time::timeout(slow_wait.min(ctx.remaining()), task).await {
            Ok(Ok(end)) => end,
            _ => SlowEnd {
                joined: 0,
                stopped_after: None,
                drained_bytes: 0,
                outcome: SlowOutcome::Failed("did not finish reading its backlog in time".into()),
            },
        };
        slow.add(end);
    }
    let mut accounts = Accounts::default();
    let collect_by = Instant::now() + COLLECT;
    for (room, link, task) in readers {
        let Ok(Ok(end)) = tokio::time::timeout_at(collect_by.into(), task).await else {
            shared.problem(|| "a reader did not hand in its account".into());
            continue;
        };
        accounts.add(&end, chatter.room_sent[room], u64::from(link.sent.load(Ordering::Relaxed)));
    }
    // Every connection of the bench is closed now that the links are gone too.
    drop(members);
    let fds_after = settle_fds(ctx, &sampler.probe, before.fds).await;

    let first_problem = shared.first_problem.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(SoakReport {
        args: args.clone(),
        addr: ctx.common.addr.clone(),
        protocol: ctx.common.protocol,
        connected,
        setup: opened.elapsed,
        sent: chatter.room_sent.iter().sum(),
        send_failures: chatter.failed,
        expected: accounts.expected,
        delivered: accounts.delivered,
        lost: accounts.lost,
        out_of_order: accounts.out_of_order,
        misrouted: accounts.misrouted,
        foreign: accounts.foreign,
        acks: accounts.acks,
        disconnects: shared.disconnects.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
        first_problem,
        latency: sampler.total.summary(),
        slow,
        samples: sampler.samples,
        fds_before: before.fds,
        fds_after,
        rss_before_kib: before.rss_kib,
        server_cpu: cpu_before.zip(cpu_after).map(|(b, a)| a.since(b)),
        bench_cpu,
        bench_threads: ctx.threads,
        chatter: chatter.elapsed,
        pacer_behind: chatter.max_behind,
        timed_out,
    })
}

/// The keeping-up readers' accounts, summed.
#[derive(Debug, Default)]
struct Accounts {
    expected: u64,
    delivered: u64,
    lost: u64,
    out_of_order: u64,
    misrouted: u64,
    foreign: u64,
    acks: u64,
}

impl Accounts {
    /// Adds one reader's account; its room sent `room_sent` messages, `own_sent` of them its
    /// own. A reader the server closed has no expectation past that point: it is counted
    /// among the disconnects instead.
    fn add(&mut self, end: &ReaderEnd, room_sent: u64, own_sent: u64) {
        self.out_of_order += end.tally.counts.out_of_order;
        self.misrouted += end.misrouted;
        self.foreign += end.foreign;
        self.acks += end.acks;
        if end.disconnected.is_none() {
            self.expected += tally::Tally::expected(room_sent, own_sent);
            self.delivered += end.tally.counts.unique;
            self.lost += end.tally.lost(room_sent, own_sent);
        }
    }
}

impl SlowSummary {
    fn add(&mut self, end: SlowEnd) {
        self.rooms_joined += end.joined;
        self.drained_bytes_max = self.drained_bytes_max.max(end.drained_bytes);
        if let Some(s) = end.stopped_after {
            self.stopped_after_max = Some(self.stopped_after_max.map_or(s, |m: f64| m.max(s)));
        }
        match end.outcome {
            SlowOutcome::Cut(reason) => {
                self.cut += 1;
                if self.first_reason.is_none() {
                    self.first_reason = reason;
                }
            }
            SlowOutcome::NotCut => self.not_cut += 1,
            SlowOutcome::Failed(why) => {
                self.failed += 1;
                self.first_failure.get_or_insert(why);
            }
        }
    }
}

/// The rooms slow reader `j` joins: `count` of the `rooms` (all of them when `count` is as
/// many), starting at a different room for each reader so that they spread.
fn slow_rooms(j: u32, count: u32, rooms: u32) -> impl Iterator<Item = usize> {
    let count = count.min(rooms);
    (0..count).map(move |k| ((u64::from(j) * u64::from(count) + u64::from(k)) % u64::from(rooms)) as usize)
}

/// The shared counters at one instant.
#[derive(Debug, Clone, Copy)]
struct Counters {
    unique: u64,
    out_of_order: u64,
    gaps: u64,
    disconnects: u64,
}

impl Counters {
    fn read(shared: &Shared) -> Self {
        Self {
            unique: shared.unique.load(Ordering::Relaxed),
            out_of_order: shared.out_of_order.load(Ordering::Relaxed),
            gaps: shared.gaps.load(Ordering::Relaxed),
            disconnects: shared.disconnects.load(Ordering::Relaxed),
        }
    }

    /// Every bench message received.
    fn arrivals(&self) -> u64 {
        self.unique + self.out_of_order
    }
}

/// Takes the progress lines: reads the server and the shared counters, prints a line, and
/// keeps it with the interval's latency added to the whole run's.
struct Sampler<'a> {
    shared: &'a Shared,
    probe: Probe,
    out: SampleOut,
    /// When the chatter started: sample times count from here.
    started: Instant,
    /// The counters at the previous sample.
    last: Counters,
    samples: Vec<Sample>,
    /// Latency of every interval so far.
    total: Latency,
}

impl Sampler<'_> {
    /// Takes a sample; `end` for the one after the drain.
    fn take(&mut self, end: bool) {
        let now = Counters::read(self.shared);
        let latency = self.shared.take_latency();
        self.total.merge(&latency);
        let (server, bench_pct) = self.probe.read();
        let elapsed = self.started.elapsed();
        let previous = self.samples.last().map_or(elapsed, |s| Duration::from_secs_f64(s.elapsed_s));
        let mut s = Sample::new(
            elapsed,
            elapsed.saturating_sub(previous),
            server,
            bench_pct,
            now.arrivals() - self.last.arrivals(),
            &latency,
            now.gaps,
            now.disconnects,
        );
        s.end = end;
        self.out.print(&s.line());
        self.samples.push(s);
        self.last = now;
    }
}

/// Where the progress lines go: standard output, unless it carries the JSON report (then
/// standard error, like the other progress, and not at all with `--quiet`).
struct SampleOut {
    json: bool,
    progress: crate::Progress,
}

impl SampleOut {
    fn print(&self, line: &str) {
        if self.json {
            self.progress.line(line);
        } else {
            println!("{line}");
        }
    }
}

/// Waits until `due` deliveries arrived in order and the senders got `acks_due`
/// acknowledgements (which come once their messages are stored, after the deliveries), until
/// none of either came for `drain`, or until the deadline passes (then returns true).
async fn wait_drained(ctx: &Context, shared: &Shared, (due, acks_due): (u64, u64), drain: Duration) -> bool {
    let progress = || (shared.unique.load(Ordering::Relaxed), shared.acks.load(Ordering::Relaxed));
    let mut last = progress();
    let mut last_change = Instant::now();
    loop {
        let now = progress();
        if now.0 >= due && now.1 >= acks_due {
            return false;
        }
        if now != last {
            (last, last_change) = (now, Instant::now());
        } else if last_change.elapsed() >= drain {
            ctx.progress.line(&format!(
                "{} deliveries of {due} and {} acknowledgements of {acks_due} due: nothing more for {:.1} s, stopping",
                now.0,
                now.1,
                drain.as_secs_f64()
            ));
            return false;
        }
        if ctx.remaining() <= TEARDOWN / 2 {
            ctx.progress.line(&format!(
                "{} deliveries of {due} and {} acknowledgements of {acks_due} due: overall --timeout reached",
                now.0, now.1
            ));
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for the server's descriptor count to come back to `baseline` after the bench
/// closed its connections (the server notices each close on its own time), and returns the
/// count it settled at.
async fn settle_fds(ctx: &Context, probe: &Probe, baseline: Option<u64>) -> Option<u64> {
    let baseline = baseline?;
    let until = Instant::now() + FDS_SETTLE.min(ctx.remaining());
    loop {
        let fds = probe.fds()?;
        if fds <= baseline || Instant::now() >= until {
            return Some(fds);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_readers_spread_over_the_rooms() {
        // As many rooms as there are: every room, once.
        let mut all: Vec<usize> = slow_rooms(3, 200, 150).collect();
        all.sort_unstable();
        assert_eq!(all, (0..150).collect::<Vec<_>>());
        // Fewer: consecutive rooms, a different stretch for each reader, wrapping around.
        assert_eq!(slow_rooms(0, 4, 10).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!(slow_rooms(1, 4, 10).collect::<Vec<_>>(), [4, 5, 6, 7]);
        assert_eq!(slow_rooms(2, 4, 10).collect::<Vec<_>>(), [8, 9, 0, 1]);
    }

    #[test]
    fn accounts_leave_out_readers_the_server_dropped() {
        let mut kept = ReaderEnd { tally: tally::Tally::new(3), ..ReaderEnd::default() };
        for seq in 0..4 {
            kept.tally.record(0, seq);
        }
        let dropped =
            ReaderEnd { disconnected: Some("too slow".into()), misrouted: 1, ..ReaderEnd::default() };
        let mut a = Accounts::default();
        // Room sent 10: 4 by member 0, 1 by this reader, 5 by member 2, none of them received.
        a.add(&kept, 10, 1);
        a.add(&dropped, 10, 2);
        assert_eq!((a.expected, a.delivered, a.lost, a.misrouted), (9, 4, 5, 1));
    }
}
