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
            .with_automatic_cleanup(true);
        Ok(Self { store: Arc::new(store), prefix: ObjPath::default(), shown: dir.display().to_string() })
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
    format!("{y:04}{m:02}{d:02}T{h:02}{mi:02}{s:02}{milli:03}Z")
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
    let num = |v: &str| v.parse::<i64>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let [y, m, d] = d[..] else { return Err(bad()) };
    let (y, m, d) = (num(y)?, num(m)?, num(d)?);
    let (hms, milli) = time.split_once('.').unwrap_or((time, "0"));
    let h: Vec<&str> = hms.split(':').collect();
    let [h, mi, sec] = h[..] else { return Err(bad()) };
    let (h, mi, sec) = (num(h)?, num(mi)?, num(sec)?);
    let milli = num(&format!("{milli:0<3}")[..3])?;
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59
    {
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
            let take = (PART - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() == PART {
                let part = std::mem::replace(&mut self.buf, Vec::with_capacity(PART));
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
fn encode(export: Export, tx: tokio::sync::mpsc::Sender<Piece>) {
    for part in export.parts {
        if tx.blocking_send(Piece::Start(part.keyspace)).is_err() {
            return;
        }
        let result = (|| -> Result<Piece> {
            let sink = Parts { tx: tx.clone(), buf: Vec::with_capacity(PART), bytes: 0, digest: Sha256::new() };
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

/// Uploads one file's parts as they come: one `put` when it fits in a part, else a multipart
/// upload (aborted on failure).
async fn upload(loc: &Location, path: &ObjPath, rx: &mut tokio::sync::mpsc::Receiver<Piece>) -> Result<Piece> {
    let mut upload: Option<Box<dyn object_store::MultipartUpload>> = None;
    let mut held: Option<Vec<u8>> = None;
    let end = loop {
        let piece = rx.recv().await.ok_or_else(|| anyhow!("the export stopped"))?;
        match piece {
            Piece::Part(part) => {
                if let Some(prev) = held.replace(part) {
                    if upload.is_none() {
                        upload = Some(loc.store.put_multipart(path).await?);
                    }
                    let u = upload.as_mut().expect("just set");
                    if let Err(e) = u.put_part(PutPayload::from(prev)).await {
                        let _ = u.abort().await;
                        return Err(e.into());
                    }
                }
            }
            Piece::End { .. } => break piece,
            Piece::Failed(e) => {
                if let Some(mut u) = upload {
                    let _ = u.abort().await;
                }
                bail!("export failed: {e}");
            }
            Piece::Start(_) => bail!("a new part began before the last one ended"),
        }
    };
    let last = held.unwrap_or_default();
    match upload {
        None => {
            loc.store.put(path, PutPayload::from(last)).await?;
        }
        Some(mut u) => {
            let r = async {
                u.put_part(PutPayload::from(last)).await?;
                u.complete().await
            }
            .await;
            if let Err(e) = r {
                let _ = u.abort().await;
                return Err(e.into());
            }
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
    let encoder = tokio::task::spawn_blocking(move || encode(export, tx));
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
    let body = serde_json::to_vec_pretty(&manifest)?;
    loc.store.put(&loc.path(&[&id, "manifest.json"]), PutPayload::from(body)).await?;
    Ok(manifest)
}

/// The ids under a location (complete or not), ascending.
async fn ids(loc: &Location) -> Result<Vec<String>> {
    let prefix = (!loc.prefix.as_ref().is_empty()).then_some(&loc.prefix);
    let listed = loc.store.list_with_delimiter(prefix).await?;
    let mut ids: Vec<String> =
        listed.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_owned)).take(MAX_LISTED).collect();
    ids.sort();
    Ok(ids)
}

/// Reads a backup's manifest.
pub async fn manifest(loc: &Location, id: &str) -> Result<Manifest> {
    let bytes = loc.store.get(&loc.path(&[id, "manifest.json"])).await?.bytes().await?;
    let m: Manifest = serde_json::from_slice(&bytes).with_context(|| format!("backup {id}: manifest"))?;
    if m.format != MANIFEST_FORMAT {
        bail!("backup {id}: manifest format {} (this server reads {MANIFEST_FORMAT})", m.format);
    }
    if m.id != id {
        bail!("backup {id}: its manifest names {}", m.id);
    }
    Ok(m)
}

/// Every complete backup under a location, oldest first.
pub async fn list(loc: &Location) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for id in ids(loc).await? {
        if let Ok(m) = manifest(loc, &id).await {
            out.push(m);
        }
    }
    Ok(out)
}

/// Removes every backup but the newest `retain` complete ones (and incomplete ones older than
/// the newest complete one: a backup that failed half-way). The number removed.
pub async fn prune(loc: &Location, retain: usize) -> Result<usize> {
    let ids = ids(loc).await?;
    let mut complete = Vec::new();
    for id in &ids {
        if loc.store.head(&loc.path(&[id, "manifest.json"])).await.is_ok() {
            complete.push(id.clone());
        }
    }
    let keep: Vec<&String> = complete.iter().rev().take(retain.max(1)).collect();
    let newest = complete.last().cloned().unwrap_or_default();
    let mut removed = 0;
    for id in ids.iter().filter(|id| !keep.contains(id) && **id < newest) {
        // The manifest first: a backup half removed is an incomplete one, never a damaged one.
        let _ = loc.store.delete(&loc.path(&[id, "manifest.json"])).await;
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
            match prune(&loc, self.retain).await {
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

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    /// The backup restored.
    pub manifest: Manifest,
    /// Rows written and verified.
    pub rows: u64,
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

/// Restores backup `id` (default: the newest complete one) into the store directory `db_dir`
/// (which must not hold anything), then verifies the restored store row for row.
pub async fn restore(loc: &Location, id: Option<&str>, db_dir: &Path) -> Result<Restored> {
    let manifest = match id {
        Some(id) => manifest(loc, id).await?,
        None => list(loc).await?.pop().ok_or_else(|| anyhow!("no complete backup in {loc}"))?,
    };
    if manifest.store_format != 1 {
        bail!("backup {}: store format {} is not this server's", manifest.id, manifest.store_format);
    }
    let staging = tempfile::Builder::new()
        .prefix(".pixelparty-restore-")
        .tempdir_in(db_dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))
        .context("a staging directory beside the target")?;
    let mut files = Vec::new();
    for f in &manifest.files {
        files.push((f.clone(), download(loc, &manifest.id, f, staging.path()).await?));
    }
    let db_dir = db_dir.to_path_buf();
    let m = manifest.clone();
    let rows = tokio::task::spawn_blocking(move || import_and_verify(&m, &files, &db_dir))
        .await
        .map_err(|e| anyhow!("restore thread: {e}"))??;
    Ok(Restored { manifest, rows })
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
            let text = format!(
                "{}-{}-{}T{}:{}:{}.{}Z",
                &id[0..4],
                &id[4..6],
                &id[6..8],
                &id[9..11],
                &id[11..13],
                &id[13..15],
                &id[15..18]
            );
            assert_eq!(parse_time(&text).unwrap(), ms, "{text}");
        }
        for bad in ["", "yesterday", "2026-13-01T00:00:00Z", "2026-11-30T24:00:00Z", "2026-11-30 10:00:00"] {
            assert!(parse_time(bad).is_err(), "{bad:?}");
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
