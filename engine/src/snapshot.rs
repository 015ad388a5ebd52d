//! Canvas snapshots: a copy of every tile with the sequence it reflects, refreshed from the
//! shards' changed tiles, served by the gateway (the r/place "CDN" snapshot) and written to
//! the store periodically so that start-up replays only a short journal tail.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use pixelparty_protocol::Geometry;
use pixelparty_storage::TileSnapshot;

use crate::runtime::{EngineHandle, now_ms};

/// How long a snapshot refresh waits for the shards.
const COPY_TIMEOUT: Duration = Duration::from_secs(5);

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
}

impl Snapshotter {
    /// Takes a full copy of the canvas.
    pub fn new(engine: EngineHandle) -> Option<Self> {
        let geometry = engine.shared().config.geometry;
        let count = geometry.tile_count() as usize;
        let copies = engine.copy_tiles(true, COPY_TIMEOUT)?;
        let mut tiles = vec![Bytes::new(); count];
        let mut seqs = vec![0; count];
        for c in copies {
            seqs[c.tile as usize] = c.seq;
            tiles[c.tile as usize] = c.data;
        }
        let persisted = Mutex::new(seqs.clone());
        let snap = CanvasSnapshot { version: 1, taken_ms: now_ms(), geometry, tiles, seqs };
        Some(Self { engine, latest: RwLock::new(Arc::new(snap)), persisted })
    }

    /// The latest snapshot.
    pub fn latest(&self) -> Arc<CanvasSnapshot> {
        self.latest.read().clone()
    }

    /// Copies the tiles changed since the last refresh; returns the (possibly new) latest.
    pub fn refresh(&self) -> Arc<CanvasSnapshot> {
        let Some(changed) = self.engine.copy_tiles(false, COPY_TIMEOUT) else {
            tracing::warn!("snapshot refresh timed out");
            return self.latest();
        };
        let current = self.latest();
        if changed.is_empty() {
            return current;
        }
        let mut tiles = current.tiles.clone();
        let mut seqs = current.seqs.clone();
        for c in changed {
            seqs[c.tile as usize] = c.seq;
            tiles[c.tile as usize] = c.data;
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
            store.run(move |tx| tx.save_tiles(&changed))?;
            for (t, seq) in seqs {
                persisted[t as usize] = seq;
            }
        }
        if let Some(retention) = store.config().journal_retention {
            let before = now_ms().saturating_sub(retention.as_millis() as u64);
            let pruned = store.run(move |tx| tx.prune_journal(before, 10_000))?;
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
