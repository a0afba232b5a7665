//! `natter bench connect`: many short sessions (connect, log in, quit), C at a time.
//!
//! Measures how many registrations per second the server completes, and how long one takes
//! (from starting to connect until the login is confirmed). Each session waits for the
//! server to close after `quit`, so the closing side's TIME_WAIT lands on the server and
//! the bench does not run out of local ports.

use crate::Context;
use crate::stats::{self, Latency, LatencySummary};
use anyhow::bail;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Options of the connect scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Registrations in total.
    #[arg(short = 'n', long, default_value_t = 20_000)]
    pub total: u64,
    /// Sessions in flight at once.
    #[arg(short = 'c', long, default_value_t = 64)]
    pub concurrency: u32,
}

/// Results of a connect run.
#[derive(Debug, Clone)]
pub struct ConnectReport {
    /// The options used.
    pub args: ConnectArgs,
    /// Server address as given.
    pub addr: String,
    /// Registrations completed (login confirmed).
    pub registered: u64,
    /// Sessions that failed.
    pub failed: u64,
    /// The first failure, if any.
    pub first_failure: Option<String>,
    /// Time for all of them.
    pub elapsed: Duration,
    /// Whether the overall timeout cut the run short.
    pub timed_out: bool,
    /// Connect-to-login latency.
    pub latency: LatencySummary,
    /// CPU time the bench itself used.
    pub bench_cpu: Duration,
    /// Server CPU time during the run, when `--server-pid` was given.
    pub server_cpu: Option<stats::CpuTicks>,
    /// Worker threads of the bench.
    pub bench_threads: usize,
}

impl ConnectReport {
    /// Registrations per second.
    pub fn rate(&self) -> f64 {
        self.registered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The printable and JSON forms.
    pub fn report(&self) -> crate::Report {
        let mut t = format!(
            "connect: {} sessions, {} at a time, to {}\n",
            self.args.total, self.args.concurrency, self.addr
        );
        t += &format!(
            "registrations  {} done, {} failed in {:.3} s{}\n",
            self.registered,
            self.failed,
            self.elapsed.as_secs_f64(),
            if self.timed_out { " (TIMED OUT)" } else { "" }
        );
        t += &format!("registrations/s {:.0}\n", self.rate());
        t += &format!("latency        {}\n", self.latency.line());
        if let Some(cpu) = self.server_cpu {
            let per = if cpu.seconds() > 0.0 { self.registered as f64 / cpu.seconds() } else { 0.0 };
            t += &format!(
                "server cpu     {:.2} s: {per:.0} registrations per server CPU-second\n",
                cpu.seconds()
            );
        }
        let load =
            self.bench_cpu.as_secs_f64() / (self.elapsed.as_secs_f64() * self.bench_threads as f64).max(1e-9);
        t += &format!(
            "bench cpu      {:.3} s on {} thread(s), {:.0} % of its capacity{}\n",
            self.bench_cpu.as_secs_f64(),
            self.bench_threads,
            100.0 * load,
            if load > 0.9 { ": the bench may be the bottleneck" } else { "" }
        );
        if let Some(f) = &self.first_failure {
            t += &format!("first failure  {f}\n");
        }
        let json = serde_json::json!({
            "scenario": "connect",
            "addr": self.addr,
            "total": self.args.total,
            "concurrency": self.args.concurrency,
            "registered": self.registered,
            "failed": self.failed,
            "first_failure": self.first_failure,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "timed_out": self.timed_out,
            "registrations_per_s": self.rate(),
            "latency": self.latency.json(),
            "bench_cpu_s": self.bench_cpu.as_secs_f64(),
            "server_cpu_s": self.server_cpu.map(|c| c.seconds()),
            "bench_threads": self.bench_threads,
        });
        crate::Report { text: t, json }
    }
}

/// Runs the scenario.
pub async fn run(ctx: &Context, args: &ConnectArgs) -> anyhow::Result<ConnectReport> {
    if ctx.target.tls.is_some() {
        anyhow::bail!("connect measures plain connections only; run it without --tls");
    }
    if args.concurrency == 0 || args.total == 0 {
        bail!("--total and --concurrency must be at least 1");
    }
    stats::raise_file_limit(u64::from(args.concurrency) + 64)?;
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let first_failure = Arc::new(Mutex::new(None::<String>));
    let started = Instant::now();
    let own_before = stats::own_cpu();
    let cpu_before = stats::cpu_total(&ctx.common.server_pid)?;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (next, done, first_failure, ctx) =
            (next.clone(), done.clone(), first_failure.clone(), ctx.clone());
        let total = args.total;
        set.spawn(async move {
            let mut latency = Latency::new();
            let mut failed = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || ctx.remaining().is_zero() {
                    break;
                }
                match one(&ctx, &ctx.nick(i as usize)).await {
                    Ok(took) => {
                        latency.record(took);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        failed += 1;
                        first_failure.lock().expect("not poisoned").get_or_insert(format!("{e:#}"));
                    }
                }
            }
            (latency, failed)
        });
    }
    let mut latency = Latency::new();
    let mut failed = 0;
    let mut last_print = Instant::now();
    let mut timed_out = false;
    loop {
        let remaining = ctx.remaining();
        let joined = tokio::time::timeout(remaining.min(Duration::from_millis(200)), set.join_next()).await;
        match joined {
            Ok(None) => break,
            Ok(Some(Ok((l, f)))) => {
                latency.merge(&l);
                failed += f;
            }
            Ok(Some(Err(e))) => {
                first_failure.lock().expect("not poisoned").get_or_insert(format!("worker failed: {e}"));
            }
            Err(_) if remaining.is_zero() => {
                timed_out = true;
                set.abort_all();
                break;
            }
            Err(_) => {}
        }
        if last_print.elapsed() >= Duration::from_secs(1) {
            last_print = Instant::now();
            ctx.progress.line(&format!("registered {}/{}", done.load(Ordering::Relaxed), args.total));
        }
    }
    let elapsed = started.elapsed();
    let cpu_after = stats::cpu_total(&ctx.common.server_pid)?;
    let first_failure = first_failure.lock().expect("not poisoned").clone();
    Ok(ConnectReport {
        args: args.clone(),
        addr: ctx.common.addr.clone(),
        registered: done.load(Ordering::Relaxed),
        failed,
        first_failure,
        elapsed,
        timed_out: timed_out || ctx.remaining().is_zero() && done.load(Ordering::Relaxed) < args.total,
        latency: latency.summary(),
        bench_cpu: stats::own_cpu().saturating_sub(own_before),
        bench_threads: ctx.threads,
        server_cpu: cpu_before.zip(cpu_after).map(|(b, a)| a.since(b)),
    })
}

/// One session: returns the time from starting to connect until the login was confirmed.
async fn one(ctx: &Context, nick: &str) -> anyhow::Result<Duration> {
    let limit = ctx.target.handshake_timeout.min(ctx.remaining());
    let p = ctx.target.protocol;
    let started = Instant::now();
    let session = async {
        let (mut reader, mut write) = crate::conn::connect(&ctx.target, nick, 4096).await?;
        write.send(&p.login(nick)).await?;
        crate::conn::handshake(&mut reader, &mut write, nick, "login", |line| p.login_step(line)).await?;
        let took = started.elapsed();
        write.send(&p.quit()).await?;
        // Wait (briefly) for the server to close first; see the module comment.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while !matches!(reader.fill().await, Ok(0) | Err(_)) {
                while reader.next_line().is_some() {}
            }
        })
        .await;
        anyhow::Ok(took)
    };
    tokio::time::timeout(limit, session)
        .await
        .map_err(|_| anyhow::anyhow!("{nick}: no login answer within {limit:?}"))?
}
