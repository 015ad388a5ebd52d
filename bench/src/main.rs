//! `pixelparty-bench`: load scenarios against pixelparty and its peers. Each scenario is
//! bounded in count and time, prints a progress line every second, a summary at the end, and
//! appends one JSON line to the results file (`--results`).

use clap::{Parser, Subcommand};
use pixelparty_bench::report;
use pixelparty_bench::scenario::chat::{self, ChatArgs};
use pixelparty_bench::scenario::idle::{self, IdleArgs};
use pixelparty_bench::scenario::login::{self, LoginArgs};
use pixelparty_bench::scenario::paint::{self, PaintArgs};
use pixelparty_bench::scenario::snapshot::{self, SnapshotArgs};
use pixelparty_bench::scenario::store::{self, StoreArgs};
use pixelparty_bench::scenario::{Common, merge};
use serde_json::{Value, json};

/// Load scenarios for pixelparty and its peers (socket.io, ws).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Open N connections and hold them: connect rate, server memory per idle connection.
    Idle(IdleArgs),
    /// Painters and subscribers (pixelparty): accepted paints/s, deliveries/s, latency, convergence.
    Paint(PaintArgs),
    /// Rooms with senders: deliveries/s, latency, gaps and duplicates.
    Chat(ChatArgs),
    /// Concurrent snapshot downloads: requests/s and latency.
    Snapshot(SnapshotArgs),
    /// Sign-ups and log-ins (argon2id) while a probe pings: throughput, latency, responsiveness.
    Login(LoginArgs),
    /// What depends on the storage backend (pixelparty): room acks/s, join-with-history,
    /// pixel inspector, paint-to-ack during a join storm.
    Store(StoreArgs),
    /// Raise the chat rate step by step until p99 latency passes a bound; report the highest
    /// rate sustained.
    Sat(SatArgs),
    /// Serve the fan-out floor on `--addr` (for `paint --target floor`): the same pre-encoded
    /// message written to every subscriber per tick, nothing else (see `bench/README.md`).
    Floor(pixelparty_bench::floor::FloorArgs),
}

#[derive(clap::Args, Debug, Clone)]
struct SatArgs {
    #[command(flatten)]
    chat: ChatArgs,
    /// p99 bound in milliseconds.
    #[arg(long, default_value_t = 50.0)]
    p99_ms: f64,
    /// Multiply the rate by this each step.
    #[arg(long, default_value_t = 1.5)]
    factor: f64,
    /// Most steps.
    #[arg(long, default_value_t = 10)]
    steps: usize,
}

fn sat(common: &Common, args: &SatArgs) -> Value {
    let mut best: Option<Value> = None;
    let mut chat = args.chat.clone();
    let mut steps = Vec::new();
    for _ in 0..args.steps {
        let r = chat::run(common, &chat);
        let p99 = r["latency"]["p99_ms"].as_f64().unwrap_or(f64::MAX);
        let delivered = r["delivered"].as_f64().unwrap_or(0.0);
        let expected = r["expected_deliveries"].as_f64().unwrap_or(0.0);
        let ok = p99 <= args.p99_ms && delivered >= 0.99 * expected && r["gaps"] == 0;
        eprintln!(
            "[sat] offered {:.0} msgs/s: {} deliveries/s, p99 {p99} ms -> {}",
            chat.rate,
            r["deliveries_per_s"],
            if ok { "sustained" } else { "over the bound" }
        );
        steps.push(json!({ "offered_msgs_per_s": chat.rate, "deliveries_per_s": r["deliveries_per_s"], "p99_ms": p99, "sustained": ok }));
        if !ok {
            break;
        }
        best = Some(r);
        chat.rate *= args.factor;
    }
    json!({
        "scenario": "sat",
        "target": common.target_name(),
        "label": common.label,
        "p99_bound_ms": args.p99_ms,
        "best": best,
        "steps": steps,
    })
}

fn main() {
    let cli = Cli::parse();
    let c = &cli.common;
    let record = match &cli.scenario {
        Scenario::Idle(a) => idle::run(c, a),
        Scenario::Paint(a) => paint::run(c, a),
        Scenario::Chat(a) => chat::run(c, a),
        Scenario::Snapshot(a) => snapshot::run(c, a),
        Scenario::Login(a) => login::run(c, a),
        Scenario::Store(a) => store::run(c, a),
        Scenario::Sat(a) => sat(c, a),
        Scenario::Floor(a) => {
            if let Err(e) = pixelparty_bench::floor::serve(c.addr, a) {
                eprintln!("floor: {e}");
                std::process::exit(1);
            }
            return;
        }
    };
    let record = merge(json!({ "time_ms": pixelparty_bench::scenario::now_us() / 1000 }), record);
    report::print_human(record["scenario"].as_str().unwrap_or("result"), &record);
    if let Err(e) = report::append(&c.results, &record) {
        eprintln!("writing {}: {e}", c.results.display());
    }
}
