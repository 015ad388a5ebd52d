//! Canvas geometry and pixel packing, as `PROTOCOL.md` defines them (see `Welcome`).
//!
//! Pure arithmetic shared by every party that holds canvas bytes: the server's tiles, the
//! store's snapshots, the bot client's replica. A tile's pixels are row-major, `bpp` bits
//! each, least significant bits first within a byte.

use crate::limits::{MAX_TILE_SIZE, MIN_TILE_SIZE};

/// Largest canvas edge in pixels (pixel coordinates are `u16` on the wire).
pub const MAX_CANVAS_EDGE: u32 = 65_535;

/// Why a geometry is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    /// Bits per pixel must be 1, 2, 4 or 8.
    #[error("bits per pixel must be 1, 2, 4 or 8, not {0}")]
    Bpp(u8),
    /// Tile size must be a power of two in range.
    #[error("tile size must be a power of two between {MIN_TILE_SIZE} and {MAX_TILE_SIZE}, not {0}")]
    TileSize(u16),
    /// Width or height out of range.
    #[error("canvas edges must be between 1 and {MAX_CANVAS_EDGE}, not {0}x{1}")]
    Size(u32, u32),
}

/// The shape of a canvas: size, depth and tiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    width: u32,
    height: u32,
    bpp: u8,
    tile_size: u16,
}

/// Where a pixel lives: its tile and its offset within the tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Location {
    /// Tile id.
    pub tile: u32,
    /// Row-major offset inside the tile.
    pub offset: u16,
}

impl Geometry {
    /// A validated geometry.
    pub fn new(width: u32, height: u32, bpp: u8, tile_size: u16) -> Result<Self, GeometryError> {
        if !crate::server::valid_bpp(bpp) {
            return Err(GeometryError::Bpp(bpp));
        }
        if !crate::server::valid_tile_size(tile_size) {
            return Err(GeometryError::TileSize(tile_size));
        }
        if width == 0 || height == 0 || width > MAX_CANVAS_EDGE || height > MAX_CANVAS_EDGE {
            return Err(GeometryError::Size(width, height));
        }
        Ok(Self { width, height, bpp, tile_size })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bits per pixel.
    pub fn bpp(&self) -> u8 {
        self.bpp
    }

    /// Number of palette entries the depth allows.
    pub fn colours(&self) -> usize {
        1 << self.bpp
    }

    /// Tile edge in pixels.
    pub fn tile_size(&self) -> u16 {
        self.tile_size
    }

    /// Tile columns.
    pub fn tiles_x(&self) -> u32 {
        self.width.div_ceil(u32::from(self.tile_size))
    }

    /// Tile rows.
    pub fn tiles_y(&self) -> u32 {
        self.height.div_ceil(u32::from(self.tile_size))
    }

    /// Number of tiles.
    pub fn tile_count(&self) -> u32 {
        self.tiles_x() * self.tiles_y()
    }

    /// Pixels per tile.
    pub fn tile_pixels(&self) -> usize {
        usize::from(self.tile_size) * usize::from(self.tile_size)
    }

    /// Bytes of one packed tile.
    pub fn tile_bytes(&self) -> usize {
        self.tile_pixels() * usize::from(self.bpp) / 8
    }

    /// Whether `(x, y)` is on the canvas.
    pub fn contains(&self, x: u32, y: u32) -> bool {
        x < self.width && y < self.height
    }

    /// The tile and offset of an on-canvas pixel, or `None` when it is off the canvas.
    pub fn locate(&self, x: u32, y: u32) -> Option<Location> {
        if !self.contains(x, y) {
            return None;
        }
        let ts = u32::from(self.tile_size);
        let tile = (y / ts) * self.tiles_x() + x / ts;
        let offset = ((y % ts) * ts + x % ts) as u16;
        Some(Location { tile, offset })
    }

    /// The canvas coordinates of `offset` in `tile` (may be off the canvas in edge tiles).
    pub fn coordinates(&self, tile: u32, offset: u16) -> (u32, u32) {
        let ts = u32::from(self.tile_size);
        let (tx, ty) = (tile % self.tiles_x(), tile / self.tiles_x());
        (tx * ts + u32::from(offset) % ts, ty * ts + u32::from(offset) / ts)
    }

    /// A dense id for an on-canvas pixel: `y * width + x`.
    pub fn pixel_id(&self, x: u32, y: u32) -> u32 {
        y * self.width + x
    }
}

/// Reads the colour at `offset` from a packed tile of depth `bpp`. Out-of-range offsets read 0.
pub fn get_pixel(tile: &[u8], bpp: u8, offset: u16) -> u8 {
    let bit = usize::from(offset) * usize::from(bpp);
    let Some(byte) = tile.get(bit / 8) else {
        return 0;
    };
    let mask = ((1u16 << bpp) - 1) as u8;
    (byte >> (bit % 8)) & mask
}

/// Writes `colour` at `offset` into a packed tile of depth `bpp`; bits above the depth are
/// ignored. Out-of-range offsets are ignored.
pub fn set_pixel(tile: &mut [u8], bpp: u8, offset: u16, colour: u8) {
    let bit = usize::from(offset) * usize::from(bpp);
    let Some(byte) = tile.get_mut(bit / 8) else {
        return;
    };
    let mask = ((1u16 << bpp) - 1) as u8;
    let shift = bit % 8;
    *byte = (*byte & !(mask << shift)) | ((colour & mask) << shift);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_and_back() {
        let g = Geometry::new(1000, 1000, 4, 256).unwrap();
        assert_eq!(g.tiles_x(), 4);
        assert_eq!(g.tile_count(), 16);
        assert_eq!(g.tile_bytes(), 32 * 1024);
        let loc = g.locate(300, 1025).map(|l| (l.tile, l.offset));
        assert_eq!(loc, None, "y beyond height");
        let loc = g.locate(300, 999).unwrap();
        assert_eq!(loc.tile, 3 * 4 + 1);
        assert_eq!(g.coordinates(loc.tile, loc.offset), (300, 999));
        assert!(g.locate(1000, 0).is_none());
    }

    #[test]
    fn packing_round_trips_at_every_depth() {
        for bpp in [1u8, 2, 4, 8] {
            let g = Geometry::new(64, 64, bpp, 16).unwrap();
            let mut tile = vec![0u8; g.tile_bytes()];
            for o in 0..g.tile_pixels() as u16 {
                set_pixel(&mut tile, bpp, o, (o as u8).wrapping_mul(7));
            }
            for o in 0..g.tile_pixels() as u16 {
                let expected = (o as u8).wrapping_mul(7) & (((1u16 << bpp) - 1) as u8);
                assert_eq!(get_pixel(&tile, bpp, o), expected);
            }
        }
        // 4 bpp: even offsets are the low nibble.
        let mut t = [0u8; 1];
        set_pixel(&mut t, 4, 0, 0xA);
        set_pixel(&mut t, 4, 1, 0x5);
        assert_eq!(t[0], 0x5A);
    }

    #[test]
    fn rejects_bad_geometry() {
        assert_eq!(Geometry::new(10, 10, 3, 16), Err(GeometryError::Bpp(3)));
        assert_eq!(Geometry::new(10, 10, 4, 100), Err(GeometryError::TileSize(100)));
        assert_eq!(Geometry::new(0, 10, 4, 16), Err(GeometryError::Size(0, 10)));
    }
}
