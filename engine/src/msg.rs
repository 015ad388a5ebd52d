//! Messages between shards. Every cross-shard interaction is one of these, sent through the
//! receiving shard's bounded inbox.

use std::sync::Arc;

use bytes::Bytes;
use pixelparty_protocol::{CloseReason, ErrorCode};

use crate::routing::ShardId;

/// A session's id within its shard: a slot and the slot's generation, so a late reply for a
/// closed session never reaches a newer one in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

/// A session anywhere in the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnRef {
    /// The shard holding the session.
    pub shard: ShardId,
    /// The session within that shard.
    pub conn: ConnId,
}

/// A request failure to report back to a session: code, retry hint, text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Wire code.
    pub code: ErrorCode,
    /// For rate limits.
    pub retry_after_ms: u32,
    /// Human-readable detail.
    pub message: &'static str,
}

impl Refusal {
    /// A refusal without a retry hint.
    pub fn new(code: ErrorCode, message: &'static str) -> Self {
        Self { code, retry_after_ms: 0, message }
    }

    /// The store would not take a write (`submit` refused it): nothing was applied. A full
    /// queue is `overloaded`; a store that refuses writes (poisoned, closed) is `unavailable`.
    pub fn store_refused(e: &pixelparty_storage::StorageError) -> Self {
        if e.is_overloaded() {
            Self { code: ErrorCode::Overloaded, retry_after_ms: 100, message: "storage busy" }
        } else if e.is_unavailable() {
            Self { code: ErrorCode::Unavailable, retry_after_ms: 1000, message: "storage unreachable; not applied" }
        } else {
            Self {
                code: ErrorCode::Unavailable,
                retry_after_ms: 1000,
                message: "storage is not taking writes; not applied",
            }
        }
    }

    /// A write the store took failed. If the store failed while writing it (its commit or
    /// its fsync), part of it may be on disk and replayed at the next start: the outcome is
    /// unknown. A store already refusing writes applied nothing (`unavailable`); any other
    /// error (the write's own checks, a read it needed) means it was not applied.
    pub fn store_failed(e: &pixelparty_storage::StorageError) -> Self {
        if e.is_outcome_unknown() {
            Self::new(ErrorCode::OutcomeUnknown, "storage failed while writing this; it may be applied: read it back")
        } else if e.is_poisoned() || e.is_closed() || e.is_overloaded() || e.is_unavailable() {
            Self::store_refused(e)
        } else {
            Self::new(ErrorCode::Internal, "storage error; not applied")
        }
    }

    /// A read the request needed failed: `unavailable` or `overloaded` when the store is
    /// out of reach or saturated, otherwise `internal`. Nothing was applied.
    pub fn read_failed(e: &pixelparty_storage::StorageError, what: &'static str) -> Self {
        tracing::error!(error = %e, what, "storage read failed");
        if e.is_poisoned() || e.is_closed() || e.is_overloaded() || e.is_unavailable() {
            Self::store_refused(e)
        } else {
            Self::new(ErrorCode::Internal, "storage error")
        }
    }

    /// Whether the request certainly was not applied (so a cooldown it took goes back).
    pub fn not_applied(&self) -> bool {
        self.code != ErrorCode::OutcomeUnknown
    }
}

/// A direct message on its way to its conversation's home shard.
#[derive(Debug)]
pub struct DirectPost {
    /// Sender.
    pub from: u32,
    /// Recipient.
    pub to: u32,
    /// Sender's name.
    pub name: Arc<str>,
    /// Text (checked).
    pub text: Box<str>,
    /// The sending session.
    pub conn: ConnRef,
    /// Its request id.
    pub req: u32,
}

/// Who gets the answer to a request handled by a home shard: a session (by request id) or a
/// caller outside the shards waiting on a channel (the HTTP API).
#[derive(Debug)]
pub enum Origin {
    /// A session and its request id.
    Session(ConnRef, u32),
    /// A waiting caller.
    Caller(tokio::sync::oneshot::Sender<Result<u64, Refusal>>),
}

/// A paint on its way to the tile's home shard (already checked for bounds, colour and
/// cooldown by the session's shard).
#[derive(Debug, Clone)]
pub struct PaintCmd {
    /// Where to send the result (`None` for administrative paints such as rollback).
    pub origin: Option<(ConnRef, u32)>,
    /// Painter.
    pub user: u32,
    /// Column and row.
    pub x: u16,
    /// Row.
    pub y: u16,
    /// Palette index.
    pub colour: u8,
    /// Whether the painter's cooldown was taken for it: a definite refusal gives it back.
    pub charged: bool,
    /// Cluster mode: the token of the cooldown the cluster gave it (0: none).
    pub cooldown_token: u64,
    /// Set for a rollback's restore: applied only if the pixel is unchanged since then.
    pub restore: Option<Restoring>,
    /// Tile and offset, computed by the sender.
    pub tile: u32,
    /// Offset inside the tile.
    pub offset: u16,
    /// When the session's shard received it (its `now_ms`), for the paint-to-ack latency;
    /// 0 for administrative paints.
    pub received_ms: u64,
}

/// A rollback's restore of one pixel, a compare-and-set at the tile's home shard: the pixel
/// gets its earlier colour only if nothing touched it after `guard_seq` (the rolled-back
/// user's last update of it when the rollback was planned).
#[derive(Debug, Clone)]
pub struct Restoring {
    /// The sequence the pixel must still be at.
    pub guard_seq: u64,
    /// Set once the store said the pixel was still at `guard_seq`: the tile's sequence when
    /// it was asked (what came after is in the tile's ring or on its way).
    pub store_checked: Option<u64>,
    /// Where the outcome is counted.
    pub tally: Arc<crate::restore::RestoreTally>,
}

/// A committed room message as another node (or the store) tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FedPost {
    /// Its sequence in the room.
    pub seq: u64,
    /// Author.
    pub author: u32,
    /// Author's name.
    pub name: Arc<str>,
    /// When it was posted.
    pub time_ms: u64,
    /// Text (empty when deleted).
    pub text: Box<str>,
    /// Deleted already: it takes its place in the sequence but is shown to no one.
    pub deleted: bool,
}

impl FedPost {
    /// A stored message as message `seq` of its room, with its author's name.
    pub fn of(seq: u64, m: pixelparty_storage::Message, name_of: impl Fn(u32) -> Arc<str>) -> Self {
        Self {
            seq,
            name: name_of(m.author),
            author: m.author,
            time_ms: m.time_ms,
            text: m.text.into(),
            deleted: m.deleted,
        }
    }
}

/// The result of one paint for the session that asked.
#[derive(Debug, Clone)]
pub struct PaintResult {
    /// The session.
    pub conn: ConnId,
    /// Its request id.
    pub req: u32,
    /// The update's sequence, or why it failed.
    pub result: Result<u64, Refusal>,
    /// When the session's shard received the paint ([`PaintCmd::received_ms`]).
    pub received_ms: u64,
}

/// The frame of one tile's updates in one tick, shared by every interested shard.
#[derive(Debug, Clone)]
pub struct TileFrame {
    /// Tile id.
    pub tile: u32,
    /// Encoded `Pixels` frame.
    pub frame: Bytes,
}

/// A copy of one tile for a snapshot.
#[derive(Debug, Clone)]
pub struct TileCopy {
    /// Tile id.
    pub tile: u32,
    /// Sequence the bytes reflect.
    pub seq: u64,
    /// Packed pixels.
    pub data: Bytes,
}

/// Counters a shard reports on request.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShardStats {
    /// Sessions on the shard.
    pub sessions: usize,
    /// Rooms homed on the shard with at least one member.
    pub rooms: usize,
    /// Bytes queued towards sessions.
    pub queued_bytes: usize,
    /// Messages waiting for full inboxes of other shards.
    pub pending_outbound: usize,
    /// Paints waiting for the next tick.
    pub pending_paints: usize,
    /// Tick batches waiting for storage.
    pub ticks_in_flight: usize,
}

/// Everything one shard may send another.
#[derive(Debug)]
pub enum ShardMsg {
    /// A paint for a tile this shard owns.
    Paint(PaintCmd),
    /// Restores of pixels in tiles this shard owns (a rollback).
    Restore(Vec<PaintCmd>),
    /// The results of paints, for the sessions that asked (one message per origin shard
    /// per tick).
    PaintsDone(Vec<PaintResult>),
    /// `shard` starts or stops having subscribers of `tile`.
    Interest {
        /// Tile id.
        tile: u32,
        /// The interested shard.
        shard: ShardId,
        /// Start or stop.
        on: bool,
    },
    /// A session subscribes to `tile` holding `cursor`.
    Subscribe {
        /// Tile id.
        tile: u32,
        /// The session's cursor.
        cursor: u64,
        /// The session.
        conn: ConnRef,
    },
    /// What a subscribing session needs to catch up: `Pixels` frames or a `TileData` frame
    /// (empty when it is current).
    Replay {
        /// The session.
        conn: ConnId,
        /// Tile id.
        tile: u32,
        /// Frames to deliver.
        payload: Bytes,
    },
    /// This tick's updates of some tiles.
    Tiles(Arc<[TileFrame]>),
    /// A session joins a room.
    Join {
        /// Room id.
        room: u32,
        /// The session.
        conn: ConnRef,
        /// Request id.
        req: u32,
        /// User id.
        user: u32,
        /// User name.
        name: Arc<str>,
    },
    /// A checked direct message for its conversation's home shard to store.
    DirectPost(DirectPost),
    /// The result of a join: the room's published sequence and its presence snapshot.
    JoinDone {
        /// The session.
        conn: ConnId,
        /// Request id.
        req: u32,
        /// Room id.
        room: u32,
        /// `(published_seq, presence frames)` or why not.
        result: Result<(u64, Bytes), Refusal>,
    },
    /// A session leaves a room (or closed).
    Leave {
        /// Room id.
        room: u32,
        /// The session.
        conn: ConnRef,
        /// User id.
        user: u32,
    },
    /// A message for a room.
    Post {
        /// Room id.
        room: u32,
        /// The session.
        conn: ConnRef,
        /// Request id.
        req: u32,
        /// Author.
        user: u32,
        /// Author's name.
        name: Arc<str>,
        /// Text (checked by the sender).
        text: Box<str>,
    },
    /// The result of a post, a delete or a who request: an ack value or a refusal, and
    /// frames to deliver after the ack.
    Done {
        /// The session.
        conn: ConnId,
        /// Request id.
        req: u32,
        /// Ack value or why not.
        result: Result<u64, Refusal>,
        /// Frames to deliver after the ack (presence for `Who`).
        then: Bytes,
    },
    /// A frame for every member session of a room on the receiving shard.
    RoomFrame {
        /// Room id.
        room: u32,
        /// Author of a message (for blocks), 0 for frames not subject to blocks.
        author: u32,
        /// Encoded frame.
        frame: Bytes,
    },
    /// Delete a room message.
    DeleteRoomMessage {
        /// Room id.
        room: u32,
        /// Message sequence.
        seq: u64,
        /// Who gets the answer.
        origin: Origin,
        /// Who asks.
        user: u32,
        /// Whether they are an administrator.
        admin: bool,
    },
    /// Who is in a room.
    Who {
        /// Room id.
        room: u32,
        /// The session.
        conn: ConnRef,
        /// Request id.
        req: u32,
    },
    /// A direct message, for the local sessions of `from` and `to`.
    Direct {
        /// Sender.
        from: u32,
        /// Recipient.
        to: u32,
        /// Encoded `DirectMessage` frame.
        frame: Bytes,
    },
    /// Cluster mode: committed canvas updates of this shard's tiles, in sequence order, from
    /// whichever node committed them (the node's feed orders them).
    FeedPixels(Arc<[pixelparty_storage::PixelRecord]>),
    /// Cluster mode: committed messages of a room homed here, from whichever node (in any
    /// order: the room's home puts them in sequence order).
    FeedRoom {
        /// The room.
        room: u32,
        /// Its messages.
        posts: Vec<FedPost>,
    },
    /// Cluster mode: a direct message stored by any node, to its conversation's home shard
    /// here (which puts each conversation in order).
    FeedDirect {
        /// Sender.
        from: u32,
        /// Recipient.
        to: u32,
        /// Its sequence in the conversation.
        seq: u64,
        /// The encoded `DirectMessage` frame.
        frame: Bytes,
    },
    /// Cluster mode: a direct message was deleted, to its conversation's home shard.
    FeedDirectDelete {
        /// One user.
        a: u32,
        /// The other.
        b: u32,
        /// The message.
        seq: u64,
    },
    /// Cluster mode: a tile rebuilt from the store (snapshot plus journal) by a node that fell
    /// behind further than the journal keeps; replaces the tile when newer.
    ReplaceTile {
        /// The tile.
        tile: u32,
        /// The sequence it reflects.
        seq: u64,
        /// Its packed pixels.
        data: Vec<u8>,
    },
    /// Cluster mode: another node's members of a room homed here.
    FeedPresence {
        /// The room.
        room: u32,
        /// The node (an opaque id).
        node: u64,
        /// Its members.
        users: Vec<(u32, Arc<str>)>,
    },
    /// Cluster mode: a room message was deleted on some node.
    FeedRoomDelete {
        /// The room.
        room: u32,
        /// The message.
        seq: u64,
    },
    /// A direct message was deleted.
    DirectDeleted {
        /// One user.
        a: u32,
        /// The other.
        b: u32,
        /// Its sequence.
        seq: u64,
    },
    /// End the sessions `target` names.
    End {
        /// Which sessions.
        target: crate::conn::Target,
        /// Why.
        reason: CloseReason,
        /// Detail for the client.
        message: Arc<str>,
    },
    /// A `Social` frame for the local sessions of `users` (every logged-in session: `None`)
    /// that speak protocol version 3 or later.
    Social {
        /// Whose sessions.
        users: Option<Arc<[u32]>>,
        /// The encoded frame.
        frame: Bytes,
    },
    /// `user`'s block list changed.
    BlocksChanged {
        /// User id.
        user: u32,
        /// Users they block now, sorted.
        blocks: Arc<[u32]>,
    },
    /// Copy owned tiles (only those changed since the last copy unless `full`).
    Snapshot {
        /// Copy every tile.
        full: bool,
        /// Where to send the copies, with the answering shard's id.
        reply: crossbeam_channel::Sender<(ShardId, Vec<TileCopy>)>,
    },
    /// Report counters.
    Stats {
        /// Where to send them.
        reply: crossbeam_channel::Sender<ShardStats>,
    },
    /// Close every session with `reason` and stop accepting work.
    Shutdown {
        /// Why.
        reason: CloseReason,
    },
}
