//! How the store is opened: where, how durable, how big its queues and caches are.

use std::path::PathBuf;
use std::time::Duration;

/// When an acknowledged write is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// A write's completion is reported only after the journal is `fdatasync`ed. Writes that
    /// arrive together share one fsync (group commit). Nothing acknowledged is lost by a
    /// process crash or a power failure.
    Sync,
    /// Writes complete once they are in the journal's OS buffers; the writer fsyncs every
    /// `interval`. A process crash loses nothing acknowledged (the OS holds the data); a power
    /// failure or kernel crash may lose up to `interval` of acknowledged writes.
    Interval(Duration),
    /// Writes complete once in the journal's OS buffers and the store never fsyncs on its own
    /// (the OS writes back when it likes). A process crash loses nothing acknowledged; a power
    /// failure may lose anything not yet written back.
    None,
}

impl Durability {
    /// Parses `sync`, `none` or `interval:<ms>` (as used by the server's config).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sync" => Some(Self::Sync),
            "none" => Some(Self::None),
            "interval" => Some(Self::Interval(Duration::from_millis(100))),
            other => {
                let ms = other.strip_prefix("interval:")?.parse().ok()?;
                Some(Self::Interval(Duration::from_millis(ms)))
            }
        }
    }
}

/// Options of [`Store::open`](crate::Store::open): the embedded store at `path`, or PostgreSQL
/// when `postgres` is set.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Directory of the database (created if missing).
    pub path: PathBuf,
    /// Durability mode.
    pub durability: Durability,
    /// Most write jobs waiting for the writer thread; beyond it `submit` answers overloaded
    /// and `run` waits.
    pub writer_queue: usize,
    /// Most write jobs one group commit takes (one fsync covers them all).
    pub group_max: usize,
    /// Block cache size in bytes.
    pub cache_bytes: u64,
    /// How long the canvas journal keeps updates already covered by tile snapshots (`None`:
    /// forever). Pixel inspector and rollback see only what the journal still holds.
    pub journal_retention: Option<Duration>,
    /// Most messages a history read examines to fill one page (bounds the work when many
    /// messages are hidden from the reader).
    pub history_scan_max: usize,
    /// Pixel updates the in-memory index tail collects before they are written into the pixel
    /// index in one ingestion (see [`index`](crate::index)); up to about three times this
    /// many are held at once (about 32 bytes each).
    pub index_tail_max: usize,
    /// The store's runtime (threads, operations in flight).
    pub runtime: crate::store::RuntimeConfig,
    /// Keep the data in PostgreSQL instead of the embedded store at `path` (`None`: fjall).
    pub postgres: Option<crate::PgConfig>,
}

impl StoreConfig {
    /// Defaults for a store at `path`: `sync` durability, 64 MiB cache, journal kept 7 days.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            durability: Durability::Sync,
            writer_queue: 4096,
            group_max: 1024,
            cache_bytes: 64 * 1024 * 1024,
            journal_retention: Some(Duration::from_secs(7 * 24 * 3600)),
            history_scan_max: 2000,
            index_tail_max: 256 * 1024,
            runtime: crate::store::RuntimeConfig::default(),
            postgres: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durability() {
        assert_eq!(Durability::parse("sync"), Some(Durability::Sync));
        assert_eq!(Durability::parse("none"), Some(Durability::None));
        assert_eq!(Durability::parse("interval:250"), Some(Durability::Interval(Duration::from_millis(250))));
        assert_eq!(Durability::parse("interval:x"), None);
        assert_eq!(Durability::parse("fast"), None);
    }
}
