//! `login`: sign-ups then log-ins at a given concurrency (argon2id on the server's hashing
//! pool), while a probe session pings every 10 ms to show the server stays responsive.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Common, Meters, Progress, merge, now_us, round2, run_workers};
use crate::client::{Api, Connection, Event};
use crate::report::Latency;

/// Options of `login`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    /// Accounts to create (and then log in).
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

/// Runs the scenario and returns its record.
pub fn run(common: &Common, args: &LoginArgs) -> Value {
    let progress = Arc::new(Progress::default());
    progress.spawn("login", common.server_pid);
    let run_id = now_us() % 1_000_000;
    let meters = Meters::start(common.server_pid);
    let (c2, a2, p2) = (common.clone(), args.clone(), progress.clone());
    let results = run_workers(2, move |w| {
        let (common, args, progress) = (c2.clone(), a2.clone(), p2.clone());
        async move {
            let api = Api::new(common.addr);
            if w == 1 {
                // The probe: ping every 10 ms while the flood runs.
                let mut probe = Latency::default();
                let Ok(acct) = api.signup(&format!("probe{run_id}"), "bench-password").await else {
                    return (Latency::default(), Latency::default(), probe, 0);
                };
                let Ok(mut conn) = Connection::connect(common.addr, &acct.token, common.options(0)).await else {
                    return (Latency::default(), Latency::default(), probe, 0);
                };
                let mut nonce = 0;
                while progress.done.load(std::sync::atomic::Ordering::Relaxed) < 2 * args.users as u64 {
                    nonce += 1;
                    let t = Instant::now();
                    if conn.ping(nonce).await.is_err() {
                        break;
                    }
                    if conn
                        .wait_for(|e| matches!(e, Event::Pong { nonce: n, .. } if *n == nonce).then_some(()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    probe.record(t.elapsed().as_micros() as u64);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                return (Latency::default(), Latency::default(), probe, 0);
            }
            let (mut signup, mut login, mut errors) = (Latency::default(), Latency::default(), 0u64);
            for phase in 0..2 {
                let names: Vec<String> = (0..args.users).map(|i| format!("u{run_id}x{i}")).collect();
                for chunk in names.chunks(args.concurrency.max(1)) {
                    let futs = chunk.iter().map(|n| {
                        let api = api.clone();
                        async move {
                            let t = Instant::now();
                            let r = if phase == 0 {
                                api.signup(n, "bench-password").await
                            } else {
                                api.login(n, "bench-password").await
                            };
                            (r.is_ok(), t.elapsed().as_micros() as u64)
                        }
                    });
                    for (ok, us) in futures_util::future::join_all(futs).await {
                        progress.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if !ok {
                            errors += 1;
                        } else if phase == 0 {
                            signup.record(us);
                        } else {
                            login.record(us);
                        }
                    }
                }
            }
            (signup, login, Latency::default(), errors)
        }
    });
    progress.finish();
    let secs = meters.elapsed();
    let (mut signup, mut login, mut probe, mut errors) =
        (Latency::default(), Latency::default(), Latency::default(), 0);
    for (s, l, p, e) in results {
        signup.merge(&s);
        login.merge(&l);
        probe.merge(&p);
        errors += e;
    }
    let record = json!({
        "scenario": "login",
        "target": common.target_name(),
        "label": common.label,
        "users": args.users,
        "concurrency": args.concurrency,
        "operations_per_s": round2((signup.count() + login.count()) as f64 / secs),
        "signup_latency": signup.summary(),
        "login_latency": login.summary(),
        "ping_during_flood": probe.summary(),
        "errors": errors,
    });
    merge(record, meters.json())
}
