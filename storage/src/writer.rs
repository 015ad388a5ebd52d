//! The single writer thread: every mutation of the store runs here, in submission order.
//!
//! One writer makes read-check-write operations (unique names, dense ids, per-conversation
//! sequences) exact without locks. Each job commits its own batch at once, so the next job reads
//! it; the fsync is shared by every job of a group (group commit): in `sync` mode the writer
//! drains up to `group_max` queued jobs, commits each, fsyncs once, then reports completion to
//! all of them. A failed commit or fsync poisons the store: every later job fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use fjall::PersistMode;

use crate::config::Durability;
use crate::db::Db;
use crate::error::{Result, StorageError};
use crate::index::{Chunk, IndexFeed, IndexJob};

/// Ids and counters that only the writer allocates.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) next_user: u32,
    pub(crate) next_room: u32,
    pub(crate) next_audit: u64,
    /// Bytes written into each keyspace's memtable since the writer last rotated it.
    pub(crate) unrotated: Vec<(fjall::Keyspace, u64)>,
}

/// Bytes after which the writer rotates a keyspace's memtable itself (half of fjall's default
/// 64 MiB memtable; the pixel index's 8 MiB memtable only ever holds pruning's deletions).
///
/// Why not leave it to fjall: once a memtable is over its size, every write to that keyspace
/// asks fjall's background worker for a rotation through a bounded queue (1,000 messages).
/// While the worker is busy with a long compaction, a busy writer fills that queue, and the
/// worker then blocks forever sending itself a flush request into it (fjall 3.1.13 runs
/// here with one worker, see `db`). Rotating from this thread first, the memtables never
/// reach their size and the queue stays short.
const ROTATE_AT: u64 = 32 * 1024 * 1024;

/// The write side of one job: reads through [`Db`], writes into a batch committed when the job
/// returns `Ok`.
pub struct Tx<'a> {
    pub(crate) db: &'a Db,
    pub(crate) batch: fjall::OwnedWriteBatch,
    pub(crate) counters: &'a mut Counters,
    /// Pixel-index chunks of this job's journal blocks, for the index tail once committed.
    pub(crate) index_chunks: Vec<Arc<Chunk>>,
    pub(crate) index: &'a IndexFeed,
}

impl std::ops::Deref for Tx<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl Tx<'_> {
    pub(crate) fn put(
        &mut self,
        ks: &fjall::Keyspace,
        key: impl Into<fjall::UserKey>,
        value: impl Into<fjall::UserValue>,
    ) {
        let (key, value) = (key.into(), value.into());
        self.note_write(ks, key.len() + value.len());
        self.batch.insert(ks, key, value);
    }

    pub(crate) fn del(&mut self, ks: &fjall::Keyspace, key: impl Into<fjall::UserKey>) {
        let key = key.into();
        self.note_write(ks, key.len());
        self.batch.remove(ks, key);
    }

    /// Counts bytes headed for a keyspace's memtable, with fjall's per-entry overhead (64
    /// bytes) and some margin.
    pub(crate) fn note_write(&mut self, ks: &fjall::Keyspace, bytes: usize) {
        let bytes = bytes as u64 + 96;
        let unrotated = &mut self.counters.unrotated;
        match unrotated.iter_mut().find(|(k, _)| k.id() == ks.id()) {
            Some((_, n)) => *n += bytes,
            None => unrotated.push((ks.clone(), bytes)),
        }
    }

    /// Hands every committed pixel-index chunk to the indexer now; the receiver answers once
    /// they are ingested. (Not this job's own chunks: they are not committed yet.)
    pub(crate) fn settle_index(&mut self) -> Receiver<()> {
        self.index.maybe_seal(self.db, true);
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.index.send(IndexJob::Settle(tx));
        rx
    }
}

/// Called with the durability outcome once the job's group is committed (and synced).
pub(crate) type Finish = Box<dyn FnOnce(Result<()>) + Send>;

/// A unit of work for the writer. Returns whether its batch should be committed and what to
/// call once that is durable.
pub(crate) type Job = Box<dyn FnOnce(&mut Tx<'_>) -> (bool, Finish) + Send>;

/// Upper bounds (seconds) of the fsync duration buckets: from a fast NVMe flush to a disk
/// that holds every acknowledgement back for seconds.
pub const FSYNC_SECONDS_BUCKETS: [f64; 15] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// What the writer publishes for metrics. Only the writer thread updates them, so the
/// histogram's lock is never contended but by a scrape.
#[derive(Debug)]
pub struct WriterStats {
    /// Jobs committed.
    pub jobs: AtomicU64,
    /// Group commits (fsyncs in `sync` mode).
    pub groups: AtomicU64,
    /// Duration of each fsync of the journal, in seconds.
    pub fsync_seconds: prometheus_client::metrics::histogram::Histogram,
}

impl Default for WriterStats {
    fn default() -> Self {
        Self {
            jobs: AtomicU64::new(0),
            groups: AtomicU64::new(0),
            fsync_seconds: prometheus_client::metrics::histogram::Histogram::new(FSYNC_SECONDS_BUCKETS),
        }
    }
}

pub(crate) struct Writer {
    pub(crate) db: Arc<Db>,
    pub(crate) jobs: Receiver<Job>,
    pub(crate) counters: Counters,
    pub(crate) poisoned: Arc<AtomicBool>,
    pub(crate) durability: Durability,
    pub(crate) group_max: usize,
    pub(crate) stats: Arc<WriterStats>,
    pub(crate) index: IndexFeed,
    pub(crate) indexer: std::thread::JoinHandle<()>,
}

impl Writer {
    pub(crate) fn run(mut self) {
        let tick = match self.durability {
            Durability::Interval(d) => d.max(Duration::from_millis(1)),
            _ => Duration::from_secs(3600),
        };
        let mut dirty = false;
        let mut last_sync = Instant::now();
        loop {
            // Wait for the next job; in `interval` mode with unsynced writes, no longer than
            // the next sync is due. (Nothing to sync: block, rather than wake up for nothing.)
            let first = if matches!(self.durability, Durability::Interval(_)) && dirty {
                match self.jobs.recv_timeout(tick.saturating_sub(last_sync.elapsed())) {
                    Ok(job) => Some(job),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else if self.db.index_tail.has_open() {
                // Index updates wait in memory: wake up to hand them over once they are old.
                match self.jobs.recv_timeout(crate::index::TAIL_MAX_AGE) {
                    Ok(job) => Some(job),
                    Err(RecvTimeoutError::Timeout) => {
                        self.index.maybe_seal(&self.db, false);
                        None
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match self.jobs.recv() {
                    Ok(job) => Some(job),
                    Err(_) => break,
                }
            };
            if let Some(first) = first {
                let mut finishes = vec![self.run_job(first)];
                while finishes.len() < self.group_max {
                    let Ok(job) = self.jobs.try_recv() else { break };
                    finishes.push(self.run_job(job));
                }
                dirty = true;
                let synced = if self.durability == Durability::Sync && dirty {
                    dirty = false;
                    last_sync = Instant::now();
                    self.sync()
                } else {
                    Ok(())
                };
                self.stats.groups.fetch_add(1, Ordering::Relaxed);
                for (finish, committed) in finishes {
                    finish(match (committed, &synced) {
                        // Committed to the journal, not made durable: a restart may replay it.
                        (Ok(()), Err(_)) => Err(StorageError::unsynced()),
                        (committed, synced) => committed.and(synced.clone()),
                    });
                }
                self.index.maybe_seal(&self.db, false);
                self.rotate_full_memtables();
            }
            if matches!(self.durability, Durability::Interval(_)) && dirty && last_sync.elapsed() >= tick {
                dirty = false;
                last_sync = Instant::now();
                // A failure poisons the store; later jobs see it.
                let _ = self.sync();
            }
        }
        // Closing: index what is left, then make everything written durable whatever the mode.
        let Self { db, index, indexer, poisoned, .. } = self;
        index.maybe_seal(&db, true);
        drop(index);
        if indexer.join().is_err() {
            tracing::error!("pixel indexer thread panicked");
        }
        if !poisoned.load(Ordering::Acquire)
            && let Err(e) = db.database.persist(PersistMode::SyncAll)
        {
            tracing::error!(error = %e, "final journal sync failed");
        }
    }

    fn run_job(&mut self, job: Job) -> (Finish, Result<()>) {
        let mut tx = Tx {
            db: &self.db,
            batch: self.db.database.batch(),
            counters: &mut self.counters,
            index_chunks: Vec::new(),
            index: &self.index,
        };
        let (commit, finish) = job(&mut tx);
        let (batch, chunks) = (tx.batch, tx.index_chunks);
        if self.poisoned.load(Ordering::Acquire) {
            return (finish, Err(StorageError::poisoned()));
        }
        if !commit || batch.is_empty() {
            return (finish, Ok(()));
        }
        let result = self.commit(batch);
        if let Err(e) = &result {
            tracing::error!(error = %e, "store write failed; refusing further writes");
            self.poisoned.store(true, Ordering::Release);
        } else {
            self.stats.jobs.fetch_add(1, Ordering::Relaxed);
            if !chunks.is_empty() {
                self.db.index_tail.add(chunks);
            }
        }
        (finish, result)
    }

    /// Commits a job's batch (a failure poisons the store, see [`Writer::run_job`]).
    fn commit(&self, batch: fjall::OwnedWriteBatch) -> Result<()> {
        #[cfg(any(test, feature = "testing"))]
        if self.db.fail_points.take(crate::testing::FailPoint::AfterCommit) {
            // As a full disk can: the batch reaches the journal, the commit still reports an
            // error.
            batch.commit()?;
            return Err(StorageError::new(crate::error::Kind::Io("injected failure after the commit".into())));
        }
        batch.commit().map_err(StorageError::from)
    }

    /// Rotates the memtables that took [`ROTATE_AT`] bytes since their last rotation here (an
    /// eighth of it for the pixel index's 8 MiB memtable, and for the index markers, whose
    /// deletions by the indexer are not counted here).
    fn rotate_full_memtables(&mut self) {
        let small = [self.db.pixel_index.id(), self.db.index_pending.id()];
        for (ks, n) in &mut self.counters.unrotated {
            let limit = if small.contains(&ks.id()) { ROTATE_AT / 8 } else { ROTATE_AT };
            if *n >= limit {
                *n = 0;
                if let Err(e) = ks.rotate_memtable() {
                    tracing::warn!(error = %e, keyspace = &**ks.name(), "memtable rotation failed");
                }
            }
        }
    }

    fn sync(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(StorageError::poisoned());
        }
        let start = Instant::now();
        let result = self.db.database.persist(PersistMode::SyncData).map_err(StorageError::from);
        #[cfg(any(test, feature = "testing"))]
        let result = match self.db.fail_points.take(crate::testing::FailPoint::Sync) {
            true => Err(StorageError::new(crate::error::Kind::Io("injected fsync failure".into()))),
            false => result,
        };
        self.stats.fsync_seconds.observe(start.elapsed().as_secs_f64());
        if let Err(e) = &result {
            tracing::error!(error = %e, "journal fsync failed; refusing further writes");
            self.poisoned.store(true, Ordering::Release);
        }
        result
    }
}
