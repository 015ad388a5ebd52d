//! Tile snapshots on real shard threads: a tile known only from the journal after a crash is
//! snapshotted (so pruning the journal cannot lose it), and a refresh that times out waiting
//! for one shard loses nothing another shard already handed over.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use pixelparty_engine::{Engine, EngineConfig, EngineHandle, LocalShard, Snapshotter};
use pixelparty_protocol::canvas::get_pixel;
use pixelparty_protocol::{CloseReason, Geometry};
use pixelparty_storage::{Durability, PixelRecord, Store, StoreConfig};

/// 64×32 at 4 bpp in 32×32 tiles: tile 0 (home shard 0) and tile 1 (home shard 1).
fn config() -> EngineConfig {
    let mut c = EngineConfig::new(Geometry::new(64, 32, 4, 32).unwrap());
    c.shards = 2;
    c.cooldown_ms = 0;
    c
}

fn open(dir: &std::path::Path, retention: Option<Duration>) -> Store {
    let mut sc = StoreConfig::new(dir.join("db"));
    sc.durability = Durability::None;
    sc.journal_retention = retention;
    Store::open(sc).unwrap()
}

fn idle_engine(store: Store) -> Engine {
    Engine::start(config(), store, |_shard: LocalShard| async {}).unwrap()
}

/// Waits (bounded) until every shard has applied and published what it was sent.
fn settle(handle: &EngineHandle) {
    for _ in 0..10_000 {
        let stats = handle.stats(Duration::from_secs(5)).expect("shards answer");
        if stats.iter().all(|s| s.pending_paints == 0 && s.ticks_in_flight == 0) {
            return;
        }
        std::thread::yield_now();
    }
    panic!("the shards did not settle");
}

/// Defect: `Snapshotter::new` counted every tile it found in memory as already written, so a
/// tile rebuilt from the journal alone was never snapshotted; pruning then dropped its only
/// record once the retention passed, and the next start lost the pixel.
#[test]
fn a_tile_known_only_from_the_journal_survives_pruning_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        // A paint made durable, then a crash before any snapshot: only the journal has it.
        let store = open(dir.path(), None);
        let rec = PixelRecord { seq: 1, x: 3, y: 4, colour: 9, user: 1, time_ms: 1 };
        store
            .wait(move |b| b.commit_tick(pixelparty_storage::TickWrite { pixels: vec![rec], ..Default::default() }))
            .unwrap();
    }
    {
        // Restart with a retention that has long passed for that paint.
        let store = open(dir.path(), Some(Duration::ZERO));
        let engine = idle_engine(store.clone());
        let snapshotter = Snapshotter::new(engine.handle()).unwrap();
        assert_eq!(snapshotter.latest().seqs[0], 1, "recovered from the journal");
        store.fjall().unwrap().settle_index().unwrap();
        snapshotter.persist().unwrap();
        assert!(store.wait(|b| b.tile_snapshot_seqs()).unwrap().contains(&(0, 1)), "the recovered tile is written");
        engine.shutdown(CloseReason::Shutdown);
    }
    let store = open(dir.path(), None);
    let c = store.wait(|b| b.recover_canvas(config().geometry)).unwrap();
    assert_eq!(get_pixel(&c.tiles[0], 4, 4 * 32 + 3), 9, "the pixel is still there after pruning and a restart");
}

/// Defect: when one shard missed the refresh deadline, the copies the other shards had sent
/// were thrown away, but those shards had already cleared their changed flags: their tiles
/// stayed stale in every snapshot until they changed again.
#[test]
fn a_timed_out_refresh_keeps_what_the_other_shards_sent() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), None);
    // Shard 1 can be made to stall (its thread blocked) and released on command.
    let (stall_tx, stall_rx) = tokio::sync::watch::channel(false);
    let (stalled_tx, stalled_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let gate = Arc::new(parking_lot::Mutex::new(Some((stall_rx, stalled_tx, release_rx))));
    let engine = Engine::start(config(), store, move |shard: LocalShard| {
        let gate = if shard.id() == 1 { gate.lock().take() } else { None };
        async move {
            let Some((mut stall, stalled, release)) = gate else { return };
            while !*stall.borrow_and_update() {
                if stall.changed().await.is_err() {
                    return;
                }
            }
            stalled.send(()).unwrap();
            let _ = release.recv(); // blocks the shard thread: it answers nothing meanwhile
        }
    })
    .unwrap();
    let handle = engine.handle();
    let snapshotter = Snapshotter::with_timeout(handle.clone(), Duration::from_millis(200)).unwrap();
    // A change of tile 0 (homed on shard 0): a restore onto a never-painted pixel applies.
    let done = handle.restore(1, &[(5, 5, 7, 0)], Duration::from_secs(10));
    assert_eq!(done.restored, 1);
    settle(&handle);
    stall_tx.send(true).unwrap();
    stalled_rx.recv_timeout(Duration::from_secs(10)).expect("shard 1 stalls");
    // Shard 0 answers (and clears its flag), shard 1 cannot: the refresh times out.
    let during = snapshotter.refresh();
    release_tx.send(()).unwrap();
    let after = snapshotter.refresh();
    assert!(during.seqs[0] > 0 || after.seqs[0] > 0, "tile 0's change reaches the snapshot");
    assert_eq!(get_pixel(&after.tiles[0], 4, 5 * 32 + 5), 7);
    engine.shutdown(CloseReason::Shutdown);
}
