//! `JoinRoom`, `LeaveRoom`, `Who` at the session's shard, the home shard's answers, and the
//! fan-out of room frames to local member sessions (skipping authors a member blocks).

use bytes::Bytes;
use pixelparty_protocol::client::RoomRequest;
use pixelparty_protocol::server::{HistoryEntry, HistoryPage};
use pixelparty_protocol::{ConvKind, ErrorCode, List, ServerFrame};

use crate::metrics::ShardMetrics;
use crate::msg::{ConnId, Refusal, ShardMsg};
use crate::routing::room_home;
use crate::shard::{Shard, encode, remove_from};

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
        let (user, name) = (conn.user.id, conn.user.name.clone());
        let msg = ShardMsg::Join { room: r.room, conn: self.conn_ref(id), req: r.req, user, name };
        self.send(room_home(r.room, self.config().shards), msg);
    }

    pub(crate) fn on_join_done(&mut self, id: ConnId, req: u32, room: u32, result: Result<(u64, Bytes), Refusal>) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if !conn.rooms.contains(&room) {
            return; // Left before the join completed.
        }
        let (published, presence) = match result {
            Ok(ok) => ok,
            Err(r) => {
                conn.rooms.retain(|x| *x != room);
                return self.refuse(id, req, &r);
            }
        };
        self.room_members.entry(room).or_default().push(id);
        self.ack(id, req, published);
        let limit = self.config().history_on_join;
        let page = self.history_frame(id, req, ConvKind::Room, room, published.saturating_add(1), limit);
        self.push_reliable(id, page);
        self.push_reliable(id, presence);
    }

    pub(crate) fn on_leave(&mut self, id: ConnId, r: RoomRequest) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if !conn.rooms.contains(&r.room) {
            return self.refuse(id, r.req, &Refusal::new(ErrorCode::NotMember, "not in this room"));
        }
        conn.rooms.retain(|x| *x != r.room);
        let user = conn.user.id;
        remove_from(&mut self.room_members, r.room, id);
        let msg = ShardMsg::Leave { room: r.room, conn: self.conn_ref(id), user };
        self.send(room_home(r.room, self.config().shards), msg);
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
            if self.push_reliable(id, frame.clone()) && author != 0 {
                delivered += 1;
            }
        }
        self.room_members.insert(room, list);
        ShardMetrics::add(&self.metrics().chat_delivered, delivered);
    }

    /// A `HistoryPage` frame of messages before `before` that the session may see.
    pub(crate) fn history_frame(
        &mut self,
        id: ConnId,
        req: u32,
        kind: ConvKind,
        conv: u32,
        before: u64,
        limit: usize,
    ) -> Bytes {
        let Some(conn) = self.conn(id) else {
            return Bytes::new();
        };
        let (me, blocks) = (conn.user.id, conn.blocks.clone());
        let visible = |m: &pixelparty_storage::Message| blocks.binary_search(&m.author).is_err();
        let page = match kind {
            ConvKind::Room => self.store().room_history(conv, before, limit, visible),
            ConvKind::Direct => self.store().direct_history(me, conv, before, limit, visible),
        };
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "reading history");
                return encode(&ServerFrame::Error(pixelparty_protocol::server::Error {
                    req,
                    code: ErrorCode::Internal,
                    retry_after_ms: 0,
                    message: "history unavailable",
                }));
            }
        };
        let mut names: std::collections::HashMap<u32, String> = std::collections::HashMap::new();
        let store = self.store();
        for m in &page {
            names.entry(m.author).or_insert_with(|| {
                store.user(m.author).ok().flatten().map_or_else(|| format!("user{}", m.author), |u| u.name)
            });
        }
        let entries: Vec<HistoryEntry<'_>> = page
            .iter()
            .map(|m| HistoryEntry {
                seq: m.seq,
                author: m.author,
                time_ms: m.time_ms,
                author_name: &names[&m.author],
                text: &m.text,
            })
            .collect();
        encode(&ServerFrame::HistoryPage(HistoryPage { req, kind, conv, entries: List::Items(&entries) }))
    }
}
