//! `Delete`: room messages go to the room's home shard (author or ADMIN); direct messages are
//! checked from the session's shard (author only) and tombstoned by the store; once that
//! is durable every shard is told.

use pixelparty_protocol::client::Delete;
use pixelparty_protocol::{ConvKind, ErrorCode, Role};

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

    /// Reads the message (only its author may delete it) and tombstones it, in one store
    /// operation; once that is durable every shard is told.
    fn delete_direct(&mut self, id: ConnId, req: u32, user: u32, peer: u32, seq: u64) {
        if !self.admit_remote(id, req, true) {
            return;
        }
        self.ask_for(
            id,
            move |b| {
                let b = b.clone();
                Box::pin(async move {
                    match b.direct_message(user, peer, seq).await? {
                        Some(m) if !m.deleted && m.author == user => {}
                        Some(m) if !m.deleted => return Ok(Err(DeleteRefused::NotAuthor)),
                        _ => return Ok(Err(DeleteRefused::NoSuchMessage)),
                    }
                    match b.delete_direct(user, peer, seq).await {
                        Ok(_) => Ok(Ok(())),
                        Err(e) if e.is_not_found() => Ok(Err(DeleteRefused::NoSuchMessage)),
                        Err(e) => Err(e),
                    }
                })
            },
            move |s: &mut Shard, result, _now| match result {
                Ok(Ok(())) => {
                    s.broadcast(|| ShardMsg::DirectDeleted { a: user, b: peer, seq });
                    s.ack(id, req, seq);
                }
                Ok(Err(DeleteRefused::NotAuthor)) => {
                    s.refuse(id, req, &Refusal::new(ErrorCode::Forbidden, "only the author may delete it"));
                }
                Ok(Err(DeleteRefused::NoSuchMessage)) => {
                    s.refuse(id, req, &Refusal::new(ErrorCode::NotFound, "no such message"));
                }
                Err(e) => {
                    tracing::error!(error = %e, "deleting a direct message");
                    s.refuse(id, req, &Refusal::store_failed(&e));
                }
            },
        );
    }
}

/// Why a direct message deletion was refused.
enum DeleteRefused {
    NotAuthor,
    NoSuchMessage,
}
