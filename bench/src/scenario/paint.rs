//! `paint` (pixelparty only): P painters at a total rate, S subscribers of the whole canvas.
//! Accepted paints/s, pixel deliveries/s, paint-to-receipt latency at the subscribers, and a
//! convergence check: every subscriber's replica equals the server's snapshot at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pixelparty_protocol::ServerFrame;
use serde_json::{Value, json};

use super::{Common, Meters, Progress, merge, now_us, round2, run_workers};
use crate::client::{Api, Connection, Replica};
use crate::report::Latency;

/// Options of `paint`.
#[derive(Debug, Clone, clap::Args)]
pub struct PaintArgs {
    /// Painting connections.
    #[arg(long, default_value_t = 10)]
    pub painters: usize,
    /// Subscribed connections (each subscribes to the whole canvas).
    #[arg(long, default_value_t = 10)]
    pub subscribers: usize,
    /// Paints per second, all painters together (the server's cooldown must allow it).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Painting time in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Paint and subscribe only tiles `0..N` (a viewport; 0: the whole canvas).
    #[arg(long, default_value_t = 0)]
    pub viewport: u32,
}

#[derive(Debug, Default)]
struct Outcome {
    accepted: u64,
    refused: u64,
    delivered: u64,
    ack_latency: Latency,
    latency: Latency,
    replica: Option<Replica>,
    errors: u64,
}

/// Runs the scenario and returns its record.
pub fn run(common: &Common, args: &PaintArgs) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let tokens = Arc::new(rt.block_on(common.tokens(common.accounts)).expect("accounts"));
    let api = Api::new(common.addr);
    let info = rt.block_on(api.ok("GET", "/canvas", None, None)).expect("canvas info");
    let (width, height) = (info["width"].as_u64().unwrap_or(1) as usize, info["height"].as_u64().unwrap_or(1) as usize);
    // When each pixel was last sent (µs), so a subscriber can time what it receives.
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..width * height).map(|_| AtomicU64::new(0)).collect());
    let progress = Arc::new(Progress::default());
    progress.spawn("paint", common.server_pid);
    let total = args.painters + args.subscribers;
    let ready = Arc::new(tokio::sync::Barrier::new(total));
    let meters = Arc::new(std::sync::Mutex::new(None::<Meters>));
    let (c2, a2, t2, s2, p2, r2, m2) = (
        common.clone(),
        args.clone(),
        tokens.clone(),
        sent_at.clone(),
        progress.clone(),
        ready.clone(),
        meters.clone(),
    );
    let outcomes = run_workers(common.workers, move |w| {
        let (common, args, tokens, sent_at, progress, ready, meters) =
            (c2.clone(), a2.clone(), t2.clone(), s2.clone(), p2.clone(), r2.clone(), m2.clone());
        async move {
            let mut tasks = Vec::new();
            for i in (w..args.painters + args.subscribers).step_by(common.workers.max(1)) {
                let (common, args, tokens, sent_at, progress, ready, meters) = (
                    common.clone(),
                    args.clone(),
                    tokens.clone(),
                    sent_at.clone(),
                    progress.clone(),
                    ready.clone(),
                    meters.clone(),
                );
                tasks.push(tokio::task::spawn_local(async move {
                    let token = &tokens[i % tokens.len()];
                    let Ok(conn) = Connection::connect(common.addr, token, common.options(i)).await else {
                        ready.wait().await;
                        return Outcome { errors: 1, ..Default::default() };
                    };
                    if i < args.painters {
                        let sync =
                            Sync { progress: &progress, ready: &ready, meters: &meters, server_pid: common.server_pid };
                        painter(i, conn, &args, width, &sent_at, sync).await
                    } else {
                        subscriber(conn, &args, width, &sent_at, &progress, &ready).await
                    }
                }));
            }
            let mut outs = Vec::new();
            for t in tasks {
                outs.push(t.await.unwrap_or_default());
            }
            outs
        }
    });
    progress.finish();
    let mut all = Outcome::default();
    let mut replicas = Vec::new();
    for o in outcomes.into_iter().flatten() {
        all.accepted += o.accepted;
        all.refused += o.refused;
        all.delivered += o.delivered;
        all.errors += o.errors;
        all.ack_latency.merge(&o.ack_latency);
        all.latency.merge(&o.latency);
        replicas.extend(o.replica);
    }
    // Convergence: wait for the snapshot to catch up (it refreshes about every second), then
    // compare every subscriber's replica with it.
    let mut converged = false;
    let mut mismatched = 0;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(500));
        let Ok(snap) = rt.block_on(api.snapshot()) else { continue };
        mismatched = replicas
            .iter()
            // Every tile a subscriber holds must equal the snapshot's, bytes and cursor.
            .filter(|r| {
                r.tiles()
                    .any(|(t, data, seq)| (snap.tiles[t as usize].as_slice(), snap.seqs[t as usize]) != (data, seq))
            })
            .count();
        if mismatched == 0 {
            converged = true;
            break;
        }
    }
    let secs = args.duration;
    let m = meters.lock().ok().and_then(|mut g| g.take());
    let record = json!({
        "scenario": "paint",
        "target": common.target_name(),
        "label": common.label,
        "painters": args.painters,
        "subscribers": args.subscribers,
        "offered_paints_per_s": args.rate,
        "accepted": all.accepted,
        "accepted_per_s": round2(all.accepted as f64 / secs),
        "refused": all.refused,
        "pixel_deliveries": all.delivered,
        "pixel_deliveries_per_s": round2(all.delivered as f64 / secs),
        "paint_to_ack": all.ack_latency.summary(),
        "paint_to_receipt": all.latency.summary(),
        "converged": converged,
        "replicas_differing": mismatched,
        "errors": all.errors,
    });
    merge(record, m.map_or(json!({}), |m| m.json()))
}

/// What painters share to start together and report.
struct Sync<'a> {
    progress: &'a Progress,
    ready: &'a tokio::sync::Barrier,
    meters: &'a std::sync::Mutex<Option<Meters>>,
    server_pid: Option<u32>,
}

async fn painter(
    i: usize,
    mut conn: Connection,
    args: &PaintArgs,
    width: usize,
    sent_at: &[AtomicU64],
    sync: Sync<'_>,
) -> Outcome {
    let mut out = Outcome::default();
    let g = conn.welcome.geometry;
    let progress = sync.progress;
    // The first painter past the start starts the meters (the barrier's leader may be a
    // subscriber, which never did: the records of big runs had no CPU figures).
    sync.ready.wait().await;
    if let Ok(mut m) = sync.meters.lock()
        && m.is_none()
    {
        *m = Some(Meters::start(sync.server_pid));
    }
    let per = args.rate / args.painters.max(1) as f64;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per.max(0.001)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let until = tokio::time::Instant::now() + Duration::from_secs_f64(args.duration);
    let pixels = sent_at.len();
    // Walk the canvas with a stride coprime to its size, each painter from its own start.
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let mut stride = (7919 % pixels.max(1)).max(1);
    while gcd(stride, pixels) != 1 {
        stride += 1;
    }
    let mut next = (i * 104_729) % pixels.max(1);
    let mut pending: std::collections::HashMap<u32, u64> = std::collections::HashMap::new();
    let mut sending = true;
    loop {
        if !sending && pending.is_empty() {
            break;
        }
        tokio::select! {
            _ = ticker.tick(), if sending => {
                if tokio::time::Instant::now() >= until {
                    sending = false;
                    continue;
                }
                let (x, y) = if args.viewport > 0 {
                    // The k-th pixel of the viewport's tiles, in tile order.
                    let tile_pixels = usize::from(g.tile_size()) * usize::from(g.tile_size());
                    let k = next % (args.viewport as usize * tile_pixels);
                    let (x, y) = g.coordinates((k / tile_pixels) as u32, (k % tile_pixels) as u16);
                    (x as u16, y as u16)
                } else {
                    ((next % width) as u16, (next / width) as u16)
                };
                let now = now_us();
                sent_at[usize::from(y) * width + usize::from(x)].store(now, Ordering::Relaxed);
                next = (next + stride) % pixels;
                match conn.paint(x, y, ((i + next) % 15 + 1) as u8).await {
                    Ok(req) => {
                        pending.insert(req, now);
                        progress.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        out.errors += 1;
                        break;
                    }
                }
            }
            r = conn.recv_frames(|f| match f {
                ServerFrame::Ack(a) => {
                    if let Some(t) = pending.remove(&a.req) {
                        out.ack_latency.record(now_us().saturating_sub(t));
                        out.accepted += 1;
                    }
                }
                ServerFrame::Error(e) if pending.remove(&e.req).is_some() => out.refused += 1,
                _ => {}
            }) => {
                if r.is_err() {
                    out.errors += 1;
                    break;
                }
            }
            () = tokio::time::sleep_until(until + Duration::from_secs(10)) => break,
        }
    }
    out
}

async fn subscriber(
    mut conn: Connection,
    args: &PaintArgs,
    width: usize,
    sent_at: &[AtomicU64],
    progress: &Progress,
    ready: &tokio::sync::Barrier,
) -> Outcome {
    let mut out = Outcome::default();
    let g = conn.welcome.geometry;
    conn.track(Replica::new(g));
    let tiles = if args.viewport > 0 { args.viewport.min(g.tile_count()) } else { g.tile_count() };
    let cursors: Vec<(u32, u64)> = (0..tiles).map(|t| (t, pixelparty_protocol::limits::NO_CURSOR)).collect();
    if conn.subscribe(&cursors).await.is_err() {
        ready.wait().await;
        out.errors += 1;
        return out;
    }
    while conn.replica.as_ref().is_some_and(|r| r.tiles().count() < tiles as usize) {
        if conn.recv_frames(|_| {}).await.is_err() {
            out.errors += 1;
            break;
        }
    }
    ready.wait().await;
    let until = tokio::time::Instant::now() + Duration::from_secs_f64(args.duration + 3.0);
    loop {
        tokio::select! {
            r = conn.recv_frames(|f| {
                if let ServerFrame::Pixels(p) = f {
                    let now = now_us();
                    for u in p.updates {
                        let (x, y) = g.coordinates(p.head.tile(), u.offset());
                        let id = y as usize * width + x as usize;
                        if let Some(t) = sent_at.get(id).map(|a| a.load(Ordering::Relaxed)).filter(|t| *t > 0) {
                            out.latency.record(now.saturating_sub(t));
                        }
                    }
                    out.delivered += p.updates.len() as u64;
                    progress.done.fetch_add(p.updates.len() as u64, Ordering::Relaxed);
                }
            }) => {
                if r.is_err() {
                    out.errors += 1;
                    break;
                }
            }
            () = tokio::time::sleep_until(until) => break,
        }
    }
    out.replica = conn.replica.take();
    out
}
