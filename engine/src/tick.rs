//! The tick: everything a home shard accepted since the last tick (paints, room posts,
//! deletions) goes to the store as one job; when the store reports it durable, the shard
//! applies it and publishes (in submission order, whatever order the answers come in): one `Pixels` frame per changed tile, shared by every interested
//! shard; room frames to member shards; acks to the sessions that asked.
//!
//! Paints get their global sequences here, one contiguous range per batch (a single atomic
//! add), so journal blocks never interleave. Batches are applied in submission order, so
//! tiles and rooms publish in sequence order.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use pixelparty_protocol::limits::MAX_PIXELS_PER_FRAME;
use pixelparty_protocol::server::{Deleted, Pixels, RoomMessage};
use pixelparty_protocol::{ConvKind, PixelUpdate, PixelsHead, ServerFrame};
use pixelparty_storage::{Message, PixelRecord, RoomDelete, Sequenced, StorageError, TickWrite};

use crate::mesh::Completion;
use crate::metrics::ShardMetrics;
use crate::msg::{ConnRef, Origin, PaintCmd, PaintResult, Refusal, ShardMsg, TileFrame};
use crate::shard::{Shard, encode};

/// A room message waiting for its tick.
#[derive(Debug)]
pub(crate) struct PendingPost {
    pub(crate) room: u32,
    pub(crate) seq: u64,
    pub(crate) conn: ConnRef,
    pub(crate) req: u32,
    pub(crate) user: u32,
    pub(crate) name: Arc<str>,
    pub(crate) text: Box<str>,
    pub(crate) time_ms: u64,
}

/// A room message deletion waiting for its tick.
#[derive(Debug)]
pub(crate) struct PendingDelete {
    pub(crate) room: u32,
    pub(crate) seq: u64,
    pub(crate) origin: Origin,
    pub(crate) by_admin: bool,
}

#[derive(Debug)]
struct Batch {
    id: u64,
    submitted_ms: u64,
    paints: Vec<(PaintCmd, u64)>,
    posts: Vec<PendingPost>,
    deletes: Vec<PendingDelete>,
    /// The store's answer, once it came (answers may come out of order).
    result: Option<Result<Sequenced, Refusal>>,
}

/// What a shard has accepted but not yet made durable.
#[derive(Debug, Default)]
pub(crate) struct TickState {
    pub(crate) paints: Vec<PaintCmd>,
    pub(crate) posts: Vec<PendingPost>,
    pub(crate) deletes: Vec<PendingDelete>,
    in_flight: VecDeque<Batch>,
    next_batch: u64,
}

impl TickState {
    pub(crate) fn pending_paints(&self) -> usize {
        self.paints.len()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn is_empty(&self) -> bool {
        self.paints.is_empty() && self.posts.is_empty() && self.deletes.is_empty()
    }

    /// The newest sequence of every pixel painted by a batch on its way to the store.
    pub(crate) fn in_flight_latest(&self) -> HashMap<(u32, u16), u64> {
        let mut latest = HashMap::new();
        for (c, seq) in self.in_flight.iter().flat_map(|b| b.paints.iter()) {
            let e = latest.entry((c.tile, c.offset)).or_insert(0);
            *e = (*e).max(*seq);
        }
        latest
    }
}

impl Shard {
    /// Sends what was accepted since the last tick to the store (unless too many batches are
    /// already in flight, in which case it waits for the next tick).
    pub fn tick(&mut self, now_ms: u64) {
        self.expire_sessions(now_ms);
        self.sample_queues(now_ms);
        if self.config().cluster.is_some() {
            self.cluster_rooms_tick(now_ms);
        }
        // In a cluster the store orders commits as they take its lock, so one shard's batches
        // must not race each other (a session's two posts would swap): one at a time.
        let max_in_flight = if self.config().cluster.is_some() { 1 } else { self.config().max_ticks_in_flight };
        if self.tick.is_empty() || self.tick.in_flight.len() >= max_in_flight {
            return;
        }
        let mut paints = std::mem::take(&mut self.tick.paints);
        self.decide_restores(&mut paints);
        let cluster = self.config().cluster.clone();
        // In a cluster the store assigns the sequences (these are placeholders, in order).
        let first = match cluster {
            Some(_) => 1,
            None => self.shared.next_seq.fetch_add(paints.len() as u64, Ordering::Relaxed),
        };
        let paints: Vec<(PaintCmd, u64)> = paints.into_iter().zip(first..).collect();
        let records: Vec<PixelRecord> = paints
            .iter()
            .map(|(c, seq)| PixelRecord { seq: *seq, x: c.x, y: c.y, colour: c.colour, user: c.user, time_ms: now_ms })
            .collect();
        let posts = std::mem::take(&mut self.tick.posts);
        let mut messages: Vec<(u32, Vec<Message>)> = Vec::new();
        for p in &posts {
            let m =
                Message { seq: p.seq, author: p.user, time_ms: p.time_ms, text: p.text.to_string(), deleted: false };
            match messages.last_mut() {
                Some((room, list)) if *room == p.room => list.push(m),
                _ => messages.push((p.room, vec![m])),
            }
        }
        let deletes = std::mem::take(&mut self.tick.deletes);
        // In a cluster another node may have painted over a restore's pixel: the store checks
        // each restore's guard under the canvas's lock.
        let guards = match cluster {
            Some(_) => paints
                .iter()
                .enumerate()
                .filter_map(|(i, (c, _))| c.restore.as_ref().map(|r| (i as u32, r.guard_seq)))
                .collect(),
            None => Vec::new(),
        };
        let write = TickWrite {
            pixels: records,
            messages,
            deletes: deletes.iter().map(|d| RoomDelete { room: d.room, seq: d.seq, by_admin: d.by_admin }).collect(),
            now_ms,
            controls: Vec::new(),
            guards,
        };

        let id = self.tick.next_batch;
        self.tick.next_batch += 1;
        let (shared, shard) = (self.shared.clone(), self.id);
        let done = move |result: Result<Sequenced, StorageError>| {
            let result = result.map_err(|e| {
                tracing::error!(error = %e, shard, "tick batch failed");
                Refusal::store_failed(&e)
            });
            shared.mesh.complete(shard, Completion::Tick { batch: id, result });
        };
        let submitted = match cluster {
            Some(link) => {
                let mut names: Vec<(u32, Arc<str>)> = posts.iter().map(|p| (p.user, p.name.clone())).collect();
                names.sort_unstable_by_key(|(u, _)| *u);
                names.dedup_by_key(|(u, _)| *u);
                self.store().request(move |b| link.commit(b, write, names), done)
            }
            None => self.store().request(
                move |b| {
                    let op = b.commit_tick(write);
                    Box::pin(async move { op.await.map(|()| Sequenced::default()) })
                },
                done,
            ),
        };
        let batch = Batch { id, submitted_ms: now_ms, paints, posts, deletes, result: None };
        match submitted {
            Ok(()) => self.tick.in_flight.push_back(batch),
            Err(e) => {
                tracing::warn!(error = %e, shard = self.id, "store refused a tick batch");
                self.fail_batch(batch, &Refusal::store_refused(&e));
            }
        }
    }

    /// The store finished batch `id`: publish it, or refuse everything in it.
    /// Batches are applied in submission order: an answer that comes before an older batch's
    /// waits for it (a backend may commit concurrent batches in any order).
    pub(crate) fn on_durable(&mut self, id: u64, result: Result<Sequenced, Refusal>, now_ms: u64) {
        let Some(batch) = self.tick.in_flight.iter_mut().find(|b| b.id == id && b.result.is_none()) else {
            tracing::error!(batch = id, "completion without its batch in flight");
            return;
        };
        batch.result = Some(result);
        while self.tick.in_flight.front().is_some_and(|b| b.result.is_some()) {
            let Some(mut batch) = self.tick.in_flight.pop_front() else { break };
            let result = batch.result.take().unwrap_or_else(|| Ok(Sequenced::default()));
            self.finish_batch(batch, result, now_ms);
        }
    }

    fn finish_batch(&mut self, batch: Batch, result: Result<Sequenced, Refusal>, now_ms: u64) {
        self.metrics().storage_batch_ms.observe(now_ms.saturating_sub(batch.submitted_ms));
        let seqs = match result {
            Ok(seqs) => seqs,
            Err(r) => {
                ShardMetrics::add(&self.metrics().storage_errors, 1);
                self.fail_batch(batch, &r);
                return;
            }
        };
        if self.config().cluster.is_some() {
            return self.finish_cluster_batch(batch, &seqs);
        }
        self.publish_paints(&batch.paints);
        self.publish_posts(batch.posts);
        self.publish_deletes(batch.deletes);
    }

    /// Cluster mode: the store assigned the batch's sequences. It is acknowledged here, and
    /// applied (here as on every node) when the node's feed brings it back in sequence order
    /// among everyone else's commits.
    fn finish_cluster_batch(&mut self, mut batch: Batch, seqs: &Sequenced) {
        if !seqs.dropped.is_empty() {
            // Restores whose pixel changed since their guard (on any node): left out.
            let mut index = 0u32;
            batch.paints.retain(|(cmd, _)| {
                let kept = seqs.dropped.binary_search(&index).is_err();
                index += 1;
                if !kept {
                    crate::restore::resolve(cmd, crate::restore::RestoreOutcome::PaintedOver);
                }
                kept
            });
        }
        for ((_, seq), assigned) in batch.paints.iter_mut().zip(seqs.first_pixel..) {
            *seq = assigned;
        }
        assign_post_seqs(&mut batch.posts, &seqs.rooms);
        for (cmd, _) in &batch.paints {
            crate::restore::resolve(cmd, crate::restore::RestoreOutcome::Restored);
        }
        ShardMetrics::add(&self.metrics().paints_accepted, batch.paints.len() as u64);
        ShardMetrics::add(&self.metrics().room_messages, batch.posts.len() as u64);
        self.send_paint_results(batch.paints.iter().map(|(cmd, seq)| (cmd, Ok(*seq))));
        for p in batch.posts {
            self.answer(Origin::Session(p.conn, p.req), Ok(p.seq));
        }
        // Deletions are the room home's (this shard's): its members are told here, in order
        // with the room's messages; the link tells the other nodes through the control log.
        for d in batch.deletes {
            self.on_feed_room_delete(d.room, d.seq);
            self.answer(d.origin, Ok(d.seq));
        }
    }

    /// Answers everything in a batch the store refused or failed with `r` (see
    /// [`Refusal::store_failed`]: an unknown outcome keeps the cooldowns taken).
    fn fail_batch(&mut self, batch: Batch, r: &Refusal) {
        let restore_outcome = if r.not_applied() {
            crate::restore::RestoreOutcome::Refused
        } else {
            crate::restore::RestoreOutcome::Unknown
        };
        for (cmd, _) in &batch.paints {
            if r.not_applied() {
                self.refund_cooldown(cmd);
            }
            crate::restore::resolve(cmd, restore_outcome);
        }
        let results = batch.paints.iter().map(|(cmd, _)| (cmd, Err(r.clone())));
        self.send_paint_results(results);
        // Posts of this batch hold the newest sequences of their rooms: hand them back, unless
        // they may be stored (then a later post must not take the same sequence).
        // Only when no newer post of the room is on its way (a later batch, or this tick's),
        // or that post's sequence would be taken twice.
        if r.not_applied() {
            for p in &batch.posts {
                let newer = self.tick.in_flight.iter().flat_map(|b| &b.posts).chain(&self.tick.posts);
                if newer.clone().any(|q| q.room == p.room) {
                    continue;
                }
                if let Some(room) = self.rooms.get_mut(&p.room) {
                    room.last_seq = room.last_seq.min(p.seq - 1);
                }
            }
        }
        for p in &batch.posts {
            self.answer(Origin::Session(p.conn, p.req), Err(r.clone()));
        }
        for d in batch.deletes {
            self.answer(d.origin, Err(r.clone()));
        }
    }

    fn publish_paints(&mut self, paints: &[(PaintCmd, u64)]) {
        if paints.is_empty() {
            return;
        }
        self.apply_updates(paints.iter().map(|(c, seq)| (c.tile, PixelUpdate::new(c.offset, c.colour), *seq)));
        for (cmd, _) in paints {
            crate::restore::resolve(cmd, crate::restore::RestoreOutcome::Restored);
        }
        ShardMetrics::add(&self.metrics().paints_accepted, paints.len() as u64);
        self.send_paint_results(paints.iter().map(|(cmd, seq)| (cmd, Ok(*seq))));
    }

    /// Cluster mode: committed updates of this shard's tiles, in sequence order, from the
    /// node's feed (whichever node committed them).
    pub(crate) fn on_feed_pixels(&mut self, records: &[PixelRecord]) {
        if let Some(last) = records.last() {
            // What `/stats` and the snapshot's metadata read as the newest sequence.
            self.shared.next_seq.fetch_max(last.seq + 1, Ordering::AcqRel);
        }
        let g = self.config().geometry;
        self.apply_updates(records.iter().filter_map(|r| {
            let loc = g.locate(u32::from(r.x), u32::from(r.y))?;
            Some((loc.tile, PixelUpdate::new(loc.offset, r.colour), r.seq))
        }));
    }

    /// Cluster mode: a tile rebuilt from the store. Replaces the tile when it is newer, and
    /// sends it whole (`TileData`) to every shard with subscribers, which moves their
    /// sessions' cursors to it.
    pub(crate) fn on_replace_tile(&mut self, tile: u32, seq: u64, data: Vec<u8>) {
        let Some(t) = self.tiles.get_mut(&tile).filter(|t| t.seq < seq) else {
            return;
        };
        if t.data.len() != data.len() {
            return tracing::error!(tile, "a rebuilt tile of another size (the canvas geometry differs)");
        }
        self.shared.next_seq.fetch_max(seq + 1, Ordering::AcqRel);
        let interest = t.interest;
        *t = crate::tiles::OwnedTile::new(data, seq);
        t.interest = interest;
        let frame = t.catch_up(tile, pixelparty_protocol::limits::NO_CURSOR);
        for s in 0..self.config().shards {
            if interest & (1 << s) != 0 {
                self.send(s, ShardMsg::Tiles(vec![TileFrame { tile, frame: frame.clone() }].into()));
            }
        }
    }

    /// Applies updates (ascending sequences) to owned tiles and sends one `Pixels` frame per
    /// changed tile to every shard with subscribers. An update a tile already has (its
    /// sequence is not above the tile's) is skipped.
    fn apply_updates(&mut self, updates: impl Iterator<Item = (u32, PixelUpdate, u64)>) {
        let (bpp, ring) = (self.config().geometry.bpp(), self.config().ring_per_tile);
        // Per tile: its sequence before the batch and the batch's updates in order.
        let mut per_tile: HashMap<u32, (u64, Vec<(u64, PixelUpdate)>)> = HashMap::new();
        for (tile_id, update, seq) in updates {
            let Some(tile) = self.tiles.get_mut(&tile_id).filter(|t| t.seq < seq) else {
                continue;
            };
            per_tile.entry(tile_id).or_insert_with(|| (tile.seq, Vec::new())).1.push((seq, update));
            tile.apply(bpp, seq, update, ring);
        }
        let shards = self.config().shards;
        let mut to_shard: Vec<Vec<TileFrame>> = vec![Vec::new(); shards];
        for (tile, (prev, updates)) in per_tile {
            let interest = self.tiles.get(&tile).map_or(0, |t| t.interest);
            if interest == 0 {
                continue;
            }
            let frame = pixels_frames(tile, prev, &updates);
            for (s, list) in to_shard.iter_mut().enumerate() {
                if interest & (1 << s) != 0 {
                    list.push(TileFrame { tile, frame: frame.clone() });
                }
            }
        }
        for (s, frames) in to_shard.into_iter().enumerate() {
            if !frames.is_empty() {
                self.send(s, ShardMsg::Tiles(frames.into()));
            }
        }
    }

    /// Sends paint results to their sessions' shards, one message per shard.
    fn send_paint_results<'a>(&mut self, results: impl Iterator<Item = (&'a PaintCmd, Result<u64, Refusal>)>) {
        let mut per_shard: Vec<Vec<PaintResult>> = vec![Vec::new(); self.config().shards];
        for (cmd, result) in results {
            if let Some((conn, req)) = cmd.origin {
                per_shard[conn.shard].push(PaintResult { conn: conn.conn, req, result, received_ms: cmd.received_ms });
            }
        }
        for (shard, results) in per_shard.into_iter().enumerate() {
            if !results.is_empty() {
                self.send(shard, ShardMsg::PaintsDone(results));
            }
        }
    }

    fn room_shards(&self, room: u32) -> Vec<usize> {
        self.rooms.get(&room).map(|r| r.member_shards().collect()).unwrap_or_default()
    }

    fn publish_posts(&mut self, posts: Vec<PendingPost>) {
        ShardMetrics::add(&self.metrics().room_messages, posts.len() as u64);
        for p in posts {
            if let Some(room) = self.rooms.get_mut(&p.room) {
                room.published_seq = room.published_seq.max(p.seq);
            }
            self.tell_post(p.room, p.seq, p.user, &p.name, p.time_ms, &p.text);
            self.answer(Origin::Session(p.conn, p.req), Ok(p.seq));
        }
    }

    /// Sends a room message to the room's member shards.
    pub(crate) fn tell_post(&mut self, room: u32, seq: u64, author: u32, name: &str, time_ms: u64, text: &str) {
        let frame =
            encode(&ServerFrame::RoomMessage(RoomMessage { room, seq, author, time_ms, author_name: name, text }));
        for s in self.room_shards(room) {
            self.send(s, ShardMsg::RoomFrame { room, author, frame: frame.clone() });
        }
    }

    fn publish_deletes(&mut self, deletes: Vec<PendingDelete>) {
        for d in deletes {
            self.tell_deleted(d.room, d.seq);
            self.answer(d.origin, Ok(d.seq));
        }
    }

    /// Sends a room message's tombstone to the room's member shards.
    pub(crate) fn tell_deleted(&mut self, room: u32, seq: u64) {
        let frame = encode(&ServerFrame::Deleted(Deleted { kind: ConvKind::Room, conv: room, seq }));
        for s in self.room_shards(room) {
            self.send(s, ShardMsg::RoomFrame { room, author: 0, frame: frame.clone() });
        }
    }
}

/// Gives each post of a batch the sequence the store assigned: posts are grouped by room in
/// the order the tick wrote them (consecutive posts of one room form a group), and `rooms`
/// holds each group's first sequence in that order.
fn assign_post_seqs(posts: &mut [PendingPost], rooms: &[(u32, u64)]) {
    let mut groups = rooms.iter();
    let mut current: Option<(u32, u64)> = None;
    for p in posts {
        let next = match current {
            Some((room, next)) if room == p.room => next,
            _ => match groups.next() {
                Some(&(room, first)) if room == p.room => first,
                other => {
                    tracing::error!(room = p.room, ?other, "store assigned no sequence to a room's posts");
                    p.seq
                }
            },
        };
        p.seq = next;
        current = Some((p.room, next + 1));
    }
}

/// Encodes a tile's updates of one tick as `Pixels` frames (more than one only when they
/// exceed a frame), chained from `prev`.
fn pixels_frames(tile: u32, prev: u64, updates: &[(u64, PixelUpdate)]) -> Bytes {
    let mut out = BytesMut::new();
    let mut from = prev;
    for chunk in updates.chunks(MAX_PIXELS_PER_FRAME) {
        let last = chunk.last().map_or(from, |(s, _)| *s);
        let list: Vec<PixelUpdate> = chunk.iter().map(|(_, u)| *u).collect();
        let frame = ServerFrame::Pixels(Pixels { head: PixelsHead::new(tile, from, last), updates: &list });
        if let Err(e) = frame.encode(&mut out) {
            tracing::error!(error = %e, tile, "pixels frame");
        }
        from = last;
    }
    out.freeze()
}
