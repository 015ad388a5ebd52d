//! `JoinRoom`, `LeaveRoom`, `Who` at the session's shard, the home shard's answers, and the
//! fan-out of room frames to local member sessions (skipping authors a member blocks).

use bytes::Bytes;
use pixelparty_protocol::client::RoomRequest;
use pixelparty_protocol::{CloseReason, ConvKind, ErrorCode};

use crate::cmd::history::{Page, PageQuery, page_frame};
use crate::metrics::ShardMetrics;
use crate::msg::{ConnId, Refusal, ShardMsg};
use crate::routing::room_home;
use crate::shard::{Shard, remove_from};

/// Most room frames held for a session while its join's history page is read.
const MAX_HELD_WHILE_JOINING: usize = 1024;

impl Shard {
    pub(crate) fn on_join(&mut self, id: ConnId, r: RoomRequest) {
        let max = self.config().max_rooms_per_session;
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if conn.rooms.contains(&r.room) {
            return self.refuse(id, r.req, &Refusal::new(ErrorCode::InvalidArgument, "already in this room"));
        }
        if conn.rooms.len() >= max {
            return self.refuse(id, r.req, &Refusal::new(ErrorCode::TooManyRooms, "room limit reached"));
        }
        if !self.admit_remote(id, r.req, false) {
            return;
        }
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        conn.rooms.push(r.room);
        conn.join_reqs.push((r.room, r.req));
        let (user, name) = (conn.user.id, conn.user.name.clone());
        let msg = ShardMsg::Join { room: r.room, conn: self.conn_ref(id), req: r.req, user, name };
        self.send(room_home(r.room, self.config().shards), msg);
    }

    pub(crate) fn on_join_done(&mut self, id: ConnId, req: u32, room: u32, result: Result<(u64, Bytes), Refusal>) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let Some(at) = conn.join_reqs.iter().position(|j| *j == (room, req)) else {
            // Left before the join completed (the home shard saw the leave after it): this
            // join is over, whatever a later join of the same room does.
            let r = Refusal::new(ErrorCode::NotMember, "left the room before the join completed");
            return self.refuse(id, req, &r);
        };
        conn.join_reqs.swap_remove(at);
        let (published, presence) = match result {
            Ok(ok) => ok,
            Err(r) => {
                conn.rooms.retain(|x| *x != room);
                return self.refuse(id, req, &r);
            }
        };
        // A member from now on, but what the room publishes meanwhile waits until the
        // history page is delivered, so the session sees the room in sequence order.
        conn.joining.push((room, req, Vec::new()));
        let (me, hidden) = (conn.user.id, conn.blocks.clone());
        self.room_members.entry(room).or_default().push(id);
        let q = PageQuery {
            me,
            kind: ConvKind::Room,
            conv: room,
            before: published.saturating_add(1),
            limit: self.config().history_on_join,
            check_exists: false,
        };
        self.ask(
            move |b| q.op(b, hidden),
            move |s: &mut Shard, page, _now| {
                let page = match page {
                    Ok(Some(page)) => page_frame(req, ConvKind::Room, room, &page),
                    Ok(None) => Bytes::new(),
                    Err(e) => {
                        // Joined all the same: one answer per request (the ack), and an empty
                        // page; the client can ask again with `History`.
                        let _ = Refusal::read_failed(&e, "reading history on join");
                        page_frame(req, ConvKind::Room, room, &Page::default())
                    }
                };
                s.joined(id, req, room, published, page, presence);
            },
        );
    }

    /// The join's history page came: ack, page, presence, then what the room published
    /// meanwhile.
    fn joined(&mut self, id: ConnId, req: u32, room: u32, published: u64, page: Bytes, presence: Bytes) {
        let Some(conn) = self.conn_mut(id) else { return };
        let Some(at) = conn.joining.iter().position(|(r, q, _)| (*r, *q) == (room, req)) else { return };
        let (_, _, held) = conn.joining.swap_remove(at);
        if !conn.rooms.contains(&room) {
            return; // Left meanwhile.
        }
        self.ack(id, req, published);
        if !page.is_empty() {
            self.push_reliable(id, page);
        }
        self.push_reliable(id, presence);
        for frame in held {
            if !self.push_reliable(id, frame) {
                return;
            }
        }
    }

    /// Holds a room frame for a session whose join page is not delivered yet; true when held
    /// (or when holding too many closed the session).
    fn hold_while_joining(&mut self, id: ConnId, room: u32, frame: &Bytes) -> bool {
        let Some(conn) = self.conn_mut(id) else { return false };
        let Some((_, _, held)) = conn.joining.iter_mut().find(|(r, _, _)| *r == room) else { return false };
        if held.len() < MAX_HELD_WHILE_JOINING {
            held.push(frame.clone());
            return true;
        }
        ShardMetrics::add(&self.metrics().slow_consumers, 1);
        self.close(id, CloseReason::SlowConsumer, "room too busy to join", false);
        true
    }

    pub(crate) fn on_leave(&mut self, id: ConnId, r: RoomRequest) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if !conn.rooms.contains(&r.room) {
            return self.refuse(id, r.req, &Refusal::new(ErrorCode::NotMember, "not in this room"));
        }
        conn.rooms.retain(|x| *x != r.room);
        // A join on its way or waiting for its page ends here too (its frames belong to it);
        // one on its way is answered when its JoinDone comes, one waiting for its page now.
        conn.join_reqs.retain(|(room, _)| *room != r.room);
        let mut ended = Vec::new();
        conn.joining.retain(|(room, req, _)| {
            if *room == r.room {
                ended.push(*req);
            }
            *room != r.room
        });
        let user = conn.user.id;
        remove_from(&mut self.room_members, r.room, id);
        let msg = ShardMsg::Leave { room: r.room, conn: self.conn_ref(id), user };
        self.send(room_home(r.room, self.config().shards), msg);
        for req in ended {
            self.refuse(id, req, &Refusal::new(ErrorCode::NotMember, "left the room before the join completed"));
        }
        self.ack(id, r.req, 0);
    }

    pub(crate) fn on_who(&mut self, id: ConnId, r: RoomRequest) {
        if !self.admit_remote(id, r.req, true) {
            return;
        }
        let msg = ShardMsg::Who { room: r.room, conn: self.conn_ref(id), req: r.req };
        self.send_request(id, room_home(r.room, self.config().shards), msg);
    }

    /// A room frame from the home shard for every local member session.
    pub(crate) fn on_room_frame(&mut self, room: u32, author: u32, frame: Bytes) {
        // Taken out while walking it: pushing may close a session but never changes rooms.
        let Some(list) = self.room_members.remove(&room) else {
            return;
        };
        let mut delivered = 0;
        for &id in &list {
            if author != 0 && self.conn(id).is_none_or(|c| c.blocks_user(author)) {
                continue;
            }
            if self.hold_while_joining(id, room, &frame) {
                continue;
            }
            if self.push_reliable(id, frame.clone()) && author != 0 {
                delivered += 1;
            }
        }
        self.room_members.insert(room, list);
        ShardMetrics::add(&self.metrics().chat_delivered, delivered);
    }
}
