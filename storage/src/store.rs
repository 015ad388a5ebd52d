//! [`Store`]: the handle every other crate holds, whatever the backend. It runs every
//! [`Backend`] operation on the store's own runtime (`store-io` threads), so the thread that
//! asks never does the I/O: an event loop either awaits the answer ([`Store::call`]) or gets it
//! as a callback ([`Store::request`]); threads outside any runtime may block for it
//! ([`Store::wait`]). Operations in flight are bounded.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::backend::{Backend, Op};
use crate::config::StoreConfig;
use crate::error::{Kind, Result, StorageError};
use crate::fjall::Fjall;
use crate::pg::PgStore;

thread_local! {
    /// Set on threads that must never block on storage (engine shards).
    static EVENT_LOOP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the calling thread as an event loop: from now on [`Store::wait`] refuses on it (and
/// panics in debug builds), so a blocking storage call on a shard thread cannot go unnoticed.
pub fn event_loop_thread() {
    EVENT_LOOP.with(|e| e.set(true));
}

/// The store. Cheap to clone; the backend is closed (everything made durable) when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn Backend>,
    /// The embedded backend, when that is the one (its writer statistics and test hooks).
    fjall: Option<Fjall>,
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    /// Operations in flight for callers that wait their turn ([`Store::call`], [`Store::wait`]).
    permits: Arc<Semaphore>,
    /// Operations in flight for callers that cannot wait ([`Store::request`]: the engine),
    /// apart from the others so that a crowd of waiting callers never starves them.
    request_permits: Arc<Semaphore>,
    /// Waits this long before every operation (a test double for a distant database).
    delay: Option<Duration>,
    journal_retention: Option<Duration>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping a runtime blocks; this may run on one of its own threads (a completion
        // holding the last handle), where that would panic.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("fjall", &self.inner.fjall).finish_non_exhaustive()
    }
}

/// Options of the store's runtime, shared by every backend.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeConfig {
    /// Threads of the `store-io` runtime.
    pub threads: usize,
    /// Most operations in flight, for each of the two kinds of callers; beyond it
    /// [`Store::request`] answers overloaded and [`Store::call`] waits its turn.
    pub in_flight_max: usize,
    /// Most threads running blocking reads (the embedded backend's) at once.
    pub blocking_threads: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self { threads: 2, in_flight_max: 4096, blocking_threads: 16 }
    }
}

impl Store {
    /// Opens the store `config` names: PostgreSQL when `config.postgres` is set (connecting
    /// and migrating its schema first), else the embedded fjall store at `config.path`.
    pub fn open(config: StoreConfig) -> Result<Self> {
        let (settings, retention) = (config.runtime, config.journal_retention);
        let runtime = Self::runtime(settings)?;
        match config.postgres.clone() {
            Some(pg) => {
                // Connected on the store's own runtime (its pool's tasks live there), from a
                // thread of its own so that a caller inside another runtime may open a store.
                let handle = runtime.handle().clone();
                let connected = std::thread::scope(|s| s.spawn(|| handle.block_on(PgStore::connect(pg))).join());
                let pg = connected.map_err(|_| StorageError::invalid("connecting to PostgreSQL panicked"))??;
                Ok(Self::assemble(Arc::new(pg), None, runtime, settings, retention))
            }
            None => {
                let fjall = Fjall::open(config)?;
                Ok(Self::assemble(Arc::new(fjall.clone()), Some(fjall), runtime, settings, retention))
            }
        }
    }

    /// A store over any backend (a test double, say).
    pub fn with_backend(
        backend: Arc<dyn Backend>,
        fjall: Option<Fjall>,
        config: RuntimeConfig,
        journal_retention: Option<Duration>,
    ) -> Result<Self> {
        Ok(Self::assemble(backend, fjall, Self::runtime(config)?, config, journal_retention))
    }

    fn runtime(config: RuntimeConfig) -> Result<tokio::runtime::Runtime> {
        if config.threads == 0 || config.in_flight_max == 0 {
            return Err(StorageError::invalid("store threads and in_flight_max must be positive"));
        }
        Ok(tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .max_blocking_threads(config.blocking_threads.max(1))
            .thread_name("store-io")
            .enable_all()
            .build()?)
    }

    fn assemble(
        backend: Arc<dyn Backend>,
        fjall: Option<Fjall>,
        runtime: tokio::runtime::Runtime,
        config: RuntimeConfig,
        journal_retention: Option<Duration>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend,
                fjall,
                handle: runtime.handle().clone(),
                runtime: Some(runtime),
                permits: Arc::new(Semaphore::new(config.in_flight_max)),
                request_permits: Arc::new(Semaphore::new(config.in_flight_max)),
                delay: None,
                journal_retention,
            }),
        }
    }

    /// Which backend this is, for logs and `/stats`: `fjall` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        if self.inner.fjall.is_some() { "fjall" } else { "postgres" }
    }

    /// The same store with every operation delayed by `delay` (tests: a distant database).
    #[must_use]
    pub fn delayed(self, delay: Duration) -> Self {
        let inner = match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.delay = Some(delay);
                inner
            }
            Err(shared) => Inner {
                backend: shared.backend.clone(),
                fjall: shared.fjall.clone(),
                runtime: None,
                handle: shared.handle.clone(),
                permits: shared.permits.clone(),
                request_permits: shared.request_permits.clone(),
                delay: Some(delay),
                journal_retention: shared.journal_retention,
            },
        };
        Self { inner: Arc::new(inner) }
    }

    fn task<T, F>(&self, f: F, permit: OwnedSemaphorePermit) -> impl Future<Output = Result<T>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&Arc<dyn Backend>) -> Op<T>,
    {
        Self::run(f(&self.inner.backend), permit, self.inner.delay)
    }

    async fn run<T>(op: Op<T>, permit: OwnedSemaphorePermit, delay: Option<Duration>) -> Result<T> {
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        let out = op.await;
        drop(permit);
        out
    }

    /// Runs one operation on the store's runtime and awaits its answer (from any runtime).
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Arc<dyn Backend>) -> Op<T>,
    {
        let permit = self.inner.permits.clone().acquire_owned().await.map_err(|_| StorageError::new(Kind::Closed))?;
        let task = self.task(f, permit);
        self.inner.handle.spawn(task).await.map_err(|_| StorageError::new(Kind::Closed))?
    }

    /// Starts one operation on the store's runtime; `done` runs there with its answer (keep it
    /// short: hand the answer to another thread). Fails at once, without calling `done`, when
    /// too many operations are in flight.
    pub fn request<T, F, D>(&self, f: F, done: D) -> Result<()>
    where
        T: Send + 'static,
        F: FnOnce(&Arc<dyn Backend>) -> Op<T>,
        D: FnOnce(Result<T>) + Send + 'static,
    {
        let permit =
            self.inner.request_permits.clone().try_acquire_owned().map_err(|_| StorageError::new(Kind::Overloaded))?;
        let task = self.task(f, permit);
        // `done` runs exactly once: with the answer, or, should the task be dropped unfinished
        // (its runtime shut down, the operation panicked), with a closed error.
        let done = Answer(Some(done), std::marker::PhantomData);
        self.inner.handle.spawn(async move { done.give(task.await) });
        Ok(())
    }

    /// Runs one operation and blocks this thread for its answer: for start-up, the command
    /// line, background threads and tests, never for an event loop.
    pub fn wait<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Arc<dyn Backend>) -> Op<T>,
    {
        if EVENT_LOOP.with(std::cell::Cell::get) {
            debug_assert!(false, "Store::wait on an event-loop thread");
            return Err(StorageError::invalid("Store::wait on an event-loop thread: ask, or await Store::call"));
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let op = f(&self.inner.backend);
        let (permits, delay) = (self.inner.permits.clone(), self.inner.delay);
        self.inner.handle.spawn(async move {
            let out = match permits.acquire_owned().await {
                Ok(permit) => Self::run(op, permit, delay).await,
                Err(_) => Err(StorageError::new(Kind::Closed)),
            };
            let _ = tx.send(out);
        });
        rx.recv().map_err(|_| StorageError::new(Kind::Closed))?
    }

    /// How long the canvas journal keeps updates that tile snapshots cover (`None`: forever).
    pub fn journal_retention(&self) -> Option<Duration> {
        self.inner.journal_retention
    }

    /// Whether the backend refuses writes for good (the process must restart).
    pub fn is_poisoned(&self) -> bool {
        self.inner.backend.is_poisoned()
    }

    /// Whether the backend can serve requests now.
    pub fn is_ready(&self) -> bool {
        self.inner.backend.is_ready()
    }

    /// Backend gauges for `/metrics`.
    pub fn gauges(&self) -> Vec<(&'static str, &'static str, u64)> {
        self.inner.backend.gauges()
    }

    /// The embedded backend, when that is the one (writer statistics, test hooks).
    pub fn fjall(&self) -> Option<&Fjall> {
        self.inner.fjall.as_ref()
    }
}

/// A completion callback that runs exactly once: [`Answer::give`], or its drop.
struct Answer<T, D: FnOnce(Result<T>)>(Option<D>, std::marker::PhantomData<fn(T)>);

impl<T, D: FnOnce(Result<T>)> Answer<T, D> {
    fn give(mut self, result: Result<T>) {
        if let Some(done) = self.0.take() {
            done(result);
        }
    }
}

impl<T, D: FnOnce(Result<T>)> Drop for Answer<T, D> {
    fn drop(&mut self) {
        if let Some(done) = self.0.take() {
            done(Err(StorageError::new(Kind::Closed)));
        }
    }
}
