//! The canvas's history as data (PROTOCOL.md section 12): the journal cut into immutable chunks
//! of [`CHUNK_UPDATES`] sequences, their binary format, a bounded cache of whole chunks, and the
//! renderer behind `pixelparty export timelapse` (APNG or GIF frames of the canvas over time).
//!
//! The format is pure ([`encode_chunk`], [`decode_chunk`]); [`Chunks`] reads the store (any
//! backend) and keeps the gzip'd bytes of recent whole chunks; [`Film`] turns a time range of
//! entries into frames and writes them.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use parking_lot::Mutex;
use pixelparty_storage::{Backend, PixelRecord, StorageError};
use serde::{Deserialize, Serialize};

/// Updates per chunk: chunk `n` holds sequences `n·CHUNK_UPDATES + 1 ..= (n+1)·CHUNK_UPDATES`.
pub const CHUNK_UPDATES: u64 = 16_384;
/// Whole chunks kept in memory (gzip'd; at most a few MiB).
pub const CACHED_CHUNKS: usize = 64;
const MAGIC: &[u8; 4] = b"PXTL";
const FORMAT: u16 = 1;
const HEAD_LEN: usize = 28;
const ENTRY_LEN: usize = 13;

/// One update as a timelapse carries it (no painter: the inspector is the place for that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Its sequence.
    pub seq: u64,
    /// Column.
    pub x: u16,
    /// Row.
    pub y: u16,
    /// Palette index.
    pub colour: u8,
    /// When (ms since the Unix epoch).
    pub time_ms: u64,
}

impl From<&PixelRecord> for Entry {
    fn from(r: &PixelRecord) -> Self {
        Self { seq: r.seq, x: r.x, y: r.y, colour: r.colour, time_ms: r.time_ms }
    }
}

/// `GET /canvas/timelapse`: what the journal holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Info {
    /// The oldest update the journal keeps (0: empty).
    pub first_seq: u64,
    /// The newest update.
    pub last_seq: u64,
    /// The oldest update's time (ms since the Unix epoch; 0 when empty).
    pub first_time_ms: u64,
    /// The newest update's time.
    pub last_time_ms: u64,
    /// Whether the journal reaches back to the canvas's first update.
    pub complete: bool,
    /// Updates per chunk.
    pub chunk_updates: u64,
    /// Number of chunks.
    pub chunks: u64,
    /// Canvas width.
    pub width: u32,
    /// Canvas height.
    pub height: u32,
    /// Bits per pixel.
    pub bpp: u8,
    /// Palette, `"#rrggbb"`.
    pub palette: Vec<String>,
}

/// The chunk holding sequence `seq` (from 1).
pub fn chunk_of(seq: u64) -> u64 {
    seq.saturating_sub(1) / CHUNK_UPDATES
}

/// Encodes chunk `n`'s entries (ascending sequences within the chunk).
pub fn encode_chunk(n: u64, entries: &[Entry]) -> Vec<u8> {
    let base_seq = n * CHUNK_UPDATES;
    let base_time = entries.first().map_or(0, |e| e.time_ms);
    let mut out = Vec::with_capacity(HEAD_LEN + ENTRY_LEN * entries.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&base_seq.to_le_bytes());
    out.extend_from_slice(&base_time.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    let mut prev = base_time;
    for e in entries {
        out.extend_from_slice(&((e.seq - base_seq) as u32).to_le_bytes());
        out.extend_from_slice(&e.x.to_le_bytes());
        out.extend_from_slice(&e.y.to_le_bytes());
        out.push(e.colour);
        let dt = e.time_ms.saturating_sub(prev).min(u64::from(u32::MAX)) as u32;
        out.extend_from_slice(&dt.to_le_bytes());
        prev = e.time_ms;
    }
    out
}

/// Decodes a chunk (the bytes after any gzip): its entries, with absolute sequences and times.
pub fn decode_chunk(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    if bytes.len() < HEAD_LEN || &bytes[..4] != MAGIC {
        return Err("not a timelapse chunk".into());
    }
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap_or_default());
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap_or_default());
    if u16_at(4) != FORMAT {
        return Err(format!("chunk format {} (this reads {FORMAT})", u16_at(4)));
    }
    let (base_seq, mut time, count) = (u64_at(8), u64_at(16), u32_at(24) as usize);
    if base_seq > u64::MAX - CHUNK_UPDATES {
        return Err(format!("base sequence {base_seq} out of range"));
    }
    if count as u64 > CHUNK_UPDATES || bytes.len() != HEAD_LEN + count * ENTRY_LEN {
        return Err(format!("chunk of {} bytes for {count} entries", bytes.len()));
    }
    let mut entries = Vec::with_capacity(count);
    let mut last = 0u32;
    for i in 0..count {
        let at = HEAD_LEN + i * ENTRY_LEN;
        let offset = u32_at(at);
        if offset <= last || u64::from(offset) > CHUNK_UPDATES {
            return Err(format!("entry {i}: sequence offset {offset} out of order or range"));
        }
        last = offset;
        time = time.saturating_add(u64::from(u32_at(at + 9)));
        entries.push(Entry {
            seq: base_seq + u64::from(offset),
            x: u16_at(at + 4),
            y: u16_at(at + 6),
            colour: bytes[at + 8],
            time_ms: time,
        });
    }
    Ok(entries)
}

fn gzip(data: &[u8]) -> Bytes {
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 3), Compression::fast());
    if enc.write_all(data).is_err() {
        return Bytes::new();
    }
    enc.finish().map(Bytes::from).unwrap_or_default()
}

/// One chunk as served: both encodings, built once.
#[derive(Debug)]
pub struct Encoded {
    /// The document.
    pub raw: Bytes,
    /// The document, gzip'd.
    pub gzip: Bytes,
}

/// One chunk and whether it is whole (every sequence of it is in the journal): it never
/// changes then.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Its bytes.
    pub body: Arc<Encoded>,
    /// Whole.
    pub whole: bool,
}

/// Chunks built at once at most, per server: a reader that asks for chunk after chunk (or the
/// unfinished last one in a loop) waits its turn instead of taking the store from everyone.
pub const CONCURRENT_BUILDS: usize = 2;
/// How long the unfinished last chunk is served as built (its `max-age`).
pub const TAIL_MS: u64 = 1_000;

/// Whole chunks by number, and their numbers oldest first.
type Whole = (HashMap<u64, Arc<Encoded>>, VecDeque<u64>);

/// The unfinished chunk: its number, the journal's newest sequence and the time (ms) when it
/// was built, its bytes.
#[derive(Debug)]
struct Tail {
    n: u64,
    last_seq: u64,
    built_ms: u64,
    body: Arc<Encoded>,
}

/// The cache of chunks: the [`CACHED_CHUNKS`] most recently built whole ones, and the newest
/// unfinished one for [`TAIL_MS`] (or while the journal has not moved); and the permits that
/// bound building ([`CONCURRENT_BUILDS`]).
#[derive(Debug)]
pub struct Chunks {
    whole: Mutex<Whole>,
    tail: Mutex<Option<Tail>>,
    builds: tokio::sync::Semaphore,
}

impl Default for Chunks {
    fn default() -> Self {
        Self { whole: Mutex::default(), tail: Mutex::default(), builds: tokio::sync::Semaphore::new(CONCURRENT_BUILDS) }
    }
}

/// What the journal holds, for a canvas of geometry `g` and `palette`.
pub async fn info(
    store: &Arc<dyn Backend>,
    g: pixelparty_protocol::Geometry,
    palette: &[[u8; 3]],
) -> Result<Info, StorageError> {
    let last_seq = store.last_journal_seq().await?;
    let first = store.journal_after(0, 1).await?.into_iter().next();
    let last_time_ms = match last_seq {
        0 => 0,
        seq => store.journal_entry(seq).await?.map_or(0, |r| r.time_ms),
    };
    Ok(Info {
        first_seq: first.map_or(0, |r| r.seq),
        last_seq,
        first_time_ms: first.map_or(0, |r| r.time_ms),
        last_time_ms,
        complete: first.is_none_or(|r| r.seq == 1),
        chunk_updates: CHUNK_UPDATES,
        chunks: last_seq.div_ceil(CHUNK_UPDATES),
        width: g.width(),
        height: g.height(),
        bpp: g.bpp(),
        palette: palette.iter().map(|c| format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])).collect(),
    })
}

impl Chunks {
    /// Whole chunk `n` if it is cached.
    pub fn cached(&self, n: u64) -> Option<Chunk> {
        self.whole.lock().0.get(&n).map(|body| Chunk { body: body.clone(), whole: true })
    }

    /// The unfinished chunk `n` if it was built at `last_seq`, or less than [`TAIL_MS`] ago.
    pub fn tail(&self, n: u64, last_seq: u64, now_ms: u64) -> Option<Chunk> {
        let tail = self.tail.lock();
        let t = tail.as_ref().filter(|t| t.n == n && (t.last_seq == last_seq || now_ms < t.built_ms + TAIL_MS))?;
        Some(Chunk { body: t.body.clone(), whole: false })
    }

    /// Waits for a permit to build a chunk.
    pub async fn permit(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.builds.acquire().await.ok()
    }

    /// Builds chunk `n` from the journal's records after `n·CHUNK_UPDATES` (as read, at most
    /// [`CHUNK_UPDATES`]) when the journal's newest is `last_seq`, and keeps it. CPU work: run
    /// it off the event loop.
    pub fn build(&self, n: u64, records: &[PixelRecord], last_seq: u64, now_ms: u64) -> Chunk {
        let end = n.saturating_mul(CHUNK_UPDATES).saturating_add(CHUNK_UPDATES);
        let entries: Vec<Entry> = records.iter().filter(|r| r.seq <= end).map(Entry::from).collect();
        let raw = encode_chunk(n, &entries);
        let body = Arc::new(Encoded { gzip: gzip(&raw), raw: Bytes::from(raw) });
        // Whole only when every sequence of the chunk is in the journal: a pruned start or an
        // unfinished end may still change (the pruned one only by disappearing).
        let whole = end <= last_seq && entries.len() as u64 == CHUNK_UPDATES;
        if whole {
            let mut cache = self.whole.lock();
            if cache.0.insert(n, body.clone()).is_none() {
                cache.1.push_back(n);
                while cache.1.len() > CACHED_CHUNKS {
                    if let Some(old) = cache.1.pop_front() {
                        cache.0.remove(&old);
                    }
                }
            }
        } else {
            *self.tail.lock() = Some(Tail { n, last_seq, built_ms: now_ms, body: body.clone() });
        }
        Chunk { body, whole }
    }
}

// ---- export --------------------------------------------------------------------------------

/// The output format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Animated PNG.
    Apng,
    /// GIF.
    Gif,
}

impl Format {
    /// From a file name's extension (`.apng` or `.png`, `.gif`).
    pub fn of(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "apng" | "png" => Some(Self::Apng),
            "gif" => Some(Self::Gif),
            _ => None,
        }
    }
}

/// What to film: the canvas from `from_ms` to `to_ms` in `frames` frames of `delay_ms` each.
#[derive(Debug, Clone)]
pub struct Film {
    /// Canvas width.
    pub width: u32,
    /// Canvas height.
    pub height: u32,
    /// Palette.
    pub palette: Vec<[u8; 3]>,
    /// The first frame shows the canvas at this moment.
    pub from_ms: u64,
    /// The last frame shows the canvas at this moment.
    pub to_ms: u64,
    /// Number of frames (at least 2).
    pub frames: u32,
    /// Each frame's delay.
    pub delay_ms: u32,
    /// Each canvas pixel as `scale`×`scale` output pixels.
    pub scale: u32,
}

/// Most output pixels in one frame (a 4096×4096 canvas at scale 1).
pub const MAX_FRAME_PIXELS: u64 = 4096 * 4096;
/// Most frames in one export.
pub const MAX_FRAMES: u32 = 36_000;

impl Film {
    /// The moment frame `i` shows.
    pub fn moment(&self, i: u32) -> u64 {
        let span = u128::from(self.to_ms.saturating_sub(self.from_ms));
        let step = span * u128::from(i) / u128::from(self.frames.max(2) - 1);
        self.from_ms.saturating_add(u64::try_from(step).unwrap_or(u64::MAX))
    }

    /// Checks the bounds.
    pub fn check(&self) -> Result<(), String> {
        if self.frames < 2 || self.frames > MAX_FRAMES {
            return Err(format!("frames must be 2..={MAX_FRAMES} (fps × seconds)"));
        }
        if self.to_ms < self.from_ms {
            return Err("--to must not be before --from".into());
        }
        let pixels = u64::from(self.width)
            .checked_mul(u64::from(self.height))
            .and_then(|p| p.checked_mul(u64::from(self.scale).checked_mul(u64::from(self.scale))?));
        if self.scale == 0 || pixels.is_none_or(|p| p > MAX_FRAME_PIXELS) {
            return Err(format!("a frame may have at most {MAX_FRAME_PIXELS} pixels (lower --scale)"));
        }
        if self.palette.is_empty() || self.palette.len() > 256 {
            return Err("the palette must have 1..=256 colours".into());
        }
        Ok(())
    }

    /// Plays `entries` (ascending sequences, from the canvas's first update or from where the
    /// journal starts) onto a blank canvas and writes the frames to `out`. Returns the number
    /// of frames written.
    pub fn write(
        &self,
        entries: impl IntoIterator<Item = Entry>,
        format: Format,
        out: impl Write,
    ) -> Result<u32, String> {
        self.check()?;
        let (w, h) = (self.width as usize, self.height as usize);
        let mut canvas = vec![0u8; w * h];
        let mut entries = entries.into_iter().peekable();
        let mut sink = Sink::new(self, format, out)?;
        for i in 0..self.frames {
            let moment = self.moment(i);
            while let Some(e) = entries.next_if(|e| e.time_ms <= moment) {
                if usize::from(e.x) < w && usize::from(e.y) < h {
                    canvas[usize::from(e.y) * w + usize::from(e.x)] = e.colour;
                }
            }
            sink.frame(&self.scaled(&canvas))?;
        }
        sink.finish()?;
        Ok(self.frames)
    }

    fn scaled(&self, canvas: &[u8]) -> Vec<u8> {
        let (w, s) = (self.width as usize, self.scale as usize);
        if s == 1 {
            return canvas.to_vec();
        }
        let mut out = Vec::with_capacity(canvas.len() * s * s);
        for row in canvas.chunks(w) {
            let wide: Vec<u8> = row.iter().flat_map(|&c| std::iter::repeat_n(c, s)).collect();
            for _ in 0..s {
                out.extend_from_slice(&wide);
            }
        }
        out
    }
}

enum Sink<W: Write> {
    Apng(png::Writer<W>),
    Gif(gif::Encoder<W>, u16, u16, u16),
}

impl<W: Write> Sink<W> {
    fn new(film: &Film, format: Format, out: W) -> Result<Self, String> {
        let (w, h) = (film.width * film.scale, film.height * film.scale);
        let flat: Vec<u8> = film.palette.iter().flatten().copied().collect();
        let err = |e: &dyn std::fmt::Display| e.to_string();
        match format {
            Format::Apng => {
                let mut enc = png::Encoder::new(out, w, h);
                enc.set_color(png::ColorType::Indexed);
                enc.set_depth(png::BitDepth::Eight);
                enc.set_palette(flat);
                enc.set_animated(film.frames, 0).map_err(|e| err(&e))?;
                enc.set_frame_delay(film.delay_ms.min(u32::from(u16::MAX)) as u16, 1000).map_err(|e| err(&e))?;
                Ok(Self::Apng(enc.write_header().map_err(|e| err(&e))?))
            }
            Format::Gif => {
                let (gw, gh) = (u16::try_from(w).map_err(|e| err(&e))?, u16::try_from(h).map_err(|e| err(&e))?);
                // A GIF palette has a power-of-two size: pad with black.
                let mut table = flat;
                table.resize(3 * film.palette.len().next_power_of_two().max(2), 0);
                let mut enc = gif::Encoder::new(out, gw, gh, &table).map_err(|e| err(&e))?;
                enc.set_repeat(gif::Repeat::Infinite).map_err(|e| err(&e))?;
                // GIF delays are hundredths of a second.
                let delay = (film.delay_ms / 10).clamp(2, u32::from(u16::MAX)) as u16;
                Ok(Self::Gif(enc, gw, gh, delay))
            }
        }
    }

    fn frame(&mut self, pixels: &[u8]) -> Result<(), String> {
        match self {
            Self::Apng(w) => w.write_image_data(pixels).map_err(|e| e.to_string()),
            Self::Gif(enc, w, h, delay) => {
                let mut f = gif::Frame::from_indexed_pixels(*w, *h, pixels.to_vec(), None);
                f.delay = *delay;
                enc.write_frame(&f).map_err(|e| e.to_string())
            }
        }
    }

    fn finish(self) -> Result<(), String> {
        match self {
            Self::Apng(w) => w.finish().map_err(|e| e.to_string()),
            Self::Gif(enc, ..) => enc.into_inner().map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, x: u16, colour: u8, time_ms: u64) -> Entry {
        Entry { seq, x, y: 1, colour, time_ms }
    }

    #[test]
    fn chunks_round_trip_with_their_layout() {
        let entries = [entry(16_385, 3, 2, 1_000), entry(16_386, 4, 7, 1_250), entry(16_390, 65_535, 255, 1_250)];
        let bytes = encode_chunk(1, &entries);
        assert_eq!(&bytes[..4], b"PXTL");
        assert_eq!(u64::from_le_bytes(bytes[8..16].try_into().unwrap()), CHUNK_UPDATES, "base_seq");
        assert_eq!(u64::from_le_bytes(bytes[16..24].try_into().unwrap()), 1_000, "base_time_ms");
        assert_eq!(bytes.len(), 28 + 3 * 13);
        // The second entry: offset 2, x 4, y 1, colour 7, 250 ms after the first.
        assert_eq!(&bytes[41..54], &[2, 0, 0, 0, 4, 0, 1, 0, 7, 250, 0, 0, 0]);
        assert_eq!(decode_chunk(&bytes), Ok(entries.to_vec()));
        assert_eq!(decode_chunk(&encode_chunk(0, &[])), Ok(vec![]));
    }

    #[test]
    fn damaged_chunks_are_refused() {
        let good = encode_chunk(0, &[entry(1, 0, 1, 5), entry(2, 0, 1, 6)]);
        assert!(decode_chunk(&good[..good.len() - 1]).is_err(), "cut short");
        let mut bad = good.clone();
        bad[28] = 3; // The first offset above the second's.
        assert!(decode_chunk(&bad).is_err(), "out of order");
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(decode_chunk(&bad).is_err(), "magic");
        let mut bad = good;
        bad[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_chunk(&bad).is_err(), "count beyond the chunk");
    }

    fn record(seq: u64) -> PixelRecord {
        PixelRecord { seq, x: 1, y: 2, colour: 3, user: 4, time_ms: 1_000 + seq }
    }

    #[test]
    fn whole_chunks_are_kept_and_the_unfinished_one_only_briefly() {
        let chunks = Chunks::default();
        let first: Vec<PixelRecord> = (1..=CHUNK_UPDATES + 5).map(record).collect();
        let c = chunks.build(0, &first, CHUNK_UPDATES + 5, 0);
        assert!(c.whole, "all 16384 sequences, and the journal is past its end");
        assert_eq!(decode_chunk(&chunks.cached(0).unwrap().body.raw).unwrap().len(), CHUNK_UPDATES as usize);
        let last: Vec<PixelRecord> = (CHUNK_UPDATES + 1..=CHUNK_UPDATES + 5).map(record).collect();
        assert!(!chunks.build(1, &last, CHUNK_UPDATES + 5, 10_000).whole);
        assert!(chunks.cached(1).is_none());
        assert!(chunks.tail(1, CHUNK_UPDATES + 5, 50_000).is_some(), "the journal has not moved");
        assert!(chunks.tail(1, CHUNK_UPDATES + 6, 10_500).is_some(), "moved, but built under a second ago");
        assert!(chunks.tail(1, CHUNK_UPDATES + 6, 11_000).is_none(), "moved, and a second old: build again");
        let pruned: Vec<PixelRecord> = (2..=CHUNK_UPDATES).map(record).collect();
        assert!(!chunks.build(0, &pruned, CHUNK_UPDATES + 5, 0).whole, "a pruned start may still change");
        for n in 0..(CACHED_CHUNKS as u64 + 1) {
            let base = n * CHUNK_UPDATES;
            let rs: Vec<PixelRecord> = (base + 1..=base + CHUNK_UPDATES).map(record).collect();
            chunks.build(n, &rs, u64::MAX, 0);
        }
        assert!(chunks.cached(0).is_none(), "the oldest whole chunk left the bounded cache");
        assert!(chunks.cached(CACHED_CHUNKS as u64).is_some());
    }

    #[test]
    fn a_time_gap_beyond_u32_saturates_instead_of_wrapping() {
        let far = entry(2, 0, 1, 10 + u64::from(u32::MAX) + 5);
        let got = decode_chunk(&encode_chunk(0, &[entry(1, 0, 1, 10), far])).unwrap();
        assert_eq!(got[1].time_ms, 10 + u64::from(u32::MAX));
    }

    fn film() -> Film {
        Film {
            width: 4,
            height: 2,
            palette: vec![[0, 0, 0], [255, 255, 255], [255, 0, 0]],
            from_ms: 1_000,
            to_ms: 2_000,
            frames: 3,
            delay_ms: 100,
            scale: 2,
        }
    }

    /// Frames show the canvas at their moment: decode the APNG back and look at the pixels.
    #[test]
    fn an_apng_export_shows_each_moment() {
        let entries = vec![entry(1, 0, 1, 900), entry(2, 1, 2, 1_400), entry(3, 0, 2, 1_900), entry(4, 3, 1, 2_500)];
        let mut out = Vec::new();
        assert_eq!(film().write(entries, Format::Apng, &mut out), Ok(3));
        let mut reader = png::Decoder::new(std::io::Cursor::new(out)).read_info().unwrap();
        assert_eq!(reader.info().animation_control().map(|a| a.num_frames), Some(3));
        let mut buf = vec![0u8; reader.output_buffer_size().unwrap()];
        let mut frames = Vec::new();
        for _ in 0..3 {
            let info = reader.next_frame(&mut buf).unwrap();
            // Row 1 of the canvas (y = 1) is output rows 2 and 3; x = 0, 1, 3 at columns 0, 2, 6.
            let row = &buf[2 * info.line_size..3 * info.line_size];
            frames.push((row[0], row[2], row[6]));
        }
        assert_eq!(frames, [(1, 0, 0), (1, 2, 0), (2, 2, 0)], "at 1000, 1500 and 2000 ms; 2500 is past the end");
    }

    #[test]
    fn a_gif_export_decodes_to_the_same_frames() {
        let entries = vec![entry(1, 2, 2, 1_000)];
        let mut out = Vec::new();
        film().write(entries, Format::Gif, &mut out).unwrap();
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::Indexed);
        let mut dec = opts.read_info(std::io::Cursor::new(out)).unwrap();
        let mut count = 0;
        while let Some(f) = dec.read_next_frame().unwrap() {
            assert_eq!((f.width, f.height, f.delay), (8, 4, 10));
            assert_eq!(f.buffer[2 * 8 + 4], 2, "the pixel at (2, 1) is red from the first frame");
            count += 1;
        }
        assert_eq!(count, 3);
    }

    #[test]
    fn exports_are_bounded() {
        let mut f = film();
        f.frames = 1;
        assert!(f.check().is_err());
        let mut f = film();
        f.to_ms = f.from_ms - 1;
        assert!(f.check().is_err());
        let mut f = film();
        f.to_ms = f.from_ms;
        assert!(f.check().is_ok(), "a journal within one millisecond films too");
        let mut f = film();
        f.scale = 1 << 31;
        assert!(f.check().is_err(), "no overflow to a small product");
        let mut f = film();
        f.width = 4096;
        f.height = 4096;
        assert!(f.check().is_err(), "4096² at scale 2");
        assert!(Format::of(std::path::Path::new("x.GIF")) == Some(Format::Gif));
        assert!(Format::of(std::path::Path::new("x.mp4")).is_none());
    }
}
