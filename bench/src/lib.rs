//! pixelparty-bench: the client library for bots and load clients ([`client`]), the load
//! scenarios behind the `pixelparty-bench` command, and the micro-benchmarks (`benches/`).
//!
//! # Layout
//! - [`client`]: REST, WebSocket sessions, canvas replica.
//! - [`scenario`]: the load scenarios of the `pixelparty-bench` command.
//! - [`peers`]: chat clients in the dialects of the compared servers (socket.io, ws).
//! - [`report`], [`procstat`]: histograms, result lines, process CPU and memory.
//! - [`timing`]: a tiny measurement harness shared by the micro-benchmarks.

pub mod client;
pub mod floor;
pub mod peers;
pub mod procstat;
pub mod report;
pub mod scenario;
pub mod timing;
