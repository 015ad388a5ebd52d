//! What each shard measures, for the gateway's `/metrics`: counters and histograms in relaxed
//! atomics. A shard writes only its own [`ShardMetrics`] (no lock, no cache line shared with
//! another shard on the hot path); the scraper reads every shard's and merges them. This
//! module records numbers; naming, units and the Prometheus encoding belong to the gateway.
//!
//! Time comes from the `now_ms` the driver hands the shard, so the engine's latencies are in
//! whole milliseconds.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (inclusive, milliseconds) of the engine's latency buckets. The engine's clock
/// ticks in milliseconds: `1` holds everything answered within the same millisecond.
pub const LATENCY_MS_BOUNDS: &[u64] = &[1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];

/// Upper bounds (inclusive, bytes) of the delivery queue buckets: from empty to the default
/// outbound limit (1 MiB) and past it (chat and control frames may exceed it a little).
pub const QUEUE_BYTES_BOUNDS: &[u64] = &[0, 1_024, 4_096, 16_384, 65_536, 262_144, 524_288, 1_048_576, 2_097_152];

/// How often (milliseconds of `now_ms`) a shard samples the depth of every session's
/// delivery queue into [`ShardMetrics::delivery_queue_bytes`]: a walk over its sessions,
/// cheap once a second, and nothing per delivered frame.
pub const QUEUE_SAMPLE_INTERVAL_MS: u64 = 1_000;

/// A histogram of whole-number observations with fixed bucket bounds, kept in relaxed atomics:
/// one writer (its shard) and any number of readers, no lock. Counts are per bucket (not
/// cumulative); the last bucket takes everything above the highest bound.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl Histogram {
    /// An empty histogram over `bounds` (strictly increasing).
    pub fn new(bounds: &'static [u64]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bounds strictly increase");
        Self { bounds, counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(), sum: AtomicU64::new(0) }
    }

    fn bucket(&self, value: u64) -> usize {
        self.bounds.partition_point(|b| *b < value)
    }

    /// Records one observation.
    pub fn observe(&self, value: u64) {
        self.counts[self.bucket(value)].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Records many observations with one atomic add per bucket touched (for samples taken in
    /// a walk over sessions).
    pub fn observe_all(&self, values: impl IntoIterator<Item = u64>) {
        let mut counts = vec![0u64; self.counts.len()];
        let mut sum = 0u64;
        for v in values {
            counts[self.bucket(v)] += 1;
            sum = sum.saturating_add(v);
        }
        for (atomic, n) in self.counts.iter().zip(counts) {
            if n > 0 {
                atomic.fetch_add(n, Ordering::Relaxed);
            }
        }
        self.sum.fetch_add(sum, Ordering::Relaxed);
    }

    /// The current counts. Read bucket by bucket without stopping the writer, so a snapshot
    /// may miss an observation in flight; its count is the sum of its buckets, so buckets and
    /// count always agree.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds,
            counts: self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
            sum: self.sum.load(Ordering::Relaxed),
        }
    }
}

/// A histogram's counts at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Upper bounds of the buckets (inclusive), in the histogram's unit.
    pub bounds: &'static [u64],
    /// Observations per bucket, one more than `bounds` (the last: above every bound).
    pub counts: Vec<u64>,
    /// Sum of the observations.
    pub sum: u64,
}

impl HistogramSnapshot {
    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds another snapshot of a histogram with the same bounds (another shard's).
    pub fn merge(&mut self, other: &Self) {
        debug_assert_eq!(self.bounds, other.bounds, "merging histograms with different buckets");
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum += other.sum;
    }
}

macro_rules! counters {
    ($( $name:ident: $help:literal ),* $(,)?) => {
        /// One shard's counters and histograms.
        #[derive(Debug)]
        pub struct ShardMetrics {
            $( #[doc = $help] pub $name: AtomicU64, )*
            /// Milliseconds from a paint reaching its session's shard to its ack being queued
            /// there (accepted paints only).
            pub paint_ack_ms: Histogram,
            /// Milliseconds from a tick's batch going to the store to the shard learning that
            /// it is durable (or failed).
            pub storage_batch_ms: Histogram,
            /// Bytes queued towards each session, sampled every
            /// [`QUEUE_SAMPLE_INTERVAL_MS`].
            pub delivery_queue_bytes: Histogram,
        }

        impl Default for ShardMetrics {
            fn default() -> Self {
                Self {
                    $( $name: AtomicU64::new(0), )*
                    paint_ack_ms: Histogram::new(LATENCY_MS_BOUNDS),
                    storage_batch_ms: Histogram::new(LATENCY_MS_BOUNDS),
                    delivery_queue_bytes: Histogram::new(QUEUE_BYTES_BOUNDS),
                }
            }
        }

        impl ShardMetrics {
            /// Every counter: its name, what it counts, and its value.
            pub fn counters(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![ $( (stringify!($name), $help, self.$name.load(Ordering::Relaxed)), )* ]
            }
        }
    };
}

counters! {
    sessions_opened: "Sessions opened.",
    sessions_closed: "Sessions closed.",
    paints_accepted: "Paints accepted (applied and acknowledged).",
    paints_refused_cooldown: "Paints refused by the cooldown.",
    paints_refused_other: "Paints refused for other reasons (bounds, colour, overload).",
    cooldowns_refunded: "Cooldowns given back because the paint was then refused for certain.",
    pixel_frames_delivered: "Pixel frames queued to sessions.",
    pixel_updates_delivered: "Pixel updates queued to sessions (frames times updates).",
    chat_delivered: "Chat frames (room and direct messages) queued to sessions.",
    canvas_frames_dropped: "Canvas frames dropped for slow sessions.",
    resyncs_sent: "Resync frames sent.",
    catch_ups_served: "Tile catch-ups (ring replays or whole tiles) answered by home shards.",
    slow_consumers: "Sessions closed as slow consumers.",
    protocol_violations: "Sessions closed for protocol violations.",
    overloaded: "Requests refused because the shard was overloaded.",
    storage_errors: "Tick batches the store failed to make durable.",
    room_messages: "Room messages posted.",
    direct_messages: "Direct messages sent.",
}

impl ShardMetrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Sessions open on the shard now (opened minus closed).
    pub fn sessions_open(&self) -> u64 {
        // Closed is read first: a session opened in between only makes the result larger.
        let closed = self.sessions_closed.load(Ordering::Relaxed);
        self.sessions_opened.load(Ordering::Relaxed).saturating_sub(closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_inclusive_upper_bounds() {
        let h = Histogram::new(&[1, 10]);
        for v in [0, 1, 2, 10, 11, 1_000] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.counts, vec![2, 2, 2]);
        assert_eq!(s.count(), 6);
        assert_eq!(s.sum, 1_024);
    }

    #[test]
    fn observe_all_matches_one_by_one_and_merges() {
        let (a, b) = (Histogram::new(QUEUE_BYTES_BOUNDS), Histogram::new(QUEUE_BYTES_BOUNDS));
        let values = [0, 0, 5, 4_096, 5_000, 10_000_000];
        a.observe_all(values);
        for v in values {
            b.observe(v);
        }
        assert_eq!(a.snapshot(), b.snapshot());
        let mut merged = a.snapshot();
        merged.merge(&b.snapshot());
        assert_eq!(merged.count(), 12);
        assert_eq!(merged.counts[0], 4);
    }
}
