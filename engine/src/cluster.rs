//! Cluster mode, engine side. Several nodes serve one canvas and one chat; they share
//! nothing but a store that assigns sequences (PostgreSQL) and a coordinator (Redis). What a
//! shard needs from them is the [`ClusterLink`]: the paint cooldown taken atomically for the
//! whole cluster, and a tick committed with its sequences assigned by the store and announced
//! to the other nodes. Every node then applies the canvas and each room in sequence order,
//! whoever committed it: [`Sequencer`] holds back what comes early, drops what comes twice and
//! says where a gap is, so that the caller fills it from the store (announcements are
//! at-most-once).
//!
//! Nothing here does I/O: the link's implementation (Redis, pub/sub, the feed that reads the
//! other nodes' commits) is the gateway's.

use std::collections::BTreeMap;
use std::sync::Arc;

use pixelparty_storage::{Backend, Op, Sequenced, TickWrite};

/// The cluster's answer to "may this user paint now".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CooldownAnswer {
    /// Taken: the user's cooldown runs from now, under `token` (which a refund names).
    Taken {
        /// Identifies this take, so that a refund never removes a later one.
        token: u64,
    },
    /// Refused: the user's cooldown (taken on any node) ends in this many ms.
    Refused {
        /// Milliseconds to wait.
        retry_after_ms: u64,
    },
}

/// What the engine needs from the other nodes' shared services (implemented by the gateway).
pub trait ClusterLink: std::fmt::Debug + Send + Sync + 'static {
    /// Takes `user`'s paint cooldown for the whole cluster, atomically (one paint per window,
    /// whatever the node or connection).
    fn take_cooldown(&self, user: u32, cooldown_ms: u32) -> Op<CooldownAnswer>;
    /// Gives a cooldown back (its paint was refused for certain). Fire and forget: a lost
    /// refund only makes the user wait out the window.
    fn refund_cooldown(&self, user: u32, token: u64);
    /// Commits a tick through `backend` with the sequences the store assigns
    /// ([`Backend::commit_tick_ordered`]), then announces it to every node (this one too);
    /// `names` are the posts' authors' names.
    fn commit(&self, backend: &Arc<dyn Backend>, tick: TickWrite, names: Vec<(u32, Arc<str>)>) -> Op<Sequenced>;
    /// Tells the other nodes of a stored direct message `seq` of the pair (`frame`: its
    /// encoded `DirectMessage`), for their sessions of `from` and `to`. At-most-once: the
    /// receiving nodes order each conversation and fill gaps from the store.
    fn announce_direct(&self, from: u32, to: u32, seq: u64, frame: bytes::Bytes);
    /// Whether the coordinator answered recently: a node out of touch refuses the writes it
    /// could not tell the others of (direct messages).
    fn is_ready(&self) -> bool;
    /// Tells the other nodes this node's members of `room` (the whole list; empty: none).
    fn announce_presence(&self, room: u32, users: Vec<(u32, Arc<str>)>);
}

/// Most items a [`Sequencer`] holds back behind a gap; beyond that newer ones are dropped
/// (filling the gap from the store brings them again).
pub const MAX_HELD: usize = 100_000;

/// Puts items numbered by a gap-free sequence back in order: an item is released once every
/// lower one was; one that comes twice (or was released already) is dropped. Numbers start
/// after `applied`.
#[derive(Debug)]
pub struct Sequencer<T> {
    next: u64,
    held: BTreeMap<u64, T>,
    /// The highest sequence known to exist (told by [`Sequencer::expect`]).
    known: u64,
    /// When the oldest gap still open was first seen (engine or node clock, ms).
    gap_since_ms: Option<u64>,
    max_held: usize,
}

impl<T> Sequencer<T> {
    /// A sequencer that has released everything up to `applied`.
    pub fn new(applied: u64) -> Self {
        Self::with_bound(applied, MAX_HELD)
    }

    /// A sequencer that holds at most `max_held` items back.
    pub fn with_bound(applied: u64, max_held: usize) -> Self {
        Self { next: applied + 1, held: BTreeMap::new(), known: applied, gap_since_ms: None, max_held: max_held.max(1) }
    }

    /// The highest sequence released.
    pub fn applied(&self) -> u64 {
        self.next - 1
    }

    /// Items held back behind a gap.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Offers item `seq`; everything it releases (it, and what it unblocks) goes to `out` in
    /// order.
    pub fn offer(&mut self, seq: u64, item: T, now_ms: u64, out: &mut Vec<(u64, T)>) {
        // u64::MAX is never a real sequence (and would overflow the next one): dropped.
        if seq < self.next || seq == u64::MAX {
            return;
        }
        if seq > self.next {
            if self.held.len() < self.max_held || self.held.last_key_value().is_some_and(|(&k, _)| k > seq) {
                self.held.insert(seq, item);
                if self.held.len() > self.max_held
                    && let Some((dropped, _)) = self.held.pop_last()
                {
                    // Still known to exist: the gap reaches it.
                    self.known = self.known.max(dropped);
                }
            } else {
                self.known = self.known.max(seq);
            }
            self.gap_since_ms.get_or_insert(now_ms);
            return;
        }
        out.push((seq, item));
        self.next += 1;
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() != self.next {
                break;
            }
            out.push((self.next, entry.remove()));
            self.next += 1;
        }
        self.gap_since_ms = self.missing_to().map(|_| now_ms);
    }

    /// Says that sequences up to `last` exist (the store says so): anything between what was
    /// released and `last` is a gap from now on, even with nothing held.
    pub fn expect(&mut self, last: u64, now_ms: u64) {
        if last > self.known && last != u64::MAX {
            self.known = last;
        }
        if self.missing_to().is_some() {
            self.gap_since_ms.get_or_insert(now_ms);
        }
    }

    fn missing_to(&self) -> Option<u64> {
        let held = self.held.first_key_value().map(|(&k, _)| k);
        let known = (self.known >= self.next).then_some(self.known + 1);
        match (held, known) {
            (Some(h), Some(k)) => Some(h.min(k)),
            (h, k) => h.or(k),
        }
    }

    /// The open gap, if any: the missing sequences `from..to` and since when it is open.
    pub fn gap(&self) -> Option<Gap> {
        let to = self.missing_to()?;
        Some(Gap { from: self.next, to, since_ms: self.gap_since_ms.unwrap_or(0) })
    }

    /// Holds the open gap for another while (filling it failed: try again after the hold,
    /// not at once).
    pub fn delay(&mut self, now_ms: u64) {
        if self.gap_since_ms.is_some() {
            self.gap_since_ms = Some(now_ms);
        }
    }

    /// Forgets everything and starts again after `applied` (a rebuild from a snapshot).
    pub fn reset(&mut self, applied: u64) {
        self.held.clear();
        self.gap_since_ms = None;
        self.next = applied + 1;
        self.known = applied;
    }
}

/// Sequences `from..to` are missing (`to` is held, or the newest known plus one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// First missing sequence.
    pub from: u64,
    /// The first held sequence after the gap.
    pub to: u64,
    /// When the gap was first seen.
    pub since_ms: u64,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn drain(s: &mut Sequencer<u64>, items: &[u64]) -> Vec<u64> {
        let mut out = Vec::new();
        for &i in items {
            s.offer(i, i, 0, &mut out);
        }
        out.into_iter()
            .map(|(seq, item)| {
                assert_eq!(seq, item);
                seq
            })
            .collect()
    }

    #[test]
    fn in_order_passes_straight_through() {
        let mut s = Sequencer::new(10);
        assert_eq!(drain(&mut s, &[11, 12, 13]), vec![11, 12, 13]);
        assert_eq!(s.applied(), 13);
        assert_eq!(s.gap(), None);
    }

    #[test]
    fn a_gap_holds_back_until_filled_and_says_where_it_is() {
        let mut s = Sequencer::new(0);
        let mut out = Vec::new();
        s.offer(3, 3, 100, &mut out);
        s.offer(5, 5, 120, &mut out);
        assert!(out.is_empty());
        assert_eq!(s.gap(), Some(Gap { from: 1, to: 3, since_ms: 100 }));
        s.offer(1, 1, 130, &mut out);
        s.offer(2, 2, 140, &mut out);
        assert_eq!(out.iter().map(|(q, _)| *q).collect::<Vec<_>>(), vec![1, 2, 3]);
        // A second gap (4) is open from when the first closed.
        assert_eq!(s.gap(), Some(Gap { from: 4, to: 5, since_ms: 140 }));
    }

    #[test]
    fn a_sequence_known_to_exist_opens_a_gap_with_nothing_held() {
        let mut s = Sequencer::<u64>::new(4);
        s.expect(3, 10);
        assert_eq!(s.gap(), None, "already released");
        s.expect(6, 20);
        assert_eq!(s.gap(), Some(Gap { from: 5, to: 7, since_ms: 20 }));
        assert_eq!(drain(&mut s, &[5]), vec![5]);
        assert_eq!(s.gap().map(|g| (g.from, g.to)), Some((6, 7)));
        assert_eq!(drain(&mut s, &[6]), vec![6]);
        assert_eq!(s.gap(), None);
    }

    #[test]
    fn duplicates_and_old_items_are_dropped() {
        let mut s = Sequencer::new(5);
        assert_eq!(drain(&mut s, &[3, 5, 6, 6, 8, 8, 7, 6]), vec![6, 7, 8]);
    }

    #[test]
    fn the_bound_drops_the_newest_held() {
        let mut s = Sequencer::with_bound(0, 2);
        assert!(drain(&mut s, &[5, 4, 3]).is_empty());
        assert_eq!(s.held(), 2);
        // 5 was dropped (newest): filling the gap releases 1..=4 and stops, and 5 is still
        // known to be missing.
        assert_eq!(drain(&mut s, &[1, 2]), vec![1, 2, 3, 4]);
        assert_eq!(s.applied(), 4);
        assert_eq!(s.gap().map(|g| (g.from, g.to)), Some((5, 6)));
        assert!(drain(&mut s, &[7, 9, 8]).is_empty());
        assert_eq!(s.held(), 2, "9 came when full and was not held");
        assert_eq!(drain(&mut s, &[5, 6]), vec![5, 6, 7, 8]);
        assert_eq!(s.gap().map(|g| (g.from, g.to)), Some((9, 10)));
    }

    proptest! {
        /// Whatever the order, duplication or interleaving of deliveries, what comes out is
        /// exactly 1..=n, once each, in order.
        #[test]
        fn any_delivery_order_releases_each_exactly_once_in_order(
            n in 1u64..200,
            seed in any::<u64>(),
            dups in 0usize..50,
        ) {
            let mut items: Vec<u64> = (1..=n).collect();
            let mut x = seed | 1;
            for i in (1..items.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                items.swap(i, (x % (i as u64 + 1)) as usize);
            }
            for d in 0..dups {
                let pick = items[(d * 7919) % items.len()];
                items.push(pick);
            }
            let mut s = Sequencer::new(0);
            prop_assert_eq!(drain(&mut s, &items), (1..=n).collect::<Vec<_>>());
            prop_assert_eq!(s.gap(), None);
        }
    }
}
