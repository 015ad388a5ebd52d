//! `Paint` at the session's shard: bounds, colour, overload and the exact per-user cooldown,
//! then on to the tile's home shard; and the result coming back.

use bytes::BytesMut;
use pixelparty_protocol::client::Paint;
use pixelparty_protocol::server::{Ack, Cooldown};
use pixelparty_protocol::{ErrorCode, Role, ServerFrame};

use crate::limiter::Decision;
use crate::metrics::ShardMetrics;
use crate::msg::{ConnId, PaintCmd, PaintResult, Refusal, ShardMsg};
use crate::routing::tile_home;
use crate::shard::Shard;

impl Shard {
    pub(crate) fn on_paint(&mut self, id: ConnId, p: Paint, now_ms: u64) {
        let refused = |shard: &mut Self, r: Refusal| {
            ShardMetrics::add(&shard.metrics().paints_refused_other, 1);
            shard.refuse(id, p.req, &r);
        };
        let Some(loc) = self.config().geometry.locate(u32::from(p.x), u32::from(p.y)) else {
            return refused(self, Refusal::new(ErrorCode::OutOfBounds, "pixel outside the canvas"));
        };
        if usize::from(p.colour) >= self.config().palette.len() {
            return refused(self, Refusal::new(ErrorCode::InvalidColour, "colour outside the palette"));
        }
        if self.overloaded() || self.shutting_down {
            ShardMetrics::add(&self.metrics().overloaded, 1);
            return refused(self, Refusal { code: ErrorCode::Overloaded, retry_after_ms: 100, message: "server busy" });
        }
        let Some(conn) = self.conn(id) else { return };
        let user = conn.user.id;
        let exempt = conn.user.role == Role::Admin && self.config().admin_exempt;
        if !exempt && let Decision::Refused { retry_after_ms } = self.shared.cooldown.acquire(user, now_ms) {
            ShardMetrics::add(&self.metrics().paints_refused_cooldown, 1);
            let retry_after_ms = u32::try_from(retry_after_ms).unwrap_or(u32::MAX);
            return self.refuse(id, p.req, &Refusal { code: ErrorCode::Cooldown, retry_after_ms, message: "cooldown" });
        }
        let cmd = PaintCmd {
            origin: Some((self.conn_ref(id), p.req)),
            user,
            x: p.x,
            y: p.y,
            colour: p.colour,
            charged: !exempt,
            restore: None,
            tile: loc.tile,
            offset: loc.offset,
            received_ms: now_ms,
        };
        self.send(tile_home(loc.tile, self.config().shards), ShardMsg::Paint(cmd));
    }

    pub(crate) fn on_paint_done(&mut self, r: PaintResult, now_ms: u64) {
        let (id, req) = (r.conn, r.req);
        match r.result {
            Ok(seq) => {
                let Some(conn) = self.conn(id) else { return };
                let cooldown = Cooldown {
                    ready_at_ms: self.shared.cooldown.ready_at(conn.user.id, now_ms),
                    cooldown_ms: self.config().cooldown_ms,
                };
                // The ack and the cooldown state travel together in one buffer.
                let (ack, cooldown) = (ServerFrame::Ack(Ack { req, value: seq }), ServerFrame::Cooldown(cooldown));
                let mut out = BytesMut::with_capacity(ack.encoded_len() + cooldown.encoded_len());
                if ack.encode(&mut out).is_ok() && cooldown.encode(&mut out).is_ok() {
                    self.push_reliable(id, out.freeze());
                    self.metrics().paint_ack_ms.observe(now_ms.saturating_sub(r.received_ms));
                }
            }
            Err(r) => self.refuse(id, req, &r),
        }
    }
}
