//! `Delete`: room messages go to the room's home shard (author or ADMIN); direct messages are
//! checked here (author only) and tombstoned through the store's writer, whose completion
//! tells every shard.

use pixelparty_protocol::client::Delete;
use pixelparty_protocol::{ConvKind, ErrorCode, Role};

use crate::cmd::send::broadcast_from_writer;
use crate::mesh::Completion;
use crate::msg::{ConnId, Origin, Refusal, ShardMsg};
use crate::routing::room_home;
use crate::shard::{MAX_DIRECT_IN_FLIGHT, Shard};

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

    fn delete_direct(&mut self, id: ConnId, req: u32, user: u32, peer: u32, seq: u64) {
        match self.store().direct_message(user, peer, seq) {
            Ok(Some(m)) if !m.deleted && m.author == user => {}
            Ok(Some(m)) if !m.deleted => {
                return self.refuse(id, req, &Refusal::new(ErrorCode::Forbidden, "only the author may delete it"));
            }
            Ok(_) => {
                return self.refuse(id, req, &Refusal::new(ErrorCode::NotFound, "no such message"));
            }
            Err(e) => {
                tracing::error!(error = %e, "reading a direct message");
                return self.refuse(id, req, &Refusal::new(ErrorCode::Internal, "storage error"));
            }
        }
        if self.direct_in_flight >= MAX_DIRECT_IN_FLIGHT {
            return self.refuse(
                id,
                req,
                &Refusal { code: ErrorCode::Overloaded, retry_after_ms: 100, message: "server busy" },
            );
        }
        let (shared, origin) = (self.shared.clone(), self.id);
        let submitted = self.store().submit(
            move |tx| tx.delete_direct(user, peer, seq),
            move |result| {
                let result = match result {
                    Ok(_) => {
                        broadcast_from_writer(&shared, || ShardMsg::DirectDeleted { a: user, b: peer, seq });
                        Ok(seq)
                    }
                    Err(e) if e.is_not_found() => Err(Refusal::new(ErrorCode::NotFound, "no such message")),
                    Err(e) => {
                        tracing::error!(error = %e, "deleting a direct message");
                        Err(Refusal::store_failed(&e))
                    }
                };
                shared.mesh.complete(origin, Completion::Direct { conn: id, req, result });
            },
        );
        match submitted {
            Ok(()) => self.direct_in_flight += 1,
            Err(e) => self.refuse(id, req, &Refusal::store_refused(&e)),
        }
    }
}
