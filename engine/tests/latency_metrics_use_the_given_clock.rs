//! The engine's histograms are measured with the `now_ms` the driver hands the shards, never a
//! clock of their own: a paint received at `t` and acknowledged at `t + 30` lands in the
//! 25–50 ms bucket of the paint-to-ack histogram of the session's shard (only there), its
//! storage batch in the home shard's; delivery queues are sampled once a second per session.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use pixelparty_engine::harness::{Got, user};
use pixelparty_engine::metrics::{LATENCY_MS_BOUNDS, QUEUE_SAMPLE_INTERVAL_MS};
use pixelparty_protocol::ClientFrame;
use pixelparty_protocol::client::Paint;

#[test]
fn paint_ack_and_batch_latency_follow_the_fake_clock() {
    let (_dir, mut h) = harness(config());
    let painter = h.connect(1, user(1, "painter"));
    h.drive();
    h.take(painter);
    let queue_samples = |h: &pixelparty_engine::harness::Harness| -> u64 {
        h.shared.metrics.iter().map(|m| m.delivery_queue_bytes.snapshot().count()).sum()
    };
    let samples_before = queue_samples(&h);

    // Received now; the tick that takes it to the store runs 30 ms later.
    h.send(painter, &ClientFrame::Paint(Paint { req: 1, x: 5, y: 5, colour: 3 }));
    h.advance(30);
    h.drive();
    assert!(h.take(painter).iter().any(|g| matches!(g, Got::Ack { req: 1, .. })));

    let acks = h.shared.metrics[1].paint_ack_ms.snapshot();
    assert_eq!(acks.count(), 1, "one ack, observed on the session's shard");
    assert_eq!(acks.sum, 30);
    let bucket = LATENCY_MS_BOUNDS.iter().position(|b| *b >= 30).unwrap();
    assert_eq!(acks.counts[bucket], 1, "in the bucket up to {} ms", LATENCY_MS_BOUNDS[bucket]);
    for (i, m) in h.shared.metrics.iter().enumerate().filter(|(i, _)| *i != 1) {
        assert_eq!(m.paint_ack_ms.snapshot().count(), 0, "shard {i} acked nothing");
    }
    // The batch went to the store and came back at the same fake time: 0 ms.
    let batches: Vec<_> = h.shared.metrics.iter().map(|m| m.storage_batch_ms.snapshot()).collect();
    assert_eq!(batches.iter().map(|b| b.count()).sum::<u64>(), 1);
    assert_eq!(batches.iter().map(|b| b.sum).sum::<u64>(), 0);

    // Queue depths: no new sample within the interval, one per session after it.
    h.advance(QUEUE_SAMPLE_INTERVAL_MS);
    h.drive();
    assert_eq!(queue_samples(&h), samples_before + 1, "the one session sampled once");
}
