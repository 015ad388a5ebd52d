//! A node that falls behind further than the journal keeps rebuilds from the tile snapshots
//! without stopping the others. Node 0 is paused (SIGSTOP) while node 1 takes paints and
//! persists its snapshots (node 0's subscription was killed meanwhile); the journal is then
//! pruned up to what the snapshots cover, and node 0 resumes (SIGCONT): what it missed is no
//! longer in the journal, so it rebuilds, and a
//! fresh client of node 0 converges to the canvas replayed from snapshots plus journal.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::PASSWORD;
use common::cluster::Shape;
use pixelparty_bench::client::{Api, ConnectOptions, Connection, Event, Replica};
use pixelparty_protocol::Geometry;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_the_pruned_journal_rebuilds_from_snapshots() {
    let Some(cluster) = common::cluster::start(Shape { nodes: 2, cooldown_ms: 0, width: 64, tile: 32 }).await else {
        return;
    };
    let (n0, n1) = (cluster.nodes[0].http, cluster.nodes[1].http);
    let ann = Api::new(n1).signup("ann", PASSWORD).await.unwrap();
    let mut p = Connection::connect(n1, &ann.token, ConnectOptions::default()).await.unwrap();
    cluster.nodes[0].pause(false);
    // Its subscription goes too (as with a long cut): what it misses will only be in
    // PostgreSQL, and then not in the journal any more.
    assert!(cluster.redis.command("CLIENT KILL TYPE pubsub").starts_with(':'));
    for i in 0..200u16 {
        let req = p.paint(i % 64, i / 64, (i % 15 + 1) as u8).await.unwrap();
        p.wait_for(|e| matches!(e, Event::Ack { req: r, .. } if *r == req).then_some(())).await.unwrap();
    }
    // Wait (bounded) until node 1's snapshots cover everything, then prune the journal.
    let g = Geometry::new(64, 64, 4, 32).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = cluster.store(dir.path());
    let head = store.call(|b| b.last_journal_seq()).await.unwrap();
    let covered = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let seqs = store.call(|b| b.tile_snapshot_seqs()).await.unwrap();
            if seqs.iter().map(|(_, s)| *s).max() == Some(head) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await; // Polling a condition, bounded.
        }
    })
    .await;
    assert!(covered.is_ok(), "node 1 never persisted its snapshots");
    let pruned = store.call(move |b| b.prune_journal(g, u64::MAX, 1_000_000)).await.unwrap();
    assert!(pruned > 0, "nothing pruned");
    let kept = store.call(|b| b.journal_after(0, 10)).await.unwrap();
    assert!(kept.is_empty() || kept[0].seq > 1, "the oldest updates are gone");

    cluster.nodes[0].pause(true);
    // The model: snapshots plus what the journal kept.
    let canvas = store.call(move |b| b.recover_canvas(g)).await.unwrap();
    let want: std::collections::HashMap<u32, u64> =
        canvas.tile_seqs.iter().enumerate().map(|(t, s)| (t as u32, *s)).collect();
    let replica: Replica = common::cluster::converged_replica(n0, &ann.token, &want).await;
    for (tile, data) in canvas.tiles.iter().enumerate() {
        assert_eq!(replica.tile(tile as u32).unwrap().0, &data[..], "tile {tile} differs on the rebuilt node");
    }
    let metrics = Api::new(cluster.nodes[0].admin)
        .raw("GET", "/metrics", &[("authorization", "Bearer t")], Vec::new())
        .await
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .unwrap_or_default();
    assert!(metrics.contains("pixelparty_cluster_canvas_rebuilds_total 1"), "node 0 rebuilt once:\n{metrics}");
}
