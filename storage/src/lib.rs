//! pixelparty's durable state: accounts, sessions, the social graph, moderation, rooms and
//! messages, and the canvas journal with tile snapshots.
//!
//! It knows records, not wire frames, and offers narrow domain operations rather than a
//! key-value API: the [`Backend`] trait, implemented by the embedded fjall backend ([`Fjall`],
//! the zero-setup default) and by PostgreSQL. Everyone else holds a [`Store`], which runs each
//! operation on its own runtime so that no caller's thread ever waits on storage I/O: event
//! loops await the answer or get a completion callback. The fjall backend reads on the store's
//! runtime and writes on its single writer thread, which group-commits per the [`Durability`]
//! mode and poisons the store after a failed write or fsync.
//!
//! # Layout
//! - [`backend`]: the [`Backend`] operations.
//! - [`store`]: [`Store`], the runtime that drives them, bounds on work in flight.
//! - [`config`]: [`StoreConfig`], [`Durability`].
//! - [`fjall`]: the embedded backend's handle; `fjall_ops` its [`Backend`] operations;
//!   `writer` its writer thread (group commit, poisoning); `db` its keyspaces; [`index`] its
//!   pixel index, written in bulk by the indexer thread.
//! - [`pg`]: the PostgreSQL backend, [`PgStore`].
//! - [`accounts`], [`social`], [`moderation`], [`chat`], [`canvas`]: the fjall domain
//!   operations ([`Db`] reads, [`Tx`] writes) and the rules both backends share.
//! - [`backup`]: consistent exports of a whole store, the row file format, restores.
//! - [`copy`]: copying a whole store into an empty one, across backends (`pixelparty migrate`).
//! - [`records`]: the record types and their versioned encodings.
//! - [`error`]: the error type, [`StorageError`].
//! - [`fuzzing`]: entry points of the record-decoder fuzz target and its smoke test.

pub mod accounts;
pub mod backend;
pub mod backup;
pub mod canvas;
pub mod chat;
mod codec;
pub mod config;
pub mod copy;
mod db;
pub mod error;
pub mod fjall;
mod fjall_ops;
pub mod fuzzing;
pub mod index;
pub mod moderation;
pub mod pg;
pub mod records;
pub mod social;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod writer;

pub use backend::{AuditDraft, Backend, ControlRecord, Hidden, Op, RoomDelete, Sequenced, TickWrite};
pub use canvas::{RecoveredCanvas, TileSnapshot};
pub use config::{Durability, StoreConfig};
pub use db::Db;
pub use error::StorageError;
pub use fjall::Fjall;
pub use pg::{PgConfig, PgStore};
pub use records::{
    AuditAction, AuditEntry, Ban, Conversation, Message, NetBan, PixelRecord, Relation, Role, Room, Session, User,
};
pub use social::{FriendOutcome, Removed};
pub use store::{RuntimeConfig, Store};
pub use writer::{Tx, WriterStats};
