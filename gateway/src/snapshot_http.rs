//! The HTTP snapshot (PROTOCOL.md section 11): encoded and gzip-compressed once per snapshot
//! version on the snapshot thread, then served from memory with an `ETag`; the PNG export is
//! encoded on demand, once per version, on a blocking thread (never a shard), one at a time.

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
    png_encoding: tokio::sync::Mutex<()>,
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

/// Renders a snapshot as an indexed PNG (bit depth = the canvas's bits per pixel, `palette`
/// as PLTE), so the image costs what the canvas costs: no RGB expansion.
pub fn png(snap: &CanvasSnapshot, palette: &[[u8; 3]]) -> Result<Vec<u8>, png::EncodingError> {
    let g = snap.geometry;
    let (w, h, bpp, ts) = (g.width() as usize, g.height() as usize, usize::from(g.bpp()), g.tile_size() as usize);
    let depth = match bpp {
        1 => png::BitDepth::One,
        2 => png::BitDepth::Two,
        4 => png::BitDepth::Four,
        _ => png::BitDepth::Eight,
    };
    // PLTE with every index the bit depth can express (unused ones black).
    let mut plte = vec![0u8; 3 << bpp];
    for (i, c) in palette.iter().take(1 << bpp).enumerate() {
        plte[i * 3..][..3].copy_from_slice(c);
    }
    let row_bytes = (w * bpp).div_ceil(8);
    let mut data = vec![0u8; row_bytes * h];
    let tiles_per_row = w.div_ceil(ts);
    for (y, row) in data.chunks_exact_mut(row_bytes).enumerate() {
        for x in 0..w {
            let tile = &snap.tiles[(y / ts) * tiles_per_row + x / ts];
            let colour = get_pixel(tile, g.bpp(), ((y % ts) * ts + x % ts) as u16);
            // PNG packs the leftmost pixel into the high bits.
            let bit = x * bpp;
            row[bit / 8] |= colour << (8 - bpp - bit % 8);
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, g.width(), g.height());
    enc.set_color(png::ColorType::Indexed);
    enc.set_depth(depth);
    enc.set_palette(plte);
    enc.set_compression(png::Compression::Fast);
    let mut writer = enc.write_header()?;
    writer.write_image_data(&data)?;
    writer.finish()?;
    Ok(out)
}

impl SnapshotCache {
    /// A cache starting from the snapshotter's latest snapshot.
    pub fn new(snapshotter: Arc<Snapshotter>) -> Self {
        let first = encoded(snapshotter.latest());
        Self {
            snapshotter,
            encoded: Mutex::new(Arc::new(first)),
            png: Mutex::new(None),
            png_encoding: tokio::sync::Mutex::new(()),
        }
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

    /// The PNG of the latest snapshot, encoding it if this version has none yet: on a
    /// blocking thread, one encoding at a time (requests meanwhile wait for it and share it).
    pub async fn png(&self, palette: &[[u8; 3]]) -> Result<(u64, Bytes), String> {
        let _one_at_a_time = self.png_encoding.lock().await;
        let latest = self.latest();
        if let Some((v, bytes)) = self.png.lock().as_ref()
            && *v == latest.version
        {
            return Ok((*v, bytes.clone()));
        }
        let (snapshot, palette) = (latest.snapshot.clone(), palette.to_vec());
        let bytes = tokio::task::spawn_blocking(move || png(&snapshot, &palette))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let bytes = Bytes::from(bytes);
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

#[cfg(test)]
mod tests {
    use pixelparty_protocol::Geometry;
    use pixelparty_protocol::canvas::set_pixel;

    use super::*;

    /// Every bit depth, on a canvas whose edge tiles are cut: decoding the PNG (expanded to
    /// RGB) gives each pixel's palette colour.
    #[test]
    fn png_is_the_canvas_in_its_palette() {
        for bpp in [1u8, 2, 4, 8] {
            let g = Geometry::new(21, 13, bpp, 8).unwrap();
            let colours = 1u16 << bpp;
            let palette: Vec<[u8; 3]> = (0..colours).map(|i| [i as u8, 255 - i as u8, (i * 7) as u8]).collect();
            let mut tiles = vec![vec![0u8; g.tile_bytes()]; g.tile_count() as usize];
            let colour_at = |x: u32, y: u32| ((x * 3 + y * 5) % u32::from(colours)) as u8;
            for y in 0..13 {
                for x in 0..21 {
                    let loc = g.locate(x, y).unwrap();
                    set_pixel(&mut tiles[loc.tile as usize], bpp, loc.offset, colour_at(x, y));
                }
            }
            let snap = CanvasSnapshot {
                version: 1,
                taken_ms: 0,
                geometry: g,
                seqs: vec![0; tiles.len()],
                tiles: tiles.into_iter().map(Bytes::from).collect(),
            };
            let bytes = png(&snap, &palette).unwrap();
            let mut decoder = ::png::Decoder::new(std::io::Cursor::new(bytes));
            decoder.set_transformations(::png::Transformations::EXPAND);
            let mut reader = decoder.read_info().unwrap();
            let mut rgb = vec![0u8; reader.output_buffer_size().unwrap()];
            let info = reader.next_frame(&mut rgb).unwrap();
            assert_eq!((info.width, info.height, info.color_type), (21, 13, ::png::ColorType::Rgb));
            for y in 0..13 {
                for x in 0..21 {
                    let at = (y * 21 + x) as usize * 3;
                    assert_eq!(rgb[at..at + 3], palette[usize::from(colour_at(x, y))], "bpp {bpp} at ({x}, {y})");
                }
            }
        }
    }
}
