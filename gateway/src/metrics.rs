//! The metrics registry: every series `GET /metrics` exports, named, typed and encoded in the
//! Prometheus text format (0.0.4) with `prometheus-client`. The admin routes (`admin`) only
//! serve what [`Metrics::encode`] renders.
//!
//! Names carry their unit (`_seconds`, `_bytes`) and counters end in `_total` (the encoder adds
//! it); everything is prefixed `pixelparty_`. Sources:
//! - the gateway's own counters ([`Metrics`]' fields), registered as they are;
//! - the store's fsync histogram, registered as it is (only the writer thread observes it);
//! - collectors read at each scrape: the engine's per-shard counters (labelled `shard`) and
//!   histograms (kept per shard in atomics so that no shard takes a lock, merged here), shard
//!   inboxes, the store's gauges, connections, and HTTP latency per route.
//!
//! What is not here: the routes that serve it, and the numbers themselves (the engine and
//! the store record those).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pixelparty_engine::Shared;
use pixelparty_engine::metrics::{Histogram, HistogramSnapshot, ShardMetrics};
use pixelparty_storage::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::snapshot_http::SnapshotCache;

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds (inclusive, microseconds) of the HTTP latency buckets, 0.5 ms to 10 s.
const HTTP_US_BOUNDS: &[u64] = &[
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];

/// The label of the login counter.
type Outcome = [(&'static str, &'static str); 1];

/// The gateway's counters, and the registry that exports them with everything else.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http: Arc<HttpLatency>,
    /// HTTP responses with status >= 500.
    pub http_errors: Counter,
    /// Successful logins.
    pub logins_ok: Counter,
    /// Logins refused for bad credentials.
    pub logins_failed: Counter,
    /// Logins refused by a rate limit.
    pub logins_limited: Counter,
    /// Logins refused by a ban.
    pub logins_banned: Counter,
    /// Sign-ups.
    pub signups: Counter,
    /// WebSocket and WebTransport sessions opened.
    pub ws_opened: Counter,
    /// WebSocket and WebTransport sessions refused (auth, origin, ban, capacity).
    pub ws_refused: Counter,
    /// Connections refused at accept by an address ban.
    pub accept_banned: Counter,
    /// Connections refused at accept because the process was full.
    pub accept_full: Counter,
    /// Connections refused at accept because their address had too many open.
    pub accept_per_ip: Counter,
    /// Sessions ended because the peer stopped reading: a write (WebSocket) or stream write
    /// (WebTransport) did not complete within `server.write_timeout_ms`.
    pub write_timeouts: Counter,
}

/// What the collectors read at each scrape.
#[derive(Debug)]
pub struct Sources {
    /// The engine's shared state (per-shard metrics, inboxes).
    pub engine: Arc<Shared>,
    /// The store (writer statistics, queue, pixel index, poisoning).
    pub store: Store,
    /// The snapshot cache (its version).
    pub snapshots: Arc<SnapshotCache>,
    /// Open client connections.
    pub connections: Arc<AtomicUsize>,
    /// Live visitor sessions.
    pub visitors: Arc<AtomicUsize>,
    /// Who is online.
    pub online: Arc<crate::online::Online>,
    /// Cluster mode: the link (its counters), once set.
    pub cluster: Arc<std::sync::OnceLock<Arc<crate::cluster::Cluster>>>,
    /// Backups (their counters).
    pub backups: Arc<crate::backup::Backups>,
}

impl Metrics {
    /// The registry over the gateway's counters and `sources`.
    pub fn new(sources: Sources) -> Self {
        let mut registry = Registry::with_prefix("pixelparty");
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let logins = Family::<Outcome, Counter>::default();
        registry.register("logins", "Login attempts by outcome", logins.clone());
        // Handles to the family's four counters, made once: counting takes no family lock.
        let outcome = |o: &'static str| logins.get_or_create(&[("outcome", o)]).clone();
        let mut metrics = Self {
            http: Arc::new(HttpLatency::new()),
            http_errors: counter(&mut registry, "http_errors", "HTTP responses with a status of 500 or more"),
            logins_ok: outcome("ok"),
            logins_failed: outcome("failed"),
            logins_limited: outcome("limited"),
            logins_banned: outcome("banned"),
            signups: counter(&mut registry, "signups", "Accounts created"),
            ws_opened: counter(&mut registry, "ws_opened", "WebSocket and WebTransport sessions opened"),
            ws_refused: counter(
                &mut registry,
                "ws_refused",
                "WebSocket upgrades and WebTransport sessions refused (auth, origin, ban, capacity)",
            ),
            accept_banned: counter(&mut registry, "accept_banned", "Connections refused at accept by an address ban"),
            accept_full: counter(
                &mut registry,
                "accept_full",
                "Connections refused at accept because the process was full (server.max_connections)",
            ),
            accept_per_ip: counter(
                &mut registry,
                "accept_per_ip",
                "Connections refused at accept because their address had too many open",
            ),
            write_timeouts: counter(
                &mut registry,
                "write_timeouts",
                "Sessions ended because a write waited longer than server.write_timeout_ms",
            ),
            registry,
        };
        if let Some(fjall) = sources.store.fjall() {
            metrics.registry.register_with_unit(
                "storage_fsync_duration",
                "Duration of each fsync of the store's journal",
                Unit::Seconds,
                fjall.writer_stats().fsync_seconds.clone(),
            );
        }
        metrics.registry.register_collector(Box::new(HttpCollector(metrics.http.clone())));
        metrics.registry.register_collector(Box::new(EngineCollector(sources.engine)));
        metrics.registry.register_collector(Box::new(ProcessCollector {
            store: sources.store,
            snapshots: sources.snapshots,
            connections: sources.connections,
            visitors: sources.visitors,
            online: sources.online,
        }));
        metrics.registry.register_collector(Box::new(ClusterCollector(sources.cluster)));
        metrics.registry.register_collector(Box::new(BackupCollector(sources.backups)));
        metrics
    }

    /// Records how long a request on route `route` (an index in [`crate::http::route_labels`])
    /// took to answer.
    pub fn observe_http(&self, route: usize, elapsed: Duration) {
        if let Some(h) = self.http.routes.get(route) {
            h.observe(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
        }
    }

    /// Every series in the Prometheus text format.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Latency per route, lock-free: requests are served on the shard threads.
#[derive(Debug)]
struct HttpLatency {
    routes: Vec<Histogram>,
}

impl HttpLatency {
    fn new() -> Self {
        Self { routes: crate::http::route_labels().map(|_| Histogram::new(HTTP_US_BOUNDS)).collect() }
    }
}

/// Encodes a histogram kept in whole units in the exported unit (`per_unit`: recorded units
/// per exported unit, e.g. 1000 for milliseconds to seconds; a division, so that bounds such
/// as 25 ms print as `0.025`).
fn encode_histogram(mut encoder: MetricEncoder<'_>, h: &HistogramSnapshot, per_unit: f64) -> fmt::Result {
    let buckets: Vec<(f64, u64)> =
        h.bounds.iter().map(|b| *b as f64 / per_unit).zip(h.counts.iter().copied()).collect();
    encoder.encode_histogram::<NoLabelSet>(h.sum as f64 / per_unit, h.count(), &buckets, None)
}

#[derive(Debug)]
struct HttpCollector(Arc<HttpLatency>);

impl Collector for HttpCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let mut family = encoder.encode_descriptor(
            "http_request_duration",
            "Time to answer an HTTP request of the public API, by route pattern (routes requested since start).",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for ((method, route), h) in crate::http::route_labels().zip(&self.0.routes) {
            let snap = h.snapshot();
            if snap.count() == 0 {
                continue;
            }
            let labels = [("method", method), ("route", route)];
            encode_histogram(family.encode_family(&labels)?, &snap, 1e6)?;
        }
        Ok(())
    }
}

/// One of the engine's per-shard histograms, as exported (merged over shards).
struct EngineHistogram {
    name: &'static str,
    help: &'static str,
    unit: Unit,
    /// Recorded units per exported unit.
    per_unit: f64,
    pick: fn(&ShardMetrics) -> &Histogram,
}

const ENGINE_HISTOGRAMS: [EngineHistogram; 3] = [
    EngineHistogram {
        name: "paint_ack_duration",
        help: "Time from a paint reaching its session's shard to its acknowledgement being queued (accepted paints; millisecond resolution).",
        unit: Unit::Seconds,
        per_unit: 1e3,
        pick: |m| &m.paint_ack_ms,
    },
    EngineHistogram {
        name: "storage_batch_duration",
        help: "Time from a tick's batch going to the store to the shard learning it is durable or failed (millisecond resolution).",
        unit: Unit::Seconds,
        per_unit: 1e3,
        pick: |m| &m.storage_batch_ms,
    },
    EngineHistogram {
        name: "delivery_queue",
        help: "Bytes queued towards each session, sampled once a second per session.",
        unit: Unit::Bytes,
        per_unit: 1.0,
        pick: |m| &m.delivery_queue_bytes,
    },
];

/// The engine's per-shard counters and histograms, and its shard inboxes.
#[derive(Debug)]
struct EngineCollector(Arc<Shared>);

impl EngineCollector {
    fn merged(&self, pick: impl Fn(&ShardMetrics) -> &Histogram) -> Option<HistogramSnapshot> {
        let mut shards = self.0.metrics.iter().map(|m| pick(m).snapshot());
        let mut merged = shards.next()?;
        for s in shards {
            merged.merge(&s);
        }
        Some(merged)
    }

    fn per_shard(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        metric_type: MetricType,
        value: impl Fn(usize) -> u64,
    ) -> fmt::Result {
        let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
        for shard in 0..self.0.config.shards {
            let label = shard.to_string();
            let labels = [("shard", label.as_str())];
            let e = family.encode_family(&labels)?;
            match metric_type {
                MetricType::Counter => ConstCounter::new(value(shard)).encode(e)?,
                _ => ConstGauge::new(value(shard)).encode(e)?,
            }
        }
        Ok(())
    }
}

impl Collector for EngineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let shared = &self.0;
        let counters: Vec<Vec<(&'static str, &'static str, u64)>> =
            shared.metrics.iter().map(|m| m.counters()).collect();
        if let Some(first) = counters.first() {
            for (i, (name, help, _)) in first.iter().enumerate() {
                self.per_shard(&mut encoder, name, help, MetricType::Counter, |s| counters[s][i].2)?;
            }
        }
        self.per_shard(&mut encoder, "sessions", "Sessions open.", MetricType::Gauge, |s| {
            shared.metrics[s].sessions_open()
        })?;
        self.per_shard(
            &mut encoder,
            "inbox_depth",
            "Messages waiting in the shard's inbox.",
            MetricType::Gauge,
            |s| shared.mesh.queued(s) as u64,
        )?;
        self.per_shard(
            &mut encoder,
            "shard_stalls",
            "Times the shard did not come round its loop within the stall threshold while work waited.",
            MetricType::Counter,
            |s| shared.mesh.inbox(s).stalls.load(Ordering::Relaxed),
        )?;
        self.per_shard(
            &mut encoder,
            "inbox_dropped",
            "Live deliveries dropped because the shard's inbox was full.",
            MetricType::Counter,
            |s| shared.mesh.inbox(s).dropped.load(Ordering::Relaxed),
        )?;
        for h in &ENGINE_HISTOGRAMS {
            if let Some(snap) = self.merged(h.pick) {
                let e = encoder.encode_descriptor(h.name, h.help, Some(&h.unit), MetricType::Histogram)?;
                encode_histogram(e, &snap, h.per_unit)?;
            }
        }
        Ok(())
    }
}

/// Cluster mode's counters and gauges (nothing without `[cluster]`). Per-node views come from
/// scraping each node (Prometheus's `instance` label).
#[derive(Debug)]
struct ClusterCollector(Arc<std::sync::OnceLock<Arc<crate::cluster::Cluster>>>);

impl Collector for ClusterCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let Some(c) = self.0.get() else { return Ok(()) };
        let s = &c.stats;
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let counters = [
            ("cluster_announcements_published", "Announcements this node published to the others.", n(&s.published)),
            ("cluster_announcements_received", "Announcements received from other nodes.", n(&s.received)),
            ("cluster_announcements_malformed", "Announcements that could not be read.", n(&s.malformed)),
            ("cluster_gap_fill_updates", "Canvas updates read from PostgreSQL to fill gaps.", n(&s.filled)),
            (
                "cluster_local_dropped",
                "Own announcements dropped (queue full) and read from PostgreSQL instead.",
                n(&s.dropped),
            ),
            ("cluster_redis_errors", "Redis commands that failed.", n(&s.redis_errors)),
            (
                "cluster_epochs_set",
                "Times this node set the epoch (a fresh Redis, or one that lost its data).",
                n(&s.epochs_set),
            ),
            ("cluster_controls_applied", "Control events from other nodes applied here.", n(&s.controls_applied)),
            (
                "cluster_canvas_rebuilds",
                "Times the canvas was rebuilt from snapshots (fell behind the journal).",
                n(&s.rebuilds),
            ),
        ];
        for (name, help, value) in counters {
            ConstCounter::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)?;
        }
        let gauges = [
            ("cluster_redis_ready", "1 when Redis answered within cluster.redis_timeout_ms.", u64::from(c.is_ready())),
            ("cluster_canvas_applied_seq", "Highest canvas sequence this node applied in order.", n(&s.applied)),
            ("cluster_canvas_held", "Canvas updates held back behind a gap.", n(&s.held)),
        ];
        for (name, help, value) in gauges {
            ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
        }
        Ok(())
    }
}

/// Backup counters and the last backup's facts.
#[derive(Debug)]
struct BackupCollector(Arc<crate::backup::Backups>);

impl Collector for BackupCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let s = &self.0.stats;
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let counters = [
            ("backups_completed", "Backups completed (on demand and scheduled).", n(&s.ok)),
            ("backups_failed", "Backups that failed.", n(&s.failed)),
        ];
        for (name, help, value) in counters {
            ConstCounter::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)?;
        }
        let last_ok = n(&s.last_ok_ms) as f64 / 1000.0;
        let descriptor = encoder.encode_descriptor(
            "backup_last_success_timestamp_seconds",
            "When the last complete backup was taken (Unix time; 0: none since start).",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(last_ok).encode(descriptor)?;
        let descriptor = encoder.encode_descriptor(
            "backup_last_duration_seconds",
            "How long the last complete backup took.",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(n(&s.last_duration_ms) as f64 / 1000.0).encode(descriptor)?;
        let gauges = [
            ("backup_last_bytes", "Bytes of the last complete backup.", n(&s.last_bytes)),
            (
                "backup_interval_seconds",
                "Seconds between scheduled backups (0: on demand only).",
                self.0.interval.map_or(0, |d| d.as_secs()),
            ),
        ];
        for (name, help, value) in gauges {
            ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
        }
        Ok(())
    }
}

/// Process-wide gauges and the store's writer counters.
#[derive(Debug)]
struct ProcessCollector {
    store: Store,
    snapshots: Arc<SnapshotCache>,
    connections: Arc<AtomicUsize>,
    visitors: Arc<AtomicUsize>,
    online: Arc<crate::online::Online>,
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        if let Some(w) = self.store.fjall().map(|f| f.writer_stats()) {
            let counters = [
                ("storage_jobs", "Store writer jobs committed.", w.jobs.load(Ordering::Relaxed)),
                (
                    "storage_group_commits",
                    "Store writer group commits (one fsync each in sync mode).",
                    w.groups.load(Ordering::Relaxed),
                ),
            ];
            for (name, help, value) in counters {
                ConstCounter::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)?;
            }
        }
        let mut gauges = vec![
            (
                "connections",
                "Open client connections (HTTP, WebSocket, WebTransport).",
                self.connections.load(Ordering::Relaxed) as u64,
            ),
            (
                "storage_poisoned",
                "1 when the store refuses writes after a failed write or fsync.",
                u64::from(self.store.is_poisoned()),
            ),
            ("storage_ready", "1 when the store can serve requests.", u64::from(self.store.is_ready())),
            (
                "visitor_sessions",
                "Live logged-out visitor sessions (limits.max_visitors bounds them).",
                self.visitors.load(Ordering::Relaxed) as u64,
            ),
            (
                "online_accounts",
                "Accounts with at least one live session on this node.",
                self.online.local_users() as u64,
            ),
            ("snapshot_version", "Version of the canvas snapshot served over HTTP.", self.snapshots.latest().version),
        ];
        gauges.extend(self.store.gauges());
        for (name, help, value) in gauges {
            ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
        }
        Ok(())
    }
}
