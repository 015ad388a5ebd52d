//! The engine on real shard threads: sessions on every shard paint concurrently while all of
//! them are subscribed to the whole canvas; every session receives every update and ends
//! with the server's canvas, byte for byte. Exercises the mesh, wakeups and ticks for real.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use pixelparty_engine::{Engine, EngineConfig, LocalShard, UserCtx};
use pixelparty_protocol::canvas::set_pixel;
use pixelparty_protocol::client::{Hello, Paint, Subscribe};
use pixelparty_protocol::limits::NO_CURSOR;
use pixelparty_protocol::{
    ClientFrame, ClientKind, CloseReason, Geometry, Role, ServerFrame, TileCursor, server_frames,
};

const SHARDS: usize = 2;
const SESSIONS_PER_SHARD: usize = 3;
const PAINTS_PER_SESSION: usize = 200;

type Replica = HashMap<u32, (Vec<u8>, u64)>;

fn encode(frame: &ClientFrame<'_>) -> Vec<u8> {
    let mut b = BytesMut::new();
    frame.encode(&mut b).unwrap();
    b.to_vec()
}

/// Reads a session's output, applying it to `replica`, until `done` says so.
async fn read_until(
    shard: &LocalShard,
    conn: pixelparty_engine::ConnId,
    g: Geometry,
    replica: &mut Replica,
    updates: &mut usize,
    acks: &mut usize,
    done: impl Fn(&Replica, usize, usize) -> bool,
) {
    let mut out = Vec::new();
    while !done(replica, *updates, *acks) {
        out.clear();
        let close = shard.next_output(conn, 1 << 20, &mut out).await;
        assert!(close.is_none(), "session closed: {close:?}");
        for bytes in &out {
            for f in server_frames(bytes) {
                match f.unwrap() {
                    ServerFrame::TileData(t) => {
                        replica.insert(t.tile, (t.data.to_vec(), t.seq));
                    }
                    ServerFrame::Pixels(p) => {
                        let (data, cursor) = replica.get_mut(&p.head.tile()).expect("subscribed before live updates");
                        assert_eq!(*cursor, p.head.prev_seq(), "updates chain");
                        for u in p.updates {
                            set_pixel(data, g.bpp(), u.offset(), u.colour());
                        }
                        *cursor = p.head.last_seq();
                        *updates += p.updates.len();
                    }
                    ServerFrame::Ack(_) => *acks += 1,
                    ServerFrame::Error(e) => panic!("unexpected error {e:?}"),
                    _ => {}
                }
            }
        }
    }
}

#[test]
fn sessions_on_all_shards_converge() {
    let (_dir, store) = pixelparty_storage::testing::temp_store();
    let g = Geometry::new(256, 256, 4, 64).unwrap();
    let mut config = EngineConfig::new(g);
    config.shards = SHARDS;
    config.cooldown_ms = 0;
    let total = SHARDS * SESSIONS_PER_SHARD * PAINTS_PER_SESSION;
    let barrier = Arc::new(tokio::sync::Barrier::new(SHARDS * SESSIONS_PER_SHARD));
    let (tx, rx) = std::sync::mpsc::channel::<Replica>();
    let engine = Engine::start(config, store, move |shard: LocalShard| {
        let (barrier, tx) = (barrier.clone(), tx.clone());
        async move {
            let mut tasks = Vec::new();
            for i in 0..SESSIONS_PER_SHARD {
                let (shard, barrier, tx) = (shard.clone(), barrier.clone(), tx.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    let user = (shard.id() * 100 + i + 1) as u32;
                    let conn = shard.connect(UserCtx::new(user, "bot", Role::User));
                    shard.receive_message(
                        conn,
                        &encode(&ClientFrame::Hello(Hello { version: 1, kind: ClientKind::Bot, agent: "test" })),
                    );
                    let cursors: Vec<TileCursor> = (0..g.tile_count()).map(|t| TileCursor::new(t, NO_CURSOR)).collect();
                    shard.receive_message(conn, &encode(&ClientFrame::Subscribe(Subscribe { tiles: &cursors })));
                    let (mut replica, mut updates, mut acks) = (Replica::new(), 0, 0);
                    read_until(&shard, conn, g, &mut replica, &mut updates, &mut acks, |r, _, _| {
                        r.len() == g.tile_count() as usize
                    })
                    .await;
                    barrier.wait().await;
                    for k in 0..PAINTS_PER_SESSION {
                        let (x, y) =
                            (((user as usize * 37 + k * 11) % 256) as u16, ((k * 53 + user as usize) % 256) as u16);
                        let paint = ClientFrame::Paint(Paint { req: k as u32, x, y, colour: (k % 16) as u8 });
                        shard.receive_message(conn, &encode(&paint));
                        if k % 16 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                    read_until(&shard, conn, g, &mut replica, &mut updates, &mut acks, |_, u, a| {
                        u >= total && a >= PAINTS_PER_SESSION
                    })
                    .await;
                    assert_eq!(updates, total, "every update exactly once");
                    tx.send(replica).unwrap();
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        }
    })
    .unwrap();
    let replicas: Vec<Replica> = (0..SHARDS * SESSIONS_PER_SHARD)
        .map(|_| rx.recv_timeout(Duration::from_secs(60)).expect("every session finishes within 60 s"))
        .collect();
    let handle = engine.handle();
    let server: Replica = handle
        .copy_tiles(true, Duration::from_secs(10))
        .unwrap()
        .into_iter()
        .map(|c| (c.tile, (c.data.to_vec(), c.seq)))
        .collect();
    for (i, r) in replicas.iter().enumerate() {
        assert!(*r == server, "session {i} differs from the server canvas");
    }
    let accepted: u64 =
        handle.shared().metrics.iter().map(|m| m.paints_accepted.load(std::sync::atomic::Ordering::Relaxed)).sum();
    assert_eq!(accepted as usize, total);
    engine.shutdown(CloseReason::Shutdown);
}
