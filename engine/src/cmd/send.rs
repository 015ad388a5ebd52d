//! `SendRoom` and `SendDirect` at the session's shard, and the delivery of direct messages.
//!
//! Room messages go to the room's home shard, which sequences them. Direct messages are
//! sequenced by the store's single writer; its completion (on the writer thread, in commit
//! order) hands the encoded frame to every shard, so both users' sessions anywhere see a
//! conversation in sequence order, and acknowledges the sender.

use std::sync::Arc;

use bytes::Bytes;
use pixelparty_protocol::client::{SendDirect, SendRoom};
use pixelparty_protocol::server::{Deleted, DirectMessage};
use pixelparty_protocol::{ConvKind, ErrorCode, ServerFrame};
use pixelparty_storage::chat::check_text;

use crate::limiter::Decision;
use crate::mesh::Completion;
use crate::metrics::ShardMetrics;
use crate::msg::{ConnId, Refusal, ShardMsg};
use crate::routing::room_home;
use crate::shard::{MAX_DIRECT_IN_FLIGHT, Shard, Shared, encode};

impl Shard {
    /// Checks shared by both kinds of message: text, overload, slow mode.
    fn check_message(&mut self, id: ConnId, req: u32, text: &str, now_ms: u64) -> bool {
        if check_text(text).is_err() {
            self.refuse(
                id,
                req,
                &Refusal::new(ErrorCode::InvalidArgument, "text must be 1..=2000 bytes and not blank"),
            );
            return false;
        }
        if self.overloaded() || self.shutting_down {
            ShardMetrics::add(&self.metrics().overloaded, 1);
            self.refuse(id, req, &Refusal { code: ErrorCode::Overloaded, retry_after_ms: 100, message: "server busy" });
            return false;
        }
        let Some(user) = self.conn(id).map(|c| c.user.id) else {
            return false;
        };
        if let Decision::Refused { retry_after_ms } = self.shared.chat.acquire(user, now_ms) {
            let retry_after_ms = u32::try_from(retry_after_ms).unwrap_or(u32::MAX);
            self.refuse(id, req, &Refusal { code: ErrorCode::RateLimited, retry_after_ms, message: "slow mode" });
            return false;
        }
        true
    }

    pub(crate) fn on_send_room(&mut self, id: ConnId, m: SendRoom<'_>, now_ms: u64) {
        if !self.conn(id).is_some_and(|c| c.rooms.contains(&m.room)) {
            return self.refuse(id, m.req, &Refusal::new(ErrorCode::NotMember, "join the room first"));
        }
        if !self.admit_remote(id, m.req, true) || !self.check_message(id, m.req, m.text, now_ms) {
            return;
        }
        let Some(conn) = self.conn(id) else { return };
        let msg = ShardMsg::Post {
            room: m.room,
            conn: self.conn_ref(id),
            req: m.req,
            user: conn.user.id,
            name: conn.user.name.clone(),
            text: m.text.into(),
        };
        self.send_request(id, room_home(m.room, self.config().shards), msg);
    }

    fn direct_allowed(&self, from: u32, to: u32) -> Result<(), Refusal> {
        let store = self.store();
        let internal = |e: pixelparty_storage::StorageError| {
            tracing::error!(error = %e, "checking a direct message");
            Refusal::new(ErrorCode::Internal, "storage error")
        };
        if from == to {
            return Err(Refusal::new(ErrorCode::InvalidArgument, "cannot message yourself"));
        }
        if store.user(to).map_err(internal)?.is_none() {
            return Err(Refusal::new(ErrorCode::NotFound, "no such user"));
        }
        if store.blocked_either(from, to).map_err(internal)? {
            return Err(Refusal::new(ErrorCode::Blocked, "one of you blocks the other"));
        }
        if !store.are_friends(from, to).map_err(internal)? {
            return Err(Refusal::new(ErrorCode::NotFriends, "direct messages are between friends"));
        }
        Ok(())
    }

    pub(crate) fn on_send_direct(&mut self, id: ConnId, m: SendDirect<'_>, now_ms: u64) {
        let Some(conn) = self.conn(id) else { return };
        let (from, name) = (conn.user.id, conn.user.name.clone());
        if let Err(r) = self.direct_allowed(from, m.to) {
            return self.refuse(id, m.req, &r);
        }
        if self.direct_in_flight >= MAX_DIRECT_IN_FLIGHT {
            ShardMetrics::add(&self.metrics().overloaded, 1);
            return self.refuse(
                id,
                m.req,
                &Refusal { code: ErrorCode::Overloaded, retry_after_ms: 100, message: "server busy" },
            );
        }
        if !self.check_message(id, m.req, m.text, now_ms) {
            return;
        }
        let (to, req, text, origin) = (m.to, m.req, m.text.to_owned(), self.id);
        let shared = self.shared.clone();
        let submitted = self.store().submit(
            move |tx| tx.append_direct(from, to, now_ms, &text),
            move |result| {
                let result = result.map(|stored| {
                    let frame = encode(&ServerFrame::DirectMessage(DirectMessage {
                        from,
                        to,
                        seq: stored.seq,
                        time_ms: stored.time_ms,
                        from_name: &name,
                        text: &stored.text,
                    }));
                    broadcast_from_writer(&shared, || ShardMsg::Direct { from, to, frame: frame.clone() });
                    stored.seq
                });
                let result = result.map_err(|e| {
                    tracing::error!(error = %e, "storing a direct message");
                    Refusal::store_failed(&e)
                });
                shared.mesh.complete(origin, Completion::Direct { conn: id, req, result });
            },
        );
        match submitted {
            Ok(()) => {
                self.direct_in_flight += 1;
                ShardMetrics::add(&self.metrics().direct_messages, 1);
            }
            Err(e) => self.refuse(id, req, &Refusal::store_refused(&e)),
        }
    }

    /// A direct message for the local sessions of its two users.
    pub(crate) fn on_direct(&mut self, from: u32, to: u32, frame: Bytes) {
        let mut targets = self.user_conns.get(&from).cloned().unwrap_or_default();
        targets.extend(self.user_conns.get(&to).into_iter().flatten().copied());
        let mut delivered = 0;
        for id in targets {
            if self.push_reliable(id, frame.clone()) {
                delivered += 1;
            }
        }
        ShardMetrics::add(&self.metrics().chat_delivered, delivered);
    }

    /// A direct message was deleted: tell the local sessions of both users.
    pub(crate) fn on_direct_deleted(&mut self, a: u32, b: u32, seq: u64) {
        for (me, other) in [(a, b), (b, a)] {
            let frame = encode(&ServerFrame::Deleted(Deleted { kind: ConvKind::Direct, conv: other, seq }));
            for id in self.user_conns.get(&me).cloned().unwrap_or_default() {
                self.push_reliable(id, frame.clone());
            }
        }
    }
}

/// Sends a message to every shard from outside the shards (the store's writer thread). A full
/// inbox drops the delivery and counts it: the message is stored, so history repairs it.
pub(crate) fn broadcast_from_writer(shared: &Arc<Shared>, make: impl Fn() -> ShardMsg) {
    for shard in 0..shared.config.shards {
        if shared.mesh.send(shard, make()).is_err() {
            shared.mesh.inbox(shard).dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
