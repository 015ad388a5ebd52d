//! Helpers for tests of this crate and of crates built on it (feature `testing`).

use crate::{Durability, Store, StoreConfig};

/// A store in a fresh temporary directory (`none` durability: tests need no fsync). Keep the
/// directory alive as long as the store.
pub fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = StoreConfig::new(dir.path().join("db"));
    config.durability = Durability::None;
    config.cache_bytes = 4 * 1024 * 1024;
    let store = Store::open(config).expect("open store");
    (dir, store)
}
