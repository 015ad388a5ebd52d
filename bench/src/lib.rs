//! pixelparty-bench: the client library for bots and load clients, the load scenarios, and
//! the micro-benchmarks (`benches/`).
//!
//! # Layout
//! - [`timing`]: a tiny measurement harness shared by the micro-benchmarks.

pub mod timing;
