//! A deterministic test harness: every shard of an engine in one thread, a fake clock,
//! simulated clients that decode what they receive and keep a canvas replica, and
//! `drive()` to run everything to quiescence. The store is the real one.
//!
//! Only storage completions come from another thread (the store's writer); `drive()` waits
//! for them, bounded, so a test never sleeps to synchronise.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pixelparty_protocol::canvas::set_pixel;
use pixelparty_protocol::client::Hello;
use pixelparty_protocol::limits::{NO_CURSOR, PROTOCOL_VERSION};
use pixelparty_protocol::{ClientFrame, ClientKind, CloseReason, ServerFrame, server_frames};
use pixelparty_storage::Store;

use crate::config::EngineConfig;
use crate::conn::{Close, UserCtx};
use crate::mesh::Completion;
use crate::msg::ConnId;
use crate::shard::{Shard, Shared};

/// A simulated client's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId(pub usize);

/// A frame a simulated client received, decoded into owned values.
pub use pixelparty_protocol::owned::Event as Got;

/// A simulated client.
#[derive(Debug)]
pub struct Client {
    /// Shard of its session.
    pub shard: usize,
    /// Its session.
    pub conn: ConnId,
    /// Its user.
    pub user: u32,
    /// Everything received, in order.
    pub got: Vec<Got>,
    /// Canvas replica: tile → (bytes, cursor).
    pub tiles: HashMap<u32, (Vec<u8>, u64)>,
    /// `Pixels` frames that did not chain onto the replica's cursor.
    pub gaps: usize,
    /// Set once the session ended.
    pub closed: Option<Close>,
    /// A stalled client does not read its output.
    pub stalled: bool,
    /// Bytes received.
    pub received_bytes: usize,
}

/// Every shard of one engine, driven by hand.
#[derive(Debug)]
pub struct Harness {
    /// The engine's shared state.
    pub shared: Arc<Shared>,
    /// The shards.
    pub shards: Vec<Shard>,
    /// The fake clock (ms since the Unix epoch).
    pub now_ms: u64,
    clients: Vec<Client>,
    /// Apply each round of storage answers newest first (see [`Harness::reverse_answers`]).
    answers_reversed: bool,
}

/// Longest `drive()` waits for one storage completion before failing the test.
const COMPLETION_WAIT: Duration = Duration::from_secs(20);

impl Harness {
    /// Builds the engine on `store` (recovering its canvas), with the clock at a fixed epoch.
    pub fn new(config: EngineConfig, store: Store) -> Self {
        let (shared, shards) = crate::runtime::build(config, store).expect("engine builds");
        Self { shared, shards, now_ms: 1_700_000_000_000, clients: Vec::new(), answers_reversed: false }
    }

    /// From now on, storage answers that are outstanding together are applied newest first
    /// (a real store answers in any order): what clients see must not depend on it.
    pub fn reverse_answers(&mut self) {
        self.answers_reversed = true;
    }

    /// Moves the fake clock.
    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
    }

    /// Opens a session on `shard` for `user` and sends `Hello`.
    pub fn connect(&mut self, shard: usize, user: UserCtx) -> ClientId {
        let c = self.connect_raw(shard, user);
        self.send(c, &ClientFrame::Hello(Hello { version: PROTOCOL_VERSION, kind: ClientKind::Bot, agent: "harness" }));
        c
    }

    /// The users `user` blocks, by id, as the store has them.
    fn stored_blocks(&self, user: u32) -> Arc<[u32]> {
        let list = self.shared.store.wait(move |b| b.blocks_of(user, crate::MAX_BLOCKS)).expect("store");
        list.into_iter().map(|r| r.user).collect()
    }

    /// Opens a session without sending anything.
    pub fn connect_raw(&mut self, shard: usize, mut user: UserCtx) -> ClientId {
        let id = user.id;
        // As the gateway does: the session starts with the user's blocks.
        user.blocks = self.stored_blocks(id);
        let conn = self.shards[shard].connect(user);
        self.clients.push(Client {
            shard,
            conn,
            user: id,
            got: Vec::new(),
            tiles: HashMap::new(),
            gaps: 0,
            closed: None,
            stalled: false,
            received_bytes: 0,
        });
        ClientId(self.clients.len() - 1)
    }

    /// Sends one frame as one transport message.
    pub fn send(&mut self, c: ClientId, frame: &ClientFrame<'_>) {
        let mut buf = BytesMut::new();
        frame.encode(&mut buf).expect("test frames are valid");
        self.send_raw(c, &buf);
    }

    /// Sends raw bytes as one transport message.
    pub fn send_raw(&mut self, c: ClientId, bytes: &[u8]) {
        let (shard, conn) = (self.clients[c.0].shard, self.clients[c.0].conn);
        let now = self.now_ms;
        self.shards[shard].receive_message(conn, bytes, now);
    }

    /// Stops or resumes a client's reading.
    pub fn set_stalled(&mut self, c: ClientId, stalled: bool) {
        self.clients[c.0].stalled = stalled;
    }

    /// Ends a client's session from its side.
    pub fn disconnect(&mut self, c: ClientId) {
        let (shard, conn) = (self.clients[c.0].shard, self.clients[c.0].conn);
        self.shards[shard].disconnect(conn);
    }

    /// Seeds a client's replica with a tile it got elsewhere (an HTTP snapshot).
    pub fn seed(&mut self, c: ClientId, tile: u32, data: Vec<u8>, seq: u64) {
        self.clients[c.0].tiles.insert(tile, (data, seq));
    }

    /// The server's canvas: every tile's bytes and sequence, from the home shards.
    pub fn canvas(&mut self) -> HashMap<u32, (Vec<u8>, u64)> {
        let mut out = HashMap::new();
        for s in &mut self.shards {
            for c in s.copy_tiles(true) {
                out.insert(c.tile, (c.data.to_vec(), c.seq));
            }
        }
        out
    }

    /// Tells every shard that `user`'s block list changed (as the gateway does after a
    /// block or unblock), reading it from the store.
    pub fn blocks_changed(&mut self, user: u32) {
        let blocks = self.stored_blocks(user);
        for s in 0..self.shards.len() {
            let msg = crate::msg::ShardMsg::BlocksChanged { user, blocks: blocks.clone() };
            self.shared.mesh.send(s, msg).expect("inbox has room");
        }
    }

    /// Hands a `Social` frame to every shard for the sessions of `users` (every logged-in
    /// session: `None`), as the gateway does after a social change.
    pub fn social(&mut self, users: Option<&[u32]>, kind: pixelparty_protocol::SocialKind, id: u32, name: &str) {
        let frame = crate::shard::encode(&ServerFrame::Social(pixelparty_protocol::server::Social { kind, id, name }));
        let users: Option<Arc<[u32]>> = users.map(Arc::from);
        for s in 0..self.shards.len() {
            let msg = crate::msg::ShardMsg::Social { users: users.clone(), frame: frame.clone() };
            self.shared.mesh.send(s, msg).expect("inbox has room");
        }
    }

    /// Ends every session of `user` (as a ban does).
    pub fn kick(&mut self, user: u32, reason: CloseReason, message: &str) {
        self.end_sessions(&crate::conn::Target::User(user), reason, message);
    }

    /// Ends the sessions `target` names on every shard.
    pub fn end_sessions(&mut self, target: &crate::conn::Target, reason: CloseReason, message: &str) {
        for s in 0..self.shards.len() {
            let msg = crate::msg::ShardMsg::End { target: target.clone(), reason, message: message.into() };
            self.shared.mesh.send(s, msg).expect("inbox has room");
        }
    }

    /// Sends a rollback's restores of `rolled_back`'s pixels (`(x, y, colour, guard_seq)`)
    /// to their home shards, drives, and reports what they did.
    pub fn restore(&mut self, rolled_back: u32, restores: &[(u16, u16, u8, u64)]) -> crate::restore::RestoreReport {
        let (tally, done) = self.send_restores(rolled_back, restores);
        self.drive();
        tally.wait(&done, Duration::ZERO)
    }

    /// Sends restores to their home shards' inboxes without driving; the tally and its
    /// completion signal.
    pub fn send_restores(
        &mut self,
        rolled_back: u32,
        restores: &[(u16, u16, u8, u64)],
    ) -> (Arc<crate::restore::RestoreTally>, crossbeam_channel::Receiver<()>) {
        let (tally, done) = crate::restore::RestoreTally::new(restores.len());
        let g = self.shared.config.geometry;
        for &restore in restores {
            let cmd = crate::restore::restore_cmd(&g, rolled_back, restore, &tally).expect("restore on the canvas");
            let home = crate::routing::tile_home(cmd.tile, self.shards.len());
            self.shared.mesh.send(home, crate::msg::ShardMsg::Restore(vec![cmd])).expect("inbox has room");
        }
        (tally, done)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// A client's state.
    pub fn client(&self, c: ClientId) -> &Client {
        &self.clients[c.0]
    }

    /// Takes what a client received so far.
    pub fn take(&mut self, c: ClientId) -> Vec<Got> {
        std::mem::take(&mut self.clients[c.0].got)
    }

    /// Runs every shard until nothing is pending anywhere: inboxes empty, ticks sent and
    /// durable, direct messages stored, outputs read by every client that is not stalled.
    pub fn drive(&mut self) {
        for _ in 0..100_000 {
            let mut progress = false;
            for s in &mut self.shards {
                progress |= s.process_messages(self.now_ms, usize::MAX) > 0;
                s.flush();
            }
            progress |= self.read_all();
            progress |=
                (0..self.shards.len()).any(|i| self.shared.mesh.messages_queued(i) > 0 || self.shards[i].has_pending());
            if progress {
                continue;
            }
            // Nothing moved: wait for the store, else tick, else done. Every outstanding answer
            // is collected first and applied in the order it was asked, so runs are repeatable
            // whatever order the store's threads finish in.
            if let Some(i) = self.shards.iter().position(|s| s.tick.in_flight() > 0 || s.asks_in_flight > 0) {
                let outstanding = self.shards[i].tick.in_flight() + self.shards[i].asks_in_flight;
                let mut answers: Vec<Completion> = (0..outstanding)
                    .map(|_| {
                        self.shared.mesh.recv_done_timeout(i, COMPLETION_WAIT).expect("storage completion within 20 s")
                    })
                    .collect();
                answers.sort_by_key(|c| match c {
                    Completion::Tick { batch, .. } => (0, *batch),
                    Completion::Storage(r) => (1, r.seq()),
                });
                if self.answers_reversed {
                    answers.reverse();
                }
                for done in answers {
                    self.shards[i].complete(done, self.now_ms);
                }
                continue;
            }
            let mut ticked = false;
            for s in &mut self.shards {
                let before = s.tick.in_flight();
                s.tick(self.now_ms);
                ticked |= s.tick.in_flight() > before;
                s.flush();
            }
            // A tick can also answer at once (a batch the store refused) or end sessions
            // (expired logins): go on while it produced anything.
            let sent =
                (0..self.shards.len()).any(|i| self.shared.mesh.messages_queued(i) > 0 || self.shards[i].has_pending());
            if !ticked && !sent && !self.read_all() {
                return;
            }
        }
        panic!("drive did not settle");
    }

    fn read_all(&mut self) -> bool {
        let mut progress = false;
        let geometry = self.shared.config.geometry;
        for client in &mut self.clients {
            if client.stalled || client.closed.is_some() {
                continue;
            }
            let mut out = Vec::new();
            let close = self.shards[client.shard].take_output(client.conn, usize::MAX, &mut out);
            progress |= !out.is_empty();
            let mut resync = Vec::new();
            for bytes in out {
                resync.extend(client.receive(&bytes, geometry));
            }
            // Like the client library: re-subscribe what the server asks to resync.
            if !resync.is_empty() {
                let cursors: Vec<pixelparty_protocol::TileCursor> =
                    resync.iter().map(|t| pixelparty_protocol::TileCursor::new(*t, client.cursor(*t))).collect();
                let mut buf = BytesMut::new();
                ClientFrame::Subscribe(pixelparty_protocol::client::Subscribe { tiles: &cursors })
                    .encode(&mut buf)
                    .expect("valid");
                self.shards[client.shard].receive_message(client.conn, &buf, self.now_ms);
                progress = true;
            }
            if let Some(close) = close {
                self.shards[client.shard].disconnect(client.conn);
                client.closed = Some(close);
                progress = true;
            }
        }
        progress
    }
}

impl Client {
    /// The replica's copy of a tile, if it holds one.
    pub fn tile(&self, tile: u32) -> Option<&(Vec<u8>, u64)> {
        self.tiles.get(&tile)
    }

    /// The cursor to re-subscribe `tile` with.
    pub fn cursor(&self, tile: u32) -> u64 {
        self.tiles.get(&tile).map_or(NO_CURSOR, |t| t.1)
    }

    /// Decodes and applies received bytes; returns the tiles the server asked to resync.
    fn receive(&mut self, bytes: &Bytes, geometry: pixelparty_protocol::Geometry) -> Vec<u32> {
        self.received_bytes += bytes.len();
        let mut resync = Vec::new();
        for frame in server_frames(bytes) {
            let frame = frame.expect("the server sends valid frames");
            match &frame {
                ServerFrame::Pixels(p) => {
                    let (tile, prev, last) = (p.head.tile(), p.head.prev_seq(), p.head.last_seq());
                    match self.tiles.get_mut(&tile) {
                        Some((data, cursor)) if *cursor == prev => {
                            for u in p.updates {
                                set_pixel(data, geometry.bpp(), u.offset(), u.colour());
                            }
                            *cursor = last;
                        }
                        Some((_, cursor)) if last <= *cursor => {}
                        _ => self.gaps += 1,
                    }
                }
                ServerFrame::TileData(t) => {
                    self.tiles.insert(t.tile, (t.data.to_vec(), t.seq));
                }
                ServerFrame::Resync(r) => resync.extend(r.tiles.iter().map(|t| t.get())),
                _ => {}
            }
            let got = Got::from(&frame);
            self.got.push(got);
        }
        resync
    }
}

/// A user context for tests.
pub fn user(id: u32, name: &str) -> UserCtx {
    UserCtx::new(id, name, pixelparty_protocol::Role::User)
}

/// An admin user context for tests.
pub fn admin(id: u32, name: &str) -> UserCtx {
    UserCtx::new(id, name, pixelparty_protocol::Role::Admin)
}
