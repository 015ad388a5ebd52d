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
        let exists = match h.kind {
            ConvKind::Room => self.store().room(h.conv).map(|r| r.is_some()),
            ConvKind::Direct => self.store().user(h.conv).map(|u| u.is_some()),
        };
        match exists {
            Ok(true) => {}
            Ok(false) => {
                return self.refuse(id, h.req, &Refusal::new(ErrorCode::NotFound, "no such room or user"));
            }
            Err(e) => {
                tracing::error!(error = %e, "reading history");
                return self.refuse(id, h.req, &Refusal::new(ErrorCode::Internal, "storage error"));
            }
        }
        let page = self.history_frame(id, h.req, h.kind, h.conv, h.before, usize::from(h.limit));
        self.push_reliable(id, page);
    }
}
