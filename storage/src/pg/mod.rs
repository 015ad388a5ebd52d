//! [`PgStore`]: the PostgreSQL backend, the same domain operations as the fjall store behind
//! [`Backend`], for nodes that share one database.
//!
//! Every operation takes a pooled connection (`deadpool-postgres`); every write runs in one
//! transaction whose future resolves once COMMIT returns (PostgreSQL's commit is durable, so
//! [`Backend::flush`] has nothing to do). What the fjall backend gets from its single writer
//! (dense ids, unique names checked before insert, per-pair transitions, conversation
//! sequences) comes from transaction-scoped advisory locks here. Every connection carries the
//! configured `statement_timeout`, and every list query has a LIMIT.
//!
//! # Layout
//! - `config`: [`PgConfig`].
//! - `migrate`: the embedded schema migrations (`migrations/*.sql`), applied at connect.
//! - `error`: PostgreSQL failures as [`StorageError`]s; checked integer conversions.
//! - `sql`: prepared-statement helpers and the advisory locks.
//! - [`tls`]: TLS to the database (`sslmode=require`).
//! - `accounts`, `social`, `moderation`, `chat`, `canvas`: the operations, one file per
//!   concept, as in the fjall backend.

mod accounts;
mod canvas;
mod chat;
pub mod config;
mod control;
mod error;
mod migrate;
mod moderation;
mod social;
mod sql;
pub mod tls;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use ipnet::IpNet;
use pixelparty_protocol::Geometry;
use tokio_postgres::NoTls;

pub use config::PgConfig;

use crate::accounts::TOKEN_HASH_LEN;
use crate::backend::{AuditDraft, Backend, Hidden, Op, TickWrite};
use crate::error::{Result, StorageError};
use crate::records::{
    AuditEntry, Ban, Conversation, Message, NetBan, PixelRecord, Relation, Role, Room, Session, User,
};
use crate::social::{FriendOutcome, Removed};
use crate::{RecoveredCanvas, TileSnapshot};
use social::List;

/// How often a backend that lost the server tries to reach it again (for [`Backend::is_ready`]).
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);

/// A future borrowing a connection or transaction.
type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// The PostgreSQL backend. Cheap to clone (one pool shared by the clones).
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    config: PgConfig,
    /// Whether the last operation (or health probe) reached the server.
    ready: AtomicBool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("status", &self.inner.pool.status()).finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects, applies the schema migrations this build carries (see `migrate`), and
    /// starts the pool. Must run inside a tokio runtime (the pool's connections and its health
    /// probe are tasks of it).
    pub async fn connect(config: PgConfig) -> Result<Self> {
        if config.pool_size == 0 || config.history_scan_max == 0 {
            return Err(StorageError::invalid("pool_size and history_scan_max must be positive"));
        }
        let timeout_ms = config.statement_timeout.as_millis();
        if timeout_ms == 0 {
            // PostgreSQL reads 0 as "no timeout".
            return Err(StorageError::invalid("statement_timeout must be at least 1 ms"));
        }
        // libpq's verifying modes are what `require` does here (rustls always verifies the
        // certificate and the host name).
        let url = config
            .url
            .replace("sslmode=verify-full", "sslmode=require")
            .replace("sslmode=verify-ca", "sslmode=require");
        let mut pg: tokio_postgres::Config = url.parse().map_err(|_| StorageError::invalid("database url"))?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(config.statement_timeout);
        }
        let manager_config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        // `sslmode=require`: TLS with the certificate verified; otherwise plain (`prefer`, the
        // default, then never tries TLS: say `require` to have it).
        let manager = if pg.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls::client_config(config.ca_file.as_deref())?);
            Manager::from_config(pg, tls, manager_config)
        } else {
            Manager::from_config(pg, NoTls, manager_config)
        };
        let set = format!("SET statement_timeout = {timeout_ms}");
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.statement_timeout))
            .create_timeout(Some(config.statement_timeout))
            .recycle_timeout(Some(config.statement_timeout))
            .post_create(Hook::async_fn(move |client, _| {
                let set = set.clone();
                Box::pin(async move { client.batch_execute(&set).await.map_err(HookError::Backend) })
            }))
            .build()
            .map_err(StorageError::io)?;
        let mut client = pool.get().await.map_err(error::pool)?;
        let ran = migrate::migrate(&mut client).await?;
        drop(client);
        if ran > 0 {
            tracing::info!(migrations = ran, "database schema migrated");
        }
        let inner = Arc::new(Inner { pool, config, ready: AtomicBool::new(true) });
        tokio::spawn(health(Arc::downgrade(&inner)));
        Ok(Self { inner })
    }

    /// The configuration the backend was connected with.
    pub fn config(&self) -> &PgConfig {
        &self.inner.config
    }

    /// Runs `f` on a pooled connection (reads: one statement each, or several that need not
    /// agree).
    fn read<T, F>(&self, f: F) -> Op<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a Object) -> Fut<'a, T> + Send + 'static,
    {
        let inner = self.inner.clone();
        Box::pin(async move {
            let result = async {
                let client = inner.pool.get().await.map_err(error::pool)?;
                f(&client).await
            }
            .await;
            inner.note(&result);
            result
        })
    }

    /// Runs `f` in a transaction and commits it (writes; reads that must agree use a
    /// read-only repeatable-read one, `snapshot`).
    fn transaction<T, F>(&self, snapshot: bool, f: F) -> Op<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a deadpool_postgres::Transaction<'a>) -> Fut<'a, T> + Send + 'static,
    {
        let inner = self.inner.clone();
        Box::pin(async move {
            let result = async {
                let mut client = inner.pool.get().await.map_err(error::pool)?;
                let mut builder = client.build_transaction();
                if snapshot {
                    builder = builder.isolation_level(tokio_postgres::IsolationLevel::RepeatableRead).read_only(true);
                }
                let tx = builder.start().await.map_err(error::statement)?;
                let out = f(&tx).await?;
                // A read's COMMIT that gets no answer changed nothing: not an unknown outcome.
                let failed = if snapshot { error::statement } else { error::commit };
                tx.commit().await.map_err(failed)?;
                Ok(out)
            }
            .await;
            inner.note(&result);
            result
        })
    }

    fn write<T, F>(&self, f: F) -> Op<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a deadpool_postgres::Transaction<'a>) -> Fut<'a, T> + Send + 'static,
    {
        self.transaction(false, f)
    }

    fn scan_max(&self) -> usize {
        self.inner.config.history_scan_max
    }
}

impl Inner {
    /// Keeps the readiness flag: lost on an unreachable server (or a COMMIT without an
    /// answer), back on any answer.
    fn note<T>(&self, result: &Result<T>) {
        match result {
            Err(e) if e.is_unavailable() || e.is_outcome_unknown() => self.ready.store(false, Ordering::Release),
            Ok(_) => self.ready.store(true, Ordering::Release),
            Err(_) => {}
        }
    }
}

/// While the server is unreachable, tries it every [`HEALTH_INTERVAL`] so that readiness
/// comes back without waiting for traffic. Ends with the last handle.
async fn health(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(HEALTH_INTERVAL).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.ready.load(Ordering::Acquire) {
            continue;
        }
        let probe = async {
            let client = inner.pool.get().await.map_err(error::pool)?;
            client.simple_query("SELECT 1").await.map_err(error::statement).map(drop)
        }
        .await;
        inner.note(&probe);
    }
}

impl Backend for PgStore {
    fn user(&self, id: u32) -> Op<Option<User>> {
        self.read(move |c| Box::pin(accounts::user(c, id)))
    }
    fn user_names(&self, ids: Vec<u32>) -> Op<Vec<(u32, String)>> {
        self.read(move |c| Box::pin(accounts::user_names(c, ids)))
    }
    fn user_by_name(&self, name: String) -> Op<Option<User>> {
        self.read(move |c| Box::pin(accounts::user_by_name(c, name)))
    }
    fn users(&self, after: u32, limit: usize) -> Op<Vec<User>> {
        self.read(move |c| Box::pin(accounts::users(c, after, limit)))
    }
    fn user_count(&self) -> Op<u32> {
        self.read(move |c| Box::pin(accounts::user_count(c)))
    }
    fn session(&self, token_hash: [u8; TOKEN_HASH_LEN], now_ms: u64) -> Op<Option<Session>> {
        self.read(move |c| Box::pin(accounts::session(c, token_hash, now_ms)))
    }
    fn create_user(&self, name: String, password_hash: String, role: Role, now_ms: u64) -> Op<User> {
        self.write(move |c| Box::pin(accounts::create_user(c, name, password_hash, role, now_ms)))
    }
    fn set_role(&self, user: u32, role: Role, actor: u32, now_ms: u64) -> Op<User> {
        self.write(move |c| Box::pin(accounts::set_role(c, user, role, actor, now_ms)))
    }
    fn set_password_hash(&self, user: u32, password_hash: String) -> Op<()> {
        self.write(move |c| Box::pin(accounts::set_password_hash(c, user, password_hash)))
    }
    fn create_session(&self, token_hash: [u8; TOKEN_HASH_LEN], user: u32, now_ms: u64, ttl_ms: u64) -> Op<Session> {
        self.write(move |c| Box::pin(accounts::create_session(c, token_hash, user, now_ms, ttl_ms)))
    }
    fn revoke_session(&self, token_hash: [u8; TOKEN_HASH_LEN]) -> Op<bool> {
        self.write(move |c| Box::pin(accounts::revoke_session(c, token_hash)))
    }
    fn revoke_user_sessions(&self, user: u32) -> Op<usize> {
        self.write(move |c| Box::pin(accounts::revoke_user_sessions(c, user)))
    }

    fn are_friends(&self, a: u32, b: u32) -> Op<bool> {
        self.read(move |c| Box::pin(social::are_friends(c, a, b)))
    }
    fn friends_of(&self, user: u32, limit: usize) -> Op<Vec<Relation>> {
        self.read(move |c| Box::pin(social::relations(c, List::Friends, user, limit)))
    }
    fn incoming_requests(&self, user: u32, limit: usize) -> Op<Vec<Relation>> {
        self.read(move |c| Box::pin(social::relations(c, List::Incoming, user, limit)))
    }
    fn outgoing_requests(&self, user: u32, limit: usize) -> Op<Vec<Relation>> {
        self.read(move |c| Box::pin(social::relations(c, List::Outgoing, user, limit)))
    }
    fn blocks_of(&self, user: u32, limit: usize) -> Op<Vec<Relation>> {
        self.read(move |c| Box::pin(social::relations(c, List::Blocks, user, limit)))
    }
    fn is_blocking(&self, blocker: u32, blocked: u32) -> Op<bool> {
        self.read(move |c| Box::pin(social::is_blocking(c, blocker, blocked)))
    }
    fn blocked_either(&self, a: u32, b: u32) -> Op<bool> {
        self.read(move |c| Box::pin(social::blocked_either(c, a, b)))
    }
    fn request_friend(&self, from: u32, to: u32, now_ms: u64) -> Op<FriendOutcome> {
        self.write(move |c| Box::pin(social::request_friend(c, from, to, now_ms)))
    }
    fn accept_friend(&self, me: u32, from: u32, now_ms: u64) -> Op<()> {
        self.write(move |c| Box::pin(social::accept_friend(c, me, from, now_ms)))
    }
    fn remove_relation(&self, me: u32, other: u32) -> Op<Removed> {
        self.write(move |c| Box::pin(social::remove_relation(c, me, other)))
    }
    fn block(&self, blocker: u32, blocked: u32, now_ms: u64) -> Op<Option<Removed>> {
        self.write(move |c| Box::pin(social::block(c, blocker, blocked, now_ms)))
    }
    fn unblock(&self, blocker: u32, blocked: u32) -> Op<bool> {
        self.write(move |c| Box::pin(social::unblock(c, blocker, blocked)))
    }

    fn user_ban(&self, user: u32, now_ms: u64) -> Op<Option<Ban>> {
        self.read(move |c| Box::pin(moderation::user_ban(c, user, now_ms)))
    }
    fn user_bans(&self, limit: usize) -> Op<Vec<(u32, Ban)>> {
        self.read(move |c| Box::pin(moderation::user_bans(c, limit)))
    }
    fn net_bans(&self) -> Op<Vec<NetBan>> {
        self.read(move |c| Box::pin(moderation::net_bans(c)))
    }
    fn net_ban_for(&self, addr: IpAddr, now_ms: u64) -> Op<Option<NetBan>> {
        self.read(move |c| Box::pin(moderation::net_ban_for(c, addr, now_ms)))
    }
    fn audit_log(&self, before: u64, limit: usize) -> Op<Vec<AuditEntry>> {
        self.read(move |c| Box::pin(moderation::audit_log(c, before, limit)))
    }
    fn audit(&self, entry: AuditDraft) -> Op<()> {
        let entry = entry.plain();
        self.write(move |c| Box::pin(async move { moderation::audit(c, &entry).await }))
    }
    fn ban_user(&self, user: u32, ban: Ban) -> Op<()> {
        let ban = ban.plain();
        self.write(move |c| Box::pin(moderation::ban_user(c, user, ban)))
    }
    fn unban_user(&self, user: u32, actor: u32, now_ms: u64) -> Op<bool> {
        self.write(move |c| Box::pin(moderation::unban_user(c, user, actor, now_ms)))
    }
    fn ban_net(&self, net: IpNet, ban: Ban) -> Op<()> {
        let ban = ban.plain();
        self.write(move |c| Box::pin(moderation::ban_net(c, net, ban)))
    }
    fn unban_net(&self, net: IpNet, actor: u32, now_ms: u64) -> Op<bool> {
        self.write(move |c| Box::pin(moderation::unban_net(c, net, actor, now_ms)))
    }

    fn room(&self, id: u32) -> Op<Option<Room>> {
        self.read(move |c| Box::pin(chat::room(c, id)))
    }
    fn room_count(&self) -> Op<u32> {
        self.read(move |c| Box::pin(chat::room_count(c)))
    }
    fn room_by_name(&self, name: String) -> Op<Option<Room>> {
        self.read(move |c| Box::pin(chat::room_by_name(c, name)))
    }
    fn rooms(&self, after: u32, limit: usize) -> Op<Vec<Room>> {
        self.read(move |c| Box::pin(chat::rooms(c, after, limit)))
    }
    fn room_last_seq(&self, room: u32) -> Op<u64> {
        self.read(move |c| Box::pin(chat::room_last_seq(c, room)))
    }
    fn room_message(&self, room: u32, seq: u64) -> Op<Option<Message>> {
        self.read(move |c| Box::pin(chat::room_message(c, room, seq)))
    }
    fn room_history(&self, room: u32, before: u64, limit: usize, hidden: Hidden) -> Op<Vec<Message>> {
        let scan = self.scan_max();
        self.read(move |c| Box::pin(chat::room_history(c, room, before, limit, hidden, scan)))
    }
    fn direct_last_seq(&self, a: u32, b: u32) -> Op<u64> {
        self.read(move |c| Box::pin(chat::direct_last_seq(c, a, b)))
    }
    fn direct_message(&self, a: u32, b: u32, seq: u64) -> Op<Option<Message>> {
        self.read(move |c| Box::pin(chat::direct_message(c, a, b, seq)))
    }
    fn direct_history(&self, a: u32, b: u32, before: u64, limit: usize, hidden: Hidden) -> Op<Vec<Message>> {
        let scan = self.scan_max();
        self.read(move |c| Box::pin(chat::direct_history(c, a, b, before, limit, hidden, scan)))
    }
    fn conversations(&self, user: u32, limit: usize) -> Op<Vec<Conversation>> {
        self.read(move |c| Box::pin(chat::conversations(c, user, limit)))
    }
    fn create_room(&self, name: String, created_by: u32, now_ms: u64) -> Op<Room> {
        self.write(move |c| Box::pin(chat::create_room(c, name, created_by, now_ms)))
    }
    fn append_direct(&self, from: u32, to: u32, now_ms: u64, text: String) -> Op<Message> {
        self.write(move |c| Box::pin(chat::append_direct(c, from, to, now_ms, text)))
    }
    fn delete_direct(&self, a: u32, b: u32, seq: u64) -> Op<Message> {
        self.write(move |c| Box::pin(chat::delete_direct(c, a, b, seq)))
    }

    fn canvas_geometry(&self) -> Op<Option<Geometry>> {
        self.read(move |c| Box::pin(canvas::canvas_geometry(c)))
    }
    fn init_canvas(&self, geometry: Geometry) -> Op<()> {
        self.write(move |c| Box::pin(canvas::init_canvas(c, geometry)))
    }
    fn journal_entry(&self, seq: u64) -> Op<Option<PixelRecord>> {
        self.read(move |c| Box::pin(canvas::journal_entry(c, seq)))
    }
    fn last_journal_seq(&self) -> Op<u64> {
        self.read(move |c| Box::pin(canvas::last_journal_seq(c)))
    }
    fn journal_after(&self, after: u64, limit: usize) -> Op<Vec<PixelRecord>> {
        self.read(move |c| Box::pin(canvas::journal_after(c, after, limit)))
    }
    fn tile_snapshots(&self) -> Op<Vec<TileSnapshot>> {
        self.transaction(true, move |c| Box::pin(canvas::tile_snapshots(c)))
    }
    fn tile_snapshot_seqs(&self) -> Op<Vec<(u32, u64)>> {
        self.transaction(true, move |c| Box::pin(canvas::tile_snapshot_seqs(c)))
    }
    fn recover_canvas(&self, geometry: Geometry) -> Op<RecoveredCanvas> {
        self.transaction(true, move |c| Box::pin(canvas::recover_canvas(c, geometry)))
    }
    fn export(&self) -> Op<crate::backup::Export> {
        let (geometry, store) = (self.canvas_geometry(), self.clone());
        Box::pin(async move {
            let geometry = geometry.await?;
            let canvas = match geometry {
                Some(g) => Some(store.recover_canvas(g).await?),
                None => None,
            };
            Ok(crate::backup::canvas_export(geometry, canvas))
        })
    }
    fn user_pixels(&self, user: u32, from_ms: u64, to_ms: u64, limit: usize) -> Op<Vec<PixelRecord>> {
        self.read(move |c| Box::pin(canvas::user_pixels(c, user, from_ms, to_ms, limit)))
    }
    fn pixel_history(&self, x: u16, y: u16, before: u64, limit: usize) -> Op<Vec<PixelRecord>> {
        self.read(move |c| Box::pin(canvas::pixel_history(c, x, y, before, limit)))
    }
    fn commit_tick(&self, tick: TickWrite) -> Op<()> {
        self.write(move |c| Box::pin(canvas::commit_tick(c, tick)))
    }
    fn canvas_head(&self) -> Op<u64> {
        self.read(move |c| Box::pin(canvas::canvas_head(c)))
    }
    fn append_control(&self, node: u64, event: String, now_ms: u64) -> Op<u64> {
        self.write(move |c| Box::pin(async move { control::append(c, node, &event, now_ms).await }))
    }
    fn controls_after(&self, after: u64, limit: usize) -> Op<Vec<crate::backend::ControlRecord>> {
        self.read(move |c| Box::pin(control::after(c, after, limit)))
    }
    fn last_control_id(&self) -> Op<u64> {
        self.read(move |c| Box::pin(control::last_id(c)))
    }
    fn direct_range(&self, a: u32, b: u32, from: u64, to: u64) -> Op<Vec<Message>> {
        self.read(move |c| Box::pin(chat::direct_range(c, a, b, from, to)))
    }
    fn room_range(&self, room: u32, from: u64, to: u64) -> Op<Vec<Message>> {
        self.read(move |c| Box::pin(chat::room_range(c, room, from, to)))
    }
    fn commit_tick_ordered(&self, tick: TickWrite) -> Op<crate::Sequenced> {
        self.write(move |c| Box::pin(canvas::commit_tick_ordered(c, tick)))
    }
    fn save_tiles(&self, snapshots: Vec<TileSnapshot>) -> Op<()> {
        self.write(move |c| Box::pin(canvas::save_tiles(c, snapshots)))
    }
    fn prune_journal(&self, geometry: Geometry, before_ms: u64, max: usize) -> Op<usize> {
        self.write(move |c| Box::pin(canvas::prune_journal(c, geometry, before_ms, max)))
    }

    fn flush(&self) -> Op<()> {
        // Every write resolved only after its COMMIT, which PostgreSQL made durable.
        Box::pin(async { Ok(()) })
    }
    fn is_poisoned(&self) -> bool {
        false
    }
    fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }
    fn gauges(&self) -> Vec<(&'static str, &'static str, u64)> {
        let status = self.inner.pool.status();
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        vec![
            ("storage_pg_pool_capacity", "Most connections the PostgreSQL pool opens", n(status.max_size)),
            ("storage_pg_pool_connections", "Connections the PostgreSQL pool holds", n(status.size)),
            ("storage_pg_pool_available", "Idle connections in the PostgreSQL pool", n(status.available)),
            ("storage_pg_pool_waiting", "Operations waiting for a PostgreSQL connection", n(status.waiting)),
        ]
    }
}
