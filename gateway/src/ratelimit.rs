//! Login and sign-up rate limits per client address and per account name: a bounded map of
//! GCRA arrival times. The map never grows past its bound: expired entries are swept, and
//! when it is still full new keys are refused (fail closed) rather than tracked.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};

use parking_lot::Mutex;

/// Entries each limiter tracks at most.
const MAX_KEYS: usize = 100_000;

/// One keyed GCRA limiter.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    interval_ms: u64,
    tolerance_ms: u64,
    tats: Mutex<HashMap<K, u64>>,
}

impl<K: Hash + Eq> KeyedLimiter<K> {
    /// Allows `per_window` actions per `window_ms` for each key (with that burst).
    pub fn new(per_window: u32, window_ms: u64) -> Self {
        let per = u64::from(per_window.max(1));
        let interval_ms = window_ms / per;
        Self { interval_ms, tolerance_ms: interval_ms * (per - 1), tats: Mutex::new(HashMap::new()) }
    }

    /// Takes one action for `key` at `now_ms`; on refusal returns the wait in ms.
    pub fn check(&self, key: K, now_ms: u64) -> Result<(), u64> {
        let mut tats = self.tats.lock();
        if tats.len() >= MAX_KEYS && !tats.contains_key(&key) {
            tats.retain(|_, tat| *tat > now_ms);
            if tats.len() >= MAX_KEYS {
                return Err(self.interval_ms.max(1000));
            }
        }
        let tat = tats.entry(key).or_insert(0);
        let earliest = tat.saturating_sub(self.tolerance_ms);
        if now_ms < earliest {
            return Err(earliest - now_ms);
        }
        *tat = (*tat).max(now_ms) + self.interval_ms;
        Ok(())
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
}
