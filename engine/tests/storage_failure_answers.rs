//! What a client is told when storage fails, and that it is true.
//!
//! Defect: with the data directory on a volume that filled up, the store poisoned itself and
//! answered `internal: storage failure; not applied`, yet some of those writes were on disk
//! and came back after a restart (a client that retried made duplicates); and while poisoned,
//! direct messages got `overloaded` with a 100 ms retry (for ever) while paints got
//! `internal`. Now: a write the store failed while writing is `outcome_unknown` (read it
//! back), every write refused afterwards is `unavailable` (not applied), whatever its kind; a
//! version 1 session gets `internal` for both; cooldowns go back only for what certainly was
//! not applied.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use pixelparty_engine::harness::{Got, Harness, user};
use pixelparty_protocol::client::{Hello, Paint, SendDirect};
use pixelparty_protocol::{ClientFrame, ClientKind, ErrorCode, Geometry};
use pixelparty_storage::testing::FailPoint;
use pixelparty_storage::{Durability, Store, StoreConfig};

fn open(dir: &std::path::Path) -> Store {
    let mut c = StoreConfig::new(dir.join("db"));
    c.durability = Durability::None;
    Store::open(c).unwrap()
}

fn codes(got: &[Got]) -> Vec<(u32, ErrorCode)> {
    errors(got)
}

#[test]
fn a_failed_write_is_outcome_unknown_and_later_ones_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config();
    config.cooldown_ms = 60_000;
    let geometry: Geometry = config.geometry;
    let mut h = Harness::new(config, open(dir.path()));
    users(&h, &["ann", "bob"]);
    h.store().wait(|b| b.request_friend(1, 2, 0)).unwrap();
    h.store().wait(|b| b.accept_friend(2, 1, 0)).unwrap();
    let ann = h.connect(0, user(1, "ann"));
    let old = h.connect_raw(1, user(2, "bob"));
    h.send(old, &ClientFrame::Hello(Hello { version: 1, kind: ClientKind::Bot, agent: "v1" }));
    h.drive();
    h.take(ann);
    h.take(old);

    // The write reaches the journal, then the store fails: nobody can say it was not applied.
    h.store().fjall().unwrap().inject_failure(FailPoint::AfterCommit);
    h.send(ann, &ClientFrame::Paint(Paint { req: 1, x: 3, y: 3, colour: 5 }));
    h.drive();
    assert_eq!(codes(&h.take(ann)), vec![(1, ErrorCode::OutcomeUnknown)]);
    assert!(h.store().is_poisoned());
    // It may have been applied, so the cooldown it took stays.
    h.send(ann, &ClientFrame::Paint(Paint { req: 2, x: 4, y: 3, colour: 5 }));
    h.drive();
    assert_eq!(codes(&h.take(ann)), vec![(2, ErrorCode::Cooldown)]);

    // From now on every write is refused before it is applied: one answer for one state.
    h.advance(60_000);
    h.send(ann, &ClientFrame::Paint(Paint { req: 3, x: 4, y: 3, colour: 5 }));
    h.send(ann, &ClientFrame::SendDirect(SendDirect { req: 4, to: 2, text: "hello?" }));
    h.drive();
    let got = h.take(ann);
    let mut got_codes = codes(&got);
    got_codes.sort_by_key(|c| c.0);
    assert_eq!(got_codes, vec![(3, ErrorCode::Unavailable), (4, ErrorCode::Unavailable)], "{got:?}");
    // Certainly not applied: the cooldown went back.
    h.send(ann, &ClientFrame::Paint(Paint { req: 5, x: 4, y: 3, colour: 5 }));
    h.drive();
    assert_eq!(codes(&h.take(ann)), vec![(5, ErrorCode::Unavailable)]);
    // A version 1 client cannot decode the new codes: it gets `internal`.
    h.send(old, &ClientFrame::Paint(Paint { req: 6, x: 5, y: 3, colour: 5 }));
    h.drive();
    assert_eq!(codes(&h.take(old)), vec![(6, ErrorCode::Internal)]);

    // After a restart, the write answered `outcome_unknown` is there: "not applied" would
    // have been a lie.
    drop(h);
    let store = open(dir.path());
    let canvas = store.wait(|b| b.recover_canvas(geometry)).unwrap();
    let loc = geometry.locate(3, 3).unwrap();
    let colour = pixelparty_protocol::canvas::get_pixel(&canvas.tiles[loc.tile as usize], geometry.bpp(), loc.offset);
    assert_eq!(colour, 5);
}
