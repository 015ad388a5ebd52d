//! The PostgreSQL backend against a real server: the conformance suite (`common/conformance.rs`)
//! plus what only this backend has (migrations racing, atomic ticks through COPY, concurrent
//! writers, failures mapped to error kinds).
//!
//! Each test creates its own database (`pp_<random>`, dropped at the end, even after a panic),
//! so the tests run in parallel. The server is PostgreSQL at 127.0.0.1:5432 with trust
//! authentication, as user `postgres` or `root`, through database `test` (override with
//! `PIXELPARTY_PG_ADMIN_URL`). When no server answers, each test says why and passes, except
//! under `CI=true`, where it fails.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::conformance;
use pixelparty_storage::backend::{Backend, TickWrite};
use pixelparty_storage::testing::TestDb;
use pixelparty_storage::{Message, PgConfig, PgStore, PixelRecord, Role};
use tokio_postgres::NoTls;

/// A fresh database with helpers of these tests.
trait TestDbExt {
    async fn store(&self) -> PgStore;
    async fn client(&self) -> tokio_postgres::Client;
}

impl TestDbExt for TestDb {
    async fn store(&self) -> PgStore {
        PgStore::connect(self.config()).await.unwrap()
    }

    /// A plain client on the test database, to look at the tables.
    async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }
}

/// One conformance check against a fresh PostgreSQL backend.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let Some(db) = TestDb::create().await else { return };
            let store = db.store().await;
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
    let Some(db) = TestDb::create().await else { return };
    let store = db.store().await;
    conformance::prune_journal(&store, &|| {}).await;
}

#[tokio::test]
async fn history_scan_is_bounded() {
    let Some(db) = TestDb::create().await else { return };
    let store = db.store().await;
    conformance::history_scan_is_bounded(&store, store.config().history_scan_max).await;
}

#[tokio::test]
async fn migrations_race_safely_and_run_once() {
    let Some(db) = TestDb::create().await else { return };
    let (a, b) = tokio::join!(PgStore::connect(db.config()), PgStore::connect(db.config()));
    let (a, b) = (a.unwrap(), b.unwrap());
    let c = db.store().await;
    let client = db.client().await;
    let rows = client.query("SELECT version FROM schema_migrations", &[]).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(), [1, 2]);
    // All three share the schema.
    a.create_user("ann".into(), "h".into(), Role::User, 0).await.unwrap();
    assert!(b.user_by_name("ANN".into()).await.unwrap().is_some());
    assert_eq!(c.user_count().await.unwrap(), 1);
}

#[tokio::test]
async fn a_database_from_a_newer_build_is_refused() {
    let Some(db) = TestDb::create().await else { return };
    drop(db.store().await);
    db.client().await.execute("INSERT INTO schema_migrations (version) VALUES (999)", &[]).await.unwrap();
    assert!(PgStore::connect(db.config()).await.unwrap_err().is_corrupt());
}

#[tokio::test]
async fn a_tick_that_fails_part_way_leaves_nothing() {
    let Some(db) = TestDb::create().await else { return };
    let store = db.store().await;
    let pixel = |seq| PixelRecord { seq, x: 1, y: 1, colour: 1, user: 1, time_ms: 1 };
    let late = Message { seq: 1, author: 1, time_ms: u64::MAX, text: "t".into(), deleted: false };
    // The pixels are copied before the message is refused (a time PostgreSQL cannot hold).
    let tick = TickWrite { pixels: vec![pixel(1), pixel(2)], messages: vec![(1, vec![late])], ..TickWrite::default() };
    assert!(store.commit_tick(tick).await.unwrap_err().is_invalid());
    assert_eq!(store.last_journal_seq().await.unwrap(), 0);
    // A sequence already journaled fails the whole tick too.
    store.commit_tick(TickWrite { pixels: vec![pixel(1)], ..TickWrite::default() }).await.unwrap();
    let again = TickWrite {
        pixels: vec![pixel(2), pixel(1)].into_iter().rev().collect(),
        messages: vec![(1, vec![Message { seq: 1, author: 1, time_ms: 1, text: "t".into(), deleted: false }])],
        ..TickWrite::default()
    };
    assert!(store.commit_tick(again).await.unwrap_err().is_conflict());
    assert_eq!(store.last_journal_seq().await.unwrap(), 1);
    assert_eq!(store.room_last_seq(1).await.unwrap(), 0);
    assert!(store.is_ready(), "a refused write says nothing about the server");
}

#[tokio::test]
async fn concurrent_writers_keep_ids_names_and_sequences_exact() {
    let Some(db) = TestDb::create().await else { return };
    let store = Arc::new(db.store().await);
    let mut tasks = Vec::new();
    for i in 0..12u32 {
        let store = store.clone();
        // Names collide in pairs (case-insensitively).
        let name = if i % 2 == 0 { format!("user{}", i / 2) } else { format!("USER{}", i / 2) };
        tasks.push(tokio::spawn(async move { store.create_user(name, "h".into(), Role::User, 0).await }));
    }
    let mut created = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(u) => created.push(u.id),
            Err(e) => assert!(e.is_conflict(), "{e}"),
        }
    }
    created.sort_unstable();
    assert_eq!(created, (1..=6).collect::<Vec<_>>(), "one of each pair, ids dense");

    let mut tasks = Vec::new();
    for i in 0..20u32 {
        let store = store.clone();
        let (from, to) = if i % 2 == 0 { (1, 2) } else { (2, 1) };
        tasks.push(tokio::spawn(async move { store.append_direct(from, to, u64::from(i), format!("m{i}")).await }));
    }
    let mut seqs: Vec<u64> = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().unwrap().seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());

    let (a, b) = tokio::join!(store.request_friend(3, 4, 0), store.request_friend(4, 3, 0));
    let mut outcomes = [a.unwrap(), b.unwrap()].map(|o| format!("{o:?}"));
    outcomes.sort();
    assert_eq!(outcomes, ["BecameFriends", "Requested"]);
    assert!(store.are_friends(3, 4).await.unwrap());
}

#[tokio::test]
async fn recovery_streams_the_journal_in_pages() {
    let Some(db) = TestDb::create().await else { return };
    let store = db.store().await;
    let g = pixelparty_protocol::Geometry::new(256, 256, 4, 64).unwrap();
    store.init_canvas(g).await.unwrap();
    // More than one recovery page (100k rows), in ticks of 25k.
    let total = 230_000u64;
    for first in (1..=total).step_by(25_000) {
        let pixels = (first..(first + 25_000).min(total + 1))
            .map(|s| PixelRecord {
                seq: s,
                x: (s % 256) as u16,
                y: ((s / 256) % 256) as u16,
                colour: (s % 16) as u8,
                user: 1,
                time_ms: s,
            })
            .collect();
        store.commit_tick(TickWrite { pixels, ..TickWrite::default() }).await.unwrap();
    }
    let c = store.recover_canvas(g).await.unwrap();
    assert_eq!(c.last_seq, total);
    assert_eq!(c.replayed, total);
    // The last update of each pixel wins.
    let last = store.journal_after(total - 1, 1).await.unwrap()[0];
    let loc = g.locate(u32::from(last.x), u32::from(last.y)).unwrap();
    assert_eq!(pixelparty_protocol::canvas::get_pixel(&c.tiles[loc.tile as usize], 4, loc.offset), last.colour);
    assert_eq!(c.tile_seqs[loc.tile as usize], total);
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // Nothing listens on port 1.
    let mut config = PgConfig::new("postgres://postgres@127.0.0.1:1/test");
    config.statement_timeout = Duration::from_secs(2);
    let e = PgStore::connect(config).await.unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    assert!(!e.is_outcome_unknown());
}

#[tokio::test]
async fn a_lost_server_is_unavailable_then_ready_again() {
    let Some(db) = TestDb::create().await else { return };
    let store = db.store().await;
    store.create_user("ann".into(), "h".into(), Role::User, 0).await.unwrap();
    // Every connection of the pool is killed by the server (as a restart would).
    let admin = db.client().await;
    let kill = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
        db.name()
    );
    admin.batch_execute(&kill).await.unwrap();
    // Until the server has ended them (a condition, polled; no fixed wait).
    let others =
        format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()", db.name());
    for _ in 0..500 {
        if admin.query_one(&others, &[]).await.unwrap().get::<_, i64>(0) == 0 {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The pooled connection is dead: the first operation fails as unavailable (not applied),
    // or succeeds on a fresh connection if the pool noticed first.
    match store.create_user("bob".into(), "h".into(), Role::User, 0).await {
        Ok(_) => {}
        Err(e) => {
            assert!(e.is_unavailable(), "{e}");
            assert!(!store.is_ready());
        }
    }
    // Readiness comes back on its own (the probe runs every second; polled, bounded).
    for _ in 0..100 {
        if store.is_ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(store.is_ready());
    assert!(store.user_by_name("ann".into()).await.unwrap().is_some());
}

#[tokio::test]
async fn statements_are_bounded_by_the_timeout() {
    let Some(db) = TestDb::create().await else { return };
    let mut config = db.config();
    config.statement_timeout = Duration::from_millis(300);
    let store = PgStore::connect(config).await.unwrap();
    store.create_user("ann".into(), "h".into(), Role::User, 0).await.unwrap();
    // Another session holds the users lock: create_user waits, then times out (not applied).
    let mut other = db.client().await;
    let tx = other.transaction().await.unwrap();
    tx.execute("LOCK TABLE users IN EXCLUSIVE MODE", &[]).await.unwrap();
    let e = store.create_user("bob".into(), "h".into(), Role::User, 0).await.unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    tx.rollback().await.unwrap();
    assert!(store.user_by_name("bob".into()).await.unwrap().is_none());
    store.create_user("bob".into(), "h".into(), Role::User, 0).await.unwrap();
}

#[tokio::test]
async fn pruning_pages_through_a_long_journal() {
    let Some(db) = TestDb::create().await else { return };
    let store = db.store().await;
    let g = pixelparty_protocol::Geometry::new(256, 256, 4, 256).unwrap(); // one tile
    store.init_canvas(g).await.unwrap();
    let total = 25_000u64;
    let pixels = (1..=total)
        .map(|s| PixelRecord { seq: s, x: (s % 256) as u16, y: (s / 256) as u16, colour: 1, user: 1, time_ms: s })
        .collect();
    store.commit_tick(TickWrite { pixels, ..TickWrite::default() }).await.unwrap();
    let tile = store.recover_canvas(g).await.unwrap().tiles.remove(0);
    store.save_tiles(vec![pixelparty_storage::TileSnapshot { tile: 0, seq: total, data: tile }]).await.unwrap();
    assert_eq!(store.prune_journal(g, u64::MAX, 22_000).await.unwrap(), 22_000, "several pages, at most max");
    assert_eq!(store.journal_after(0, 1).await.unwrap()[0].seq, 22_001);
    assert_eq!(store.prune_journal(g, 24_000, usize::MAX).await.unwrap(), 1_999, "older than before_ms only");
    assert_eq!(store.prune_journal(g, u64::MAX, usize::MAX).await.unwrap(), 1_001);
    assert_eq!(store.last_journal_seq().await.unwrap(), 0);
}

/// Cluster mode's ordered commits: writers racing on one database get gap-free, unique
/// sequences for the canvas and for each room, and a reader never sees a sequence before a
/// lower one (each is taken under a lock held until commit). A reader polls the journal's
/// head while the writers run and checks that everything below it is readable.
#[tokio::test]
async fn ordered_commits_from_racing_writers_are_gap_free_and_visible_in_order() {
    let Some(db) = TestDb::create().await else { return };
    let store = Arc::new(db.store().await);
    let g = pixelparty_protocol::Geometry::new(64, 64, 4, 32).unwrap();
    store.init_canvas(g).await.unwrap();
    let ann = store.create_user("ann".into(), "h".into(), Role::User, 0).await.unwrap();
    let room = store.create_room("r".into(), ann.id, 0).await.unwrap().id;
    let other = store.create_room("s".into(), ann.id, 0).await.unwrap().id;
    let author = ann.id;
    let msg = move |text: &str| Message { seq: 0, author, time_ms: 1, text: text.into(), deleted: false };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut checks = 0;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let head = store.last_journal_seq().await.unwrap();
                let below = store.journal_after(0, 100_000).await.unwrap();
                assert!(below.len() as u64 >= head, "sequence {head} visible before a lower one");
                checks += 1;
            }
            checks
        })
    };
    let mut tasks = Vec::new();
    for w in 0..8u16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in 0..10u16 {
                let pixels = (0..3)
                    .map(|k| PixelRecord { seq: 0, x: w, y: i * 3 + k, colour: 1, user: 1, time_ms: 5 })
                    .collect();
                // Two groups of the same room in one tick, and another room between them.
                let messages = vec![(room, vec![msg("a"), msg("b")]), (other, vec![msg("c")]), (room, vec![msg("d")])];
                let tick = TickWrite { pixels, messages, ..TickWrite::default() };
                out.push(store.commit_tick_ordered(tick).await.unwrap());
            }
            out
        }));
    }
    let mut firsts = Vec::new();
    let (mut room_seqs, mut other_seqs) = (Vec::new(), Vec::new());
    for t in tasks {
        for s in t.await.unwrap() {
            firsts.push(s.first_pixel);
            assert_eq!(s.rooms.len(), 3);
            assert_eq!((s.rooms[0].0, s.rooms[1].0, s.rooms[2].0), (room, other, room));
            room_seqs.extend([s.rooms[0].1, s.rooms[0].1 + 1, s.rooms[2].1]);
            other_seqs.push(s.rooms[1].1);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    assert!(reader.await.unwrap() > 0);
    firsts.sort_unstable();
    assert_eq!(firsts, (0..80).map(|i| 1 + 3 * i).collect::<Vec<u64>>(), "pixel ranges contiguous, unique");
    let journal = store.journal_after(0, 1000).await.unwrap();
    assert_eq!(journal.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=240).collect::<Vec<_>>());
    room_seqs.sort_unstable();
    assert_eq!(room_seqs, (1..=240).collect::<Vec<_>>(), "a room's sequences gap-free across writers");
    other_seqs.sort_unstable();
    assert_eq!(other_seqs, (1..=80).collect::<Vec<_>>());
    let texts: Vec<String> =
        store.room_history(room, u64::MAX, 3, Arc::from([])).await.unwrap().into_iter().map(|m| m.text).collect();
    assert_eq!(texts.len(), 3);
    // A backend that cannot assign sequences says so.
    let (_dir, fjall) = pixelparty_storage::testing::temp_fjall();
    assert!(fjall.commit_tick_ordered(TickWrite::default()).await.unwrap_err().is_invalid());
}

/// Cluster mode's rollback restores are a compare-and-set under the canvas's lock: a restore
/// is written only while its place's newest update is still its guard, and not after an
/// earlier pixel of the same tick at that place; the others keep their order and take
/// contiguous sequences.
#[tokio::test]
async fn ordered_commits_check_restore_guards() {
    let Some(db) = TestDb::create().await else { return };
    let store = db.store().await;
    let g = pixelparty_protocol::Geometry::new(64, 64, 4, 32).unwrap();
    store.init_canvas(g).await.unwrap();
    let px = |x: u16, y: u16, colour: u8| PixelRecord { seq: 0, x, y, colour, user: 1, time_ms: 1 };
    let tick = |pixels: Vec<PixelRecord>, guards: Vec<(u32, u64)>| TickWrite { pixels, guards, ..TickWrite::default() };
    let s = store.commit_tick_ordered(tick(vec![px(1, 1, 3), px(2, 2, 3)], vec![])).await.unwrap();
    assert_eq!((s.first_pixel, s.dropped.clone()), (1, vec![]));
    // (1,1) is still at 1: restored. (2,2) is at 2, not 1: left out.
    let s = store.commit_tick_ordered(tick(vec![px(1, 1, 0), px(2, 2, 0)], vec![(0, 1), (1, 1)])).await.unwrap();
    assert_eq!((s.first_pixel, s.dropped.clone()), (3, vec![1]));
    // A second restore of (1,1) against the old guard: its place moved on (to 3).
    let s = store.commit_tick_ordered(tick(vec![px(1, 1, 0)], vec![(0, 1)])).await.unwrap();
    assert_eq!(s.dropped, vec![0]);
    // An ordinary paint earlier in the same tick beats a restore of the same place.
    let s = store.commit_tick_ordered(tick(vec![px(5, 5, 9), px(1, 1, 0), px(6, 6, 9)], vec![(1, 3)])).await.unwrap();
    assert_eq!((s.first_pixel, s.dropped.clone()), (4, vec![]), "(1,1) still at 3 and nothing before it in the tick");
    let s = store.commit_tick_ordered(tick(vec![px(1, 1, 4), px(1, 1, 0)], vec![(1, 6)])).await.unwrap();
    assert_eq!((s.first_pixel, s.dropped.clone()), (7, vec![1]));
    let journal = store.journal_after(0, 100).await.unwrap();
    let seqs: Vec<(u64, u16, u16, u8)> = journal.iter().map(|r| (r.seq, r.x, r.y, r.colour)).collect();
    assert_eq!(
        seqs,
        [(1, 1, 1, 3), (2, 2, 2, 3), (3, 1, 1, 0), (4, 5, 5, 9), (5, 1, 1, 0), (6, 6, 6, 9), (7, 1, 1, 4)]
    );
}
