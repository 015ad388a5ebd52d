//! `Hello` → `Welcome` (or `unsupported_version` and a close; a visitor's `Hello` must say
//! version 3 or later).

use pixelparty_protocol::client::Hello;
use pixelparty_protocol::limits::{MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use pixelparty_protocol::server::Welcome;
use pixelparty_protocol::{CloseReason, ErrorCode, Role, ServerFrame};

use crate::msg::{ConnId, Refusal};
use crate::shard::{Shard, encode};

/// The first protocol version with visitor sessions and `Social` frames.
pub(crate) const VISITOR_VERSION: u16 = 3;

impl Shard {
    pub(crate) fn on_hello(&mut self, id: ConnId, hello: Hello<'_>, now_ms: u64) {
        if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&hello.version) {
            // The text PROTOCOL.md quotes (section 3).
            const _: () = assert!(MIN_PROTOCOL_VERSION == 1 && PROTOCOL_VERSION == 3, "update the message below");
            self.refuse(id, 0, &Refusal::new(ErrorCode::UnsupportedVersion, "server speaks versions 1 to 3"));
            self.close(id, CloseReason::ProtocolViolation, "unsupported protocol version", true);
            return;
        }
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if conn.user.role == Role::Visitor && hello.version < VISITOR_VERSION {
            // The role a version 1 or 2 client cannot read: refuse before the Welcome.
            let r = Refusal::new(ErrorCode::UnsupportedVersion, "visitor sessions need protocol version 3");
            self.refuse(id, 0, &r);
            self.close(id, CloseReason::ProtocolViolation, "visitor sessions need protocol version 3", true);
            return;
        }
        conn.version = hello.version;
        let user = conn.user.clone();
        let cfg = self.config();
        let g = cfg.geometry;
        let frame = encode(&ServerFrame::Welcome(Welcome {
            version: hello.version,
            user: user.id,
            role: user.role,
            name: &user.name,
            width: g.width(),
            height: g.height(),
            bpp: g.bpp(),
            tile_size: g.tile_size(),
            cooldown_ms: cfg.cooldown_ms,
            ready_at_ms: if user.role == Role::Visitor { 0 } else { self.shared.cooldown.ready_at(user.id, now_ms) },
            server_time_ms: now_ms,
            palette: &cfg.palette,
        }));
        self.push_reliable(id, frame);
    }
}
