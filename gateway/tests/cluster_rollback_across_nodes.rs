//! A rollback in a cluster: mallory paints through node 0, bob paints over one of her pixels
//! through node 1, an administrator rolls mallory back through node 1's admin endpoint. The
//! counts are the real ones (bob's pixel is left alone), and both nodes' canvases, through
//! fresh clients, equal the journal replayed from PostgreSQL: the restores are ordinary
//! updates in the one canvas order, whichever node made them.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::PASSWORD;
use common::cluster::Shape;
use pixelparty_bench::client::{Api, ConnectOptions, Connection, Event};
use pixelparty_protocol::Geometry;
use serde_json::json;

async fn paint(ws: &mut Connection, x: u16, y: u16, colour: u8) {
    let req = ws.paint(x, y, colour).await.unwrap();
    ws.wait_for(|e| match e {
        Event::Ack { req: r, .. } if *r == req => Some(()),
        Event::Error { req: r, code, .. } if *r == req => panic!("paint refused: {code:?}"),
        _ => None,
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_through_one_node_restores_on_every_node() {
    let Some(cluster) = common::cluster::start(Shape { nodes: 2, cooldown_ms: 0, width: 64, tile: 32 }).await else {
        return;
    };
    let (n0, n1) = (cluster.nodes[0].http, cluster.nodes[1].http);
    let mallory = Api::new(n0).signup("mallory", PASSWORD).await.unwrap();
    let bob = Api::new(n1).signup("bob", PASSWORD).await.unwrap();
    let before = pixelparty_engine::now_ms();
    let mut m = Connection::connect(n0, &mallory.token, ConnectOptions::default()).await.unwrap();
    for x in 0..5 {
        paint(&mut m, x, 0, 3).await;
    }
    let mut b = Connection::connect(n1, &bob.token, ConnectOptions::default()).await.unwrap();
    paint(&mut b, 1, 0, 7).await;
    let after = pixelparty_engine::now_ms() + 1;

    let admin = Api::new(cluster.nodes[1].admin);
    let report = admin
        .ok("POST", "/rollback", Some("t"), Some(&json!({"username": "mallory", "from_ms": before, "to_ms": after})))
        .await
        .unwrap();
    assert_eq!(
        report,
        json!({"planned": 4, "restored": 4, "painted_over": 0, "not_restored": 0, "outcome_unknown": 0}),
        "bob's pixel is not planned; the other four are restored"
    );

    let journal = cluster.journal().await;
    let geometry = Geometry::new(64, 64, 4, 32).unwrap();
    let (want, pixels) = common::cluster::model(&journal, geometry);
    assert_eq!((0..5).map(|x| pixels[&(x, 0)]).collect::<Vec<_>>(), [0, 7, 0, 0, 0]);
    for node in [n0, n1] {
        let replica = common::cluster::converged_replica(node, &bob.token, &want).await;
        for x in 0..5u16 {
            assert_eq!(replica.pixel(u32::from(x), 0), Some(pixels[&(x, 0)]), "node {node}, pixel ({x}, 0)");
        }
    }
}
