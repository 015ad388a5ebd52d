//! `SendRoom` and `SendDirect` at the session's shard, and the delivery of direct messages.
//!
//! Room messages go to the room's home shard, which sequences them. Direct messages go to
//! their conversation's home shard, which checks and stores them one at a time per
//! conversation and hands each stored message to every shard before the next: both users'
//! sessions anywhere see a conversation in sequence order.

use std::collections::VecDeque;

use bytes::Bytes;
use pixelparty_protocol::client::{SendDirect, SendRoom};
use pixelparty_protocol::server::{Deleted, DirectMessage};
use pixelparty_protocol::{ConvKind, ErrorCode, ServerFrame};
use pixelparty_storage::chat::check_text;

use crate::limiter::Decision;
use crate::metrics::ShardMetrics;
use crate::msg::{ConnId, DirectPost, Origin, Refusal, ShardMsg};
use crate::routing::{direct_home, room_home};
use crate::shard::{Shard, encode};

/// Most direct messages of one conversation waiting at its home shard.
const MAX_DIRECT_QUEUE: usize = 256;

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

    /// A direct message goes to its conversation's home shard (see [`Shard::home_direct`]).
    pub(crate) fn on_send_direct(&mut self, id: ConnId, m: SendDirect<'_>, now_ms: u64) {
        let Some(conn) = self.conn(id) else { return };
        let (from, to, req) = (conn.user.id, m.to, m.req);
        if from == to {
            return self.refuse(id, req, &Refusal::new(ErrorCode::InvalidArgument, "cannot message yourself"));
        }
        if !self.admit_remote(id, req, true) || !self.check_message(id, req, m.text, now_ms) {
            return;
        }
        let Some(conn) = self.conn(id) else { return };
        let post =
            DirectPost { from, to, name: conn.user.name.clone(), text: m.text.into(), conn: self.conn_ref(id), req };
        self.send_request(id, direct_home(from, to, self.config().shards), ShardMsg::DirectPost(post));
    }

    /// At the conversation's home shard: queues a direct message. Its checks (the recipient
    /// exists, no block either way, friends) and its append are one store operation, and a
    /// conversation has one at a time at the store, each handed to every shard before the
    /// next: both users' sessions anywhere see a conversation in sequence order, and one
    /// sender's messages are stored in the order sent.
    pub(crate) fn home_direct(&mut self, post: DirectPost, now_ms: u64) {
        let key = pixelparty_storage::chat::conversation_pair(post.from, post.to);
        let queue = self.directs.entry(key).or_default();
        if queue.len() >= MAX_DIRECT_QUEUE {
            let origin = Origin::Session(post.conn, post.req);
            return self.answer(origin, Err(crate::asks::busy()));
        }
        queue.push_back(post);
        if queue.len() == 1 {
            self.append_next_direct(key, now_ms);
        }
    }

    fn append_next_direct(&mut self, key: (u32, u32), now_ms: u64) {
        let Some(post) = self.directs.get(&key).and_then(|q| q.front()) else {
            self.directs.remove(&key);
            return;
        };
        let (from, to, text) = (post.from, post.to, post.text.to_string());
        if self.config().cluster.as_ref().is_some_and(|link| !link.is_ready()) {
            // Out of touch with the other nodes: they could not be told; nothing stored.
            if let Some(post) = self.directs.get_mut(&key).and_then(VecDeque::pop_front) {
                let e = pixelparty_storage::StorageError::unavailable("out of touch with the cluster: not sent");
                self.answer(Origin::Session(post.conn, post.req), Err(Refusal::store_refused(&e)));
            }
            return self.append_next_direct(key, now_ms);
        }
        self.ask(
            move |b| {
                let b = b.clone();
                Box::pin(async move {
                    if b.user(to).await?.is_none() {
                        return Ok(Err(Refusal::new(ErrorCode::NotFound, "no such user")));
                    }
                    if b.blocked_either(from, to).await? {
                        return Ok(Err(Refusal::new(ErrorCode::Blocked, "one of you blocks the other")));
                    }
                    if !b.are_friends(from, to).await? {
                        return Ok(Err(Refusal::new(ErrorCode::NotFriends, "direct messages are between friends")));
                    }
                    b.append_direct(from, to, now_ms, text).await.map(Ok)
                })
            },
            move |s: &mut Shard, stored, now_ms| {
                let Some(post) = s.directs.get_mut(&key).and_then(VecDeque::pop_front) else { return };
                let origin = Origin::Session(post.conn, post.req);
                match stored {
                    Ok(Ok(stored)) => {
                        let frame = encode(&ServerFrame::DirectMessage(DirectMessage {
                            from,
                            to,
                            seq: stored.seq,
                            time_ms: stored.time_ms,
                            from_name: &post.name,
                            text: &stored.text,
                        }));
                        match s.config().cluster.clone() {
                            Some(link) => {
                                link.announce_direct(from, to, stored.seq, frame.clone());
                                s.on_feed_direct(from, to, stored.seq, frame, now_ms);
                            }
                            None => s.broadcast(|| ShardMsg::Direct { from, to, frame: frame.clone() }),
                        }
                        ShardMetrics::add(&s.metrics().direct_messages, 1);
                        s.answer(origin, Ok(stored.seq));
                    }
                    Ok(Err(refusal)) => s.answer(origin, Err(refusal)),
                    Err(e) => {
                        tracing::error!(error = %e, "storing a direct message");
                        s.answer(origin, Err(Refusal::store_failed(&e)));
                    }
                }
                s.append_next_direct(key, now_ms);
            },
        );
    }

    /// Queues a message for every shard, this one included (reliably: in order with the rest
    /// this shard sends them).
    pub(crate) fn broadcast(&mut self, make: impl Fn() -> ShardMsg) {
        for shard in 0..self.config().shards {
            self.send(shard, make());
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
