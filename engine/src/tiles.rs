//! Tiles owned by a shard: packed pixels, the tile's sequence, a bounded ring of recent updates
//! for resuming sessions, and which shards are interested in its updates.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use pixelparty_protocol::canvas::set_pixel;
use pixelparty_protocol::limits::{MAX_PIXELS_PER_FRAME, NO_CURSOR};
use pixelparty_protocol::server::{Pixels, TileData};
use pixelparty_protocol::{PixelUpdate, PixelsHead, ServerFrame};

use crate::routing::ShardId;

#[derive(Debug, Clone, Copy)]
struct RingEntry {
    seq: u64,
    update: PixelUpdate,
}

/// One tile at its home shard.
#[derive(Debug)]
pub(crate) struct OwnedTile {
    pub(crate) data: Vec<u8>,
    /// Sequence of the last update applied.
    pub(crate) seq: u64,
    ring: VecDeque<RingEntry>,
    /// The tile's sequence just before the oldest ring entry: the ring can replay from any
    /// cursor at or after it.
    ring_base: u64,
    /// Shards with at least one subscriber (bit per shard).
    pub(crate) interest: u64,
    /// Changed since the last snapshot copy.
    pub(crate) dirty: bool,
}

impl OwnedTile {
    pub(crate) fn new(data: Vec<u8>, seq: u64) -> Self {
        Self { data, seq, ring: VecDeque::new(), ring_base: seq, interest: 0, dirty: true }
    }

    /// Applies one update with its sequence (strictly above the tile's).
    pub(crate) fn apply(&mut self, bpp: u8, seq: u64, update: PixelUpdate, ring_max: usize) {
        debug_assert!(seq > self.seq, "updates apply in sequence order");
        set_pixel(&mut self.data, bpp, update.offset(), update.colour());
        self.seq = seq;
        self.dirty = true;
        if ring_max == 0 {
            self.ring_base = seq;
            return;
        }
        if self.ring.len() == ring_max
            && let Some(old) = self.ring.pop_front()
        {
            self.ring_base = old.seq;
        }
        self.ring.push_back(RingEntry { seq, update });
    }

    /// Whether an update after `seq` touched `offset`: `Some(answer)` when the tile can tell
    /// (nothing applied after `seq`, or the ring holds every update after it), `None` when
    /// the ring has moved past `seq`.
    pub(crate) fn changed_since(&self, offset: u16, seq: u64) -> Option<bool> {
        if self.seq <= seq {
            return Some(false);
        }
        if seq < self.ring_base {
            return None;
        }
        Some(self.ring.iter().any(|e| e.seq > seq && e.update.offset() == offset))
    }

    pub(crate) fn set_interest(&mut self, shard: ShardId, on: bool) {
        let bit = 1u64 << shard;
        if on {
            self.interest |= bit;
        } else {
            self.interest &= !bit;
        }
    }

    /// What a session holding `cursor` needs: nothing, `Pixels` from the ring, or the whole
    /// tile as `TileData`.
    pub(crate) fn catch_up(&self, tile: u32, cursor: u64) -> Bytes {
        if cursor == self.seq {
            return Bytes::new();
        }
        let mut out = BytesMut::new();
        if cursor != NO_CURSOR && cursor >= self.ring_base && cursor < self.seq {
            let updates: Vec<PixelUpdate> = self.ring.iter().filter(|e| e.seq > cursor).map(|e| e.update).collect();
            // The ring is bounded by config below MAX_PIXELS_PER_FRAME; one frame suffices.
            debug_assert!(updates.len() <= MAX_PIXELS_PER_FRAME);
            let head = PixelsHead::new(tile, cursor, self.seq);
            if ServerFrame::Pixels(Pixels { head, updates: &updates }).encode(&mut out).is_ok() {
                return out.freeze();
            }
            out.clear();
        }
        let frame = ServerFrame::TileData(TileData { tile, seq: self.seq, data: &self.data });
        // A tile is at most MAX_TILE_BYTES, which a frame always holds.
        if let Err(e) = frame.encode(&mut out) {
            tracing::error!(error = %e, tile, "tile does not fit a frame");
        }
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use pixelparty_protocol::canvas::get_pixel;
    use pixelparty_protocol::{Decoded, ServerFrame};

    use super::*;

    fn decode(b: &Bytes) -> ServerFrame<'_> {
        match ServerFrame::decode(b).unwrap() {
            Decoded::Frame { frame, .. } => frame,
            Decoded::Incomplete { .. } => panic!("incomplete"),
        }
    }

    #[test]
    fn catch_up_from_ring_or_whole_tile() {
        let mut t = OwnedTile::new(vec![0; 32], 10);
        for (i, seq) in [12u64, 15, 20, 21].into_iter().enumerate() {
            t.apply(4, seq, PixelUpdate::new(i as u16, 3), 3);
        }
        // Ring holds 15, 20, 21; base is 12.
        assert!(t.catch_up(0, 21).is_empty(), "current");
        let b = t.catch_up(0, 15);
        match decode(&b) {
            ServerFrame::Pixels(p) => {
                assert_eq!((p.head.prev_seq(), p.head.last_seq()), (15, 21));
                assert_eq!(p.updates.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        let b = t.catch_up(0, 12);
        assert!(matches!(decode(&b), ServerFrame::Pixels(p) if p.updates.len() == 3));
        for cursor in [11, 10, NO_CURSOR, 99] {
            let b = t.catch_up(0, cursor);
            match decode(&b) {
                ServerFrame::TileData(d) => {
                    assert_eq!(d.seq, 21);
                    assert_eq!(get_pixel(d.data, 4, 3), 3);
                }
                other => panic!("cursor {cursor}: {other:?}"),
            }
        }
    }
}
