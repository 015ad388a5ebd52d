//! [`Fjall`]: the embedded backend's handle. Reads go straight to [`Db`]; writes are jobs
//! for the writer thread, either awaited ([`Fjall::run`]) or completed by callback
//! ([`Fjall::submit`]). Other crates reach it only through [`Store`](crate::Store) and the
//! [`Backend`](crate::backend::Backend) operations (`fjall_ops`), which never run on their
//! caller's thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, TrySendError};

use crate::config::StoreConfig;
use crate::db::{Db, names};
use crate::error::{Kind, Result, StorageError};
use crate::index::IndexFeed;
use crate::writer::{Counters, Finish, Job, Tx, Writer, WriterStats};

/// The durable store. Cheap to clone; the writer thread stops when the last clone is dropped,
/// after making everything durable.
#[derive(Clone)]
pub struct Fjall {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Db>,
    jobs: Option<Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    poisoned: Arc<AtomicBool>,
    stats: Arc<WriterStats>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        drop(self.jobs.take());
        let Some(handle) = self.writer.take() else { return };
        // The last handle can be dropped by a completion callback on the writer itself; it
        // then finishes its loop (the queue is closed) without waiting for itself.
        if handle.thread().id() == std::thread::current().id() {
            return;
        }
        if handle.join().is_err() {
            tracing::error!("store writer thread panicked");
        }
    }
}

impl std::fmt::Debug for Fjall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fjall").field("db", &self.inner.db).finish_non_exhaustive()
    }
}

impl std::ops::Deref for Fjall {
    type Target = Db;
    fn deref(&self) -> &Db {
        &self.inner.db
    }
}

impl Fjall {
    /// Opens (or creates) the store and starts its writer thread.
    pub fn open(config: StoreConfig) -> Result<Self> {
        if config.writer_queue == 0 || config.group_max == 0 || config.index_tail_max == 0 {
            return Err(StorageError::invalid("writer_queue, group_max and index_tail_max must be positive"));
        }
        let durability = config.durability;
        let group_max = config.group_max;
        let (tx, rx) = crossbeam_channel::bounded(config.writer_queue);
        let index_tail_max = config.index_tail_max;
        let db = Arc::new(Db::open(config)?);
        db.reload_index_tail()?;
        let counters = Counters {
            next_user: db.last_u32(&db.users, names::USERS)? + 1,
            next_room: db.last_u32(&db.rooms, names::ROOMS)? + 1,
            next_audit: db.last_u64(&db.audit, names::AUDIT)? + 1,
            unrotated: Vec::new(),
        };
        let poisoned = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WriterStats::default());
        // One sealed tail queued while another is ingested; then the writer waits.
        let (index_tx, index_rx) = crossbeam_channel::bounded(1);
        let indexer = {
            let (db, poisoned) = (db.clone(), poisoned.clone());
            std::thread::Builder::new()
                .name("store-indexer".into())
                .spawn(move || crate::index::run_indexer(db, index_rx, poisoned))?
        };
        let writer = Writer {
            db: db.clone(),
            jobs: rx,
            counters,
            poisoned: poisoned.clone(),
            durability,
            group_max,
            stats: stats.clone(),
            index: IndexFeed { jobs: index_tx, tail_max: index_tail_max, poisoned: poisoned.clone() },
            indexer,
        };
        let handle = std::thread::Builder::new().name("store-writer".into()).spawn(move || writer.run())?;
        Ok(Self { inner: Arc::new(Inner { db, jobs: Some(tx), writer: Some(handle), poisoned, stats }) })
    }

    /// Whether an earlier failure made the store refuse writes.
    pub fn is_poisoned(&self) -> bool {
        self.inner.poisoned.load(Ordering::Acquire)
    }

    /// Writer counters (jobs, group commits, fsync durations).
    pub fn writer_stats(&self) -> &WriterStats {
        &self.inner.stats
    }

    /// Jobs queued for the writer right now.
    pub fn writer_queue_len(&self) -> usize {
        self.inner.jobs.as_ref().map_or(0, Sender::len)
    }

    fn job<T, F, D>(f: F, done: D) -> Job
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T> + Send + 'static,
        D: FnOnce(Result<T>) + Send + 'static,
    {
        Box::new(move |tx: &mut Tx<'_>| {
            let result = f(tx);
            let commit = result.is_ok();
            let finish: Finish = Box::new(move |durable: Result<()>| done(durable.and(result)));
            (commit, finish)
        })
    }

    /// Queues `f` for the writer without waiting. `done` runs on the writer thread once the
    /// job's writes are durable per the configured mode (or failed); keep it short (hand the
    /// result to another thread). Fails at once with an overloaded error when the queue is full.
    pub fn submit<T, F, D>(&self, f: F, done: D) -> Result<()>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T> + Send + 'static,
        D: FnOnce(Result<T>) + Send + 'static,
    {
        if self.is_poisoned() {
            return Err(StorageError::poisoned());
        }
        let jobs = self.inner.jobs.as_ref().ok_or_else(|| StorageError::new(Kind::Closed))?;
        match jobs.try_send(Self::job(f, done)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(StorageError::new(Kind::Overloaded)),
            Err(TrySendError::Disconnected(_)) => Err(StorageError::new(Kind::Closed)),
        }
    }

    /// Runs `f` on the writer and waits until its writes are durable per the configured mode.
    /// Waits for room when the queue is full. Not for event-loop threads.
    pub fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T> + Send + 'static,
    {
        if self.is_poisoned() {
            return Err(StorageError::poisoned());
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let job = Self::job(f, move |r| {
            let _ = tx.send(r);
        });
        let jobs = self.inner.jobs.as_ref().ok_or_else(|| StorageError::new(Kind::Closed))?;
        jobs.send(job).map_err(|_| StorageError::new(Kind::Closed))?;
        rx.recv().map_err(|_| StorageError::new(Kind::Closed))?
    }

    /// Waits until every pixel update committed so far is in the pixel index proper (not only
    /// in its in-memory tail). Reads never need this; it is for tests and orderly shutdown.
    pub fn settle_index(&self) -> Result<()> {
        if self.inner.writer.as_ref().is_some_and(|w| w.thread().id() == std::thread::current().id()) {
            // From a completion callback: the writer would wait for itself.
            return Err(StorageError::invalid("settle_index called on the store's writer thread"));
        }
        let done = self.run(|tx| Ok(tx.settle_index()))?;
        done.recv().map_err(|_| StorageError::new(Kind::Closed))?;
        if self.is_poisoned() {
            return Err(StorageError::poisoned());
        }
        Ok(())
    }

    /// Pixel updates held in the index's in-memory tail (committed, not yet ingested).
    pub fn index_tail_len(&self) -> usize {
        self.index_tail.len()
    }

    /// Makes every write submitted so far durable (fsync), whatever the mode.
    pub fn flush(&self) -> Result<()> {
        self.run(|_| Ok(()))?;
        self.database.persist(fjall::PersistMode::SyncAll)?;
        Ok(())
    }
}
