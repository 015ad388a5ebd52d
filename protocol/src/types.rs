//! Value types shared by both directions: small wire enums and the fixed-layout hot structs.
//!
//! The hot structs (`TileCursor`, `PixelUpdate`, `PixelsHead`) are `zerocopy` types with
//! little-endian fields and alignment 1, so a decoder reads a whole slice of them straight out
//! of the receive buffer and an encoder writes them with one copy.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::wire_enum;

wire_enum! {
    /// A user's role.
    pub enum Role: u8 {
        /// An ordinary user.
        User = 0,
        /// An administrator: may delete any message, ban, kick and roll back.
        Admin = 1,
        /// (Version 3) a logged-out visitor: a read-only session that watches the canvas.
        Visitor = 2,
    }
}

wire_enum! {
    /// (Version 3) what a `Social` frame reports.
    pub enum SocialKind: u8 {
        /// The user `id` asks to be friends.
        FriendRequest = 0,
        /// This user asked `id` to be friends.
        RequestSent = 1,
        /// This user and `id` are friends now.
        FriendAdded = 2,
        /// No friendship and no request between this user and `id` any more.
        FriendRemoved = 3,
        /// This user blocks `id` now.
        Blocked = 4,
        /// This user no longer blocks `id`.
        Unblocked = 5,
        /// The friend `id` has a live session now.
        Online = 6,
        /// The friend `id` has no live session any more.
        Offline = 7,
        /// The room `id` was created.
        RoomCreated = 8,
    }
}

wire_enum! {
    /// What kind of program a client says it is (informational; used in metrics).
    pub enum ClientKind: u8 {
        /// The bundled web client.
        Browser = 0,
        /// A bot built on the client library.
        Bot = 1,
        /// A load generator.
        Bench = 2,
    }
}

wire_enum! {
    /// Which kind of conversation a message belongs to.
    pub enum ConvKind: u8 {
        /// A room; the conversation id is the room id.
        Room = 0,
        /// Direct messages; the conversation id is the other user's id.
        Direct = 1,
    }
}

wire_enum! {
    /// What a `Presence` frame reports.
    pub enum PresenceKind: u8 {
        /// The full member list (possibly split over several frames, see `PROTOCOL.md`).
        Snapshot = 0,
        /// These users joined.
        Joined = 1,
        /// These users left.
        Left = 2,
    }
}

/// One entry of a `Subscribe` frame: a tile and the sequence the client already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TileCursor {
    tile: U32,
    cursor: U64,
}

impl TileCursor {
    /// A cursor entry; `cursor` is [`NO_CURSOR`](crate::limits::NO_CURSOR) when the client
    /// holds nothing for the tile.
    pub fn new(tile: u32, cursor: u64) -> Self {
        Self { tile: tile.into(), cursor: cursor.into() }
    }

    /// The tile id.
    pub fn tile(&self) -> u32 {
        self.tile.get()
    }

    /// The last sequence the client has applied for this tile.
    pub fn cursor(&self) -> u64 {
        self.cursor.get()
    }
}

/// A tile id as it sits on the wire (`u32` LE, unaligned).
pub type WireTile = U32;

/// One pixel update inside a `Pixels` frame: offset within the tile and colour index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct PixelUpdate {
    offset: U16,
    colour: u8,
}

impl PixelUpdate {
    /// An update of the pixel at `offset` (`y * tile_size + x` within the tile).
    pub fn new(offset: u16, colour: u8) -> Self {
        Self { offset: offset.into(), colour }
    }

    /// Offset of the pixel within its tile, row-major.
    pub fn offset(&self) -> u16 {
        self.offset.get()
    }

    /// Palette index.
    pub fn colour(&self) -> u8 {
        self.colour
    }
}

/// The fixed head of a `Pixels` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct PixelsHead {
    tile: U32,
    prev_seq: U64,
    last_seq: U64,
}

impl PixelsHead {
    /// Head of a batch covering every update of `tile` in `(prev_seq, last_seq]`.
    pub fn new(tile: u32, prev_seq: u64, last_seq: u64) -> Self {
        Self { tile: tile.into(), prev_seq: prev_seq.into(), last_seq: last_seq.into() }
    }

    /// The tile id.
    pub fn tile(&self) -> u32 {
        self.tile.get()
    }

    /// The tile's sequence before this batch: a client whose cursor differs missed updates.
    pub fn prev_seq(&self) -> u64 {
        self.prev_seq.get()
    }

    /// The tile's sequence after this batch: the client's new cursor.
    pub fn last_seq(&self) -> u64 {
        self.last_seq.get()
    }
}

/// The fixed body of a `Paint` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct PaintWire {
    pub(crate) req: U32,
    pub(crate) x: U16,
    pub(crate) y: U16,
    pub(crate) colour: u8,
}

const _: () = assert!(size_of::<TileCursor>() == 12);
const _: () = assert!(size_of::<PixelUpdate>() == crate::limits::PIXEL_UPDATE_LEN);
const _: () = assert!(size_of::<PixelsHead>() == crate::limits::PIXELS_HEAD_LEN);
const _: () = assert!(size_of::<PaintWire>() == 9);
