//! Scenario results: latency histograms, a progress line while running, a human summary and
//! one JSON line appended to a results file at the end.

use std::io::Write;
use std::path::Path;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Latencies in microseconds, 1 µs to 100 s, 3 significant digits.
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self(Histogram::new_with_bounds(1, 100_000_000, 3).unwrap_or_else(|_| unreachable!("valid bounds")))
    }
}

impl Latency {
    /// Records one sample (clamped into range).
    pub fn record(&mut self, us: u64) {
        let _ = self.0.record(us.clamp(1, 100_000_000));
    }

    /// Adds another histogram's samples.
    pub fn merge(&mut self, other: &Self) {
        let _ = self.0.add(&other.0);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// A quantile in microseconds.
    pub fn quantile_us(&self, q: f64) -> u64 {
        self.0.value_at_quantile(q)
    }

    /// `{p50, p99, p999, max}` in milliseconds.
    pub fn summary(&self) -> Value {
        let ms = |us: u64| us as f64 / 1000.0;
        json!({
            "count": self.count(),
            "p50_ms": ms(self.quantile_us(0.5)),
            "p99_ms": ms(self.quantile_us(0.99)),
            "p999_ms": ms(self.quantile_us(0.999)),
            "max_ms": ms(self.0.max()),
        })
    }

    /// `p50 .. p99 .. p999 .. max` for humans.
    pub fn human(&self) -> String {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms ({} samples)",
            self.quantile_us(0.5) as f64 / 1000.0,
            self.quantile_us(0.99) as f64 / 1000.0,
            self.quantile_us(0.999) as f64 / 1000.0,
            self.0.max() as f64 / 1000.0,
            self.count()
        )
    }
}

/// Appends one JSON line to `path` (creating it).
pub fn append(path: &Path, record: &Value) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    writeln!(f, "{record}")
}

/// Prints a summary: one `key: value` line per field of a flat JSON object.
pub fn print_human(title: &str, record: &Value) {
    println!("== {title}");
    if let Value::Object(map) = record {
        for (k, v) in map {
            println!("  {k:<28} {v}");
        }
    }
}
