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

/// Most room requests waiting while their room is loaded from the store.
const MAX_WAITING_FOR_ROOM: usize = 1024;

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
            if cmd.cooldown_token != 0
                && let Some(link) = &self.config().cluster
            {
                link.refund_cooldown(cmd.user, cmd.cooldown_token);
            }
            ShardMetrics::add(&self.metrics().cooldowns_refunded, 1);
        }
    }

    pub(crate) fn home_subscribe(&mut self, tile: u32, cursor: u64, conn: ConnRef) {
        // Always answered (the session counts its catch-ups on their way).
        let payload = self.tiles.get(&tile).map(|t| t.catch_up(tile, cursor)).unwrap_or_default();
        ShardMetrics::add(&self.metrics().catch_ups_served, 1);
        self.send(conn.shard, ShardMsg::Replay { conn: conn.conn, tile, payload });
    }

    /// Whether `msg` (a join, a room message deletion, a who; a leave or a post while its
    /// room is loading) can be handled now: true when its room is loaded. Otherwise the
    /// message waits while the room is loaded from the store, and is handled (or refused, when
    /// there is no such room) once it is, in the order it came.
    pub(crate) fn room_ready(&mut self, msg: &mut Option<ShardMsg>) -> bool {
        let room = match msg {
            Some(
                ShardMsg::Join { room, .. } | ShardMsg::DeleteRoomMessage { room, .. } | ShardMsg::Who { room, .. },
            ) => *room,
            // Only behind a load already under way (a join's): they must not overtake it. Cluster
            // feed messages too: one committed after the load read the room's sequence must
            // reach the room once it is loaded.
            Some(
                ShardMsg::Leave { room, .. }
                | ShardMsg::Post { room, .. }
                | ShardMsg::FeedRoom { room, .. }
                | ShardMsg::FeedRoomDelete { room, .. }
                | ShardMsg::FeedPresence { room, .. },
            ) if self.loading_rooms.contains_key(room) => *room,
            _ => return true,
        };
        if self.rooms.contains_key(&room) {
            return true;
        }
        let Some(msg) = msg.take() else { return true };
        if let Some(waiting) = self.loading_rooms.get_mut(&room) {
            // A leave is never dropped: the join it undoes is queued ahead of it (so leaves
            // are bounded by the joins waiting).
            let never_dropped = matches!(
                msg,
                ShardMsg::Leave { .. }
                    | ShardMsg::FeedRoom { .. }
                    | ShardMsg::FeedRoomDelete { .. }
                    | ShardMsg::FeedPresence { .. }
            );
            if waiting.len() >= MAX_WAITING_FOR_ROOM && !never_dropped {
                self.refuse_room_msg(msg, crate::asks::busy());
            } else {
                waiting.push(msg);
            }
            return false;
        }
        self.ask(
            move |b| {
                let (exists, last) = (b.room(room), b.room_last_seq(room));
                Box::pin(async move { if exists.await?.is_some() { Ok(Some(last.await?)) } else { Ok(None) } })
            },
            move |s: &mut Shard, loaded, now_ms| {
                let waiting = s.loading_rooms.remove(&room).unwrap_or_default();
                let refusal = match loaded {
                    Ok(Some(last)) => {
                        let shards = s.config().shards;
                        s.rooms.entry(room).or_insert_with(|| HomeRoom::new(room, last, shards));
                        for msg in waiting {
                            s.on_message(msg, now_ms);
                        }
                        return;
                    }
                    Ok(None) => Refusal::new(ErrorCode::NotFound, "no such room"),
                    Err(e) => Refusal::read_failed(&e, "loading a room"),
                };
                for msg in waiting {
                    s.refuse_room_msg(msg, refusal.clone());
                }
            },
        );
        self.loading_rooms.insert(room, vec![msg]);
        false
    }

    fn refuse_room_msg(&mut self, msg: ShardMsg, r: Refusal) {
        match msg {
            ShardMsg::Join { room, conn, req, .. } => self.send_join_error(conn, req, room, r),
            ShardMsg::DeleteRoomMessage { origin, .. } => self.answer(origin, Err(r)),
            ShardMsg::Who { conn, req, .. } | ShardMsg::Post { conn, req, .. } => self.refuse_remote(conn, req, r),
            // Nothing to leave; nobody here to tell.
            ShardMsg::Leave { .. }
            | ShardMsg::FeedRoom { .. }
            | ShardMsg::FeedRoomDelete { .. }
            | ShardMsg::FeedPresence { .. } => {}
            other => tracing::error!(?other, "not a room request"),
        }
    }

    pub(crate) fn home_join(&mut self, room: u32, conn: ConnRef, req: u32, user: u32, name: Arc<str>) {
        let max = self.config().max_room_members;
        let Some(home) = self.rooms.get_mut(&room) else {
            return self.send_join_error(conn, req, room, Refusal::new(ErrorCode::NotFound, "no such room"));
        };
        if home.sessions() >= max {
            return self.send_join_error(conn, req, room, Refusal::new(ErrorCode::RoomFull, "room is full"));
        }
        let first = home.join(user, name.clone(), conn.shard);
        let elsewhere = home.is_remote(user);
        let published = home.published_seq;
        let snapshot = home.presence_snapshot();
        let shards: Vec<usize> = home.member_shards().collect();
        if first {
            self.announce_presence(room);
        }
        if first && !elsewhere {
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
        let elsewhere = home.is_remote(user);
        let shards: Vec<usize> = home.member_shards().collect();
        self.announce_presence(room);
        if elsewhere {
            return;
        }
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

    /// Reads the message (only its author or an admin may delete it); the deletion then
    /// waits for the next tick.
    pub(crate) fn home_delete(&mut self, room: u32, seq: u64, origin: Origin, user: u32, admin: bool) {
        self.ask(
            move |b| b.room_message(room, seq),
            move |s: &mut Shard, found, _now| match found {
                Ok(Some(m)) if !m.deleted && (m.author == user || admin) => {
                    s.tick.deletes.push(PendingDelete { room, seq, origin, by_admin: m.author != user });
                }
                Ok(Some(m)) if !m.deleted => s.answer(
                    origin,
                    Err(Refusal::new(ErrorCode::Forbidden, "only the author or an admin may delete it")),
                ),
                Ok(_) => s.answer(origin, Err(Refusal::new(ErrorCode::NotFound, "no such message"))),
                Err(e) => s.answer(origin, Err(Refusal::read_failed(&e, "reading a room message"))),
            },
        );
    }

    pub(crate) fn home_who(&mut self, room: u32, conn: ConnRef, req: u32) {
        let result = match self.rooms.get(&room) {
            Some(home) => Ok((0, home.presence_snapshot())),
            None => Err(Refusal::new(ErrorCode::NotFound, "no such room")),
        };
        let msg = match result {
            Ok((value, then)) => ShardMsg::Done { conn: conn.conn, req, result: Ok(value), then },
            Err(r) => ShardMsg::Done { conn: conn.conn, req, result: Err(r), then: Bytes::new() },
        };
        self.send(conn.shard, msg);
    }

    /// Copies owned tiles (all, or those changed since the last copy). Only a copy of the
    /// changed tiles clears their flags: a full copy (start-up, tests, tools) must not take
    /// changes away from the snapshotter.
    pub(crate) fn copy_tiles(&mut self, full: bool) -> Vec<TileCopy> {
        let mut out = Vec::new();
        for (&tile, t) in &mut self.tiles {
            if full || t.dirty {
                if !full {
                    t.dirty = false;
                }
                out.push(TileCopy { tile, seq: t.seq, data: Bytes::copy_from_slice(&t.data) });
            }
        }
        out
    }
}
