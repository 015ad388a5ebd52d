//! A minimal benchmark harness: run a closure in batches until a time budget is spent, keep
//! the best and median batch rates. Plain `std`, so benchmarks build fast and run on stable.

use std::time::{Duration, Instant};

/// Result of one measurement.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    /// Operations per second of the median batch.
    pub median_per_s: f64,
    /// Operations per second of the fastest batch.
    pub best_per_s: f64,
    /// Batches run.
    pub batches: usize,
}

/// Runs `batch` (which performs `ops_per_batch` operations) repeatedly for about `budget`
/// and reports operation rates. At least 5 and at most 10,000 batches run.
pub fn measure(budget: Duration, ops_per_batch: u64, mut batch: impl FnMut()) -> Rate {
    batch(); // warm-up
    let mut rates = Vec::new();
    let start = Instant::now();
    while (start.elapsed() < budget || rates.len() < 5) && rates.len() < 10_000 {
        let t = Instant::now();
        batch();
        let secs = t.elapsed().as_secs_f64().max(1e-9);
        rates.push(ops_per_batch as f64 / secs);
    }
    rates.sort_by(f64::total_cmp);
    Rate { median_per_s: rates[rates.len() / 2], best_per_s: rates[rates.len() - 1], batches: rates.len() }
}

/// Formats a rate with an SI suffix (`12.3 M`).
pub fn si(value: f64) -> String {
    match value {
        v if v >= 1e9 => format!("{:.2} G", v / 1e9),
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e3 => format!("{:.2} k", v / 1e3),
        v => format!("{v:.1} "),
    }
}
