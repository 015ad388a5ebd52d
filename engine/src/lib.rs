//! pixelparty's engine: the sharded, thread-per-core core of the server. It owns the canvas
//! bitmap (tiles homed on shards), tile subscriptions and fan-out, rooms and direct
//! messages, cooldowns and slow mode, moderation hooks, and backpressure towards slow
//! sessions. It knows no HTTP and no particular transport: a transport hands it an
//! authenticated user and whole transport messages, and takes encoded bytes out.
//!
//! A [`Shard`] is a state machine fed frames, messages from other shards, storage
//! completions and `now`; it reads no clock and never blocks. [`runtime`] pumps shards on
//! real threads; [`harness`] (feature `testing`) pumps them deterministically in tests with a
//! fake clock.
//!
//! # Layout
//! - [`config`]: [`EngineConfig`], a bound for everything.
//! - [`routing`]: pure home-shard functions.
//! - [`shard`]: the state machine, sessions, output, inbox turns.
//! - `cmd/`: one module per client command.
//! - `home`: what a shard does as the home of tiles and rooms.
//! - `tick`: batching to storage and publishing.
//! - [`cluster`]: what a shard needs from the other nodes, and the [`cluster::Sequencer`]
//!   that puts their commits back in order; `feed`: a room home's side of it.
//! - `tiles`, `rooms`, `conn`: owned tile, home room and session state.
//! - [`limiter`]: exact per-user cooldown and slow mode.
//! - [`restore`]: rollback restores, a compare-and-set at the tile's home shard.
//! - [`mesh`], [`msg`]: bounded inboxes and the messages between shards.
//! - [`runtime`]: shard threads, [`Engine`], [`EngineHandle`], [`LocalShard`].
//! - [`snapshot`]: canvas snapshots for HTTP and for the store.
//! - [`metrics`]: the counters and histograms behind `/metrics`.

pub mod asks;
pub mod cluster;
mod cmd;
pub mod config;
mod conn;
mod feed;
#[cfg(any(test, feature = "testing"))]
pub mod harness;
mod home;
pub mod limiter;
pub mod mesh;
pub mod metrics;
pub mod msg;
pub mod restore;
mod rooms;
pub mod routing;
pub mod runtime;
pub mod shard;
pub mod snapshot;
mod tick;
mod tiles;

pub use config::{ConfigError, EngineConfig};
pub use conn::{Close, Target, UserCtx};
pub use msg::ConnId;
pub use runtime::{Engine, EngineHandle, LocalShard, StartError, now_ms};
pub use shard::{MAX_REQUESTS_IN_FLIGHT, Shard, Shared};
pub use snapshot::{CanvasSnapshot, Snapshotter};

/// Most blocked users the engine keeps per session (the rest are still blocked in the store
/// for direct messages and friend requests).
pub const MAX_BLOCKS: usize = 10_000;
