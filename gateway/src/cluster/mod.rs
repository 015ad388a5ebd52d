//! Cluster mode, the node's side: several pixelparty nodes share one canvas and one chat
//! through PostgreSQL (the truth: every sequence is assigned in the transaction that commits
//! it) and Redis (the cluster-wide paint cooldown, announcements between nodes, the control
//! stream). Without `[cluster]` none of this runs.
//!
//! - [`Cluster`] connects to Redis on its own thread and runtime and is the engine's
//!   [`ClusterLink`]: cooldowns are one Lua script each (atomic for the whole cluster), and a
//!   tick is committed through [`Backend::commit_tick_ordered`] and then announced (to this
//!   node's feed directly, to the others by `PUBLISH`).
//! - `feed`: every node applies every commit in sequence order. Announcements are
//!   at-most-once, so the feed also reads the canvas's head from PostgreSQL every `poll_ms`
//!   and fills any gap from the journal; room homes do the same per room (engine `feed`).
//! - [`control`]: logouts, bans, kicks, role changes, blocks and deletions reach every node's
//!   live sessions: each is appended to a control log in PostgreSQL (gap-free ids, visible in
//!   order; a room message's deletion in the same transaction as the deletion itself),
//!   announced like the rest, and applied by every node in id order (the feed fills gaps from
//!   the log, as for the canvas).
//! - [`wire`]: the announcements' bytes.
//!
//! Redis work runs on the cluster thread: one publisher task drains a bounded queue (full, or
//! Redis out of reach: announcements are dropped and counted, the others fill in from
//! PostgreSQL), one keeper pings and checks the epoch, one subscriber holds the
//! subscription; none of them can hold up the feed.
//!
//! Redis losing its data (a restart without persistence, a failover) is detected by the
//! missing epoch key: paints are refused with `unavailable` until a node sets it again, and
//! when the canvas has any paint, nobody paints for one cooldown after that (the cooldowns
//! taken before were lost with the data, and a paint taken just before may still be on its
//! way to PostgreSQL). The canvas and chat need nothing from Redis's data: PostgreSQL has it.

pub mod control;
mod feed;
pub mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use pixelparty_engine::cluster::{ClusterLink, CooldownAnswer};
use pixelparty_engine::msg::FedPost;
use pixelparty_engine::now_ms;
use pixelparty_storage::{Backend, Op, PixelRecord, Sequenced, StorageError, Store, TickWrite};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use self::wire::Event;

/// Announcements queued for this node's own feed before new ones are dropped (the feed then
/// finds them in PostgreSQL).
const LOCAL_QUEUE: usize = 4096;

/// Redis jobs (publishes, refunds) queued before new ones are dropped.
const PUBLISH_QUEUE: usize = 4096;

/// A job for the publisher task.
#[derive(Debug)]
enum Job {
    Publish(Event),
    Refund { user: u32, token: u64 },
}

/// Cluster settings (`[cluster]`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Redis URL (`redis://host:port/db`, or `rediss://` for TLS).
    pub redis_url: String,
    /// With `rediss://`: certificates (PEM) trusted instead of the system's.
    pub redis_ca_file: Option<std::path::PathBuf>,
    /// This node's name (logs, metrics).
    pub node_name: String,
    /// Prefix of every Redis key and channel (several clusters can share one Redis). Keys are
    /// hash-tagged by it, so a Redis Cluster keeps them in one slot.
    pub prefix: String,
    /// A node that has not heard from Redis for this long refuses writes (`unavailable`).
    pub redis_timeout_ms: u64,
    /// How often the feed reads the canvas's head from PostgreSQL.
    pub poll_ms: u64,
    /// How long a gap in the canvas order may stay open before it is filled from PostgreSQL.
    pub gap_hold_ms: u64,
    /// The paint cooldown (for the fence after Redis lost its data).
    pub cooldown_ms: u32,
}

/// Whether Redis answered recently.
#[derive(Debug, Default)]
struct Health {
    last_ok_ms: AtomicU64,
}

impl Health {
    fn ok(&self) {
        self.last_ok_ms.fetch_max(now_ms(), Ordering::AcqRel);
    }

    fn fresh(&self, timeout_ms: u64) -> bool {
        now_ms().saturating_sub(self.last_ok_ms.load(Ordering::Acquire)) <= timeout_ms
    }
}

/// Counters of the cluster machinery (for `/metrics` and tests).
#[derive(Debug, Default)]
pub struct ClusterStats {
    /// Announcements published.
    pub published: AtomicU64,
    /// Announcements received from other nodes.
    pub received: AtomicU64,
    /// Announcements that could not be read.
    pub malformed: AtomicU64,
    /// Canvas updates read from PostgreSQL to fill gaps.
    pub filled: AtomicU64,
    /// Local announcements dropped (queue full; filled from PostgreSQL later).
    pub dropped: AtomicU64,
    /// Redis commands that failed.
    pub redis_errors: AtomicU64,
    /// Times the epoch key was missing (Redis lost its data, or a fresh Redis).
    pub epochs_set: AtomicU64,
    /// Control events applied from other nodes.
    pub controls_applied: AtomicU64,
    /// Times the canvas was rebuilt from snapshots (the journal no longer had what this node
    /// missed).
    pub rebuilds: AtomicU64,
    /// The highest canvas sequence applied in order (a gauge).
    pub applied: AtomicU64,
    /// Canvas updates held behind a gap (a gauge).
    pub held: AtomicU64,
}

/// A node's link to the cluster. Cheap to share.
#[derive(Debug)]
pub struct Cluster {
    settings: Settings,
    /// Random per process: a node skips its own announcements.
    node: u64,
    client: redis::Client,
    conn: ConnectionManager,
    /// The cluster thread's runtime (Redis connections live there).
    runtime: tokio::runtime::Handle,
    health: Health,
    store: Store,
    local_tx: tokio::sync::mpsc::Sender<Event>,
    local_rx: parking_lot::Mutex<Option<tokio::sync::mpsc::Receiver<Event>>>,
    jobs_tx: tokio::sync::mpsc::Sender<Job>,
    /// Set when a script found no epoch: the feed sets it again.
    epoch_missing: AtomicBool,
    next_token: AtomicU64,
    /// Counters.
    pub stats: ClusterStats,
}

const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fence = redis.call('GET', KEYS[2])
if not fence then return {-1, 0} end
fence = tonumber(fence)
if now < fence then return {0, fence - now} end
if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[1]) then return {1, 0} end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then left = 0 end
return {0, left}
";

const REFUND: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

const INIT_EPOCH: &str = r"
local fence = 0
if tonumber(ARGV[1]) > 0 then
  local t = redis.call('TIME')
  fence = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
end
if redis.call('SET', KEYS[1], fence, 'NX') then return fence end
return -1
";

/// Why the cluster link could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cluster: {}", self.0)
    }
}

impl std::error::Error for StartError {}

impl Cluster {
    /// Connects to Redis (on a thread of its own) and makes sure the epoch is set.
    pub fn start(settings: Settings, store: Store) -> Result<Arc<Self>, StartError> {
        // The redis crate builds its TLS configuration with rustls's process-wide provider;
        // more than one is compiled in, so name it (a no-op when already set).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = match &settings.redis_ca_file {
            None => redis::Client::open(settings.redis_url.as_str()),
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| StartError(format!("cluster.redis_ca_file {}: {e}", path.display())))?;
                let certs = redis::TlsCertificates { client_tls: None, root_cert: Some(pem) };
                redis::Client::build_with_tls(settings.redis_url.as_str(), certs)
            }
        }
        .map_err(|e| StartError(format!("redis_url {:?}: {e}", settings.redis_url)))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread_client = client.clone();
        std::thread::Builder::new()
            .name("cluster".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => return drop(tx.send(Err(StartError(format!("runtime: {e}"))))),
                };
                rt.block_on(async move {
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(Duration::from_millis(1000)))
                        .set_response_timeout(Some(Duration::from_millis(1000)))
                        .set_number_of_retries(2)
                        .set_max_delay(Duration::from_millis(500));
                    let conn = tokio::time::timeout(
                        Duration::from_secs(5),
                        thread_client.get_connection_manager_with_config(config),
                    )
                    .await;
                    let conn = match conn {
                        Ok(Ok(conn)) => Ok((conn, tokio::runtime::Handle::current())),
                        Ok(Err(e)) => Err(StartError(format!("Redis is unreachable: {e}"))),
                        Err(_) => Err(StartError("Redis did not answer within 5 s".into())),
                    };
                    let failed = conn.is_err();
                    let _ = tx.send(conn);
                    if !failed {
                        std::future::pending::<()>().await;
                    }
                });
            })
            .map_err(|e| StartError(format!("thread: {e}")))?;
        let (conn, runtime) = rx.recv().map_err(|_| StartError("the cluster thread ended".into()))??;
        let (local_tx, local_rx) = tokio::sync::mpsc::channel(LOCAL_QUEUE);
        let (jobs_tx, jobs_rx) = tokio::sync::mpsc::channel(PUBLISH_QUEUE);
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).map_err(|e| StartError(format!("random: {e}")))?;
        let cluster = Arc::new(Self {
            node: u64::from_le_bytes(seed) | 1,
            settings,
            client,
            conn,
            runtime,
            health: Health::default(),
            store,
            local_tx,
            local_rx: parking_lot::Mutex::new(Some(local_rx)),
            jobs_tx,
            epoch_missing: AtomicBool::new(false),
            next_token: AtomicU64::new(1),
            stats: ClusterStats::default(),
        });
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let c = cluster.clone();
        cluster.runtime.spawn(async move {
            let _ = done_tx.send(c.ensure_epoch().await);
        });
        done_rx
            .recv()
            .map_err(|_| StartError("the cluster thread ended".into()))?
            .map_err(|e| StartError(format!("setting the epoch: {e}")))?;
        cluster.runtime.spawn(publisher(cluster.clone(), jobs_rx));
        cluster.runtime.spawn(keeper(cluster.clone()));
        tracing::info!(node = %cluster.settings.node_name, prefix = %cluster.settings.prefix, "cluster link up");
        Ok(cluster)
    }

    /// This node's name.
    pub fn node_name(&self) -> &str {
        &self.settings.node_name
    }

    /// Whether Redis answered within the timeout (writes are refused otherwise).
    pub fn is_ready(&self) -> bool {
        self.health.fresh(self.settings.redis_timeout_ms)
    }

    fn key(&self, name: &str) -> String {
        format!("{{{}}}:{name}", self.settings.prefix)
    }

    fn channel(&self) -> String {
        self.key("feed")
    }

    fn noted<T>(&self, r: redis::RedisResult<T>) -> redis::RedisResult<T> {
        match &r {
            Ok(_) => self.health.ok(),
            Err(_) => {
                self.stats.redis_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        r
    }

    /// Sets the epoch if Redis has none (fresh, or it lost its data): see the module docs.
    async fn ensure_epoch(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let exists: bool = self.noted(redis::cmd("EXISTS").arg(self.key("epoch")).query_async(&mut conn).await)?;
        if exists {
            self.epoch_missing.store(false, Ordering::Release);
            return Ok(());
        }
        let last = self.store.call(|b| b.canvas_head()).await.map_err(|e| {
            redis::RedisError::from((redis::ErrorKind::Client, "reading the journal's head", e.to_string()))
        })?;
        // The fence is Redis's clock plus one cooldown (the script that checks it reads the
        // same clock); none for a canvas nobody painted yet.
        let cooldown = if last == 0 { 0 } else { self.settings.cooldown_ms };
        let fence: i64 = self
            .noted(redis::Script::new(INIT_EPOCH).key(self.key("epoch")).arg(cooldown).invoke_async(&mut conn).await)?;
        if fence >= 0 {
            self.stats.epochs_set.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(fence_ms = fence, "cluster epoch set (fresh Redis, or it lost its data)");
        }
        self.epoch_missing.store(false, Ordering::Release);
        Ok(())
    }

    fn unavailable() -> StorageError {
        StorageError::unavailable("out of touch with the cluster's Redis: not applied")
    }

    /// Announces committed work: to this node's feed at once, to the others by `PUBLISH`.
    fn announce(&self, events: Vec<Event>) {
        for e in &events {
            if self.local_tx.try_send(e.clone()).is_err() {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.publish(events);
    }

    /// Announces this node's whole list of online users (see [`crate::online`]).
    pub fn announce_online(&self, users: Vec<u32>) {
        self.publish(vec![Event::Online(users)]);
    }

    /// Queues events for the other nodes (dropped, and counted, when the queue is full or
    /// Redis is out of reach: the others fill in from PostgreSQL).
    fn publish(&self, events: Vec<Event>) {
        for e in events {
            self.job(Job::Publish(e));
        }
    }

    fn job(&self, job: Job) {
        if !self.is_ready() || self.jobs_tx.try_send(job).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Starts the feed (once the engine and the app exist).
    /// `applied`: the canvas sequence the engine recovered; `controls_from`: the control log's
    /// head when this node started (read before it took any session).
    pub fn run(self: &Arc<Self>, app: Arc<crate::app::App>, applied: u64, controls_from: u64) {
        let Some(local_rx) = self.local_rx.lock().take() else { return };
        self.runtime.spawn(feed::run(self.clone(), app, local_rx, applied, controls_from));
    }

    /// How often the keeper pings Redis: often enough that readiness does not flap within
    /// `redis_timeout_ms`.
    fn ping_every(&self) -> Duration {
        Duration::from_millis((self.settings.redis_timeout_ms / 3).clamp(20, 500))
    }
}

/// Drains the Redis job queue: publishes and cooldown refunds, one at a time.
async fn publisher(cluster: Arc<Cluster>, mut jobs: tokio::sync::mpsc::Receiver<Job>) {
    let mut conn = cluster.conn.clone();
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Publish(e) => {
                let payload = wire::encode(cluster.node, &e);
                let r: redis::RedisResult<i64> =
                    redis::cmd("PUBLISH").arg(cluster.channel()).arg(payload.as_ref()).query_async(&mut conn).await;
                match cluster.noted(r) {
                    Ok(_) => {
                        cluster.stats.published.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => tracing::debug!(error = %e, "publish failed (the others fill in from PostgreSQL)"),
                }
            }
            Job::Refund { user, token } => {
                let r: redis::RedisResult<i64> = redis::Script::new(REFUND)
                    .key(cluster.key(&format!("cd:{user}")))
                    .arg(token.to_string())
                    .invoke_async(&mut conn)
                    .await;
                if let Err(e) = cluster.noted(r) {
                    tracing::debug!(error = %e, user, "cooldown refund lost (the user waits the window out)");
                }
            }
        }
    }
}

/// Pings Redis (readiness) and sets the epoch again when Redis lost it.
async fn keeper(cluster: Arc<Cluster>) {
    let mut every = tokio::time::interval(cluster.ping_every());
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = cluster.ensure_epoch().await {
            tracing::debug!(error = %e, "cluster ping failed");
        }
    }
}

impl Cluster {}

/// The engine's [`ClusterLink`] over a [`Cluster`].
#[derive(Debug, Clone)]
pub struct Link(pub Arc<Cluster>);

impl ClusterLink for Link {
    fn take_cooldown(&self, user: u32, cooldown_ms: u32) -> Op<CooldownAnswer> {
        let this = self.0.clone();
        Box::pin(async move {
            if this.epoch_missing.load(Ordering::Acquire) || !this.is_ready() {
                return Err(Cluster::unavailable());
            }
            let token = (this.node << 32) ^ this.next_token.fetch_add(1, Ordering::Relaxed);
            let mut conn = this.conn.clone();
            let script = redis::Script::new(TAKE);
            let r: redis::RedisResult<(i64, i64)> = script
                .key(this.key(&format!("cd:{user}")))
                .key(this.key("epoch"))
                .arg(cooldown_ms)
                .arg(token.to_string())
                .invoke_async(&mut conn)
                .await;
            match this.noted(r) {
                Ok((1, _)) => Ok(CooldownAnswer::Taken { token }),
                Ok((0, left)) => Ok(CooldownAnswer::Refused { retry_after_ms: left.max(1) as u64 }),
                Ok(_) => {
                    this.epoch_missing.store(true, Ordering::Release);
                    Err(StorageError::unavailable("the cluster's Redis lost its data; painting resumes shortly"))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cooldown script failed");
                    Err(Cluster::unavailable())
                }
            }
        })
    }

    fn refund_cooldown(&self, user: u32, token: u64) {
        self.0.job(Job::Refund { user, token });
    }

    fn commit(&self, backend: &Arc<dyn Backend>, tick: TickWrite, names: Vec<(u32, Arc<str>)>) -> Op<Sequenced> {
        let (this, backend) = (self.0.clone(), backend.clone());
        Box::pin(async move {
            if !this.is_ready() {
                return Err(Cluster::unavailable());
            }
            let mut tick = tick;
            // The deletions' tombstones for the other nodes go into the control log in the
            // same transaction as the deletions.
            for d in &tick.deletes {
                let event = control::Control::RoomDeleted { room: d.room, seq: d.seq };
                tick.controls.push((this.node, control::encode(&event)));
            }
            let copy =
                TickWrite { pixels: tick.pixels.clone(), messages: tick.messages.clone(), ..TickWrite::default() };
            let controls: Vec<String> = tick.controls.iter().map(|(_, e)| e.clone()).collect();
            let seqs = backend.commit_tick_ordered(tick).await?;
            let mut events = events_of(copy, &seqs, &names);
            events.extend(seqs.controls.iter().zip(controls).map(|(&id, event)| Event::Control { id, event }));
            this.announce(events);
            Ok(seqs)
        })
    }

    fn announce_direct(&self, from: u32, to: u32, seq: u64, frame: Bytes) {
        self.0.publish(vec![Event::Direct { from, to, seq, frame }]);
    }

    fn is_ready(&self) -> bool {
        self.0.is_ready()
    }

    fn announce_presence(&self, room: u32, users: Vec<(u32, Arc<str>)>) {
        self.0.publish(vec![Event::Presence { room, users }]);
    }
}

/// The announcements of a committed tick, with the sequences the store assigned.
fn events_of(tick: TickWrite, seqs: &Sequenced, names: &[(u32, Arc<str>)]) -> Vec<Event> {
    let mut events = Vec::new();
    // Only what was stored: the restores the store left out are not announced.
    let mut index = 0u32;
    let stored: Vec<PixelRecord> = tick
        .pixels
        .into_iter()
        .filter(|_| {
            let kept = seqs.dropped.binary_search(&index).is_err();
            index += 1;
            kept
        })
        .collect();
    if !stored.is_empty() {
        let records: Vec<PixelRecord> =
            stored.into_iter().zip(seqs.first_pixel..).map(|(p, seq)| PixelRecord { seq, ..p }).collect();
        events.push(Event::Canvas(records));
    }
    let name_of = |id: u32| names.iter().find(|(u, _)| *u == id).map_or_else(|| Arc::from(""), |(_, n)| n.clone());
    for ((room, messages), (_, first)) in tick.messages.into_iter().zip(&seqs.rooms) {
        let posts = messages.into_iter().zip(*first..).map(|(m, seq)| FedPost::of(seq, m, name_of)).collect();
        events.push(Event::Room { room, posts });
    }
    events
}

#[cfg(test)]
mod tests {
    use pixelparty_storage::Message;

    use super::*;

    fn px(x: u16) -> PixelRecord {
        PixelRecord { seq: 0, x, y: 0, colour: 1, user: 1, time_ms: 5 }
    }

    /// A restore the store left out (its guard failed) is not announced, and the others carry
    /// the sequences the store gave them (was: every pixel announced, from the first
    /// sequence on, so every node painted the refused restore).
    #[test]
    fn announcements_carry_what_was_stored_under_its_sequences() {
        let msg = Message { seq: 0, author: 7, time_ms: 1, text: "hi".into(), deleted: false };
        let tick =
            TickWrite { pixels: vec![px(0), px(1), px(2)], messages: vec![(4, vec![msg])], ..TickWrite::default() };
        let seqs = Sequenced { first_pixel: 10, rooms: vec![(4, 3)], controls: vec![], dropped: vec![1] };
        let events = events_of(tick, &seqs, &[(7, Arc::from("ann"))]);
        let Event::Canvas(records) = &events[0] else { panic!("canvas first: {events:?}") };
        assert_eq!(records.iter().map(|r| (r.x, r.seq)).collect::<Vec<_>>(), [(0, 10), (2, 11)]);
        let Event::Room { room: 4, posts } = &events[1] else { panic!("room next: {events:?}") };
        assert_eq!((posts[0].seq, &*posts[0].name), (3, "ann"));
        let all_dropped = Sequenced { first_pixel: 0, dropped: vec![0], ..Sequenced::default() };
        let tick = TickWrite { pixels: vec![px(0)], ..TickWrite::default() };
        assert!(events_of(tick, &all_dropped, &[]).is_empty(), "nothing stored, nothing announced");
    }
}
