//! `Delete`: room messages go to the room's home shard (author or ADMIN); direct messages are
//! checked from the session's shard (author only) and tombstoned by the store; once that
//! is durable every shard is told.

use pixelparty_protocol::client::Delete;
use pixelparty_protocol::{ConvKind, ErrorCode, Role};

use crate::cmd::send::broadcast_from_writer;
use crate::msg::{ConnId, Origin, Refusal, ShardMsg};
use crate::routing::room_home;
use crate::shard::Shard;

impl Shard {
    pub(crate) fn on_delete(&mut self, id: ConnId, d: Delete) {
        let Some(conn) = self.conn(id) else { return };
        let (user, admin) = (conn.user.id, conn.user.role == Role::Admin);
        match d.kind {
            ConvKind::Room => {
                if !self.admit_remote(id, d.req, true) {
                    return;
                }
                let origin = Origin::Session(self.conn_ref(id), d.req);
                let msg = ShardMsg::DeleteRoomMessage { room: d.conv, seq: d.seq, origin, user, admin };
                self.send_request(id, room_home(d.conv, self.config().shards), msg);
            }
            ConvKind::Direct => self.delete_direct(id, d.req, user, d.conv, d.seq),
        }
    }

    /// Reads the message (only its author may delete it), then asks the store to tombstone
    /// it; every shard hears of it once that is durable.
    fn delete_direct(&mut self, id: ConnId, req: u32, user: u32, peer: u32, seq: u64) {
        self.ask(
            move |b| b.direct_message(user, peer, seq),
            move |s: &mut Shard, found, _now| match found {
                Ok(Some(m)) if !m.deleted && m.author == user => s.tombstone_direct(id, req, user, peer, seq),
                Ok(Some(m)) if !m.deleted => {
                    s.refuse(id, req, &Refusal::new(ErrorCode::Forbidden, "only the author may delete it"));
                }
                Ok(_) => s.refuse(id, req, &Refusal::new(ErrorCode::NotFound, "no such message")),
                Err(e) => s.refuse(id, req, &Refusal::read_failed(&e, "reading a direct message")),
            },
        );
    }

    fn tombstone_direct(&mut self, id: ConnId, req: u32, user: u32, peer: u32, seq: u64) {
        self.ask(
            move |b| b.delete_direct(user, peer, seq),
            move |s: &mut Shard, result, _now| match result {
                Ok(_) => {
                    broadcast_from_writer(&s.shared, || ShardMsg::DirectDeleted { a: user, b: peer, seq });
                    s.ack(id, req, seq);
                }
                Err(e) if e.is_not_found() => s.refuse(id, req, &Refusal::new(ErrorCode::NotFound, "no such message")),
                Err(e) => {
                    tracing::error!(error = %e, "deleting a direct message");
                    s.refuse(id, req, &Refusal::store_failed(&e));
                }
            },
        );
    }
}
