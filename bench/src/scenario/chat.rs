//! `chat`: C connections in R rooms, K of them sending at a total rate; every member receives
//! every message of its room. Measures deliveries/s, send-to-receipt latency, and gaps and
//! duplicates per sender (and, for pixelparty, per room sequence): both must be zero.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Barrier;

use super::{Common, Meters, Progress, merge, now_us, round2, run_workers};
use crate::peers::{ChatClient, Target};
use crate::report::Latency;

/// Options of `chat`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChatArgs {
    /// Connections.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Rooms (connection i joins room i mod R).
    #[arg(long, default_value_t = 10)]
    pub rooms: usize,
    /// Connections that send.
    #[arg(long, default_value_t = 10)]
    pub senders: usize,
    /// Messages per second, all senders together.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Sending time in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Extra time to receive what is in flight, in seconds.
    #[arg(long, default_value_t = 2.0)]
    pub drain: f64,
    /// pixelparty room ids to use (created when absent); peers use names r0, r1, ...
    #[arg(skip)]
    pub room_ids: Vec<u32>,
}

#[derive(Debug, Default)]
struct Outcome {
    sent: u64,
    delivered: u64,
    gaps: u64,
    duplicates: u64,
    errors: u64,
    latency: Latency,
}

/// Parses a body `sender:n:ts_us`.
fn parse(body: &str) -> Option<(u32, u64, u64)> {
    let mut it = body.split(':');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Runs the scenario and returns its record.
pub fn run(common: &Common, args: &ChatArgs) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let tokens = rt.block_on(common.tokens(common.accounts)).expect("accounts");
    let mut rooms: Vec<u32> = (0..args.rooms as u32).collect();
    if common.target == Target::Pixelparty {
        let api = crate::client::Api::new(common.addr);
        rooms = rt
            .block_on(async {
                let mut ids = Vec::new();
                for r in 0..args.rooms {
                    ids.push(api.create_room(&tokens[0], &format!("bench-{}-{r}", now_us())).await?);
                }
                Ok::<_, crate::client::ClientError>(ids)
            })
            .expect("rooms");
    }
    let progress = Arc::new(Progress::default());
    progress.spawn("chat", common.server_pid);
    let barrier = Arc::new(Barrier::new(args.connections + 1));
    let (common2, args2, tokens, rooms2, progress2, barrier2) =
        (common.clone(), args.clone(), Arc::new(tokens), Arc::new(rooms.clone()), progress.clone(), barrier.clone());
    let workers = common.workers;
    let meters_cell = Arc::new(once::Cell::default());
    let meters_cell2 = meters_cell.clone();
    let outcomes = run_workers(workers + 1, move |w| {
        let (common, args, tokens, rooms, progress, barrier, meters_cell) = (
            common2.clone(),
            args2.clone(),
            tokens.clone(),
            rooms2.clone(),
            progress2.clone(),
            barrier2.clone(),
            meters_cell2.clone(),
        );
        async move {
            if w == workers {
                // The coordinator: wait for everyone to join, then start the clock.
                barrier.wait().await;
                meters_cell.set(Meters::start(common.server_pid));
                return Outcome::default();
            }
            let mut tasks = Vec::new();
            for i in (w..args.connections).step_by(workers) {
                let (common, args, tokens, rooms, progress, barrier) =
                    (common.clone(), args.clone(), tokens.clone(), rooms.clone(), progress.clone(), barrier.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    connection(i, &common, &args, &tokens, &rooms, &progress, &barrier).await
                }));
            }
            let mut total = Outcome::default();
            for t in tasks {
                let o = t.await.unwrap_or_default();
                total.sent += o.sent;
                total.delivered += o.delivered;
                total.gaps += o.gaps;
                total.duplicates += o.duplicates;
                total.errors += o.errors;
                total.latency.merge(&o.latency);
            }
            total
        }
    });
    progress.finish();
    let meters = meters_cell.take();
    let mut total = Outcome::default();
    for o in outcomes {
        total.sent += o.sent;
        total.delivered += o.delivered;
        total.gaps += o.gaps;
        total.duplicates += o.duplicates;
        total.errors += o.errors;
        total.latency.merge(&o.latency);
    }
    // Each message reaches every member of its room: connections i with i mod R == room.
    let members = |room: usize| (room..args.connections).step_by(args.rooms).count() as u64;
    let per_room_sent = |room: usize| (room..args.senders.min(args.connections)).step_by(args.rooms).count() as u64;
    let sender_count = args.senders.min(args.connections) as u64;
    let per_sender = total.sent.checked_div(sender_count).unwrap_or(0);
    let expected: u64 = (0..args.rooms).map(|r| members(r) * per_room_sent(r)).sum::<u64>() * per_sender;
    let secs = args.duration;
    let record = json!({
        "scenario": "chat",
        "target": common.target_name(),
        "label": common.label,
        "connections": args.connections,
        "rooms": args.rooms,
        "senders": args.senders,
        "offered_msgs_per_s": args.rate,
        "sent": total.sent,
        "delivered": total.delivered,
        "expected_deliveries": expected,
        "deliveries_per_s": round2(total.delivered as f64 / secs),
        "latency": total.latency.summary(),
        "gaps": total.gaps,
        "duplicates": total.duplicates,
        "errors": total.errors,
    });
    merge(record, meters.map_or(json!({}), |m| m.json()))
}

/// A tiny once-set cell for the meters (set by the coordinator worker).
mod once {
    use std::sync::Mutex;

    #[derive(Debug, Default)]
    pub struct Cell(Mutex<Option<super::Meters>>);

    impl Cell {
        pub fn set(&self, m: super::Meters) {
            if let Ok(mut g) = self.0.lock() {
                *g = Some(m);
            }
        }
        pub fn take(&self) -> Option<super::Meters> {
            self.0.lock().ok().and_then(|mut g| g.take())
        }
    }
}

async fn connection(
    i: usize,
    common: &Common,
    args: &ChatArgs,
    tokens: &[String],
    rooms: &[u32],
    progress: &Progress,
    barrier: &Barrier,
) -> Outcome {
    let mut out = Outcome::default();
    let token = &tokens[i % tokens.len()];
    let room = rooms[i % rooms.len()];
    let mut client = match ChatClient::connect(common.target, common.addr, token, common.options(i)).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("connection {i}: {e}");
            progress.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            barrier.wait().await;
            out.errors += 1;
            return out;
        }
    };
    if let Err(e) = client.join(room).await {
        eprintln!("connection {i}: join: {e}");
        out.errors += 1;
    }
    barrier.wait().await;
    let start = tokio::time::Instant::now();
    let send_until = start + Duration::from_secs_f64(args.duration);
    let recv_until = send_until + Duration::from_secs_f64(args.drain);
    let is_sender = i < args.senders;
    let per_sender = args.rate / args.senders.max(1) as f64;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sender.max(0.001)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_from: HashMap<u32, u64> = HashMap::new();
    let mut last_room_seq: u64 = 0;
    let mut n = 0u64;
    let mut body = String::new();
    loop {
        let now = tokio::time::Instant::now();
        if now >= recv_until {
            break;
        }
        tokio::select! {
            _ = ticker.tick(), if is_sender && now < send_until => {
                body.clear();
                use std::fmt::Write;
                let _ = write!(body, "{i}:{n}:{}", now_us());
                if client.send(room, &body).await.is_err() {
                    out.errors += 1;
                    break;
                }
                n += 1;
                out.sent += 1;
                progress.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            r = client.recv(|m| {
                let Some((from, k, ts)) = parse(m.body) else { return };
                out.latency.record(now_us().saturating_sub(ts));
                out.delivered += 1;
                match last_from.get(&from) {
                    Some(prev) if k <= *prev => out.duplicates += 1,
                    Some(prev) if k > *prev + 1 => out.gaps += k - prev - 1,
                    None if k > 0 => out.gaps += k,
                    _ => {}
                }
                last_from.insert(from, k.max(last_from.get(&from).copied().unwrap_or(0)));
                if m.seq != 0 {
                    if last_room_seq != 0 && m.seq != last_room_seq + 1 {
                        if m.seq <= last_room_seq { out.duplicates += 1 } else { out.gaps += m.seq - last_room_seq - 1 }
                    }
                    last_room_seq = last_room_seq.max(m.seq);
                }
            }) => {
                match r {
                    Ok(k) => { progress.done.fetch_add(k as u64, std::sync::atomic::Ordering::Relaxed); }
                    Err(_) => { out.errors += 1; break; }
                }
            }
            () = tokio::time::sleep_until(recv_until) => break,
        }
    }
    client.close().await;
    out
}
