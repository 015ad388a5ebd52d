//! [`Backend`]: the domain operations every storage backend implements (fjall, PostgreSQL),
//! each an owned future, so that callers never know which backend answers and never run its
//! I/O on their own thread (see [`Store`](crate::Store), which drives the futures on its own
//! runtime).
//!
//! Every operation is a narrow domain call, not a key-value API: a backend is free to keep the
//! data as it likes (keyspaces, tables) as long as the conformance suite
//! (`storage/tests/conformance.rs`) and the model test agree. Writes are durable per the
//! configured [`Durability`](crate::Durability) when their future resolves.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use ipnet::IpNet;
use pixelparty_protocol::Geometry;

use crate::accounts::TOKEN_HASH_LEN;
use crate::error::Result;
use crate::records::{AuditAction, AuditEntry, Ban, Conversation, Message, NetBan, PixelRecord, Relation, Role, Room};
use crate::records::{Session, User};
use crate::social::{FriendOutcome, Removed};
use crate::{RecoveredCanvas, TileSnapshot};

/// The future of one storage operation: owned, sendable, and resolved once the operation is
/// done (for writes: durable per the configured mode).
pub type Op<T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'static>>;

/// An audit record to write (the backend assigns its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDraft {
    /// Acting user (0: the operator through the admin endpoint).
    pub actor: u32,
    /// What was done.
    pub action: AuditAction,
    /// To whom or what.
    pub target: String,
    /// Free-form detail.
    pub detail: String,
    /// When.
    pub time_ms: u64,
}

impl AuditDraft {
    /// The entry with its free text made plain (see [`crate::chat::plain`]).
    pub fn plain(self) -> Self {
        Self { target: crate::chat::plain(&self.target), detail: crate::chat::plain(&self.detail), ..self }
    }
}

/// One entry of the cluster's control log ([`Backend::append_control`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlRecord {
    /// Its place in the log (gap-free, ascending).
    pub id: u64,
    /// The node that wrote it (an opaque id).
    pub node: u64,
    /// The event, as the gateway encodes it.
    pub event: String,
}

/// A room message to delete in a [`TickWrite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomDelete {
    /// Room id.
    pub room: u32,
    /// Message sequence.
    pub seq: u64,
    /// Deleted by an administrator (audited) rather than by its author.
    pub by_admin: bool,
}

/// Everything one engine tick writes, committed atomically: accepted pixel updates (a
/// contiguous sequence range, ascending), room messages (per room, ascending sequences that
/// continue the room) and room message deletions. A deletion of a message that does not exist
/// is skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickWrite {
    /// Accepted pixel updates.
    pub pixels: Vec<PixelRecord>,
    /// Room messages, grouped by room.
    pub messages: Vec<(u32, Vec<Message>)>,
    /// Room message deletions.
    pub deletes: Vec<RoomDelete>,
    /// When the tick ran (audit time of admin deletions).
    pub now_ms: u64,
    /// Cluster mode ([`Backend::commit_tick_ordered`] only): control log entries `(node,
    /// event)` to append in the same transaction (the deletions' tombstones for the other
    /// nodes).
    pub controls: Vec<(u64, String)>,
    /// Cluster mode ([`Backend::commit_tick_ordered`] only): rollback restores, as `(index in
    /// pixels, guard)`: that pixel is written only if the newest journaled update of its place
    /// is still `guard` and no earlier pixel of this tick is at its place (a compare-and-set
    /// under the canvas's lock); otherwise it is left out ([`Sequenced::dropped`]).
    pub guards: Vec<(u32, u64)>,
}

impl TickWrite {
    /// Whether the tick writes nothing.
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty() && self.messages.is_empty() && self.deletes.is_empty()
    }
}

/// Where [`Backend::commit_tick_ordered`] put a tick (cluster mode): the first sequence of
/// its pixels (the rest follow contiguously, in the tick's order) and, for each group of
/// [`TickWrite::messages`] in order, the first sequence of that group's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sequenced {
    /// Sequence of the tick's first pixel (0 when it has none).
    pub first_pixel: u64,
    /// `(room, first sequence)` per message group.
    pub rooms: Vec<(u32, u64)>,
    /// The control log ids of [`TickWrite::controls`], in order.
    pub controls: Vec<u64>,
    /// Indices (ascending) of the guarded pixels left out: their place changed since their
    /// guard. The other pixels keep their order and take contiguous sequences.
    pub dropped: Vec<u32>,
}

/// The answer of a cluster-only operation on a backend that no nodes share (fjall).
fn not_shared<T: Send + 'static>() -> Op<T> {
    Box::pin(std::future::ready(Err(crate::StorageError::invalid(
        "only a backend the nodes share (PostgreSQL) has this cluster operation",
    ))))
}

/// Most messages one [`Backend::room_range`] returns.
pub const MAX_RANGE: u64 = 1000;

/// Most ids one [`Backend::user_names`] call takes (a history page has at most 50 authors).
pub const MAX_NAMES: usize = 1000;

/// The authors a history reader does not see (the users it blocks), sorted.
pub type Hidden = Arc<[u32]>;

/// The domain operations of a storage backend. Every method returns at once with a future
/// that owns what it needs; no method does I/O before the future is polled.
pub trait Backend: Send + Sync + 'static {
    // --- accounts ---
    /// A user by id.
    fn user(&self, id: u32) -> Op<Option<User>>;
    /// A user by name, compared case-insensitively (see [`crate::accounts::fold_name`]).
    fn user_by_name(&self, name: String) -> Op<Option<User>>;
    /// Up to `limit` users with `id > after`, by id.
    fn users(&self, after: u32, limit: usize) -> Op<Vec<User>>;
    /// How many users exist.
    fn user_count(&self) -> Op<u32>;
    /// The names of the users among `ids` that exist (at most [`MAX_NAMES`] ids; unknown ids
    /// are left out), in one round trip.
    fn user_names(&self, ids: Vec<u32>) -> Op<Vec<(u32, String)>>;
    /// The live session under `token_hash` (`None` when unknown or expired at `now_ms`).
    fn session(&self, token_hash: [u8; TOKEN_HASH_LEN], now_ms: u64) -> Op<Option<Session>>;
    /// Creates a user; conflict when the folded name is taken, invalid when the name is bad.
    fn create_user(&self, name: String, password_hash: String, role: Role, now_ms: u64) -> Op<User>;
    /// Sets a user's role (audited with `actor`).
    fn set_role(&self, user: u32, role: Role, actor: u32, now_ms: u64) -> Op<User>;
    /// Replaces a user's password hash.
    fn set_password_hash(&self, user: u32, password_hash: String) -> Op<()>;
    /// Stores a session for `user` under the hash of its token.
    fn create_session(&self, token_hash: [u8; TOKEN_HASH_LEN], user: u32, now_ms: u64, ttl_ms: u64) -> Op<Session>;
    /// Ends one session; whether it existed.
    fn revoke_session(&self, token_hash: [u8; TOKEN_HASH_LEN]) -> Op<bool>;
    /// Ends every session of a user; how many there were.
    fn revoke_user_sessions(&self, user: u32) -> Op<usize>;

    // --- social graph ---
    /// Whether `a` and `b` are friends.
    fn are_friends(&self, a: u32, b: u32) -> Op<bool>;
    /// Up to `limit` friends of `user`, by id.
    fn friends_of(&self, user: u32, limit: usize) -> Op<Vec<Relation>>;
    /// Up to `limit` pending requests others sent to `user`, by id.
    fn incoming_requests(&self, user: u32, limit: usize) -> Op<Vec<Relation>>;
    /// Up to `limit` pending requests `user` sent, by id.
    fn outgoing_requests(&self, user: u32, limit: usize) -> Op<Vec<Relation>>;
    /// Up to `limit` users `user` blocks, by id.
    fn blocks_of(&self, user: u32, limit: usize) -> Op<Vec<Relation>>;
    /// Whether `blocker` blocks `blocked`.
    fn is_blocking(&self, blocker: u32, blocked: u32) -> Op<bool>;
    /// Whether either of `a`, `b` blocks the other.
    fn blocked_either(&self, a: u32, b: u32) -> Op<bool>;
    /// Sends (or, if `to` had asked already, accepts) a friend request.
    fn request_friend(&self, from: u32, to: u32, now_ms: u64) -> Op<FriendOutcome>;
    /// Accepts the request `from` sent to `me`; not found without one.
    fn accept_friend(&self, me: u32, from: u32, now_ms: u64) -> Op<()>;
    /// Unfriends, declines or cancels; not found when there was no relation.
    fn remove_relation(&self, me: u32, other: u32) -> Op<Removed>;
    /// Blocks, ending any friendship or request between the two (returned).
    fn block(&self, blocker: u32, blocked: u32, now_ms: u64) -> Op<Option<Removed>>;
    /// Unblocks; whether there was a block.
    fn unblock(&self, blocker: u32, blocked: u32) -> Op<bool>;

    // --- moderation ---
    /// The ban of `user` in force at `now_ms`.
    fn user_ban(&self, user: u32, now_ms: u64) -> Op<Option<Ban>>;
    /// Up to `limit` user bans (expired ones included), by user id.
    fn user_bans(&self, limit: usize) -> Op<Vec<(u32, Ban)>>;
    /// Every network ban (expired ones included).
    fn net_bans(&self) -> Op<Vec<NetBan>>;
    /// The network ban covering `addr` in force at `now_ms`.
    fn net_ban_for(&self, addr: IpAddr, now_ms: u64) -> Op<Option<NetBan>>;
    /// Up to `limit` audit entries with `id < before`, newest first.
    fn audit_log(&self, before: u64, limit: usize) -> Op<Vec<AuditEntry>>;
    /// Appends an audit entry.
    fn audit(&self, entry: AuditDraft) -> Op<()>;
    /// Bans a user (audited from the ban's actor and time).
    fn ban_user(&self, user: u32, ban: Ban) -> Op<()>;
    /// Lifts a user's ban; whether there was one.
    fn unban_user(&self, user: u32, actor: u32, now_ms: u64) -> Op<bool>;
    /// Bans an address range (audited).
    fn ban_net(&self, net: IpNet, ban: Ban) -> Op<()>;
    /// Lifts an address range's ban; whether there was one.
    fn unban_net(&self, net: IpNet, actor: u32, now_ms: u64) -> Op<bool>;

    // --- rooms and messages ---
    /// A room by id.
    fn room(&self, id: u32) -> Op<Option<Room>>;
    /// How many rooms exist.
    fn room_count(&self) -> Op<u32>;
    /// A room by name (case-insensitive).
    fn room_by_name(&self, name: String) -> Op<Option<Room>>;
    /// Up to `limit` rooms with `id > after`, by id.
    fn rooms(&self, after: u32, limit: usize) -> Op<Vec<Room>>;
    /// The highest message sequence of `room` (0 when empty).
    fn room_last_seq(&self, room: u32) -> Op<u64>;
    /// One room message (deleted ones included, flagged).
    fn room_message(&self, room: u32, seq: u64) -> Op<Option<Message>>;
    /// Up to `limit` messages of `room` with `seq < before`, not deleted and not by a
    /// `hidden` author, oldest first; examines at most the configured history scan.
    fn room_history(&self, room: u32, before: u64, limit: usize, hidden: Hidden) -> Op<Vec<Message>>;
    /// The highest sequence of the conversation between `a` and `b` (0 when empty).
    fn direct_last_seq(&self, a: u32, b: u32) -> Op<u64>;
    /// One direct message.
    fn direct_message(&self, a: u32, b: u32, seq: u64) -> Op<Option<Message>>;
    /// Like [`Backend::room_history`] for the conversation between `a` and `b`.
    fn direct_history(&self, a: u32, b: u32, before: u64, limit: usize, hidden: Hidden) -> Op<Vec<Message>>;
    /// Up to `limit` conversations of `user`, most recent first.
    fn conversations(&self, user: u32, limit: usize) -> Op<Vec<Conversation>>;
    /// Creates a room; conflict when the name is taken.
    fn create_room(&self, name: String, created_by: u32, now_ms: u64) -> Op<Room>;
    /// Appends a direct message (the backend assigns its sequence).
    fn append_direct(&self, from: u32, to: u32, now_ms: u64, text: String) -> Op<Message>;
    /// Marks a direct message deleted; returns it; not found when it does not exist.
    fn delete_direct(&self, a: u32, b: u32, seq: u64) -> Op<Message>;

    // --- canvas ---
    /// The geometry the canvas was created with, if any.
    fn canvas_geometry(&self) -> Op<Option<Geometry>>;
    /// Records the geometry on first start; afterwards refuses a different one.
    fn init_canvas(&self, geometry: Geometry) -> Op<()>;
    /// One journal entry by sequence.
    fn journal_entry(&self, seq: u64) -> Op<Option<PixelRecord>>;
    /// The highest journal sequence (0 when empty).
    fn last_journal_seq(&self) -> Op<u64>;
    /// Up to `limit` journal entries with `seq > after`, ascending.
    fn journal_after(&self, after: u64, limit: usize) -> Op<Vec<PixelRecord>>;
    /// Every tile snapshot.
    fn tile_snapshots(&self) -> Op<Vec<TileSnapshot>>;
    /// Every snapshotted tile's sequence.
    fn tile_snapshot_seqs(&self) -> Op<Vec<(u32, u64)>>;
    /// Rebuilds the canvas from the latest snapshots and the journal after them.
    fn recover_canvas(&self, geometry: Geometry) -> Op<RecoveredCanvas>;
    /// Up to `limit` updates by `user` with `from_ms <= time < to_ms`, ascending by seq.
    fn user_pixels(&self, user: u32, from_ms: u64, to_ms: u64, limit: usize) -> Op<Vec<PixelRecord>>;
    /// Up to `limit` updates of pixel (x, y) with `seq < before`, newest first.
    fn pixel_history(&self, x: u16, y: u16, before: u64, limit: usize) -> Op<Vec<PixelRecord>>;
    /// Commits one tick's writes atomically.
    fn commit_tick(&self, tick: TickWrite) -> Op<()>;
    /// Commits one tick atomically like [`Backend::commit_tick`], but the store assigns the
    /// sequences (the ones in `tick` are ignored): pixels take the next global sequences,
    /// each room's messages the room's next ones. Sequences become visible in the order they
    /// are assigned (each is taken under a lock held until commit), so a reader that has seen
    /// sequence `n` can read every sequence below it. This is what lets several nodes share
    /// one canvas and one room order (cluster mode); only a shared backend has it.
    fn commit_tick_ordered(&self, tick: TickWrite) -> Op<Sequenced> {
        drop(tick);
        not_shared()
    }
    /// The highest canvas sequence ever assigned: like [`Backend::last_journal_seq`], but
    /// it never goes back when pruning empties the journal (the tile snapshots cover what was
    /// pruned).
    fn canvas_head(&self) -> Op<u64> {
        self.last_journal_seq()
    }
    /// Cluster mode: appends an event to the control log; its id. Ids are gap-free and become
    /// visible in order (taken under a lock held until commit).
    fn append_control(&self, _node: u64, event: String, _now_ms: u64) -> Op<u64> {
        drop(event);
        not_shared()
    }
    /// Cluster mode: up to `limit` control log entries after `after`, ascending.
    fn controls_after(&self, _after: u64, _limit: usize) -> Op<Vec<ControlRecord>> {
        not_shared()
    }
    /// Cluster mode: the control log's newest id (0: empty).
    fn last_control_id(&self) -> Op<u64> {
        not_shared()
    }
    /// Cluster mode: the messages of `room` with `from <= seq < to`, deleted ones included
    /// (without text), ascending; at most [`MAX_RANGE`] of them.
    fn room_range(&self, _room: u32, _from: u64, _to: u64) -> Op<Vec<Message>> {
        not_shared()
    }
    /// Cluster mode: the direct messages of the pair `{a, b}` with `from <= seq < to`, deleted
    /// ones included (without text), ascending; at most [`MAX_RANGE`] of them.
    fn direct_range(&self, _a: u32, _b: u32, _from: u64, _to: u64) -> Op<Vec<Message>> {
        not_shared()
    }
    /// Replaces the snapshots of the given tiles. A backend that several nodes share ignores a
    /// snapshot older than the stored one of its tile (each node saves the same tiles).
    fn save_tiles(&self, snapshots: Vec<TileSnapshot>) -> Op<()>;
    /// A consistent export of the store, taken without stopping writes (see
    /// [`crate::backup`]): every keyspace on fjall; the canvas alone on PostgreSQL.
    fn export(&self) -> Op<crate::backup::Export>;
    /// Drops at most `max` journal entries older than `before_ms` that every tile snapshot
    /// covers; how many were dropped.
    fn prune_journal(&self, geometry: Geometry, before_ms: u64, max: usize) -> Op<usize>;

    // --- the backend itself ---
    /// Makes everything acknowledged so far durable whatever the mode (orderly shutdown).
    fn flush(&self) -> Op<()>;
    /// Whether the backend refuses writes for good (a failed fsync): the process must restart.
    fn is_poisoned(&self) -> bool;
    /// Whether the backend can serve requests now (for `/readyz`).
    fn is_ready(&self) -> bool;
    /// Backend-specific gauges for `/metrics`: `(name, help, value)`.
    fn gauges(&self) -> Vec<(&'static str, &'static str, u64)>;
}
