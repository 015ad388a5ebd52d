//! One shard: a single-threaded state machine fed decoded frames, messages from other shards,
//! storage completions and `now`. It never reads a clock and never blocks; the driver
//! (`runtime` on a real thread, `harness` in tests) pumps it.
//!
//! A shard holds its sessions (in a slab), the local indexes that fan-out walks (tile → its
//! subscribed sessions, room → its member sessions, user → sessions), and the state it is home
//! for (tiles, rooms). Client commands live in `cmd/`, home-side handling in `home`, batching
//! to storage and publication in `tick`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use pixelparty_protocol::server::{Ack, Closing, Error as ErrorFrame};
use pixelparty_protocol::{ClientFrame, CloseReason, Decoded, ErrorCode, ServerFrame};
use pixelparty_storage::Store;

use crate::config::EngineConfig;
use crate::conn::{Class, Close, Conn, Sub, Target, UserCtx};
use crate::limiter::RateTable;
use crate::mesh::{Completion, Mesh};
use crate::metrics::ShardMetrics;
use crate::msg::{ConnId, ConnRef, Refusal, ShardMsg};
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
            directs: HashMap::new(),
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

    // ---- sessions -------------------------------------------------------------------------

    pub(crate) fn conn(&self, id: ConnId) -> Option<&Conn> {
        let slot = self.slots.get(id.slot as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.conn.as_ref()
    }

    pub(crate) fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        let slot = self.slots.get_mut(id.slot as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.conn.as_mut()
    }

    /// Opens a session for an authenticated user. Its first frame must be `Hello`.
    pub fn connect(&mut self, mut user: UserCtx) -> ConnId {
        let blocks = match std::mem::take(&mut user.blocks) {
            list if list.is_empty() => self.no_blocks.clone(),
            list => list,
        };
        let user_id = user.id;
        self.next_expiry_ms = self.next_expiry_ms.min(user.expires_ms);
        let conn = Conn::new(user, blocks);
        let id = match self.free.pop() {
            Some(slot) => {
                let s = &mut self.slots[slot as usize];
                s.generation = s.generation.wrapping_add(1);
                s.conn = Some(conn);
                ConnId { slot, generation: s.generation }
            }
            None => {
                self.slots.push(Slot { generation: 0, conn: Some(conn) });
                ConnId { slot: (self.slots.len() - 1) as u32, generation: 0 }
            }
        };
        self.user_conns.entry(user_id).or_default().push(id);
        self.live += 1;
        ShardMetrics::add(&self.metrics().sessions_opened, 1);
        id
    }

    /// Replaces a session's block list (sorted).
    pub fn set_blocks(&mut self, id: ConnId, blocks: Arc<[u32]>) {
        if let Some(c) = self.conn_mut(id) {
            c.blocks = blocks;
        }
    }

    /// Ends a session (the transport is gone): leaves its rooms and drops its subscriptions.
    pub fn disconnect(&mut self, id: ConnId) {
        let Some(slot) = self.slots.get_mut(id.slot as usize) else {
            return;
        };
        if slot.generation != id.generation {
            return;
        }
        let Some(conn) = slot.conn.take() else { return };
        self.free.push(id.slot);
        self.live -= 1;
        ShardMetrics::add(&self.metrics().sessions_closed, 1);
        remove_from(&mut self.user_conns, conn.user.id, id);
        for (tile, _) in &conn.subs {
            self.drop_tile_sub(*tile, id);
        }
        for room in &conn.rooms {
            remove_from(&mut self.room_members, *room, id);
            let home = crate::routing::room_home(*room, self.config().shards);
            self.send(home, ShardMsg::Leave { room: *room, conn: self.conn_ref(id), user: conn.user.id });
        }
    }

    pub(crate) fn drop_tile_sub(&mut self, tile: u32, id: ConnId) {
        if remove_from(&mut self.tile_subs, tile, id) {
            let home = crate::routing::tile_home(tile, self.config().shards);
            self.send(home, ShardMsg::Interest { tile, shard: self.id, on: false });
        }
    }

    /// Decodes and handles the complete frames at the front of `buf`; returns how many bytes
    /// were used (the caller keeps the rest for later). A malformed frame closes the session.
    pub fn receive(&mut self, id: ConnId, buf: &[u8], now_ms: u64) -> usize {
        let mut used = 0;
        while self.conn(id).is_some_and(|c| c.closing.is_none()) {
            match ClientFrame::decode(&buf[used..]) {
                Ok(Decoded::Frame { frame, len }) => {
                    used += len;
                    self.dispatch(id, frame, now_ms);
                }
                Ok(Decoded::Incomplete { .. }) => break,
                Err(e) => {
                    self.violation(id, e.code(), &e.to_string());
                    break;
                }
            }
        }
        used
    }

    /// Handles one whole transport message (a WebSocket message): like [`Shard::receive`], but
    /// a message ending inside a frame is a protocol violation.
    pub fn receive_message(&mut self, id: ConnId, message: &[u8], now_ms: u64) {
        let used = self.receive(id, message, now_ms);
        if used < message.len() && self.conn(id).is_some_and(|c| c.closing.is_none()) {
            self.violation(id, ErrorCode::Malformed, "transport message ends inside a frame");
        }
    }

    pub(crate) fn violation(&mut self, id: ConnId, code: ErrorCode, message: &str) {
        ShardMetrics::add(&self.metrics().protocol_violations, 1);
        let message = truncate(message, pixelparty_protocol::limits::MAX_REASON_BYTES);
        self.push_reliable(id, encode(&ServerFrame::Error(ErrorFrame { req: 0, code, retry_after_ms: 0, message })));
        self.close(id, CloseReason::ProtocolViolation, message, true);
    }

    fn dispatch(&mut self, id: ConnId, frame: ClientFrame<'_>, now_ms: u64) {
        let Some(conn) = self.conn(id) else { return };
        match (conn.version != 0, frame) {
            (false, ClientFrame::Hello(h)) => self.on_hello(id, h, now_ms),
            (false, _) | (true, ClientFrame::Hello(_)) => {
                self.violation(id, ErrorCode::HandshakeRequired, "the first frame must be Hello, and only the first")
            }
            (true, ClientFrame::Subscribe(s)) => self.on_subscribe(id, s),
            (true, ClientFrame::Unsubscribe(u)) => self.on_unsubscribe(id, u),
            (true, ClientFrame::Paint(p)) => self.on_paint(id, p, now_ms),
            (true, ClientFrame::JoinRoom(r)) => self.on_join(id, r),
            (true, ClientFrame::LeaveRoom(r)) => self.on_leave(id, r),
            (true, ClientFrame::Who(r)) => self.on_who(id, r),
            (true, ClientFrame::SendRoom(m)) => self.on_send_room(id, m, now_ms),
            (true, ClientFrame::SendDirect(m)) => self.on_send_direct(id, m, now_ms),
            (true, ClientFrame::Delete(d)) => self.on_delete(id, d),
            (true, ClientFrame::History(h)) => self.on_history(id, h),
            (true, ClientFrame::Ping(p)) => self.on_ping(id, p, now_ms),
        }
    }

    // ---- output towards sessions ----------------------------------------------------------

    fn push(&mut self, id: ConnId, frame: Bytes, class: Class) -> bool {
        let (max, reserve) = (self.config().outbound_max_bytes, self.config().outbound_reserve_bytes);
        let Some(conn) = self.conn_mut(id) else {
            return false;
        };
        if conn.push(frame, class, max, reserve) {
            return true;
        }
        ShardMetrics::add(&self.metrics().slow_consumers, 1);
        self.close(id, CloseReason::SlowConsumer, "outbound queue overflow", false);
        false
    }

    /// Queues a frame that must arrive (acks, errors, chat); closes a session that cannot
    /// take it.
    pub(crate) fn push_reliable(&mut self, id: ConnId, frame: Bytes) -> bool {
        self.push(id, frame, Class::Reliable)
    }

    /// Queues canvas bytes for a subscription; when the queue is full they are dropped, the
    /// subscription stops and the tile is announced in a `Resync`.
    pub(crate) fn push_canvas(&mut self, id: ConnId, tile: u32, frame: Bytes) {
        let max = self.config().outbound_max_bytes;
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if conn.queued_bytes + frame.len() <= max {
            conn.push(frame, Class::Canvas, max, 0);
            return;
        }
        conn.set_sub(tile, Sub::Dropped);
        if !conn.resync.contains(&tile) {
            conn.resync.push(tile);
        }
        ShardMetrics::add(&self.metrics().canvas_frames_dropped, 1);
    }

    pub(crate) fn ack(&mut self, id: ConnId, req: u32, value: u64) {
        self.push_reliable(id, encode(&ServerFrame::Ack(Ack { req, value })));
    }

    pub(crate) fn refuse(&mut self, id: ConnId, req: u32, r: &Refusal) {
        // A code newer than the session's protocol version goes out as one it knows.
        let code = self.conn(id).map_or(r.code, |c| r.code.for_version(c.version));
        let frame = ServerFrame::Error(ErrorFrame { req, code, retry_after_ms: r.retry_after_ms, message: r.message });
        self.push_reliable(id, encode(&frame));
    }

    /// Whether a request that sends work to another shard may go ahead: refused (and `false`)
    /// while this shard is overloaded or shutting down, or when `counted` and the session
    /// already has [`MAX_REQUESTS_IN_FLIGHT`] unanswered. The caller counts it when sent.
    pub(crate) fn admit_remote(&mut self, id: ConnId, req: u32, counted: bool) -> bool {
        if self.overloaded() || self.shutting_down {
            ShardMetrics::add(&self.metrics().overloaded, 1);
            self.refuse(id, req, &Refusal { code: ErrorCode::Overloaded, retry_after_ms: 100, message: "server busy" });
            return false;
        }
        if counted && self.conn(id).is_some_and(|c| c.in_flight >= MAX_REQUESTS_IN_FLIGHT) {
            let r =
                Refusal { code: ErrorCode::RateLimited, retry_after_ms: 50, message: "too many requests in flight" };
            self.refuse(id, req, &r);
            return false;
        }
        true
    }

    /// Sends a counted request (see [`Shard::admit_remote`]) to a home shard.
    pub(crate) fn send_request(&mut self, id: ConnId, to: ShardId, msg: ShardMsg) {
        if let Some(c) = self.conn_mut(id) {
            c.in_flight += 1;
        }
        self.send(to, msg);
    }

    /// Ends a session with a reason: the transport sends what is queued (or, unless
    /// `keep_queue`, drops it), then the `Closing` frame, then closes.
    pub fn close(&mut self, id: ConnId, reason: CloseReason, message: &str, keep_queue: bool) {
        let message = truncate(message, pixelparty_protocol::limits::MAX_REASON_BYTES);
        let closing = encode(&ServerFrame::Closing(Closing { reason, message }));
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if conn.closing.is_some() {
            return;
        }
        if !keep_queue {
            conn.queue.clear();
            conn.queued_bytes = 0;
        }
        conn.queued_bytes += closing.len();
        conn.queue.push_back(closing);
        conn.close(reason, message);
    }

    /// Ready when the session has bytes to send or is closing; otherwise remembers the waker.
    pub fn poll_output(&mut self, id: ConnId, cx: &mut Context<'_>) -> Poll<()> {
        let Some(conn) = self.conn_mut(id) else {
            return Poll::Ready(());
        };
        if !conn.queue.is_empty() || conn.closing.is_some() || !conn.resync.is_empty() {
            return Poll::Ready(());
        }
        conn.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Moves up to about `max_bytes` of queued frames into `out` (at least one frame when any
    /// is queued). Returns the close to perform once everything queued has been taken.
    pub fn take_output(&mut self, id: ConnId, max_bytes: usize, out: &mut Vec<Bytes>) -> Option<Close> {
        let resync_at = self.config().outbound_max_bytes / 2;
        let Some(conn) = self.conn_mut(id) else {
            return Some(Close { reason: CloseReason::Normal, message: String::new() });
        };
        let mut taken = 0;
        while let Some(front) = conn.queue.front() {
            if taken > 0 && taken + front.len() > max_bytes {
                break;
            }
            taken += front.len();
            conn.queued_bytes -= front.len();
            out.extend(conn.queue.pop_front());
        }
        let resync = (conn.closing.is_none() && !conn.resync.is_empty() && conn.queued_bytes <= resync_at)
            .then(|| std::mem::take(&mut conn.resync));
        let close = if conn.queue.is_empty() { conn.closing.as_deref().cloned() } else { None };
        if let Some(tiles) = resync {
            self.send_resync(id, &tiles);
        }
        if close.is_none() {
            self.next_catch_up(id);
        }
        close
    }

    fn send_resync(&mut self, id: ConnId, tiles: &[u32]) {
        for chunk in tiles.chunks(pixelparty_protocol::limits::MAX_TILES_PER_FRAME) {
            let wire: Vec<pixelparty_protocol::types::WireTile> = chunk.iter().map(|t| (*t).into()).collect();
            let frame = encode(&ServerFrame::Resync(pixelparty_protocol::server::Resync { tiles: &wire }));
            ShardMetrics::add(&self.metrics().resyncs_sent, 1);
            self.push_reliable(id, frame);
        }
    }

    /// Bytes queued towards sessions of this shard.
    pub fn queued_bytes(&self) -> usize {
        self.slots.iter().filter_map(|s| s.conn.as_ref()).map(|c| c.queued_bytes).sum()
    }

    /// Samples every session's delivery queue depth into the metrics, at most once per
    /// [`QUEUE_SAMPLE_INTERVAL_MS`](crate::metrics::QUEUE_SAMPLE_INTERVAL_MS).
    pub(crate) fn sample_queues(&mut self, now_ms: u64) {
        if now_ms < self.next_queue_sample_ms {
            return;
        }
        self.next_queue_sample_ms = now_ms.saturating_add(crate::metrics::QUEUE_SAMPLE_INTERVAL_MS);
        let depths = self.slots.iter().filter_map(|s| s.conn.as_ref()).map(|c| c.queued_bytes as u64);
        self.shared.metrics[self.id].delivery_queue_bytes.observe_all(depths);
    }

    // ---- messages between shards ----------------------------------------------------------

    /// Queues a message for a shard (this one included); delivered by [`Shard::flush`] and
    /// the next inbox turn.
    pub(crate) fn send(&mut self, to: ShardId, msg: ShardMsg) {
        self.outgoing[to].push_back(msg);
        self.pending_outbound += 1;
    }

    /// Whether too much is waiting for full inboxes to take new work.
    pub(crate) fn overloaded(&self) -> bool {
        self.pending_outbound > self.config().max_pending_outbound
    }

    /// Pushes queued messages into the other shards' inboxes, waking each receiver once.
    /// Messages for this shard stay queued for [`Shard::process_inbox`].
    pub fn flush(&mut self) {
        for to in 0..self.outgoing.len() {
            if to == self.id {
                continue;
            }
            let mut pushed = false;
            while let Some(msg) = self.outgoing[to].pop_front() {
                match self.shared.mesh.try_push(to, msg) {
                    Ok(()) => {
                        pushed = true;
                        self.pending_outbound -= 1;
                    }
                    Err(msg) => {
                        self.outgoing[to].push_front(msg);
                        break;
                    }
                }
            }
            if pushed {
                self.shared.mesh.wake(to);
            }
        }
    }

    /// Whether messages wait in this shard's own queues (for itself or full inboxes).
    pub fn has_pending(&self) -> bool {
        self.pending_outbound > 0 || !self.asks_refused.is_empty()
    }

    /// Handles up to `max` messages: storage completions first, then messages to itself, then
    /// the inbox. Returns how many were handled.
    pub fn process_inbox(&mut self, now_ms: u64, max: usize) -> usize {
        let mut handled = 0;
        while handled < max {
            if let Some(done) = self.shared.mesh.try_recv_done(self.id) {
                self.on_completion(done, now_ms);
            } else if let Some(refused) = self.asks_refused.pop_front() {
                refused.run(self, now_ms);
            } else if let Some(msg) = self.outgoing[self.id].pop_front() {
                self.pending_outbound -= 1;
                self.on_message(msg, now_ms);
            } else if let Some(msg) = self.shared.mesh.try_recv(self.id) {
                self.on_message(msg, now_ms);
            } else {
                break;
            }
            handled += 1;
        }
        handled
    }

    /// Handles a storage completion (the harness hands them over itself).
    pub fn complete(&mut self, done: Completion, now_ms: u64) {
        self.on_completion(done, now_ms);
    }

    fn on_completion(&mut self, done: Completion, now_ms: u64) {
        match done {
            Completion::Tick { batch, result } => self.on_durable(batch, result, now_ms),
            Completion::Storage(resume) => {
                self.asks_in_flight -= 1;
                resume.run(self, now_ms);
            }
        }
    }

    pub(crate) fn on_message(&mut self, msg: ShardMsg, now_ms: u64) {
        let mut slot = Some(msg);
        if !self.room_ready(&mut slot) {
            return; // Waits for its room to load.
        }
        let Some(msg) = slot else { return };
        match msg {
            ShardMsg::Paint(cmd) => self.home_paint(cmd),
            ShardMsg::Restore(list) => self.home_restore(list),
            ShardMsg::PaintsDone(results) => {
                for r in results {
                    self.on_paint_done(r, now_ms);
                }
            }
            ShardMsg::Interest { tile, shard, on } => {
                if let Some(t) = self.tiles.get_mut(&tile) {
                    t.set_interest(shard, on);
                }
            }
            ShardMsg::Subscribe { tile, cursor, conn } => self.home_subscribe(tile, cursor, conn),
            ShardMsg::Replay { conn, tile, payload } => self.on_replay(conn, tile, payload),
            ShardMsg::Tiles(frames) => self.on_tiles(&frames),
            ShardMsg::Join { room, conn, req, user, name } => self.home_join(room, conn, req, user, name),
            ShardMsg::DirectPost(post) => self.home_direct(post, now_ms),
            ShardMsg::JoinDone { conn, req, room, result } => self.on_join_done(conn, req, room, result),
            ShardMsg::Leave { room, conn, user } => self.home_leave(room, conn, user),
            ShardMsg::Post { room, conn, req, user, name, text } => {
                self.home_post(room, conn, req, user, name, text, now_ms)
            }
            ShardMsg::Done { conn, req, result, then } => {
                if let Some(c) = self.conn_mut(conn) {
                    c.in_flight = c.in_flight.saturating_sub(1);
                }
                match result {
                    Ok(value) => self.ack(conn, req, value),
                    Err(r) => self.refuse(conn, req, &r),
                }
                if !then.is_empty() {
                    self.push_reliable(conn, then);
                }
            }
            ShardMsg::RoomFrame { room, author, frame } => self.on_room_frame(room, author, frame),
            ShardMsg::DeleteRoomMessage { room, seq, origin, user, admin } => {
                self.home_delete(room, seq, origin, user, admin)
            }
            ShardMsg::Who { room, conn, req } => self.home_who(room, conn, req),
            ShardMsg::Direct { from, to, frame } => self.on_direct(from, to, frame),
            ShardMsg::DirectDeleted { a, b, seq } => self.on_direct_deleted(a, b, seq),
            ShardMsg::End { target, reason, message } => self.end_sessions(&target, reason, &message),
            ShardMsg::BlocksChanged { user, blocks } => {
                for id in self.user_conns.get(&user).cloned().unwrap_or_default() {
                    if let Some(c) = self.conn_mut(id) {
                        c.blocks = blocks.clone();
                    }
                }
            }
            ShardMsg::Snapshot { full, reply } => {
                // Never blocks: the snapshotter keeps at most one request per shard in flight
                // on a channel with room for one answer per shard.
                let _ = reply.try_send((self.id, self.copy_tiles(full)));
            }
            ShardMsg::Stats { reply } => {
                let _ = reply.send(self.stats());
            }
            ShardMsg::Shutdown { reason } => self.shutdown(reason),
        }
    }

    /// Closes the sessions `target` names (an address range means a walk over every
    /// session: bans are rare).
    fn end_sessions(&mut self, target: &Target, reason: CloseReason, message: &str) {
        let ids = match target {
            Target::User(user) | Target::Session { user, .. } => self.user_conns.get(user).cloned().unwrap_or_default(),
            Target::Net(_) => self.all_conns(),
        };
        for id in ids {
            if self.conn(id).is_some_and(|c| c.is_target(target)) {
                self.close(id, reason, message, false);
            }
        }
    }

    /// Ends the sessions whose login session has expired. Cheap when none is due: the shard
    /// keeps the earliest expiry and walks its sessions only once that has passed.
    pub(crate) fn expire_sessions(&mut self, now_ms: u64) {
        if now_ms < self.next_expiry_ms {
            return;
        }
        let mut next = u64::MAX;
        for id in self.all_conns() {
            let Some(c) = self.conn(id) else { continue };
            if c.closing.is_some() {
                continue;
            }
            if c.user.expires_ms <= now_ms {
                self.close(id, CloseReason::SessionRevoked, "session expired; log in again", false);
            } else {
                next = next.min(c.user.expires_ms);
            }
        }
        self.next_expiry_ms = next;
    }

    /// Closes every session with `reason` and refuses new work.
    pub fn shutdown(&mut self, reason: CloseReason) {
        self.shutting_down = true;
        let ids: Vec<ConnId> = self.all_conns();
        for id in ids {
            self.close(id, reason, "server shutting down", false);
        }
    }

    pub(crate) fn all_conns(&self) -> Vec<ConnId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.conn.is_some())
            .map(|(i, s)| ConnId { slot: i as u32, generation: s.generation })
            .collect()
    }

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
