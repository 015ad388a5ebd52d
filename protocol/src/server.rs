//! Frames the server sends to a client (opcodes `0x81`..`0x8F`).
//!
//! Like client frames, decoded server frames borrow from the receive buffer. The hot frame,
//! `Pixels`, is a fixed head plus a slice of 3-byte updates read in place.

use bytes::BufMut;
use zerocopy::IntoBytes;

use crate::codec::{Decoded, Frames, Reader, WireFrame, check_str, put_header, put_str, split_frame, str_len};
use crate::error::{CloseReason, DecodeError, EncodeError, ErrorCode};
use crate::limits::{
    FRAME_HEADER_LEN, MAX_HISTORY_PAGE, MAX_NAME_BYTES, MAX_PALETTE, MAX_PIXELS_PER_FRAME, MAX_PRESENCE_ENTRIES,
    MAX_REASON_BYTES, MAX_ROOM_NAME_BYTES, MAX_TEXT_BYTES, MAX_TILE_BYTES, MAX_TILE_SIZE, MAX_TILES_PER_FRAME,
    MIN_TILE_SIZE, PIXEL_UPDATE_LEN,
};
use crate::list::{List, ListItem};
use crate::types::{ConvKind, PixelUpdate, PixelsHead, PresenceKind, Role, SocialKind, WireTile};

/// Server opcodes.
pub mod op {
    /// `Welcome`.
    pub const WELCOME: u8 = 0x81;
    /// `Ack`.
    pub const ACK: u8 = 0x82;
    /// `Error`.
    pub const ERROR: u8 = 0x83;
    /// `Pixels`.
    pub const PIXELS: u8 = 0x84;
    /// `TileData`.
    pub const TILE_DATA: u8 = 0x85;
    /// `Resync`.
    pub const RESYNC: u8 = 0x86;
    /// `RoomMessage`.
    pub const ROOM_MESSAGE: u8 = 0x87;
    /// `DirectMessage`.
    pub const DIRECT_MESSAGE: u8 = 0x88;
    /// `Deleted`.
    pub const DELETED: u8 = 0x89;
    /// `HistoryPage`.
    pub const HISTORY_PAGE: u8 = 0x8A;
    /// `Presence`.
    pub const PRESENCE: u8 = 0x8B;
    /// `Cooldown`.
    pub const COOLDOWN: u8 = 0x8C;
    /// `Pong`.
    pub const PONG: u8 = 0x8D;
    /// `Closing`.
    pub const CLOSING: u8 = 0x8E;
    /// `Social` (version 3).
    pub const SOCIAL: u8 = 0x8F;
}

/// A palette colour, `0xRRGGBB`.
pub type Rgb = [u8; 3];

/// The server's answer to `Hello`: who the client is and what the canvas looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Welcome<'a> {
    /// Protocol version the server speaks.
    pub version: u16,
    /// The session's user id.
    pub user: u32,
    /// The session's role.
    pub role: Role,
    /// The session's user name.
    pub name: &'a str,
    /// Canvas width in pixels.
    pub width: u32,
    /// Canvas height in pixels.
    pub height: u32,
    /// Bits per pixel: 1, 2, 4 or 8.
    pub bpp: u8,
    /// Tile edge in pixels (a power of two in `MIN_TILE_SIZE..=MAX_TILE_SIZE`).
    pub tile_size: u16,
    /// Paint cooldown in milliseconds (0: none).
    pub cooldown_ms: u32,
    /// Server time when the user may paint next (ms since the Unix epoch).
    pub ready_at_ms: u64,
    /// Server time now (ms since the Unix epoch).
    pub server_time_ms: u64,
    /// Palette, at most `2^bpp` colours.
    pub palette: &'a [Rgb],
}

/// A request succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The request's id.
    pub req: u32,
    /// Result value: the sequence assigned to a paint or message, otherwise 0.
    pub value: u64,
}

/// A request failed, or (with `req` 0) the session did something wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error<'a> {
    /// The request's id, 0 when the error is not about one request.
    pub req: u32,
    /// What went wrong.
    pub code: ErrorCode,
    /// For `Cooldown`, `RateLimited`, `Overloaded`: milliseconds to wait. Otherwise 0.
    pub retry_after_ms: u32,
    /// Human-readable detail.
    pub message: &'a str,
}

/// Pixel updates of one tile covering the sequence range `(prev_seq, last_seq]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pixels<'a> {
    /// Tile and sequence range.
    pub head: PixelsHead,
    /// Updates in the order the server applied them.
    pub updates: &'a [PixelUpdate],
}

/// The whole content of a tile at a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileData<'a> {
    /// Tile id.
    pub tile: u32,
    /// The tile reflects every update up to this sequence.
    pub seq: u64,
    /// Packed pixels, row-major, `tile_size * tile_size * bpp / 8` bytes.
    pub data: &'a [u8],
}

/// Updates for these tiles were dropped: re-subscribe with the cursors you hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resync<'a> {
    /// Tile ids.
    pub tiles: &'a [WireTile],
}

/// A message posted in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomMessage<'a> {
    /// Room id.
    pub room: u32,
    /// Per-room sequence.
    pub seq: u64,
    /// Author's user id.
    pub author: u32,
    /// Server time of posting (ms since the Unix epoch).
    pub time_ms: u64,
    /// Author's name.
    pub author_name: &'a str,
    /// Text.
    pub text: &'a str,
}

/// A direct message between two friends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectMessage<'a> {
    /// Sender.
    pub from: u32,
    /// Recipient.
    pub to: u32,
    /// Per-conversation sequence.
    pub seq: u64,
    /// Server time of sending.
    pub time_ms: u64,
    /// Sender's name.
    pub from_name: &'a str,
    /// Text.
    pub text: &'a str,
}

/// A message was deleted: remove it from view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    /// Room or direct conversation.
    pub kind: ConvKind,
    /// Room id, or for direct messages the other user's id (from the receiver's view).
    pub conv: u32,
    /// Sequence of the deleted message.
    pub seq: u64,
}

/// One message in a history page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryEntry<'a> {
    /// Sequence.
    pub seq: u64,
    /// Author's user id.
    pub author: u32,
    /// Time of posting.
    pub time_ms: u64,
    /// Author's name.
    pub author_name: &'a str,
    /// Text.
    pub text: &'a str,
}

impl<'a> ListItem<'a> for HistoryEntry<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Self {
            seq: r.u64()?,
            author: r.u32()?,
            time_ms: r.u64()?,
            author_name: r.str(MAX_NAME_BYTES)?,
            text: r.str(MAX_TEXT_BYTES)?,
        })
    }

    fn check(&self) -> Result<(), EncodeError> {
        check_str(self.author_name, MAX_NAME_BYTES)?;
        check_str(self.text, MAX_TEXT_BYTES)
    }

    fn encoded_len(&self) -> usize {
        20 + str_len(self.author_name) + str_len(self.text)
    }

    fn write(&self, out: &mut impl BufMut) {
        out.put_u64_le(self.seq);
        out.put_u32_le(self.author);
        out.put_u64_le(self.time_ms);
        put_str(out, self.author_name);
        put_str(out, self.text);
    }
}

/// A page of history, oldest first, without deleted messages or messages the receiver may not
/// see (blocked authors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPage<'a> {
    /// The request's id (the `JoinRoom` request's for the page sent on join).
    pub req: u32,
    /// Room or direct conversation.
    pub kind: ConvKind,
    /// Room id or the other user's id.
    pub conv: u32,
    /// Messages, ascending by sequence.
    pub entries: List<'a, HistoryEntry<'a>>,
}

/// One user in a presence frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceEntry<'a> {
    /// User id.
    pub user: u32,
    /// User name.
    pub name: &'a str,
}

impl<'a> ListItem<'a> for PresenceEntry<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Self { user: r.u32()?, name: r.str(MAX_NAME_BYTES)? })
    }

    fn check(&self) -> Result<(), EncodeError> {
        check_str(self.name, MAX_NAME_BYTES)
    }

    fn encoded_len(&self) -> usize {
        4 + str_len(self.name)
    }

    fn write(&self, out: &mut impl BufMut) {
        out.put_u32_le(self.user);
        put_str(out, self.name);
    }
}

/// Who is in a room, or who joined or left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence<'a> {
    /// Room id.
    pub room: u32,
    /// Snapshot, joined or left.
    pub kind: PresenceKind,
    /// Users.
    pub entries: List<'a, PresenceEntry<'a>>,
}

/// The user's paint cooldown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cooldown {
    /// Server time when the next paint is allowed (ms since the Unix epoch).
    pub ready_at_ms: u64,
    /// Length of the cooldown in milliseconds.
    pub cooldown_ms: u32,
}

/// Answer to `Ping`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pong {
    /// The ping's nonce.
    pub nonce: u64,
    /// Server time now.
    pub server_time_ms: u64,
}

/// The server is ending the session; the transport closes right after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closing<'a> {
    /// Why.
    pub reason: CloseReason,
    /// Human-readable detail (for a ban: its reason).
    pub message: &'a str,
}

/// (Version 3) a change to the session's user's friends, blocks or rooms, pushed as it
/// happens (`PROTOCOL.md`, section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Social<'a> {
    /// What happened.
    pub kind: SocialKind,
    /// The other user (the room for `RoomCreated`).
    pub id: u32,
    /// Their name (the room's name).
    pub name: &'a str,
}

/// Every frame a server may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerFrame<'a> {
    /// Handshake answer.
    Welcome(Welcome<'a>),
    /// Request succeeded.
    Ack(Ack),
    /// Request failed.
    Error(Error<'a>),
    /// Pixel updates of one tile.
    Pixels(Pixels<'a>),
    /// A whole tile.
    TileData(TileData<'a>),
    /// Tiles to re-subscribe.
    Resync(Resync<'a>),
    /// Room message.
    RoomMessage(RoomMessage<'a>),
    /// Direct message.
    DirectMessage(DirectMessage<'a>),
    /// Message deleted.
    Deleted(Deleted),
    /// History page.
    HistoryPage(HistoryPage<'a>),
    /// Presence.
    Presence(Presence<'a>),
    /// Cooldown state.
    Cooldown(Cooldown),
    /// Keepalive answer.
    Pong(Pong),
    /// Session end.
    Closing(Closing<'a>),
    /// (Version 3) a social change.
    Social(Social<'a>),
}

/// Whether `bpp` is a supported bits-per-pixel value.
pub fn valid_bpp(bpp: u8) -> bool {
    matches!(bpp, 1 | 2 | 4 | 8)
}

/// Whether `size` is a supported tile edge.
pub fn valid_tile_size(size: u16) -> bool {
    size.is_power_of_two() && (MIN_TILE_SIZE..=MAX_TILE_SIZE).contains(&size)
}

fn count_error(count: usize, max: usize) -> EncodeError {
    EncodeError::CountTooLarge { count, max }
}

impl<'a> ServerFrame<'a> {
    /// The frame's opcode.
    pub fn opcode(&self) -> u8 {
        match self {
            Self::Welcome(_) => op::WELCOME,
            Self::Ack(_) => op::ACK,
            Self::Error(_) => op::ERROR,
            Self::Pixels(_) => op::PIXELS,
            Self::TileData(_) => op::TILE_DATA,
            Self::Resync(_) => op::RESYNC,
            Self::RoomMessage(_) => op::ROOM_MESSAGE,
            Self::DirectMessage(_) => op::DIRECT_MESSAGE,
            Self::Deleted(_) => op::DELETED,
            Self::HistoryPage(_) => op::HISTORY_PAGE,
            Self::Presence(_) => op::PRESENCE,
            Self::Cooldown(_) => op::COOLDOWN,
            Self::Pong(_) => op::PONG,
            Self::Closing(_) => op::CLOSING,
            Self::Social(_) => op::SOCIAL,
        }
    }

    fn check(&self) -> Result<(), EncodeError> {
        match self {
            Self::Welcome(w) => {
                check_str(w.name, MAX_NAME_BYTES)?;
                if !valid_bpp(w.bpp) {
                    return Err(EncodeError::InvalidValue { field: "bpp" });
                }
                if !valid_tile_size(w.tile_size) {
                    return Err(EncodeError::InvalidValue { field: "tile_size" });
                }
                let max = 1usize << w.bpp;
                if w.palette.len() > max.min(MAX_PALETTE) {
                    return Err(count_error(w.palette.len(), max.min(MAX_PALETTE)));
                }
                Ok(())
            }
            Self::Error(e) => check_str(e.message, MAX_REASON_BYTES),
            Self::Pixels(p) if p.updates.len() > MAX_PIXELS_PER_FRAME => {
                Err(count_error(p.updates.len(), MAX_PIXELS_PER_FRAME))
            }
            Self::TileData(t) if t.data.len() > MAX_TILE_BYTES => Err(count_error(t.data.len(), MAX_TILE_BYTES)),
            Self::Resync(r) if r.tiles.len() > MAX_TILES_PER_FRAME => {
                Err(count_error(r.tiles.len(), MAX_TILES_PER_FRAME))
            }
            Self::RoomMessage(m) => {
                check_str(m.author_name, MAX_NAME_BYTES)?;
                check_str(m.text, MAX_TEXT_BYTES)
            }
            Self::DirectMessage(m) => {
                check_str(m.from_name, MAX_NAME_BYTES)?;
                check_str(m.text, MAX_TEXT_BYTES)
            }
            Self::HistoryPage(h) => h.entries.check(MAX_HISTORY_PAGE),
            Self::Presence(p) => p.entries.check(MAX_PRESENCE_ENTRIES),
            Self::Closing(c) => check_str(c.message, MAX_REASON_BYTES),
            Self::Social(s) => check_str(s.name, MAX_ROOM_NAME_BYTES),
            _ => Ok(()),
        }
    }

    fn payload_len(&self) -> usize {
        match self {
            Self::Welcome(w) => 38 + str_len(w.name) + 2 + 3 * w.palette.len(),
            Self::Ack(_) => 12,
            Self::Error(e) => 10 + str_len(e.message),
            Self::Pixels(p) => size_of::<PixelsHead>() + p.updates.len() * PIXEL_UPDATE_LEN,
            Self::TileData(t) => 16 + t.data.len(),
            Self::Resync(r) => 2 + 4 * r.tiles.len(),
            Self::RoomMessage(m) => 24 + str_len(m.author_name) + str_len(m.text),
            Self::DirectMessage(m) => 24 + str_len(m.from_name) + str_len(m.text),
            Self::Deleted(_) => 13,
            Self::HistoryPage(h) => 11 + h.entries.encoded_len(),
            Self::Presence(p) => 7 + p.entries.encoded_len(),
            Self::Cooldown(_) => 12,
            Self::Pong(_) => 16,
            Self::Closing(c) => 1 + str_len(c.message),
            Self::Social(s) => 5 + str_len(s.name),
        }
    }

    /// Bytes this frame occupies once encoded, header included.
    pub fn encoded_len(&self) -> usize {
        FRAME_HEADER_LEN + self.payload_len()
    }

    /// Appends the encoded frame to `out`. Fails, writing nothing, if a limit is broken.
    pub fn encode(&self, out: &mut impl BufMut) -> Result<(), EncodeError> {
        self.check()?;
        put_header(out, self.opcode(), self.payload_len())?;
        match self {
            Self::Welcome(w) => {
                out.put_u16_le(w.version);
                out.put_u32_le(w.user);
                out.put_u8(w.role.to_wire());
                out.put_u32_le(w.width);
                out.put_u32_le(w.height);
                out.put_u8(w.bpp);
                out.put_u16_le(w.tile_size);
                out.put_u32_le(w.cooldown_ms);
                out.put_u64_le(w.ready_at_ms);
                out.put_u64_le(w.server_time_ms);
                put_str(out, w.name);
                out.put_u16_le(w.palette.len() as u16);
                out.put_slice(w.palette.as_flattened());
            }
            Self::Ack(a) => {
                out.put_u32_le(a.req);
                out.put_u64_le(a.value);
            }
            Self::Error(e) => {
                out.put_u32_le(e.req);
                out.put_u16_le(e.code.to_wire());
                out.put_u32_le(e.retry_after_ms);
                put_str(out, e.message);
            }
            Self::Pixels(p) => {
                out.put_slice(p.head.as_bytes());
                out.put_slice(p.updates.as_bytes());
            }
            Self::TileData(t) => {
                out.put_u32_le(t.tile);
                out.put_u64_le(t.seq);
                out.put_u32_le(t.data.len() as u32);
                out.put_slice(t.data);
            }
            Self::Resync(r) => {
                out.put_u16_le(r.tiles.len() as u16);
                out.put_slice(r.tiles.as_bytes());
            }
            Self::RoomMessage(m) => {
                out.put_u32_le(m.room);
                out.put_u64_le(m.seq);
                out.put_u32_le(m.author);
                out.put_u64_le(m.time_ms);
                put_str(out, m.author_name);
                put_str(out, m.text);
            }
            Self::DirectMessage(m) => {
                out.put_u32_le(m.from);
                out.put_u32_le(m.to);
                out.put_u64_le(m.seq);
                out.put_u64_le(m.time_ms);
                put_str(out, m.from_name);
                put_str(out, m.text);
            }
            Self::Deleted(d) => {
                out.put_u8(d.kind.to_wire());
                out.put_u32_le(d.conv);
                out.put_u64_le(d.seq);
            }
            Self::HistoryPage(h) => {
                out.put_u32_le(h.req);
                out.put_u8(h.kind.to_wire());
                out.put_u32_le(h.conv);
                out.put_u16_le(h.entries.len() as u16);
                h.entries.write(out);
            }
            Self::Presence(p) => {
                out.put_u32_le(p.room);
                out.put_u8(p.kind.to_wire());
                out.put_u16_le(p.entries.len() as u16);
                p.entries.write(out);
            }
            Self::Cooldown(c) => {
                out.put_u64_le(c.ready_at_ms);
                out.put_u32_le(c.cooldown_ms);
            }
            Self::Pong(p) => {
                out.put_u64_le(p.nonce);
                out.put_u64_le(p.server_time_ms);
            }
            Self::Closing(c) => {
                out.put_u8(c.reason.to_wire());
                put_str(out, c.message);
            }
            Self::Social(s) => {
                out.put_u8(s.kind.to_wire());
                out.put_u32_le(s.id);
                put_str(out, s.name);
            }
        }
        Ok(())
    }

    /// Decodes the frame at the front of `buf`.
    pub fn decode(buf: &'a [u8]) -> Result<Decoded<ServerFrame<'a>>, DecodeError> {
        Ok(match split_frame(buf)? {
            Decoded::Frame { frame: (opcode, payload), len } => {
                Decoded::Frame { frame: Self::decode_payload(opcode, payload)?, len }
            }
            Decoded::Incomplete { needed } => Decoded::Incomplete { needed },
        })
    }

    /// Decodes one frame's payload given its opcode.
    pub fn decode_payload(opcode: u8, payload: &'a [u8]) -> Result<ServerFrame<'a>, DecodeError> {
        let mut r = Reader::new(opcode, payload);
        let frame = match opcode {
            op::WELCOME => Self::Welcome(decode_welcome(&mut r)?),
            op::ACK => Self::Ack(Ack { req: r.u32()?, value: r.u64()? }),
            op::ERROR => {
                let req = r.u32()?;
                let code = ErrorCode::from_wire(r.u16()?).ok_or(r.invalid("code"))?;
                let retry_after_ms = r.u32()?;
                let message = r.str(MAX_REASON_BYTES)?;
                Self::Error(Error { req, code, retry_after_ms, message })
            }
            op::PIXELS => {
                let head: &PixelsHead = r.fixed()?;
                if !r.remaining().is_multiple_of(PIXEL_UPDATE_LEN) {
                    return Err(DecodeError::Truncated { opcode });
                }
                let count = r.remaining() / PIXEL_UPDATE_LEN;
                Self::Pixels(Pixels { head: *head, updates: r.slice(count)? })
            }
            op::TILE_DATA => {
                let tile = r.u32()?;
                let seq = r.u64()?;
                let len = r.u32()? as usize;
                if len > MAX_TILE_BYTES {
                    return Err(DecodeError::CountTooLarge { count: len as u32, max: MAX_TILE_BYTES as u32 });
                }
                Self::TileData(TileData { tile, seq, data: r.bytes(len)? })
            }
            op::RESYNC => {
                let count = r.count(MAX_TILES_PER_FRAME)?;
                Self::Resync(Resync { tiles: r.slice(count)? })
            }
            op::ROOM_MESSAGE => Self::RoomMessage(RoomMessage {
                room: r.u32()?,
                seq: r.u64()?,
                author: r.u32()?,
                time_ms: r.u64()?,
                author_name: r.str(MAX_NAME_BYTES)?,
                text: r.str(MAX_TEXT_BYTES)?,
            }),
            op::DIRECT_MESSAGE => Self::DirectMessage(DirectMessage {
                from: r.u32()?,
                to: r.u32()?,
                seq: r.u64()?,
                time_ms: r.u64()?,
                from_name: r.str(MAX_NAME_BYTES)?,
                text: r.str(MAX_TEXT_BYTES)?,
            }),
            op::DELETED => {
                let kind = ConvKind::from_wire(r.u8()?).ok_or(r.invalid("kind"))?;
                Self::Deleted(Deleted { kind, conv: r.u32()?, seq: r.u64()? })
            }
            op::HISTORY_PAGE => {
                let req = r.u32()?;
                let kind = ConvKind::from_wire(r.u8()?).ok_or(r.invalid("kind"))?;
                let conv = r.u32()?;
                let count = r.count(MAX_HISTORY_PAGE)?;
                let entries = List::read(&mut r, count)?;
                Self::HistoryPage(HistoryPage { req, kind, conv, entries })
            }
            op::PRESENCE => {
                let room = r.u32()?;
                let kind = PresenceKind::from_wire(r.u8()?).ok_or(r.invalid("kind"))?;
                let count = r.count(MAX_PRESENCE_ENTRIES)?;
                let entries = List::read(&mut r, count)?;
                Self::Presence(Presence { room, kind, entries })
            }
            op::COOLDOWN => Self::Cooldown(Cooldown { ready_at_ms: r.u64()?, cooldown_ms: r.u32()? }),
            op::PONG => Self::Pong(Pong { nonce: r.u64()?, server_time_ms: r.u64()? }),
            op::CLOSING => {
                let reason = CloseReason::from_wire(r.u8()?).ok_or(r.invalid("reason"))?;
                Self::Closing(Closing { reason, message: r.str(MAX_REASON_BYTES)? })
            }
            op::SOCIAL => {
                let kind = SocialKind::from_wire(r.u8()?).ok_or(r.invalid("kind"))?;
                Self::Social(Social { kind, id: r.u32()?, name: r.str(MAX_ROOM_NAME_BYTES)? })
            }
            _ => return Err(DecodeError::UnknownOpcode { opcode }),
        };
        r.finish()?;
        Ok(frame)
    }
}

fn decode_welcome<'a>(r: &mut Reader<'a>) -> Result<Welcome<'a>, DecodeError> {
    let version = r.u16()?;
    let user = r.u32()?;
    let role = Role::from_wire(r.u8()?).ok_or(r.invalid("role"))?;
    let width = r.u32()?;
    let height = r.u32()?;
    let bpp = r.u8()?;
    if !valid_bpp(bpp) {
        return Err(r.invalid("bpp"));
    }
    let tile_size = r.u16()?;
    if !valid_tile_size(tile_size) {
        return Err(r.invalid("tile_size"));
    }
    let cooldown_ms = r.u32()?;
    let ready_at_ms = r.u64()?;
    let server_time_ms = r.u64()?;
    let name = r.str(MAX_NAME_BYTES)?;
    let colours = r.count((1usize << bpp).min(MAX_PALETTE))?;
    let palette = r.slice::<[u8; 3]>(colours)?;
    Ok(Welcome {
        version,
        user,
        role,
        name,
        width,
        height,
        bpp,
        tile_size,
        cooldown_ms,
        ready_at_ms,
        server_time_ms,
        palette,
    })
}

/// Iterates over the frames of one transport message (server to client).
pub fn server_frames(message: &[u8]) -> Frames<'_, ServerFrame<'_>> {
    Frames::new(message)
}

impl<'a> WireFrame<'a> for ServerFrame<'a> {
    fn decode(buf: &'a [u8]) -> Result<Decoded<Self>, DecodeError> {
        Self::decode(buf)
    }
}

/// Writes a `Pixels` frame straight from a head and updates, without building a
/// [`ServerFrame`]: the engine's fan-out path.
pub fn encode_pixels(head: PixelsHead, updates: &[PixelUpdate], out: &mut impl BufMut) -> Result<(), EncodeError> {
    ServerFrame::Pixels(Pixels { head, updates }).encode(out)
}
