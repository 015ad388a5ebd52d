//! Frames a client sends to the server (opcodes `0x01`..`0x0C`).
//!
//! Decoded frames borrow from the receive buffer: strings are `&str`, lists are slices of
//! fixed-layout structs, so decoding allocates nothing.

use bytes::BufMut;
use zerocopy::IntoBytes;

use crate::codec::{Decoded, Frames, Reader, WireFrame, check_str, put_header, put_str, split_frame, str_len};
use crate::error::{DecodeError, EncodeError};
use crate::limits::{MAX_AGENT_BYTES, MAX_HISTORY_PAGE, MAX_TEXT_BYTES, MAX_TILES_PER_FRAME};
use crate::types::{ClientKind, ConvKind, PaintWire, TileCursor, WireTile};

/// Client opcodes.
pub mod op {
    /// `Hello`.
    pub const HELLO: u8 = 0x01;
    /// `Subscribe`.
    pub const SUBSCRIBE: u8 = 0x02;
    /// `Unsubscribe`.
    pub const UNSUBSCRIBE: u8 = 0x03;
    /// `Paint`.
    pub const PAINT: u8 = 0x04;
    /// `JoinRoom`.
    pub const JOIN_ROOM: u8 = 0x05;
    /// `LeaveRoom`.
    pub const LEAVE_ROOM: u8 = 0x06;
    /// `SendRoom`.
    pub const SEND_ROOM: u8 = 0x07;
    /// `SendDirect`.
    pub const SEND_DIRECT: u8 = 0x08;
    /// `Delete`.
    pub const DELETE: u8 = 0x09;
    /// `History`.
    pub const HISTORY: u8 = 0x0A;
    /// `Who`.
    pub const WHO: u8 = 0x0B;
    /// `Ping`.
    pub const PING: u8 = 0x0C;
}

/// First frame of every session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello<'a> {
    /// Protocol version the client speaks.
    pub version: u16,
    /// What kind of client this is.
    pub kind: ClientKind,
    /// Free-form client name and version, for logs.
    pub agent: &'a str,
}

/// Subscribe to tiles, each with the sequence the client already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribe<'a> {
    /// Tiles and cursors.
    pub tiles: &'a [TileCursor],
}

/// Stop receiving updates for tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsubscribe<'a> {
    /// Tile ids.
    pub tiles: &'a [WireTile],
}

/// Paint one pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paint {
    /// Request id echoed by the `Ack` or `Error`.
    pub req: u32,
    /// Column.
    pub x: u16,
    /// Row.
    pub y: u16,
    /// Palette index.
    pub colour: u8,
}

/// A request naming a room (join, leave, who-is-here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomRequest {
    /// Request id.
    pub req: u32,
    /// Room id.
    pub room: u32,
}

/// Send a message to a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendRoom<'a> {
    /// Request id; the `Ack` carries the message's sequence.
    pub req: u32,
    /// Room id.
    pub room: u32,
    /// Text, 1..=`MAX_TEXT_BYTES` bytes.
    pub text: &'a str,
}

/// Send a direct message to a friend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendDirect<'a> {
    /// Request id; the `Ack` carries the message's sequence.
    pub req: u32,
    /// Recipient user id.
    pub to: u32,
    /// Text, 1..=`MAX_TEXT_BYTES` bytes.
    pub text: &'a str,
}

/// Delete a message (own messages; ADMIN: any room message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delete {
    /// Request id.
    pub req: u32,
    /// Room or direct conversation.
    pub kind: ConvKind,
    /// Room id, or the other user's id for direct messages.
    pub conv: u32,
    /// Sequence of the message.
    pub seq: u64,
}

/// Ask for a page of history before a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRequest {
    /// Request id echoed by the `HistoryPage`.
    pub req: u32,
    /// Room or direct conversation.
    pub kind: ConvKind,
    /// Room id, or the other user's id.
    pub conv: u32,
    /// Return messages with a sequence strictly below this (`u64::MAX`: the newest).
    pub before: u64,
    /// At most this many messages, 1..=`MAX_HISTORY_PAGE`.
    pub limit: u16,
}

/// Keepalive and round-trip probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    /// Echoed by the `Pong`.
    pub nonce: u64,
}

/// Every frame a client may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFrame<'a> {
    /// Handshake.
    Hello(Hello<'a>),
    /// Subscribe to tiles.
    Subscribe(Subscribe<'a>),
    /// Unsubscribe from tiles.
    Unsubscribe(Unsubscribe<'a>),
    /// Paint a pixel.
    Paint(Paint),
    /// Join a room.
    JoinRoom(RoomRequest),
    /// Leave a room.
    LeaveRoom(RoomRequest),
    /// Message a room.
    SendRoom(SendRoom<'a>),
    /// Message a friend.
    SendDirect(SendDirect<'a>),
    /// Delete a message.
    Delete(Delete),
    /// Ask for history.
    History(HistoryRequest),
    /// Ask who is in a room.
    Who(RoomRequest),
    /// Keepalive.
    Ping(Ping),
}

impl<'a> ClientFrame<'a> {
    /// The frame's opcode.
    pub fn opcode(&self) -> u8 {
        match self {
            Self::Hello(_) => op::HELLO,
            Self::Subscribe(_) => op::SUBSCRIBE,
            Self::Unsubscribe(_) => op::UNSUBSCRIBE,
            Self::Paint(_) => op::PAINT,
            Self::JoinRoom(_) => op::JOIN_ROOM,
            Self::LeaveRoom(_) => op::LEAVE_ROOM,
            Self::SendRoom(_) => op::SEND_ROOM,
            Self::SendDirect(_) => op::SEND_DIRECT,
            Self::Delete(_) => op::DELETE,
            Self::History(_) => op::HISTORY,
            Self::Who(_) => op::WHO,
            Self::Ping(_) => op::PING,
        }
    }

    /// The request id this frame carries, if any (used to address errors).
    pub fn request_id(&self) -> Option<u32> {
        match self {
            Self::Paint(p) => Some(p.req),
            Self::JoinRoom(r) | Self::LeaveRoom(r) | Self::Who(r) => Some(r.req),
            Self::SendRoom(m) => Some(m.req),
            Self::SendDirect(m) => Some(m.req),
            Self::Delete(d) => Some(d.req),
            Self::History(h) => Some(h.req),
            Self::Hello(_) | Self::Subscribe(_) | Self::Unsubscribe(_) | Self::Ping(_) => None,
        }
    }

    fn check(&self) -> Result<(), EncodeError> {
        let tiles = |count: usize| {
            if count > MAX_TILES_PER_FRAME {
                Err(EncodeError::CountTooLarge { count, max: MAX_TILES_PER_FRAME })
            } else {
                Ok(())
            }
        };
        match self {
            Self::Hello(h) => check_str(h.agent, MAX_AGENT_BYTES),
            Self::Subscribe(s) => tiles(s.tiles.len()),
            Self::Unsubscribe(u) => tiles(u.tiles.len()),
            Self::SendRoom(m) => check_str(m.text, MAX_TEXT_BYTES),
            Self::SendDirect(m) => check_str(m.text, MAX_TEXT_BYTES),
            Self::History(h) if h.limit as usize > MAX_HISTORY_PAGE => {
                Err(EncodeError::CountTooLarge { count: h.limit as usize, max: MAX_HISTORY_PAGE })
            }
            _ => Ok(()),
        }
    }

    fn payload_len(&self) -> usize {
        match self {
            Self::Hello(h) => 3 + str_len(h.agent),
            Self::Subscribe(s) => 2 + s.tiles.as_bytes().len(),
            Self::Unsubscribe(u) => 2 + u.tiles.as_bytes().len(),
            Self::Paint(_) => size_of::<PaintWire>(),
            Self::JoinRoom(_) | Self::LeaveRoom(_) | Self::Who(_) => 8,
            Self::SendRoom(m) => 8 + str_len(m.text),
            Self::SendDirect(m) => 8 + str_len(m.text),
            Self::Delete(_) => 17,
            Self::History(_) => 19,
            Self::Ping(_) => 8,
        }
    }

    /// Bytes this frame occupies once encoded, header included.
    pub fn encoded_len(&self) -> usize {
        crate::limits::FRAME_HEADER_LEN + self.payload_len()
    }

    /// Appends the encoded frame to `out`. Fails, writing nothing, if a limit is broken.
    pub fn encode(&self, out: &mut impl BufMut) -> Result<(), EncodeError> {
        self.check()?;
        put_header(out, self.opcode(), self.payload_len())?;
        match self {
            Self::Hello(h) => {
                out.put_u16_le(h.version);
                out.put_u8(h.kind.to_wire());
                put_str(out, h.agent);
            }
            Self::Subscribe(s) => {
                out.put_u16_le(s.tiles.len() as u16);
                out.put_slice(s.tiles.as_bytes());
            }
            Self::Unsubscribe(u) => {
                out.put_u16_le(u.tiles.len() as u16);
                out.put_slice(u.tiles.as_bytes());
            }
            Self::Paint(p) => {
                let wire = PaintWire { req: p.req.into(), x: p.x.into(), y: p.y.into(), colour: p.colour };
                out.put_slice(wire.as_bytes());
            }
            Self::JoinRoom(r) | Self::LeaveRoom(r) | Self::Who(r) => {
                out.put_u32_le(r.req);
                out.put_u32_le(r.room);
            }
            Self::SendRoom(m) => {
                out.put_u32_le(m.req);
                out.put_u32_le(m.room);
                put_str(out, m.text);
            }
            Self::SendDirect(m) => {
                out.put_u32_le(m.req);
                out.put_u32_le(m.to);
                put_str(out, m.text);
            }
            Self::Delete(d) => {
                out.put_u32_le(d.req);
                out.put_u8(d.kind.to_wire());
                out.put_u32_le(d.conv);
                out.put_u64_le(d.seq);
            }
            Self::History(h) => {
                out.put_u32_le(h.req);
                out.put_u8(h.kind.to_wire());
                out.put_u32_le(h.conv);
                out.put_u64_le(h.before);
                out.put_u16_le(h.limit);
            }
            Self::Ping(p) => out.put_u64_le(p.nonce),
        }
        Ok(())
    }

    /// Decodes the frame at the front of `buf`.
    pub fn decode(buf: &'a [u8]) -> Result<Decoded<ClientFrame<'a>>, DecodeError> {
        Ok(match split_frame(buf)? {
            Decoded::Frame { frame: (opcode, payload), len } => {
                Decoded::Frame { frame: Self::decode_payload(opcode, payload)?, len }
            }
            Decoded::Incomplete { needed } => Decoded::Incomplete { needed },
        })
    }

    /// Decodes one frame's payload given its opcode.
    pub fn decode_payload(opcode: u8, payload: &'a [u8]) -> Result<ClientFrame<'a>, DecodeError> {
        let mut r = Reader::new(opcode, payload);
        let frame = match opcode {
            op::HELLO => {
                let version = r.u16()?;
                let kind = ClientKind::from_wire(r.u8()?).ok_or(r.invalid("kind"))?;
                let agent = r.str(MAX_AGENT_BYTES)?;
                Self::Hello(Hello { version, kind, agent })
            }
            op::SUBSCRIBE => {
                let count = r.count(MAX_TILES_PER_FRAME)?;
                Self::Subscribe(Subscribe { tiles: r.slice(count)? })
            }
            op::UNSUBSCRIBE => {
                let count = r.count(MAX_TILES_PER_FRAME)?;
                Self::Unsubscribe(Unsubscribe { tiles: r.slice(count)? })
            }
            op::PAINT => {
                let w: &PaintWire = r.fixed()?;
                Self::Paint(Paint { req: w.req.get(), x: w.x.get(), y: w.y.get(), colour: w.colour })
            }
            op::JOIN_ROOM | op::LEAVE_ROOM | op::WHO => {
                let req = RoomRequest { req: r.u32()?, room: r.u32()? };
                match opcode {
                    op::JOIN_ROOM => Self::JoinRoom(req),
                    op::LEAVE_ROOM => Self::LeaveRoom(req),
                    _ => Self::Who(req),
                }
            }
            op::SEND_ROOM => Self::SendRoom(SendRoom { req: r.u32()?, room: r.u32()?, text: r.str(MAX_TEXT_BYTES)? }),
            op::SEND_DIRECT => {
                Self::SendDirect(SendDirect { req: r.u32()?, to: r.u32()?, text: r.str(MAX_TEXT_BYTES)? })
            }
            op::DELETE => {
                let req = r.u32()?;
                let kind = ConvKind::from_wire(r.u8()?).ok_or(r.invalid("kind"))?;
                Self::Delete(Delete { req, kind, conv: r.u32()?, seq: r.u64()? })
            }
            op::HISTORY => {
                let req = r.u32()?;
                let kind = ConvKind::from_wire(r.u8()?).ok_or(r.invalid("kind"))?;
                let conv = r.u32()?;
                let before = r.u64()?;
                let limit = r.u16()?;
                if limit as usize > MAX_HISTORY_PAGE {
                    return Err(DecodeError::CountTooLarge { count: u32::from(limit), max: MAX_HISTORY_PAGE as u32 });
                }
                Self::History(HistoryRequest { req, kind, conv, before, limit })
            }
            op::PING => Self::Ping(Ping { nonce: r.u64()? }),
            _ => return Err(DecodeError::UnknownOpcode { opcode }),
        };
        r.finish()?;
        Ok(frame)
    }
}

/// Iterates over the frames of one transport message (client to server).
pub fn client_frames(message: &[u8]) -> Frames<'_, ClientFrame<'_>> {
    Frames::new(message)
}

impl<'a> WireFrame<'a> for ClientFrame<'a> {
    fn decode(buf: &'a [u8]) -> Result<Decoded<Self>, DecodeError> {
        Self::decode(buf)
    }
}
