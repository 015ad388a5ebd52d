//! The embedded backend through the same conformance suite as PostgreSQL
//! (`common/conformance.rs`, against `&dyn Backend`): the two behave alike, operation by
//! operation.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::conformance;
use pixelparty_storage::{Durability, Fjall, StoreConfig};

/// Most messages a history read examines here (small, so the bound is tested cheaply).
const SCAN_MAX: usize = 16;

fn open() -> (tempfile::TempDir, Fjall) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path().join("db"));
    config.durability = Durability::None;
    config.cache_bytes = 4 * 1024 * 1024;
    config.history_scan_max = SCAN_MAX;
    let store = Fjall::open(config).unwrap();
    (dir, store)
}

/// One conformance check against a fresh embedded store.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let (_dir, store) = open();
            conformance::$name(&store).await;
        }
    )*};
}

conformance!(
    accounts_and_sessions,
    social_graph,
    bans_and_audit,
    rooms_and_history,
    direct_messages,
    user_names,
    canvas_at,
    control_characters,
    canvas_journal,
    commit_tick_is_all_or_nothing,
    backend_state,
);

#[tokio::test]
async fn prune_journal() {
    let (_dir, store) = open();
    let settle = || {
        let store = store.clone();
        std::thread::spawn(move || store.settle_index().unwrap()).join().unwrap();
    };
    conformance::prune_journal(&store, &settle).await;
}

#[tokio::test]
async fn history_scan_is_bounded() {
    let (_dir, store) = open();
    conformance::history_scan_is_bounded(&store, SCAN_MAX).await;
}
