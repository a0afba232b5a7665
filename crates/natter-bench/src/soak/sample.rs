//! The soak's periodic line: what the server holds (memory, descriptors), what it spends
//! (CPU), and what the clients see (deliveries, latency, losses), every `--sample` seconds.
//!
//! Flat memory and a descriptor count that follows the connections are the soak's point, so
//! they are read from the server's own accounting in `/proc`, not guessed from the client side.

use crate::stats::{self, CpuTicks, Latency};
use std::time::{Duration, Instant};

/// Reads the server's memory, descriptors and CPU time, and the bench's own CPU time.
#[derive(Debug)]
pub struct Probe {
    pid: Option<u32>,
    last: Instant,
    last_cpu: Option<CpuTicks>,
    last_own: Duration,
}

/// What the server looked like at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerState {
    /// Resident memory, KiB.
    pub rss_kib: Option<u64>,
    /// Open file descriptors.
    pub fds: Option<u64>,
    /// Share of one CPU used since the previous reading, in percent (all threads).
    pub cpu_pct: Option<f64>,
}

impl Probe {
    /// A probe of process `pid` (none: only the bench's side is measured).
    pub fn new(pid: Option<u32>) -> Self {
        Self {
            pid,
            last: Instant::now(),
            last_cpu: pid.and_then(|p| CpuTicks::read(p).ok()),
            last_own: stats::own_cpu(),
        }
    }

    /// Reads the server now; a field it cannot read (the server is gone) is `None`.
    /// Also returns the bench's own CPU share since the previous reading, in percent.
    pub fn read(&mut self) -> (ServerState, f64) {
        let now = Instant::now();
        let secs = now.duration_since(self.last).as_secs_f64().max(1e-9);
        let own = stats::own_cpu();
        let bench_pct = 100.0 * own.saturating_sub(self.last_own).as_secs_f64() / secs;
        let mut state = ServerState::default();
        if let Some(pid) = self.pid {
            state.rss_kib = stats::read_rss_kib(pid).ok();
            state.fds = stats::count_fds(pid).ok();
            let cpu = CpuTicks::read(pid).ok();
            state.cpu_pct = cpu.zip(self.last_cpu).map(|(c, l)| 100.0 * c.since(l).seconds() / secs);
            self.last_cpu = cpu;
        }
        (self.last, self.last_own) = (now, own);
        (state, bench_pct)
    }

    /// The server's descriptor count now, if it is measured.
    pub fn fds(&self) -> Option<u64> {
        self.pid.and_then(|p| stats::count_fds(p).ok())
    }
}

/// One line of the soak's progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Seconds since the chatter started.
    pub elapsed_s: f64,
    /// The server then.
    pub server: ServerState,
    /// The bench's own CPU share since the previous sample, percent.
    pub bench_cpu_pct: f64,
    /// Deliveries to keeping-up readers since the previous sample.
    pub deliveries: u64,
    /// Seconds since the previous sample.
    pub interval_s: f64,
    /// Median latency of those deliveries, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// Messages found missing so far, all readers.
    pub lost: u64,
    /// Keeping-up readers the server closed so far (column "dropped").
    pub disconnects: u64,
    /// Taken at the end, after the drain (shown as `end`): its interval is usually short.
    pub end: bool,
}

/// Rates over a shorter interval than this are not shown: they say little.
const MIN_RATE_INTERVAL_S: f64 = 1.0;

impl Sample {
    /// Builds a sample from the interval's latency histogram.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        elapsed: Duration,
        interval: Duration,
        server: ServerState,
        bench_cpu_pct: f64,
        deliveries: u64,
        latency: &Latency,
        lost: u64,
        disconnects: u64,
    ) -> Self {
        let summary = latency.summary();
        let has = summary.samples > 0;
        Self {
            elapsed_s: elapsed.as_secs_f64(),
            server,
            bench_cpu_pct,
            deliveries,
            interval_s: interval.as_secs_f64(),
            p50_ms: has.then_some(summary.p50_ms),
            p99_ms: has.then_some(summary.p99_ms),
            lost,
            disconnects,
            end: false,
        }
    }

    /// The column titles above [`Sample::line`].
    pub fn header() -> &'static str {
        "    time   server rss  server fds  server cpu  bench cpu  deliveries  deliveries/s    p50 ms    p99 ms  lost  dropped"
    }

    /// One line, in the columns of [`Sample::header`]; `-` where nothing was measured.
    pub fn line(&self) -> String {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let rate = |v: Option<String>| opt(v.filter(|_| self.interval_s >= MIN_RATE_INTERVAL_S));
        let s = &self.server;
        let time = if self.end { "end".to_string() } else { format!("{:.0}s", self.elapsed_s) };
        format!(
            "{time:>8} {:>12} {:>11} {:>11} {:>10} {:>11} {:>13} {:>9} {:>9} {:>5} {:>8}",
            opt(s.rss_kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))),
            opt(s.fds.map(|f| f.to_string())),
            rate(s.cpu_pct.map(|c| format!("{c:.0}%"))),
            rate(Some(format!("{:.0}%", self.bench_cpu_pct))),
            self.deliveries,
            rate(Some(format!("{:.0}", self.deliveries as f64 / self.interval_s))),
            opt(self.p50_ms.map(|v| format!("{v:.2}"))),
            opt(self.p99_ms.map(|v| format!("{v:.2}"))),
            self.lost,
            self.disconnects,
        )
    }

    /// The JSON form.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "elapsed_s": self.elapsed_s,
            "server_rss_kib": self.server.rss_kib,
            "server_fds": self.server.fds,
            "server_cpu_pct": self.server.cpu_pct,
            "bench_cpu_pct": self.bench_cpu_pct,
            "deliveries": self.deliveries,
            "interval_s": self.interval_s,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "lost": self.lost,
            "disconnects": self.disconnects,
            "end": self.end,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_fits_the_header() {
        let mut latency = Latency::new();
        latency.record(Duration::from_millis(3));
        let server = ServerState { rss_kib: Some(51_200), fds: Some(15_012), cpu_pct: Some(23.4) };
        let s = Sample::new(
            Duration::from_secs(600),
            Duration::from_secs(10),
            server,
            7.0,
            150_000,
            &latency,
            0,
            0,
        );
        let line = s.line();
        assert!(line.contains("50.0 MiB") && line.contains("15012") && line.contains("15000"), "{line}");
        assert!(line.contains("23%") && line.starts_with("    600s"), "{line}");
        assert_eq!(line.len(), Sample::header().len(), "\n{}\n{line}", Sample::header());
        // The last one, a moment after the one before: no rates.
        let last = Sample { end: true, interval_s: 0.2, ..s };
        let line = last.line();
        assert!(line.starts_with("     end") && !line.contains('%') && !line.contains("750000"), "{line}");
        assert_eq!(line.len(), Sample::header().len(), "\n{}\n{line}", Sample::header());
        // Nothing measured: dashes, same width.
        let s = Sample::new(
            Duration::ZERO,
            Duration::ZERO,
            ServerState::default(),
            0.0,
            0,
            &Latency::new(),
            0,
            0,
        );
        assert_eq!(s.line().len(), Sample::header().len(), "\n{}\n{}", Sample::header(), s.line());
        assert!(s.json()["server_rss_kib"].is_null());
    }

    #[test]
    fn probe_reads_a_live_process() {
        let mut probe = Probe::new(Some(std::process::id()));
        let (state, _) = probe.read();
        assert!(state.rss_kib.is_some_and(|k| k > 0));
        assert!(state.fds.is_some_and(|f| f >= 3));
        assert!(state.cpu_pct.is_some());
        let mut none = Probe::new(None);
        assert_eq!(none.read().0, ServerState::default());
    }
}
