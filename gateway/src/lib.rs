//! pixelparty's gateway: the runnable server. It wires the store, the engine and HTTP
//! together: the public REST API and WebSocket endpoint served on every shard thread, the
//! admin endpoint, configuration, the CLI's building blocks, and process lifecycle.
//!
//! # Layout
//! - [`config`]: TOML / environment / flags configuration.
//! - [`server`]: start-up, listeners, shutdown.
//! - [`cluster`]: cluster mode (several nodes on Redis and PostgreSQL).
//! - [`http`]: routes of the public API, one module per resource, plus the web client.
//! - [`ws`]: WebSocket: the sans-IO frame reader and writers, the upgrade, the session driver.
//! - [`wt`]: WebTransport (HTTP/3 over QUIC) endpoints and sessions.
//! - [`admin`]: the admin endpoint's routes; [`admin_openapi`]: its OpenAPI document (the
//!   public API's is [`http::openapi`]).
//! - [`metrics`]: the metrics registry behind the admin `/metrics` (Prometheus text format).
//! - [`app`]: process-wide state shared by handlers.
//! - [`hasher`], [`ratelimit`], [`bans`]: password hashing pool, login limits, address bans.
//! - [`snapshot_http`], [`rollback`], [`rewind`]: the snapshot document and PNG, pixel
//!   rollback, rewinding the canvas to an earlier moment.
//! - [`backup`]: backups to a directory or S3 (scheduled and on demand), restores.
//! - [`fuzzing`]: entry point of the WebSocket reader's fuzz target and its smoke test.

pub mod admin;
pub mod admin_openapi;
pub mod app;
pub mod backup;
pub mod bans;
pub mod cluster;
pub mod config;
pub mod fuzzing;
pub mod hasher;
pub mod http;
pub mod metrics;
pub mod online;
pub mod ratelimit;
pub mod rewind;
pub mod rollback;
pub mod server;
pub mod snapshot_http;
pub mod timelapse;
pub mod ws;
pub mod wt;
