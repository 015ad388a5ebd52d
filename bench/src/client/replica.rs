//! A local copy of the canvas: the HTTP snapshot parsed, then kept current from `Pixels` and
//! `TileData` frames with a cursor per tile, so a reconnecting client can resume.

use std::collections::HashMap;

use pixelparty_protocol::Geometry;
use pixelparty_protocol::canvas::{get_pixel, set_pixel};
use pixelparty_protocol::limits::NO_CURSOR;
use pixelparty_protocol::server::{Pixels, TileData};

use super::error::ClientError;

/// The HTTP snapshot (PROTOCOL.md section 11).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Canvas shape.
    pub geometry: Geometry,
    /// Snapshot version.
    pub version: u64,
    /// When it was taken.
    pub taken_ms: u64,
    /// Tiles by id.
    pub tiles: Vec<Vec<u8>>,
    /// Sequence of each tile.
    pub seqs: Vec<u64>,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

impl Snapshot {
    /// Parses the document, checking magic, format and length.
    pub fn parse(b: &[u8]) -> Result<Self, ClientError> {
        let bad = |why: &str| ClientError::Protocol(format!("snapshot: {why}"));
        if b.len() < 40 || &b[..4] != b"PXSN" {
            return Err(bad("bad magic"));
        }
        if u16_at(b, 4) != 1 {
            return Err(bad("unknown format"));
        }
        let geometry =
            Geometry::new(u32_at(b, 12), u32_at(b, 16), b[6], u16_at(b, 8)).map_err(|e| bad(&e.to_string()))?;
        let count = u32_at(b, 20) as usize;
        if count != geometry.tile_count() as usize || b.len() != 40 + 8 * count + count * geometry.tile_bytes() {
            return Err(bad("length does not match the geometry"));
        }
        let seqs = (0..count).map(|i| u64_at(b, 40 + 8 * i)).collect();
        let base = 40 + 8 * count;
        let tiles =
            (0..count).map(|i| b[base + i * geometry.tile_bytes()..][..geometry.tile_bytes()].to_vec()).collect();
        Ok(Self { geometry, version: u64_at(b, 32), taken_ms: u64_at(b, 24), tiles, seqs })
    }
}

/// What applying a frame did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied; the tile's cursor moved.
    Applied,
    /// Already applied before (`last_seq <= cursor`).
    Stale,
    /// Updates were missed: re-subscribe the tile with its cursor.
    Gap(u32),
}

/// The canvas as a client holds it.
#[derive(Debug, Clone)]
pub struct Replica {
    geometry: Geometry,
    tiles: HashMap<u32, (Vec<u8>, u64)>,
}

impl Replica {
    /// An empty replica (holds no tile).
    pub fn new(geometry: Geometry) -> Self {
        Self { geometry, tiles: HashMap::new() }
    }

    /// A replica holding a whole snapshot.
    pub fn from_snapshot(s: Snapshot) -> Self {
        let tiles = s.tiles.into_iter().zip(s.seqs).enumerate().map(|(t, (d, q))| (t as u32, (d, q))).collect();
        Self { geometry: s.geometry, tiles }
    }

    /// The canvas shape.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The cursor to subscribe `tile` with.
    pub fn cursor(&self, tile: u32) -> u64 {
        self.tiles.get(&tile).map_or(NO_CURSOR, |t| t.1)
    }

    /// A held tile's bytes and cursor.
    pub fn tile(&self, tile: u32) -> Option<(&[u8], u64)> {
        self.tiles.get(&tile).map(|(d, s)| (d.as_slice(), *s))
    }

    /// The colour at `(x, y)` if its tile is held.
    pub fn pixel(&self, x: u32, y: u32) -> Option<u8> {
        let loc = self.geometry.locate(x, y)?;
        let (data, _) = self.tiles.get(&loc.tile)?;
        Some(get_pixel(data, self.geometry.bpp(), loc.offset))
    }

    /// Applies a `Pixels` frame if it chains onto the tile's cursor.
    pub fn apply_pixels(&mut self, p: &Pixels<'_>) -> Applied {
        let tile = p.head.tile();
        let Some((data, cursor)) = self.tiles.get_mut(&tile) else { return Applied::Gap(tile) };
        if p.head.last_seq() <= *cursor {
            return Applied::Stale;
        }
        if p.head.prev_seq() != *cursor {
            return Applied::Gap(tile);
        }
        let bpp = self.geometry.bpp();
        for u in p.updates {
            set_pixel(data, bpp, u.offset(), u.colour());
        }
        *cursor = p.head.last_seq();
        Applied::Applied
    }

    /// Replaces a tile from a `TileData` frame.
    pub fn apply_tile(&mut self, t: &TileData<'_>) {
        self.tiles.insert(t.tile, (t.data.to_vec(), t.seq));
    }

    /// Every held tile.
    pub fn tiles(&self) -> impl Iterator<Item = (u32, &[u8], u64)> {
        self.tiles.iter().map(|(t, (d, s))| (*t, d.as_slice(), *s))
    }
}

#[cfg(test)]
mod tests {
    use pixelparty_protocol::{PixelUpdate, PixelsHead};

    use super::*;

    #[test]
    fn chains_and_detects_gaps() {
        let g = Geometry::new(16, 16, 4, 8).unwrap();
        let mut r = Replica::new(g);
        r.apply_tile(&TileData { tile: 0, seq: 5, data: &[0; 32] });
        let ups = [PixelUpdate::new(1, 7)];
        assert_eq!(r.apply_pixels(&Pixels { head: PixelsHead::new(0, 5, 9), updates: &ups }), Applied::Applied);
        assert_eq!(r.pixel(1, 0), Some(7));
        assert_eq!(r.apply_pixels(&Pixels { head: PixelsHead::new(0, 5, 9), updates: &ups }), Applied::Stale);
        assert_eq!(r.apply_pixels(&Pixels { head: PixelsHead::new(0, 10, 12), updates: &ups }), Applied::Gap(0));
        assert_eq!(r.apply_pixels(&Pixels { head: PixelsHead::new(3, 0, 1), updates: &ups }), Applied::Gap(3));
        assert_eq!(r.cursor(0), 9);
        assert_eq!(r.cursor(1), NO_CURSOR);
    }
}
