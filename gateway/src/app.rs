//! The process-wide state every handler reaches: configuration, the store, the engine's
//! handle, ban cache, hashing pool, rate limiters, snapshot cache, counters.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use pixelparty_engine::{EngineHandle, Snapshotter};
use pixelparty_storage::{StorageError, Store, Tx};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::bans::BanCache;
use crate::config::Config;
use crate::hasher::Hasher;
use crate::http::error::ApiError;
use crate::ratelimit::KeyedLimiter;
use crate::snapshot_http::SnapshotCache;

/// Counters of the gateway itself (the engine keeps its own).
#[derive(Debug, Default)]
pub struct GatewayMetrics {
    /// HTTP requests served.
    pub http_requests: AtomicU64,
    /// HTTP responses with status >= 500.
    pub http_errors: AtomicU64,
    /// Successful logins.
    pub logins_ok: AtomicU64,
    /// Logins refused for bad credentials.
    pub logins_failed: AtomicU64,
    /// Logins refused by a rate limit.
    pub logins_limited: AtomicU64,
    /// Logins refused by a ban.
    pub logins_banned: AtomicU64,
    /// Sign-ups.
    pub signups: AtomicU64,
    /// WebSocket sessions opened.
    pub ws_opened: AtomicU64,
    /// WebSocket upgrades refused (auth, origin, ban, capacity).
    pub ws_refused: AtomicU64,
    /// Connections refused at accept by an address ban.
    pub accept_banned: AtomicU64,
    /// Connections refused at accept because the process was full.
    pub accept_full: AtomicU64,
}

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
    /// Encoded snapshots.
    pub snapshots: Arc<SnapshotCache>,
    /// Open client connections.
    pub connections: AtomicUsize,
    /// False once shutdown began.
    pub accepting: AtomicBool,
    /// SHA-256 of the admin token.
    pub admin_token_hash: [u8; 32],
    /// A hash verified when a login names no user, so timing does not reveal names.
    pub dummy_hash: String,
    /// Counters.
    pub metrics: GatewayMetrics,
    /// WebTransport, when enabled.
    pub wt: Option<Arc<crate::wt::WtState>>,
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
        Self {
            login_ip: KeyedLimiter::new(a.login_per_ip_per_min, 60_000),
            login_account: KeyedLimiter::new(a.login_per_account_per_min, 60_000),
            signup_ip: KeyedLimiter::new(a.signup_per_ip_per_hour, 3_600_000),
            snapshots: Arc::new(SnapshotCache::new(snapshotter)),
            bans: BanCache::default(),
            connections: AtomicUsize::new(0),
            accepting: AtomicBool::new(true),
            admin_token_hash: sha256(admin_token.as_bytes()),
            dummy_hash,
            metrics: GatewayMetrics::default(),
            wt,
            config,
            store,
            engine,
            hasher,
        }
    }

    /// Runs a write on the store's writer without blocking the calling event loop.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, StorageError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.store.submit(f, move |r| {
            let _ = tx.send(r);
        })?;
        rx.await.map_err(|_| ApiError::internal("store closed"))?.map_err(ApiError::from)
    }

    /// Whether the process should take more client connections.
    pub fn has_room(&self) -> bool {
        self.connections.load(Ordering::Relaxed) < self.config.server.max_connections
    }
}
