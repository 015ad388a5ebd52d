//! What a shard does as the home of tiles and rooms: accept paints into the next tick,
//! answer subscriptions from the ring, keep room membership, sequence posts and deletions,
//! answer who-is-here, and copy tiles for snapshots.

use std::sync::Arc;

use bytes::Bytes;
use pixelparty_protocol::{ErrorCode, PresenceKind};

use crate::metrics::ShardMetrics;
use crate::msg::{ConnRef, Origin, PaintCmd, PaintResult, Refusal, ShardMsg, TileCopy};
use crate::rooms::{HomeRoom, presence_change};
use crate::shard::Shard;
use crate::tick::{PendingDelete, PendingPost};

impl Shard {
    fn refuse_remote(&mut self, conn: ConnRef, req: u32, r: Refusal) {
        self.answer(Origin::Session(conn, req), Err(r));
    }

    /// Sends the outcome of a request to whoever asked.
    pub(crate) fn answer(&mut self, origin: Origin, result: Result<u64, Refusal>) {
        match origin {
            Origin::Session(conn, req) => {
                self.send(conn.shard, ShardMsg::Done { conn: conn.conn, req, result, then: Bytes::new() });
            }
            Origin::Caller(reply) => {
                let _ = reply.send(result);
            }
        }
    }

    pub(crate) fn home_paint(&mut self, cmd: PaintCmd) {
        if self.tick.pending_paints() >= self.config().max_pending_paints {
            self.refund_cooldown(&cmd);
            if let Some((conn, req)) = cmd.origin {
                let r = Refusal { code: ErrorCode::Overloaded, retry_after_ms: 100, message: "server busy" };
                self.send(
                    conn.shard,
                    ShardMsg::PaintsDone(vec![PaintResult {
                        conn: conn.conn,
                        req,
                        result: Err(r),
                        received_ms: cmd.received_ms,
                    }]),
                );
            }
            return;
        }
        self.tick.paints.push(cmd);
    }

    /// A paint that was refused for certain (never applied) gives its painter's cooldown back.
    pub(crate) fn refund_cooldown(&self, cmd: &PaintCmd) {
        if cmd.charged {
            self.shared.cooldown.refund(cmd.user);
            ShardMetrics::add(&self.metrics().cooldowns_refunded, 1);
        }
    }

    pub(crate) fn home_subscribe(&mut self, tile: u32, cursor: u64, conn: ConnRef) {
        // Always answered (the session counts its catch-ups on their way).
        let payload = self.tiles.get(&tile).map(|t| t.catch_up(tile, cursor)).unwrap_or_default();
        ShardMetrics::add(&self.metrics().catch_ups_served, 1);
        self.send(conn.shard, ShardMsg::Replay { conn: conn.conn, tile, payload });
    }

    /// The room's home state, loaded from the store on first use; `None` if there is no such
    /// room.
    fn home_room(&mut self, room: u32) -> Result<Option<&mut HomeRoom>, Refusal> {
        if !self.rooms.contains_key(&room) {
            let internal = |e: pixelparty_storage::StorageError| {
                tracing::error!(error = %e, room, "loading a room");
                Refusal::new(ErrorCode::Internal, "storage error")
            };
            if self.store().room(room).map_err(internal)?.is_none() {
                return Ok(None);
            }
            let last = self.store().room_last_seq(room).map_err(internal)?;
            self.rooms.insert(room, HomeRoom::new(room, last, self.config().shards));
        }
        Ok(self.rooms.get_mut(&room))
    }

    pub(crate) fn home_join(&mut self, room: u32, conn: ConnRef, req: u32, user: u32, name: Arc<str>) {
        let max = self.config().max_room_members;
        let home = match self.home_room(room) {
            Ok(Some(r)) => r,
            Ok(None) => {
                return self.send_join_error(conn, req, room, Refusal::new(ErrorCode::NotFound, "no such room"));
            }
            Err(r) => return self.send_join_error(conn, req, room, r),
        };
        if home.sessions() >= max {
            return self.send_join_error(conn, req, room, Refusal::new(ErrorCode::RoomFull, "room is full"));
        }
        let first = home.join(user, name.clone(), conn.shard);
        let published = home.published_seq;
        let snapshot = home.presence_snapshot();
        let shards: Vec<usize> = home.member_shards().collect();
        if first {
            let frame = presence_change(room, PresenceKind::Joined, user, &name);
            for s in shards {
                self.send(s, ShardMsg::RoomFrame { room, author: 0, frame: frame.clone() });
            }
        }
        self.send(conn.shard, ShardMsg::JoinDone { conn: conn.conn, req, room, result: Ok((published, snapshot)) });
    }

    fn send_join_error(&mut self, conn: ConnRef, req: u32, room: u32, r: Refusal) {
        self.send(conn.shard, ShardMsg::JoinDone { conn: conn.conn, req, room, result: Err(r) });
    }

    pub(crate) fn home_leave(&mut self, room: u32, conn: ConnRef, user: u32) {
        let Some(home) = self.rooms.get_mut(&room) else {
            return;
        };
        let Some(name) = home.leave(user, conn.shard) else {
            return;
        };
        let shards: Vec<usize> = home.member_shards().collect();
        let frame = presence_change(room, PresenceKind::Left, user, &name);
        for s in shards {
            self.send(s, ShardMsg::RoomFrame { room, author: 0, frame: frame.clone() });
        }
    }

    #[expect(clippy::too_many_arguments, reason = "the fields of one Post message")]
    pub(crate) fn home_post(
        &mut self,
        room: u32,
        conn: ConnRef,
        req: u32,
        user: u32,
        name: Arc<str>,
        text: Box<str>,
        now_ms: u64,
    ) {
        let Some(home) = self.rooms.get_mut(&room).filter(|r| r.is_member(user)) else {
            return self.refuse_remote(conn, req, Refusal::new(ErrorCode::NotMember, "join the room first"));
        };
        home.last_seq += 1;
        let seq = home.last_seq;
        self.tick.posts.push(PendingPost { room, seq, conn, req, user, name, text, time_ms: now_ms });
    }

    pub(crate) fn home_delete(&mut self, room: u32, seq: u64, origin: Origin, user: u32, admin: bool) {
        match self.home_room(room) {
            Ok(Some(_)) => {}
            Ok(None) => return self.answer(origin, Err(Refusal::new(ErrorCode::NotFound, "no such room"))),
            Err(r) => return self.answer(origin, Err(r)),
        }
        match self.store().room_message(room, seq) {
            Ok(Some(m)) if !m.deleted && (m.author == user || admin) => {
                self.tick.deletes.push(PendingDelete { room, seq, origin, by_admin: m.author != user });
            }
            Ok(Some(m)) if !m.deleted => {
                self.answer(
                    origin,
                    Err(Refusal::new(ErrorCode::Forbidden, "only the author or an admin may delete it")),
                );
            }
            Ok(_) => self.answer(origin, Err(Refusal::new(ErrorCode::NotFound, "no such message"))),
            Err(e) => {
                tracing::error!(error = %e, "reading a room message");
                self.answer(origin, Err(Refusal::new(ErrorCode::Internal, "storage error")));
            }
        }
    }

    pub(crate) fn home_who(&mut self, room: u32, conn: ConnRef, req: u32) {
        let result = match self.home_room(room) {
            Ok(Some(home)) => Ok((0, home.presence_snapshot())),
            Ok(None) => Err(Refusal::new(ErrorCode::NotFound, "no such room")),
            Err(r) => Err(r),
        };
        let msg = match result {
            Ok((value, then)) => ShardMsg::Done { conn: conn.conn, req, result: Ok(value), then },
            Err(r) => ShardMsg::Done { conn: conn.conn, req, result: Err(r), then: Bytes::new() },
        };
        self.send(conn.shard, msg);
    }

    /// Copies owned tiles (all, or those changed since the last copy).
    pub(crate) fn copy_tiles(&mut self, full: bool) -> Vec<TileCopy> {
        let mut out = Vec::new();
        for (&tile, t) in &mut self.tiles {
            if full || t.dirty {
                t.dirty = false;
                out.push(TileCopy { tile, seq: t.seq, data: Bytes::copy_from_slice(&t.data) });
            }
        }
        out
    }
}
