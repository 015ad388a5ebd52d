//! Server configuration: defaults, then a TOML file, then environment variables and
//! command-line flags (clap reads both). Every limit of the design is a value here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use pixelparty_engine::ConfigError;
use pixelparty_engine::EngineConfig;
use pixelparty_protocol::Geometry;
use pixelparty_storage::{Durability, StoreConfig};
use serde::Deserialize;

/// The whole configuration, as read from a TOML file (every field optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Network and process settings.
    pub server: ServerSection,
    /// The canvas.
    pub canvas: CanvasSection,
    /// Accounts, sessions, password hashing, login rate limits.
    pub auth: AuthSection,
    /// Storage.
    pub storage: StorageSection,
    /// Limits of sessions, rooms and queues.
    pub limits: LimitsSection,
    /// WebTransport over HTTP/3 (QUIC).
    pub webtransport: WebTransportSection,
    /// Cluster mode (several nodes on Redis and PostgreSQL); off without `redis_url`.
    pub cluster: ClusterSection,
    /// Backups: where, how often, how many kept.
    pub backup: BackupSection,
}

/// `[backup]`: backups to a directory or to S3-compatible object storage, on demand
/// (`pixelparty admin backup`) and on a schedule (README, "Backups").
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupSection {
    /// A directory, or `s3://bucket/prefix` (empty: `<data_dir>/backups`). S3 credentials
    /// come from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).
    pub target: String,
    /// Seconds between scheduled backups (0: only on demand).
    pub interval_s: u64,
    /// Complete backups kept; older ones are removed after each backup.
    pub retain: usize,
    /// Endpoint of an S3-compatible service (empty: AWS, or `AWS_ENDPOINT`).
    pub s3_endpoint: String,
    /// S3 region (empty: `AWS_REGION`, else `us-east-1`).
    pub s3_region: String,
    /// Allow plain HTTP to `s3_endpoint` (a local test server only).
    pub s3_allow_http: bool,
}

impl Default for BackupSection {
    fn default() -> Self {
        Self {
            target: String::new(),
            interval_s: 0,
            retain: 7,
            s3_endpoint: String::new(),
            s3_region: String::new(),
            s3_allow_http: false,
        }
    }
}

/// `[cluster]`: several nodes serving one canvas and one chat, sharing Redis and PostgreSQL
/// (`storage.backend = "postgres"`). Without `redis_url` the server is one node.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSection {
    /// Redis URL (`redis://127.0.0.1:6379/0`); empty: no cluster.
    pub redis_url: String,
    /// This node's name in logs and metrics (default: host name and process id).
    pub node_id: String,
    /// Certificates (PEM) trusted for TLS to Redis (`rediss://` URLs) instead of the system's
    /// (a private CA); without it the system's trust store.
    pub redis_ca_file: Option<PathBuf>,
    /// Prefix of every Redis key, channel and stream (clusters can share one Redis).
    pub key_prefix: String,
    /// A node that has not heard from Redis for this long refuses writes with `unavailable`.
    pub redis_timeout_ms: u64,
    /// How often each node reads the canvas's head from PostgreSQL (what announcements lost
    /// is found at most this late).
    pub poll_ms: u64,
    /// How long a gap in the canvas or a room may stay open before it is filled from
    /// PostgreSQL.
    pub gap_hold_ms: u64,
    /// How often a room's home asks PostgreSQL for the room's newest sequence.
    pub room_check_ms: u64,
    /// How often each node announces its members of each room; a node not heard from for
    /// three of these is taken as gone, and its members leave the rooms.
    pub presence_ms: u64,
}

impl Default for ClusterSection {
    fn default() -> Self {
        Self {
            redis_url: String::new(),
            node_id: String::new(),
            redis_ca_file: None,
            key_prefix: "pixelparty".into(),
            redis_timeout_ms: 3000,
            poll_ms: 250,
            gap_hold_ms: 50,
            room_check_ms: 1000,
            presence_ms: 2000,
        }
    }
}

impl ClusterSection {
    /// Whether cluster mode is on.
    pub fn enabled(&self) -> bool {
        !self.redis_url.is_empty()
    }
}

/// `[webtransport]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebTransportSection {
    /// Serve WebTransport sessions.
    pub enabled: bool,
    /// UDP address of the HTTP/3 endpoint (every shard binds it with `SO_REUSEPORT`).
    pub bind: SocketAddr,
    /// Certificate chain (PEM). Without it a self-signed ECDSA P-256 certificate valid for
    /// 13 days is generated at start and rotated every 10 days; its SHA-256 is published for
    /// browsers' `serverCertificateHashes`.
    pub cert_file: Option<PathBuf>,
    /// Private key (PEM) for `cert_file`.
    pub key_file: Option<PathBuf>,
    /// URL advertised to clients (default: `https://<bind>/wt`).
    pub public_url: Option<String>,
    /// Close a session idle for this long (ms).
    pub idle_timeout_ms: u64,
    /// Per-stream receive window in bytes (flow control).
    pub stream_window: u32,
    /// Per-connection receive window in bytes.
    pub connection_window: u32,
}

impl Default for WebTransportSection {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: SocketAddr::from(([127, 0, 0, 1], 8443)),
            cert_file: None,
            key_file: None,
            public_url: None,
            idle_timeout_ms: 60_000,
            stream_window: 256 * 1024,
            connection_window: 512 * 1024,
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Public HTTP and WebSocket address.
    pub http: SocketAddr,
    /// Admin endpoint address (keep it private).
    pub admin: SocketAddr,
    /// Admin token; if unset, `PIXELPARTY_ADMIN_TOKEN`, else one is generated into
    /// `<data>/admin.token` (mode 0600).
    pub admin_token: Option<String>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Shard threads (0: one per core).
    pub shards: usize,
    /// Origins allowed to open WebSockets (`scheme://host[:port]`). Empty: same host as the
    /// request's `Host` header. Requests without `Origin` (bots) are allowed.
    pub allowed_origins: Vec<String>,
    /// Mark the session cookie `Secure` (set behind HTTPS).
    pub cookie_secure: bool,
    /// Most open client connections for the whole process (the open-file limit bounds it).
    pub max_connections: usize,
    /// Most open client connections from one address (an IPv6 client: its /64), HTTP,
    /// WebSocket and WebTransport together.
    pub max_connections_per_ip: u32,
    /// Close a connection whose peer takes longer than this to accept one write (ms): a
    /// client that stops reading does not hold its connection forever.
    pub write_timeout_ms: u64,
    /// Longest time a client may take to send a request's headers or its body (ms).
    pub request_timeout_ms: u64,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the client:
    /// for their requests, bans, login and sign-up limits apply to that client address, and
    /// the proxies themselves are exempt from `max_connections_per_ip`.
    pub trusted_proxies: Vec<String>,
    /// Largest HTTP request body in bytes.
    pub max_body_bytes: usize,
    /// Close a WebSocket when nothing arrives for this long (ms). The server pings at half.
    pub idle_timeout_ms: u64,
    /// How often the HTTP snapshot is refreshed when the canvas changed (ms).
    pub snapshot_refresh_ms: u64,
    /// How often changed tiles are written to the store (ms).
    pub snapshot_persist_ms: u64,
    /// Log format: `text` or `json`.
    pub log_format: String,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin: SocketAddr::from(([127, 0, 0, 1], 9091)),
            admin_token: None,
            data_dir: PathBuf::from("./data"),
            shards: 0,
            allowed_origins: Vec::new(),
            cookie_secure: false,
            max_connections: 18_000,
            max_connections_per_ip: 256,
            write_timeout_ms: 10_000,
            request_timeout_ms: 10_000,
            trusted_proxies: Vec::new(),
            max_body_bytes: 64 * 1024,
            idle_timeout_ms: 60_000,
            snapshot_refresh_ms: 1000,
            snapshot_persist_ms: 60_000,
            log_format: "text".into(),
        }
    }
}

/// `[canvas]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CanvasSection {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bits per pixel (1, 2, 4, 8).
    pub bpp: u8,
    /// Tile edge (power of two, 8..=256).
    pub tile_size: u16,
    /// Palette as `#RRGGBB` strings (default: the r/place 2017 palette at 4 bpp, greys
    /// otherwise).
    pub palette: Vec<String>,
    /// Paint cooldown per user in ms (0: none).
    pub cooldown_ms: u32,
    /// ADMINs skip the cooldown.
    pub admin_exempt: bool,
    /// Fan-out and group-commit tick in ms.
    pub tick_ms: u32,
    /// Recent updates kept per tile for resuming clients.
    pub ring_per_tile: usize,
}

impl Default for CanvasSection {
    fn default() -> Self {
        Self {
            width: 1000,
            height: 1000,
            bpp: 4,
            tile_size: 256,
            palette: Vec::new(),
            cooldown_ms: 5000,
            admin_exempt: true,
            tick_ms: 5,
            ring_per_tile: 1024,
        }
    }
}

/// `[auth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    /// Session lifetime in hours.
    pub session_ttl_hours: u64,
    /// Password hashes computed at once (each argon2id hash takes 19 MiB).
    pub hash_concurrency: usize,
    /// Hash requests waiting beyond the running ones; more get 503.
    pub hash_queue: usize,
    /// Argon2id memory cost in KiB (OWASP: 19456).
    pub argon2_m_kib: u32,
    /// Argon2id iterations (OWASP: 2).
    pub argon2_t: u32,
    /// Login attempts per IP per minute.
    pub login_per_ip_per_min: u32,
    /// Login attempts per account per minute.
    pub login_per_account_per_min: u32,
    /// Sign-ups per IP per hour.
    pub signup_per_ip_per_hour: u32,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            session_ttl_hours: 24 * 30,
            hash_concurrency: 2,
            hash_queue: 64,
            argon2_m_kib: 19 * 1024,
            argon2_t: 2,
            login_per_ip_per_min: 30,
            login_per_account_per_min: 10,
            signup_per_ip_per_hour: 20,
        }
    }
}

/// `[storage]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSection {
    /// `sync`, `interval:<ms>` or `none` (see README).
    pub durability: String,
    /// Block cache in MiB.
    pub cache_mb: u64,
    /// Days of canvas journal kept for the inspector and rollback (0: forever).
    pub journal_retention_days: u64,
    /// `fjall` (embedded, in `server.data_dir`) or `postgres` (at `postgres_url`).
    pub backend: String,
    /// PostgreSQL connection string (`postgres://user@host:port/db`), for `backend = "postgres"`.
    pub postgres_url: String,
    /// Certificates (PEM) trusted besides the system's for TLS to PostgreSQL, which the URL
    /// asks for with `sslmode=require` (e.g. Amazon RDS's CA bundle).
    pub postgres_ca_file: Option<PathBuf>,
    /// Most connections to PostgreSQL.
    pub pool_size: usize,
    /// Longest one PostgreSQL statement may run, in milliseconds (also how long a request
    /// waits for a connection).
    pub statement_timeout_ms: u64,
}

impl Default for StorageSection {
    fn default() -> Self {
        Self {
            durability: "sync".into(),
            cache_mb: 64,
            journal_retention_days: 7,
            backend: "fjall".into(),
            postgres_url: String::new(),
            postgres_ca_file: None,
            pool_size: 16,
            statement_timeout_ms: 5000,
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    /// Tiles one session may subscribe to.
    pub max_subscriptions: usize,
    /// Rooms one session may be in.
    pub max_rooms_per_session: usize,
    /// Sessions in one room.
    pub max_room_members: usize,
    /// Outbound bytes queued per session before canvas updates are dropped.
    pub outbound_max_bytes: usize,
    /// Extra outbound bytes for chat and control before a session is closed.
    pub outbound_reserve_bytes: usize,
    /// Messages a user may send in a burst.
    pub chat_burst: u32,
    /// Spacing of messages after the burst, ms (0: no slow mode).
    pub chat_interval_ms: u32,
    /// Inbox capacity of each shard.
    pub inbox_capacity: usize,
    /// Rooms the server holds at most; creating more is refused.
    pub max_rooms: u32,
    /// Rooms one user may create per hour (admins are exempt).
    pub room_creates_per_user_per_hour: u32,
    /// Logged-out visitor sessions (protocol version 3) this server holds at most; more are
    /// refused with 503 (0: no visitors).
    pub max_visitors: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let e = EngineConfig::new(Geometry::new(8, 8, 4, 8).unwrap_or_else(|_| unreachable!("valid literal geometry")));
        Self {
            max_subscriptions: e.max_subscriptions,
            max_rooms_per_session: e.max_rooms_per_session,
            max_room_members: e.max_room_members,
            outbound_max_bytes: e.outbound_max_bytes,
            outbound_reserve_bytes: e.outbound_reserve_bytes,
            chat_burst: e.chat_burst,
            chat_interval_ms: e.chat_interval_ms,
            inbox_capacity: e.inbox_capacity,
            max_rooms: 100_000,
            room_creates_per_user_per_hour: 30,
            max_visitors: 10_000,
        }
    }
}

fn parse_colour(s: &str) -> Result<[u8; 3], ConfigError> {
    let bad = || ConfigError::new("canvas.palette", format!("colour {s:?} is not #RRGGBB"));
    let hex = s.strip_prefix('#').unwrap_or(s);
    if hex.len() != 6 {
        return Err(bad());
    }
    let v = u32::from_str_radix(hex, 16).map_err(|_| bad())?;
    Ok([(v >> 16) as u8, (v >> 8) as u8, v as u8])
}

impl Config {
    /// The defaults with every listener (HTTP, admin, WebTransport) on an ephemeral port of
    /// 127.0.0.1, two shards and the data in `data_dir`: a server for tests and embedded use.
    pub fn loopback(data_dir: &std::path::Path) -> Self {
        let mut c = Self::default();
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        (c.server.http, c.server.admin, c.webtransport.bind) = (any, any, any);
        c.server.data_dir = data_dir.to_path_buf();
        c.server.shards = 2;
        c
    }

    /// Reads a TOML file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("config file", format!("reading {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| ConfigError::new("config file", format!("{}: {e}", path.display())))
    }

    /// The engine's configuration.
    pub fn engine(&self) -> Result<EngineConfig, ConfigError> {
        let c = &self.canvas;
        let geometry = Geometry::new(c.width, c.height, c.bpp, c.tile_size)
            .map_err(|e| ConfigError::new("canvas", e.to_string()))?;
        let mut e = EngineConfig::new(geometry);
        if self.server.shards > 0 {
            e.shards = self.server.shards;
        }
        if !c.palette.is_empty() {
            e.palette = c.palette.iter().map(|s| parse_colour(s)).collect::<Result<_, _>>()?;
        }
        e.cooldown_ms = c.cooldown_ms;
        e.admin_exempt = c.admin_exempt;
        e.tick_ms = c.tick_ms;
        e.ring_per_tile = c.ring_per_tile;
        let l = &self.limits;
        e.max_subscriptions = l.max_subscriptions;
        e.max_rooms_per_session = l.max_rooms_per_session;
        e.max_room_members = l.max_room_members;
        e.outbound_max_bytes = l.outbound_max_bytes;
        e.outbound_reserve_bytes = l.outbound_reserve_bytes;
        e.chat_burst = l.chat_burst;
        e.chat_interval_ms = l.chat_interval_ms;
        e.inbox_capacity = l.inbox_capacity;
        e.gap_hold_ms = self.cluster.gap_hold_ms;
        e.room_check_ms = self.cluster.room_check_ms.max(100);
        e.presence_ms = self.cluster.presence_ms.max(100);
        e.validate()?;
        Ok(e)
    }

    /// The store's configuration.
    pub fn store(&self) -> Result<StoreConfig, ConfigError> {
        let s = &self.storage;
        let mut c = StoreConfig::new(self.server.data_dir.join("db"));
        c.durability = Durability::parse(&s.durability).ok_or_else(|| {
            ConfigError::new(
                "storage.durability",
                format!("must be sync, none or interval:<ms>, not {:?}", s.durability),
            )
        })?;
        c.cache_bytes = s.cache_mb * 1024 * 1024;
        c.journal_retention =
            (s.journal_retention_days > 0).then(|| Duration::from_secs(s.journal_retention_days * 86_400));
        c.postgres = match s.backend.as_str() {
            "fjall" => None,
            "postgres" if s.postgres_url.is_empty() => {
                let rule = "is needed with storage.backend = \"postgres\" (or --postgres-url)".into();
                return Err(ConfigError::new("storage.postgres_url", rule));
            }
            "postgres" => {
                if s.pool_size == 0 || s.statement_timeout_ms == 0 {
                    let rule = "must be positive".into();
                    return Err(ConfigError::new("storage.pool_size, storage.statement_timeout_ms", rule));
                }
                let mut pg = pixelparty_storage::PgConfig::new(s.postgres_url.clone());
                pg.pool_size = s.pool_size;
                pg.statement_timeout = Duration::from_millis(s.statement_timeout_ms);
                pg.history_scan_max = c.history_scan_max;
                pg.journal_retention = c.journal_retention;
                pg.ca_file = s.postgres_ca_file.clone();
                Some(pg)
            }
            other => {
                return Err(ConfigError::new("storage.backend", format!("must be fjall or postgres, not {other:?}")));
            }
        };
        Ok(c)
    }

    /// The trusted proxies as networks (a bare address is a /32 or /128).
    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.server
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| {
                        ConfigError::new("server.trusted_proxies", format!("{p:?} is not an address or CIDR range"))
                    })
            })
            .collect()
    }

    /// Checks what the engine and store checks do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.engine()?;
        self.store()?;
        let a = &self.auth;
        if a.hash_concurrency == 0 || a.argon2_m_kib < 8 || a.argon2_t == 0 {
            let rule = "must be positive (argon2_m_kib at least 8)".into();
            return Err(ConfigError::new("auth.hash_concurrency, auth.argon2_m_kib, auth.argon2_t", rule));
        }
        if self.server.max_connections == 0 || self.server.idle_timeout_ms < 1000 {
            let rule = "max_connections must be positive and idle_timeout_ms at least 1000".into();
            return Err(ConfigError::new("server.max_connections, server.idle_timeout_ms", rule));
        }
        self.trusted_proxies()?;
        if self.server.max_connections_per_ip == 0
            || self.server.write_timeout_ms < 100
            || self.server.request_timeout_ms < 100
        {
            let rule = "max_connections_per_ip must be positive, write_timeout_ms and request_timeout_ms at least 100";
            return Err(ConfigError::new(
                "server.max_connections_per_ip, server.write_timeout_ms, server.request_timeout_ms",
                rule.into(),
            ));
        }
        if self.webtransport.cert_file.is_some() != self.webtransport.key_file.is_some() {
            return Err(ConfigError::new("webtransport.cert_file, webtransport.key_file", "go together".into()));
        }
        if !matches!(self.server.log_format.as_str(), "text" | "json") {
            return Err(ConfigError::new("server.log_format", "must be text or json".into()));
        }
        let s = &self.storage;
        if s.postgres_ca_file.is_some()
            && !s.postgres_url.contains("sslmode=require")
            && !s.postgres_url.contains("sslmode=verify")
        {
            let rule = "is used only with TLS: add sslmode=require to storage.postgres_url".into();
            return Err(ConfigError::new("storage.postgres_ca_file", rule));
        }
        if self.backup.retain == 0 {
            return Err(ConfigError::new("backup.retain", "must be at least 1".into()));
        }
        let c = &self.cluster;
        if c.enabled() && self.storage.backend != "postgres" {
            let rule = "needs storage.backend = \"postgres\" (the nodes share PostgreSQL)".into();
            return Err(ConfigError::new("cluster.redis_url", rule));
        }
        if c.enabled() && (c.key_prefix.is_empty() || c.key_prefix.contains(['{', '}'])) {
            return Err(ConfigError::new("cluster.key_prefix", "must be non-empty, without braces".into()));
        }
        if c.enabled() && (c.redis_timeout_ms < 100 || c.poll_ms < 10 || c.poll_ms > 60_000) {
            let rule = "redis_timeout_ms at least 100, poll_ms 10..=60000".into();
            return Err(ConfigError::new("cluster.redis_timeout_ms, cluster.poll_ms", rule));
        }
        Ok(())
    }

    /// Where backups go (`backup.target`, default `<data_dir>/backups`).
    pub fn backup_target(&self) -> String {
        if self.backup.target.is_empty() {
            self.server.data_dir.join("backups").display().to_string()
        } else {
            self.backup.target.clone()
        }
    }

    /// The S3 settings of `[backup]`.
    pub fn backup_s3(&self) -> crate::backup::S3Options {
        let b = &self.backup;
        crate::backup::S3Options {
            endpoint: b.s3_endpoint.clone(),
            region: b.s3_region.clone(),
            allow_http: b.s3_allow_http,
        }
    }

    /// The cluster link's settings, when cluster mode is on.
    pub fn cluster(&self) -> Option<crate::cluster::Settings> {
        let c = &self.cluster;
        if !c.enabled() {
            return None;
        }
        let node_name = if c.node_id.is_empty() {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        } else {
            c.node_id.clone()
        };
        Some(crate::cluster::Settings {
            redis_url: c.redis_url.clone(),
            redis_ca_file: c.redis_ca_file.clone(),
            node_name,
            prefix: c.key_prefix.clone(),
            redis_timeout_ms: c.redis_timeout_ms,
            poll_ms: c.poll_ms,
            gap_hold_ms: c.gap_hold_ms,
            cooldown_ms: self.canvas.cooldown_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn toml_overrides_and_rejects_unknown_keys() {
        let c: Config =
            toml::from_str("[canvas]\nwidth = 64\nheight = 32\ntile_size = 16\npalette = [\"#000000\", \"#ffffff\"]\n")
                .unwrap();
        assert_eq!(c.engine().unwrap().geometry.tile_count(), 8);
        assert_eq!(c.engine().unwrap().palette[1], [255, 255, 255]);
        assert!(toml::from_str::<Config>("[canvas]\nwidht = 1\n").is_err());
        let bad: Config = toml::from_str("[storage]\ndurability = \"fast\"\n").unwrap();
        assert!(bad.validate().is_err());
    }
}
