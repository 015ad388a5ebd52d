//! The paint cooldown is exact per user across shards and connections: one user with a
//! session on every shard gets exactly one paint per window, the others get the remaining
//! wait; admins may be exempt.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use pixelparty_engine::harness::{Got, admin, user};
use pixelparty_protocol::client::Paint;
use pixelparty_protocol::{ClientFrame, ErrorCode};

#[test]
fn one_paint_per_window_across_shards() {
    let mut config = config();
    config.cooldown_ms = 1000;
    let (_dir, mut h) = harness(config);
    let sessions: Vec<_> = (0..6).map(|i| h.connect(i % 3, user(7, "seven"))).collect();
    h.drive();
    for round in 0..3u32 {
        for (i, &s) in sessions.iter().enumerate() {
            h.send(s, &ClientFrame::Paint(Paint { req: round * 10 + i as u32, x: i as u16, y: 0, colour: 1 }));
        }
        h.drive();
        let mut accepted = 0;
        let mut waits = Vec::new();
        for &s in &sessions {
            for g in h.take(s) {
                match g {
                    Got::Ack { .. } => accepted += 1,
                    Got::Error { code: ErrorCode::Cooldown, retry_after_ms, .. } => waits.push(retry_after_ms),
                    _ => {}
                }
            }
        }
        assert_eq!(accepted, 1, "round {round}: exactly one paint per window");
        assert_eq!(waits, vec![1000; 5], "round {round}: the others learn the remaining wait");
        h.advance(999);
        h.send(sessions[0], &ClientFrame::Paint(Paint { req: 99, x: 0, y: 1, colour: 1 }));
        h.drive();
        assert!(
            h.take(sessions[0])
                .iter()
                .any(|g| matches!(g, Got::Error { code: ErrorCode::Cooldown, retry_after_ms: 1, .. }))
        );
        h.advance(1);
    }
}

#[test]
fn ack_is_followed_by_cooldown_state_and_admins_are_exempt() {
    let mut config = config();
    config.cooldown_ms = 60_000;
    let (_dir, mut h) = harness(config);
    let u = h.connect(0, user(1, "u"));
    let a = h.connect(1, admin(2, "root"));
    h.drive();
    h.take(u);
    h.send(u, &ClientFrame::Paint(Paint { req: 1, x: 1, y: 1, colour: 2 }));
    for i in 0..5 {
        h.send(a, &ClientFrame::Paint(Paint { req: i, x: 2, y: 2, colour: 3 }));
    }
    h.drive();
    let got = h.take(u);
    let now = h.now_ms;
    assert!(matches!(got[0], Got::Ack { req: 1, .. }));
    assert_eq!(got[1], Got::Cooldown { ready_at_ms: now + 60_000, cooldown_ms: 60_000 });
    assert_eq!(acks(&h.take(a)).len(), 5, "admins skip the cooldown by default");
    // A new session of the same user learns the cooldown in Welcome.
    let again = h.connect(2, user(1, "u"));
    h.drive();
    let welcome = h.take(again).remove(0);
    assert!(matches!(welcome, Got::Welcome { user: 1, ready_at_ms, .. } if ready_at_ms == now + 60_000), "{welcome:?}");
}

/// Defect: the cooldown was taken at the session's shard and never given back when the tile's
/// home shard then refused the paint (here: its pending queue is full), so a refused paint
/// cost the user a whole window.
#[test]
fn a_paint_refused_by_the_home_shard_gives_the_cooldown_back() {
    let mut config = config();
    config.cooldown_ms = 300_000;
    config.max_pending_paints = 1;
    let (_dir, mut h) = harness(config);
    let first = h.connect(0, user(1, "one"));
    let second = h.connect(1, user(2, "two"));
    h.drive();
    h.take(first);
    h.take(second);
    // Both pixels are in tile 0: its home takes one pending paint per tick and refuses the next.
    h.send(first, &ClientFrame::Paint(Paint { req: 1, x: 0, y: 0, colour: 1 }));
    h.send(second, &ClientFrame::Paint(Paint { req: 1, x: 1, y: 0, colour: 1 }));
    h.drive();
    assert_eq!(acks(&h.take(first)).len(), 1);
    let refused = h.take(second);
    assert!(refused.iter().any(|g| matches!(g, Got::Error { req: 1, code: ErrorCode::Overloaded, .. })), "{refused:?}");
    // Same moment: the refused user may paint again at once.
    h.send(second, &ClientFrame::Paint(Paint { req: 2, x: 1, y: 0, colour: 1 }));
    h.drive();
    let got = h.take(second);
    assert_eq!(acks(&got), vec![(2, acks(&got).first().map_or(0, |a| a.1))], "{got:?}");
    // And the accepted one is still in its window.
    h.send(first, &ClientFrame::Paint(Paint { req: 2, x: 0, y: 1, colour: 1 }));
    h.drive();
    assert!(errors(&h.take(first)).contains(&(2, ErrorCode::Cooldown)));
}
