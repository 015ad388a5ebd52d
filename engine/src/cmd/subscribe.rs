//! `Subscribe` / `Unsubscribe` at the session's shard, the home shard's catch-up reply, and
//! the per-tick fan-out of tile frames to subscribed sessions.

use bytes::Bytes;
use pixelparty_protocol::ErrorCode;
use pixelparty_protocol::client::{Subscribe, Unsubscribe};
use pixelparty_protocol::limits::{FRAME_HEADER_LEN, PIXEL_UPDATE_LEN, PIXELS_HEAD_LEN};

use crate::conn::Sub;
use crate::metrics::ShardMetrics;
use crate::msg::{ConnId, Refusal, ShardMsg, TileFrame};
use crate::routing::tile_home;
use crate::shard::Shard;

impl Shard {
    pub(crate) fn on_subscribe(&mut self, id: ConnId, s: Subscribe<'_>) {
        let (tiles, max, shards) =
            (self.config().geometry.tile_count(), self.config().max_subscriptions, self.config().shards);
        let catch_ups = self.config().catch_ups_per_session();
        if !self.admit_remote(id, 0, false) {
            return;
        }
        for entry in s.tiles {
            let (tile, cursor) = (entry.tile(), entry.cursor());
            if tile >= tiles {
                self.refuse(id, 0, &Refusal::new(ErrorCode::InvalidArgument, "no such tile"));
                continue;
            }
            let Some(conn) = self.conn_mut(id) else {
                return;
            };
            let existing = conn.sub(tile);
            match existing {
                // The answer to the earlier request is on its way and answers this one too:
                // one catch-up per tile in flight, however often a client repeats itself.
                Some(Sub::Pending) => continue,
                None if conn.subs.len() >= max => {
                    self.refuse(id, 0, &Refusal::new(ErrorCode::TooManySubscriptions, "subscription limit reached"));
                    continue;
                }
                _ => {}
            }
            conn.resync.retain(|t| *t != tile);
            let ask = conn.catch_ups < catch_ups;
            if ask {
                conn.catch_ups += 1;
                conn.set_sub(tile, Sub::Pending);
            } else {
                conn.set_sub(tile, Sub::Deferred(cursor));
            }
            let home = tile_home(tile, shards);
            if existing.is_none() {
                let list = self.tile_subs.entry(tile).or_default();
                list.push(id);
                if list.len() == 1 {
                    self.send(home, ShardMsg::Interest { tile, shard: self.id, on: true });
                }
            }
            if ask {
                let conn = self.conn_ref(id);
                self.send(home, ShardMsg::Subscribe { tile, cursor, conn });
            }
        }
    }

    /// Asks for deferred catch-ups of a session while it has fewer than its limit on their
    /// way and its queue is at most half full (a slow reader is not sent tiles it would only
    /// drop). Called when a catch-up arrives and when the transport drains the queue.
    pub(crate) fn next_catch_up(&mut self, id: ConnId) {
        let (limit, half, shards) =
            (self.config().catch_ups_per_session(), self.config().outbound_max_bytes / 2, self.config().shards);
        loop {
            let Some(conn) = self.conn_mut(id) else {
                return;
            };
            if conn.catch_ups >= limit || conn.queued_bytes > half || conn.closing.is_some() {
                return;
            }
            let Some((tile, cursor)) = conn.first_deferred() else {
                return;
            };
            conn.catch_ups += 1;
            conn.set_sub(tile, Sub::Pending);
            let conn = self.conn_ref(id);
            self.send(tile_home(tile, shards), ShardMsg::Subscribe { tile, cursor, conn });
        }
    }

    pub(crate) fn on_unsubscribe(&mut self, id: ConnId, u: Unsubscribe<'_>) {
        for tile in u.tiles {
            let tile = tile.get();
            let Some(conn) = self.conn_mut(id) else {
                return;
            };
            if conn.remove_sub(tile) {
                self.drop_tile_sub(tile, id);
            }
        }
    }

    /// The home shard's answer to a subscribe: deliver it and go live.
    pub(crate) fn on_replay(&mut self, id: ConnId, tile: u32, payload: Bytes) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        conn.catch_ups = conn.catch_ups.saturating_sub(1);
        // Not pending: unsubscribed meanwhile (perhaps subscribed again and deferred).
        if conn.sub(tile) == Some(Sub::Pending) {
            conn.set_sub(tile, Sub::Live);
            if !payload.is_empty() {
                self.push_canvas(id, tile, payload);
            }
        }
        self.next_catch_up(id);
    }

    /// A tick's frames from a home shard: the same bytes to every live subscriber.
    pub(crate) fn on_tiles(&mut self, frames: &[TileFrame]) {
        let (mut delivered, mut updates) = (0u64, 0u64);
        for tf in frames {
            let Some(list) = self.tile_subs.remove(&tf.tile) else {
                continue;
            };
            let per_frame =
                (tf.frame.len().saturating_sub(FRAME_HEADER_LEN + PIXELS_HEAD_LEN) / PIXEL_UPDATE_LEN) as u64;
            for &id in &list {
                if self.conn(id).and_then(|c| c.sub(tf.tile)) == Some(Sub::Live) {
                    self.push_canvas(id, tf.tile, tf.frame.clone());
                    delivered += 1;
                    updates += per_frame;
                }
            }
            self.tile_subs.insert(tf.tile, list);
        }
        ShardMetrics::add(&self.metrics().pixel_frames_delivered, delivered);
        ShardMetrics::add(&self.metrics().pixel_updates_delivered, updates);
    }
}
