//! Helpers for tests of this crate and of crates built on it (feature `testing`).

use std::sync::atomic::{AtomicU8, Ordering};

use crate::{Durability, Fjall, Store, StoreConfig};

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

/// Which backend the integration tests of the engine and gateway run on:
/// `PIXELPARTY_TEST_BACKEND=postgres` puts each test's data in a fresh PostgreSQL database
/// (`.ci/run` runs those suites once per backend).
pub fn postgres_wanted() -> bool {
    std::env::var("PIXELPARTY_TEST_BACKEND").is_ok_and(|v| v == "postgres")
}
