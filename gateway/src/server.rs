//! Process wiring: open the store, start the engine with one `SO_REUSEPORT` listener per shard
//! thread (HTTP and WebSocket served on the shard's own thread), the admin endpoint on its own
//! thread, the snapshot thread; and shut it all down in order on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use pixelparty_engine::{Engine, LocalShard, Snapshotter, now_ms};
use pixelparty_protocol::CloseReason;
use pixelparty_storage::Store;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

use crate::app::App;
use crate::config::Config;
use crate::hasher::Hasher;
use crate::http::Ctx;

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// Shared state.
    pub app: Arc<App>,
    /// Public address actually bound.
    pub http_addr: SocketAddr,
    /// Admin address actually bound.
    pub admin_addr: SocketAddr,
    /// WebTransport (UDP) address actually bound, when enabled.
    pub wt_addr: Option<SocketAddr>,
    engine: Option<Engine>,
    admin: Option<crate::admin::AdminHandle>,
    stop: Arc<AtomicBool>,
    snapshots: Option<std::thread::JoinHandle<()>>,
}

/// A non-blocking socket bound to `addr` with `SO_REUSEPORT`, so every shard can bind the same
/// address and the kernel spreads connections (TCP) or datagrams (UDP) among them.
pub(crate) fn reuseport_socket(addr: SocketAddr, ty: Type, protocol: Protocol) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// A TCP listener bound with `SO_REUSEPORT` (see [`reuseport_socket`]).
pub fn reuseport_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = reuseport_socket(addr, Type::STREAM, Protocol::TCP)?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// Reads or creates the admin token: config, then `PIXELPARTY_ADMIN_TOKEN`, then
/// `<data>/admin.token` (created with a random token, mode 0600).
pub fn admin_token(config: &Config) -> std::io::Result<String> {
    if let Some(t) = config.server.admin_token.clone().filter(|t| !t.is_empty()) {
        return Ok(t);
    }
    if let Ok(t) = std::env::var("PIXELPARTY_ADMIN_TOKEN")
        && !t.is_empty()
    {
        return Ok(t);
    }
    let path = config.server.data_dir.join("admin.token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        return Ok(t.trim().to_owned());
    }
    std::fs::create_dir_all(&config.server.data_dir)?;
    let mut raw = [0u8; 24];
    getrandom::fill(&mut raw).map_err(|e| std::io::Error::other(e.to_string()))?;
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
        f.write_all(token.as_bytes())?;
    }
    tracing::info!(path = %path.display(), "generated an admin token");
    Ok(token)
}

/// Why a server did not start.
#[derive(Debug)]
pub enum StartError {
    /// A setting breaks a rule.
    Config(pixelparty_engine::ConfigError),
    /// The store could not be opened (an unreachable database: see
    /// [`StorageError::is_unavailable`](pixelparty_storage::StorageError::is_unavailable)).
    Store(pixelparty_storage::StorageError),
    /// The engine did not start (recovery, threads).
    Engine(pixelparty_engine::StartError),
    /// A listener could not be bound.
    Bind {
        /// Which listener.
        what: &'static str,
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Another I/O failure while starting.
    Io {
        /// What was being done.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The WebTransport certificate could not be made or loaded.
    WebTransport(String),
    /// The password hashing parameters are refused.
    Password(String),
    /// A part did not come up in time.
    NotReady(&'static str),
    /// Cluster mode: Redis could not be reached or set up.
    Cluster(crate::cluster::StartError),
}

impl StartError {
    fn bind(what: &'static str, addr: SocketAddr, source: std::io::Error) -> Self {
        Self::Bind { what, addr, source }
    }

    fn io(what: &'static str, source: std::io::Error) -> Self {
        Self::Io { what, source }
    }
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(e) => write!(f, "configuration: {e}"),
            Self::Store(e) => write!(f, "opening the store: {e}"),
            Self::Engine(e) => write!(f, "{e}"),
            Self::Bind { what, addr, source } => write!(f, "binding the {what} listener on {addr}: {source}"),
            Self::Io { what, source } => write!(f, "{what}: {source}"),
            Self::WebTransport(e) => write!(f, "WebTransport certificate: {e}"),
            Self::Password(e) => write!(f, "password hashing: {e}"),
            Self::NotReady(what) => f.write_str(what),
            Self::Cluster(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(e) => Some(e),
            Self::Store(e) => Some(e),
            Self::Engine(e) => Some(e),
            Self::Bind { source, .. } | Self::Io { source, .. } => Some(source),
            Self::Cluster(e) => Some(e),
            Self::WebTransport(_) | Self::Password(_) | Self::NotReady(_) => None,
        }
    }
}

impl From<pixelparty_engine::ConfigError> for StartError {
    fn from(e: pixelparty_engine::ConfigError) -> Self {
        Self::Config(e)
    }
}

impl Server {
    /// Starts everything. Binds the configured addresses (port 0 picks free ports; the bound
    /// ones are in the returned value).
    pub fn start(config: Config) -> Result<Self, StartError> {
        config.validate()?;
        let store = Store::open(config.store()?).map_err(StartError::Store)?;
        Self::start_with(config, store)
    }

    /// Starts everything on a store already open (tests wrap the real one in a double).
    pub fn start_with(config: Config, store: Store) -> Result<Self, StartError> {
        config.validate()?;
        let mut engine_config = config.engine()?;
        let cluster = match config.cluster() {
            Some(settings) => {
                let cluster = crate::cluster::Cluster::start(settings, store.clone()).map_err(StartError::Cluster)?;
                engine_config.cluster = Some(Arc::new(crate::cluster::Link(cluster.clone())));
                Some(cluster)
            }
            None => None,
        };
        let token = admin_token(&config).map_err(|e| StartError::io("reading or writing the admin token", e))?;
        let a = &config.auth;
        let hasher = Hasher::start(a.hash_concurrency, a.hash_queue, a.argon2_m_kib, a.argon2_t)
            .map_err(|e| StartError::io("starting the password hashers", e))?;

        // Bind before starting the engine so a busy port fails fast; each shard binds its own
        // SO_REUSEPORT socket on the resolved address.
        let probe =
            reuseport_listener(config.server.http).map_err(|e| StartError::bind("HTTP", config.server.http, e))?;
        let http_addr = probe.local_addr().map_err(|e| StartError::bind("HTTP", config.server.http, e))?;
        let admin_listener = std::net::TcpListener::bind(config.server.admin)
            .map_err(|e| StartError::bind("admin", config.server.admin, e))?;
        let admin_addr = admin_listener.local_addr().map_err(|e| StartError::bind("admin", config.server.admin, e))?;
        admin_listener.set_nonblocking(true).map_err(|e| StartError::bind("admin", admin_addr, e))?;

        let shards = engine_config.shards;
        let listeners: Vec<std::net::TcpListener> = std::iter::once(Ok(probe))
            .chain((1..shards).map(|_| reuseport_listener(http_addr)))
            .collect::<Result<_, _>>()
            .map_err(|e| StartError::bind("HTTP", http_addr, e))?;
        let listeners = Arc::new(parking_lot::Mutex::new(listeners.into_iter().map(Some).collect::<Vec<_>>()));

        // WebTransport: one SO_REUSEPORT UDP socket per shard on the same address.
        let (wt, wt_addr, udp) = if config.webtransport.enabled {
            let first = crate::wt::reuseport_udp(config.webtransport.bind)
                .map_err(|e| StartError::bind("WebTransport (UDP)", config.webtransport.bind, e))?;
            let addr =
                first.local_addr().map_err(|e| StartError::bind("WebTransport (UDP)", config.webtransport.bind, e))?;
            let state =
                Arc::new(crate::wt::WtState::new(&config.webtransport, addr).map_err(StartError::WebTransport)?);
            let sockets: Vec<std::net::UdpSocket> = std::iter::once(Ok(first))
                .chain((1..shards).map(|_| crate::wt::reuseport_udp(addr)))
                .collect::<Result<_, _>>()
                .map_err(|e| StartError::bind("WebTransport (UDP)", addr, e))?;
            (Some(state), Some(addr), sockets.into_iter().map(Some).collect::<Vec<_>>())
        } else {
            (None, None, Vec::new())
        };
        let udp = Arc::new(parking_lot::Mutex::new(udp));

        // The app needs the engine's handle, so shards start first and wait for it.
        let (app_tx, app_rx) = tokio::sync::watch::channel::<Option<Arc<App>>>(None);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let engine = Engine::start(engine_config, store.clone(), move |shard: LocalShard| {
            let listener = listeners.lock().get_mut(shard.id()).and_then(Option::take);
            let socket = udp.lock().get_mut(shard.id()).and_then(Option::take);
            let mut app_rx = app_rx.clone();
            let ready_tx = ready_tx.clone();
            async move {
                let Some(listener) = listener else { return };
                let Ok(listener) = TcpListener::from_std(listener) else { return };
                let _ = ready_tx.send(());
                let Ok(app) = app_rx.wait_for(Option::is_some).await.map(|a| a.clone()) else { return };
                let Some(app) = app else { return };
                if let (Some(socket), Some(wt)) = (socket, app.wt.clone()) {
                    tokio::task::spawn_local(crate::wt::serve(shard.clone(), app.clone(), wt, socket));
                }
                accept_loop(listener, shard, app).await;
            }
        })
        .map_err(StartError::Engine)?;
        for _ in 0..shards {
            ready_rx
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| StartError::NotReady("a shard did not start"))?;
        }

        let handle = engine.handle();
        let snapshotter = Arc::new(
            Snapshotter::new(handle.clone())
                .ok_or(StartError::NotReady("the shards did not answer the first snapshot"))?,
        );
        let dummy_hash = dummy_hash(&config)?;
        if let Some(wt) = &wt {
            crate::wt::spawn_rotation(wt.clone()).map_err(|e| StartError::io("starting certificate rotation", e))?;
        }
        let app = Arc::new(App::new(
            config.clone(),
            store.clone(),
            handle,
            snapshotter.clone(),
            hasher,
            &token,
            dummy_hash,
            wt,
        ));
        let ticket = app.bans.ticket();
        app.bans.set(ticket, store.wait(|b| b.net_bans()).map_err(StartError::Store)?);
        if let Some(cluster) = cluster {
            let applied = app.engine.shared().next_seq.load(Ordering::Acquire).saturating_sub(1);
            // Read before this node takes any session: a control event after it (a ban, a
            // logout) then concerns sessions this node may have, and is applied.
            let controls_from = store.wait(|b| b.last_control_id()).map_err(StartError::Store)?;
            let _ = app.cluster.set(cluster.clone());
            cluster.run(app.clone(), applied, controls_from);
        }
        let _ = app_tx.send(Some(app.clone()));

        let stop = Arc::new(AtomicBool::new(false));
        let refresh = Duration::from_millis(config.server.snapshot_refresh_ms.max(50));
        let persist = Duration::from_millis(config.server.snapshot_persist_ms.max(1000));
        let snapshots = app
            .snapshots
            .spawn(refresh, persist, stop.clone())
            .map_err(|e| StartError::io("starting the snapshotter", e))?;
        let admin = crate::admin::spawn(admin_listener, app.clone())
            .map_err(|e| StartError::io("starting the admin endpoint", e))?;
        Ok(Self {
            app,
            http_addr,
            admin_addr,
            wt_addr,
            engine: Some(engine),
            admin: Some(admin),
            stop,
            snapshots: Some(snapshots),
        })
    }

    /// Resolves once the store refuses writes for good (poisoned by a failed write or fsync):
    /// the process should then stop and be restarted. Checked every 250 ms.
    pub async fn store_failed(&self) {
        let mut every = tokio::time::interval(Duration::from_millis(250));
        loop {
            every.tick().await;
            if self.app.store.is_poisoned() {
                return;
            }
        }
    }

    /// Stops accepting, closes sessions with "going away", writes a final snapshot and lets
    /// the store flush.
    pub fn shutdown(mut self) {
        self.app.accepting.store(false, Ordering::Release);
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.snapshots.take() {
            let _ = t.join();
        }
        // The last snapshot needs the shards; what they apply after it is in the journal.
        match self.app.snapshots.snapshotter().persist() {
            Ok(n) => tracing::info!(tiles = n, "final tile snapshots written"),
            Err(e) => tracing::error!(error = %e, "final snapshot"),
        }
        if let Some(admin) = self.admin.take() {
            admin.stop();
        }
        if let Some(engine) = self.engine.take() {
            engine.shutdown(CloseReason::Shutdown);
        }
        if let Err(e) = self.app.store.wait(|b| b.flush()) {
            tracing::error!(error = %e, "final flush");
        }
    }
}

/// A hash of a random password with the configured cost, verified when a login names no
/// user (computed here, synchronously, once at start-up).
fn dummy_hash(config: &Config) -> Result<String, StartError> {
    use argon2::password_hash::PasswordHasher;
    let a = &config.auth;
    let params =
        argon2::Params::new(a.argon2_m_kib, a.argon2_t, 1, None).map_err(|e| StartError::Password(e.to_string()))?;
    let mut secret = [0u8; 16];
    getrandom::fill(&mut secret).map_err(|e| StartError::Password(e.to_string()))?;
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(&secret)
        .map(|h| h.to_string())
        .map_err(|e| StartError::Password(e.to_string()))
}

async fn accept_loop(listener: TcpListener, shard: LocalShard, app: Arc<App>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if !app.accepting.load(Ordering::Acquire) {
            continue;
        }
        if app.bans.find(peer.ip(), now_ms()).is_some() {
            app.metrics.accept_banned.inc();
            crate::bans::refuse(stream); // A fixed 403 before any work.
            continue;
        }
        let Some(slot) = app.admit(peer.ip()) else {
            continue; // Full, or too many from this address: closed before any work.
        };
        let ctx = Rc::new(Ctx { app: app.clone(), shard: shard.clone(), peer });
        let request_timeout = Duration::from_millis(app.config.server.request_timeout_ms);
        tokio::task::spawn_local(async move {
            let _slot = slot;
            let _ = stream.set_nodelay(true);
            let service = service_fn(move |req| crate::http::serve(req, ctx.clone()));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(request_timeout)
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "http connection ended with an error");
            }
        });
    }
}
