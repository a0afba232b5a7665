//! `natter bench`: a load generator for a running natter server (native protocol) or, for
//! comparison, any IRC server.
//!
//! Four scenarios, each in its own module:
//! - [`fanout`]: N clients in one room (or spread over R rooms), S of them send M messages
//!   each; measures deliveries, losses, throughput, deliveries per server CPU-second and
//!   latency.
//! - [`idle`]: N logged-in, silent connections; measures server memory per connection.
//! - [`connect`]: many short sessions; measures registrations per second.
//! - [`soak`]: thousands of clients for many minutes, paced chatter in many rooms and a few
//!   slow readers; checks zero loss for the readers that keep up, flat server memory and no
//!   descriptor leak.
//!
//! The server's flood limits must be raised for the fanout scenario (for natter, e.g.
//! `natter serve --msg-rate 0`), otherwise the measured losses are the limiter's doing.

pub mod conn;
pub mod connect;
pub mod dialect;
pub mod fanout;
pub mod idle;
pub mod layout;
pub mod payload;
pub mod soak;
pub mod stats;
pub mod websocket;

use anyhow::Context as _;
use dialect::Protocol;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Command-line arguments of `natter bench`: options shared by every scenario, then the
/// scenario. Shared options may be given before or after the scenario name.
#[derive(Debug, clap::Args)]
#[command(
    about = "Load-test a running natter (or IRC) server",
    after_help = "The server must run with its flood limits raised (natter: `natter serve --msg-rate 0`), \
        otherwise fanout losses measure its rate limiter. Pin server and bench to different cores \
        (`taskset -c 0 natter serve ...`, `taskset -c 1 natter bench ...`) and pass --server-pid.",
    long_about = "Load-test a running natter (or IRC) server.\n\n\
        Run the server with its flood limits raised (natter: `natter serve --msg-rate 0`), \
        otherwise fanout losses measure the rate limiter. For comparable numbers pin the server \
        and the bench to different cores, e.g. `taskset -c 0 natter serve ...` and \
        `taskset -c 1 natter bench ...`, and pass --server-pid to count the server's CPU time."
)]
pub struct Args {
    /// Options shared by all scenarios.
    #[command(flatten)]
    pub common: Common,
    /// The scenario to run.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// Options shared by all scenarios.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Server address, HOST:PORT; several, comma-separated, spread the connections over the
    /// nodes of a cluster (connection i goes to address i modulo their number).
    #[arg(long, global = true, default_value = "127.0.0.1:7878")]
    pub addr: String,
    /// Wire dialect: natter's native JSON frames, IRC, or either over WebSocket (`ws`: JSON
    /// frames on `GET /ws`; `ws-irc`: IRC with the `text.ircv3.net` subprotocol).
    #[arg(long, visible_alias = "proto", global = true, value_enum, default_value_t = Protocol::Native)]
    pub protocol: Protocol,
    /// Room to use (native sessions start in #lobby; another room is joined explicitly).
    #[arg(long, global = true, default_value = dialect::LOBBY)]
    pub room: String,
    /// PID of the server process, to read its CPU time and memory from /proc. `fanout` takes
    /// several, comma-separated (a cluster's nodes), and adds up their CPU time.
    #[arg(long, global = true, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Print one JSON object with the results instead of the summary lines.
    #[arg(long, global = true)]
    pub json: bool,
    /// Stop after this many seconds in total, whatever happens [default: 120; soak:
    /// its --duration + 300].
    #[arg(long, global = true)]
    pub timeout: Option<f64>,
    /// Nickname prefix; default: a tag unique to this run.
    #[arg(long, global = true)]
    pub nick_prefix: Option<String>,
    /// Worker threads of the load generator; default: the CPUs this process may run on.
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Connections opened concurrently while setting up.
    #[arg(long, global = true, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// No progress lines on stderr.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// Connect over TLS (natter serve --tls-cert). Without --tls-fingerprint any certificate is
    /// accepted, which only a server on this machine (loopback) is allowed.
    #[arg(long, global = true)]
    pub tls: bool,
    /// Accept exactly the server certificate with this SHA-256 fingerprint; implies --tls.
    #[arg(long, global = true, value_name = "SHA256")]
    pub tls_fingerprint: Option<String>,
}

impl Common {
    /// The one server PID of a scenario that measures one process (its memory, its
    /// descriptors): refuses several.
    pub fn single_pid(&self) -> anyhow::Result<Option<u32>> {
        match self.server_pid.as_slice() {
            [] => Ok(None),
            [pid] => Ok(Some(*pid)),
            _ => anyhow::bail!("this scenario measures one server process: give one --server-pid"),
        }
    }

    /// Worker threads to run: `--threads`, else the CPUs this process may run on (which
    /// honours `taskset`).
    pub fn worker_threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
            .max(1)
    }
}

/// The TLS client `--tls`/`--tls-fingerprint` ask for: pinned to the fingerprint, or any
/// certificate for a server on this machine (a bench measures, it does not authenticate).
fn bench_tls(common: &Common, addr: SocketAddr) -> anyhow::Result<Option<natter_client::tls::ClientTls>> {
    use natter_client::tls::{ClientTls, Trust};
    let trust = match (&common.tls_fingerprint, common.tls) {
        (Some(text), _) => {
            Trust::Fingerprint(natter_proto::fingerprint::parse_sha256(text).with_context(|| {
                format!("--tls-fingerprint {text:?} is not a SHA-256 fingerprint (AA:BB:..., 64 hex digits)")
            })?)
        }
        (None, true) if addr.ip().to_canonical().is_loopback() => Trust::Anything,
        (None, true) => anyhow::bail!(
            "--tls without --tls-fingerprint accepts any certificate, which is only allowed for a server on \
             this machine; give the fingerprint natter serve prints"
        ),
        (None, false) => return Ok(None),
    };
    Ok(Some(ClientTls::new(&addr.to_string(), trust)?))
}

/// The scenarios.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Scenario {
    /// N clients in one room (or R rooms), S senders, M messages each: deliveries, loss,
    /// throughput, latency.
    Fanout(fanout::FanoutArgs),
    /// N silent connections held open: server memory per connection.
    Idle(idle::IdleArgs),
    /// Many short sessions (connect, log in, quit): registrations per second.
    Connect(connect::ConnectArgs),
    /// Many clients for many minutes, paced chatter in many rooms, a few slow readers: loss,
    /// server memory and descriptors over time.
    Soak(soak::SoakArgs),
}

impl Scenario {
    /// The overall timeout when `--timeout` is not given, in seconds: long enough for the
    /// scenario's own length.
    pub fn default_timeout(&self) -> f64 {
        match self {
            // A bad --duration is reported by the scenario itself, in its own words.
            Scenario::Soak(a) if a.duration.is_finite() && a.duration >= 0.0 => {
                a.duration + soak::TIMEOUT_MARGIN
            }
            _ => DEFAULT_TIMEOUT,
        }
    }
}

/// The overall timeout of the short scenarios, in seconds.
pub const DEFAULT_TIMEOUT: f64 = 120.0;

/// Runs `natter bench`: builds the runtime, runs the scenario and prints its report.
pub fn run(args: Args) -> anyhow::Result<()> {
    let threads = args.common.worker_threads();
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?
    };
    let json = args.common.json;
    let report = runtime.block_on(run_scenario(args))?;
    if json {
        println!("{}", report.json);
    } else {
        print!("{}", report.text);
    }
    // Sockets still held by tasks are closed with the runtime; do not wait for them.
    runtime.shutdown_background();
    Ok(())
}

/// Runs one scenario inside a runtime and returns its report; the seam the tests use.
pub async fn run_scenario(args: Args) -> anyhow::Result<Report> {
    let ctx = Context::new(&args.common, args.scenario.default_timeout()).await?;
    match &args.scenario {
        Scenario::Fanout(a) => fanout::run(&ctx, a).await.map(|r| r.report()),
        Scenario::Idle(a) => idle::run(&ctx, a).await.map(|r| r.report()),
        Scenario::Connect(a) => connect::run(&ctx, a).await.map(|r| r.report()),
        Scenario::Soak(a) => soak::run(&ctx, a).await.map(|r| r.report()),
    }
}

/// A scenario's results: the summary for people and the JSON object for scripts.
#[derive(Debug, Clone)]
pub struct Report {
    /// Human-readable lines, each ending with a newline.
    pub text: String,
    /// The same results as one JSON object.
    pub json: serde_json::Value,
}

/// What every scenario needs: resolved options, the run's tag and its deadline.
#[derive(Debug, Clone)]
pub struct Context {
    /// The options as given.
    pub common: Common,
    /// Where and how to connect.
    pub target: conn::Target,
    /// Unique to this run; starts payloads and default nicknames.
    pub tag: String,
    /// Nothing runs past this instant.
    pub deadline: Instant,
    /// Progress reporting on stderr.
    pub progress: Progress,
    /// Worker threads of the load generator, to judge whether it was saturated.
    pub threads: usize,
}

impl Context {
    /// Resolves the address and fixes the run's tag and deadline (`--timeout`, else
    /// `default_timeout` seconds from now).
    pub async fn new(common: &Common, default_timeout: f64) -> anyhow::Result<Self> {
        let mut spread = Vec::new();
        for one in common.addr.split(',').map(str::trim) {
            let addr: SocketAddr = tokio::net::lookup_host(one)
                .await
                .with_context(|| format!("cannot resolve --addr {one}"))?
                .next()
                .with_context(|| format!("--addr {one} resolves to no address"))?;
            spread.push(addr);
        }
        let addr = spread[0];
        let timeout = common.timeout.unwrap_or(default_timeout);
        if !(timeout > 0.0 && timeout.is_finite()) {
            anyhow::bail!("--timeout must be a positive number of seconds");
        }
        let timeout = Duration::from_secs_f64(timeout);
        let target = conn::Target {
            addr,
            spread: spread.into(),
            protocol: common.protocol,
            room: common.room.clone(),
            handshake_timeout: timeout.min(Duration::from_secs(30)),
            tls: bench_tls(common, addr)?,
        };
        Ok(Self {
            threads: common.worker_threads(),
            common: common.clone(),
            target,
            tag: run_tag(),
            deadline: Instant::now() + timeout,
            progress: Progress { enabled: !common.quiet, started: Instant::now() },
        })
    }

    /// The nickname of client `i`.
    pub fn nick(&self, i: usize) -> String {
        match &self.common.nick_prefix {
            Some(p) => format!("{p}{i}"),
            None => format!("{}_{i}", self.tag),
        }
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// A short tag unique to this run (letters and digits, starting with a letter), so that
/// nicknames do not collide with a previous run and stray messages are recognised.
fn run_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut n = (nanos ^ (u64::from(std::process::id()) << 32)) % 36u64.pow(5);
    let mut tag = String::from("nb");
    for _ in 0..5 {
        let d = (n % 36) as u32;
        tag.push(char::from_digit(d, 36).expect("digit below 36"));
        n /= 36;
    }
    tag
}

/// Progress lines on stderr, prefixed with the time since start.
#[derive(Debug, Clone)]
pub struct Progress {
    enabled: bool,
    started: Instant,
}

impl Progress {
    /// Prints one progress line unless `--quiet`.
    pub fn line(&self, text: &str) {
        if self.enabled {
            eprintln!("[{:6.1}s] {text}", self.started.elapsed().as_secs_f64());
        }
    }
}

/// Waits until the servers' CPU time (`pids`, added up) stops moving for 300 ms (a join
/// storm's notices written, its buffers released), at most `limit`; false when it never did.
pub(crate) async fn settle_server(ctx: &Context, pids: &[u32], limit: Duration) -> anyhow::Result<bool> {
    let started = Instant::now();
    let until = started + limit.min(ctx.remaining());
    let mut last = stats::cpu_total(pids)?;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = stats::cpu_total(pids)?;
        if now == last {
            ctx.progress.line(&format!("server quiet after {:.1} s", started.elapsed().as_secs_f64()));
            return Ok(true);
        }
        last = now;
    }
    Ok(false)
}

/// Seconds in a duration option, checked.
pub(crate) fn secs(name: &str, value: f64) -> anyhow::Result<Duration> {
    if value >= 0.0 && value.is_finite() {
        Ok(Duration::from_secs_f64(value))
    } else {
        anyhow::bail!("{name} must be a non-negative number of seconds")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn parses_shared_options_anywhere() {
        let cli = Cli::try_parse_from([
            "bench",
            "--addr",
            "h:1",
            "fanout",
            "-n",
            "5",
            "-s",
            "2",
            "-m",
            "3",
            "--json",
            "--server-pid",
            "7",
            "--protocol",
            "irc",
        ])
        .unwrap();
        assert_eq!(cli.args.common.addr, "h:1");
        assert!(cli.args.common.json);
        assert_eq!(cli.args.common.server_pid, [7]);
        let nodes = Cli::try_parse_from(["bench", "--server-pid", "7,8", "fanout"]).unwrap();
        assert_eq!(nodes.args.common.server_pid, [7, 8]);
        assert!(nodes.args.common.single_pid().is_err());
        assert_eq!(cli.args.common.protocol, Protocol::Irc);
        let Scenario::Fanout(f) = &cli.args.scenario else { panic!("not fanout") };
        assert_eq!((f.clients, f.senders, f.messages), (5, 2, 3));
        assert!(Cli::try_parse_from(["bench", "idle", "-n", "10", "--hold", "1"]).is_ok());
        assert!(Cli::try_parse_from(["bench", "connect", "-n", "10", "-c", "2"]).is_ok());
        assert_eq!(cli.args.scenario.default_timeout(), DEFAULT_TIMEOUT);
        let soak = Cli::try_parse_from(["bench", "soak", "--duration", "60", "--slow", "2"]).unwrap();
        let Scenario::Soak(s) = &soak.args.scenario else { panic!("not soak") };
        assert_eq!((s.clients, s.rooms, s.rate, s.slow, s.sample), (15_000, 150, 1.0, 2, 10.0));
        assert_eq!(soak.args.scenario.default_timeout(), 60.0 + soak::TIMEOUT_MARGIN);
        assert_eq!(soak.args.common.timeout, None);
    }

    #[test]
    fn tags_are_nick_safe() {
        let t = run_tag();
        assert_eq!(t.len(), 7);
        assert!(natter_proto::names::validate_nick(&format!("{t}_14999")).is_ok());
    }
}
