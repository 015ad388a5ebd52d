//! Login and sign-up rate limits per client address and per account name: a bounded map of
//! GCRA arrival times. The map never grows past its bound. When it is full, expired entries
//! are swept (at most once a second, so a flood of new keys cannot make every check scan the
//! table) and, if it is still full, the least restricted entry of a small sample is evicted:
//! a new key is never refused just because the table is full (which would let anyone who
//! controls enough addresses lock everybody out), and an evicted key only gets its burst back.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};

use parking_lot::Mutex;

/// Entries each limiter tracks at most.
const MAX_KEYS: usize = 100_000;
/// Entries looked at to choose one to evict from a full table.
const EVICTION_SAMPLE: usize = 16;
/// Least time between two sweeps of a full table.
const SWEEP_EVERY_MS: u64 = 1_000;

/// One keyed GCRA limiter.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    interval_ms: u64,
    tolerance_ms: u64,
    max_keys: usize,
    table: Mutex<Table<K>>,
}

#[derive(Debug)]
struct Table<K> {
    /// Theoretical arrival time per key; a key whose time has passed is unrestricted.
    tats: HashMap<K, u64>,
    next_sweep_ms: u64,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// Allows `per_window` actions per `window_ms` for each key (with that burst).
    pub fn new(per_window: u32, window_ms: u64) -> Self {
        Self::bounded(per_window, window_ms, MAX_KEYS)
    }

    fn bounded(per_window: u32, window_ms: u64, max_keys: usize) -> Self {
        let per = u64::from(per_window.max(1));
        let interval_ms = window_ms / per;
        Self {
            interval_ms,
            tolerance_ms: interval_ms * (per - 1),
            max_keys: max_keys.max(1),
            table: Mutex::new(Table { tats: HashMap::new(), next_sweep_ms: 0 }),
        }
    }

    /// Takes one action for `key` at `now_ms`; on refusal returns the wait in ms.
    pub fn check(&self, key: K, now_ms: u64) -> Result<(), u64> {
        let mut table = self.table.lock();
        if table.tats.len() >= self.max_keys && !table.tats.contains_key(&key) {
            table.make_room(now_ms, self.max_keys);
        }
        let tat = table.tats.entry(key).or_insert(0);
        let earliest = tat.saturating_sub(self.tolerance_ms);
        if now_ms < earliest {
            return Err(earliest - now_ms);
        }
        *tat = (*tat).max(now_ms) + self.interval_ms;
        Ok(())
    }

    /// Keys tracked now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().tats.len()
    }
}

impl<K: Hash + Eq + Clone> Table<K> {
    /// Frees one slot: sweeps expired entries if the last sweep is old enough, else evicts the
    /// entry closest to expiry among a sample (the table iterates in hash order, which
    /// clients cannot predict).
    fn make_room(&mut self, now_ms: u64, max_keys: usize) {
        if now_ms >= self.next_sweep_ms {
            self.tats.retain(|_, tat| *tat > now_ms);
            self.next_sweep_ms = now_ms + SWEEP_EVERY_MS;
        }
        if self.tats.len() >= max_keys {
            let victim = self.tats.iter().take(EVICTION_SAMPLE).min_by_key(|(_, tat)| **tat).map(|(k, _)| k.clone());
            if let Some(k) = victim {
                self.tats.remove(&k);
            }
        }
    }
}

/// The key a client address is limited under: an IPv4 address itself (also when it arrives
/// IPv4-mapped), an IPv6 address by its /64, the smallest block one subscriber usually holds
/// (keying by the whole address would let a client rotate through its 2^64 addresses).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_limited_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        assert_eq!(client_key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(client_key("10.0.0.1".parse().unwrap()), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn burst_then_refuse_per_key() {
        let l = KeyedLimiter::new(3, 60_000);
        for _ in 0..3 {
            assert!(l.check("a", 0).is_ok());
        }
        assert_eq!(l.check("a", 0), Err(20_000));
        assert!(l.check("b", 0).is_ok(), "keys are independent");
        assert!(l.check("a", 20_000).is_ok());
    }

    #[test]
    fn a_full_table_evicts_instead_of_refusing_new_keys() {
        let l = KeyedLimiter::bounded(1, 60_000, 64);
        for k in 0..64u32 {
            assert!(l.check(k, 0).is_ok());
        }
        assert_eq!(l.len(), 64);
        // Nothing has expired, yet a newcomer is served and the bound holds.
        for k in 64..1_000u32 {
            assert!(l.check(k, 1).is_ok(), "new key {k} refused");
            assert!(l.len() <= 64);
        }
        // A key still in the table stays limited.
        assert!(l.check(999, 2).is_err());
    }

    #[test]
    fn a_full_table_sweeps_expired_entries_first() {
        let l = KeyedLimiter::bounded(1, 1_000, 8);
        for k in 0..8u32 {
            assert!(l.check(k, 0).is_ok());
        }
        // At 5 s every entry has expired: the sweep empties the table but for the newcomer.
        assert!(l.check(100, 5_000).is_ok());
        assert_eq!(l.len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn the_table_never_exceeds_its_bound(ops in proptest::collection::vec((0u32..200, 0u64..5_000), 1..400)) {
            let l = KeyedLimiter::bounded(3, 1_000, 32);
            let mut now = 0;
            for (key, step) in ops {
                now += step;
                let _ = l.check(key, now);
                proptest::prop_assert!(l.len() <= 32);
            }
        }
    }
}
