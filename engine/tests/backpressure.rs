//! A slow consumer never slows anyone else: a stalled subscriber's canvas frames are dropped
//! and replaced by a `Resync`, from which it converges once it reads again (the harness
//! client, like the client library, re-subscribes resync tiles with its cursors); a stalled room
//! member is closed as a slow consumer while the others get every message.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use pixelparty_engine::harness::{Got, user};
use pixelparty_protocol::client::{Paint, RoomRequest, SendRoom};
use pixelparty_protocol::{ClientFrame, CloseReason};

#[test]
fn stalled_subscriber_is_resynced_and_does_not_delay_others() {
    let mut config = config();
    config.outbound_max_bytes = 4096;
    config.outbound_reserve_bytes = 4096;
    let (_dir, mut h) = harness(config);
    let painter = h.connect(0, user(1, "painter"));
    let fast = h.connect(1, user(2, "fast"));
    let slow = h.connect(1, user(3, "slow"));
    subscribe_fresh(&mut h, fast);
    subscribe_fresh(&mut h, slow);
    h.drive();
    h.set_stalled(slow, true);
    let mut req = 0;
    for round in 0..40u16 {
        for i in 0..10u16 {
            req += 1;
            let (x, y) = ((round * 7 + i * 13) % 128, (i * 31 + round) % 128);
            h.send(painter, &ClientFrame::Paint(Paint { req, x, y, colour: (i % 16) as u8 }));
        }
        h.drive();
        // The fast subscriber is current after every round, whatever the slow one does.
        assert_converged(&mut h, fast, &format!("fast subscriber, round {round}"));
    }
    assert!(
        h.shared.metrics[1].canvas_frames_dropped.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "frames were dropped for the slow one"
    );

    h.set_stalled(slow, false);
    h.drive();
    let resync: Vec<u32> = h
        .client(slow)
        .got
        .iter()
        .filter_map(|g| if let Got::Resync(t) = g { Some(t.clone()) } else { None })
        .flatten()
        .collect();
    assert!(!resync.is_empty(), "the slow subscriber is told which tiles to resync");
    assert!(h.client(slow).closed.is_none(), "dropping canvas frames does not close the session");
    // The harness client re-subscribed the resync tiles with its cursors, like the library.
    assert_converged(&mut h, slow, "slow subscriber after resync");
}

#[test]
fn stalled_room_member_is_closed_as_slow_consumer() {
    let mut config = config();
    config.outbound_max_bytes = 4096;
    config.outbound_reserve_bytes = 4096;
    let (_dir, mut h) = harness(config);
    users(&h, &["a", "b", "c"]);
    h.store().wait(|b| b.create_room("r".into(), 1, 0)).unwrap();
    let (sender, fast, slow) = (h.connect(0, user(1, "a")), h.connect(1, user(2, "b")), h.connect(2, user(3, "c")));
    for s in [sender, fast, slow] {
        h.send(s, &ClientFrame::JoinRoom(RoomRequest { req: 1, room: 1 }));
    }
    h.drive();
    h.set_stalled(slow, true);
    let text = "x".repeat(1500);
    for req in 0..12 {
        h.send(sender, &ClientFrame::SendRoom(SendRoom { req, room: 1, text: &text }));
        h.drive();
    }
    h.set_stalled(slow, false);
    h.drive();
    let closed = h.client(slow).closed.clone().expect("the slow member was closed");
    assert_eq!(closed.reason, CloseReason::SlowConsumer);
    assert!(matches!(h.client(slow).got.last(), Some(Got::Closing { reason: CloseReason::SlowConsumer, .. })));
    let seen = h.client(fast).got.iter().filter(|g| matches!(g, Got::Room { .. })).count();
    assert_eq!(seen, 12, "the other member got every message");
}
