//! A rollback's restores are a compare-and-set at the tile's home shard.
//!
//! Defect: rollback planned from the store, then painted: a paint made between the two steps
//! was overwritten, restores were dropped silently when the home's queue was full, the answer
//! counted planned (not restored) pixels, and restored pixels were credited to the admin in
//! the inspector as if painted. Now a restore applies only where the pixel still holds the
//! rolled-back update, every restore's outcome is counted, and the journal says "restored by
//! rollback of X".
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use pixelparty_engine::harness::{Harness, user};
use pixelparty_engine::restore::RestoreReport;
use pixelparty_protocol::ClientFrame;
use pixelparty_protocol::client::Paint;

fn paint(h: &mut Harness, c: pixelparty_engine::harness::ClientId, req: u32, x: u16, y: u16, colour: u8) -> u64 {
    h.send(c, &ClientFrame::Paint(Paint { req, x, y, colour }));
    h.drive();
    acks(&h.take(c)).iter().find(|(r, _)| *r == req).map(|a| a.1).expect("paint accepted")
}

fn colour_at(h: &mut Harness, x: u32, y: u32) -> u8 {
    let g = h.shared.config.geometry;
    let loc = g.locate(x, y).unwrap();
    let canvas = h.canvas();
    pixelparty_protocol::canvas::get_pixel(&canvas[&loc.tile].0, g.bpp(), loc.offset)
}

#[test]
fn a_restore_never_overwrites_a_later_paint() {
    let (_dir, mut h) = harness(config());
    let (griefer, artist) = (h.connect(0, user(1, "griefer")), h.connect(1, user(2, "artist")));
    h.drive();
    let a = paint(&mut h, griefer, 1, 5, 5, 9);
    let b = paint(&mut h, griefer, 2, 6, 5, 9);
    // The plan is made now (both pixels still the griefer's); then the artist repaints b.
    let plan = [(5, 5, 0, a), (6, 5, 0, b)];
    paint(&mut h, artist, 3, 6, 5, 4);
    let report = h.restore(1, &plan);
    assert_eq!(report, RestoreReport { restored: 1, painted_over: 1, ..RestoreReport::default() });
    assert_eq!(colour_at(&mut h, 5, 5), 0, "restored");
    assert_eq!(colour_at(&mut h, 6, 5), 4, "the artist's later paint stays");
    let latest = h.store().wait(|b| b.pixel_history(5, 5, u64::MAX, 1)).unwrap().remove(0);
    assert_eq!((latest.painter(), latest.rolled_back()), (None, Some(1)), "journaled as restored by rollback of 1");
}

#[test]
fn a_restore_after_a_paint_in_the_same_batch_or_on_its_way_is_skipped() {
    let (_dir, mut h) = harness(config());
    let (griefer, artist) = (h.connect(0, user(1, "griefer")), h.connect(1, user(2, "artist")));
    h.drive();
    let a = paint(&mut h, griefer, 1, 7, 7, 9);
    // The artist's paint reaches the home shard (0) before the restore, in the same tick:
    // hand it from the artist's shard to the home's queue without ticking.
    h.send(artist, &ClientFrame::Paint(Paint { req: 2, x: 7, y: 7, colour: 3 }));
    let now = h.now_ms;
    h.shards[1].flush();
    h.shards[0].process_inbox(now, usize::MAX);
    let report = h.restore(1, &[(7, 7, 0, a)]);
    assert_eq!(report.painted_over, 1, "{report:?}");
    assert_eq!(colour_at(&mut h, 7, 7), 3);
}

#[test]
fn past_the_tile_ring_the_store_decides() {
    let mut config = config();
    config.ring_per_tile = 2;
    let (_dir, mut h) = harness(config);
    let (griefer, other) = (h.connect(0, user(1, "griefer")), h.connect(1, user(2, "other")));
    h.drive();
    let a = paint(&mut h, griefer, 1, 1, 1, 9);
    let b = paint(&mut h, griefer, 2, 5, 1, 9);
    paint(&mut h, other, 3, 1, 1, 4); // over a
    // More updates in the same tile push the ring past both of the griefer's updates (as a
    // restart empties it): the store says which pixels changed since.
    for i in 0..3u16 {
        paint(&mut h, other, 10 + u32::from(i), 8 + i, 1, 5);
    }
    let report = h.restore(1, &[(1, 1, 0, a), (5, 1, 0, b)]);
    assert_eq!(report, RestoreReport { restored: 1, painted_over: 1, ..RestoreReport::default() });
    assert_eq!((colour_at(&mut h, 1, 1), colour_at(&mut h, 5, 1)), (4, 0));
}

/// Review finding: a paint still on its way to the store counted as "painted over" even when
/// it was the rolled-back update itself (the plan reads the store, which can hold a paint the
/// home shard has not applied yet). Only a newer one counts.
#[test]
fn a_paint_on_its_way_to_the_store_counts_only_if_newer_than_the_guard() {
    let mut config = config();
    config.max_ticks_in_flight = 4;
    let (_dir, mut h) = harness(config);
    let (griefer, artist) = (h.connect(0, user(1, "griefer")), h.connect(1, user(2, "artist")));
    h.drive();
    let a = paint(&mut h, griefer, 1, 2, 2, 9);
    let b = paint(&mut h, griefer, 2, 3, 2, 9);
    // The artist repaints b; its batch is submitted (in flight) but not yet durable when the
    // restores are decided.
    h.send(artist, &ClientFrame::Paint(Paint { req: 3, x: 3, y: 2, colour: 6 }));
    let now = h.now_ms;
    h.shards[1].flush();
    h.shards[0].process_inbox(now, usize::MAX);
    h.shards[0].tick(now);
    let (tally, done) = h.send_restores(1, &[(2, 2, 0, a), (3, 2, 0, b)]);
    h.shards[0].process_inbox(now, usize::MAX);
    h.shards[0].tick(now);
    h.drive();
    let report = tally.wait(&done, std::time::Duration::ZERO);
    assert_eq!(report, RestoreReport { restored: 1, painted_over: 1, ..RestoreReport::default() });
    assert_eq!((colour_at(&mut h, 2, 2), colour_at(&mut h, 3, 2)), (0, 6));
}

#[test]
fn restores_refused_by_a_full_queue_are_counted() {
    let mut config = config();
    config.max_pending_paints = 1;
    let (_dir, mut h) = harness(config);
    let griefer = h.connect(0, user(1, "griefer"));
    h.drive();
    let a = paint(&mut h, griefer, 1, 1, 1, 9);
    let b = paint(&mut h, griefer, 2, 2, 1, 9);
    let report = h.restore(1, &[(1, 1, 0, a), (2, 1, 0, b)]);
    assert_eq!(report, RestoreReport { restored: 1, refused: 1, ..RestoreReport::default() });
}
