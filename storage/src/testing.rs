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
