//! Every bound of the wire format, as named constants.
//!
//! A decoder checks each of these before it allocates or slices, and the encoder refuses to
//! produce a frame that breaks one, so anything this crate encodes is decodable by every peer.
//! The relationships between limits are checked at compile time at the bottom of this file.

/// The newest protocol version this crate speaks (what clients built on it send in `Hello`).
/// Version 2 is version 1 plus the error codes `unavailable` and `outcome_unknown`.
pub const PROTOCOL_VERSION: u16 = 3;

/// The oldest version a server still speaks: a `Hello` outside
/// `MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION` is refused with
/// [`ErrorCode::UnsupportedVersion`](crate::ErrorCode::UnsupportedVersion).
pub const MIN_PROTOCOL_VERSION: u16 = 1;

/// Bytes of every frame header: opcode (`u8`) then payload length (`u32` LE).
pub const FRAME_HEADER_LEN: usize = 5;

/// Largest payload one frame may carry, in bytes.
pub const MAX_FRAME_PAYLOAD: usize = 128 * 1024;

/// Largest transport message (one WebSocket message), in bytes. Senders batch several frames
/// into one message up to this size. WebTransport streams have no message boundaries.
pub const MAX_TRANSPORT_MESSAGE: usize = 256 * 1024;

/// Longest user name, in UTF-8 bytes.
pub const MAX_NAME_BYTES: usize = 32;

/// Longest room name, in UTF-8 bytes.
pub const MAX_ROOM_NAME_BYTES: usize = 64;

/// Longest chat message text (room or direct), in UTF-8 bytes.
pub const MAX_TEXT_BYTES: usize = 2000;

/// Longest human-readable message in an `Error` or `Closing` frame, in UTF-8 bytes.
pub const MAX_REASON_BYTES: usize = 256;

/// Longest client agent string in `Hello`, in UTF-8 bytes.
pub const MAX_AGENT_BYTES: usize = 64;

/// Most tiles one `Subscribe`, `Unsubscribe` or `Resync` frame may list.
pub const MAX_TILES_PER_FRAME: usize = 1024;

/// Largest tile edge, in pixels. Tile-relative pixel offsets must fit a `u16`.
pub const MAX_TILE_SIZE: u16 = 256;

/// Smallest tile edge, in pixels.
pub const MIN_TILE_SIZE: u16 = 8;

/// Largest packed tile, in bytes (a `MAX_TILE_SIZE` tile at 8 bits per pixel).
pub const MAX_TILE_BYTES: usize = MAX_TILE_SIZE as usize * MAX_TILE_SIZE as usize;

/// Largest palette (8 bits per pixel).
pub const MAX_PALETTE: usize = 256;

/// Most entries in one `HistoryPage` frame (and the largest `limit` a client may ask for).
pub const MAX_HISTORY_PAGE: usize = 50;

/// Most entries in one `Presence` frame. Larger rooms send several frames.
pub const MAX_PRESENCE_ENTRIES: usize = 512;

/// Bytes per pixel update inside a `Pixels` frame: tile offset `u16` + colour `u8`.
pub const PIXEL_UPDATE_LEN: usize = 3;

/// Fixed head of a `Pixels` payload: tile `u32`, `prev_seq` `u64`, `last_seq` `u64`.
pub const PIXELS_HEAD_LEN: usize = 20;

/// Most pixel updates in one `Pixels` frame.
pub const MAX_PIXELS_PER_FRAME: usize = (MAX_FRAME_PAYLOAD - PIXELS_HEAD_LEN) / PIXEL_UPDATE_LEN;

/// Cursor value meaning "I hold nothing for this tile": the server answers with `TileData`.
pub const NO_CURSOR: u64 = u64::MAX;

/// Bytes a length-prefixed string costs beyond its content.
pub const STRING_PREFIX_LEN: usize = 2;

/// Largest encoded `HistoryPage` entry: seq, author, time, name, text.
pub const MAX_HISTORY_ENTRY_LEN: usize =
    8 + 4 + 8 + STRING_PREFIX_LEN + MAX_NAME_BYTES + STRING_PREFIX_LEN + MAX_TEXT_BYTES;

/// Largest encoded `Presence` entry: user id, name.
pub const MAX_PRESENCE_ENTRY_LEN: usize = 4 + STRING_PREFIX_LEN + MAX_NAME_BYTES;

// Compile-time checks of the relationships the codec relies on.
const _: () = assert!(FRAME_HEADER_LEN + MAX_FRAME_PAYLOAD <= MAX_TRANSPORT_MESSAGE);
const _: () = assert!(MAX_FRAME_PAYLOAD <= u32::MAX as usize);
// A whole tile at 8 bpp fits one TileData frame (tile u32, seq u64, length u32, bytes).
const _: () = assert!(16 + MAX_TILE_BYTES <= MAX_FRAME_PAYLOAD);
// Tile-relative offsets are u16.
const _: () = assert!(MAX_TILE_BYTES - 1 <= u16::MAX as usize);
// A full history page fits one frame (req u32, kind u8, conv u32, count u16, entries).
const _: () = assert!(11 + MAX_HISTORY_PAGE * MAX_HISTORY_ENTRY_LEN <= MAX_FRAME_PAYLOAD);
// A full presence frame fits (room u32, kind u8, count u16, entries).
const _: () = assert!(7 + MAX_PRESENCE_ENTRIES * MAX_PRESENCE_ENTRY_LEN <= MAX_FRAME_PAYLOAD);
// A full subscribe frame fits (count u16, 12 bytes per entry).
const _: () = assert!(2 + MAX_TILES_PER_FRAME * 12 <= MAX_FRAME_PAYLOAD);
// The largest chat frame fits (room message: 24 fixed bytes, name, text).
const _: () = assert!(24 + 2 * STRING_PREFIX_LEN + MAX_NAME_BYTES + MAX_TEXT_BYTES <= MAX_FRAME_PAYLOAD);
// Welcome with a full palette fits.
const _: () = assert!(64 + MAX_NAME_BYTES + 3 * MAX_PALETTE <= MAX_FRAME_PAYLOAD);
// String lengths fit their u16 prefix.
const _: () = assert!(MAX_TEXT_BYTES <= u16::MAX as usize);
const _: () = assert!(MAX_PIXELS_PER_FRAME >= MAX_TILE_BYTES / 2);
