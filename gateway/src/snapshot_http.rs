//! The HTTP snapshot (PROTOCOL.md section 11): encoded and gzip-compressed once per snapshot
//! version on the snapshot thread, then served from memory with an `ETag`; the PNG export is
//! encoded on demand, once per version.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use parking_lot::Mutex;
use pixelparty_engine::{CanvasSnapshot, Snapshotter};
use pixelparty_protocol::canvas::get_pixel;

/// Format version of the snapshot document.
pub const SNAPSHOT_FORMAT: u16 = 1;

/// One snapshot version, ready to serve.
#[derive(Debug)]
pub struct Encoded {
    /// Snapshot version (the ETag).
    pub version: u64,
    /// The document, uncompressed.
    pub raw: Bytes,
    /// The document, gzip-compressed.
    pub gzip: Bytes,
    /// The snapshot it came from.
    pub snapshot: Arc<CanvasSnapshot>,
}

/// The latest encoded snapshot and the PNG of some version.
#[derive(Debug)]
pub struct SnapshotCache {
    snapshotter: Arc<Snapshotter>,
    encoded: Mutex<Arc<Encoded>>,
    png: Mutex<Option<(u64, Bytes)>>,
}

/// Encodes a snapshot as the binary document.
pub fn encode(snap: &CanvasSnapshot) -> Vec<u8> {
    let g = snap.geometry;
    let count = snap.tiles.len();
    let mut out = Vec::with_capacity(40 + 8 * count + count * g.tile_bytes());
    out.extend_from_slice(b"PXSN");
    out.extend_from_slice(&SNAPSHOT_FORMAT.to_le_bytes());
    out.push(g.bpp());
    out.push(0);
    out.extend_from_slice(&g.tile_size().to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&g.width().to_le_bytes());
    out.extend_from_slice(&g.height().to_le_bytes());
    out.extend_from_slice(&(count as u32).to_le_bytes());
    out.extend_from_slice(&snap.taken_ms.to_le_bytes());
    out.extend_from_slice(&snap.version.to_le_bytes());
    for seq in &snap.seqs {
        out.extend_from_slice(&seq.to_le_bytes());
    }
    for tile in &snap.tiles {
        out.extend_from_slice(tile);
    }
    out
}

fn gzip(data: &[u8]) -> Bytes {
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 4), Compression::fast());
    if enc.write_all(data).is_err() {
        return Bytes::new();
    }
    enc.finish().map(Bytes::from).unwrap_or_default()
}

fn encoded(snapshot: Arc<CanvasSnapshot>) -> Encoded {
    let raw = encode(&snapshot);
    let gzip = gzip(&raw);
    Encoded { version: snapshot.version, raw: Bytes::from(raw), gzip, snapshot }
}

/// Renders a snapshot as an RGB PNG with `palette`.
pub fn png(snap: &CanvasSnapshot, palette: &[[u8; 3]]) -> Result<Vec<u8>, png::EncodingError> {
    let g = snap.geometry;
    let (w, h) = (g.width() as usize, g.height() as usize);
    let mut rgb = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let Some(loc) = g.locate(x as u32, y as u32) else { continue };
            let colour = get_pixel(&snap.tiles[loc.tile as usize], g.bpp(), loc.offset);
            let c = palette.get(usize::from(colour)).copied().unwrap_or([0, 0, 0]);
            rgb[(y * w + x) * 3..][..3].copy_from_slice(&c);
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, g.width(), g.height());
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let mut writer = enc.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    Ok(out)
}

impl SnapshotCache {
    /// A cache starting from the snapshotter's latest snapshot.
    pub fn new(snapshotter: Arc<Snapshotter>) -> Self {
        let first = encoded(snapshotter.latest());
        Self { snapshotter, encoded: Mutex::new(Arc::new(first)), png: Mutex::new(None) }
    }

    /// The snapshotter behind the cache.
    pub fn snapshotter(&self) -> &Arc<Snapshotter> {
        &self.snapshotter
    }

    /// The latest encoded snapshot.
    pub fn latest(&self) -> Arc<Encoded> {
        self.encoded.lock().clone()
    }

    /// Refreshes from the shards and re-encodes when the version moved (snapshot thread).
    pub fn refresh(&self) {
        let snap = self.snapshotter.refresh();
        if snap.version != self.latest().version {
            let e = Arc::new(encoded(snap));
            *self.encoded.lock() = e;
        }
    }

    /// The PNG of the latest snapshot, encoding it if this version has none yet.
    pub fn png(&self, palette: &[[u8; 3]]) -> Result<(u64, Bytes), png::EncodingError> {
        let latest = self.latest();
        if let Some((v, bytes)) = self.png.lock().as_ref()
            && *v == latest.version
        {
            return Ok((*v, bytes.clone()));
        }
        let bytes = Bytes::from(png(&latest.snapshot, palette)?);
        *self.png.lock() = Some((latest.version, bytes.clone()));
        Ok((latest.version, bytes))
    }

    /// Runs refreshes and periodic store writes on a thread until `stop` is set.
    pub fn spawn(
        self: &Arc<Self>,
        refresh: Duration,
        persist: Duration,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let me = self.clone();
        std::thread::Builder::new().name("snapshots".into()).spawn(move || {
            let mut last_persist = std::time::Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                std::thread::sleep(refresh);
                me.refresh();
                if last_persist.elapsed() >= persist {
                    last_persist = std::time::Instant::now();
                    match me.snapshotter.persist() {
                        Ok(n) if n > 0 => tracing::info!(tiles = n, "tile snapshots written"),
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "writing tile snapshots"),
                    }
                }
            }
        })
    }
}
