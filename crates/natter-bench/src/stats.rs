//! Measurement helpers: latency histograms, the server's CPU time and memory from `/proc`,
//! and the file limit.
//!
//! The targets are stated per server CPU-second and per connection, so the bench reads the
//! server's own accounting (`/proc/PID/stat`, `/proc/PID/status`) rather than guessing from
//! wall time or from the client side.

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use std::time::Duration;

/// Largest latency recorded, in microseconds; anything slower is clamped (and still counted).
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds, cheap enough to keep one per connection.
///
/// Two significant digits (1 % resolution) keep each instance around 20 KiB, so a thousand
/// receivers do not pollute the load generator's caches; percentiles are reported in ms.
#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        let hist = Histogram::new_with_bounds(1, MAX_LATENCY_US, 2).expect("valid histogram bounds");
        Self { hist }
    }

    /// Records one latency given in nanoseconds.
    #[inline]
    pub fn record_ns(&mut self, ns: u64) {
        self.hist.saturating_record((ns / 1000).clamp(1, MAX_LATENCY_US));
    }

    /// Records one latency.
    pub fn record(&mut self, d: Duration) {
        self.record_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds another histogram's samples.
    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides: adding cannot fail.
        self.hist.add(&other.hist).expect("histograms share bounds");
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The summary printed and written to JSON.
    pub fn summary(&self) -> LatencySummary {
        let ms = |us: u64| us as f64 / 1000.0;
        if self.hist.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            samples: self.hist.len(),
            p50_ms: ms(self.hist.value_at_quantile(0.50)),
            p99_ms: ms(self.hist.value_at_quantile(0.99)),
            p999_ms: ms(self.hist.value_at_quantile(0.999)),
            max_ms: ms(self.hist.max()),
            mean_ms: self.hist.mean() / 1000.0,
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySummary {
    /// Number of samples.
    pub samples: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl LatencySummary {
    /// One human-readable line.
    pub fn line(&self) -> String {
        if self.samples == 0 {
            return "no samples".into();
        }
        format!(
            "p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms  (mean {:.3} ms, {} samples)",
            self.p50_ms, self.p99_ms, self.p999_ms, self.max_ms, self.mean_ms, self.samples
        )
    }

    /// The JSON form.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "samples": self.samples,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "p999_ms": self.p999_ms,
            "max_ms": self.max_ms,
            "mean_ms": self.mean_ms,
        })
    }
}

/// CPU time a process has used, from `/proc/PID/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTicks {
    /// Time in user mode (`utime`).
    pub user: u64,
    /// Time in kernel mode (`stime`).
    pub system: u64,
}

impl CpuTicks {
    /// Reads the current totals of process `pid` (all its threads).
    pub fn read(pid: u32) -> anyhow::Result<Self> {
        let path = format!("/proc/{pid}/stat");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {path}: is the server (--server-pid {pid}) running?"))?;
        parse_stat(&text).with_context(|| format!("unexpected format of {path}"))
    }

    /// Ticks used between `earlier` and `self`.
    pub fn since(self, earlier: CpuTicks) -> CpuTicks {
        CpuTicks {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    /// Total seconds (user + system).
    pub fn seconds(self) -> f64 {
        (self.user + self.system) as f64 / ticks_per_second() as f64
    }

    /// User seconds.
    pub fn user_seconds(self) -> f64 {
        self.user as f64 / ticks_per_second() as f64
    }

    /// System seconds.
    pub fn system_seconds(self) -> f64 {
        self.system as f64 / ticks_per_second() as f64
    }
}

/// Extracts utime and stime from the text of `/proc/PID/stat`. The command name (field 2) is
/// in parentheses and may contain spaces or parentheses, so fields are counted after the
/// last `)`: state is the first there, utime the 12th and stime the 13th.
pub fn parse_stat(text: &str) -> anyhow::Result<CpuTicks> {
    let Some(close) = text.rfind(')') else { bail!("no ')' after the command name") };
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    if fields.len() < 13 {
        bail!("only {} fields after the command name", fields.len());
    }
    let user = fields[11].parse().context("utime is not a number")?;
    let system = fields[12].parse().context("stime is not a number")?;
    Ok(CpuTicks { user, system })
}

/// The CPU time of every process in `pids` added up (a cluster's nodes); `None` for none.
pub fn cpu_total(pids: &[u32]) -> anyhow::Result<Option<CpuTicks>> {
    let mut total: Option<CpuTicks> = None;
    for &pid in pids {
        let ticks = CpuTicks::read(pid)?;
        let sum = total.get_or_insert(CpuTicks { user: 0, system: 0 });
        sum.user += ticks.user;
        sum.system += ticks.system;
    }
    Ok(total)
}

/// [`read_sched_ns`] of every process in `pids` added up; `None` when any cannot be read.
pub fn sched_total(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| read_sched_ns(pid)).sum()
}

/// On-CPU time of all threads of process `pid` in nanoseconds, summed from
/// `/proc/PID/task/*/schedstat`. Much finer than the clock ticks of `/proc/PID/stat` (10 ms),
/// which matters for runs lasting a fraction of a second; threads that exited are missing,
/// so it is a cross-check, not the headline. `None` when the kernel does not provide it.
pub fn read_sched_ns(pid: u32) -> Option<u64> {
    let mut total = 0u64;
    let mut read_any = false;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        // A thread that exits between the listing and the read is skipped, not a failure of
        // the whole reading (it failed the own-process test now and then).
        let Ok(text) = std::fs::read_to_string(entry.ok()?.path().join("schedstat")) else { continue };
        total += parse_schedstat(&text)?;
        read_any = true;
    }
    read_any.then_some(total)
}

/// The first field of a `schedstat` file: nanoseconds spent on a CPU.
pub fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// CPU time (user + system) this process has used so far: the load generator's own cost,
/// to tell when it, rather than the server, is the bottleneck.
pub fn own_cpu() -> Duration {
    // SAFETY: an all-zero rusage is valid, and getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage for the calling process.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Clock ticks per second for `/proc` CPU times (`sysconf(_SC_CLK_TCK)`, usually 100).
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions and only reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// Resident memory of process `pid` in KiB (`VmRSS` from `/proc/PID/status`).
pub fn read_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {path}: is the server (--server-pid {pid}) running?"))?;
    parse_rss_kib(&text).with_context(|| format!("no VmRSS line in {path}"))
}

/// Extracts `VmRSS:   1234 kB` from the text of `/proc/PID/status`.
pub fn parse_rss_kib(text: &str) -> anyhow::Result<u64> {
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let mut parts = rest.split_whitespace();
            let n: u64 =
                parts.next().context("VmRSS has no value")?.parse().context("VmRSS is not a number")?;
            return match parts.next() {
                Some("kB") | None => Ok(n),
                Some(unit) => bail!("unexpected VmRSS unit {unit:?}"),
            };
        }
    }
    bail!("VmRSS not found")
}

/// Open file descriptors of process `pid` (entries of `/proc/PID/fd`): a leak of sockets or
/// files shows as a count that does not come back down once the clients are gone.
pub fn count_fds(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&path).with_context(|| {
        format!("cannot list {path}: is the server (--server-pid {pid}) running, and run by this user?")
    })?;
    Ok(entries.count() as u64)
}

/// Raises this process's soft file limit to the hard limit so that thousands of sockets can
/// be open, and fails with advice when even that is below `needed`. Returns the new limit.
pub fn raise_file_limit(needed: u64) -> anyhow::Result<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid rlimit to write into.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        bail!("cannot read the file limit: {}", std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
        // SAFETY: `raised` is a valid rlimit; raising the soft limit up to the hard one is allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim = raised;
        }
    }
    let have: u64 = lim.rlim_cur;
    if have < needed {
        bail!(
            "cannot open {needed} files: the file limit is {have} (hard limit {}); \
             raise it first, e.g. `ulimit -n {needed}` (as root, or in /etc/security/limits.conf)",
            lim.rlim_max
        );
    }
    Ok(have)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_the_command_name() {
        let text = "4242 (natter (x) y) S 1 4242 4242 0 -1 4194560 500 0 0 0 731 129 0 0 20 0 3 0 \
                    100 1000000 300 18446744073709551615\n";
        assert_eq!(parse_stat(text).unwrap(), CpuTicks { user: 731, system: 129 });
        assert!(parse_stat("1 (x) S 1 2").is_err());
        assert!(parse_stat("no parens").is_err());
        let a = CpuTicks { user: 10, system: 5 };
        assert_eq!(CpuTicks { user: 15, system: 6 }.since(a), CpuTicks { user: 5, system: 1 });
    }

    #[test]
    fn rss_from_status() {
        let text = "Name:\tnatter\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t3\n";
        assert_eq!(parse_rss_kib(text).unwrap(), 5120);
        assert!(parse_rss_kib("Name:\tx\n").is_err());
    }

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        CpuTicks::read(me).unwrap();
        assert!(read_rss_kib(me).unwrap() > 0);
        // Standard input, output and error at least (other tests open and close files
        // meanwhile, so no exact count).
        assert!(count_fds(me).unwrap() >= 3);
        assert!(count_fds(u32::MAX).is_err());
        assert!(ticks_per_second() > 0);
        assert!(read_sched_ns(me).is_some_and(|ns| ns > 0));
        // Spin until our CPU time grows: wall time says nothing on a loaded machine.
        let (start, wall) = (own_cpu(), std::time::Instant::now());
        while own_cpu() < start + Duration::from_millis(10) {
            assert!(wall.elapsed() < Duration::from_secs(30), "own CPU time does not grow");
        }
        assert_eq!(parse_schedstat("2249450392 2014742230 90390\n"), Some(2_249_450_392));
    }

    #[test]
    fn latency_percentiles() {
        let mut a = Latency::new();
        for ms in 1..=100u64 {
            a.record(Duration::from_millis(ms));
        }
        let mut b = Latency::new();
        b.record_ns(0);
        b.merge(&a);
        let s = b.summary();
        assert_eq!(s.samples, 101);
        assert!((s.p50_ms - 50.0).abs() < 1.0, "{s:?}");
        assert!((s.p99_ms - 99.0).abs() < 1.5, "{s:?}");
        assert!((s.max_ms - 100.0).abs() < 1.0, "{s:?}");
        assert_eq!(Latency::new().summary().samples, 0);
    }
}
