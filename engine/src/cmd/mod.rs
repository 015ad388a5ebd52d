//! One module per client command: how a session's shard handles each frame it receives, and
//! the answers that come back to it from home shards.

mod delete;
mod hello;
pub(crate) use hello::VISITOR_VERSION;
pub(crate) mod history;
mod paint;
mod ping;
mod room;
mod send;
mod subscribe;
