//! The canvas: an append-only journal of accepted pixel updates, per-tile snapshots, recovery,
//! and the queries behind the pixel inspector and rollback.
//!
//! The journal is written in blocks: each [`Tx::append_pixels`] call stores one value under its
//! first sequence holding every record of the batch (sequence, x, y, colour, user, time). Calls
//! must cover disjoint sequence ranges (the engine reserves one contiguous range per batch), so
//! block order is sequence order. Per update the pixel index holds `y ‖ x ‖ seq → (colour,
//! user, time)` for the inspector, written in bulk after the block commits (see
//! [`index`](crate::index)); per block the time index holds `time ‖ first seq → ()`,
//! which turns a time range into a sequence range. Recovery loads every tile snapshot and
//! replays the blocks after the oldest of them, applying a record only to tiles whose snapshot
//! is older than it.

use pixelparty_protocol::Geometry;
use pixelparty_protocol::canvas::set_pixel;

use crate::codec::{Dec, Enc, key, key_u32, key_u64};
use crate::db::{Db, names};
use crate::error::{Result, StorageError};
use crate::index::{Chunk, pixel_key};
use crate::records::PixelRecord;
use crate::writer::Tx;

/// A tile as snapshotted: every update up to `seq` applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileSnapshot {
    /// Tile id.
    pub tile: u32,
    /// Sequence the tile reflects.
    pub seq: u64,
    /// Packed pixels.
    pub data: Vec<u8>,
}

impl TileSnapshot {
    /// The stored value: sequence, then the packed pixels (the tile id is the key).
    pub(crate) fn encode(&self) -> Vec<u8> {
        Enc::new().u64(self.seq).bytes(&self.data).done()
    }

    pub(crate) fn decode(tile: u32, v: &[u8]) -> Result<Self> {
        let mut d = Dec::new(names::TILES, v)?;
        let seq = d.u64()?;
        let data = d.bytes()?.to_vec();
        d.finish()?;
        Ok(Self { tile, seq, data })
    }
}

/// The canvas as recovered at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredCanvas {
    /// Packed bytes of every tile, by tile id.
    pub tiles: Vec<Vec<u8>>,
    /// The sequence each tile reflects (0: never painted).
    pub tile_seqs: Vec<u64>,
    /// The highest sequence in the journal or any snapshot.
    pub last_seq: u64,
    /// Journal entries replayed on top of the snapshots.
    pub replayed: u64,
}

/// The pure part of recovery, shared by every backend: tile snapshots first, then the journal
/// from [`Replay::first_needed_seq`] on, in sequence order, in as many pieces as the backend reads it.
/// A record is applied only to a tile whose snapshot (or last applied record) is older.
#[derive(Debug)]
pub(crate) struct Replay<'g> {
    geometry: &'g Geometry,
    tiles: Vec<Vec<u8>>,
    tile_seqs: Vec<u64>,
    last_seq: u64,
    replayed: u64,
}

impl<'g> Replay<'g> {
    /// Starts from the stored snapshots (checked against the geometry).
    pub(crate) fn new(geometry: &'g Geometry, snapshots: Vec<TileSnapshot>) -> Result<Self> {
        let count = geometry.tile_count() as usize;
        let mut tiles = vec![vec![0u8; geometry.tile_bytes()]; count];
        let mut tile_seqs = vec![0u64; count];
        for snap in snapshots {
            let slot = tiles
                .get_mut(snap.tile as usize)
                .ok_or_else(|| StorageError::corrupt(names::TILES, "tile id beyond canvas"))?;
            if snap.data.len() != geometry.tile_bytes() {
                return Err(StorageError::corrupt(names::TILES, "tile snapshot has the wrong size"));
            }
            *slot = snap.data;
            tile_seqs[snap.tile as usize] = snap.seq;
        }
        let last_seq = tile_seqs.iter().copied().max().unwrap_or(0);
        Ok(Self { geometry, tiles, tile_seqs, last_seq, replayed: 0 })
    }

    /// The first journal sequence the replay needs (every older one is in every snapshot).
    pub(crate) fn first_needed_seq(&self) -> u64 {
        self.tile_seqs.iter().copied().min().unwrap_or(0).saturating_add(1)
    }

    /// Applies the next journal records (ascending, after those applied so far).
    pub(crate) fn apply(&mut self, records: &[PixelRecord]) -> Result<()> {
        let geometry = self.geometry;
        for rec in records {
            let loc = geometry
                .locate(u32::from(rec.x), u32::from(rec.y))
                .ok_or_else(|| StorageError::corrupt(names::JOURNAL, "pixel outside the canvas"))?;
            let t = loc.tile as usize;
            if rec.seq > self.tile_seqs[t] {
                set_pixel(&mut self.tiles[t], geometry.bpp(), loc.offset, rec.colour);
                self.tile_seqs[t] = rec.seq;
                self.replayed += 1;
            }
            self.last_seq = self.last_seq.max(rec.seq);
        }
        Ok(())
    }

    /// The recovered canvas.
    pub(crate) fn finish(self) -> RecoveredCanvas {
        RecoveredCanvas {
            tiles: self.tiles,
            tile_seqs: self.tile_seqs,
            last_seq: self.last_seq,
            replayed: self.replayed,
        }
    }
}

/// The canvas as it was at `at_ms`, on any backend: every journal record with `time_ms <=
/// at_ms` replayed onto a blank canvas, in sequence order (to see what a griefing raid
/// painted over, say). It needs the journal from its first update on: refused as invalid once
/// retention has pruned that.
pub async fn canvas_at(b: &dyn crate::Backend, geometry: Geometry, at_ms: u64) -> Result<RecoveredCanvas> {
    canvas_at_from(b, geometry, None, at_ms).await
}

/// The canvas as it was at `at_ms`: `base` (a canvas complete up to its `last_seq` and
/// painted no later than `at_ms`, such as an older backup's; `None`: blank) with every later
/// journal record of `b` with `time_ms <= at_ms` replayed onto it. Refused as invalid when
/// `b`'s journal no longer holds the records right after the base.
pub async fn canvas_at_from(
    b: &dyn crate::Backend,
    geometry: Geometry,
    base: Option<RecoveredCanvas>,
    at_ms: u64,
) -> Result<RecoveredCanvas> {
    /// Journal records read per query.
    const PAGE: usize = 10_000;
    let (mut replay, start) = match base {
        None => (Replay::new(&geometry, Vec::new())?, 0),
        Some(c) => {
            let start = c.last_seq;
            let snaps = c.tiles.into_iter().zip(c.tile_seqs).enumerate();
            let snaps = snaps.map(|(tile, (data, seq))| TileSnapshot { tile: tile as u32, seq, data }).collect();
            (Replay::new(&geometry, snaps)?, start)
        }
    };
    let mut after = start;
    loop {
        let page = b.journal_after(after, PAGE).await?;
        let (Some(first), Some(last)) = (page.first(), page.last()) else {
            let painted_since = b.tile_snapshot_seqs().await?.iter().any(|&(_, seq)| seq > start);
            if after == start && painted_since {
                // Painted since the base, the journal now empty: retention pruned it all.
                return Err(StorageError::invalid(
                    "the journal holds none of the canvas's updates (pruned by retention): that moment cannot be rebuilt",
                ));
            }
            break;
        };
        if after == start && first.seq != start + 1 {
            return Err(StorageError::invalid(
                "the journal no longer holds the updates that moment needs (pruned by retention): that moment cannot be rebuilt",
            ));
        }
        after = last.seq;
        let then: Vec<PixelRecord> = page.into_iter().filter(|r| r.time_ms <= at_ms).collect();
        replay.apply(&then)?;
    }
    Ok(replay.finish())
}

pub(crate) fn encode_block(records: &[PixelRecord]) -> Vec<u8> {
    let mut v = Enc::new().u32(records.len() as u32).done();
    v.reserve(records.len() * PixelRecord::BLOCK_LEN);
    for r in records {
        r.write_block_entry(&mut v);
    }
    v
}

/// Decodes a journal block, checking its count, its length and that sequences ascend.
pub(crate) fn decode_block(first_seq: u64, v: &[u8]) -> Result<Vec<PixelRecord>> {
    let mut d = Dec::new(names::JOURNAL, v)?;
    let count = d.u32()? as usize;
    if v.len() != 5 + count * PixelRecord::BLOCK_LEN {
        return Err(d.bad("block length does not match its count"));
    }
    let mut out = Vec::with_capacity(count);
    let mut prev = first_seq.checked_sub(1);
    for _ in 0..count {
        let r = PixelRecord::read_block_entry(&mut d)?;
        if prev.is_some_and(|p| r.seq <= p) {
            return Err(d.bad("block sequences do not ascend from its key"));
        }
        prev = Some(r.seq);
        out.push(r);
    }
    d.finish()?;
    Ok(out)
}

pub(crate) fn encode_geometry(g: &Geometry) -> Vec<u8> {
    Enc::new().u32(g.width()).u32(g.height()).u8(g.bpp()).u16(g.tile_size()).done()
}

pub(crate) fn decode_geometry(v: &[u8]) -> Result<Geometry> {
    let mut d = Dec::new(names::META, v)?;
    let (w, h, bpp, ts) = (d.u32()?, d.u32()?, d.u8()?, d.u16()?);
    d.finish()?;
    Geometry::new(w, h, bpp, ts).map_err(|_| StorageError::corrupt(names::META, "bad canvas geometry"))
}

impl Db {
    /// The geometry the canvas was created with, if any.
    pub fn canvas_geometry(&self) -> Result<Option<Geometry>> {
        self.meta.get("canvas")?.map(|v| decode_geometry(&v)).transpose()
    }

    /// Journal blocks from the one holding `from_seq` onwards, in sequence order.
    fn blocks_from(&self, from_seq: u64) -> Result<impl Iterator<Item = Result<Vec<PixelRecord>>> + '_> {
        let start = match self.journal.range(..=from_seq.to_be_bytes()).next_back() {
            Some(g) => key_u64(names::JOURNAL, &g.key()?, 0)?,
            None => 0,
        };
        Ok(self.journal.range(start.to_be_bytes()..).map(|g| {
            let (k, v) = g.into_inner()?;
            decode_block(key_u64(names::JOURNAL, &k, 0)?, &v)
        }))
    }

    /// The journal entry with this sequence.
    pub fn journal_entry(&self, seq: u64) -> Result<Option<PixelRecord>> {
        match self.blocks_from(seq)?.next() {
            Some(block) => Ok(block?.into_iter().find(|r| r.seq == seq)),
            None => Ok(None),
        }
    }

    /// The highest journaled sequence (0 when empty).
    pub fn last_journal_seq(&self) -> Result<u64> {
        match self.journal.last_key_value() {
            Some(g) => {
                let (k, v) = g.into_inner()?;
                Ok(decode_block(key_u64(names::JOURNAL, &k, 0)?, &v)?.last().map_or(0, |r| r.seq))
            }
            None => Ok(0),
        }
    }

    /// Up to `limit` journal entries with `seq > after`, ascending.
    pub fn journal_after(&self, after: u64, limit: usize) -> Result<Vec<PixelRecord>> {
        let mut out = Vec::new();
        for block in self.blocks_from(after.saturating_add(1))? {
            for r in block? {
                if r.seq > after {
                    if out.len() >= limit {
                        return Ok(out);
                    }
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// Every stored tile snapshot.
    pub fn tile_snapshots(&self) -> Result<Vec<TileSnapshot>> {
        self.tiles
            .iter()
            .map(|g| {
                let (k, v) = g.into_inner()?;
                TileSnapshot::decode(key_u32(names::TILES, &k, 0)?, &v)
            })
            .collect()
    }

    /// The sequence of every stored tile snapshot, by tile id (without reading the pixels).
    pub fn tile_snapshot_seqs(&self) -> Result<Vec<(u32, u64)>> {
        self.tiles
            .iter()
            .map(|g| {
                let (k, v) = g.into_inner()?;
                let seq = Dec::new(names::TILES, &v)?.u64()?;
                Ok((key_u32(names::TILES, &k, 0)?, seq))
            })
            .collect()
    }

    /// Rebuilds the canvas: latest tile snapshots plus the journal after them.
    pub fn recover_canvas(&self, geometry: &Geometry) -> Result<RecoveredCanvas> {
        let mut replay = Replay::new(geometry, self.tile_snapshots()?)?;
        for block in self.blocks_from(replay.first_needed_seq())? {
            replay.apply(&block?)?;
        }
        Ok(replay.finish())
    }

    /// The first journal sequence at or after `time_ms` (via the time index), if any.
    fn first_seq_at(&self, time_ms: u64) -> Result<Option<u64>> {
        match self.time_index.range(time_ms.to_be_bytes()..).next() {
            Some(g) => Ok(Some(key_u64(names::TIME_INDEX, &g.key()?, 8)?)),
            None => Ok(None),
        }
    }

    /// Up to `limit` updates by `user` with `from_ms <= time < to_ms`, ascending by seq.
    pub fn user_pixels(&self, user: u32, from_ms: u64, to_ms: u64, limit: usize) -> Result<Vec<PixelRecord>> {
        let Some(start) = self.first_seq_at(from_ms)? else {
            return Ok(Vec::new());
        };
        let end = self.first_seq_at(to_ms.saturating_add(1))?.unwrap_or(u64::MAX);
        let mut out = Vec::new();
        for block in self.blocks_from(start)? {
            for rec in block? {
                if rec.seq >= end {
                    return Ok(out);
                }
                if rec.seq >= start && rec.user == user && (from_ms..to_ms).contains(&rec.time_ms) {
                    if out.len() >= limit {
                        return Ok(out);
                    }
                    out.push(rec);
                }
            }
        }
        Ok(out)
    }
}

impl Tx<'_> {
    /// Records the canvas geometry on first start; afterwards refuses a different one (tiles
    /// and journal would not line up).
    pub fn init_canvas(&mut self, geometry: &Geometry) -> Result<()> {
        match self.canvas_geometry()? {
            Some(g) if g == *geometry => Ok(()),
            Some(_) => Err(StorageError::conflict("canvas geometry differs from the stored one")),
            None => {
                let db = self.db;
                self.put(&db.meta, "canvas", encode_geometry(geometry));
                Ok(())
            }
        }
    }

    /// Appends accepted updates to the journal as one block. Sequences must ascend within the
    /// slice, and no other call may cover a sequence inside this call's range.
    pub fn append_pixels(&mut self, records: &[PixelRecord]) -> Result<()> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        if records.windows(2).any(|w| w[1].seq <= w[0].seq) {
            return Err(StorageError::invalid("journal block sequences must ascend"));
        }
        let db = self.db;
        self.put(&db.journal, first.seq.to_be_bytes(), encode_block(records));
        // The block's pixel-index entries go to the index tail once this job commits; until
        // they are ingested, the marker says so (see `index`).
        self.put(&db.index_pending, first.seq.to_be_bytes(), Vec::new());
        self.index_chunks.push(std::sync::Arc::new(Chunk::new(first.seq, records.to_vec())));
        self.put(&db.time_index, key(&[&first.time_ms.to_be_bytes(), &first.seq.to_be_bytes()]), Vec::new());
        Ok(())
    }

    /// Replaces the snapshots of the given tiles.
    pub fn save_tiles(&mut self, snapshots: &[TileSnapshot]) -> Result<()> {
        let db = self.db;
        for s in snapshots {
            self.put(&db.tiles, s.tile.to_be_bytes(), s.encode());
        }
        Ok(())
    }

    /// Deletes up to `max` whole journal blocks whose records are all older than `before_ms`,
    /// each covered by the stored snapshot of its own tile, and already in the pixel index,
    /// with their index entries. Returns how many records were deleted.
    ///
    /// Coverage is per record: a tile without a snapshot covers nothing (its records are its
    /// only copy), and a tile that stays idle does not hold back the blocks of other tiles.
    pub fn prune_journal(&mut self, geometry: &Geometry, before_ms: u64, max: usize) -> Result<usize> {
        let mut covered = vec![0u64; geometry.tile_count() as usize];
        for (tile, seq) in self.tile_snapshot_seqs()? {
            if let Some(c) = covered.get_mut(tile as usize) {
                *c = seq;
            }
        }
        let is_covered = |r: &PixelRecord| {
            geometry
                .locate(u32::from(r.x), u32::from(r.y))
                .is_some_and(|l| covered.get(l.tile as usize).is_some_and(|&c| c >= r.seq))
        };
        let mut doomed = Vec::new();
        for g in self.journal.iter().take(max) {
            let (k, v) = g.into_inner()?;
            let first = key_u64(names::JOURNAL, &k, 0)?;
            let block = decode_block(first, &v)?;
            if block.iter().any(|r| r.time_ms >= before_ms || !is_covered(r)) || self.is_index_pending(first)? {
                break;
            }
            doomed.push((first, block));
        }
        let db = self.db;
        let mut deleted = 0;
        for (first, block) in &doomed {
            self.del(&db.journal, first.to_be_bytes());
            for r in block {
                self.del(&db.pixel_index, pixel_key(r.x, r.y, r.seq));
            }
            deleted += block.len();
        }
        if let Some((_, last_block)) = doomed.last() {
            let last_seq = last_block.last().map_or(0, |r| r.seq);
            let mut stale = Vec::new();
            for g in self.time_index.iter() {
                let k = g.key()?;
                if key_u64(names::TIME_INDEX, &k, 8)? > last_seq {
                    break;
                }
                stale.push(k.to_vec());
            }
            for k in stale {
                self.del(&db.time_index, k);
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use pixelparty_protocol::canvas::get_pixel;

    use crate::testing::temp_fjall;

    use super::*;

    fn rec(seq: u64, x: u16, y: u16, colour: u8, user: u32, time_ms: u64) -> PixelRecord {
        PixelRecord { seq, x, y, colour, user, time_ms }
    }

    #[test]
    fn geometry_is_fixed_once_set() {
        let (_dir, store) = temp_fjall();
        let g = Geometry::new(64, 64, 4, 16).unwrap();
        store.run(move |tx| tx.init_canvas(&g)).unwrap();
        store.run(move |tx| tx.init_canvas(&g)).unwrap();
        let other = Geometry::new(128, 64, 4, 16).unwrap();
        assert!(store.run(move |tx| tx.init_canvas(&other)).unwrap_err().is_conflict());
        assert_eq!(store.canvas_geometry().unwrap(), Some(g));
    }

    #[test]
    fn recovery_applies_journal_after_each_tiles_snapshot() {
        let (_dir, store) = temp_fjall();
        let g = Geometry::new(32, 16, 4, 16).unwrap(); // two tiles
        let batch =
            vec![rec(1, 0, 0, 1, 1, 10), rec(2, 20, 0, 2, 1, 10), rec(3, 0, 0, 3, 2, 11), rec(4, 21, 1, 4, 2, 12)];
        store.run(move |tx| tx.append_pixels(&batch)).unwrap();
        // Snapshot tile 0 at seq 3 (with pixel 0 = 3); tile 1 never snapshotted.
        let mut t0 = vec![0u8; g.tile_bytes()];
        set_pixel(&mut t0, 4, 0, 3);
        let snap = vec![TileSnapshot { tile: 0, seq: 3, data: t0 }];
        store.run(move |tx| tx.save_tiles(&snap)).unwrap();
        store.run(|tx| tx.append_pixels(&[rec(5, 1, 0, 5, 3, 13)])).unwrap();
        let c = store.recover_canvas(&g).unwrap();
        assert_eq!(c.tile_seqs, vec![5, 4]);
        assert_eq!(c.last_seq, 5);
        assert_eq!(get_pixel(&c.tiles[0], 4, 0), 3);
        assert_eq!(get_pixel(&c.tiles[0], 4, 1), 5);
        assert_eq!(get_pixel(&c.tiles[1], 4, 4), 2);
        assert_eq!(get_pixel(&c.tiles[1], 4, 16 + 5), 4);
    }

    #[test]
    fn inspector_and_user_ranges() {
        let (_dir, store) = temp_fjall();
        store.run(|tx| tx.append_pixels(&[rec(1, 5, 5, 1, 7, 100), rec(2, 5, 5, 2, 8, 100)])).unwrap();
        store.run(|tx| tx.append_pixels(&[rec(3, 6, 5, 3, 7, 200)])).unwrap();
        store.run(|tx| tx.append_pixels(&[rec(4, 5, 5, 4, 7, 300)])).unwrap();
        let h = store.pixel_history(5, 5, u64::MAX, 10).unwrap();
        assert_eq!(h.iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 2, 1]);
        assert_eq!(store.pixel_history(5, 5, 4, 1).unwrap()[0].user, 8, "the update before seq 4");
        let mine = store.user_pixels(7, 150, 301, 10).unwrap();
        assert_eq!(mine.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(store.user_pixels(7, 0, 150, 10).unwrap().len(), 1);
        assert!(store.user_pixels(7, 400, 500, 10).unwrap().is_empty());
    }

    #[test]
    fn pruning_keeps_what_snapshots_do_not_cover() {
        let (_dir, store) = temp_fjall();
        let g = Geometry::new(16, 16, 4, 16).unwrap();
        store.run(|tx| tx.append_pixels(&[rec(1, 0, 0, 1, 1, 10), rec(2, 1, 0, 1, 1, 10)])).unwrap();
        store.run(|tx| tx.append_pixels(&[rec(3, 2, 0, 1, 1, 20)])).unwrap();
        assert_eq!(store.run(move |tx| tx.prune_journal(&g, 1000, 100)).unwrap(), 0, "no snapshot covers anything yet");
        let data = store.recover_canvas(&g).unwrap().tiles.remove(0);
        store.run(move |tx| tx.save_tiles(&[TileSnapshot { tile: 0, seq: 2, data }])).unwrap();
        assert_eq!(store.run(move |tx| tx.prune_journal(&g, 1000, 100)).unwrap(), 0, "not in the pixel index yet");
        store.settle_index().unwrap();
        assert_eq!(store.pixel_history(0, 0, u64::MAX, 10).unwrap().len(), 1);
        assert_eq!(store.run(move |tx| tx.prune_journal(&g, 1000, 100)).unwrap(), 2);
        assert_eq!(store.journal_after(0, 10).unwrap().len(), 1);
        assert!(store.pixel_history(0, 0, u64::MAX, 10).unwrap().is_empty());
        let c = store.recover_canvas(&g).unwrap();
        assert_eq!(c.tile_seqs, vec![3]);
    }

    /// Defect: pruning took the minimum over *stored* snapshots as covered, so the only
    /// record of a tile that was never snapshotted (painted once, then a crash) was pruned
    /// once another tile's snapshot passed it, and the next start lost the pixel.
    #[test]
    fn pruning_never_drops_the_only_record_of_an_unsnapshotted_tile() {
        let (_dir, store) = temp_fjall();
        let g = Geometry::new(32, 16, 4, 16).unwrap(); // tiles 0 and 1
        store.run(move |tx| tx.init_canvas(&g)).unwrap();
        store.run(|tx| tx.append_pixels(&[rec(1, 3, 3, 7, 1, 10)])).unwrap(); // tile 0
        store.run(|tx| tx.append_pixels(&[rec(2, 20, 0, 5, 2, 20)])).unwrap(); // tile 1
        let tile1 = store.recover_canvas(&g).unwrap().tiles.remove(1);
        store.run(move |tx| tx.save_tiles(&[TileSnapshot { tile: 1, seq: 2, data: tile1 }])).unwrap();
        store.settle_index().unwrap();
        store.run(move |tx| tx.prune_journal(&g, u64::MAX, 100)).unwrap();
        let c = store.recover_canvas(&g).unwrap();
        assert_eq!(get_pixel(&c.tiles[0], 4, 3 * 16 + 3), 7, "tile 0's pixel survives pruning");
        assert_eq!(c.tile_seqs, vec![1, 2]);
    }

    /// Defect: one idle tile's old snapshot held back pruning for every other tile for ever.
    /// Coverage is per record: a block goes once each of its records is in its own tile's
    /// snapshot.
    #[test]
    fn an_idle_tile_does_not_hold_back_pruning() {
        let (_dir, store) = temp_fjall();
        let g = Geometry::new(32, 16, 4, 16).unwrap();
        store.run(move |tx| tx.init_canvas(&g)).unwrap();
        store.run(|tx| tx.append_pixels(&[rec(1, 20, 0, 5, 2, 10)])).unwrap(); // tile 1, then idle
        for seq in 2..=5 {
            store.run(move |tx| tx.append_pixels(&[rec(seq, 1, 1, seq as u8, 1, 10 + seq)])).unwrap(); // tile 0
        }
        let c = store.recover_canvas(&g).unwrap();
        let snaps = vec![
            TileSnapshot { tile: 0, seq: 5, data: c.tiles[0].clone() },
            TileSnapshot { tile: 1, seq: 1, data: c.tiles[1].clone() },
        ];
        store.run(move |tx| tx.save_tiles(&snaps)).unwrap();
        store.settle_index().unwrap();
        assert_eq!(store.run(move |tx| tx.prune_journal(&g, u64::MAX, 100)).unwrap(), 5, "every record is covered");
        assert_eq!(store.recover_canvas(&g).unwrap(), RecoveredCanvas { replayed: 0, ..c });
    }
}
