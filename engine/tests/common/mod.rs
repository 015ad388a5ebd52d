//! Shared set-up for the engine's harness tests.
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use pixelparty_engine::EngineConfig;
use pixelparty_engine::harness::{ClientId, Got, Harness};
use pixelparty_protocol::client::Subscribe;
use pixelparty_protocol::limits::NO_CURSOR;
use pixelparty_protocol::{ClientFrame, Geometry, TileCursor};
use pixelparty_storage::Role;

/// A small canvas: 128×128 at 4 bpp in 32×32 tiles (16 tiles), 3 shards, no cooldown.
pub fn config() -> EngineConfig {
    let mut c = EngineConfig::new(Geometry::new(128, 128, 4, 32).unwrap());
    c.shards = 3;
    c.cooldown_ms = 0;
    c.chat_interval_ms = 0;
    c
}

pub fn harness(config: EngineConfig) -> (tempfile::TempDir, Harness) {
    let (dir, store) = pixelparty_storage::testing::temp_store();
    (dir, Harness::new(config, store))
}

/// Creates users `names` in the store (ids 1, 2, ...).
pub fn users(h: &Harness, names: &[&str]) {
    for n in names {
        let n = n.to_string();
        h.store().wait(move |b| b.create_user(n, "hash".into(), Role::User, 0)).unwrap();
    }
}

pub fn subscribe_all(h: &mut Harness, c: ClientId) {
    let tiles = h.shared.config.geometry.tile_count();
    let cursors: Vec<TileCursor> = (0..tiles).map(|t| TileCursor::new(t, h.client(c).cursor(t))).collect();
    h.send(c, &ClientFrame::Subscribe(Subscribe { tiles: &cursors }));
}

pub fn subscribe_fresh(h: &mut Harness, c: ClientId) {
    let tiles = h.shared.config.geometry.tile_count();
    let cursors: Vec<TileCursor> = (0..tiles).map(|t| TileCursor::new(t, NO_CURSOR)).collect();
    h.send(c, &ClientFrame::Subscribe(Subscribe { tiles: &cursors }));
}

/// Asserts the client's replica equals the server's canvas, tile by tile, byte for byte.
pub fn assert_converged(h: &mut Harness, c: ClientId, what: &str) {
    let server = h.canvas();
    let client = h.client(c);
    assert_eq!(client.gaps, 0, "{what}: pixel frames that did not chain");
    for (tile, (data, seq)) in &server {
        let (cdata, cseq) = client.tile(*tile).unwrap_or_else(|| panic!("{what}: tile {tile} missing"));
        assert_eq!(cseq, seq, "{what}: tile {tile} cursor");
        assert!(cdata == data, "{what}: tile {tile} bytes differ");
    }
}

pub fn acks(got: &[Got]) -> Vec<(u32, u64)> {
    got.iter().filter_map(|g| if let Got::Ack { req, value } = g { Some((*req, *value)) } else { None }).collect()
}

pub fn errors(got: &[Got]) -> Vec<(u32, pixelparty_protocol::ErrorCode)> {
    got.iter().filter_map(|g| if let Got::Error { req, code, .. } = g { Some((*req, *code)) } else { None }).collect()
}
