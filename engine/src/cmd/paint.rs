//! `Paint` at the session's shard: bounds, colour, overload and the exact per-user cooldown,
//! then on to the tile's home shard; and the result coming back.

use bytes::BytesMut;
use pixelparty_protocol::client::Paint;
use pixelparty_protocol::server::{Ack, Cooldown};
use pixelparty_protocol::{ErrorCode, Role, ServerFrame};

use std::sync::Arc;

use crate::cluster::{ClusterLink, CooldownAnswer};
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
        let cmd = PaintCmd {
            origin: Some((self.conn_ref(id), p.req)),
            user,
            x: p.x,
            y: p.y,
            colour: p.colour,
            charged: !exempt,
            cooldown_token: 0,
            restore: None,
            tile: loc.tile,
            offset: loc.offset,
            received_ms: now_ms,
        };
        if exempt {
            return self.send_paint_home(cmd);
        }
        if let Some(link) = self.config().cluster.clone()
            && self.config().cooldown_ms > 0
        {
            return self.take_cluster_cooldown(id, link, cmd);
        }
        match self.shared.cooldown.acquire(user, now_ms) {
            Decision::Allowed { .. } => self.send_paint_home(cmd),
            Decision::Refused { retry_after_ms } => self.refuse_cooldown(id, p.req, retry_after_ms),
        }
    }

    fn send_paint_home(&mut self, cmd: PaintCmd) {
        self.send(tile_home(cmd.tile, self.config().shards), ShardMsg::Paint(cmd));
    }

    fn refuse_cooldown(&mut self, id: ConnId, req: u32, retry_after_ms: u64) {
        ShardMetrics::add(&self.metrics().paints_refused_cooldown, 1);
        let retry_after_ms = u32::try_from(retry_after_ms).unwrap_or(u32::MAX);
        self.refuse(id, req, &Refusal { code: ErrorCode::Cooldown, retry_after_ms, message: "cooldown" });
    }

    /// Cluster mode: the cooldown is the cluster's (one paint per window whatever the node);
    /// the shard asks for it and goes on, and the paint continues to its home shard with the
    /// answer.
    fn take_cluster_cooldown(&mut self, id: ConnId, link: Arc<dyn ClusterLink>, mut cmd: PaintCmd) {
        let (user, cooldown_ms) = (cmd.user, self.config().cooldown_ms);
        let req = cmd.origin.map_or(0, |(_, req)| req);
        self.ask_for(
            id,
            move |_| link.take_cooldown(user, cooldown_ms),
            move |s: &mut Shard, answer, now_ms| match answer {
                Ok(CooldownAnswer::Taken { token }) => {
                    s.shared.cooldown.hold(user, now_ms + u64::from(cooldown_ms));
                    cmd.cooldown_token = token;
                    s.send_paint_home(cmd);
                }
                Ok(CooldownAnswer::Refused { retry_after_ms }) => s.refuse_cooldown(id, req, retry_after_ms),
                Err(e) => {
                    ShardMetrics::add(&s.metrics().paints_refused_other, 1);
                    s.refuse(id, req, &Refusal::read_failed(&e, "taking the cluster cooldown"));
                }
            },
        );
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
