//! Real shards: one OS thread each, with its own single-threaded tokio runtime, pumping its
//! [`Shard`]: inbox turns in bounded batches, a tick timer, one wakeup per batch of messages.
//! The gateway runs its listeners and sessions on the same threads through the per-shard
//! future given to [`Engine::start`], and reaches a shard through [`LocalShard`].

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use pixelparty_protocol::CloseReason;
use pixelparty_storage::Store;

use crate::config::EngineConfig;
use crate::conn::{Close, Target, UserCtx};
use crate::msg::{ConnId, PaintCmd, ShardMsg, ShardStats, TileCopy};
use crate::restore::{RestoreOutcome, RestoreReport, RestoreTally};
use crate::routing::{ShardId, tile_home};
use crate::shard::{Shard, Shared};

/// Milliseconds since the Unix epoch: the engine's clock, read only by drivers.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Restores per message to a home shard (one inbox slot each).
const RESTORE_CHUNK: usize = 4096;

/// Messages one inbox turn handles before letting sessions run.
const TURN_MAX: usize = 4096;

/// Why the engine could not start.
#[derive(Debug)]
pub enum StartError {
    /// The configuration is inconsistent.
    Config(crate::config::ConfigError),
    /// The store failed while recovering.
    Storage(pixelparty_storage::StorageError),
    /// A thread could not be spawned.
    Thread(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(e) => write!(f, "invalid engine configuration: {e}"),
            Self::Storage(e) => write!(f, "recovering from the store: {e}"),
            Self::Thread(e) => write!(f, "spawning a shard thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Recovers the canvas and builds the shards (not yet running): the shared state and one
/// [`Shard`] per configured shard, each holding the tiles it is home for.
pub fn build(config: EngineConfig, store: Store) -> Result<(Arc<Shared>, Vec<Shard>), StartError> {
    config.validate().map_err(StartError::Config)?;
    let g = config.geometry;
    store.wait(move |b| b.init_canvas(g)).map_err(StartError::Storage)?;
    let recovered = store.wait(move |b| b.recover_canvas(g)).map_err(StartError::Storage)?;
    tracing::info!(
        tiles = g.tile_count(),
        last_seq = recovered.last_seq,
        replayed = recovered.replayed,
        "canvas recovered"
    );
    let shards = config.shards;
    let shared = Arc::new(Shared::new(config, store, recovered.last_seq));
    let mut per_shard: Vec<Vec<(u32, Vec<u8>, u64)>> = (0..shards).map(|_| Vec::new()).collect();
    for (tile, (data, seq)) in recovered.tiles.into_iter().zip(recovered.tile_seqs).enumerate() {
        per_shard[tile_home(tile as u32, shards)].push((tile as u32, data, seq));
    }
    let built = per_shard.into_iter().enumerate().map(|(id, tiles)| Shard::new(id, shared.clone(), tiles)).collect();
    Ok((shared, built))
}

/// A shard as its own thread sees it: shared by the shard loop and the sessions on it.
#[derive(Debug, Clone)]
pub struct LocalShard(Rc<RefCell<Shard>>);

impl LocalShard {
    /// The shard's index.
    pub fn id(&self) -> ShardId {
        self.0.borrow().id()
    }

    /// Runs `f` on the shard, then delivers the messages it produced.
    pub fn with<R>(&self, f: impl FnOnce(&mut Shard) -> R) -> R {
        let mut shard = self.0.borrow_mut();
        let r = f(&mut shard);
        shard.flush();
        if shard.has_pending() {
            shard.shared.mesh.wake(shard.id);
        }
        r
    }

    /// Opens a session.
    pub fn connect(&self, user: UserCtx) -> ConnId {
        self.with(|s| s.connect(user))
    }

    /// Handles one whole transport message from a session.
    pub fn receive_message(&self, conn: ConnId, message: &[u8]) {
        self.with(|s| s.receive_message(conn, message, now_ms()));
    }

    /// Handles bytes of a stream transport; returns how many were used.
    pub fn receive(&self, conn: ConnId, bytes: &[u8]) -> usize {
        self.with(|s| s.receive(conn, bytes, now_ms()))
    }

    /// Waits until the session has output (or is closing), then takes up to about
    /// `max_bytes` of frames into `out`; returns the close to perform after sending them.
    pub async fn next_output(&self, conn: ConnId, max_bytes: usize, out: &mut Vec<Bytes>) -> Option<Close> {
        std::future::poll_fn(|cx| self.0.borrow_mut().poll_output(conn, cx)).await;
        self.with(|s| s.take_output(conn, max_bytes, out))
    }

    /// Ends a session.
    pub fn disconnect(&self, conn: ConnId) {
        self.with(|s| s.disconnect(conn));
    }

    /// Closes a session from the transport side (idle timeout, transport error).
    pub fn close(&self, conn: ConnId, reason: CloseReason, message: &str) {
        self.with(|s| s.close(conn, reason, message, false));
    }

    /// Replaces a session's block list (sorted) with one read after it connected.
    pub fn set_blocks(&self, conn: ConnId, blocks: Arc<[u32]>) {
        self.with(|s| s.set_blocks(conn, blocks));
    }
}

/// A running engine: shard threads, and a handle for everything outside them.
#[derive(Debug)]
pub struct Engine {
    handle: EngineHandle,
    threads: Vec<JoinHandle<()>>,
    watchdog: Option<JoinHandle<()>>,
}

/// Control of a running engine from any thread (Send + Sync, cheap to clone).
#[derive(Debug, Clone)]
pub struct EngineHandle {
    shared: Arc<Shared>,
}

impl Engine {
    /// Starts one thread per shard. On each, `per_shard` is called with the thread's
    /// [`LocalShard`] and its future runs beside the shard loop (the gateway's listeners).
    pub fn start<F, Fut>(config: EngineConfig, store: Store, per_shard: F) -> Result<Self, StartError>
    where
        F: Fn(LocalShard) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let (shared, shards) = build(config, store)?;
        let per_shard = Arc::new(per_shard);
        let mut threads = Vec::new();
        for shard in shards {
            let per_shard = per_shard.clone();
            let id = shard.id();
            let t = std::thread::Builder::new()
                .name(format!("shard-{id}"))
                .spawn(move || {
                    // A shard never waits on storage: `Store::wait` refuses on this thread.
                    pixelparty_storage::store::event_loop_thread();
                    run_shard(shard, per_shard)
                })
                .map_err(StartError::Thread)?;
            threads.push(t);
        }
        let watched = shared.clone();
        let watchdog = std::thread::Builder::new()
            .name("shard-watchdog".into())
            .spawn(move || watch(&watched))
            .map_err(StartError::Thread)?;
        Ok(Self { handle: EngineHandle { shared }, threads, watchdog: Some(watchdog) })
    }

    /// A handle for control from other threads.
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Closes every session with `reason`, stops the shards after their last batches are
    /// durable, and waits for the threads.
    pub fn shutdown(mut self, reason: CloseReason) {
        self.handle.shared.stopping.store(true, Ordering::Release);
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
        for shard in 0..self.handle.shared.config.shards {
            self.handle.send_blocking(shard, ShardMsg::Shutdown { reason });
        }
        for t in self.threads {
            if t.join().is_err() {
                tracing::error!("a shard thread panicked");
            }
        }
    }
}

fn run_shard<F, Fut>(shard: Shard, per_shard: Arc<F>)
where
    F: Fn(LocalShard) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "building a shard runtime");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    let shard = LocalShard(Rc::new(RefCell::new(shard)));
    local.block_on(&rt, async move {
        tokio::task::spawn_local(per_shard(shard.clone()));
        shard_loop(shard).await;
    });
}

async fn shard_loop(shard: LocalShard) {
    let (id, shared, tick_ms) = {
        let s = shard.0.borrow();
        (s.id(), s.shared.clone(), s.config().tick_ms)
    };
    let mut ticker = tokio::time::interval(Duration::from_millis(u64::from(tick_ms)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut next_tick = now_ms();
    let mut drain_deadline: Option<u64> = None;
    loop {
        let now = now_ms();
        let busy = shard.with(|s| {
            let handled = s.process_inbox(now, TURN_MAX);
            if now >= next_tick {
                s.tick(now);
                next_tick = now + u64::from(tick_ms);
            }
            handled == TURN_MAX || s.has_pending()
        });
        shared.mesh.inbox(id).last_turn_ms.store(now, Ordering::Relaxed);
        let stopping = shard.0.borrow().shutting_down;
        if stopping {
            // Keep turning until every batch is durable and every session is gone (or 2 s).
            let deadline = *drain_deadline.get_or_insert(now + 2000);
            let done = shard.0.borrow().tick.in_flight() == 0 && shard.0.borrow().sessions() == 0;
            if done || now >= deadline {
                break;
            }
        }
        if busy {
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            () = shared.mesh.sleep(id) => {}
            _ = ticker.tick() => {}
        }
    }
}

/// Reports shards that have work waiting and have not come round their loop for longer than
/// the threshold.
fn watch(shared: &Shared) {
    let threshold = shared.config.stall_threshold_ms;
    let mut stalled = vec![false; shared.config.shards];
    while !shared.stopping.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(threshold.clamp(10, 1000) / 2));
        let now = now_ms();
        for (shard, was) in stalled.iter_mut().enumerate() {
            let inbox = shared.mesh.inbox(shard);
            let last = inbox.last_turn_ms.load(Ordering::Relaxed);
            let is = shared.mesh.queued(shard) > 0 && now.saturating_sub(last) > threshold;
            if is && !*was {
                inbox.stalls.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(shard, stalled_ms = now - last, queued = shared.mesh.queued(shard), "shard stalled");
            }
            *was = is;
        }
    }
}

impl EngineHandle {
    /// The shared state (config, store, counters).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Sends to a shard, waiting while its inbox is full. Blocks the calling thread: only for
    /// threads that are not shards (shutdown, snapshotter, rollback, admin). Returns whether
    /// the message was delivered (it is dropped, and logged, after 10 s of a full inbox).
    fn send_blocking(&self, shard: ShardId, mut msg: ShardMsg) -> bool {
        for _ in 0..10_000 {
            match self.shared.mesh.send(shard, msg) {
                Ok(()) => return true,
                Err(m) => {
                    msg = m;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        tracing::error!(shard, "control message dropped: inbox full for 10 s");
        false
    }

    /// Sends to a shard from async code (HTTP handlers, which may run on a shard thread):
    /// waits asynchronously while the inbox is full, so the calling thread's own shard keeps
    /// draining meanwhile; gives up (and says so) after 10 s.
    async fn send_async(&self, shard: ShardId, mut msg: ShardMsg) -> bool {
        for _ in 0..10_000 {
            match self.shared.mesh.send(shard, msg) {
                Ok(()) => return true,
                Err(m) => {
                    msg = m;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        tracing::error!(shard, "control message dropped: inbox full for 10 s");
        false
    }

    /// Cluster mode's feed: like [`Self::send_async`] but never gives up while the engine
    /// runs (what the feed hands over is counted as applied: dropping it would leave a tile
    /// behind for good; a full inbox holds the feed back instead).
    async fn send_feed(&self, shard: ShardId, mut msg: ShardMsg) {
        let mut waited_ms = 0u64;
        loop {
            match self.shared.mesh.send(shard, msg) {
                Ok(()) => return,
                Err(m) => msg = m,
            }
            if self.shared.stopping.load(Ordering::Acquire) {
                return;
            }
            waited_ms += 1;
            if waited_ms.is_multiple_of(10_000) {
                tracing::warn!(shard, waited_ms, "cluster feed held back: the shard's inbox is full");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn broadcast(&self, make: impl Fn() -> ShardMsg) {
        for shard in 0..self.shared.config.shards {
            self.send_async(shard, make()).await;
        }
    }

    /// Ends every session of `user` with `reason`.
    pub async fn kick(&self, user: u32, reason: CloseReason, message: &str) {
        self.end_sessions(Target::User(user), reason, message).await;
    }

    /// Ends the live sessions `target` names (a user's, one login session's, an address
    /// range's) with `reason`, on every shard.
    pub async fn end_sessions(&self, target: Target, reason: CloseReason, message: &str) {
        let message: Arc<str> = message.into();
        self.broadcast(|| ShardMsg::End { target: target.clone(), reason, message: message.clone() }).await;
    }

    /// Pushes a `Social` frame (protocol version 3) to every live session of `users` on this
    /// node, or of every logged-in user when `users` is `None`.
    pub async fn social(&self, users: Option<&[u32]>, kind: pixelparty_protocol::SocialKind, id: u32, name: &str) {
        let frame =
            crate::shard::encode(&pixelparty_protocol::ServerFrame::Social(pixelparty_protocol::server::Social {
                kind,
                id,
                name,
            }));
        let users: Option<Arc<[u32]>> = users.map(Arc::from);
        self.broadcast(|| ShardMsg::Social { users: users.clone(), frame: frame.clone() }).await;
    }

    /// Tells every shard the user's block list (read from the store).
    pub async fn blocks_changed(&self, user: u32) -> Result<(), pixelparty_storage::StorageError> {
        let blocks: Arc<[u32]> = self
            .shared
            .store
            .call(move |b| b.blocks_of(user, crate::MAX_BLOCKS))
            .await?
            .into_iter()
            .map(|r| r.user)
            .collect();
        self.broadcast(|| ShardMsg::BlocksChanged { user, blocks: blocks.clone() }).await;
        Ok(())
    }

    /// Deletes a room message on behalf of `user` (the author, or an admin) through the room's
    /// home shard, which tells live members. The receiver yields the outcome (or an error if
    /// the engine could not take the request).
    pub async fn delete_room_message(
        &self,
        room: u32,
        seq: u64,
        user: u32,
        admin: bool,
    ) -> tokio::sync::oneshot::Receiver<Result<u64, crate::msg::Refusal>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let msg = ShardMsg::DeleteRoomMessage { room, seq, origin: crate::msg::Origin::Caller(tx), user, admin };
        self.send_async(crate::routing::room_home(room, self.shared.config.shards), msg).await;
        rx
    }

    /// Cluster mode: committed canvas updates in global sequence order (the node's feed
    /// orders them), to their tiles' home shards. Waits while an inbox is full.
    pub async fn feed_pixels(&self, records: &[pixelparty_storage::PixelRecord]) {
        let (g, shards) = (self.shared.config.geometry, self.shared.config.shards);
        let mut per_shard: Vec<Vec<pixelparty_storage::PixelRecord>> = vec![Vec::new(); shards];
        for r in records {
            if let Some(loc) = g.locate(u32::from(r.x), u32::from(r.y)) {
                per_shard[tile_home(loc.tile, shards)].push(*r);
            }
        }
        for (shard, list) in per_shard.into_iter().enumerate() {
            if !list.is_empty() {
                self.send_feed(shard, ShardMsg::FeedPixels(list.into())).await;
            }
        }
    }

    /// Cluster mode: the whole canvas rebuilt from the store (a node that fell behind further
    /// than the journal keeps): each tile replaces its home's when newer.
    pub async fn replace_tiles(&self, tiles: Vec<Vec<u8>>, seqs: Vec<u64>) {
        let shards = self.shared.config.shards;
        for (tile, (data, seq)) in tiles.into_iter().zip(seqs).enumerate() {
            let tile = tile as u32;
            self.send_feed(tile_home(tile, shards), ShardMsg::ReplaceTile { tile, seq, data }).await;
        }
    }

    /// Cluster mode: committed messages of `room` from any node (in any order), to the
    /// room's home shard, which orders them.
    pub async fn feed_room(&self, room: u32, posts: Vec<crate::msg::FedPost>) {
        let home = crate::routing::room_home(room, self.shared.config.shards);
        self.send_feed(home, ShardMsg::FeedRoom { room, posts }).await;
    }

    /// Cluster mode: another node's members of `room` (its whole list).
    pub async fn feed_presence(&self, room: u32, node: u64, users: Vec<(u32, Arc<str>)>) {
        let home = crate::routing::room_home(room, self.shared.config.shards);
        self.send_feed(home, ShardMsg::FeedPresence { room, node, users }).await;
    }

    /// Cluster mode: a room message was deleted on some node; its members here are told.
    pub async fn feed_room_delete(&self, room: u32, seq: u64) {
        let home = crate::routing::room_home(room, self.shared.config.shards);
        self.send_feed(home, ShardMsg::FeedRoomDelete { room, seq }).await;
    }

    /// Cluster mode: a direct message stored by another node (`frame`: its encoded
    /// `DirectMessage`), to its conversation's home here, which orders the conversation and
    /// hands it to the sessions of `from` and `to`.
    pub async fn feed_direct(&self, from: u32, to: u32, seq: u64, frame: Bytes) {
        let home = crate::routing::direct_home(from, to, self.shared.config.shards);
        self.send_feed(home, ShardMsg::FeedDirect { from, to, seq, frame }).await;
    }

    /// Tells every shard that a direct message was deleted (already tombstoned in the store).
    pub async fn direct_deleted(&self, a: u32, b: u32, seq: u64) {
        if self.shared.config.cluster.is_some() {
            // In order with the conversation, at its home (the message may be held there).
            let home = crate::routing::direct_home(a, b, self.shared.config.shards);
            return self.send_feed(home, ShardMsg::FeedDirectDelete { a, b, seq }).await;
        }
        self.broadcast(|| ShardMsg::DirectDeleted { a, b, seq }).await;
    }

    /// Restores pixels for a rollback of `rolled_back`'s updates: each `(x, y, colour,
    /// guard_seq)` is a compare-and-set at the tile's home shard (see [`crate::restore`]).
    /// Blocks until every home shard decided (or `timeout`): for threads that are not shards.
    pub fn restore(&self, rolled_back: u32, restores: &[(u16, u16, u8, u64)], timeout: Duration) -> RestoreReport {
        let g = self.shared.config.geometry;
        let shards = self.shared.config.shards;
        let (tally, done) = RestoreTally::new(restores.len());
        let mut per_shard: Vec<Vec<PaintCmd>> = vec![Vec::new(); shards];
        for &restore in restores {
            let Some(cmd) = crate::restore::restore_cmd(&g, rolled_back, restore, &tally) else {
                tally.resolve(RestoreOutcome::Refused);
                continue;
            };
            let home = tile_home(cmd.tile, shards);
            per_shard[home].push(cmd);
            if per_shard[home].len() == RESTORE_CHUNK {
                self.send_restores(home, std::mem::take(&mut per_shard[home]), &tally);
            }
        }
        for (home, list) in per_shard.into_iter().enumerate() {
            if !list.is_empty() {
                self.send_restores(home, list, &tally);
            }
        }
        tally.wait(&done, timeout)
    }

    /// One message of restores; if it cannot be delivered they are counted as refused.
    fn send_restores(&self, home: ShardId, list: Vec<PaintCmd>, tally: &RestoreTally) {
        let n = list.len();
        if !self.send_blocking(home, ShardMsg::Restore(list)) {
            for _ in 0..n {
                tally.resolve(RestoreOutcome::Refused);
            }
        }
    }

    /// Copies tiles from every shard (all, or those changed since the last copy). Blocks: for
    /// a thread of its own (the snapshotter), never a shard thread.
    pub fn copy_tiles(&self, full: bool, timeout: Duration) -> Option<Vec<TileCopy>> {
        let (tx, rx) = crossbeam_channel::bounded(self.shared.config.shards);
        for shard in 0..self.shared.config.shards {
            self.request_copies(shard, full, &tx);
        }
        let mut all = Vec::new();
        for _ in 0..self.shared.config.shards {
            all.extend(rx.recv_timeout(timeout).ok()?.1);
        }
        Some(all)
    }

    /// Asks `shard` for copies of its tiles (all, or those changed since its last copy); the
    /// answer arrives on `reply`. The shard clears its changed flags as it answers, so the
    /// caller must keep every answer, late ones included ([`crate::Snapshotter`] does).
    /// Returns whether the request was delivered (not when the inbox stayed full for 10 s).
    pub fn request_copies(
        &self,
        shard: ShardId,
        full: bool,
        reply: &crossbeam_channel::Sender<(ShardId, Vec<TileCopy>)>,
    ) -> bool {
        self.send_blocking(shard, ShardMsg::Snapshot { full, reply: reply.clone() })
    }

    /// Counters of every shard.
    pub fn stats(&self, timeout: Duration) -> Option<Vec<ShardStats>> {
        let (tx, rx) = crossbeam_channel::bounded(self.shared.config.shards);
        for shard in 0..self.shared.config.shards {
            self.send_blocking(shard, ShardMsg::Stats { reply: tx.clone() });
        }
        (0..self.shared.config.shards).map(|_| rx.recv_timeout(timeout).ok()).collect()
    }
}
