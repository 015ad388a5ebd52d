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

/// Ids and counters that only the writer allocates.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) next_user: u32,
    pub(crate) next_room: u32,
    pub(crate) next_audit: u64,
}

/// The write side of one job: reads through [`Db`], writes into a batch committed when the job
/// returns `Ok`.
pub struct Tx<'a> {
    pub(crate) db: &'a Db,
    pub(crate) batch: fjall::OwnedWriteBatch,
    pub(crate) counters: &'a mut Counters,
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
        self.batch.insert(ks, key, value);
    }

    pub(crate) fn del(&mut self, ks: &fjall::Keyspace, key: impl Into<fjall::UserKey>) {
        self.batch.remove(ks, key);
    }
}

/// Called with the durability outcome once the job's group is committed (and synced).
pub(crate) type Finish = Box<dyn FnOnce(Result<()>) + Send>;

/// A unit of work for the writer. Returns whether its batch should be committed and what to
/// call once that is durable.
pub(crate) type Job = Box<dyn FnOnce(&mut Tx<'_>) -> (bool, Finish) + Send>;

/// Counters the writer publishes for metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Jobs committed.
    pub jobs: AtomicU64,
    /// Group commits (fsyncs in `sync` mode).
    pub groups: AtomicU64,
    /// Total microseconds spent in fsync.
    pub fsync_us: AtomicU64,
    /// Slowest fsync in microseconds.
    pub fsync_max_us: AtomicU64,
}

pub(crate) struct Writer {
    pub(crate) db: Arc<Db>,
    pub(crate) jobs: Receiver<Job>,
    pub(crate) counters: Counters,
    pub(crate) poisoned: Arc<AtomicBool>,
    pub(crate) durability: Durability,
    pub(crate) group_max: usize,
    pub(crate) stats: Arc<WriterStats>,
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
                    finish(committed.and(synced.clone()));
                }
            }
            if matches!(self.durability, Durability::Interval(_)) && dirty && last_sync.elapsed() >= tick {
                dirty = false;
                last_sync = Instant::now();
                // A failure poisons the store; later jobs see it.
                let _ = self.sync();
            }
        }
        // Closing: make everything written durable whatever the mode.
        if !self.poisoned.load(Ordering::Acquire)
            && let Err(e) = self.db.database.persist(PersistMode::SyncAll)
        {
            tracing::error!(error = %e, "final journal sync failed");
        }
    }

    fn run_job(&mut self, job: Job) -> (Finish, Result<()>) {
        let mut tx = Tx { db: &self.db, batch: self.db.database.batch(), counters: &mut self.counters };
        let (commit, finish) = job(&mut tx);
        let batch = tx.batch;
        if self.poisoned.load(Ordering::Acquire) {
            return (finish, Err(StorageError::poisoned()));
        }
        if !commit || batch.is_empty() {
            return (finish, Ok(()));
        }
        let result = batch.commit().map_err(StorageError::from);
        if let Err(e) = &result {
            tracing::error!(error = %e, "store write failed; refusing further writes");
            self.poisoned.store(true, Ordering::Release);
        } else {
            self.stats.jobs.fetch_add(1, Ordering::Relaxed);
        }
        (finish, result)
    }

    fn sync(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(StorageError::poisoned());
        }
        let start = Instant::now();
        let result = self.db.database.persist(PersistMode::SyncData).map_err(StorageError::from);
        let us = start.elapsed().as_micros() as u64;
        self.stats.fsync_us.fetch_add(us, Ordering::Relaxed);
        self.stats.fsync_max_us.fetch_max(us, Ordering::Relaxed);
        if let Err(e) = &result {
            tracing::error!(error = %e, "journal fsync failed; refusing further writes");
            self.poisoned.store(true, Ordering::Release);
        }
        result
    }
}
