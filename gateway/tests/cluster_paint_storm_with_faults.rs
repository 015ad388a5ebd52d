//! Three nodes on one Redis and one PostgreSQL, a seeded paint storm through random nodes,
//! and the faults a cluster meets: a node SIGKILLed mid-storm (its painters go to another
//! node) and started again, and Redis killed and restarted empty. Then the whole history is
//! checked against the model, Jepsen-style:
//! - every acknowledged paint is in PostgreSQL's journal exactly once, under the sequence
//!   its acknowledgement gave, with its pixel, colour and painter; the journal's sequences
//!   are unique and gap-free;
//! - no painter has two accepted paints closer than the cooldown (less the time from the
//!   cooldown's check to the journal's clock, bounded by a tick, hence half a cooldown);
//! - every node, through a client that loads its snapshot and subscribes with the cursors,
//!   converges to the canvas replayed from PostgreSQL, byte for byte (the restarted node too).
//!
//! Faults are placed by the count of acknowledged paints, not by time.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::PASSWORD;
use common::cluster::Shape;
use pixelparty_bench::client::{Api, ConnectOptions, Connection, Event};
use pixelparty_protocol::ErrorCode;
use pixelparty_storage::PixelRecord;

const PAINTERS: usize = 9;
const COOLDOWN_MS: u32 = 400;
const WIDTH: u16 = 64;
const SEED: u64 = 0x5eed_cafe;
/// Faults at these counts of acknowledged paints; the storm stops at the last.
const KILL_NODE_AT: usize = 40;
const RESTART_REDIS_AT: usize = 80;
const RESTART_NODE_AT: usize = 110;
const STOP_AT: usize = 150;

#[derive(Debug, Clone, Copy)]
struct Acked {
    user: u32,
    seq: u64,
    x: u16,
    y: u16,
    colour: u8,
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// One painter: paints seeded pixels through the node it is told, moving to the next node
/// when its connection fails, until `stop`.
async fn painter(
    i: usize,
    token: String,
    user: u32,
    nodes: Arc<Vec<std::net::SocketAddr>>,
    stop: Arc<AtomicBool>,
    acked: Arc<parking_lot::Mutex<Vec<Acked>>>,
    count: Arc<AtomicUsize>,
) {
    let mut rng = SEED ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut node = i % nodes.len();
    let mut conn: Option<Connection> = None;
    while !stop.load(Ordering::Acquire) {
        let Some(c) = conn.as_mut() else {
            match Connection::connect(nodes[node], &token, ConnectOptions::default()).await {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    node = (node + 1) % nodes.len();
                    tokio::time::sleep(Duration::from_millis(50)).await; // Backoff, not synchronisation.
                }
            }
            continue;
        };
        let r = xorshift(&mut rng);
        let (x, y, colour) =
            ((r % u64::from(WIDTH)) as u16, ((r >> 16) % u64::from(WIDTH)) as u16, ((r >> 32) % 16) as u8);
        let Ok(req) = c.paint(x, y, colour).await else {
            conn = None;
            node = (node + 1) % nodes.len();
            continue;
        };
        let outcome = tokio::time::timeout(
            Duration::from_secs(10),
            c.wait_for(|e| match e {
                Event::Ack { req: r, value } if *r == req => Some(Ok(*value)),
                Event::Error { req: r, code, retry_after_ms, .. } if *r == req => Some(Err((*code, *retry_after_ms))),
                _ => None,
            }),
        )
        .await;
        match outcome {
            Ok(Ok(Ok(seq))) => {
                acked.lock().push(Acked { user, seq, x, y, colour });
                count.fetch_add(1, Ordering::AcqRel);
            }
            Ok(Ok(Err((code, retry)))) => {
                assert!(
                    matches!(
                        code,
                        ErrorCode::Cooldown
                            | ErrorCode::Unavailable
                            | ErrorCode::Overloaded
                            | ErrorCode::OutcomeUnknown
                    ),
                    "painter {i}: unexpected refusal {code:?}"
                );
                tokio::time::sleep(Duration::from_millis(u64::from(retry.clamp(10, 1000)))).await;
            }
            // The node died (or the connection did) with the paint in flight: its outcome is
            // unknown, and it is not counted.
            Ok(Err(_)) | Err(_) => {
                conn = None;
                node = (node + 1) % nodes.len();
            }
        }
    }
}

/// Waits (bounded: painting must go on) until `at` paints were acknowledged.
async fn wait_for_count(count: &AtomicUsize, at: usize) {
    let reached = tokio::time::timeout(Duration::from_secs(120), async {
        while count.load(Ordering::Acquire) < at {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "painting stopped at {} acknowledged paints, before {at}", count.load(Ordering::Acquire));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paint_storm_through_three_nodes_with_faults_converges_and_loses_nothing() {
    let Some(mut cluster) =
        common::cluster::start(Shape { nodes: 3, cooldown_ms: COOLDOWN_MS, width: WIDTH, tile: 32 }).await
    else {
        return;
    };
    let nodes: Arc<Vec<_>> = Arc::new(cluster.nodes.iter().map(|n| n.http).collect());
    let api = Api::new(nodes[0]);
    let mut accounts = Vec::new();
    for i in 0..PAINTERS {
        accounts.push(api.signup(&format!("painter{i}"), PASSWORD).await.unwrap());
    }
    let (stop, acked, count) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(parking_lot::Mutex::new(Vec::new())),
        Arc::new(AtomicUsize::new(0)),
    );
    let mut tasks = Vec::new();
    for (i, a) in accounts.iter().enumerate() {
        tasks.push(tokio::spawn(painter(
            i,
            a.token.clone(),
            a.id,
            nodes.clone(),
            stop.clone(),
            acked.clone(),
            count.clone(),
        )));
    }

    wait_for_count(&count, KILL_NODE_AT).await;
    cluster.nodes[1].kill();
    wait_for_count(&count, RESTART_REDIS_AT).await;
    cluster.redis.restart();
    wait_for_count(&count, RESTART_NODE_AT).await;
    tokio::task::block_in_place(|| cluster.nodes[1].start());
    wait_for_count(&count, STOP_AT).await;
    stop.store(true, Ordering::Release);
    for t in tasks {
        t.await.unwrap();
    }

    // 1. Every acknowledged paint is in the journal exactly once, as acknowledged.
    let journal = cluster.journal().await;
    let acked = acked.lock().clone();
    for (i, r) in journal.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1, "journal sequences are unique and gap-free");
    }
    let by_seq: HashMap<u64, &PixelRecord> = journal.iter().map(|r| (r.seq, r)).collect();
    let mut seen = std::collections::HashSet::new();
    for a in &acked {
        assert!(seen.insert(a.seq), "sequence {} acknowledged twice", a.seq);
        let r = by_seq.get(&a.seq).unwrap_or_else(|| panic!("acknowledged paint {a:?} is not in the journal"));
        assert_eq!((r.x, r.y, r.colour, r.user), (a.x, a.y, a.colour, a.user), "journal entry {} differs", a.seq);
    }

    // 2. The cooldown held across nodes, connections and the Redis restart.
    let mut per_user: HashMap<u32, Vec<u64>> = HashMap::new();
    for r in &journal {
        per_user.entry(r.user).or_default().push(r.time_ms);
    }
    for (user, mut times) in per_user {
        times.sort_unstable();
        for w in times.windows(2) {
            assert!(
                w[1] - w[0] >= u64::from(COOLDOWN_MS / 2),
                "user {user} has two accepted paints {} ms apart (cooldown {COOLDOWN_MS} ms)",
                w[1] - w[0]
            );
        }
    }

    // 3. Every node (through a fresh client) equals the replay of the journal, byte for byte.
    let geometry = pixelparty_protocol::Geometry::new(u32::from(WIDTH), u32::from(WIDTH), 4, 32).unwrap();
    let (want, pixels) = common::cluster::model(&journal, geometry);
    let viewer = api.signup("viewer", PASSWORD).await.unwrap();
    for node in cluster.nodes.iter().map(|n| n.http) {
        let replica = common::cluster::converged_replica(node, &viewer.token, &want).await;
        common::cluster::assert_pixels(&replica, &pixels, WIDTH, &format!("node {node}"));
    }
    eprintln!("{} paints acknowledged, {} journaled, 3 nodes converged", acked.len(), journal.len());
}
