//! Per-user rate limits that are exact across shards and connections: the paint cooldown and
//! chat slow mode.
//!
//! Each user has one `AtomicU64` holding a GCRA "theoretical arrival time" (ms). A request
//! is a compare-and-swap on that word, so two connections of one user on two shards can never
//! both pass inside one window, and there is no lock and no cross-shard message on the paint
//! path. User ids are dense, so the table is an array, allocated in chunks of 64 Ki users as
//! ids appear; the number of chunks is bounded by `max_users`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

const CHUNK_BITS: u32 = 16;
const CHUNK: usize = 1 << CHUNK_BITS;

/// The outcome of asking a limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; the next request is allowed from `ready_at_ms` on.
    Allowed {
        /// When the user may act again (for the cooldown display).
        ready_at_ms: u64,
    },
    /// Refused; retry after this many ms.
    Refused {
        /// Milliseconds to wait.
        retry_after_ms: u64,
    },
}

/// One GCRA limiter per user.
#[derive(Debug)]
pub struct RateTable {
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
    max_users: u32,
    interval_ms: u64,
    tolerance_ms: u64,
}

impl RateTable {
    /// A table for user ids `0..max_users`, allowing `burst` actions then one per
    /// `interval_ms`. `interval_ms == 0` allows everything.
    pub fn new(max_users: u32, interval_ms: u64, burst: u32) -> Self {
        let chunks = (max_users as usize).div_ceil(CHUNK).max(1);
        Self {
            chunks: (0..chunks).map(|_| OnceLock::new()).collect(),
            max_users,
            interval_ms,
            tolerance_ms: interval_ms * u64::from(burst.max(1) - 1),
        }
    }

    fn slot(&self, user: u32) -> Option<&AtomicU64> {
        if user >= self.max_users {
            return None;
        }
        let chunk = self.chunks.get((user >> CHUNK_BITS) as usize)?;
        let chunk = chunk.get_or_init(|| (0..CHUNK).map(|_| AtomicU64::new(0)).collect());
        chunk.get(user as usize & (CHUNK - 1))
    }

    /// Takes one action for `user` at `now_ms` if allowed. Users beyond the table are refused.
    pub fn acquire(&self, user: u32, now_ms: u64) -> Decision {
        if self.interval_ms == 0 {
            return Decision::Allowed { ready_at_ms: now_ms };
        }
        let Some(slot) = self.slot(user) else {
            return Decision::Refused { retry_after_ms: self.interval_ms };
        };
        let mut tat = slot.load(Ordering::Acquire);
        loop {
            let earliest = tat.saturating_sub(self.tolerance_ms);
            if now_ms < earliest {
                return Decision::Refused { retry_after_ms: earliest - now_ms };
            }
            let next = tat.max(now_ms) + self.interval_ms;
            match slot.compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    return Decision::Allowed { ready_at_ms: next.saturating_sub(self.tolerance_ms) };
                }
                Err(current) => tat = current,
            }
        }
    }

    /// Gives back one action taken by [`RateTable::acquire`] that was then refused further
    /// on (the home shard was overloaded, the store refused the write): the user's next
    /// window starts one interval earlier, never earlier than it was before the acquire.
    pub fn refund(&self, user: u32) {
        if self.interval_ms == 0 {
            return;
        }
        if let Some(slot) = self.slot(user) {
            let _ = slot
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| Some(tat.saturating_sub(self.interval_ms)));
        }
    }

    /// Records that `user` may not act before `until_ms` (a window taken elsewhere: the
    /// cluster's cooldown), so that [`RateTable::ready_at`] tells it. Never shortens a window.
    pub fn hold(&self, user: u32, until_ms: u64) {
        if self.interval_ms == 0 {
            return;
        }
        if let Some(slot) = self.slot(user) {
            let tat = until_ms + self.tolerance_ms;
            let _ = slot.fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| Some(old.max(tat)));
        }
    }

    /// When `user` may act next (`now_ms` or earlier if already allowed).
    pub fn ready_at(&self, user: u32, now_ms: u64) -> u64 {
        if self.interval_ms == 0 {
            return now_ms;
        }
        self.slot(user).map_or(now_ms, |s| s.load(Ordering::Acquire).saturating_sub(self.tolerance_ms).max(now_ms))
    }

    /// The interval in ms.
    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn cooldown_allows_one_per_window() {
        let t = RateTable::new(100, 1000, 1);
        assert_eq!(t.acquire(5, 10_000), Decision::Allowed { ready_at_ms: 11_000 });
        assert_eq!(t.acquire(5, 10_400), Decision::Refused { retry_after_ms: 600 });
        assert_eq!(t.acquire(6, 10_400), Decision::Allowed { ready_at_ms: 11_400 }, "per user");
        assert_eq!(t.acquire(5, 11_000), Decision::Allowed { ready_at_ms: 12_000 });
        assert_eq!(t.ready_at(5, 11_500), 12_000);
        assert!(matches!(t.acquire(500, 0), Decision::Refused { .. }), "beyond the table");
    }

    #[test]
    fn a_window_held_from_elsewhere_is_told_and_never_shortened() {
        let t = RateTable::new(10, 1000, 1);
        t.hold(2, 5_000);
        assert_eq!(t.ready_at(2, 4_000), 5_000);
        t.hold(2, 4_500);
        assert_eq!(t.ready_at(2, 4_000), 5_000);
        assert_eq!(t.acquire(2, 4_900), Decision::Refused { retry_after_ms: 100 });
    }

    #[test]
    fn burst_then_rate() {
        let t = RateTable::new(10, 100, 3);
        for _ in 0..3 {
            assert!(matches!(t.acquire(1, 0), Decision::Allowed { .. }));
        }
        assert_eq!(t.acquire(1, 0), Decision::Refused { retry_after_ms: 100 });
        assert!(matches!(t.acquire(1, 100), Decision::Allowed { .. }));
    }

    #[test]
    fn zero_interval_allows_everything() {
        let t = RateTable::new(10, 0, 1);
        for _ in 0..100 {
            assert!(matches!(t.acquire(1, 0), Decision::Allowed { .. }));
        }
    }

    #[test]
    fn exact_under_contention() {
        let t = Arc::new(RateTable::new(10, 1_000_000, 1));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || {
                    (0..10_000).filter(|_| matches!(t.acquire(3, 50), Decision::Allowed { .. })).count()
                })
            })
            .collect();
        let allowed: usize = threads.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(allowed, 1);
    }
}
