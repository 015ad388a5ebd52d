//! Owned server frames: a decoded [`ServerFrame`] copied into an [`Event`] that outlives the
//! receive buffer. For clients and tests that keep what they received; the hot paths visit
//! borrowed frames instead.

use crate::error::{CloseReason, ErrorCode};
use crate::server::ServerFrame;
use crate::types::{ConvKind, PresenceKind, Role, SocialKind};

/// One message of a history page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryItem {
    /// Sequence.
    pub seq: u64,
    /// Author.
    pub author: u32,
    /// Posting time.
    pub time_ms: u64,
    /// Author's name.
    pub author_name: String,
    /// Text.
    pub text: String,
}

/// A server frame, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `Welcome`.
    Welcome {
        /// User id.
        user: u32,
        /// Role.
        role: Role,
        /// Name.
        name: String,
        /// Canvas width.
        width: u32,
        /// Canvas height.
        height: u32,
        /// Bits per pixel.
        bpp: u8,
        /// Tile edge.
        tile_size: u16,
        /// Cooldown length.
        cooldown_ms: u32,
        /// When the user may paint next.
        ready_at_ms: u64,
        /// Server clock.
        server_time_ms: u64,
        /// Palette.
        palette: Vec<[u8; 3]>,
    },
    /// `Ack`.
    Ack {
        /// Request id.
        req: u32,
        /// Sequence or 0.
        value: u64,
    },
    /// `Error`.
    Error {
        /// Request id.
        req: u32,
        /// Code.
        code: ErrorCode,
        /// Retry hint.
        retry_after_ms: u32,
        /// Detail.
        message: String,
    },
    /// `Pixels`.
    Pixels {
        /// Tile.
        tile: u32,
        /// Sequence before.
        prev: u64,
        /// Sequence after.
        last: u64,
        /// `(offset, colour)`.
        updates: Vec<(u16, u8)>,
    },
    /// `TileData`.
    TileData {
        /// Tile.
        tile: u32,
        /// Sequence.
        seq: u64,
        /// Packed pixels.
        data: Vec<u8>,
    },
    /// `Resync`.
    Resync(Vec<u32>),
    /// `RoomMessage`.
    Room {
        /// Room.
        room: u32,
        /// Sequence.
        seq: u64,
        /// Author.
        author: u32,
        /// Posting time.
        time_ms: u64,
        /// Author's name.
        author_name: String,
        /// Text.
        text: String,
    },
    /// `DirectMessage`.
    Direct {
        /// Sender.
        from: u32,
        /// Recipient.
        to: u32,
        /// Sequence.
        seq: u64,
        /// Sending time.
        time_ms: u64,
        /// Sender's name.
        from_name: String,
        /// Text.
        text: String,
    },
    /// `Deleted`.
    Deleted {
        /// Kind.
        kind: ConvKind,
        /// Conversation.
        conv: u32,
        /// Sequence.
        seq: u64,
    },
    /// `HistoryPage`.
    History {
        /// Request id.
        req: u32,
        /// Kind.
        kind: ConvKind,
        /// Conversation.
        conv: u32,
        /// Messages, oldest first.
        entries: Vec<HistoryItem>,
    },
    /// `Presence`.
    Presence {
        /// Room.
        room: u32,
        /// Kind.
        kind: PresenceKind,
        /// `(user, name)`.
        users: Vec<(u32, String)>,
    },
    /// `Cooldown`.
    Cooldown {
        /// Next paint allowed at.
        ready_at_ms: u64,
        /// Cooldown length.
        cooldown_ms: u32,
    },
    /// `Pong`.
    Pong {
        /// Nonce.
        nonce: u64,
        /// Server clock.
        server_time_ms: u64,
    },
    /// `Closing`.
    Closing {
        /// Reason.
        reason: CloseReason,
        /// Detail.
        message: String,
    },
    /// `Social` (version 3).
    Social {
        /// What happened.
        kind: SocialKind,
        /// The other user, or the room.
        id: u32,
        /// Their name.
        name: String,
    },
}

impl From<&ServerFrame<'_>> for Event {
    fn from(frame: &ServerFrame<'_>) -> Self {
        match *frame {
            ServerFrame::Welcome(w) => Self::Welcome {
                user: w.user,
                role: w.role,
                name: w.name.into(),
                width: w.width,
                height: w.height,
                bpp: w.bpp,
                tile_size: w.tile_size,
                cooldown_ms: w.cooldown_ms,
                ready_at_ms: w.ready_at_ms,
                server_time_ms: w.server_time_ms,
                palette: w.palette.to_vec(),
            },
            ServerFrame::Ack(a) => Self::Ack { req: a.req, value: a.value },
            ServerFrame::Error(e) => {
                Self::Error { req: e.req, code: e.code, retry_after_ms: e.retry_after_ms, message: e.message.into() }
            }
            ServerFrame::Pixels(p) => Self::Pixels {
                tile: p.head.tile(),
                prev: p.head.prev_seq(),
                last: p.head.last_seq(),
                updates: p.updates.iter().map(|u| (u.offset(), u.colour())).collect(),
            },
            ServerFrame::TileData(t) => Self::TileData { tile: t.tile, seq: t.seq, data: t.data.to_vec() },
            ServerFrame::Resync(r) => Self::Resync(r.tiles.iter().map(|t| t.get()).collect()),
            ServerFrame::RoomMessage(m) => Self::Room {
                room: m.room,
                seq: m.seq,
                author: m.author,
                time_ms: m.time_ms,
                author_name: m.author_name.into(),
                text: m.text.into(),
            },
            ServerFrame::DirectMessage(m) => Self::Direct {
                from: m.from,
                to: m.to,
                seq: m.seq,
                time_ms: m.time_ms,
                from_name: m.from_name.into(),
                text: m.text.into(),
            },
            ServerFrame::Deleted(d) => Self::Deleted { kind: d.kind, conv: d.conv, seq: d.seq },
            ServerFrame::HistoryPage(h) => Self::History {
                req: h.req,
                kind: h.kind,
                conv: h.conv,
                entries: h
                    .entries
                    .iter()
                    .map(|e| HistoryItem {
                        seq: e.seq,
                        author: e.author,
                        time_ms: e.time_ms,
                        author_name: e.author_name.into(),
                        text: e.text.into(),
                    })
                    .collect(),
            },
            ServerFrame::Presence(p) => Self::Presence {
                room: p.room,
                kind: p.kind,
                users: p.entries.iter().map(|e| (e.user, e.name.into())).collect(),
            },
            ServerFrame::Cooldown(c) => Self::Cooldown { ready_at_ms: c.ready_at_ms, cooldown_ms: c.cooldown_ms },
            ServerFrame::Pong(p) => Self::Pong { nonce: p.nonce, server_time_ms: p.server_time_ms },
            ServerFrame::Closing(c) => Self::Closing { reason: c.reason, message: c.message.into() },
            ServerFrame::Social(s) => Self::Social { kind: s.kind, id: s.id, name: s.name.into() },
        }
    }
}
