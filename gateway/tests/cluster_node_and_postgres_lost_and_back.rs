//! Two nodes on a PostgreSQL of the test's own. A watcher follows the canvas on node 0 while
//! a painter paints through node 1; node 0 is SIGKILLed and the watcher resumes on node 1
//! with the cursors its replica holds. Then PostgreSQL is stopped (paints are refused:
//! `unavailable`, or `outcome_unknown` for one caught mid-commit) and started again (service
//! comes back by itself), and node 0 is started again. In the end the watcher, a fresh client
//! of the restarted node and the journal replayed from PostgreSQL agree byte for byte, and
//! every acknowledged paint is in the journal once, as acknowledged.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::PASSWORD;
use common::cluster::{Shape, assert_pixels, converge};
use common::postgres::Postgres;
use pixelparty_bench::client::{Api, ConnectOptions, Connection, Event, Replica};
use pixelparty_protocol::{ErrorCode, Geometry};
use pixelparty_storage::PixelRecord;

const WIDTH: u16 = 64;
const LIMIT: Duration = Duration::from_secs(60);

/// Paints pixel `i` (seeded) and waits for its outcome: `Ok(seq)` or the refusal's code.
async fn paint(ws: &mut Connection, i: u64) -> Result<(u64, (u16, u16, u8)), ErrorCode> {
    let r = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7;
    let (x, y, c) = ((r % 64) as u16, ((r >> 8) % 64) as u16, ((r >> 16) % 16) as u8);
    let req = ws.paint(x, y, c).await.unwrap();
    let outcome = tokio::time::timeout(
        LIMIT,
        ws.wait_for(|e| match e {
            Event::Ack { req: q, value } if *q == req => Some(Ok(*value)),
            Event::Error { req: q, code, .. } if *q == req => Some(Err(*code)),
            _ => None,
        }),
    )
    .await
    .expect("an answer to every paint")
    .unwrap();
    outcome.map(|seq| (seq, (x, y, c)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_resumes_on_another_node_and_postgres_comes_back() {
    let Some(pg) = Postgres::init() else { return };
    let Some(mut cluster) =
        common::cluster::start_on(Shape { nodes: 2, cooldown_ms: 0, width: WIDTH, tile: 32 }, pg.url())
    else {
        return;
    };
    let (n0, n1) = (cluster.nodes[0].http, cluster.nodes[1].http);
    let watcher = Api::new(n0).signup("watcher", PASSWORD).await.unwrap();
    let painter = Api::new(n1).signup("painter", PASSWORD).await.unwrap();
    let mut w = Connection::connect(n0, &watcher.token, ConnectOptions::default()).await.unwrap();
    w.track(Replica::from_snapshot(Api::new(n0).snapshot().await.unwrap()));
    w.subscribe_all().await.unwrap();
    let mut p = Connection::connect(n1, &painter.token, ConnectOptions::default()).await.unwrap();

    let mut acked: Vec<(u64, (u16, u16, u8))> = Vec::new();
    let mut i = 0u64;
    while acked.len() < 50 {
        acked.push(paint(&mut p, i).await.expect("accepted"));
        i += 1;
    }
    cluster.nodes[0].kill();
    // The watcher's session died with its node; it resumes on node 1 from its cursors.
    while w.recv().await.is_ok() {}
    let replica = w.replica.take().unwrap();
    let mut w = Connection::resume(n1, &watcher.token, ConnectOptions::default(), replica, None).await.unwrap();
    while acked.len() < 100 {
        acked.push(paint(&mut p, i).await.expect("accepted"));
        i += 1;
    }

    pg.stop();
    loop {
        match paint(&mut p, i).await {
            Err(ErrorCode::Unavailable) => break,
            Err(ErrorCode::OutcomeUnknown) => {} // Caught mid-commit: it may be in the journal.
            Ok(a) => acked.push(a),
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
        i += 1;
    }
    pg.start();
    let mut back = 0;
    for _ in 0..2000 {
        match paint(&mut p, i).await {
            Ok(a) => {
                acked.push(a);
                back += 1;
                if back == 20 {
                    break;
                }
            }
            Err(ErrorCode::Unavailable | ErrorCode::OutcomeUnknown) => {
                tokio::time::sleep(Duration::from_millis(50)).await; // Pacing while it comes back.
            }
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
        i += 1;
    }
    assert_eq!(back, 20, "painting never came back with PostgreSQL");
    tokio::task::block_in_place(|| cluster.nodes[0].start());

    // The model: the journal, replayed.
    let dir = tempfile::tempdir().unwrap();
    let store = cluster.store(dir.path());
    let journal: Vec<PixelRecord> = store.call(|b| b.journal_after(0, 100_000)).await.unwrap();
    for (k, r) in journal.iter().enumerate() {
        assert_eq!(r.seq, k as u64 + 1, "journal sequences unique and gap-free");
    }
    for (seq, (x, y, c)) in &acked {
        let r = &journal[*seq as usize - 1];
        assert_eq!((r.x, r.y, r.colour), (*x, *y, *c), "acknowledged paint {seq}");
    }
    let g = Geometry::new(u32::from(WIDTH), u32::from(WIDTH), 4, 32).unwrap();
    let (want, pixels) = common::cluster::model(&journal, g);
    converge(&mut w, &want, "the resumed watcher").await;
    let mut fresh = Connection::connect(n0, &watcher.token, ConnectOptions::default()).await.unwrap();
    fresh.track(Replica::from_snapshot(Api::new(n0).snapshot().await.unwrap()));
    fresh.subscribe_all().await.unwrap();
    converge(&mut fresh, &want, "a client of the restarted node").await;
    assert_pixels(w.replica.as_ref().unwrap(), &pixels, WIDTH, "the resumed watcher");
    assert_pixels(fresh.replica.as_ref().unwrap(), &pixels, WIDTH, "a client of the restarted node");
    drop(cluster);
}
