//! [`PgConfig`]: how the PostgreSQL backend connects and bounds its work.

use std::time::Duration;

/// Options of [`PgStore::connect`](super::PgStore::connect).
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// Connection string (`postgres://user@host:port/db` or `host=... user=...`).
    pub url: String,
    /// Most connections the pool opens.
    pub pool_size: usize,
    /// Longest one statement may run on the server (`statement_timeout` of every connection);
    /// also how long an operation waits for a pooled connection or a new one.
    pub statement_timeout: Duration,
    /// Most messages a history read examines to fill one page (as
    /// [`StoreConfig::history_scan_max`](crate::StoreConfig)).
    pub history_scan_max: usize,
    /// How long the canvas journal keeps updates already covered by tile snapshots (`None`:
    /// forever); read by whoever schedules [`Backend::prune_journal`](crate::backend::Backend).
    pub journal_retention: Option<Duration>,
    /// Certificates (PEM) trusted for TLS besides the system's, when the connection string
    /// says `sslmode=require`.
    pub ca_file: Option<std::path::PathBuf>,
}

impl PgConfig {
    /// Defaults for the database at `url`: 16 connections, 5 s statements, the fjall store's
    /// history scan and journal retention.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 16,
            statement_timeout: Duration::from_secs(5),
            history_scan_max: 2000,
            journal_retention: Some(Duration::from_secs(7 * 24 * 3600)),
            ca_file: None,
        }
    }
}
