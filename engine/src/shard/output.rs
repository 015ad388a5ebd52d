//! Output towards sessions: bounded per-session queues (reliable frames close a session
//! that cannot take them; canvas frames are dropped and announced in a `Resync`), acks and
//! refusals, closing, and what the transport drains.

use std::task::{Context, Poll};

use bytes::Bytes;
use pixelparty_protocol::server::{Ack, Closing, Error as ErrorFrame};
use pixelparty_protocol::{CloseReason, ErrorCode, ServerFrame};

use crate::conn::{Class, Close, Sub};
use crate::metrics::ShardMetrics;
use crate::msg::{ConnId, Refusal, ShardMsg};
use crate::routing::ShardId;

use super::{MAX_REQUESTS_IN_FLIGHT, Shard, encode, truncate};

impl Shard {
    // ---- output towards sessions ----------------------------------------------------------

    pub(super) fn push(&mut self, id: ConnId, frame: Bytes, class: Class) -> bool {
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

    pub(super) fn send_resync(&mut self, id: ConnId, tiles: &[u32]) {
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
}
