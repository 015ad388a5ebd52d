//! Helpers for tests of this crate and of crates built on it (feature `testing`).

use std::sync::atomic::{AtomicU8, Ordering};

use std::net::IpAddr;

use ipnet::IpNet;
use pixelparty_protocol::Geometry;

use crate::accounts::TOKEN_HASH_LEN;
use crate::backend::{AuditDraft, Backend, Hidden, Op, TickWrite};
use crate::records::{
    AuditEntry, Ban, Conversation, Message, NetBan, PixelRecord, Relation, Role, Room, Session, User,
};
use crate::social::{FriendOutcome, Removed};
use crate::{Durability, Fjall, RecoveredCanvas, Store, StoreConfig, TileSnapshot};

/// A failure the store can be told to fake once, for tests of what callers make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FailPoint {
    /// The next commit reaches the journal but reports an I/O error (as a full disk can):
    /// the store poisons itself, and the write reappears after a restart.
    AfterCommit = 1,
    /// The next fsync (`sync` durability) fails: the store poisons itself.
    Sync = 2,
}

/// Armed fail points (bits by [`FailPoint`]).
#[derive(Debug, Default)]
pub struct FailPoints(AtomicU8);

impl FailPoints {
    /// Disarms `point` and says whether it was armed.
    pub(crate) fn take(&self, point: FailPoint) -> bool {
        self.0.fetch_and(!(point as u8), Ordering::AcqRel) & point as u8 != 0
    }
}

impl Fjall {
    /// Makes the store fake `point` once (tests only).
    pub fn inject_failure(&self, point: FailPoint) {
        self.fail_points.0.fetch_or(point as u8, Ordering::AcqRel);
    }
}

fn temp_config(dir: &tempfile::TempDir) -> StoreConfig {
    let mut config = StoreConfig::new(dir.path().join("db"));
    config.durability = Durability::None;
    config.cache_bytes = 4 * 1024 * 1024;
    config
}

/// An embedded store in a fresh temporary directory (`none` durability: tests need no
/// fsync), behind the [`Store`] seam. Keep the directory alive as long as the store.
pub fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(temp_config(&dir)).expect("open store");
    (dir, store)
}

/// Like [`temp_store`], the fjall backend itself (for tests of its internals).
pub fn temp_fjall() -> (tempfile::TempDir, Fjall) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Fjall::open(temp_config(&dir)).expect("open store");
    (dir, store)
}

/// Admin connections [`TestDb`] tries, in order (override with `PIXELPARTY_PG_ADMIN_URL`).
const ADMIN_URLS: [&str; 2] = ["postgres://postgres@127.0.0.1:5432/test", "postgres://root@127.0.0.1:5432/test"];

/// A fresh PostgreSQL database for one test (`pp_<pid>_<time>_<n>`), dropped with this value,
/// even while the test unwinds. The server is the developer machine's (127.0.0.1:5432, trust
/// authentication, user `postgres` or `root`, through database `test`).
#[derive(Debug)]
pub struct TestDb {
    admin_url: String,
    name: String,
}

impl TestDb {
    /// A new database, or `None` after printing why when no server answers, except under
    /// `CI=true`, where it panics (the tests that need one must not pass without it).
    pub async fn create() -> Option<Self> {
        let urls: Vec<String> = match std::env::var("PIXELPARTY_PG_ADMIN_URL") {
            Ok(url) => vec![url],
            Err(_) => ADMIN_URLS.iter().map(|s| (*s).to_owned()).collect(),
        };
        let mut reasons = Vec::new();
        for admin_url in urls {
            match tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await {
                Ok((client, connection)) => {
                    tokio::spawn(connection);
                    let name = unique_name();
                    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
                    return Some(Self { admin_url, name });
                }
                Err(e) => reasons.push(format!("{admin_url}: {e}")),
            }
        }
        let why = format!("no PostgreSQL server for this test ({})", reasons.join("; "));
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{why}");
        eprintln!("skipped: {why}");
        None
    }

    /// [`TestDb::create`] from a thread outside any runtime.
    pub fn create_blocking() -> Option<Self> {
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(Self::create())
        })
        .join()
        .expect("creating a test database")
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's connection string.
    pub fn url(&self) -> String {
        let base = self.admin_url.rsplit_once('/').map_or(self.admin_url.as_str(), |(b, _)| b);
        format!("{base}/{}", self.name)
    }

    /// A small configuration for tests (4 connections, a history scan of 16).
    pub fn config(&self) -> crate::PgConfig {
        let mut config = crate::PgConfig::new(self.url());
        config.pool_size = 4;
        config.history_scan_max = 16;
        config
    }

    /// A [`StoreConfig`] that keeps the data in this database.
    pub fn store_config(&self, path: impl Into<std::path::PathBuf>) -> StoreConfig {
        let mut config = StoreConfig::new(path);
        config.postgres = Some(self.config());
        config
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside the test's runtime (maybe while it unwinds): a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.expect("admin connection");
                tokio::spawn(connection);
                client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.expect("drop");
            });
        })
        .join();
        if dropped.is_err() {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

fn unique_name() -> String {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("pp_{}_{:x}_{}", std::process::id(), nanos, NEXT.fetch_add(1, Ordering::Relaxed))
}

thread_local! {
    static ON_POSTGRES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the integration test running on this thread keeps its data in PostgreSQL: inside
/// [`on_postgres`], or everywhere with `PIXELPARTY_TEST_BACKEND=postgres`.
pub fn postgres_wanted() -> bool {
    ON_POSTGRES.with(std::cell::Cell::get) || std::env::var("PIXELPARTY_TEST_BACKEND").is_ok_and(|v| v == "postgres")
}

/// Runs a test (a `#[test]` or `#[tokio::test]` function, which runs on the calling thread)
/// with its data in PostgreSQL: each suite's tests run once per backend in `cargo test`.
/// Skipped, after saying why, when no PostgreSQL server answers (failed under `CI=true`).
pub fn on_postgres(test: fn()) {
    if TestDb::create_blocking().is_none() {
        return;
    }
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            ON_POSTGRES.with(|p| p.set(false));
        }
    }
    ON_POSTGRES.with(|p| p.set(true));
    let _reset = Reset;
    test();
}

/// A test double around a real backend: every operation passes through, except that each
/// [`Backend::room_history`] waits until [`Gated::let_through`] lets it pass (a history read
/// that is slow for as long as a test wants, without any clock).
pub struct Gated {
    inner: std::sync::Arc<dyn Backend>,
    gate: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Gated {
    /// `inner` with the history gate closed.
    pub fn new(inner: std::sync::Arc<dyn Backend>) -> Self {
        Self { inner, gate: std::sync::Arc::new(tokio::sync::Semaphore::new(0)) }
    }

    /// Lets `n` more history reads pass (waiting ones first).
    pub fn let_through(&self, n: usize) {
        self.gate.add_permits(n);
    }
}

impl Backend for Gated {
    fn user(&self, id: u32) -> Op<Option<User>> {
        self.inner.user(id)
    }
    fn user_by_name(&self, name: String) -> Op<Option<User>> {
        self.inner.user_by_name(name)
    }
    fn users(&self, after: u32, limit: usize) -> Op<Vec<User>> {
        self.inner.users(after, limit)
    }
    fn user_count(&self) -> Op<u32> {
        self.inner.user_count()
    }
    fn user_names(&self, ids: Vec<u32>) -> Op<Vec<(u32, String)>> {
        self.inner.user_names(ids)
    }
    fn session(&self, token_hash: [u8; TOKEN_HASH_LEN], now_ms: u64) -> Op<Option<Session>> {
        self.inner.session(token_hash, now_ms)
    }
    fn create_user(&self, name: String, password_hash: String, role: Role, now_ms: u64) -> Op<User> {
        self.inner.create_user(name, password_hash, role, now_ms)
    }
    fn set_role(&self, user: u32, role: Role, actor: u32, now_ms: u64) -> Op<User> {
        self.inner.set_role(user, role, actor, now_ms)
    }
    fn set_password_hash(&self, user: u32, password_hash: String) -> Op<()> {
        self.inner.set_password_hash(user, password_hash)
    }
    fn create_session(&self, token_hash: [u8; TOKEN_HASH_LEN], user: u32, now_ms: u64, ttl_ms: u64) -> Op<Session> {
        self.inner.create_session(token_hash, user, now_ms, ttl_ms)
    }
    fn revoke_session(&self, token_hash: [u8; TOKEN_HASH_LEN]) -> Op<bool> {
        self.inner.revoke_session(token_hash)
    }
    fn revoke_user_sessions(&self, user: u32) -> Op<usize> {
        self.inner.revoke_user_sessions(user)
    }
    fn are_friends(&self, a: u32, b: u32) -> Op<bool> {
        self.inner.are_friends(a, b)
    }
    fn friends_of(&self, user: u32, limit: usize) -> Op<Vec<Relation>> {
        self.inner.friends_of(user, limit)
    }
    fn incoming_requests(&self, user: u32, limit: usize) -> Op<Vec<Relation>> {
        self.inner.incoming_requests(user, limit)
    }
    fn outgoing_requests(&self, user: u32, limit: usize) -> Op<Vec<Relation>> {
        self.inner.outgoing_requests(user, limit)
    }
    fn blocks_of(&self, user: u32, limit: usize) -> Op<Vec<Relation>> {
        self.inner.blocks_of(user, limit)
    }
    fn is_blocking(&self, blocker: u32, blocked: u32) -> Op<bool> {
        self.inner.is_blocking(blocker, blocked)
    }
    fn blocked_either(&self, a: u32, b: u32) -> Op<bool> {
        self.inner.blocked_either(a, b)
    }
    fn request_friend(&self, from: u32, to: u32, now_ms: u64) -> Op<FriendOutcome> {
        self.inner.request_friend(from, to, now_ms)
    }
    fn accept_friend(&self, me: u32, from: u32, now_ms: u64) -> Op<()> {
        self.inner.accept_friend(me, from, now_ms)
    }
    fn remove_relation(&self, me: u32, other: u32) -> Op<Removed> {
        self.inner.remove_relation(me, other)
    }
    fn block(&self, blocker: u32, blocked: u32, now_ms: u64) -> Op<Option<Removed>> {
        self.inner.block(blocker, blocked, now_ms)
    }
    fn unblock(&self, blocker: u32, blocked: u32) -> Op<bool> {
        self.inner.unblock(blocker, blocked)
    }
    fn user_ban(&self, user: u32, now_ms: u64) -> Op<Option<Ban>> {
        self.inner.user_ban(user, now_ms)
    }
    fn user_bans(&self, limit: usize) -> Op<Vec<(u32, Ban)>> {
        self.inner.user_bans(limit)
    }
    fn net_bans(&self) -> Op<Vec<NetBan>> {
        self.inner.net_bans()
    }
    fn net_ban_for(&self, addr: IpAddr, now_ms: u64) -> Op<Option<NetBan>> {
        self.inner.net_ban_for(addr, now_ms)
    }
    fn audit_log(&self, before: u64, limit: usize) -> Op<Vec<AuditEntry>> {
        self.inner.audit_log(before, limit)
    }
    fn audit(&self, entry: AuditDraft) -> Op<()> {
        self.inner.audit(entry)
    }
    fn ban_user(&self, user: u32, ban: Ban) -> Op<()> {
        self.inner.ban_user(user, ban)
    }
    fn unban_user(&self, user: u32, actor: u32, now_ms: u64) -> Op<bool> {
        self.inner.unban_user(user, actor, now_ms)
    }
    fn ban_net(&self, net: IpNet, ban: Ban) -> Op<()> {
        self.inner.ban_net(net, ban)
    }
    fn unban_net(&self, net: IpNet, actor: u32, now_ms: u64) -> Op<bool> {
        self.inner.unban_net(net, actor, now_ms)
    }
    fn room(&self, id: u32) -> Op<Option<Room>> {
        self.inner.room(id)
    }
    fn room_count(&self) -> Op<u32> {
        self.inner.room_count()
    }
    fn room_by_name(&self, name: String) -> Op<Option<Room>> {
        self.inner.room_by_name(name)
    }
    fn rooms(&self, after: u32, limit: usize) -> Op<Vec<Room>> {
        self.inner.rooms(after, limit)
    }
    fn room_last_seq(&self, room: u32) -> Op<u64> {
        self.inner.room_last_seq(room)
    }
    fn room_message(&self, room: u32, seq: u64) -> Op<Option<Message>> {
        self.inner.room_message(room, seq)
    }
    fn room_history(&self, room: u32, before: u64, limit: usize, hidden: Hidden) -> Op<Vec<Message>> {
        let (gate, op) = (self.gate.clone(), self.inner.room_history(room, before, limit, hidden));
        Box::pin(async move {
            if let Ok(pass) = gate.acquire().await {
                pass.forget();
            }
            op.await
        })
    }
    fn direct_last_seq(&self, a: u32, b: u32) -> Op<u64> {
        self.inner.direct_last_seq(a, b)
    }
    fn direct_message(&self, a: u32, b: u32, seq: u64) -> Op<Option<Message>> {
        self.inner.direct_message(a, b, seq)
    }
    fn direct_history(&self, a: u32, b: u32, before: u64, limit: usize, hidden: Hidden) -> Op<Vec<Message>> {
        self.inner.direct_history(a, b, before, limit, hidden)
    }
    fn conversations(&self, user: u32, limit: usize) -> Op<Vec<Conversation>> {
        self.inner.conversations(user, limit)
    }
    fn create_room(&self, name: String, created_by: u32, now_ms: u64) -> Op<Room> {
        self.inner.create_room(name, created_by, now_ms)
    }
    fn append_direct(&self, from: u32, to: u32, now_ms: u64, text: String) -> Op<Message> {
        self.inner.append_direct(from, to, now_ms, text)
    }
    fn delete_direct(&self, a: u32, b: u32, seq: u64) -> Op<Message> {
        self.inner.delete_direct(a, b, seq)
    }
    fn canvas_geometry(&self) -> Op<Option<Geometry>> {
        self.inner.canvas_geometry()
    }
    fn init_canvas(&self, geometry: Geometry) -> Op<()> {
        self.inner.init_canvas(geometry)
    }
    fn journal_entry(&self, seq: u64) -> Op<Option<PixelRecord>> {
        self.inner.journal_entry(seq)
    }
    fn last_journal_seq(&self) -> Op<u64> {
        self.inner.last_journal_seq()
    }
    fn journal_after(&self, after: u64, limit: usize) -> Op<Vec<PixelRecord>> {
        self.inner.journal_after(after, limit)
    }
    fn tile_snapshots(&self) -> Op<Vec<TileSnapshot>> {
        self.inner.tile_snapshots()
    }
    fn export(&self) -> Op<crate::backup::Export> {
        self.inner.export()
    }
    fn tile_snapshot_seqs(&self) -> Op<Vec<(u32, u64)>> {
        self.inner.tile_snapshot_seqs()
    }
    fn recover_canvas(&self, geometry: Geometry) -> Op<RecoveredCanvas> {
        self.inner.recover_canvas(geometry)
    }
    fn user_pixels(&self, user: u32, from_ms: u64, to_ms: u64, limit: usize) -> Op<Vec<PixelRecord>> {
        self.inner.user_pixels(user, from_ms, to_ms, limit)
    }
    fn pixel_history(&self, x: u16, y: u16, before: u64, limit: usize) -> Op<Vec<PixelRecord>> {
        self.inner.pixel_history(x, y, before, limit)
    }
    fn commit_tick(&self, tick: TickWrite) -> Op<()> {
        self.inner.commit_tick(tick)
    }
    fn commit_tick_ordered(&self, tick: TickWrite) -> Op<crate::Sequenced> {
        self.inner.commit_tick_ordered(tick)
    }
    fn canvas_head(&self) -> Op<u64> {
        self.inner.canvas_head()
    }
    fn append_control(&self, node: u64, event: String, now_ms: u64) -> Op<u64> {
        self.inner.append_control(node, event, now_ms)
    }
    fn controls_after(&self, after: u64, limit: usize) -> Op<Vec<crate::backend::ControlRecord>> {
        self.inner.controls_after(after, limit)
    }
    fn last_control_id(&self) -> Op<u64> {
        self.inner.last_control_id()
    }
    fn direct_range(&self, a: u32, b: u32, from: u64, to: u64) -> Op<Vec<Message>> {
        self.inner.direct_range(a, b, from, to)
    }
    fn room_range(&self, room: u32, from: u64, to: u64) -> Op<Vec<Message>> {
        self.inner.room_range(room, from, to)
    }
    fn save_tiles(&self, snapshots: Vec<TileSnapshot>) -> Op<()> {
        self.inner.save_tiles(snapshots)
    }
    fn prune_journal(&self, geometry: Geometry, before_ms: u64, max: usize) -> Op<usize> {
        self.inner.prune_journal(geometry, before_ms, max)
    }
    fn flush(&self) -> Op<()> {
        self.inner.flush()
    }
    fn is_poisoned(&self) -> bool {
        self.inner.is_poisoned()
    }
    fn is_ready(&self) -> bool {
        self.inner.is_ready()
    }
    fn gauges(&self) -> Vec<(&'static str, &'static str, u64)> {
        self.inner.gauges()
    }
}
