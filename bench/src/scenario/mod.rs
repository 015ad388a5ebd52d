//! Load scenarios. Each runs bounded in count and time on W client threads (one
//! current-thread runtime each), prints a progress line every second and returns one JSON
//! record with its measurements, the server's CPU and memory (when its pid is known) and the
//! client's own CPU.

pub mod chat;
pub mod idle;
pub mod login;
pub mod paint;
pub mod snapshot;
pub mod store;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::client::{Api, ClientError, ConnectOptions, TransportKind};
use crate::peers::Target;
use crate::procstat::CpuMeter;

/// Options shared by every scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Server under test.
    #[arg(long, value_enum, default_value = "pixelparty")]
    pub target: Target,
    /// Its address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Its process id, to report its CPU and memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Client threads.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Spread connections over 127.0.0.1 ..= 127.0.0.N (ephemeral ports per source).
    #[arg(long, default_value_t = 1)]
    pub sources: u8,
    /// Accounts to create for pixelparty (connections share them round-robin).
    #[arg(long, default_value_t = 4)]
    pub accounts: usize,
    /// Append the JSON result line here.
    #[arg(long, default_value = "bench/results.jsonl")]
    pub results: PathBuf,
    /// Free-form label stored with the result.
    #[arg(long, default_value = "")]
    pub label: String,
    /// Transport for pixelparty sessions: WebSocket or WebTransport.
    #[arg(long, value_enum, default_value = "ws")]
    pub transport: TransportKind,
}

impl Common {
    /// Connection options for session `i`.
    pub fn options(&self, i: usize) -> ConnectOptions {
        ConnectOptions {
            source_ip: self.source(i),
            kind: pixelparty_protocol::ClientKind::Bench,
            transport: self.transport,
            ..Default::default()
        }
    }

    /// The target's name with the transport, for reports (`pixelparty-wt`).
    pub fn target_name(&self) -> &'static str {
        match (self.target, self.transport) {
            (Target::Pixelparty, TransportKind::Wt) => "pixelparty-wt",
            (t, _) => t.name(),
        }
    }

    /// The source address for connection `i`.
    pub fn source(&self, i: usize) -> Option<IpAddr> {
        (self.sources > 1).then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % usize::from(self.sources)) as u8)))
    }

    /// Session tokens for `n` accounts (pixelparty; peers need none).
    pub async fn tokens(&self, n: usize) -> Result<Vec<String>, ClientError> {
        if self.target != Target::Pixelparty {
            return Ok(vec![String::new(); n.max(1)]);
        }
        let api = Api::new(self.addr);
        let run = now_us() % 1_000_000;
        let mut tokens = Vec::new();
        for i in 0..n.max(1) {
            let name = format!("bench{run}x{i}");
            tokens.push(api.signup(&name, "bench-password").await?.token);
        }
        Ok(tokens)
    }
}

/// Microseconds since the Unix epoch (shared by client processes on one machine).
pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Runs `f(worker)` on `n` threads, each with its own current-thread runtime, and collects
/// the results.
pub fn run_workers<F, Fut, T>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let f = Arc::new(f);
    let handles: Vec<_> = (0..n.max(1))
        .map(|w| {
            let f = f.clone();
            std::thread::Builder::new()
                .name(format!("bench-{w}"))
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                    let local = tokio::task::LocalSet::new();
                    local.block_on(&rt, f(w))
                })
                .expect("spawn worker")
        })
        .collect();
    handles.into_iter().map(|h| h.join().expect("worker panicked")).collect()
}

/// Counters the progress line shows.
#[derive(Debug, Default)]
pub struct Progress {
    /// Operations started (sent messages, paints, requests).
    pub sent: AtomicU64,
    /// Operations completed or delivered.
    pub done: AtomicU64,
    /// Errors.
    pub errors: AtomicU64,
    stop: AtomicBool,
}

impl Progress {
    /// Prints a line every second until [`Progress::finish`].
    pub fn spawn(self: &Arc<Self>, name: &'static str, server_pid: Option<u32>) {
        let me = self.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let server = CpuMeter::start(server_pid);
            let (mut last_done, mut last_at) = (0, Instant::now());
            while !me.stop.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_secs(1));
                let done = me.done.load(Ordering::Relaxed);
                let rate = (done - last_done) as f64 / last_at.elapsed().as_secs_f64();
                (last_done, last_at) = (done, Instant::now());
                let srv = server
                    .read()
                    .map_or(String::new(), |(cpu, s)| format!(" server cpu {cpu:.2} rss {} MiB", s.rss_bytes >> 20));
                eprintln!(
                    "[{name}] {:>5.1}s sent {} done {} ({:.0}/s) errors {}{srv}",
                    start.elapsed().as_secs_f64(),
                    me.sent.load(Ordering::Relaxed),
                    done,
                    rate,
                    me.errors.load(Ordering::Relaxed)
                );
            }
        });
    }

    /// Stops the progress line.
    pub fn finish(&self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Measures the server's and this process's CPU over a run.
#[derive(Debug)]
pub struct Meters {
    server: CpuMeter,
    client: CpuMeter,
    start: Instant,
}

impl Meters {
    /// Starts measuring.
    pub fn start(server_pid: Option<u32>) -> Self {
        Self { server: CpuMeter::start(server_pid), client: CpuMeter::start(None), start: Instant::now() }
    }

    /// Seconds since the start.
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// `{server_cpu, server_rss_mib, client_cpu}`.
    pub fn json(&self) -> Value {
        let (server_cpu, server_rss) = self
            .server
            .read()
            .map_or((Value::Null, Value::Null), |(c, s)| (json!(round2(c)), json!(s.rss_bytes >> 20)));
        let client_cpu = self.client.read().map_or(Value::Null, |(c, _)| json!(round2(c)));
        json!({ "server_cpu_cores": server_cpu, "server_rss_mib": server_rss, "client_cpu_cores": client_cpu })
    }
}

/// Rounds to two decimals for reports.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Merges two flat JSON objects.
pub fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}
