//! Shared parts of the storage integration tests.
#![allow(dead_code, clippy::unwrap_used, missing_docs)]

pub mod conformance;
