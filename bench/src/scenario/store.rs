//! `store` (pixelparty only): the figures that depend on the storage backend, end to end
//! against a running server. Phases run one after another, each bounded in count and time:
//!
//! 1. **Room acks.** S senders in one room each keep W `SendRoom` requests in flight; the
//!    server acks a message once the store holds it (with `durability = "sync"`: on disk).
//!    Acks/s and ack latency. Every sender also receives the room's messages, as members do.
//! 2. **Join with history.** A room is filled with H messages, then J clients each join it,
//!    wait for the join's history page (a store read), leave, and again. Joins/s and
//!    join-to-page latency.
//! 3. **Pixel inspector.** P distinct pixels are painted, then C HTTP clients read them with
//!    `GET /canvas/pixel` (a pixel-history read and a name lookup in the store).
//! 4. **Paint under a join storm.** Painters at a fixed offered rate, first alone (the
//!    baseline), then while phase 2's join storm runs. Paint-to-ack latency of both.
//!
//! Not a storage micro-benchmark (that is `benches/storage.rs`): every figure here includes
//! the engine, the gateway and loopback sockets, and the client shares the machine.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use pixelparty_protocol::ServerFrame;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Common, Meters, Progress, merge, now_us, round2, run_workers};
use crate::client::{Api, ClientError, Connection};
use crate::report::Latency;

/// How long a phase waits for the answers still in flight when its time is up.
const DRAIN: Duration = Duration::from_secs(5);
/// Longest a fill (messages or pixels) may take before it gives up.
const FILL_LIMIT: Duration = Duration::from_secs(120);
/// Longest wait for one join's page or one leave's ack.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a refused join before the next, so a refusing server is not hammered.
const REFUSED_PAUSE: Duration = Duration::from_millis(10);
/// Requests a session may have unanswered at the server (`MAX_REQUESTS_IN_FLIGHT`).
const SERVER_WINDOW_MAX: usize = 64;

/// Options of `store`.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Seconds each measured phase runs.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Senders in the room-acks phase (and in the room fill).
    #[arg(long, default_value_t = 8)]
    pub senders: usize,
    /// `SendRoom` requests each sender keeps in flight.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=SERVER_WINDOW_MAX as i64))]
    pub window: u16,
    /// Messages in the room the joiners join.
    #[arg(long, default_value_t = 2000)]
    pub history: u64,
    /// Joining clients.
    #[arg(long, default_value_t = 32)]
    pub joiners: usize,
    /// Distinct pixels painted before the inspector reads them.
    #[arg(long, default_value_t = 2000)]
    pub pixels: u64,
    /// Concurrent inspector clients (HTTP keep-alive connections).
    #[arg(long, default_value_t = 8)]
    pub inspectors: usize,
    /// Painters in the paint phases (and in the pixel fill).
    #[arg(long, default_value_t = 4)]
    pub painters: usize,
    /// Paints per second, all painters together, in the paint phases.
    #[arg(long, default_value_t = 500.0)]
    pub paint_rate: f64,
}

/// Runs the scenario and returns its record.
pub fn run(common: &Common, args: &StoreArgs) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let tokens = rt.block_on(common.tokens(common.accounts)).expect("accounts");
    let api = Api::new(common.addr);
    let info = rt.block_on(api.ok("GET", "/canvas", None, None)).expect("canvas info");
    let canvas = Canvas::new(info["width"].as_u64().unwrap_or(1), info["height"].as_u64().unwrap_or(1));
    let stamp = now_us();
    let (talk, library) = rt
        .block_on(async {
            let talk = api.create_room(&tokens[0], &format!("store-acks-{stamp}")).await?;
            let library = api.create_room(&tokens[0], &format!("store-history-{stamp}")).await?;
            Ok::<_, ClientError>((talk, library))
        })
        .expect("rooms");
    drop(rt);
    let ctx = Arc::new(Ctx { common: common.clone(), args: args.clone(), tokens, canvas });
    // Painters of the paint phases paint past the inspected pixels, leaving their history as is.
    let paint_first = args.pixels;
    // Evaluated in this order, one phase after another.
    let phases = [
        ("room_acks", room_acks(&ctx, talk)),
        ("room_fill", fill_room(&ctx, library)),
        ("join_history", storm(&ctx, "store-join", Some(library), 0, paint_first)),
        ("pixel_fill", fill_pixels(&ctx)),
        ("inspector", inspect(&ctx)),
        ("paint_baseline", storm(&ctx, "store-paint", None, args.painters, paint_first)),
        ("paint_during_storm", storm(&ctx, "store-storm", Some(library), args.painters, paint_first)),
    ];
    let (mut errors, mut refused) = (0, 0);
    let mut record = json!({
        "scenario": "store",
        "target": common.target_name(),
        "label": common.label,
        "duration_s": args.duration,
    });
    for (name, phase) in phases {
        errors += phase["errors"].as_u64().unwrap_or(0);
        refused += phase["refused"].as_u64().unwrap_or(0);
        record[name] = phase;
    }
    merge(record, json!({ "errors": errors, "refused": refused }))
}

/// What every task of the scenario reads.
struct Ctx {
    common: Common,
    args: StoreArgs,
    tokens: Vec<String>,
    canvas: Canvas,
}

impl Ctx {
    /// Opens session `i`.
    async fn connect(&self, i: usize) -> Result<Connection, ClientError> {
        Connection::connect(self.common.addr, &self.tokens[i % self.tokens.len()], self.common.options(i)).await
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.args.duration)
    }
}

/// The canvas walked with a stride coprime to its size, so pixels `0..size` are distinct.
#[derive(Debug, Clone, Copy)]
struct Canvas {
    width: u64,
    size: u64,
    stride: u64,
}

impl Canvas {
    fn new(width: u64, height: u64) -> Self {
        let size = (width * height).max(1);
        let gcd = |mut a: u64, mut b: u64| {
            while b != 0 {
                (a, b) = (b, a % b);
            }
            a
        };
        let mut stride = (7919 % size).max(1);
        while gcd(stride, size) != 1 {
            stride += 1;
        }
        Self { width: width.max(1), size, stride }
    }

    /// The `k`-th pixel of the walk.
    fn pixel(&self, k: u64) -> (u16, u16) {
        let i = (k % self.size) * self.stride % self.size;
        ((i % self.width) as u16, (i / self.width) as u16)
    }
}

/// Counts of one task, then of a phase.
#[derive(Debug, Default)]
struct Tally {
    /// Operations answered within the phase's time.
    in_window: u64,
    /// Operations answered in all (the drain included).
    answered: u64,
    /// Operations the server refused with an error frame or status.
    refused: u64,
    /// Failed connections, transport errors and operations left unanswered.
    errors: u64,
    /// The first refusal or error, to tell why.
    first_problem: Option<String>,
    /// History entries received (joins).
    entries: u64,
    latency: Latency,
}

impl Tally {
    fn merge(&mut self, o: &Self) {
        self.in_window += o.in_window;
        self.answered += o.answered;
        self.refused += o.refused;
        self.errors += o.errors;
        self.entries += o.entries;
        self.latency.merge(&o.latency);
        if self.first_problem.is_none() {
            self.first_problem.clone_from(&o.first_problem);
        }
    }

    fn problem(&mut self, refused: bool, why: impl FnOnce() -> String) {
        if refused {
            self.refused += 1;
        } else {
            self.errors += 1;
        }
        if self.first_problem.is_none() {
            self.first_problem = Some(why());
        }
    }

    /// `{answered, per_s, latency, refused, errors, first_problem}` over `secs`.
    fn json(&self, secs: f64) -> Value {
        json!({
            "answered": self.answered,
            "per_s": round2(self.in_window as f64 / secs),
            "latency": self.latency.summary(),
            "refused": self.refused,
            "errors": self.errors,
            "first_problem": self.first_problem,
        })
    }
}

/// Lets a phase's tasks start together once connected; the first through starts the meters.
struct Start {
    progress: Arc<Progress>,
    barrier: tokio::sync::Barrier,
    meters: Mutex<Option<Meters>>,
    server_pid: Option<u32>,
}

impl Start {
    async fn go(&self) {
        if self.barrier.wait().await.is_leader()
            && let Ok(mut m) = self.meters.lock()
        {
            *m = Some(Meters::start(self.server_pid));
        }
    }

    /// Passes the start (the others wait for every task) with a failed connection's tally.
    async fn failed(&self, e: ClientError) -> Tally {
        self.go().await;
        failed("connect", Some(e))
    }
}

/// One phase's outcome: each task's tally by index, CPU meters.
struct Phase {
    tallies: Vec<(usize, Tally)>,
    meters: Value,
}

impl Phase {
    /// The merged tally of the tasks whose index `pick` accepts.
    fn sum(&self, pick: impl Fn(usize) -> bool) -> Tally {
        let mut all = Tally::default();
        for (_, t) in self.tallies.iter().filter(|(i, _)| pick(*i)) {
            all.merge(t);
        }
        all
    }
}

/// Runs `tasks` tasks `f(ctx, i, start)` spread over the client threads; each must call
/// `start.go()` once, after connecting.
fn phase<F, Fut>(ctx: &Arc<Ctx>, name: &'static str, tasks: usize, f: F) -> Phase
where
    F: Fn(Arc<Ctx>, usize, Arc<Start>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Tally> + 'static,
{
    let progress = Arc::new(Progress::default());
    progress.spawn(name, ctx.common.server_pid);
    let start = Arc::new(Start {
        progress: progress.clone(),
        barrier: tokio::sync::Barrier::new(tasks),
        meters: Mutex::new(None),
        server_pid: ctx.common.server_pid,
    });
    let workers = ctx.common.workers.max(1);
    let (f, ctx2, start2) = (Arc::new(f), ctx.clone(), start.clone());
    let tallies = run_workers(workers, move |w| {
        let (f, ctx, start) = (f.clone(), ctx2.clone(), start2.clone());
        async move {
            let handles: Vec<_> = (w..tasks)
                .step_by(workers)
                .map(|i| (i, tokio::task::spawn_local(f(ctx.clone(), i, start.clone()))))
                .collect();
            let mut out = Vec::new();
            for (i, h) in handles {
                out.push((i, h.await.unwrap_or_else(|_| Tally { errors: 1, ..Default::default() })));
            }
            out
        }
    });
    progress.finish();
    let meters = start.meters.lock().ok().and_then(|mut m| m.take()).map_or(json!({}), |m| m.json());
    Phase { tallies: tallies.into_iter().flatten().collect(), meters }
}

/// Phase 1: senders keep a window of messages in flight for the duration.
fn room_acks(ctx: &Arc<Ctx>, room: u32) -> Value {
    let p = phase(ctx, "store-acks", ctx.args.senders, move |ctx, i, start| async move {
        let conn = joined(&ctx, i, room).await;
        start.go().await;
        let conn = match conn {
            Ok(c) => c,
            Err(t) => return t,
        };
        let until = Instant::now() + ctx.duration();
        let window = usize::from(ctx.args.window);
        windowed(conn, Op::Say { room }, &ctx, window, until, u64::MAX, &start.progress).await
    });
    let t = p.sum(|_| true);
    let r = json!({ "senders": ctx.args.senders, "window": ctx.args.window, "acks": t.json(ctx.args.duration) });
    merge(merge(r, tally_counts(&t)), p.meters)
}

/// Fills the history room with `history` messages from `senders` sessions.
fn fill_room(ctx: &Arc<Ctx>, room: u32) -> Value {
    let at = std::time::Instant::now();
    let senders = ctx.args.senders.max(1);
    let p = phase(ctx, "store-fill", senders, move |ctx, i, start| async move {
        let conn = joined(&ctx, i, room).await;
        start.go().await;
        let conn = match conn {
            Ok(c) => c,
            Err(t) => return t,
        };
        let count = share(ctx.args.history, senders, i);
        let window = usize::from(ctx.args.window);
        windowed(conn, Op::Say { room }, &ctx, window, Instant::now() + FILL_LIMIT, count, &start.progress).await
    });
    let t = p.sum(|_| true);
    let r = json!({ "messages": t.answered, "seconds": round2(at.elapsed().as_secs_f64()) });
    merge(r, tally_counts(&t))
}

/// Paints `pixels` distinct pixels from `painters` sessions.
fn fill_pixels(ctx: &Arc<Ctx>) -> Value {
    let at = std::time::Instant::now();
    let painters = ctx.args.painters.max(1);
    let p = phase(ctx, "store-pixels", painters, move |ctx, i, start| async move {
        let conn = match ctx.connect(i).await {
            Ok(c) => c,
            Err(e) => return start.failed(e).await,
        };
        start.go().await;
        let (first, count) = (share_start(ctx.args.pixels, painters, i), share(ctx.args.pixels, painters, i));
        let until = Instant::now() + FILL_LIMIT;
        windowed(conn, Op::Paint { first }, &ctx, SERVER_WINDOW_MAX / 4, until, count, &start.progress).await
    });
    let t = p.sum(|_| true);
    let r = json!({ "pixels": t.answered, "seconds": round2(at.elapsed().as_secs_f64()) });
    merge(r, tally_counts(&t))
}

/// Phases 2 and 4: `joiners` sessions join, read the page, leave (when `room` is given),
/// while `painters` sessions paint at the offered rate (from pixel `first` on). Tasks
/// `0..painters` paint, the rest join.
fn storm(ctx: &Arc<Ctx>, name: &'static str, room: Option<u32>, painters: usize, first: u64) -> Value {
    let joiners = if room.is_some() { ctx.args.joiners } else { 0 };
    let p = phase(ctx, name, painters + joiners, move |ctx, i, start| async move {
        let conn = match ctx.connect(i).await {
            Ok(c) => c,
            Err(e) => return start.failed(e).await,
        };
        start.go().await;
        let until = Instant::now() + ctx.duration();
        match room {
            Some(room) if i >= painters => joiner(conn, room, until, &start.progress).await,
            _ => {
                let rate = ctx.args.paint_rate / painters.max(1) as f64;
                // Each painter walks its own stretch of the canvas.
                let first = first + (i as u64) * (1 << 20);
                paced(conn, ctx.canvas, first, rate, until, &start.progress).await
            }
        }
    });
    let secs = ctx.args.duration;
    let (paints, joins) = (p.sum(|i| i < painters), p.sum(|i| i >= painters));
    let mut r = json!({});
    if painters > 0 {
        r["painters"] = json!(painters);
        r["offered_per_s"] = json!(ctx.args.paint_rate);
        r["paint_to_ack"] = paints.json(secs);
    }
    if joiners > 0 {
        r["joiners"] = json!(joiners);
        r["history_messages"] = json!(ctx.args.history);
        r["join_to_history"] = joins.json(secs);
        r["history_entries_per_join"] = json!(round2(joins.entries as f64 / joins.answered.max(1) as f64));
    }
    let mut all = paints;
    all.merge(&joins);
    merge(merge(r, tally_counts(&all)), p.meters)
}

/// Phase 3: inspector clients read the painted pixels for the duration.
fn inspect(ctx: &Arc<Ctx>) -> Value {
    let clients = ctx.args.inspectors;
    let p = phase(ctx, "store-inspect", clients, move |ctx, i, start| async move {
        let first = share_start(ctx.args.pixels, clients.max(1), i);
        inspector(&ctx, i, first, start).await
    });
    let t = p.sum(|_| true);
    let r = json!({ "clients": clients, "pixels": ctx.args.pixels, "requests": t.json(ctx.args.duration) });
    merge(merge(r, tally_counts(&t)), p.meters)
}

/// `{refused, errors}` of a tally, which the record sums over phases.
fn tally_counts(t: &Tally) -> Value {
    json!({ "refused": t.refused, "errors": t.errors })
}

/// A tally of one failed step.
fn failed(what: &str, e: Option<ClientError>) -> Tally {
    let mut t = Tally::default();
    t.problem(false, || format!("{what}: {}", e.map_or_else(String::new, |e| e.to_string())));
    t
}

/// Task `i`'s part of `total` split over `n`.
fn share(total: u64, n: usize, i: usize) -> u64 {
    let n = n.max(1) as u64;
    total / n + u64::from((i as u64) < total % n)
}

/// Where task `i`'s part of `total` split over `n` starts.
fn share_start(total: u64, n: usize, i: usize) -> u64 {
    (0..i).map(|j| share(total, n, j)).sum()
}

/// Session `i` joined to `room` (its page read and dropped).
async fn joined(ctx: &Ctx, i: usize, room: u32) -> Result<Connection, Tally> {
    let mut conn = ctx.connect(i).await.map_err(|e| failed("connect", Some(e)))?;
    let req = conn.join(room).await.map_err(|e| failed("join", Some(e)))?;
    match reply(&mut conn, Want::Page { req, room }).await {
        Ok(Reply::Done(_)) => Ok(conn),
        Ok(Reply::Refused(why)) => {
            let mut t = Tally::default();
            t.problem(true, || format!("join refused: {why}"));
            Err(t)
        }
        Err(e) => Err(failed("join", Some(e))),
    }
}

/// A request a windowed or paced client sends.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// Post to a room.
    Say { room: u32 },
    /// Paint the walk's pixels from `first` on.
    Paint { first: u64 },
}

impl Op {
    /// Sends the `n`-th request; returns its id.
    async fn issue(self, conn: &mut Connection, canvas: Canvas, n: u64) -> Result<u32, ClientError> {
        match self {
            Self::Say { room } => {
                let text = format!("store bench message {n:08}: the quick brown fox jumps over the lazy dog");
                conn.say(room, &text).await
            }
            Self::Paint { first } => {
                let (x, y) = canvas.pixel(first + n);
                conn.paint(x, y, (n % 15 + 1) as u8).await
            }
        }
    }
}

/// Requests sent and not yet answered: id → sent at (µs).
#[derive(Debug, Default)]
struct Pending(HashMap<u32, u64>);

impl Pending {
    /// Books an answer (ack or refusal) found in `f`.
    fn answer(&mut self, f: &ServerFrame<'_>, t: &mut Tally, until: Instant, progress: &Progress) {
        match f {
            ServerFrame::Ack(a) => {
                if let Some(sent) = self.0.remove(&a.req) {
                    t.latency.record(now_us().saturating_sub(sent));
                    t.answered += 1;
                    t.in_window += u64::from(Instant::now() < until);
                    progress.done.fetch_add(1, Ordering::Relaxed);
                }
            }
            ServerFrame::Error(e) if self.0.remove(&e.req).is_some() => {
                t.problem(true, || format!("{:?}: {}", e.code, e.message));
            }
            _ => {}
        }
    }

    /// Counts what is still unanswered as errors.
    fn give_up(&mut self, t: &mut Tally) {
        let n = self.0.len();
        for _ in 0..n {
            t.problem(false, || format!("{n} requests unanswered {DRAIN:?} after the end"));
        }
        self.0.clear();
    }
}

/// Keeps `window` requests in flight until `until` or `count` sent, then waits (at most
/// [`DRAIN`]) for the answers still out.
async fn windowed(
    mut conn: Connection,
    op: Op,
    ctx: &Ctx,
    window: usize,
    until: Instant,
    count: u64,
    progress: &Progress,
) -> Tally {
    let mut t = Tally::default();
    let mut pending = Pending::default();
    let mut sent = 0;
    let give_up_at = until + DRAIN;
    loop {
        while pending.0.len() < window && sent < count && Instant::now() < until {
            match op.issue(&mut conn, ctx.canvas, sent).await {
                Ok(req) => {
                    pending.0.insert(req, now_us());
                    sent += 1;
                    progress.sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return merged(t, failed("send", Some(e))),
            }
        }
        if pending.0.is_empty() {
            break;
        }
        tokio::select! {
            r = conn.recv_frames(|f| pending.answer(f, &mut t, until, progress)) => {
                if let Err(e) = r {
                    t.merge(&failed("receive", Some(e)));
                    return t;
                }
            }
            () = tokio::time::sleep_until(give_up_at) => {
                pending.give_up(&mut t);
                break;
            }
        }
    }
    let _ = conn.close().await;
    t
}

/// Sends at `rate` per second until `until`, then waits (at most [`DRAIN`]) for the answers
/// still out.
async fn paced(
    mut conn: Connection,
    canvas: Canvas,
    first: u64,
    rate: f64,
    until: Instant,
    progress: &Progress,
) -> Tally {
    let mut t = Tally::default();
    let mut pending = Pending::default();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.001)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let op = Op::Paint { first };
    let mut sent = 0;
    loop {
        let sending = Instant::now() < until;
        if !sending && pending.0.is_empty() {
            break;
        }
        tokio::select! {
            _ = ticker.tick(), if sending => {
                match op.issue(&mut conn, canvas, sent).await {
                    Ok(req) => {
                        pending.0.insert(req, now_us());
                        sent += 1;
                        progress.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => return merged(t, failed("paint", Some(e))),
                }
            }
            r = conn.recv_frames(|f| pending.answer(f, &mut t, until, progress)) => {
                if let Err(e) = r {
                    t.merge(&failed("receive", Some(e)));
                    return t;
                }
            }
            () = tokio::time::sleep_until(until), if sending => {}
            () = tokio::time::sleep_until(until + DRAIN), if !sending => {
                pending.give_up(&mut t);
                break;
            }
        }
    }
    let _ = conn.close().await;
    t
}

/// Joins `room`, waits for the join's history page, leaves, waits for the ack, until `until`.
async fn joiner(mut conn: Connection, room: u32, until: Instant, progress: &Progress) -> Tally {
    let mut t = Tally::default();
    while Instant::now() < until {
        let sent = now_us();
        let page = match conn.join(room).await {
            Ok(req) => reply(&mut conn, Want::Page { req, room }).await,
            Err(e) => Err(e),
        };
        match page {
            Ok(Reply::Done(entries)) => {
                t.entries += entries;
                t.latency.record(now_us().saturating_sub(sent));
                t.answered += 1;
                t.in_window += u64::from(Instant::now() < until);
                progress.done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Reply::Refused(why)) => {
                t.problem(true, || format!("join refused: {why}"));
                tokio::time::sleep(REFUSED_PAUSE).await;
                continue;
            }
            Err(e) => return merged(t, failed("join", Some(e))),
        }
        let left = match conn.leave(room).await {
            Ok(req) => reply(&mut conn, Want::Ack(req)).await,
            Err(e) => Err(e),
        };
        match left {
            Ok(Reply::Done(_)) => {}
            Ok(Reply::Refused(why)) => t.problem(true, || format!("leave refused: {why}")),
            Err(e) => return merged(t, failed("leave", Some(e))),
        }
    }
    let _ = conn.close().await;
    t
}

fn merged(mut a: Tally, b: Tally) -> Tally {
    a.merge(&b);
    a
}

/// The answer [`reply`] waits for.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// The ack of this request.
    Ack(u32),
    /// The history page of the join `req` of `room`.
    Page { req: u32, room: u32 },
}

/// What came back.
#[derive(Debug)]
enum Reply {
    /// The ack, or the page with this many entries.
    Done(u64),
    Refused(String),
}

/// Reads until the answer `want` (or an error frame for its request) arrives; other frames
/// are dropped.
async fn reply(conn: &mut Connection, want: Want) -> Result<Reply, ClientError> {
    let req = match want {
        Want::Ack(req) | Want::Page { req, .. } => req,
    };
    let wait = async {
        loop {
            let mut got = None;
            conn.recv_frames(|f| match (f, want) {
                (ServerFrame::Ack(a), Want::Ack(r)) if a.req == r => got = Some(Reply::Done(0)),
                // The join's page carries the join's id (0 in older servers).
                (ServerFrame::HistoryPage(p), Want::Page { req, room })
                    if p.req == req || (p.req == 0 && p.conv == room) =>
                {
                    got = Some(Reply::Done(p.entries.len() as u64));
                }
                (ServerFrame::Error(e), _) if e.req == req => {
                    got = Some(Reply::Refused(format!("{:?}: {}", e.code, e.message)));
                }
                _ => {}
            })
            .await?;
            if let Some(r) = got {
                return Ok(r);
            }
        }
    };
    tokio::time::timeout(REPLY_TIMEOUT, wait).await.map_err(|_| ClientError::Timeout)?
}

/// An inspector client: `GET /canvas/pixel` over one keep-alive connection, walking the
/// painted pixels from `first` on, until the phase's time is up.
async fn inspector(ctx: &Ctx, i: usize, first: u64, start: Arc<Start>) -> Tally {
    let connected = async {
        let stream = crate::client::tcp_from(ctx.common.addr, ctx.common.source(i)).await?;
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))
    };
    let connected = connected.await;
    start.go().await;
    let (mut sender, conn) = match connected {
        Ok(c) => c,
        Err(e) => return failed("connect", Some(e)),
    };
    tokio::task::spawn_local(conn);
    let mut t = Tally::default();
    let until = Instant::now() + ctx.duration();
    let auth = format!("Bearer {}", ctx.tokens[i % ctx.tokens.len()]);
    let pixels = ctx.args.pixels.max(1);
    let mut n = 0;
    while Instant::now() < until {
        let (x, y) = ctx.canvas.pixel((first + n) % pixels);
        n += 1;
        let req = hyper::Request::get(format!("/canvas/pixel?x={x}&y={y}"))
            .header("host", ctx.common.addr.to_string())
            .header("authorization", &auth)
            .body(Empty::new());
        let Ok(req) = req else { return merged(t, failed("request", None)) };
        let sent = std::time::Instant::now();
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => return merged(t, failed("request", Some(ClientError::Http(e.to_string())))),
        };
        let status = resp.status().as_u16();
        let body = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return merged(t, failed("response", Some(ClientError::Http(e.to_string())))),
        };
        if status == 200 {
            t.latency.record(sent.elapsed().as_micros() as u64);
            t.answered += 1;
            t.in_window += u64::from(Instant::now() < until);
            start.progress.done.fetch_add(1, Ordering::Relaxed);
        } else {
            t.problem(true, || format!("status {status}: {}", String::from_utf8_lossy(&body)));
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_visits_distinct_pixels() {
        let c = Canvas::new(64, 32);
        let mut seen: Vec<_> = (0..64 * 32).map(|k| c.pixel(k)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 64 * 32);
    }

    #[test]
    fn shares_cover_the_total() {
        for (total, n) in [(2000, 8), (7, 3), (0, 4), (5, 1)] {
            let sum: u64 = (0..n).map(|i| share(total, n, i)).sum();
            assert_eq!(sum, total);
            assert_eq!(share_start(total, n, n - 1) + share(total, n, n - 1), total);
        }
    }
}
