//! `History`: a page of a room's or a conversation's messages the session may see, read
//! straight from the store on the session's shard.

use pixelparty_protocol::client::HistoryRequest;
use pixelparty_protocol::{ConvKind, ErrorCode};

use crate::msg::{ConnId, Refusal};
use crate::shard::Shard;

impl Shard {
    pub(crate) fn on_history(&mut self, id: ConnId, h: HistoryRequest) {
        if h.limit == 0 {
            return self.refuse(id, h.req, &Refusal::new(ErrorCode::InvalidArgument, "limit must be 1..=50"));
        }
        let Some(me) = self.conn(id).map(|c| c.user.id) else { return };
        if let Err(r) = self.history_allowed(me, h.kind, h.conv) {
            return self.refuse(id, h.req, &r);
        }
        let page = self.history_frame(id, h.req, h.kind, h.conv, h.before, usize::from(h.limit));
        self.push_reliable(id, page);
    }

    /// Anyone may read a room's history (PROTOCOL.md: non-members too); a direct
    /// conversation is read by one of its two users, whatever their relation now (what they
    /// wrote stays theirs after an unfriend or a block; blocked authors are hidden).
    fn history_allowed(&self, me: u32, kind: ConvKind, conv: u32) -> Result<(), Refusal> {
        let store = self.store();
        let internal = |e: pixelparty_storage::StorageError| {
            tracing::error!(error = %e, "reading history");
            Refusal::new(ErrorCode::Internal, "storage error")
        };
        let exists = match kind {
            ConvKind::Room => store.room(conv).map(|r| r.is_some()),
            ConvKind::Direct => store.user(conv).map(|u| u.is_some()),
        };
        if !exists.map_err(internal)? || (kind == ConvKind::Direct && conv == me) {
            return Err(Refusal::new(ErrorCode::NotFound, "no such room or user"));
        }
        Ok(())
    }
}
