//! Canvas snapshots: a copy of every tile with the sequence it reflects, refreshed from the
//! shards' changed tiles, served by the gateway (the r/place "CDN" snapshot) and written to
//! the store periodically so that start-up replays only a short journal tail.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Mutex, RwLock};
use pixelparty_protocol::Geometry;
use pixelparty_storage::TileSnapshot;

use crate::msg::TileCopy;
use crate::routing::ShardId;
use crate::runtime::{EngineHandle, now_ms};

/// How long a snapshot refresh waits for the shards by default.
const COPY_TIMEOUT: Duration = Duration::from_secs(5);

/// Copy requests to the shards and their answers. A shard clears its changed flags when it
/// answers, so no answer may be thrown away: one that misses a refresh's deadline is merged
/// by a later refresh, and a shard that has not answered is not asked again meanwhile (so
/// the channel, with room for one answer per shard, never fills and a shard never blocks).
#[derive(Debug)]
struct Copier {
    tx: Sender<(ShardId, Vec<TileCopy>)>,
    rx: Receiver<(ShardId, Vec<TileCopy>)>,
    outstanding: Vec<bool>,
    timeout: Duration,
}

impl Copier {
    fn new(shards: usize, timeout: Duration) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(shards);
        Self { tx, rx, outstanding: vec![false; shards], timeout }
    }

    /// Asks every shard without a request in flight, then collects answers until none is
    /// outstanding or the deadline passes. Returns every answer received (possibly late ones
    /// from earlier rounds) and whether all shards answered.
    fn collect(&mut self, engine: &EngineHandle, full: bool) -> (Vec<TileCopy>, bool) {
        for (shard, asked) in self.outstanding.iter_mut().enumerate() {
            if !*asked {
                // Outstanding only if it was delivered: a shard not asked is asked next time.
                *asked = engine.request_copies(shard, full, &self.tx);
            }
        }
        let deadline = Instant::now() + self.timeout;
        let mut copies = Vec::new();
        while self.outstanding.iter().any(|&o| o) {
            let Ok((shard, list)) = self.rx.recv_deadline(deadline) else { break };
            if let Some(o) = self.outstanding.get_mut(shard) {
                *o = false;
            }
            copies.extend(list);
        }
        (copies, !self.outstanding.iter().any(|&o| o))
    }
}

/// The canvas at one moment: every tile and the sequence it reflects.
#[derive(Debug)]
pub struct CanvasSnapshot {
    /// Increases with every refresh that changed something.
    pub version: u64,
    /// When it was assembled (ms since the Unix epoch).
    pub taken_ms: u64,
    /// Canvas shape.
    pub geometry: Geometry,
    /// Packed tiles by id.
    pub tiles: Vec<Bytes>,
    /// Sequence of each tile.
    pub seqs: Vec<u64>,
}

/// Keeps the latest [`CanvasSnapshot`] and what has been written to the store.
#[derive(Debug)]
pub struct Snapshotter {
    engine: EngineHandle,
    latest: RwLock<Arc<CanvasSnapshot>>,
    /// Tile sequences last written to the store.
    persisted: Mutex<Vec<u64>>,
    copier: Mutex<Copier>,
}

impl Snapshotter {
    /// Takes a full copy of the canvas. What counts as already written is what the store
    /// holds: a tile recovered from the journal alone (painted, then a crash before its
    /// snapshot) is written by the next [`Snapshotter::persist`], so pruning can pass it.
    pub fn new(engine: EngineHandle) -> Option<Self> {
        Self::with_timeout(engine, COPY_TIMEOUT)
    }

    /// [`Snapshotter::new`] with another deadline for the shards' answers.
    pub fn with_timeout(engine: EngineHandle, timeout: Duration) -> Option<Self> {
        let geometry = engine.shared().config.geometry;
        let count = geometry.tile_count() as usize;
        let mut copier = Copier::new(engine.shared().config.shards, timeout);
        let (copies, complete) = copier.collect(&engine, true);
        if !complete {
            return None;
        }
        let mut tiles = vec![Bytes::new(); count];
        let mut seqs = vec![0; count];
        for c in copies {
            seqs[c.tile as usize] = c.seq;
            tiles[c.tile as usize] = c.data;
        }
        let mut stored = vec![0; count];
        match engine.shared().store.wait(|b| b.tile_snapshot_seqs()) {
            Ok(list) => {
                for (tile, seq) in list {
                    if let Some(s) = stored.get_mut(tile as usize) {
                        *s = seq;
                    }
                }
            }
            // Unknown: write every tile once rather than trust a guess.
            Err(e) => tracing::warn!(error = %e, "reading stored tile snapshots"),
        }
        let persisted = Mutex::new(stored);
        let snap = CanvasSnapshot { version: 1, taken_ms: now_ms(), geometry, tiles, seqs };
        Some(Self { engine, latest: RwLock::new(Arc::new(snap)), persisted, copier: Mutex::new(copier) })
    }

    /// The latest snapshot.
    pub fn latest(&self) -> Arc<CanvasSnapshot> {
        self.latest.read().clone()
    }

    /// Copies the tiles changed since the last refresh; returns the (possibly new) latest.
    /// A shard that misses the deadline is logged; what it sends later is merged by a later
    /// refresh (never lost), and what the others sent is used at once.
    pub fn refresh(&self) -> Arc<CanvasSnapshot> {
        // Held to the end: refreshes are serialised, so none overwrites another's merge.
        let mut copier = self.copier.lock();
        let (changed, complete) = copier.collect(&self.engine, false);
        if !complete {
            tracing::warn!("snapshot refresh: a shard did not answer in time; its tiles follow later");
        }
        let current = self.latest();
        // Late answers can be older than what a newer answer already brought: keep the newest.
        let changed: Vec<TileCopy> =
            changed.into_iter().filter(|c| current.seqs.get(c.tile as usize).is_some_and(|&s| c.seq > s)).collect();
        if changed.is_empty() {
            return current;
        }
        let mut tiles = current.tiles.clone();
        let mut seqs = current.seqs.clone();
        for c in changed {
            if c.seq > seqs[c.tile as usize] {
                seqs[c.tile as usize] = c.seq;
                tiles[c.tile as usize] = c.data;
            }
        }
        let next = Arc::new(CanvasSnapshot {
            version: current.version + 1,
            taken_ms: now_ms(),
            geometry: current.geometry,
            tiles,
            seqs,
        });
        *self.latest.write() = next.clone();
        next
    }

    /// Writes the tiles changed since the last write to the store, then prunes the journal
    /// past its retention. Returns how many tiles were written.
    pub fn persist(&self) -> Result<usize, pixelparty_storage::StorageError> {
        let snap = self.refresh();
        let mut persisted = self.persisted.lock();
        let changed: Vec<TileSnapshot> = snap
            .seqs
            .iter()
            .enumerate()
            .filter(|(t, seq)| **seq > persisted[*t])
            .map(|(t, seq)| TileSnapshot { tile: t as u32, seq: *seq, data: snap.tiles[t].to_vec() })
            .collect();
        let count = changed.len();
        let store = self.engine.shared().store.clone();
        if count > 0 {
            let seqs: Vec<(u32, u64)> = changed.iter().map(|t| (t.tile, t.seq)).collect();
            store.wait(move |b| b.save_tiles(changed))?;
            for (t, seq) in seqs {
                persisted[t as usize] = seq;
            }
        }
        if let Some(retention) = store.journal_retention() {
            let before = now_ms().saturating_sub(retention.as_millis() as u64);
            let geometry = snap.geometry;
            let pruned = store.wait(move |b| b.prune_journal(geometry, before, 10_000))?;
            if pruned > 0 {
                tracing::info!(pruned, "journal pruned past retention");
            }
        }
        Ok(count)
    }

    /// Runs refreshes every `refresh` and store writes every `persist` on a thread of its own
    /// until `stop` returns true (checked each refresh).
    pub fn spawn(
        self: &Arc<Self>,
        refresh: Duration,
        persist: Duration,
        stop: impl Fn() -> bool + Send + 'static,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let me = self.clone();
        std::thread::Builder::new().name("snapshotter".into()).spawn(move || {
            let mut last_persist = Instant::now();
            while !stop() {
                std::thread::sleep(refresh);
                me.refresh();
                if last_persist.elapsed() >= persist {
                    last_persist = Instant::now();
                    if let Err(e) = me.persist() {
                        tracing::error!(error = %e, "writing tile snapshots");
                    }
                }
            }
        })
    }
}
