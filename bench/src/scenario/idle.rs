//! `idle`: open N connections, hold them, report the connect rate and the server's memory per
//! idle connection (its RSS growth divided by N).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Common, Meters, Progress, merge, round2, run_workers};
use crate::peers::ChatClient;
use crate::procstat;

/// Options of `idle`.
#[derive(Debug, Clone, clap::Args)]
pub struct IdleArgs {
    /// Connections to open.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Seconds to hold them once all are open.
    #[arg(long, default_value_t = 5.0)]
    pub hold: f64,
    /// Connections opening at once per worker.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

/// Runs the scenario and returns its record.
pub fn run(common: &Common, args: &IdleArgs) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let tokens = Arc::new(rt.block_on(common.tokens(common.accounts)).expect("accounts"));
    // Settle the server before the baseline.
    std::thread::sleep(Duration::from_millis(500));
    let before = common.server_pid.and_then(|p| procstat::sample(Some(p)));
    let progress = Arc::new(Progress::default());
    progress.spawn("idle", common.server_pid);
    let meters = Meters::start(common.server_pid);
    let opened = Arc::new(AtomicU64::new(0));
    let all_open = Arc::new(tokio::sync::Barrier::new(common.workers.max(1)));
    let rss_at_hold = Arc::new(AtomicU64::new(0));
    let connect_secs = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let (c2, a2, t2, p2, o2, b2, r2, s2) = (
        common.clone(),
        args.clone(),
        tokens.clone(),
        progress.clone(),
        opened.clone(),
        all_open.clone(),
        rss_at_hold.clone(),
        connect_secs.clone(),
    );
    let errors: Vec<u64> = run_workers(common.workers, move |w| {
        let (common, args, tokens, progress, opened, all_open, rss_at_hold, connect_secs) =
            (c2.clone(), a2.clone(), t2.clone(), p2.clone(), o2.clone(), b2.clone(), r2.clone(), s2.clone());
        async move {
            let mut conns = Vec::new();
            let mut errors = 0u64;
            let mine: Vec<usize> = (w..args.connections).step_by(common.workers.max(1)).collect();
            for chunk in mine.chunks(args.concurrency.max(1)) {
                let futs = chunk.iter().map(|&i| {
                    let token = tokens[i % tokens.len()].clone();
                    let common = common.clone();
                    async move { ChatClient::connect(common.target, common.addr, &token, common.options(i)).await }
                });
                for r in futures_util::future::join_all(futs).await {
                    match r {
                        Ok(c) => {
                            conns.push(c);
                            opened.fetch_add(1, Ordering::Relaxed);
                            progress.done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            errors += 1;
                            progress.errors.fetch_add(1, Ordering::Relaxed);
                            if errors <= 3 {
                                eprintln!("connect: {e}");
                            }
                        }
                    }
                }
            }
            if all_open.wait().await.is_leader() {
                connect_secs.store(start.elapsed().as_micros() as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
                let rss = common.server_pid.and_then(|p| procstat::sample(Some(p))).map_or(0, |s| s.rss_bytes);
                rss_at_hold.store(rss, Ordering::Relaxed);
            }
            all_open.wait().await;
            futures_util::future::join_all(conns.into_iter().map(ChatClient::close)).await;
            errors
        }
    });
    progress.finish();
    let n = opened.load(Ordering::Relaxed);
    let connect_s = connect_secs.load(Ordering::Relaxed) as f64 / 1e6;
    let rss_after = rss_at_hold.load(Ordering::Relaxed);
    let per_conn =
        before.filter(|_| n > 0 && rss_after > 0).map(|b| (rss_after as f64 - b.rss_bytes as f64) / n as f64);
    let record = json!({
        "scenario": "idle",
        "target": common.target_name(),
        "label": common.label,
        "connections": n,
        "errors": errors.iter().sum::<u64>(),
        "connect_seconds": round2(connect_s),
        "connects_per_s": round2(n as f64 / connect_s.max(1e-6)),
        "server_rss_before_mib": before.map(|b| b.rss_bytes >> 20),
        "server_rss_held_mib": (rss_after > 0).then_some(rss_after >> 20),
        "server_bytes_per_idle_connection": per_conn.map(|b| b.round()),
        "projected_connections_per_gib": per_conn.filter(|b| *b > 0.0).map(|b| (1024.0 * 1024.0 * 1024.0 / b).round()),
    });
    merge(record, meters.json())
}
