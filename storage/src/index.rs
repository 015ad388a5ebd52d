//! The pixel index (`y ‖ x ‖ seq → colour, user, time`, behind the pixel inspector and
//! rollback) and how it is written: not one memtable insert per accepted update, but in bulk.
//!
//! Inserting one random-key entry per update into the LSM tree's memtable was most of the
//! store's cost per pixel (a skiplist walk, a journal write, then a flush of the same bytes).
//! Instead, each journal block's records go, sorted, into an in-memory **tail** when the block
//! commits, and the block gets a marker in the `index_pending` keyspace, in the same atomic
//! batch. Once the tail holds [`StoreConfig::index_tail_max`](crate::StoreConfig) records (or
//! its oldest block has waited [`TAIL_MAX_AGE`]), the writer seals it and hands it to the
//! **indexer** thread, which merges it, writes it into the pixel index as one bulk ingestion
//! (new tables, no memtable, no journal), then deletes the markers and drops the sealed part
//! of the tail. Readers look at the tail first, then the tree, and merge.
//!
//! Crash safety: a committed block is indexed or still marked. At open, every marked block
//! is read back from the journal into the tail (an ingestion that finished before its markers
//! were deleted is simply repeated: same keys, same values). Pruning only removes blocks that
//! carry no marker.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::codec::key_u64;
use crate::db::{Db, names};
use crate::error::{Result, StorageError};
use crate::records::PixelRecord;

/// Longest a committed block waits in the tail before it is sealed, whatever the tail's size
/// (a quiet server still moves its index to disk and lets the journal be pruned).
pub const TAIL_MAX_AGE: Duration = Duration::from_secs(60);

/// Level-0 tables of the pixel index at which the indexer waits for compaction before it
/// ingests more (each ingestion adds a level-0 run that every inspector read must visit).
pub const L0_STALL_TABLES: usize = 16;

/// Longest the indexer waits for compaction before it ingests anyway.
const L0_STALL_MAX: Duration = Duration::from_secs(2);

/// The pixel-index key of an update.
pub(crate) fn pixel_key(x: u16, y: u16, seq: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[0..2].copy_from_slice(&y.to_be_bytes());
    k[2..4].copy_from_slice(&x.to_be_bytes());
    k[4..12].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Index order: the key's order (`y`, `x`, `seq`).
fn order(r: &PixelRecord) -> (u16, u16, u64) {
    (r.y, r.x, r.seq)
}

/// Records at which small chunks stop being merged (see [`IndexTail::add`]).
const MERGE_MAX: usize = 1024;

/// Committed journal blocks' records in index order: one block's, or several small ones'.
#[derive(Debug)]
pub(crate) struct Chunk {
    /// The blocks' keys (their first sequences), which are also their markers' keys.
    blocks: Vec<u64>,
    records: Box<[PixelRecord]>,
    /// When the oldest block was added.
    added: Instant,
}

impl Chunk {
    pub(crate) fn new(first_seq: u64, mut records: Vec<PixelRecord>) -> Self {
        records.sort_unstable_by_key(order);
        Self { blocks: vec![first_seq], records: records.into_boxed_slice(), added: Instant::now() }
    }

    /// One chunk holding both (`older` added first).
    fn merge(older: &Self, newer: &Self) -> Self {
        // At most MERGE_MAX records: sorting the two runs together costs no more than merging.
        let mut records: Vec<PixelRecord> = older.records.iter().chain(newer.records.iter()).copied().collect();
        records.sort_unstable_by_key(order);
        Self {
            blocks: older.blocks.iter().chain(&newer.blocks).copied().collect(),
            records: records.into_boxed_slice(),
            added: older.added,
        }
    }

    /// Records of pixel `(x, y)` with `seq < before`, oldest first.
    fn pixel(&self, x: u16, y: u16, before: u64) -> &[PixelRecord] {
        let lo = self.records.partition_point(|r| order(r) < (y, x, 0));
        let hi = self.records.partition_point(|r| order(r) < (y, x, before));
        &self.records[lo..hi]
    }
}

#[derive(Debug, Default)]
struct TailState {
    /// Committed blocks not yet ingested, oldest first; the first `sealed` are with the indexer.
    chunks: Vec<Arc<Chunk>>,
    sealed: usize,
    /// Records in the chunks that are not sealed.
    open_records: usize,
}

/// The committed, not yet ingested part of the pixel index.
#[derive(Debug, Default)]
pub(crate) struct IndexTail {
    state: Mutex<TailState>,
}

impl IndexTail {
    fn lock(&self) -> MutexGuard<'_, TailState> {
        // Nothing panics while holding it; were it poisoned, the state is still consistent.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds the chunks of a committed job. Small chunks are merged as they come (the two
    /// newest open ones, while together they hold at most [`MERGE_MAX`] records and the newer
    /// is at least half the older, like a binary counter): a quiet server journals a block of
    /// a few updates per tick, and readers look into every chunk.
    pub(crate) fn add(&self, chunks: Vec<Arc<Chunk>>) {
        let mut s = self.lock();
        for chunk in chunks {
            s.open_records += chunk.records.len();
            s.chunks.push(chunk);
            while s.chunks.len() >= s.sealed + 2 {
                let n = s.chunks.len();
                let (older, newer) = (&s.chunks[n - 2], &s.chunks[n - 1]);
                let (o, w) = (older.records.len(), newer.records.len());
                if o + w > MERGE_MAX || 2 * w < o {
                    break;
                }
                let merged = Arc::new(Chunk::merge(older, newer));
                s.chunks.truncate(n - 2);
                s.chunks.push(merged);
            }
        }
    }

    /// Chunks held (merged or not).
    #[cfg(test)]
    fn chunk_count(&self) -> usize {
        self.lock().chunks.len()
    }

    /// Seals the open chunks if they hold `max_records` or more, or the oldest has waited
    /// [`TAIL_MAX_AGE`] (or `force`); returns them.
    fn seal(&self, max_records: usize, force: bool) -> Option<Vec<Arc<Chunk>>> {
        let mut s = self.lock();
        let sealed = s.sealed;
        let oldest = s.chunks.get(sealed)?;
        if !(force || s.open_records >= max_records || oldest.added.elapsed() >= TAIL_MAX_AGE) {
            return None;
        }
        let out = s.chunks[sealed..].to_vec();
        s.sealed = s.chunks.len();
        s.open_records = 0;
        Some(out)
    }

    /// Whether chunks wait that are not sealed yet.
    pub(crate) fn has_open(&self) -> bool {
        let s = self.lock();
        s.chunks.len() > s.sealed
    }

    /// Drops the first `n` chunks (ingested; they were sealed).
    fn retire(&self, n: usize) {
        let mut s = self.lock();
        let n = n.min(s.sealed);
        s.chunks.drain(..n);
        s.sealed -= n;
    }

    /// The chunks now in the tail (shared, cheap).
    fn snapshot(&self) -> Vec<Arc<Chunk>> {
        self.lock().chunks.clone()
    }

    /// Records held in the tail.
    pub(crate) fn len(&self) -> usize {
        self.lock().chunks.iter().map(|c| c.records.len()).sum()
    }
}

impl Db {
    /// Up to `limit` updates of pixel `(x, y)` with `seq < before`, newest first.
    pub fn pixel_history(&self, x: u16, y: u16, before: u64, limit: usize) -> Result<Vec<PixelRecord>> {
        // The tail first, then the tree: a block the indexer moves in between is seen twice
        // (and deduplicated), never missed.
        let tail = self.index_tail.snapshot();
        let mut out = self
            .pixel_index
            .range(pixel_key(x, y, 0)..pixel_key(x, y, before))
            .rev()
            .take(limit)
            .map(|g| {
                let (k, v) = g.into_inner()?;
                PixelRecord::decode_index_value(x, y, key_u64(names::PIXEL_INDEX, &k, 4)?, &v)
            })
            .collect::<Result<Vec<_>>>()?;
        for chunk in &tail {
            out.extend_from_slice(chunk.pixel(x, y, before));
        }
        out.sort_unstable_by_key(|r| std::cmp::Reverse(r.seq));
        out.dedup_by_key(|r| r.seq);
        out.truncate(limit);
        Ok(out)
    }

    /// Tables of the pixel index: (in level 0, in all).
    pub fn pixel_index_tables(&self) -> (usize, usize) {
        (self.pixel_index.l0_table_count(), self.pixel_index.table_count())
    }

    /// Whether the journal block with this first sequence is still waiting to be indexed.
    pub(crate) fn is_index_pending(&self, first_seq: u64) -> Result<bool> {
        Ok(self.index_pending.contains_key(first_seq.to_be_bytes())?)
    }

    /// Reads every block still marked as not indexed back into the tail (at open).
    pub(crate) fn reload_index_tail(&self) -> Result<usize> {
        let mut chunks = Vec::new();
        for g in self.index_pending.iter() {
            let first = key_u64(names::INDEX_PENDING, &g.key()?, 0)?;
            let Some(v) = self.journal.get(first.to_be_bytes())? else {
                return Err(StorageError::corrupt(names::INDEX_PENDING, "marker of a journal block that is gone"));
            };
            chunks.push(Arc::new(Chunk::new(first, crate::canvas::decode_block(first, &v)?)));
        }
        let n = chunks.len();
        self.index_tail.add(chunks);
        Ok(n)
    }

    /// Writes sealed chunks into the pixel index in one ingestion, retires them from the tail,
    /// then deletes their markers.
    fn ingest(&self, chunks: &[Arc<Chunk>]) -> Result<()> {
        // The ingested tables are durable when `finish` returns; the blocks they index must be
        // too, or a crash in `interval`/`none` mode could lose a block whose index entries
        // survive (and its sequences would be reused). One fsync per tail.
        self.database.persist(fjall::PersistMode::SyncData)?;
        let mut all: Vec<&PixelRecord> = chunks.iter().flat_map(|c| c.records.iter()).collect();
        all.sort_unstable_by_key(|r| order(r));
        all.dedup_by_key(|r| order(r));
        if !all.is_empty() {
            let mut ingestion = self.pixel_index.start_ingestion()?;
            for r in all {
                ingestion.write(&pixel_key(r.x, r.y, r.seq)[..], &r.encode_index_value()[..])?;
            }
            ingestion.finish()?;
        }
        // In the tree now: out of the tail before the markers go (pruning deletes only
        // unmarked blocks, whose entries must then be nowhere else).
        self.index_tail.retire(chunks.len());
        let mut batch = self.database.batch();
        for first_seq in chunks.iter().flat_map(|c| &c.blocks) {
            batch.remove(&self.index_pending, first_seq.to_be_bytes());
        }
        batch.commit()?;
        Ok(())
    }
}

/// What the writer sends the indexer.
pub(crate) enum IndexJob {
    /// Ingest these sealed chunks.
    Ingest(Vec<Arc<Chunk>>),
    /// Answer once everything sent before is ingested.
    Settle(Sender<()>),
}

/// The writer's side of the indexer: seals the tail and hands it over.
pub(crate) struct IndexFeed {
    pub(crate) jobs: Sender<IndexJob>,
    pub(crate) tail_max: usize,
    pub(crate) poisoned: Arc<std::sync::atomic::AtomicBool>,
}

impl IndexFeed {
    /// Hands the tail to the indexer when it is due (or `force`). Blocks while the indexer is
    /// still busy with the previous one: the tail's bound holds back the writer, and through
    /// it the engine.
    pub(crate) fn maybe_seal(&self, db: &Db, force: bool) {
        if let Some(chunks) = db.index_tail.seal(self.tail_max, force) {
            self.send(IndexJob::Ingest(chunks));
        }
    }

    /// Sends the indexer a job; if it is gone, nothing would ever be indexed or pruned again:
    /// the store refuses further writes.
    pub(crate) fn send(&self, job: IndexJob) {
        if self.jobs.send(job).is_err() {
            tracing::error!("pixel indexer thread is gone; refusing further writes");
            self.poisoned.store(true, std::sync::atomic::Ordering::Release);
        }
    }
}

/// The indexer thread's loop. A failed ingestion poisons the store (like a failed commit).
pub(crate) fn run_indexer(db: Arc<Db>, jobs: Receiver<IndexJob>, poisoned: Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::Ordering;
    for job in jobs {
        match job {
            IndexJob::Ingest(chunks) => {
                if poisoned.load(Ordering::Acquire) {
                    continue;
                }
                // Let compaction catch up first: the writer, then the engine, wait meanwhile
                // (this is the store's sustained rate, not a burst that piles up tables). Not
                // for ever: compaction runs only when fjall's worker is asked, and a request
                // can be dropped; past the wait, fjall's own write halt (30 runs) remains.
                let waiting = Instant::now();
                while db.pixel_index.l0_table_count() >= L0_STALL_TABLES
                    && waiting.elapsed() < L0_STALL_MAX
                    && !poisoned.load(Ordering::Acquire)
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                match db.ingest(&chunks) {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "pixel index ingestion failed; refusing further writes");
                        poisoned.store(true, Ordering::Release);
                    }
                }
            }
            IndexJob::Settle(done) => {
                let _ = done.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Durability, Fjall, StoreConfig};

    fn rec(seq: u64, x: u16, y: u16) -> PixelRecord {
        PixelRecord { seq, x, y, colour: (seq % 16) as u8, user: 1, time_ms: seq }
    }

    fn seqs(store: &Fjall, x: u16, y: u16, before: u64, limit: usize) -> Vec<u64> {
        store.pixel_history(x, y, before, limit).unwrap().iter().map(|r| r.seq).collect()
    }

    #[test]
    fn history_merges_the_tail_and_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path());
        config.durability = Durability::None;
        config.index_tail_max = 4;
        let store = Fjall::open(config).unwrap();
        // Pixel (5, 5) painted at every third sequence, neighbours in between.
        for first in (1..=60u64).step_by(3) {
            let block = vec![rec(first, 5, 5), rec(first + 1, 4, 5), rec(first + 2, 5, 6)];
            store.run(move |tx| tx.append_pixels(&block)).unwrap();
        }
        assert!(store.index_tail_len() > 0, "the newest blocks wait in the tail");
        let mut expect: Vec<u64> = (1..=60u64).step_by(3).collect();
        expect.reverse();
        assert_eq!(seqs(&store, 5, 5, u64::MAX, 100), expect);
        assert_eq!(seqs(&store, 5, 5, u64::MAX, 3), expect[..3]);
        assert_eq!(seqs(&store, 5, 5, 40, 2), [37, 34]);
        assert_eq!(seqs(&store, 4, 5, 3, 5), [2]);
        assert!(seqs(&store, 6, 5, u64::MAX, 5).is_empty());
        store.settle_index().unwrap();
        assert_eq!(store.index_tail_len(), 0);
        assert_eq!(seqs(&store, 5, 5, u64::MAX, 100), expect, "the same once everything is ingested");
        assert_eq!(store.index_pending.iter().count(), 0, "no block is left marked");
    }

    #[test]
    fn an_unsettled_tail_comes_back_from_its_markers() {
        let dir = tempfile::tempdir().unwrap();
        let store = {
            let mut config = StoreConfig::new(dir.path());
            config.durability = Durability::None;
            Fjall::open(config).unwrap()
        };
        store.run(|tx| tx.append_pixels(&[rec(1, 1, 1), rec(2, 2, 2)])).unwrap();
        store.run(|tx| tx.append_pixels(&[rec(3, 1, 1)])).unwrap();
        assert_eq!(store.index_tail_len(), 3);
        // What a restart after a crash does with the two marked blocks: read them back. (Here
        // they are in the tail twice; readers deduplicate.)
        assert_eq!(store.reload_index_tail().unwrap(), 2);
        assert_eq!(seqs(&store, 1, 1, u64::MAX, 10), [3, 1]);
        store.settle_index().unwrap();
        assert_eq!(seqs(&store, 1, 1, u64::MAX, 10), [3, 1]);
        assert_eq!(seqs(&store, 2, 2, u64::MAX, 10), [2]);
    }

    #[test]
    fn settling_from_the_writer_thread_is_refused_not_a_deadlock() {
        let (_dir, store) = crate::testing::temp_fjall();
        let (tx, rx) = crossbeam_channel::bounded(1);
        let inner = store.clone();
        store
            .submit(
                |_| Ok(()),
                move |_: Result<()>| {
                    let _ = tx.send(inner.settle_index().is_err());
                },
            )
            .unwrap();
        assert!(rx.recv().unwrap(), "a completion callback runs on the writer");
        store.settle_index().unwrap();
    }

    #[test]
    fn small_blocks_are_merged_in_the_tail() {
        let (_dir, store) = crate::testing::temp_fjall();
        for seq in 1..=2000u64 {
            let block = vec![rec(seq, (seq % 7) as u16, 1)];
            store.run(move |tx| tx.append_pixels(&block)).unwrap();
        }
        assert_eq!(store.index_tail_len(), 2000);
        let chunks = store.index_tail.chunk_count();
        assert!(chunks <= 2000 / (MERGE_MAX / 2) + 12, "{chunks} chunks for 2000 one-update blocks");
        let expect: Vec<u64> = (1..=2000u64).rev().filter(|s| s % 7 == 3).take(5).collect();
        assert_eq!(seqs(&store, 3, 1, u64::MAX, 5), expect);
        store.settle_index().unwrap();
        assert_eq!(seqs(&store, 3, 1, u64::MAX, 5), expect);
        assert_eq!(store.index_pending.iter().count(), 0, "every merged block's marker is gone");
    }
}
