//! Engine benchmark: the real shard threads with in-process sessions, no sockets.
//!
//! - accepted paints/s: painter sessions on every shard flood paints (no cooldown), each
//!   paint journaled through the store (`interval` durability) and acknowledged;
//! - pixel deliveries/s: subscriber sessions of the whole canvas receive every update;
//! - room deliveries/s: members of several rooms receive every message.
//!
//! `cargo bench -p pixelparty-bench --bench engine` (figures in `bench/README.md`);
//! `ENGINE_BENCH_SECS=30` for sustained rates.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use pixelparty_bench::timing::si;
use pixelparty_engine::{Engine, EngineConfig, LocalShard, UserCtx};
use pixelparty_protocol::client::{Hello, Paint, RoomRequest, SendRoom, Subscribe};
use pixelparty_protocol::limits::NO_CURSOR;
use pixelparty_protocol::{
    ClientFrame, ClientKind, CloseReason, Geometry, Role, ServerFrame, TileCursor, server_frames,
};
use pixelparty_storage::{Durability, Role as StoreRole, Store, StoreConfig};

const SHARDS: usize = 2;
/// Length of each run: 5 s, or `ENGINE_BENCH_SECS` (a longer run pays for the store's
/// compactions: the sustained rate).
fn run() -> Duration {
    Duration::from_secs(std::env::var("ENGINE_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5))
}

fn encode(frames: &[ClientFrame<'_>]) -> Vec<u8> {
    let mut b = BytesMut::new();
    for f in frames {
        f.encode(&mut b).unwrap();
    }
    b.to_vec()
}

#[derive(Default)]
struct Counters {
    acks: AtomicU64,
    updates: AtomicU64,
    pixel_frames: AtomicU64,
    chat: AtomicU64,
    errors: AtomicU64,
    /// Sessions the engine closed (slow consumers, mostly).
    closed: AtomicU64,
}

fn store(dir: &std::path::Path) -> Store {
    let mut c = StoreConfig::new(dir);
    c.durability = Durability::Interval(Duration::from_millis(100));
    Store::open(c).unwrap()
}

/// Answers (acks and errors) a painter has received, and a wake-up for a painter waiting on
/// its window.
#[derive(Default)]
struct Answered {
    count: std::cell::Cell<u64>,
    notify: tokio::sync::Notify,
}

impl Answered {
    fn add(&self) {
        self.count.set(self.count.get() + 1);
        self.notify.notify_one();
    }
}

/// Drains a session's output, counting what arrives, until `stop`; `answered` counts this
/// session's acks and errors (for a painter's in-flight bound).
async fn drain(
    shard: &LocalShard,
    conn: pixelparty_engine::ConnId,
    counters: &Counters,
    until: Instant,
    answered: &Answered,
) {
    let mut out = Vec::new();
    while Instant::now() < until {
        out.clear();
        let wait = shard.next_output(conn, 1 << 20, &mut out);
        let Ok(close) = tokio::time::timeout(until.saturating_duration_since(Instant::now()), wait).await else {
            break;
        };
        if let Some(c) = close {
            if counters.closed.fetch_add(1, Ordering::Relaxed) == 0 {
                eprintln!("first close: {c:?}");
            }
            break;
        }
        for bytes in &out {
            for f in server_frames(bytes).flatten() {
                match f {
                    ServerFrame::Ack(_) => {
                        counters.acks.fetch_add(1, Ordering::Relaxed);
                        answered.add();
                    }
                    ServerFrame::Pixels(p) => {
                        counters.updates.fetch_add(p.updates.len() as u64, Ordering::Relaxed);
                        counters.pixel_frames.fetch_add(1, Ordering::Relaxed);
                    }
                    ServerFrame::RoomMessage(_) => {
                        counters.chat.fetch_add(1, Ordering::Relaxed);
                    }
                    ServerFrame::Error(e) => {
                        answered.add();
                        if counters.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("first error: {e:?}");
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

fn paint_run(subscribers_per_shard: usize) {
    let dir = tempfile::tempdir().unwrap();
    let g = Geometry::new(2048, 2048, 4, 256).unwrap();
    let mut config = EngineConfig::new(g);
    config.shards = SHARDS;
    config.cooldown_ms = 0;
    config.max_pending_paints = 1 << 20;
    let counters = Arc::new(Counters::default());
    let start = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let (c2, s2) = (counters.clone(), start.clone());
    let painters_per_shard = 4;
    let engine = Engine::start(config, store(dir.path()), move |shard: LocalShard| {
        let (counters, start) = (c2.clone(), s2.clone());
        async move {
            let until = Instant::now() + run() + Duration::from_secs(1);
            *start.lock().unwrap() = Some(Instant::now());
            let mut tasks = Vec::new();
            for i in 0..subscribers_per_shard {
                let (shard, counters) = (shard.clone(), counters.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    let conn = shard.connect(UserCtx::new(10_000 + i as u32, "sub", Role::User));
                    let cursors: Vec<TileCursor> = (0..g.tile_count()).map(|t| TileCursor::new(t, NO_CURSOR)).collect();
                    let hello = ClientFrame::Hello(Hello { version: 1, kind: ClientKind::Bench, agent: "bench" });
                    shard.receive_message(
                        conn,
                        &encode(&[hello, ClientFrame::Subscribe(Subscribe { tiles: &cursors })]),
                    );
                    drain(&shard, conn, &counters, until, &Answered::default()).await;
                }));
            }
            for p in 0..painters_per_shard {
                let (shard, counters) = (shard.clone(), counters.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    let user = (shard.id() * 100 + p + 1) as u32;
                    let conn = shard.connect(UserCtx::new(user, "painter", Role::User));
                    shard.receive_message(
                        conn,
                        &encode(&[ClientFrame::Hello(Hello { version: 1, kind: ClientKind::Bench, agent: "bench" })]),
                    );
                    let send_until = Instant::now() + run();
                    let mut k = user as usize * 1_000_003;
                    let mut batch = Vec::with_capacity(64 * 14);
                    let answered = std::rc::Rc::new(Answered::default());
                    let drainer = {
                        let (shard, counters, answered) = (shard.clone(), counters.clone(), answered.clone());
                        tokio::task::spawn_local(async move { drain(&shard, conn, &counters, until, &answered).await })
                    };
                    let mut sent = 0u64;
                    while Instant::now() < send_until {
                        // Like a client with a window: at most 4096 paints unanswered, waiting
                        // (not spinning) for answers when the window is full.
                        if sent - answered.count.get() > 4096 {
                            let _ = tokio::time::timeout(Duration::from_millis(100), answered.notify.notified()).await;
                            continue;
                        }
                        sent += 64;
                        // 64 paints per transport message, like a bot batching its frames.
                        batch.clear();
                        let frames: Vec<ClientFrame<'_>> = (0..64)
                            .map(|j| {
                                k = k.wrapping_add(7919);
                                ClientFrame::Paint(Paint {
                                    req: j,
                                    x: (k % 2048) as u16,
                                    y: ((k / 2048) % 2048) as u16,
                                    colour: (k % 16) as u8,
                                })
                            })
                            .collect();
                        batch.extend_from_slice(&encode(&frames));
                        shard.receive_message(conn, &batch);
                        tokio::task::yield_now().await;
                    }
                    let _ = drainer.await;
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        }
    })
    .unwrap();
    std::thread::sleep(run() + Duration::from_secs(2));
    let secs = run().as_secs_f64();
    let acks = counters.acks.load(Ordering::Relaxed);
    let updates = counters.updates.load(Ordering::Relaxed);
    let frames = counters.pixel_frames.load(Ordering::Relaxed);
    println!(
        "paint, {SHARDS} shards, {} painters, {} subscribers: {}paints/s accepted, {}pixel deliveries/s ({} frames/s, {:.1} updates per frame)",
        SHARDS * painters_per_shard,
        SHARDS * subscribers_per_shard,
        si(acks as f64 / secs),
        si(updates as f64 / secs),
        si(frames as f64 / secs),
        updates as f64 / frames.max(1) as f64
    );
    engine.shutdown(CloseReason::Shutdown);
}

fn chat_run(rooms: u32, members_per_room_per_shard: usize) {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    for r in 0..rooms {
        s.wait(move |b| b.create_room(format!("room{r}"), 1, 0)).unwrap();
    }
    s.wait(|b| b.create_user("sender".into(), "x".into(), StoreRole::User, 0)).unwrap();
    let mut config = EngineConfig::new(Geometry::new(256, 256, 4, 256).unwrap());
    config.shards = SHARDS;
    config.chat_interval_ms = 0;
    config.max_room_members = 1 << 20;
    let counters = Arc::new(Counters::default());
    let c2 = counters.clone();
    let engine = Engine::start(config, s, move |shard: LocalShard| {
        let counters = c2.clone();
        async move {
            let until = Instant::now() + run() + Duration::from_secs(1);
            let hello = ClientFrame::Hello(Hello { version: 1, kind: ClientKind::Bench, agent: "bench" });
            let mut tasks = Vec::new();
            for room in 1..=rooms {
                for m in 0..members_per_room_per_shard {
                    let (shard, counters) = (shard.clone(), counters.clone());
                    tasks.push(tokio::task::spawn_local(async move {
                        let conn = shard.connect(UserCtx::new(1000 + m as u32, "member", Role::User));
                        shard.receive_message(
                            conn,
                            &encode(&[hello, ClientFrame::JoinRoom(RoomRequest { req: 1, room })]),
                        );
                        drain(&shard, conn, &counters, until, &Answered::default()).await;
                    }));
                }
            }
            // One sender per shard posts to every room in turn.
            let (shard2, counters2) = (shard.clone(), counters.clone());
            tasks.push(tokio::task::spawn_local(async move {
                let conn = shard2.connect(UserCtx::new(1, "sender", Role::User));
                shard2.receive_message(conn, &encode(&[hello]));
                for room in 1..=rooms {
                    shard2.receive_message(conn, &encode(&[ClientFrame::JoinRoom(RoomRequest { req: 1, room })]));
                }
                // The sender is a member of every room too: its output is drained as it goes
                // (left unread, its queue overflowed after some seconds and the engine closed
                // it as a slow consumer, which ended the run's sending early).
                let drainer = {
                    let (shard, counters) = (shard2.clone(), counters2.clone());
                    tokio::task::spawn_local(async move {
                        drain(&shard, conn, &counters, until, &Answered::default()).await;
                    })
                };
                tokio::time::sleep(Duration::from_millis(200)).await;
                let send_until = Instant::now() + run();
                let mut req = 10;
                while Instant::now() < send_until {
                    let frames: Vec<ClientFrame<'_>> = (1..=rooms)
                        .map(|room| {
                            req += 1;
                            ClientFrame::SendRoom(SendRoom {
                                req,
                                room,
                                text: "hello everyone in this room, a typical message",
                            })
                        })
                        .collect();
                    shard2.receive_message(conn, &encode(&frames));
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                let _ = drainer.await;
            }));
            for t in tasks {
                let _ = t.await;
            }
        }
    })
    .unwrap();
    std::thread::sleep(run() + Duration::from_secs(2));
    let chat = counters.chat.load(Ordering::Relaxed);
    println!(
        "chat, {SHARDS} shards, {rooms} rooms x {} members: {}room deliveries/s ({} sessions closed)",
        SHARDS * members_per_room_per_shard,
        si(chat as f64 / run().as_secs_f64()),
        counters.closed.load(Ordering::Relaxed)
    );
    engine.shutdown(CloseReason::Shutdown);
}

fn main() {
    let run = run();
    println!("pixelparty engine benchmark ({run:?} per line, in-process sessions, no sockets)");
    // `ENGINE_BENCH_ONLY=paint|chat` runs one kind.
    let only = std::env::var("ENGINE_BENCH_ONLY").unwrap_or_default();
    if only != "chat" {
        paint_run(0);
        paint_run(50);
    }
    if only != "paint" {
        chat_run(10, 100);
    }
}
