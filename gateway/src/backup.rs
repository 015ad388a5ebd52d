//! Backups off the machine and restores from them: where the store's consistent export
//! ([`pixelparty_storage::backup`]) goes, how it is checked, and how a data directory is
//! rebuilt from it (`pixelparty restore`).
//!
//! A backup lives under a **location**, a local directory or S3-compatible object storage
//! (`s3://bucket/prefix`), both through the `object_store` crate:
//!
//! ```text
//! <location>/<id>/<keyspace>.rows.gz   one gzip'd row file per exported keyspace
//! <location>/<id>/manifest.json        written last: a backup without it is incomplete
//! ```
//!
//! The id is the UTC time it was taken (`20261130T235959123Z`), so ids sort by age. The
//! manifest lists every file with its size, the SHA-256 of its bytes, and the count and
//! SHA-256 of its rows. A restore checks the bytes before it reads them and the rows while it
//! reads them, then exports the restored store again and checks that every keyspace holds
//! exactly the rows of the backup. Retention keeps the newest `retain` complete backups and
//! removes the rest (incomplete ones older than the newest complete one too).
//!
//! In PostgreSQL mode a backup holds the canvas only (geometry, every tile and the sequence
//! it reflects): the rest is PostgreSQL's (`pg_dump`, README "Backups").

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt as _;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use pixelparty_storage::backup::{Export, Importer, RowReader, RowWriter, RowsSummary, with_export_of_dir};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Version of the manifest's format.
pub const MANIFEST_FORMAT: u32 = 1;

/// Bytes of one uploaded part (S3 wants at least 5 MiB for every part but the last).
const PART: usize = 8 << 20;

/// Row files sent ahead of the upload: at most this many parts in memory.
const PARTS_AHEAD: usize = 2;

/// Most backups one listing considers.
const MAX_LISTED: usize = 10_000;

/// S3 settings beside the location (credentials come from the environment:
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, as for the AWS tools).
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Endpoint of an S3-compatible service (empty: AWS, or `AWS_ENDPOINT` from the environment).
    pub endpoint: String,
    /// Region (empty: `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`).
    pub region: String,
    /// Allow plain HTTP to the endpoint (a local test server).
    pub allow_http: bool,
}

/// Where backups go: an object store and a prefix in it.
#[derive(Clone)]
pub struct Location {
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    shown: String,
    /// Bytes of one uploaded part ([`PART`]).
    part: usize,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Location {
    /// `s3://bucket[/prefix]`, or a local directory (created if missing; `file://` allowed).
    pub fn parse(spec: &str, s3: &S3Options) -> Result<Self> {
        if let Some(rest) = spec.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                bail!("{spec:?}: no bucket (s3://bucket/prefix)");
            }
            let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
            if !s3.endpoint.is_empty() {
                b = b.with_endpoint(&s3.endpoint);
            }
            if !s3.region.is_empty() {
                b = b.with_region(&s3.region);
            }
            if s3.allow_http {
                b = b.with_allow_http(true);
            }
            let store = b.build().with_context(|| format!("S3 location {spec}"))?;
            return Ok(Self {
                store: Arc::new(store),
                prefix: ObjPath::from(prefix.trim_matches('/')),
                shown: spec.into(),
                part: PART,
            });
        }
        let dir = PathBuf::from(spec.strip_prefix("file://").unwrap_or(spec));
        if dir.as_os_str().is_empty() {
            bail!("empty backup location");
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Empty directories go with their last file (retention leaves no husks).
        let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
            .with_context(|| format!("backup directory {}", dir.display()))?
            .with_automatic_cleanup(true)
            .with_fsync(true);
        Ok(Self { store: Arc::new(store), prefix: ObjPath::default(), shown: dir.display().to_string(), part: PART })
    }

    /// The same location with uploads cut in parts of `bytes` (at least 5 MiB for S3, whose
    /// parts but the last may not be smaller): to exercise multipart uploads in tests.
    pub fn with_part_bytes(mut self, bytes: usize) -> Self {
        self.part = bytes.max(1);
        self
    }

    fn path(&self, parts: &[&str]) -> ObjPath {
        parts.iter().fold(self.prefix.clone(), |p, part| p.join(*part))
    }
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// The keyspace it holds.
    pub keyspace: String,
    /// Object name inside the backup.
    pub name: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// SHA-256 of its bytes (hex).
    pub sha256: String,
    /// Rows it holds.
    pub rows: u64,
    /// SHA-256 of its rows (hex; see [`pixelparty_storage::backup::RowsSummary`]).
    pub rows_sha256: String,
}

/// What a backup holds; `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest format ([`MANIFEST_FORMAT`]).
    pub format: u32,
    /// The backup's id (UTC time taken, sortable).
    pub id: String,
    /// When the export's snapshot was taken (ms since the Unix epoch).
    pub created_ms: u64,
    /// The server version that took it.
    pub server_version: String,
    /// `fjall` (the whole store) or `postgres` (the canvas only).
    pub backend: String,
    /// The store format of the rows.
    pub store_format: u32,
    /// Canvas width, height, bits per pixel, tile size (absent before the canvas exists).
    pub canvas: Option<[u32; 4]>,
    /// The highest pixel sequence the backup holds.
    pub canvas_seq: u64,
    /// The lowest journal sequence it holds (1: the whole history; 0: no journal).
    pub journal_first: u64,
    /// Every file.
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// Total bytes of its files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// A backup's id for a moment: `YYYYMMDDTHHMMSSmmmZ` (UTC).
pub fn id_for(ms: u64) -> String {
    let (y, m, d, h, mi, s, milli) = civil(ms);
    format!("{y:04}{m:02}{d:02}T{h:02}{mi:02}{s:02}{milli:03}Z")
}

/// A moment as people read it: `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn iso_time(ms: u64) -> String {
    let (y, m, d, h, mi, s, milli) = civil(ms);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Year, month, day, hour, minute, second and millisecond (UTC) of ms since the Unix epoch.
fn civil(ms: u64) -> (i64, i64, i64, u64, u64, u64, u64) {
    let (days, rem) = ((ms / 86_400_000) as i64, ms % 86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    (y, m, d, h, mi, s, milli)
}

/// A moment given on the command line: ms since the Unix epoch, or UTC
/// `YYYY-MM-DDTHH:MM:SS[.mmm]Z`.
pub fn parse_time(s: &str) -> Result<u64> {
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    let bad = || anyhow!("{s:?} is neither ms since the Unix epoch nor YYYY-MM-DDTHH:MM:SS[.mmm]Z");
    let t = s.strip_suffix('Z').ok_or_else(bad)?;
    let (date, time) = t.split_once('T').ok_or_else(bad)?;
    // Digits only (no signs, spaces or other scripts), at most 4 of them.
    let num = |v: &str| -> Result<i64> {
        if v.is_empty() || v.len() > 4 || !v.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        v.parse::<i64>().map_err(|_| bad())
    };
    let d: Vec<&str> = date.split('-').collect();
    let [y, m, d] = d[..] else { return Err(bad()) };
    let (y, m, d) = (num(y)?, num(m)?, num(d)?);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, "0"));
    if fraction.len() > 3 {
        return Err(bad());
    }
    let h: Vec<&str> = hms.split(':').collect();
    let [h, mi, sec] = h[..] else { return Err(bad()) };
    let (h, mi, sec) = (num(h)?, num(mi)?, num(sec)?);
    let milli = num(&format!("{fraction:0<3}"))?;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let day_ok = (1..=12).contains(&m) && d >= 1 && d <= month_days[(m - 1) as usize];
    if !(1970..=9999).contains(&y) || !day_ok || h > 23 || mi > 59 || sec > 59 {
        return Err(bad());
    }
    // Howard Hinnant's days_from_civil.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok((((days * 24 + h) * 60 + mi) * 60 + sec) as u64 * 1000 + milli as u64)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A message from the thread that encodes the export to the task that uploads it.
enum Piece {
    Start(&'static str),
    Part(Vec<u8>),
    End { rows: RowsSummary, bytes: u64, sha256: [u8; 32] },
    Failed(String),
}

/// A `Write` that hashes and counts what passes and sends it on in [`PART`]-sized pieces.
struct Parts {
    tx: tokio::sync::mpsc::Sender<Piece>,
    part: usize,
    buf: Vec<u8>,
    bytes: u64,
    digest: Sha256,
}

impl Write for Parts {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.digest.update(data);
        self.bytes += data.len() as u64;
        let mut rest = data;
        while !rest.is_empty() {
            let take = (self.part - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() == self.part {
                let part = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part));
                self.tx.blocking_send(Piece::Part(part)).map_err(|_| std::io::Error::other("upload stopped"))?;
            }
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Encodes every part of an export (on a blocking thread), sending the pieces.
fn encode(export: Export, part_bytes: usize, tx: tokio::sync::mpsc::Sender<Piece>) {
    for part in export.parts {
        if tx.blocking_send(Piece::Start(part.keyspace)).is_err() {
            return;
        }
        let result = (|| -> Result<Piece> {
            let sink = Parts {
                tx: tx.clone(),
                part: part_bytes,
                buf: Vec::with_capacity(part_bytes),
                bytes: 0,
                digest: Sha256::new(),
            };
            let mut w = RowWriter::new(flate2::write::GzEncoder::new(sink, flate2::Compression::fast()))?;
            for row in part.rows {
                let (k, v) = row?;
                w.row(&k, &v)?;
            }
            let (gz, rows) = w.finish()?;
            let mut sink = gz.finish()?;
            let last = std::mem::take(&mut sink.buf);
            if !last.is_empty() {
                tx.blocking_send(Piece::Part(last)).map_err(|_| anyhow!("upload stopped"))?;
            }
            Ok(Piece::End { rows, bytes: sink.bytes, sha256: sink.digest.finalize().into() })
        })();
        let piece = result.unwrap_or_else(|e| Piece::Failed(format!("{e:#}")));
        let failed = matches!(piece, Piece::Failed(_));
        if tx.blocking_send(piece).is_err() || failed {
            return;
        }
    }
}

/// A multipart upload that is aborted if dropped before it completes (an error, or the task
/// cancelled), so that no orphaned parts stay behind.
struct Multipart(Option<Box<dyn object_store::MultipartUpload>>);

impl Drop for Multipart {
    fn drop(&mut self) {
        if let (Some(mut u), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(async move {
                let _ = u.abort().await;
            });
        }
    }
}

/// Uploads one file's parts as they come: one `put` when it fits in a part, else a multipart
/// upload (aborted on failure).
async fn upload(loc: &Location, path: &ObjPath, rx: &mut tokio::sync::mpsc::Receiver<Piece>) -> Result<Piece> {
    let mut upload = Multipart(None);
    let mut held: Option<Vec<u8>> = None;
    let end = loop {
        let piece = rx.recv().await.ok_or_else(|| anyhow!("the export stopped"))?;
        match piece {
            Piece::Part(part) => {
                if let Some(prev) = held.replace(part) {
                    if upload.0.is_none() {
                        upload.0 = Some(loc.store.put_multipart(path).await?);
                    }
                    upload.0.as_mut().expect("just set").put_part(PutPayload::from(prev)).await?;
                }
            }
            Piece::End { .. } => break piece,
            Piece::Failed(e) => bail!("export failed: {e}"),
            Piece::Start(_) => bail!("a new part began before the last one ended"),
        }
    };
    let last = held.unwrap_or_default();
    match upload.0.as_mut() {
        None => {
            loc.store.put(path, PutPayload::from(last)).await?;
        }
        Some(u) => {
            u.put_part(PutPayload::from(last)).await?;
            u.complete().await?;
            upload.0 = None;
        }
    }
    Ok(end)
}

/// Takes a backup of `export` (made at `created_ms`) into `loc`.
pub async fn write(loc: &Location, export: Export, created_ms: u64) -> Result<Manifest> {
    let id = id_for(created_ms);
    if loc.store.head(&loc.path(&[&id, "manifest.json"])).await.is_ok() {
        bail!("a backup {id} already exists in {loc}");
    }
    let mut manifest = Manifest {
        format: MANIFEST_FORMAT,
        id: id.clone(),
        created_ms,
        server_version: env!("CARGO_PKG_VERSION").into(),
        backend: export.backend.into(),
        store_format: export.store_format,
        canvas: export.geometry.map(|g| [g.width(), g.height(), u32::from(g.bpp()), u32::from(g.tile_size())]),
        canvas_seq: export.canvas_seq,
        journal_first: export.journal_first,
        files: Vec::new(),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(PARTS_AHEAD);
    let part = loc.part;
    let encoder = tokio::task::spawn_blocking(move || encode(export, part, tx));
    while let Some(piece) = rx.recv().await {
        let Piece::Start(keyspace) = piece else {
            if let Piece::Failed(e) = piece {
                bail!("export failed: {e}");
            }
            bail!("the export sent a part outside a file");
        };
        let name = format!("{keyspace}.rows.gz");
        let Piece::End { rows, bytes, sha256 } = upload(loc, &loc.path(&[&id, &name]), &mut rx).await? else {
            unreachable!("upload returns the end piece");
        };
        manifest.files.push(FileEntry {
            keyspace: keyspace.into(),
            name,
            bytes,
            sha256: hex(&sha256),
            rows: rows.rows,
            rows_sha256: hex(&rows.sha256),
        });
    }
    encoder.await.map_err(|e| anyhow!("export thread: {e}"))?;
    // Every file is there, whole, before the manifest says the backup is complete.
    for f in &manifest.files {
        let meta = loc.store.head(&loc.path(&[&id, &f.name])).await?;
        if meta.size != f.bytes {
            bail!("backup {id}: {} holds {} bytes after the upload, not {}", f.name, meta.size, f.bytes);
        }
    }
    let body = serde_json::to_vec_pretty(&manifest)?;
    loc.store.put(&loc.path(&[&id, "manifest.json"]), PutPayload::from(body)).await?;
    Ok(manifest)
}

/// Whether `name` is a backup id ([`id_for`]'s form); nothing else under a location is
/// ever listed or removed.
fn is_id(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 19 && b[8] == b'T' && b[18] == b'Z' && b[..8].iter().chain(&b[9..18]).all(u8::is_ascii_digit)
}

/// When backup `id` was taken (ms since the Unix epoch).
fn id_ms(id: &str) -> Option<u64> {
    if !is_id(id) {
        return None;
    }
    let t = format!(
        "{}-{}-{}T{}:{}:{}.{}Z",
        &id[0..4],
        &id[4..6],
        &id[6..8],
        &id[9..11],
        &id[11..13],
        &id[13..15],
        &id[15..18]
    );
    parse_time(&t).ok()
}

/// The ids under a location (complete or not), ascending; the newest [`MAX_LISTED`].
async fn ids(loc: &Location) -> Result<Vec<String>> {
    let prefix = (!loc.prefix.as_ref().is_empty()).then_some(&loc.prefix);
    let listed = loc.store.list_with_delimiter(prefix).await?;
    let mut ids: Vec<String> =
        listed.common_prefixes.iter().filter_map(|p| p.filename()).filter(|n| is_id(n)).map(str::to_owned).collect();
    ids.sort();
    let skip = ids.len().saturating_sub(MAX_LISTED);
    Ok(ids.split_off(skip))
}

/// Whether backup `id` has its manifest (is complete). Only "not found" means no: any other
/// failure is an error, never taken for an incomplete backup.
async fn has_manifest(loc: &Location, id: &str) -> Result<bool> {
    match loc.store.head(&loc.path(&[id, "manifest.json"])).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Reads a backup's manifest, refusing one that does not list every keyspace of the store.
pub async fn manifest(loc: &Location, id: &str) -> Result<Manifest> {
    let bytes = loc.store.get(&loc.path(&[id, "manifest.json"])).await?.bytes().await?;
    let m: Manifest = serde_json::from_slice(&bytes).with_context(|| format!("backup {id}: manifest"))?;
    if m.format != MANIFEST_FORMAT {
        bail!("backup {id}: manifest format {} (this server reads {MANIFEST_FORMAT})", m.format);
    }
    if m.id != id {
        bail!("backup {id}: its manifest names {}", m.id);
    }
    if m.backend == "fjall" {
        let mut listed: Vec<&str> = m.files.iter().map(|f| f.keyspace.as_str()).collect();
        listed.sort_unstable();
        let mut all = pixelparty_storage::backup::KEYSPACES.to_vec();
        all.sort_unstable();
        if listed != all {
            bail!("backup {id}: its manifest does not list every keyspace of the store");
        }
    }
    Ok(m)
}

/// Every complete backup under a location, oldest first. A manifest this version cannot read
/// (a newer format) is skipped with a warning; a failure to reach the location is an error.
pub async fn list(loc: &Location) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for id in ids(loc).await? {
        if !has_manifest(loc, &id).await? {
            continue;
        }
        match manifest(loc, &id).await {
            Ok(m) => out.push(m),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "backup {id} skipped"),
        }
    }
    Ok(out)
}

/// The backup to restore: `id`, or the newest complete one.
pub async fn choose(loc: &Location, id: Option<&str>) -> Result<Manifest> {
    match id {
        Some(id) => manifest(loc, id).await,
        None => list(loc).await?.pop().ok_or_else(|| anyhow!("no complete backup in {loc}")),
    }
}

/// How long an incomplete backup is left alone: it may be another process's, still uploading.
const INCOMPLETE_GRACE_MS: u64 = 24 * 3_600_000;

/// Removes every complete backup but the newest `retain`, and incomplete ones (a backup that
/// failed half-way) older than both the newest complete one and [`INCOMPLETE_GRACE_MS`]. The
/// number removed. Stops at the first failure to read or delete.
pub async fn prune(loc: &Location, retain: usize, now_ms: u64) -> Result<usize> {
    let ids = ids(loc).await?;
    let mut complete = Vec::new();
    for id in &ids {
        if has_manifest(loc, id).await? {
            complete.push(id.clone());
        }
    }
    let keep: Vec<&String> = complete.iter().rev().take(retain.max(1)).collect();
    let newest = complete.last().cloned().unwrap_or_default();
    let mut removed = 0;
    for id in &ids {
        let old_incomplete = !complete.contains(id)
            && *id < newest
            && id_ms(id).is_some_and(|t| t.saturating_add(INCOMPLETE_GRACE_MS) < now_ms);
        let old_complete = complete.contains(id) && !keep.contains(&id);
        if !(old_incomplete || old_complete) {
            continue;
        }
        // The manifest first: a backup half removed is an incomplete one, never a damaged one.
        match loc.store.delete(&loc.path(&[id, "manifest.json"])).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let objects: Vec<_> = loc.store.list(Some(&loc.path(&[id]))).collect().await;
        for meta in objects {
            loc.store.delete(&meta?.location).await?;
        }
        removed += 1;
    }
    Ok(removed)
}

/// Backups of a running server: one at a time, on demand or every `interval`, each followed
/// by retention; counted for the metrics.
#[derive(Debug)]
pub struct Backups {
    target: String,
    s3: S3Options,
    retain: usize,
    /// Time between scheduled backups (`None`: on demand only).
    pub interval: Option<std::time::Duration>,
    running: tokio::sync::Mutex<()>,
    /// Counters.
    pub stats: BackupStats,
}

/// Backup counters (exported as `pixelparty_backup_*`).
#[derive(Debug, Default)]
pub struct BackupStats {
    /// Backups completed.
    pub ok: std::sync::atomic::AtomicU64,
    /// Backups that failed.
    pub failed: std::sync::atomic::AtomicU64,
    /// When the last complete backup was taken (ms since the Unix epoch; 0: none yet).
    pub last_ok_ms: std::sync::atomic::AtomicU64,
    /// Bytes of the last complete backup.
    pub last_bytes: std::sync::atomic::AtomicU64,
    /// How long the last complete backup took, in milliseconds.
    pub last_duration_ms: std::sync::atomic::AtomicU64,
}

/// Why a backup was not taken.
#[derive(Debug)]
pub enum BackupError {
    /// Another backup is running.
    Busy,
    /// The export or the upload failed.
    Failed(anyhow::Error),
}

impl Backups {
    /// From the configuration's `[backup]`.
    pub fn new(config: &crate::config::Config) -> Self {
        let b = &config.backup;
        Self {
            target: config.backup_target(),
            s3: config.backup_s3(),
            retain: b.retain.max(1),
            interval: (b.interval_s > 0).then(|| std::time::Duration::from_secs(b.interval_s)),
            running: tokio::sync::Mutex::new(()),
            stats: BackupStats::default(),
        }
    }

    /// The location backups go to.
    pub fn location(&self) -> Result<Location> {
        Location::parse(&self.target, &self.s3)
    }

    /// Takes a backup of `store` now, then applies retention (a retention failure is logged,
    /// the backup stands).
    pub async fn take(&self, store: &pixelparty_storage::Store) -> Result<Manifest, BackupError> {
        use std::sync::atomic::Ordering::Relaxed;
        let Ok(_one) = self.running.try_lock() else { return Err(BackupError::Busy) };
        let started = std::time::Instant::now();
        let result = async {
            let loc = self.location()?;
            let export = store.call(|b| b.export()).await?;
            let manifest = write(&loc, export, pixelparty_engine::now_ms()).await?;
            match prune(&loc, self.retain, pixelparty_engine::now_ms()).await {
                Ok(n) if n > 0 => tracing::info!(removed = n, retain = self.retain, "old backups removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "backup retention failed"),
            }
            anyhow::Ok(manifest)
        }
        .await;
        match &result {
            Ok(m) => {
                let s = &self.stats;
                s.ok.fetch_add(1, Relaxed);
                s.last_ok_ms.store(m.created_ms, Relaxed);
                s.last_bytes.store(m.bytes(), Relaxed);
                s.last_duration_ms.store(started.elapsed().as_millis() as u64, Relaxed);
                tracing::info!(id = %m.id, bytes = m.bytes(), location = %self.target, "backup taken");
            }
            Err(e) => {
                self.stats.failed.fetch_add(1, Relaxed);
                tracing::error!(error = %format!("{e:#}"), location = %self.target, "backup failed");
            }
        }
        result.map_err(BackupError::Failed)
    }
}

/// A restored and verified store, not yet in place: in a staging directory beside the target
/// (removed with everything in it when dropped), so that a restore that fails at any point
/// leaves no store behind.
#[derive(Debug)]
pub struct Staged {
    /// The backup restored.
    pub manifest: Manifest,
    /// Rows written and verified.
    pub rows: u64,
    dir: tempfile::TempDir,
}

impl Staged {
    /// The restored store's directory (to open it, stopped, before it is put in place).
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("db")
    }

    /// Moves the store to `db_dir` (absent or empty), durably: one rename on the same file
    /// system, then the parent directory synced.
    pub fn put_in_place(self, db_dir: &Path) -> Result<()> {
        if std::fs::read_dir(db_dir).is_ok_and(|mut d| d.next().is_some()) {
            bail!("{} already holds a store", db_dir.display());
        }
        let _ = std::fs::remove_dir(db_dir);
        std::fs::rename(self.db(), db_dir)
            .with_context(|| format!("moving the restored store to {}", db_dir.display()))?;
        if let Some(parent) = db_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::File::open(parent)?.sync_all()?;
        }
        Ok(())
    }
}

/// Downloads one file of a backup into `dir`, checking its size and SHA-256.
async fn download(loc: &Location, id: &str, f: &FileEntry, dir: &Path) -> Result<PathBuf> {
    if f.name.contains(['/', '\\']) || f.name.starts_with('.') {
        bail!("backup {id}: bad file name {:?}", f.name);
    }
    let to = dir.join(&f.name);
    let mut out = std::fs::File::create(&to)?;
    let mut stream = loc.store.get(&loc.path(&[id, &f.name])).await?.into_stream();
    let (mut digest, mut bytes) = (Sha256::new(), 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        bytes += chunk.len() as u64;
        if bytes > f.bytes {
            bail!("backup {id}: {} is longer than its manifest says", f.name);
        }
        digest.update(&chunk);
        out.write_all(&chunk)?;
    }
    out.sync_all()?;
    if bytes != f.bytes || hex(&digest.finalize()) != f.sha256 {
        bail!("backup {id}: {} does not match its checksum (damaged or incomplete)", f.name);
    }
    Ok(to)
}

/// Restores backup `m` into a staging directory in `parent` (the data directory, so that the
/// store can then be renamed into place), checking every file before reading it and every
/// keyspace after, row for row.
pub async fn stage(loc: &Location, m: &Manifest, parent: &Path) -> Result<Staged> {
    if m.store_format != 1 {
        bail!("backup {}: store format {} is not this server's", m.id, m.store_format);
    }
    let dir = tempfile::Builder::new()
        .prefix(".pixelparty-restore-")
        .tempdir_in(parent)
        .with_context(|| format!("a staging directory in {}", parent.display()))?;
    let files_dir = dir.path().join("files");
    std::fs::create_dir(&files_dir)?;
    let mut files = Vec::new();
    for f in &m.files {
        files.push((f.clone(), download(loc, &m.id, f, &files_dir).await?));
    }
    let db_dir = dir.path().join("db");
    let m2 = m.clone();
    let rows = tokio::task::spawn_blocking(move || import_and_verify(&m2, &files, &db_dir))
        .await
        .map_err(|e| anyhow!("restore thread: {e}"))??;
    std::fs::remove_dir_all(&files_dir)?;
    Ok(Staged { manifest: m.clone(), rows, dir })
}

fn import_and_verify(m: &Manifest, files: &[(FileEntry, PathBuf)], db_dir: &Path) -> Result<u64> {
    let mut importer = Importer::create(db_dir)?;
    let mut total = 0;
    for (f, path) in files {
        let gz = flate2::read::GzDecoder::new(std::io::BufReader::new(std::fs::File::open(path)?));
        let mut reader = RowReader::new(gz)?;
        let n = importer.keyspace(&f.keyspace, reader.by_ref())?;
        let summary = reader.summary().ok_or_else(|| anyhow!("{}: no end mark", f.name))?;
        if summary.rows != f.rows || hex(&summary.sha256) != f.rows_sha256 || n != f.rows {
            bail!("backup {}: {} does not hold the rows its manifest lists", m.id, f.name);
        }
        total += n;
    }
    importer.finish()?;
    verify_dir(m, db_dir)?;
    Ok(total)
}

/// Exports a stopped store directory and checks that every keyspace the manifest lists holds
/// exactly its rows (count and SHA-256).
pub fn verify_dir(m: &Manifest, db_dir: &Path) -> Result<()> {
    let summaries = with_export_of_dir(db_dir, |export| {
        let parts = export.parts.into_iter().filter(|p| m.files.iter().any(|f| f.keyspace == p.keyspace));
        parts.map(|p| Ok((p.keyspace, pixelparty_storage::backup::summarize(p.rows)?))).collect::<Result<Vec<_>, _>>()
    })
    .with_context(|| format!("reading {} back", db_dir.display()))?;
    for f in &m.files {
        let same =
            summaries.iter().any(|(k, s)| *k == f.keyspace && s.rows == f.rows && hex(&s.sha256) == f.rows_sha256);
        if !same {
            bail!("{}: keyspace {} differs from backup {} after the restore", db_dir.display(), f.keyspace, m.id);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_ms_or_utc_and_round_trip_through_ids() {
        assert_eq!(parse_time("1796083199999").unwrap(), 1_796_083_199_999);
        assert_eq!(parse_time("2026-11-30T23:59:59.999Z").unwrap(), 1_796_083_199_999);
        assert_eq!(parse_time("2000-02-29T00:00:00Z").unwrap(), 951_782_400_000);
        for ms in (0..4_000_000_000_000u64).step_by(9_876_543_211) {
            let id = id_for(ms);
            assert_eq!(id_ms(&id), Some(ms), "{id}");
        }
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-30T24:00:00Z",
            "2026-11-30 10:00:00",
            "2026-02-29T00:00:00Z",
            "2026-11-30T10:00:00.\u{e9}\u{e9}\u{e9}Z",
            "2026-11-30T10:00:00.-5Z",
            "2026-11-30T10:00:00.1234Z",
            "2026-11-30T+1:00:00Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?}");
        }
    }

    /// A backup whose files go up in many parts (multipart uploads on a directory), restored
    /// and verified; a failed export leaves no file and no manifest behind.
    #[test]
    fn multipart_backups_restore_and_failed_ones_leave_nothing() {
        use pixelparty_storage::backup::ExportPart;
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::parse(dir.path().join("b").to_str().unwrap(), &S3Options::default())
            .unwrap()
            .with_part_bytes(4096);
        // Rows that do not compress: many parts per file.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut noise = move |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        };
        let export = |rows: Vec<pixelparty_storage::backup::Row>, bad: bool| {
            let mut parts: Vec<ExportPart> = pixelparty_storage::backup::KEYSPACES
                .iter()
                .map(|&k| ExportPart { keyspace: k, rows: Box::new(std::iter::empty()) })
                .collect();
            let mut rows: Vec<Result<_, pixelparty_storage::StorageError>> = rows.into_iter().map(Ok).collect();
            if bad {
                rows.push(Err(pixelparty_storage::StorageError::invalid("a read failed mid-export")));
            }
            parts[1].rows = Box::new(rows.into_iter());
            // Every store holds its format mark (written when it is created).
            parts[0].rows = Box::new(std::iter::once(Ok((b"format".to_vec(), 1u32.to_be_bytes().to_vec()))));
            Export { backend: "fjall", store_format: 1, geometry: None, canvas_seq: 0, journal_first: 0, parts }
        };
        let rows: Vec<_> = (0u32..300).map(|i| (i.to_be_bytes().to_vec(), noise(200))).collect();
        let m = rt.block_on(write(&loc, export(rows.clone(), false), 1_000)).unwrap();
        let users = m.files.iter().find(|f| f.keyspace == "users").unwrap();
        assert!(users.bytes > 10 * 4096, "{} bytes: several parts", users.bytes);
        let staged = rt.block_on(stage(&loc, &m, dir.path())).unwrap();
        let back = with_export_of_dir(&staged.db(), |e| {
            let part = e.parts.into_iter().find(|p| p.keyspace == "users").unwrap();
            part.rows.collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
        assert_eq!(back, rows);
        assert!(rt.block_on(write(&loc, export(rows.clone(), true), 2_000)).is_err());
        assert_eq!(rt.block_on(ids(&loc)).unwrap(), [id_for(1_000), id_for(2_000)]);
        assert!(!rt.block_on(has_manifest(&loc, &id_for(2_000))).unwrap(), "a failed backup is not complete");
        assert_eq!(rt.block_on(list(&loc)).unwrap().len(), 1);
    }

    #[test]
    fn only_backup_ids_are_taken_for_backups() {
        assert!(is_id(&id_for(1_796_083_199_999)));
        assert_eq!(id_ms("20261130T235959999Z"), Some(1_796_083_199_999));
        for other in ["notes", "2025-archive", "20261130T235959999", "20261130X235959999Z", "2026113OT235959999Z"] {
            assert!(!is_id(other), "{other}");
        }
    }

    #[test]
    fn ids_are_utc_times_that_sort_by_age() {
        assert_eq!(id_for(0), "19700101T000000000Z");
        assert_eq!(id_for(1_796_083_199_999), "20261130T235959999Z");
        assert_eq!(id_for(951_782_400_000), "20000229T000000000Z");
        let mut prev = String::new();
        for ms in (0..4_000_000_000_000u64).step_by(7_777_777_777) {
            let id = id_for(ms);
            assert!(id > prev, "{id} after {prev}");
            prev = id;
        }
    }
}
