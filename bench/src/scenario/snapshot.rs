//! `snapshot`: concurrent clients fetching the canvas snapshot over keep-alive connections
//! (gzip accepted, as browsers do). Requests/s, bytes/s and latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use serde_json::{Value, json};

use super::{Common, Meters, Progress, merge, round2, run_workers};
use crate::report::Latency;

/// Options of `snapshot`.
#[derive(Debug, Clone, clap::Args)]
pub struct SnapshotArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
}

#[derive(Debug, Default)]
struct Outcome {
    requests: u64,
    bytes: u64,
    errors: u64,
    latency: Latency,
}

async fn client(common: &Common, i: usize, until: Instant, progress: &Progress) -> Outcome {
    let mut out = Outcome::default();
    let Ok(stream) = crate::client::tcp_from(common.addr, common.source(i)).await else {
        out.errors += 1;
        return out;
    };
    let Ok((mut sender, conn)) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(hyper_util::rt::TokioIo::new(stream)).await
    else {
        out.errors += 1;
        return out;
    };
    tokio::task::spawn_local(conn);
    while Instant::now() < until {
        let req = hyper::Request::get("/canvas/snapshot")
            .header("host", common.addr.to_string())
            .header("accept-encoding", "gzip")
            .body(Empty::new());
        let Ok(req) = req else { break };
        let t = Instant::now();
        match sender.send_request(req).await {
            Ok(resp) if resp.status() == 200 => match resp.into_body().collect().await {
                Ok(body) => {
                    out.bytes += body.to_bytes().len() as u64;
                    out.requests += 1;
                    out.latency.record(t.elapsed().as_micros() as u64);
                    progress.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(_) => out.errors += 1,
            },
            _ => {
                out.errors += 1;
                break;
            }
        }
    }
    out
}

/// Runs the scenario and returns its record.
pub fn run(common: &Common, args: &SnapshotArgs) -> Value {
    let progress = Arc::new(Progress::default());
    progress.spawn("snapshot", common.server_pid);
    let meters = Meters::start(common.server_pid);
    let until = Instant::now() + Duration::from_secs_f64(args.duration);
    let (c2, a2, p2) = (common.clone(), args.clone(), progress.clone());
    let outcomes = run_workers(common.workers, move |w| {
        let (common, args, progress) = (c2.clone(), a2.clone(), p2.clone());
        async move {
            let mut tasks = Vec::new();
            for i in (w..args.clients).step_by(common.workers.max(1)) {
                let (common, progress) = (common.clone(), progress.clone());
                tasks.push(tokio::task::spawn_local(async move { client(&common, i, until, &progress).await }));
            }
            let mut total = Outcome::default();
            for t in tasks {
                let o = t.await.unwrap_or_default();
                total.requests += o.requests;
                total.bytes += o.bytes;
                total.errors += o.errors;
                total.latency.merge(&o.latency);
            }
            total
        }
    });
    progress.finish();
    let secs = meters.elapsed();
    let mut total = Outcome::default();
    for o in outcomes {
        total.requests += o.requests;
        total.bytes += o.bytes;
        total.errors += o.errors;
        total.latency.merge(&o.latency);
    }
    let record = json!({
        "scenario": "snapshot",
        "target": common.target_name(),
        "label": common.label,
        "clients": args.clients,
        "requests": total.requests,
        "requests_per_s": round2(total.requests as f64 / secs),
        "megabytes_per_s": round2(total.bytes as f64 / secs / 1e6),
        "bytes_per_response": total.bytes.checked_div(total.requests),
        "latency": total.latency.summary(),
        "errors": total.errors,
    });
    merge(record, meters.json())
}
