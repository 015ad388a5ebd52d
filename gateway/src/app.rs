//! The process-wide state every handler reaches: configuration, the store, the engine's
//! handle, ban cache, hashing pool, rate limiters, snapshot cache, metrics.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use pixelparty_engine::{ConnId, EngineHandle, Snapshotter};
use pixelparty_protocol::Role;
use pixelparty_storage::{Backend, Op, Store};
use sha2::{Digest, Sha256};

use crate::bans::BanCache;
use crate::config::Config;
use crate::hasher::Hasher;
use crate::http::AuthUser;
use crate::http::error::ApiError;
use crate::metrics::{Metrics, Sources};
use crate::ratelimit::{KeyedLimiter, client_key};
use crate::snapshot_http::SnapshotCache;

/// Everything shared by the handlers of every shard.
#[derive(Debug)]
pub struct App {
    /// Configuration.
    pub config: Config,
    /// The store.
    pub store: Store,
    /// The engine.
    pub engine: EngineHandle,
    /// Address bans.
    pub bans: BanCache,
    /// Password hashing pool.
    pub hasher: Hasher,
    /// Login attempts per address.
    pub login_ip: KeyedLimiter<IpAddr>,
    /// Login attempts per account name.
    pub login_account: KeyedLimiter<String>,
    /// Sign-ups per address.
    pub signup_ip: KeyedLimiter<IpAddr>,
    /// Room creations per user.
    pub room_creates: KeyedLimiter<u32>,
    /// Encoded snapshots.
    pub snapshots: Arc<SnapshotCache>,
    /// Open client connections (shared with the metrics).
    pub connections: Arc<AtomicUsize>,
    /// Open client connections per address (by [`client_key`]); never more entries than
    /// open connections.
    per_ip: parking_lot::Mutex<HashMap<IpAddr, u32>>,
    /// False once shutdown began.
    pub accepting: AtomicBool,
    /// SHA-256 of the admin token.
    pub admin_token_hash: [u8; 32],
    /// A hash verified when a login names no user, so timing does not reveal names.
    pub dummy_hash: String,
    /// Counters and the metrics registry.
    pub metrics: Metrics,
    /// WebTransport, when enabled.
    pub wt: Option<Arc<crate::wt::WtState>>,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Cluster mode: the link to the other nodes (set once at start).
    pub cluster: Arc<std::sync::OnceLock<Arc<crate::cluster::Cluster>>>,
    /// Backups (on demand and scheduled).
    pub backups: Arc<crate::backup::Backups>,
    /// True while a rewind of the canvas runs (one at a time).
    pub rewinding: AtomicBool,
    /// Who is online (friends' online status).
    pub online: Arc<crate::online::Online>,
    /// Live visitor sessions (see [`App::admit_visitor`]).
    pub visitors: Arc<AtomicUsize>,
    /// The timelapse's chunks (a bounded cache of whole ones).
    pub timelapse: crate::timelapse::Chunks,
}

/// SHA-256 of a secret, as stored and compared.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

impl App {
    /// Builds the shared state.
    #[expect(clippy::too_many_arguments, reason = "the parts are built separately by the server's start-up")]
    pub fn new(
        config: Config,
        store: Store,
        engine: EngineHandle,
        snapshotter: Arc<Snapshotter>,
        hasher: Hasher,
        admin_token: &str,
        dummy_hash: String,
        wt: Option<Arc<crate::wt::WtState>>,
    ) -> Self {
        let a = &config.auth;
        // Validated with the rest of the configuration before the server starts.
        let trusted_proxies = config.trusted_proxies().unwrap_or_default();
        let snapshots = Arc::new(SnapshotCache::new(snapshotter));
        let connections = Arc::new(AtomicUsize::new(0));
        let cluster = Arc::new(std::sync::OnceLock::new());
        let backups = Arc::new(crate::backup::Backups::new(&config));
        let (online, visitors) = (Arc::<crate::online::Online>::default(), Arc::new(AtomicUsize::new(0)));
        let metrics = Metrics::new(Sources {
            visitors: visitors.clone(),
            online: online.clone(),
            backups: backups.clone(),
            cluster: cluster.clone(),
            engine: engine.shared().clone(),
            store: store.clone(),
            snapshots: snapshots.clone(),
            connections: connections.clone(),
        });
        Self {
            trusted_proxies,
            login_ip: KeyedLimiter::new(a.login_per_ip_per_min, 60_000),
            login_account: KeyedLimiter::new(a.login_per_account_per_min, 60_000),
            signup_ip: KeyedLimiter::new(a.signup_per_ip_per_hour, 3_600_000),
            room_creates: KeyedLimiter::new(config.limits.room_creates_per_user_per_hour, 3_600_000),
            snapshots,
            bans: BanCache::default(),
            connections,
            per_ip: parking_lot::Mutex::new(HashMap::new()),
            accepting: AtomicBool::new(true),
            admin_token_hash: sha256(admin_token.as_bytes()),
            dummy_hash,
            metrics,
            wt,
            config,
            store,
            engine,
            hasher,
            cluster,
            backups,
            rewinding: AtomicBool::new(false),
            online,
            visitors,
            timelapse: crate::timelapse::Chunks::default(),
        }
    }

    /// Acts on live sessions after a change already in the store (a logout, a ban, a kick, a
    /// block, a deletion): here, and in cluster mode on every other node too.
    ///
    /// An error means this node could not apply it (a read it needed failed); the other nodes
    /// are told in any case.
    pub async fn control(&self, event: crate::cluster::control::Control) -> Result<(), ApiError> {
        let applied = event.apply(self).await;
        if let Some(cluster) = self.cluster.get()
            && let Err(e) = cluster.publish_control(&event).await
        {
            tracing::error!(error = %e, ?event, "the other nodes were not told of a control event");
        }
        applied.map_err(ApiError::from)
    }

    /// Runs one store operation on the store's runtime and awaits it: the calling event loop
    /// never waits on storage I/O.
    pub async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Arc<dyn Backend>) -> Op<T>,
    {
        self.store.call(f).await.map_err(ApiError::from)
    }

    /// The names of users by id (an empty name for an unknown id), in one store operation.
    pub async fn names(&self, ids: impl IntoIterator<Item = u32>) -> Result<HashMap<u32, String>, ApiError> {
        let mut ids: Vec<u32> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        let mut names: HashMap<u32, String> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(pixelparty_storage::backend::MAX_NAMES) {
            let chunk = chunk.to_vec();
            names.extend(self.db(move |b| b.user_names(chunk)).await?);
        }
        for id in ids {
            names.entry(id).or_default();
        }
        Ok(names)
    }

    /// A user by name, or 404.
    pub async fn user_named(&self, name: &str) -> Result<pixelparty_storage::User, ApiError> {
        let name = name.to_owned();
        self.db(move |b| b.user_by_name(name)).await?.ok_or_else(|| ApiError::not_found("no such user"))
    }

    /// The users `user` blocks, sorted (what a live session starts with).
    pub async fn blocks_of(&self, user: u32) -> Result<Arc<[u32]>, ApiError> {
        let list = self.db(move |b| b.blocks_of(user, pixelparty_engine::MAX_BLOCKS)).await?;
        let mut ids: Vec<u32> = list.into_iter().map(|r| r.user).collect();
        ids.sort_unstable();
        Ok(ids.into())
    }

    /// The user behind a login session's token hash at `now`: 401 when the session is
    /// unknown, revoked or expired, 403 `banned` (reason and end) while the user is banned.
    /// Shared by HTTP, the WebSocket upgrade and WebTransport.
    pub async fn authenticate(&self, token_hash: [u8; 32], now: u64) -> Result<AuthUser, ApiError> {
        // One store operation for the session, its user and the user's ban: this runs on
        // every authenticated request.
        let found = self
            .db(move |b| {
                let b = b.clone();
                Box::pin(async move {
                    let Some(session) = b.session(token_hash, now).await? else { return Ok(None) };
                    let (user, ban) = (b.user(session.user).await?, b.user_ban(session.user, now).await?);
                    Ok(Some((session, user, ban)))
                })
            })
            .await?;
        let (session, user, ban) = found.ok_or_else(|| ApiError::unauthorized("session expired or unknown"))?;
        let user = user.ok_or_else(|| ApiError::unauthorized("no such user"))?;
        if let Some(ban) = ban {
            return Err(ApiError::banned(ban.reason, ban.expires_ms));
        }
        let role = match user.role {
            pixelparty_storage::Role::User => Role::User,
            pixelparty_storage::Role::Admin => Role::Admin,
        };
        Ok(AuthUser { id: user.id, name: user.name, role, token_hash, expires_ms: session.expires_ms })
    }

    /// Checks again, once a live session is registered with the engine, what was checked
    /// before the upgrade: a logout, a ban or a block that came in between was broadcast
    /// before the session existed and missed it. (Those write the store, or the ban cache,
    /// before they broadcast, so one of the two always catches them.) Ends the session if it
    /// must end, and hands the engine the user's blocks as they are now.
    pub async fn recheck(
        &self,
        shard: &pixelparty_engine::LocalShard,
        conn: ConnId,
        user: u32,
        token_hash: Option<[u8; 32]>,
        addr: IpAddr,
    ) {
        use pixelparty_protocol::CloseReason;
        let now = pixelparty_engine::now_ms();
        let end = match (self.bans.find(addr, now), token_hash) {
            (Some(ban), _) => Some((CloseReason::Banned, ban.ban.reason)),
            // A visitor: nothing more to check.
            (None, None) => return,
            (None, Some(token_hash)) => match self.authenticate(token_hash, now).await {
                Ok(_) => None,
                Err(e) if e.code == "banned" => Some((CloseReason::Banned, e.message)),
                Err(e) if e.status == hyper::StatusCode::UNAUTHORIZED => {
                    Some((CloseReason::SessionRevoked, "logged out".to_owned()))
                }
                // A storage error: keep the session (ends still arrive as messages).
                Err(_) => None,
            },
        };
        if let Some((reason, message)) = end {
            return shard.close(conn, reason, &message);
        }
        if let Ok(blocks) = self.blocks_of(user).await {
            shard.set_blocks(conn, blocks);
        }
    }

    /// Whether `ip` is a trusted reverse proxy.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        let ip = unmap(ip);
        self.trusted_proxies.iter().any(|n| n.contains(&ip))
    }

    /// The client address of a request that arrived from `peer`: `peer` itself, unless it is a
    /// trusted proxy, in which case the right-most `X-Forwarded-For` entry that is not a trusted
    /// proxy (entries further left are whatever the client claimed).
    pub fn client_ip(&self, peer: IpAddr, headers: &hyper::HeaderMap) -> IpAddr {
        if !self.is_trusted_proxy(peer) {
            return unmap(peer);
        }
        let mut client = unmap(peer);
        for value in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(value) = value.to_str() else { return client };
            for entry in value.rsplit(',') {
                let Ok(ip) = entry.trim().parse::<IpAddr>() else { return client };
                client = unmap(ip);
                if !self.is_trusted_proxy(client) {
                    return client;
                }
            }
        }
        client
    }

    /// Admits a new client connection from `ip` (HTTP, or a WebTransport session) if the
    /// process and the address are both under their limits, counting it until the slot is
    /// dropped; refusals are counted in the metrics.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ConnSlot> {
        if self.connections.load(Ordering::Relaxed) >= self.config.server.max_connections {
            self.metrics.accept_full.inc();
            return None;
        }
        let key = client_key(ip);
        let cap = if self.is_trusted_proxy(ip) { u32::MAX } else { self.config.server.max_connections_per_ip };
        {
            let mut per_ip = self.per_ip.lock();
            let n = per_ip.entry(key).or_insert(0);
            if *n >= cap {
                drop(per_ip);
                self.metrics.accept_per_ip.inc();
                return None;
            }
            *n += 1;
        }
        self.connections.fetch_add(1, Ordering::Relaxed);
        Some(ConnSlot { app: self.clone(), key })
    }

    /// A slot for one visitor session (protocol version 3), or `None` when the server holds
    /// `limits.max_visitors` already.
    pub fn admit_visitor(self: &Arc<Self>) -> Option<VisitorSlot> {
        let max = self.config.limits.max_visitors;
        self.visitors.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(VisitorSlot { app: self.clone() })
    }

    /// What a live session holds for its life: its visitor slot, or its user counted online.
    pub fn attend(self: &Arc<Self>, user: u32, visitor: Option<VisitorSlot>) -> Attendance {
        match visitor {
            Some(slot) => Attendance::Visitor(slot),
            None => Attendance::User(self.online.enter(user)),
        }
    }

    /// Counts a connection that was admitted in another form: a WebSocket session taking
    /// over the place of the HTTP connection that carried its upgrade.
    pub fn hold(self: &Arc<Self>, ip: IpAddr) -> ConnSlot {
        let key = client_key(ip);
        *self.per_ip.lock().entry(key).or_insert(0) += 1;
        self.connections.fetch_add(1, Ordering::Relaxed);
        ConnSlot { app: self.clone(), key }
    }
}

/// An IPv4-mapped IPv6 address as IPv4; anything else unchanged.
fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One visitor session counted against `limits.max_visitors` until dropped.
#[derive(Debug)]
pub struct VisitorSlot {
    app: Arc<App>,
}

impl Drop for VisitorSlot {
    fn drop(&mut self) {
        self.app.visitors.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Held by a live session for its life (see [`App::attend`]).
#[derive(Debug)]
pub enum Attendance {
    /// A logged-out visitor's slot.
    Visitor(VisitorSlot),
    /// A user counted as online.
    User(crate::online::OnlineGuard),
}

/// One open client connection, counted in [`App::connections`] and per address until dropped.
#[derive(Debug)]
pub struct ConnSlot {
    app: Arc<App>,
    key: IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.app.connections.fetch_sub(1, Ordering::Relaxed);
        let mut per_ip = self.app.per_ip.lock();
        if let Some(n) = per_ip.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.key);
            }
        }
    }
}
