//! Two nodes lose their Redis (killed, not restarted): paints are refused with `unavailable`
//! at once (the cooldown lives in Redis), and once a node has heard nothing from Redis for
//! `redis_timeout_ms` it refuses every write (a room message too) and its `/readyz` says 503.
//! A new, empty Redis on the same address: service comes back by itself on both nodes (after
//! one cooldown: the cooldowns were lost with Redis's data), and a paint made on one node
//! reaches a subscriber on the other.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::PASSWORD;
use common::cluster::Shape;
use pixelparty_bench::client::{Api, ConnectOptions, Connection, Event};
use pixelparty_protocol::ErrorCode;

const COOLDOWN_MS: u32 = 200;

/// Sends paints (and, when `post` is set, a room message) until one is refused with
/// `unavailable` (when `refused`) or accepted (otherwise), bounded; returns how many tries.
async fn until(ws: &mut Connection, room: Option<u32>, refused: bool) -> usize {
    for attempt in 0..600 {
        let req = match room {
            Some(room) => ws.say(room, "hello").await.unwrap(),
            None => ws.paint(1, 1, 2).await.unwrap(),
        };
        let outcome = ws
            .wait_for(|e| match e {
                Event::Ack { req: r, .. } if *r == req => Some(None),
                Event::Error { req: r, code, .. } if *r == req => Some(Some(*code)),
                _ => None,
            })
            .await
            .unwrap();
        match outcome {
            Some(ErrorCode::Unavailable) if refused => return attempt,
            None if !refused => return attempt,
            Some(ErrorCode::Unavailable | ErrorCode::Cooldown) | None => {}
            Some(other) => panic!("unexpected refusal {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // Pacing between tries.
    }
    panic!("never {}", if refused { "refused" } else { "accepted" });
}

async fn readyz(admin: std::net::SocketAddr) -> u16 {
    Api::new(admin).call("GET", "/readyz", None, None).await.map_or(0, |(status, _)| status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_refused_without_redis_and_come_back_with_it() {
    let Some(mut cluster) =
        common::cluster::start(Shape { nodes: 2, cooldown_ms: COOLDOWN_MS, width: 64, tile: 32 }).await
    else {
        return;
    };
    let (a, b) = (cluster.nodes[0].http, cluster.nodes[1].http);
    let ann = Api::new(a).signup("ann", PASSWORD).await.unwrap();
    let bob = Api::new(b).signup("bob", PASSWORD).await.unwrap();
    let room = Api::new(a).create_room(&ann.token, "r").await.unwrap();
    let mut painter = Connection::connect(a, &ann.token, ConnectOptions::default()).await.unwrap();
    let req = painter.join(room).await.unwrap();
    painter.wait_for(|e| matches!(e, Event::Ack { req: r, .. } if *r == req).then_some(())).await.unwrap();
    until(&mut painter, None, false).await;
    assert_eq!(readyz(cluster.nodes[0].admin).await, 200);

    cluster.redis.kill();
    until(&mut painter, None, true).await;
    until(&mut painter, Some(room), true).await;
    for n in &cluster.nodes {
        assert_eq!(readyz_becomes(n.admin, 503).await, 503, "a node without Redis says it is not ready");
    }

    cluster.redis.restart();
    until(&mut painter, Some(room), false).await;
    let mut watcher = Connection::connect(b, &bob.token, ConnectOptions::default()).await.unwrap();
    watcher.subscribe_all().await.unwrap();
    until(&mut painter, None, false).await;
    let seen = tokio::time::timeout(
        Duration::from_secs(30),
        watcher.wait_for(|e| matches!(e, Event::Pixels { .. }).then_some(())),
    )
    .await;
    assert!(seen.is_ok(), "the paint did not reach the other node");
    for n in &cluster.nodes {
        assert_eq!(readyz_becomes(n.admin, 200).await, 200, "a node with Redis back is ready again");
    }
}

/// Polls `/readyz` (bounded) until it answers `want`; returns the last answer.
async fn readyz_becomes(admin: std::net::SocketAddr, want: u16) -> u16 {
    let mut status = 0;
    for _ in 0..200 {
        status = readyz(admin).await;
        if status == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // Polling a status, bounded.
    }
    status
}
