//! Protocol version 3 in the engine: a logged-out visitor watches the canvas live and may do
//! nothing else; `Social` frames reach exactly the version 3 sessions of the users they name
//! (or every logged-in one), on every shard.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use pixelparty_engine::UserCtx;
use pixelparty_engine::harness::{Got, user};
use pixelparty_protocol::client::{Hello, HistoryRequest, Paint, RoomRequest, SendRoom};
use pixelparty_protocol::{ClientFrame, ClientKind, CloseReason, ConvKind, ErrorCode, Role, SocialKind};

fn visitor() -> UserCtx {
    UserCtx::visitor(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn hello(version: u16) -> ClientFrame<'static> {
    ClientFrame::Hello(Hello { version, kind: ClientKind::Browser, agent: "test" })
}

fn socials(got: &[Got]) -> Vec<(SocialKind, u32, String)> {
    got.iter()
        .filter_map(|g| match g {
            Got::Social { kind, id, name } => Some((*kind, *id, name.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_visitor_watches_the_canvas_live_and_may_do_nothing_else() {
    let (_dir, mut h) = harness(config());
    users(&h, &["ann"]);
    let painter = h.connect(0, user(1, "ann"));
    let v = h.connect(1, visitor());
    h.drive();
    let got = h.take(v);
    let Some(Got::Welcome { user, role, name, ready_at_ms, .. }) = got.first() else { panic!("welcome: {got:?}") };
    assert_eq!((*user, *role, name.as_str(), *ready_at_ms), (0, Role::Visitor, "", 0));

    subscribe_fresh(&mut h, v);
    h.drive();
    h.send(painter, &ClientFrame::Paint(Paint { req: 1, x: 40, y: 3, colour: 5 }));
    h.send(painter, &ClientFrame::Paint(Paint { req: 2, x: 100, y: 100, colour: 2 }));
    h.drive();
    assert_eq!(acks(&h.take(painter)).len(), 2);
    assert_converged(&mut h, v, "visitor after two paints");
    assert!(h.client(v).got.iter().any(|g| matches!(g, Got::Pixels { .. })), "the paints arrived live");

    h.send(v, &ClientFrame::Paint(Paint { req: 7, x: 1, y: 1, colour: 1 }));
    h.send(v, &ClientFrame::JoinRoom(RoomRequest { req: 8, room: 1 }));
    h.send(v, &ClientFrame::SendRoom(SendRoom { req: 9, room: 1, text: "hi" }));
    let page = HistoryRequest { req: 10, kind: ConvKind::Room, conv: 1, before: u64::MAX, limit: 5 };
    h.send(v, &ClientFrame::History(page));
    h.drive();
    let got = h.take(v);
    assert_eq!(
        errors(&got),
        [
            (7, ErrorCode::Unauthorized),
            (8, ErrorCode::Unauthorized),
            (9, ErrorCode::Unauthorized),
            (10, ErrorCode::Unauthorized)
        ]
    );
    let messages: Vec<&str> = got
        .iter()
        .filter_map(|g| if let Got::Error { message, .. } = g { Some(message.as_str()) } else { None })
        .collect();
    assert_eq!(messages[0], "log in to paint");
    assert!(h.client(v).closed.is_none(), "a refused frame leaves the visitor connected");
    assert_eq!(h.canvas().values().filter(|(_, seq)| *seq > 0).count(), 2, "the visitor painted nothing");
}

#[test]
fn a_visitor_must_speak_version_3() {
    let (_dir, mut h) = harness(config());
    let v = h.connect_raw(0, visitor());
    h.send(v, &hello(2));
    h.drive();
    let got = h.take(v);
    assert_eq!(errors(&got), [(0, ErrorCode::UnsupportedVersion)]);
    assert!(!got.iter().any(|g| matches!(g, Got::Welcome { .. })), "no Welcome with a role version 2 lacks");
    assert_eq!(h.client(v).closed.as_ref().map(|c| c.reason), Some(CloseReason::ProtocolViolation));

    let (_dir, mut h) = harness(config());
    let old_user = h.connect_raw(0, user(1, "ann"));
    h.send(old_user, &hello(2));
    h.drive();
    assert!(matches!(h.take(old_user).first(), Some(Got::Welcome { .. })), "logged-in version 2 sessions still work");
}

#[test]
fn social_frames_reach_the_version_3_sessions_of_the_named_users() {
    let (_dir, mut h) = harness(config());
    users(&h, &["ann", "bob", "cy"]);
    let ann_new = h.connect(0, user(1, "ann"));
    let ann_tab2 = h.connect(2, user(1, "ann"));
    let ann_old = h.connect_raw(1, user(1, "ann"));
    h.send(ann_old, &hello(2));
    let bob = h.connect(1, user(2, "bob"));
    let cy = h.connect(2, user(3, "cy"));
    let v = h.connect(0, visitor());
    h.drive();
    for c in [ann_new, ann_tab2, ann_old, bob, cy, v] {
        h.take(c);
    }

    h.social(Some(&[1]), SocialKind::FriendRequest, 2, "bob");
    h.social(Some(&[1, 2]), SocialKind::FriendAdded, 3, "cy");
    h.drive();
    let request = (SocialKind::FriendRequest, 2, "bob".to_string());
    let added = (SocialKind::FriendAdded, 3, "cy".to_string());
    assert_eq!(socials(&h.take(ann_new)), [request.clone(), added.clone()]);
    assert_eq!(socials(&h.take(ann_tab2)), [request, added.clone()], "every session of the user, on any shard");
    assert_eq!(socials(&h.take(bob)), [added]);
    for (c, who) in [(ann_old, "a version 2 session"), (cy, "a user not named"), (v, "a visitor")] {
        assert!(socials(&h.take(c)).is_empty(), "{who} got a Social frame");
    }

    h.social(None, SocialKind::RoomCreated, 300, "pixel art");
    h.drive();
    let room = vec![(SocialKind::RoomCreated, 300, "pixel art".to_string())];
    for c in [ann_new, ann_tab2, bob, cy] {
        assert_eq!(socials(&h.take(c)), room, "every logged-in version 3 session");
    }
    assert!(socials(&h.take(ann_old)).is_empty() && socials(&h.take(v)).is_empty(), "not version 2, not visitors");
}
