//! One shard: a single-threaded state machine fed decoded frames, messages from other shards,
//! storage completions and `now`. It never reads a clock and never blocks; the driver
//! (`runtime` on a real thread, `harness` in tests) pumps it.
//!
//! A shard holds its sessions (in a slab), the local indexes that fan-out walks (tile → its
//! subscribed sessions, room → its member sessions, user → sessions), and the state it is home
//! for (tiles, rooms). Client commands live in `cmd/`, home-side handling in `home`, batching
//! to storage and publication in `tick`.
//!
//! # Layout
//! - this file: [`Shared`], [`Shard`] and its indexes.
//! - `sessions`: the slab, connect and disconnect, decoding and dispatch, ending sessions.
//! - `output`: per-session queues, acks and refusals, closing, draining.
//! - `inbox`: messages between shards, the inbox turn, dispatch of every message.

mod inbox;
mod output;
mod sessions;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bytes::{Bytes, BytesMut};
use pixelparty_protocol::ServerFrame;
use pixelparty_storage::Store;

use crate::config::EngineConfig;
use crate::conn::Conn;
use crate::limiter::RateTable;
use crate::mesh::Mesh;
use crate::metrics::ShardMetrics;
use crate::msg::{ConnId, ConnRef, ShardMsg};
use crate::rooms::HomeRoom;
use crate::routing::ShardId;
use crate::tick::TickState;
use crate::tiles::OwnedTile;

/// State shared by every shard of one engine.
#[derive(Debug)]
pub struct Shared {
    /// Configuration.
    pub config: EngineConfig,
    /// The store.
    pub store: Store,
    /// Inboxes.
    pub mesh: Mesh,
    /// Next global pixel sequence.
    pub next_seq: AtomicU64,
    /// Paint cooldown per user.
    pub cooldown: RateTable,
    /// Chat slow mode per user.
    pub chat: RateTable,
    /// Per-shard counters.
    pub metrics: Vec<ShardMetrics>,
    /// Set when the engine shuts down (stops the watchdog).
    pub stopping: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// Builds the shared state; `last_seq` is the highest pixel sequence recovered.
    pub fn new(config: EngineConfig, store: Store, last_seq: u64) -> Self {
        let shards = config.shards;
        // Each shard keeps at most `max_ticks_in_flight` batches and `MAX_ASKS_IN_FLIGHT`
        // other storage requests outstanding; completions never overflow.
        let completions = config.max_ticks_in_flight + crate::asks::MAX_ASKS_IN_FLIGHT;
        Self {
            mesh: Mesh::new(shards, config.inbox_capacity, completions),
            next_seq: AtomicU64::new(last_seq + 1),
            cooldown: RateTable::new(config.max_users, u64::from(config.cooldown_ms), 1),
            chat: RateTable::new(config.max_users, u64::from(config.chat_interval_ms), config.chat_burst),
            metrics: (0..shards).map(|_| ShardMetrics::default()).collect(),
            stopping: std::sync::atomic::AtomicBool::new(false),
            config,
            store,
        }
    }
}

/// Most requests one session keeps waiting at home shards (room posts, room deletes, `Who`);
/// more are refused with `RateLimited` until answers come back.
pub const MAX_REQUESTS_IN_FLIGHT: u16 = 64;

/// Encodes one server frame into fresh bytes. Callers build frames within the protocol's
/// limits; a failure is logged and yields nothing rather than a broken frame.
pub(crate) fn encode(frame: &ServerFrame<'_>) -> Bytes {
    let mut out = BytesMut::with_capacity(frame.encoded_len());
    if let Err(e) = frame.encode(&mut out) {
        tracing::error!(error = %e, opcode = frame.opcode(), "frame over protocol limits not sent");
        return Bytes::new();
    }
    out.freeze()
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

/// One shard's state machine.
#[derive(Debug)]
pub struct Shard {
    pub(crate) id: ShardId,
    pub(crate) shared: Arc<Shared>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    pub(crate) live: usize,
    /// Local sessions subscribed to a tile (any state).
    pub(crate) tile_subs: HashMap<u32, Vec<ConnId>>,
    /// Local sessions in a room (joined and confirmed).
    pub(crate) room_members: HashMap<u32, Vec<ConnId>>,
    /// Local sessions of a user.
    pub(crate) user_conns: HashMap<u32, Vec<ConnId>>,
    /// Tiles this shard is home for.
    pub(crate) tiles: HashMap<u32, OwnedTile>,
    /// Direct messages waiting to be stored, per conversation this shard is home for (the
    /// front one is at the store).
    pub(crate) directs: HashMap<(u32, u32), VecDeque<crate::msg::DirectPost>>,
    /// Cluster mode: the conversations homed here, each put back in order.
    pub(crate) conv_orders: HashMap<(u32, u32), crate::feed::ConvOrder>,
    /// Cluster mode: conversations whose order is starting (their first messages wait).
    pub(crate) conv_starting: HashMap<(u32, u32), Vec<crate::feed::Pending>>,
    /// Cluster mode: the last conversation of the previous head check (round robin).
    pub(crate) last_conv_checked: (u32, u32),
    /// Rooms being loaded from the store, with the requests waiting for them.
    pub(crate) loading_rooms: HashMap<u32, Vec<ShardMsg>>,
    /// Rooms this shard is home for (loaded on first use).
    pub(crate) rooms: HashMap<u32, HomeRoom>,
    pub(crate) tick: TickState,
    /// Storage requests outstanding (other than tick batches).
    pub(crate) asks_in_flight: usize,
    /// The number of the next ask.
    pub(crate) next_ask: u64,
    /// Asks that could not be made, answered (with an error) on the next turn.
    pub(crate) asks_refused: VecDeque<crate::asks::Resume>,
    /// Cluster mode: when the rooms' sequences are next checked against the store.
    pub(crate) next_room_check_ms: u64,
    /// Cluster mode: when rooms and conversations are next scanned for gaps held too long.
    pub(crate) next_gap_scan_ms: u64,
    /// Cluster mode: when this shard's rooms' members are next announced.
    pub(crate) next_presence_ms: u64,
    /// Cluster mode: the last room of the previous check (they are checked round robin).
    pub(crate) last_room_checked: u32,
    /// Messages for other shards (and for this one, handled in order with the inbox).
    outgoing: Vec<VecDeque<ShardMsg>>,
    pending_outbound: usize,
    pub(crate) shutting_down: bool,
    /// The empty block list most sessions share.
    no_blocks: Arc<[u32]>,
    /// The earliest login-session expiry among the sessions (`u64::MAX`: none).
    next_expiry_ms: u64,
    /// When the delivery queues are next sampled for the metrics.
    next_queue_sample_ms: u64,
}

impl Shard {
    /// A shard with the tiles it is home for (`tiles[i]` for every tile `t` with
    /// `tile_home(t) == id`, as `(tile, bytes, seq)`).
    pub fn new(id: ShardId, shared: Arc<Shared>, tiles: Vec<(u32, Vec<u8>, u64)>) -> Self {
        let shards = shared.config.shards;
        Self {
            id,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            tile_subs: HashMap::new(),
            room_members: HashMap::new(),
            user_conns: HashMap::new(),
            tiles: tiles.into_iter().map(|(t, data, seq)| (t, OwnedTile::new(data, seq))).collect(),
            rooms: HashMap::new(),
            tick: TickState::default(),
            asks_in_flight: 0,
            next_ask: 0,
            asks_refused: VecDeque::new(),
            next_room_check_ms: 0,
            next_gap_scan_ms: 0,
            next_presence_ms: 0,
            last_room_checked: 0,
            directs: HashMap::new(),
            conv_orders: HashMap::new(),
            conv_starting: HashMap::new(),
            last_conv_checked: (0, 0),
            loading_rooms: HashMap::new(),
            outgoing: (0..shards).map(|_| VecDeque::new()).collect(),
            pending_outbound: 0,
            shutting_down: false,
            no_blocks: Arc::from([]),
            next_expiry_ms: u64::MAX,
            next_queue_sample_ms: 0,
            shared,
        }
    }

    /// This shard's index.
    pub fn id(&self) -> ShardId {
        self.id
    }

    /// Sessions open on this shard.
    pub fn sessions(&self) -> usize {
        self.live
    }

    pub(crate) fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    pub(crate) fn store(&self) -> &Store {
        &self.shared.store
    }

    pub(crate) fn metrics(&self) -> &ShardMetrics {
        &self.shared.metrics[self.id]
    }

    pub(crate) fn conn_ref(&self, conn: ConnId) -> ConnRef {
        ConnRef { shard: self.id, conn }
    }
}

impl Shard {
    fn stats(&self) -> crate::msg::ShardStats {
        crate::msg::ShardStats {
            sessions: self.live,
            rooms: self.rooms.values().filter(|r| r.sessions() > 0).count(),
            queued_bytes: self.queued_bytes(),
            pending_outbound: self.pending_outbound,
            pending_paints: self.tick.pending_paints(),
            ticks_in_flight: self.tick.in_flight(),
        }
    }
}

/// Removes `id` from the list under `key`; returns whether the list became empty (and was
/// removed).
pub(crate) fn remove_from<K: std::hash::Hash + Eq + Copy>(
    map: &mut HashMap<K, Vec<ConnId>>,
    key: K,
    id: ConnId,
) -> bool {
    let Some(list) = map.get_mut(&key) else {
        return false;
    };
    let before = list.len();
    list.retain(|c| *c != id);
    if list.is_empty() {
        map.remove(&key);
        return before > 0;
    }
    false
}

/// `s` cut to at most `max` bytes on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
