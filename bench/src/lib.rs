//! pixelparty-bench: the client library for bots and load clients ([`client`]), the load
//! scenarios behind the `pixelparty-bench` command, and the micro-benchmarks (`benches/`).
//!
//! # Layout
//! - [`client`]: REST, WebSocket sessions, canvas replica.
//! - [`timing`]: a tiny measurement harness shared by the micro-benchmarks.

pub mod client;
pub mod timing;
