//! WebSocket sessions: the upgrade (origin check, authentication, bans) and the session
//! driver that pumps bytes between the socket and the engine.
//!
//! After the upgrade the session owns the raw `TcpStream` (hyper's connection is gone). Frames
//! are parsed with tungstenite's frame-header codec by a sans-IO [`WsReader`]; reads go into
//! one 64 KiB buffer per shard thread, so an idle session holds no read buffer at all (only a
//! partial frame is ever copied into the session). Output is one binary message per batch of
//! engine frames.
//!
//! # Layout
//! - [`reader`]: the sans-IO codec: [`WsReader`] (client frames in, [`WsEvent`]s out: unmasking,
//!   reassembly, the size limit, refusals with their close codes) and the server frame
//!   writers. No I/O: fuzzed (`fuzz/`) and run against the Autobahn cases.
//! - [`upgrade`]: `GET /ws`: handshake headers, `Origin`, session, bans, the 101 answer.
//! - [`session`]: the per-connection driver between the socket and the engine: reads,
//!   writes with a deadline, pongs, idle pings, closes.

pub mod reader;
pub mod session;
pub mod upgrade;

pub use reader::{WsEvent, WsReader, close_code};
pub use upgrade::origin_allowed;
