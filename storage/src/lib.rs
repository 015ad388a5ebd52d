//! pixelparty's durable state on fjall, an embedded LSM store (or, behind the same
//! [`Backend`](backend::Backend) operations, on PostgreSQL: [`pg`]): accounts, sessions, the
//! social graph, moderation, rooms and messages, and the canvas journal with tile snapshots.
//!
//! It knows records, not wire frames, and offers narrow domain operations rather than a
//! key-value API, so another backend could implement the same operations. Reads are methods of
//! [`Db`] (reachable from a [`Store`] by deref) and run on the caller's thread. Writes are
//! methods of [`Tx`], run on the store's single writer thread through [`Store::run`]
//! (blocking) or [`Store::submit`] (completion callback); the writer group-commits per the
//! [`Durability`] mode and poisons the store after a failed write or fsync.
//!
//! # Layout
//! - [`config`]: [`StoreConfig`], [`Durability`].
//! - [`store`]: [`Store`], job submission.
//! - `writer`: the writer thread, group commit, poisoning.
//! - `db`: the database and its keyspaces.
//! - [`index`]: the pixel index, written in bulk by the indexer thread.
//! - [`records`]: the record types and their versioned encodings.
//! - [`accounts`], [`social`], [`moderation`], [`chat`], [`canvas`]: the domain operations.
//! - [`error`]: the error type, [`StorageError`].
//! - [`fuzzing`]: entry points of the record-decoder fuzz target and its smoke test.
//! - [`backend`]: the [`Backend`](backend::Backend) trait, the operations every backend offers.
//! - [`pg`]: the PostgreSQL backend, [`PgStore`].

pub mod accounts;
pub mod backend;
pub mod canvas;
pub mod chat;
mod codec;
pub mod config;
mod db;
pub mod error;
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

pub use canvas::{RecoveredCanvas, TileSnapshot};
pub use config::{Durability, StoreConfig};
pub use db::Db;
pub use error::StorageError;
pub use pg::{PgConfig, PgStore};
pub use records::{
    AuditAction, AuditEntry, Ban, Conversation, Message, NetBan, PixelRecord, Relation, Role, Room, Session, User,
};
pub use social::{FriendOutcome, Removed};
pub use store::Store;
pub use writer::{Tx, WriterStats};
