//! The client library for bots and load clients.
//!
//! - [`Api`]: the REST API (sign up, log in, rooms, friends, snapshot...).
//! - [`Connection`]: one WebSocket session speaking the binary protocol: handshake, sending
//!   frames, receiving them either decoded into owned [`Event`]s (convenient) or visited in
//!   place with [`Connection::recv_frames`] (no allocation per message, for load clients).
//! - [`Replica`]: a local copy of the canvas kept from a snapshot plus live batches, with
//!   per-tile cursors for resuming after a reconnect.
//!
//! ```no_run
//! # async fn bot() -> Result<(), pixelparty_bench::client::ClientError> {
//! use pixelparty_bench::client::{Api, Connection, ConnectOptions, Event};
//! let api = Api::new("127.0.0.1:8080".parse().unwrap());
//! let me = api.login("bot1", "secret-password").await?;
//! let mut conn = Connection::connect(api.addr(), &me.token, ConnectOptions::default()).await?;
//! let req = conn.paint(10, 20, 5).await?;
//! let seq = conn.wait_for(|e| match e { Event::Ack { req: r, value } if *r == req => Some(*value), _ => None }).await?;
//! println!("painted, seq {seq}");
//! # Ok(()) }
//! ```

mod api;
mod conn;
mod error;
mod replica;

pub use api::{Account, Api};
pub use conn::{ConnectOptions, Connection, Event, TransportKind, WelcomeInfo, tcp_from};
pub use error::ClientError;
pub use replica::{Applied, Replica, Snapshot};
