//! Counters each shard updates with relaxed atomics and the gateway reads for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($( $(#[$m:meta])* $name:ident ),* $(,)?) => {
        /// One shard's counters.
        #[derive(Debug, Default)]
        pub struct ShardMetrics {
            $( $(#[$m])* pub $name: AtomicU64, )*
        }

        impl ShardMetrics {
            /// Every counter with its name.
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![ $( (stringify!($name), self.$name.load(Ordering::Relaxed)), )* ]
            }
        }
    };
}

counters! {
    /// Sessions opened.
    sessions_opened,
    /// Sessions closed.
    sessions_closed,
    /// Paints accepted (applied and acknowledged).
    paints_accepted,
    /// Paints refused by the cooldown.
    paints_refused_cooldown,
    /// Paints refused for other reasons (bounds, colour, overload).
    paints_refused_other,
    /// Cooldowns given back because the paint was then refused for certain.
    cooldowns_refunded,
    /// Pixel frames queued to sessions.
    pixel_frames_delivered,
    /// Pixel updates queued to sessions (frames times updates).
    pixel_updates_delivered,
    /// Chat frames (room and direct messages) queued to sessions.
    chat_delivered,
    /// Canvas frames dropped for slow sessions.
    canvas_frames_dropped,
    /// `Resync` frames sent.
    resyncs_sent,
    /// Tile catch-ups (ring replays or whole tiles) answered by home shards.
    catch_ups_served,
    /// Sessions closed as slow consumers.
    slow_consumers,
    /// Sessions closed for protocol violations.
    protocol_violations,
    /// Requests refused because the shard was overloaded.
    overloaded,
    /// Tick batches written to storage.
    storage_batches,
    /// Sum of tick batch storage latencies in microseconds.
    storage_latency_us_sum,
    /// Largest tick batch storage latency in microseconds.
    storage_latency_us_max,
    /// Storage failures.
    storage_errors,
    /// Room messages posted.
    room_messages,
    /// Direct messages sent.
    direct_messages,
}

impl ShardMetrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
