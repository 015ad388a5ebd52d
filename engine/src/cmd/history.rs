//! `History`: a page of a room's or a conversation's messages the session may see, asked of
//! the store from the session's shard, with the authors' names.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use pixelparty_protocol::client::HistoryRequest;
use pixelparty_protocol::server::{HistoryEntry, HistoryPage};
use pixelparty_protocol::{ConvKind, ErrorCode, List, ServerFrame};
use pixelparty_storage::{Backend, Message, Op};

use crate::msg::{ConnId, Refusal};
use crate::shard::{Shard, encode};

/// A page read from the store, with the name of every author on it.
#[derive(Default)]
pub(crate) struct Page {
    messages: Vec<Message>,
    names: HashMap<u32, String>,
}

/// What to read: the conversation must exist first (a `History` request), or is known to
/// (a join).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageQuery {
    pub(crate) me: u32,
    pub(crate) kind: ConvKind,
    pub(crate) conv: u32,
    pub(crate) before: u64,
    pub(crate) limit: usize,
    pub(crate) check_exists: bool,
}

impl PageQuery {
    /// The store operation: `None` when the conversation does not exist.
    pub(crate) fn op(self, b: &Arc<dyn Backend>, hidden: Arc<[u32]>) -> Op<Option<Page>> {
        let b = b.clone();
        Box::pin(async move {
            let q = self;
            if q.check_exists {
                let exists = match q.kind {
                    ConvKind::Room => b.room(q.conv).await?.is_some(),
                    ConvKind::Direct => q.conv != q.me && b.user(q.conv).await?.is_some(),
                };
                if !exists {
                    return Ok(None);
                }
            }
            let messages = match q.kind {
                ConvKind::Room => b.room_history(q.conv, q.before, q.limit, hidden).await?,
                ConvKind::Direct => b.direct_history(q.me, q.conv, q.before, q.limit, hidden).await?,
            };
            let mut names = author_names(&b, &messages).await?;
            for m in &messages {
                names.entry(m.author).or_insert_with(|| format!("user{}", m.author));
            }
            Ok(Some(Page { messages, names }))
        })
    }
}

/// The names of the authors of `messages`, in one store operation (none for no message).
pub(crate) async fn author_names(
    b: &Arc<dyn Backend>,
    messages: &[Message],
) -> Result<HashMap<u32, String>, pixelparty_storage::StorageError> {
    let mut authors: Vec<u32> = messages.iter().map(|m| m.author).collect();
    authors.sort_unstable();
    authors.dedup();
    if authors.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(b.user_names(authors).await?.into_iter().collect())
}

/// The `HistoryPage` frame of a page.
pub(crate) fn page_frame(req: u32, kind: ConvKind, conv: u32, page: &Page) -> Bytes {
    let entries: Vec<HistoryEntry<'_>> = page
        .messages
        .iter()
        .map(|m| HistoryEntry {
            seq: m.seq,
            author: m.author,
            time_ms: m.time_ms,
            author_name: page.names.get(&m.author).map_or("", String::as_str),
            text: &m.text,
        })
        .collect();
    encode(&ServerFrame::HistoryPage(HistoryPage { req, kind, conv, entries: List::Items(&entries) }))
}

impl Shard {
    /// Anyone may read a room's history (PROTOCOL.md: non-members too); a direct
    /// conversation is read by one of its two users, whatever their relation now (what they
    /// wrote stays theirs after an unfriend or a block; blocked authors are hidden).
    pub(crate) fn on_history(&mut self, id: ConnId, h: HistoryRequest) {
        if h.limit == 0 {
            return self.refuse(id, h.req, &Refusal::new(ErrorCode::InvalidArgument, "limit must be 1..=50"));
        }
        if !self.admit_remote(id, h.req, true) {
            return;
        }
        let Some(conn) = self.conn(id) else { return };
        let (me, hidden) = (conn.user.id, conn.blocks.clone());
        let q = PageQuery {
            me,
            kind: h.kind,
            conv: h.conv,
            before: h.before,
            limit: usize::from(h.limit),
            check_exists: true,
        };
        let req = h.req;
        self.ask_for(
            id,
            move |b| q.op(b, hidden),
            move |s: &mut Shard, page, _now| match page {
                Ok(Some(page)) => {
                    s.push_reliable(id, page_frame(req, q.kind, q.conv, &page));
                }
                Ok(None) => s.refuse(id, req, &Refusal::new(ErrorCode::NotFound, "no such room or user")),
                Err(e) => s.refuse(id, req, &Refusal::read_failed(&e, "reading history")),
            },
        );
    }
}
