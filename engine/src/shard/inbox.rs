//! Messages between shards: the outgoing queues and their flush into other shards' inboxes,
//! the inbox turn (storage completions first, then messages), and the dispatch of every
//! [`ShardMsg`] to its handler.

use crate::mesh::Completion;
use crate::msg::ShardMsg;
use crate::routing::ShardId;

use super::Shard;

impl Shard {
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
        self.process(now_ms, max, true)
    }

    /// Like [`Shard::process_inbox`] but leaves storage completions queued: the harness hands
    /// them over itself, in the order they were asked, whatever order they came in.
    pub fn process_messages(&mut self, now_ms: u64, max: usize) -> usize {
        self.process(now_ms, max, false)
    }

    fn process(&mut self, now_ms: u64, max: usize, completions: bool) -> usize {
        let mut handled = 0;
        while handled < max {
            if let Some(done) = completions.then(|| self.shared.mesh.try_recv_done(self.id)).flatten() {
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

    pub(super) fn on_completion(&mut self, done: Completion, now_ms: u64) {
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
            ShardMsg::FeedPixels(records) => self.on_feed_pixels(&records),
            ShardMsg::FeedDirect { from, to, seq, frame } => self.on_feed_direct(from, to, seq, frame, now_ms),
            ShardMsg::FeedDirectDelete { a, b, seq } => self.on_feed_direct_delete(a, b, seq),
            ShardMsg::ReplaceTile { tile, seq, data } => self.on_replace_tile(tile, seq, data),
            ShardMsg::FeedRoom { room, posts } => self.on_feed_room(room, posts, now_ms),
            ShardMsg::FeedPresence { room, node, users } => self.on_feed_presence(room, node, users, now_ms),
            ShardMsg::FeedRoomDelete { room, seq } => self.on_feed_room_delete(room, seq),
            ShardMsg::End { target, reason, message } => self.end_sessions(&target, reason, &message),
            ShardMsg::Social { users, frame } => self.on_social(users.as_deref(), &frame),
            ShardMsg::BlocksChanged { user, blocks } => {
                for id in self.user_conns.get(&user).cloned().unwrap_or_default() {
                    if let Some(c) = self.conn_mut(id) {
                        c.blocks = blocks.clone();
                        c.blocks_updated = true;
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
}
