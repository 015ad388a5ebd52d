//! A client that loads the HTTP snapshot in the middle of a paint storm and subscribes with
//! its per-tile cursors converges to the server's canvas, byte for byte.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use pixelparty_bench::client::{Event, Replica};

#[tokio::test(flavor = "current_thread")]
async fn snapshot_plus_cursors_converges() {
    let t = start(|c| c.server.snapshot_refresh_ms = 20);
    let mut painters = Vec::new();
    for i in 0..4 {
        let acct = t.user(&format!("painter{i}")).await;
        painters.push(t.connect(&acct).await);
    }
    let mut last_req = vec![0u32; painters.len()];
    let mut late = None;
    for round in 0..60u32 {
        for (i, p) in painters.iter_mut().enumerate() {
            let (x, y) = (((round * 37 + i as u32 * 101) % 256) as u16, ((round * 13 + i as u32 * 7) % 256) as u16);
            last_req[i] = p.paint(x, y, ((round + i as u32) % 16) as u8).await.unwrap();
        }
        if round == 30 {
            // Mid-storm: snapshot, then subscribe with its cursors.
            let snap = t.api.snapshot().await.unwrap();
            let viewer = t.user("viewer").await;
            let mut v = t.connect(&viewer).await;
            v.track(Replica::from_snapshot(snap));
            v.subscribe_all().await.unwrap();
            late = Some(v);
        }
    }
    for (i, p) in painters.iter_mut().enumerate() {
        p.wait_for(ack_of(last_req[i])).await.unwrap();
    }
    let mut v = late.unwrap();
    // Wait until the viewer has every tile at the server's sequence.
    let server = t.app().engine.copy_tiles(true, std::time::Duration::from_secs(5)).unwrap();
    loop {
        let r = v.replica.as_ref().unwrap();
        if server.iter().all(|c| r.cursor(c.tile) == c.seq) {
            break;
        }
        v.recv().await.unwrap();
    }
    let r = v.replica.as_ref().unwrap();
    for c in &server {
        assert_eq!(r.tile(c.tile).unwrap().0, &c.data[..], "tile {} differs", c.tile);
    }
    v.ping(7).await.unwrap();
    v.wait_for(|e| matches!(e, Event::Pong { nonce: 7, .. }).then_some(())).await.unwrap();
}

// The same tests on PostgreSQL (a fresh database each; skipped without a server, failed
// under CI=true).
#[test]
fn snapshot_plus_cursors_converges_on_postgres() {
    pixelparty_storage::testing::on_postgres(snapshot_plus_cursors_converges);
}
