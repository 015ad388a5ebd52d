//! Every bound the engine enforces answers with the right error code (and a protocol
//! violation closes the session with the right reason).
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use pixelparty_engine::harness::{Got, user};
use pixelparty_protocol::client::{Hello, HistoryRequest, Paint, Ping, RoomRequest, SendRoom, Subscribe};
use pixelparty_protocol::{ClientFrame, ClientKind, CloseReason, ConvKind, ErrorCode, TileCursor};

#[test]
fn paint_bounds_colours_and_overload() {
    let mut config = config();
    config.palette.truncate(8);
    config.max_pending_paints = 1;
    let (_dir, mut h) = harness(config);
    let c = h.connect(0, user(1, "u"));
    h.send(c, &ClientFrame::Paint(Paint { req: 1, x: 128, y: 0, colour: 0 }));
    h.send(c, &ClientFrame::Paint(Paint { req: 2, x: 0, y: 0, colour: 8 }));
    // Two paints for tiles of the same home shard in one tick: the second overflows.
    h.send(c, &ClientFrame::Paint(Paint { req: 3, x: 0, y: 0, colour: 1 }));
    h.send(c, &ClientFrame::Paint(Paint { req: 4, x: 1, y: 0, colour: 1 }));
    h.drive();
    let got = h.take(c);
    assert_eq!(
        errors(&got),
        vec![(1, ErrorCode::OutOfBounds), (2, ErrorCode::InvalidColour), (4, ErrorCode::Overloaded)]
    );
    assert_eq!(acks(&got).iter().map(|a| a.0).collect::<Vec<_>>(), vec![3]);
}

#[test]
fn subscription_limits() {
    let mut config = config();
    config.max_subscriptions = 4;
    let (_dir, mut h) = harness(config);
    let c = h.connect(0, user(1, "u"));
    let tiles: Vec<TileCursor> = (0..6).map(|t| TileCursor::new(t, u64::MAX)).chain([TileCursor::new(99, 0)]).collect();
    h.send(c, &ClientFrame::Subscribe(Subscribe { tiles: &tiles }));
    h.drive();
    let got = h.take(c);
    assert_eq!(
        errors(&got),
        vec![
            (0, ErrorCode::TooManySubscriptions),
            (0, ErrorCode::TooManySubscriptions),
            (0, ErrorCode::InvalidArgument)
        ]
    );
    assert_eq!(got.iter().filter(|g| matches!(g, Got::TileData { .. })).count(), 4);
}

#[test]
fn room_limits_and_slow_mode() {
    let mut config = config();
    config.max_rooms_per_session = 1;
    config.max_room_members = 1;
    config.chat_burst = 2;
    config.chat_interval_ms = 1000;
    let (_dir, mut h) = harness(config);
    users(&h, &["a", "b"]);
    h.store().wait(|b| b.create_room("one".into(), 1, 0)).unwrap();
    h.store().wait(|b| b.create_room("two".into(), 1, 0)).unwrap();
    let (a, b) = (h.connect(0, user(1, "a")), h.connect(1, user(2, "b")));
    h.send(a, &ClientFrame::JoinRoom(RoomRequest { req: 1, room: 1 }));
    h.send(a, &ClientFrame::JoinRoom(RoomRequest { req: 2, room: 2 }));
    h.send(a, &ClientFrame::JoinRoom(RoomRequest { req: 3, room: 1 }));
    h.drive();
    h.send(b, &ClientFrame::JoinRoom(RoomRequest { req: 4, room: 1 }));
    h.drive();
    h.send(b, &ClientFrame::JoinRoom(RoomRequest { req: 5, room: 77 }));
    h.drive();
    assert_eq!(errors(&h.take(a)), vec![(2, ErrorCode::TooManyRooms), (3, ErrorCode::InvalidArgument)]);
    assert_eq!(errors(&h.take(b)), vec![(4, ErrorCode::RoomFull), (5, ErrorCode::NotFound)]);
    for req in 10..14 {
        h.send(a, &ClientFrame::SendRoom(SendRoom { req, room: 1, text: "hi" }));
    }
    h.send(a, &ClientFrame::SendRoom(SendRoom { req: 20, room: 1, text: "   " }));
    h.drive();
    let got = h.take(a);
    assert_eq!(acks(&got).len(), 2, "a burst of two");
    assert_eq!(
        errors(&got),
        vec![(12, ErrorCode::RateLimited), (13, ErrorCode::RateLimited), (20, ErrorCode::InvalidArgument)]
    );
    let retry = got
        .iter()
        .find_map(|g| if let Got::Error { req: 12, retry_after_ms, .. } = g { Some(*retry_after_ms) } else { None });
    assert_eq!(retry, Some(1000));
    h.send(
        a,
        &ClientFrame::History(HistoryRequest { req: 30, kind: ConvKind::Room, conv: 1, before: u64::MAX, limit: 0 }),
    );
    h.send(
        a,
        &ClientFrame::History(HistoryRequest { req: 31, kind: ConvKind::Room, conv: 9, before: u64::MAX, limit: 5 }),
    );
    h.drive();
    assert_eq!(errors(&h.take(a)), vec![(30, ErrorCode::InvalidArgument), (31, ErrorCode::NotFound)]);
}

#[test]
fn protocol_violations_close_the_session() {
    let (_dir, mut h) = harness(config());
    // A frame before Hello.
    let c = h.connect_raw(0, user(1, "u"));
    h.send(c, &ClientFrame::Ping(Ping { nonce: 1 }));
    h.drive();
    assert_eq!(errors(&h.client(c).got), vec![(0, ErrorCode::HandshakeRequired)]);
    assert_eq!(h.client(c).closed.as_ref().unwrap().reason, CloseReason::ProtocolViolation);
    // Another protocol version.
    let c = h.connect_raw(1, user(1, "u"));
    h.send(c, &ClientFrame::Hello(Hello { version: 9, kind: ClientKind::Bot, agent: "" }));
    h.drive();
    assert_eq!(errors(&h.client(c).got), vec![(0, ErrorCode::UnsupportedVersion)]);
    // The text PROTOCOL.md (section 3) quotes, exactly.
    assert!(
        h.client(c)
            .got
            .iter()
            .any(|g| matches!(g, Got::Error { message, .. } if message == "server speaks versions 1 to 3")),
        "{:?}",
        h.client(c).got
    );
    assert_eq!(h.client(c).closed.as_ref().unwrap().reason, CloseReason::ProtocolViolation);
    // An unknown opcode, a truncated message, a second Hello.
    for (bytes, code) in [
        (vec![0x7f, 0, 0, 0, 0], ErrorCode::UnknownOpcode),
        (vec![0x0C, 8, 0, 0, 0, 1, 2], ErrorCode::Malformed),
        (vec![0x01, 3, 0, 0, 0, 1, 0, 0], ErrorCode::Malformed),
    ] {
        let c = h.connect(2, user(1, "u"));
        h.drive();
        h.take(c);
        h.send_raw(c, &bytes);
        h.drive();
        assert_eq!(errors(&h.client(c).got).first().map(|e| e.1), Some(code), "{bytes:?}");
        assert_eq!(h.client(c).closed.as_ref().unwrap().reason, CloseReason::ProtocolViolation);
    }
    let c = h.connect(2, user(1, "u"));
    h.send(c, &ClientFrame::Hello(Hello { version: 1, kind: ClientKind::Bot, agent: "" }));
    h.drive();
    assert_eq!(errors(&h.client(c).got), vec![(0, ErrorCode::HandshakeRequired)]);
    // Ping works on a healthy session.
    let c = h.connect(0, user(1, "u"));
    h.send(c, &ClientFrame::Ping(Ping { nonce: 42 }));
    h.drive();
    assert!(h.client(c).got.iter().any(|g| matches!(g, Got::Pong { nonce: 42, .. })));
}

#[test]
fn kick_closes_every_session_of_the_user() {
    let (_dir, mut h) = harness(config());
    let sessions: Vec<_> = (0..3).map(|s| h.connect(s, user(5, "bad"))).collect();
    let other = h.connect(0, user(6, "good"));
    h.drive();
    h.kick(5, CloseReason::Banned, "spamming");
    h.drive();
    for s in sessions {
        let closed = h.client(s).closed.clone().unwrap();
        assert_eq!((closed.reason, closed.message.as_str()), (CloseReason::Banned, "spamming"));
    }
    assert!(h.client(other).closed.is_none());
}

/// Defects: a logout (or an address ban) left live sessions running. A session now knows the
/// login session it was opened with and the client's address: a logout ends exactly the
/// sessions of that login, an address ban those from the range, and a login session's expiry
/// ends its live sessions when it passes.
#[test]
fn logout_address_ban_and_expiry_end_exactly_the_sessions_they_name() {
    use pixelparty_engine::{Target, UserCtx};
    let (_dir, mut h) = harness(config());
    let at = |key: u64, addr: &str, expires_ms: u64| UserCtx {
        session: key,
        addr: addr.parse().unwrap(),
        expires_ms,
        ..user(5, "five")
    };
    let far = u64::MAX;
    let phone = h.connect(0, at(11, "10.0.0.1", far));
    let phone2 = h.connect(1, at(11, "10.0.0.1", far));
    let laptop = h.connect(2, at(22, "192.168.1.9", far));
    let short = h.connect(1, at(33, "172.16.0.1", h.now_ms + 60_000));
    let other = h.connect(0, UserCtx { session: 11, addr: "10.0.0.2".parse().unwrap(), ..user(6, "six") });
    h.drive();

    h.end_sessions(&Target::Session { user: 5, session: 11 }, CloseReason::SessionRevoked, "logged out");
    h.drive();
    for c in [phone, phone2] {
        assert_eq!(h.client(c).closed.as_ref().map(|c| c.reason), Some(CloseReason::SessionRevoked));
    }
    assert!(h.client(laptop).closed.is_none() && h.client(other).closed.is_none(), "other logins stay");

    h.end_sessions(&Target::Net("10.0.0.0/24".parse().unwrap()), CloseReason::Banned, "address banned");
    h.drive();
    assert_eq!(h.client(other).closed.as_ref().map(|c| c.reason), Some(CloseReason::Banned), "same range");
    assert!(h.client(laptop).closed.is_none() && h.client(short).closed.is_none());

    h.advance(59_999);
    h.drive();
    assert!(h.client(short).closed.is_none(), "not yet expired");
    h.advance(1);
    h.drive();
    let closed = h.client(short).closed.clone().unwrap();
    assert_eq!(closed.reason, CloseReason::SessionRevoked, "its login session expired");
    assert!(h.client(laptop).closed.is_none());
}

#[test]
fn a_16384_square_canvas_works() {
    use pixelparty_engine::EngineConfig;
    use pixelparty_protocol::Geometry;
    let mut config = EngineConfig::new(Geometry::new(16384, 16384, 4, 256).unwrap());
    config.shards = 2;
    config.cooldown_ms = 0;
    let (_dir, mut h) = harness(config);
    let c = h.connect(0, user(1, "u"));
    h.send(c, &ClientFrame::Paint(Paint { req: 1, x: 16383, y: 16383, colour: 9 }));
    h.send(c, &ClientFrame::Paint(Paint { req: 2, x: 16384 - 1, y: 0, colour: 3 }));
    h.drive();
    assert_eq!(acks(&h.take(c)).len(), 2);
    let tiles = h.shared.config.geometry.tile_count();
    assert_eq!(tiles, 4096);
    let last = h.canvas().remove(&(tiles - 1)).unwrap();
    assert_eq!(pixelparty_protocol::canvas::get_pixel(&last.0, 4, u16::MAX), 9);
}

#[test]
fn repeated_subscribes_share_one_catch_up() {
    let (_dir, mut h) = harness(config());
    let c = h.connect(0, user(1, "u"));
    h.drive();
    h.take(c);
    // 1,000 entries for the same tile, three times over: one whole-tile copy is made.
    let tiles = vec![TileCursor::new(5, u64::MAX); 1000];
    for _ in 0..3 {
        h.send(c, &ClientFrame::Subscribe(Subscribe { tiles: &tiles }));
    }
    h.drive();
    let got = h.take(c);
    assert_eq!(got.iter().filter(|g| matches!(g, Got::TileData { .. })).count(), 1);
    assert!(errors(&got).is_empty(), "{got:?}");
    let served: u64 =
        h.shared.metrics.iter().map(|m| m.catch_ups_served.load(std::sync::atomic::Ordering::Relaxed)).sum();
    assert_eq!(served, 1, "the home shard was asked once");
}

#[test]
fn catch_ups_are_paced_by_the_reader() {
    let mut config = config();
    // A whole tile is 512 bytes + 16: two of them fit half the queue.
    config.outbound_max_bytes = 4 * 528;
    assert_eq!(config.catch_ups_per_session(), 2);
    let (_dir, mut h) = harness(config);
    let c = h.connect(0, user(1, "u"));
    h.drive();
    h.take(c);
    h.set_stalled(c, true);
    subscribe_fresh(&mut h, c);
    h.drive();
    // Not reading: the server asked for a few tiles, then stopped while the queue is half full.
    let held = h.shards[0].queued_bytes();
    assert!(held <= 4 * 528, "a stalled reader holds at most its queue, not 16 tiles: {held}");
    h.set_stalled(c, false);
    h.drive();
    let got = h.take(c);
    let copies: Vec<u32> =
        got.iter().filter_map(|g| if let Got::TileData { tile, .. } = g { Some(*tile) } else { None }).collect();
    let mut sorted = copies.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..16).collect::<Vec<_>>(), "every tile exactly once, in the end");
    assert!(!got.iter().any(|g| matches!(g, Got::Resync(_))), "paced, so nothing was dropped");
    assert_converged(&mut h, c, "paced subscriber");
}

#[test]
fn requests_in_flight_per_session_are_bounded() {
    let (_dir, mut h) = harness(config());
    users(&h, &["u"]);
    h.store().wait(|b| b.create_room("r".into(), 1, 0)).unwrap();
    let c = h.connect(1, user(1, "u"));
    h.drive();
    h.take(c);
    // Room 1's home is shard 1 % 3 = 1, the session's own: still, every request is in flight
    // until the home shard's turn, so 100 at once exceed the bound.
    let mut bytes = bytes::BytesMut::new();
    for req in 1..=100 {
        ClientFrame::Who(RoomRequest { req, room: 1 }).encode(&mut bytes).unwrap();
    }
    h.send_raw(c, &bytes);
    h.drive();
    let got = h.take(c);
    let limit = pixelparty_engine::MAX_REQUESTS_IN_FLIGHT as usize;
    assert_eq!(acks(&got).len(), limit);
    let refused = errors(&got);
    assert_eq!(refused.len(), 100 - limit);
    assert!(refused.iter().all(|(_, code)| *code == ErrorCode::RateLimited));
    // Answered, they free their places.
    h.send(c, &ClientFrame::Who(RoomRequest { req: 200, room: 1 }));
    h.drive();
    assert_eq!(acks(&h.take(c)), vec![(200, 0)]);
}
