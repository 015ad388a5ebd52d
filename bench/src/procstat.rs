//! Process CPU time and memory from `/proc`, for the server under test and for the load
//! client itself, so a reader can tell whether the client was the bottleneck.

use std::time::Instant;

/// CPU seconds (user + system) and resident memory of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// CPU seconds used so far.
    pub cpu_s: f64,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status` (`pid` `None`: this process).
pub fn sample(pid: Option<u32>) -> Option<ProcSample> {
    let base = pid.map_or_else(|| "/proc/self".to_owned(), |p| format!("/proc/{p}"));
    let stat = std::fs::read_to_string(format!("{base}/stat")).ok()?;
    // Fields after the parenthesised command: utime is field 14, stime 15 (1-based).
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = 100.0; // sysconf(_SC_CLK_TCK) is 100 on Linux.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("{base}/status")).ok()?;
    let rss_kb: u64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()?;
    Some(ProcSample { cpu_s: (utime + stime) / ticks, rss_bytes: rss_kb * 1024 })
}

/// CPU use of a process over an interval, as a fraction of one core.
#[derive(Debug)]
pub struct CpuMeter {
    pid: Option<u32>,
    start: Option<ProcSample>,
    at: Instant,
}

impl CpuMeter {
    /// Starts measuring `pid` (`None`: this process).
    pub fn start(pid: Option<u32>) -> Self {
        Self { pid, start: sample(pid), at: Instant::now() }
    }

    /// Cores used since the start (1.0 = one core busy), and the latest sample.
    pub fn read(&self) -> Option<(f64, ProcSample)> {
        let now = sample(self.pid)?;
        let start = self.start?;
        let secs = self.at.elapsed().as_secs_f64().max(1e-6);
        Some(((now.cpu_s - start.cpu_s) / secs, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_itself() {
        let s = sample(None).unwrap();
        assert!(s.rss_bytes > 0);
        let m = CpuMeter::start(None);
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(m.read().unwrap().0 >= 0.0);
    }
}
