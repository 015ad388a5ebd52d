//! A shard's sessions: the slab they live in, connecting and disconnecting, decoding what
//! they send and dispatching it to `cmd/`, and ending them (by target, by expiry, at
//! shutdown).

use std::sync::Arc;

use pixelparty_protocol::server::Error as ErrorFrame;
use pixelparty_protocol::{ClientFrame, CloseReason, Decoded, ErrorCode, Role, ServerFrame};

use crate::conn::{Conn, Target, UserCtx};
use crate::metrics::ShardMetrics;
use crate::msg::{ConnId, ShardMsg};

use super::{Shard, Slot, encode, remove_from, truncate};

impl Shard {
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
        if user_id != VISITOR {
            self.user_conns.entry(user_id).or_default().push(id);
        }
        self.live += 1;
        ShardMetrics::add(&self.metrics().sessions_opened, 1);
        id
    }

    /// Replaces a session's block list (sorted) with one read after it connected, unless a
    /// `BlocksChanged` came meanwhile (that one is newer).
    pub fn set_blocks(&mut self, id: ConnId, blocks: Arc<[u32]>) {
        if let Some(c) = self.conn_mut(id).filter(|c| !c.blocks_updated) {
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

    pub(super) fn dispatch(&mut self, id: ConnId, frame: ClientFrame<'_>, now_ms: u64) {
        let Some(conn) = self.conn(id) else { return };
        if conn.version != 0
            && conn.user.role == Role::Visitor
            && let Some((req, message)) = visitor_refusal(&frame)
        {
            return self.refuse(id, req, &crate::msg::Refusal::new(ErrorCode::Unauthorized, message));
        }
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

    /// Hands a `Social` frame to the local sessions of `users` (every logged-in session when
    /// `None`) that speak version 3 or later; visitors never get one.
    pub(crate) fn on_social(&mut self, users: Option<&[u32]>, frame: &bytes::Bytes) {
        let ids = match users {
            Some(users) => users.iter().flat_map(|u| self.user_conns.get(u).into_iter().flatten().copied()).collect(),
            None => self.all_conns(),
        };
        for id in ids {
            let wanted = self.conn(id).is_some_and(|c| {
                c.version >= crate::cmd::VISITOR_VERSION && c.user.role != Role::Visitor && c.closing.is_none()
            });
            if wanted {
                self.push_reliable(id, frame.clone());
            }
        }
    }

    /// Closes the sessions `target` names (an address range means a walk over every
    /// session: bans are rare).
    pub(super) fn end_sessions(&mut self, target: &Target, reason: CloseReason, message: &str) {
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
}

/// The user id of visitor sessions (no user: never in `user_conns`).
pub(crate) const VISITOR: u32 = 0;

/// The request id and the refusal's message for a frame a visitor may not send; `None` for
/// the frames it may (`Hello`, `Subscribe`, `Unsubscribe`, `Ping`).
fn visitor_refusal(frame: &ClientFrame<'_>) -> Option<(u32, &'static str)> {
    const CHAT: &str = "log in to chat";
    match frame {
        ClientFrame::Hello(_) | ClientFrame::Subscribe(_) | ClientFrame::Unsubscribe(_) | ClientFrame::Ping(_) => None,
        ClientFrame::Paint(p) => Some((p.req, "log in to paint")),
        ClientFrame::JoinRoom(r) | ClientFrame::LeaveRoom(r) | ClientFrame::Who(r) => Some((r.req, CHAT)),
        ClientFrame::SendRoom(m) => Some((m.req, CHAT)),
        ClientFrame::SendDirect(m) => Some((m.req, CHAT)),
        ClientFrame::Delete(d) => Some((d.req, CHAT)),
        ClientFrame::History(h) => Some((h.req, "log in to read messages")),
    }
}
