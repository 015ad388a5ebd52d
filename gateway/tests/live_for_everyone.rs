//! Protocol version 3 through real sockets: a logged-out visitor watches the canvas live (over
//! WebSocket and WebTransport) and may do nothing else, within `limits.max_visitors`; friend
//! requests, accepts, removals, blocks, new rooms and friends going online or offline arrive
//! as `Social` frames on every session concerned (and only there); the timelapse serves the
//! journal as chunks and `pixelparty export timelapse` films it; admins rewind an area and
//! read the audit log through the public API.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use pixelparty_bench::client::{ConnectOptions, Connection, Event, Replica, TransportKind};
use pixelparty_protocol::{ErrorCode, Role, SocialKind};
use serde_json::json;

fn social(e: &Event) -> Option<(SocialKind, u32, String)> {
    if let Event::Social { kind, id, name } = e { Some((*kind, *id, name.clone())) } else { None }
}

/// Waits for the next `Social` frame of `c`.
async fn next_social(c: &mut Connection) -> (SocialKind, u32, String) {
    c.wait_for(social).await.unwrap()
}

/// Everything `c` received up to the answer of a ping sent now (a barrier: what the server
/// queued for it before the ping arrives before the pong).
async fn drain(c: &mut Connection) -> Vec<Event> {
    c.ping(77).await.unwrap();
    let mut seen = Vec::new();
    c.collect_until(&mut seen, |e| matches!(e, Event::Pong { nonce: 77, .. })).await.unwrap();
    seen
}

#[tokio::test(flavor = "current_thread")]
async fn a_visitor_watches_live_and_does_nothing_else() {
    let t = start(|c| c.limits.max_visitors = 2);
    let alice = t.user("alice").await;
    let mut a = t.connect(&alice).await;
    let mut v = Connection::visitor(t.addr(), ConnectOptions::default()).await.unwrap();
    assert_eq!((v.welcome.user, v.welcome.role, v.welcome.name.as_str()), (0, Role::Visitor, ""));
    v.track(Replica::new(v.welcome.geometry));
    v.subscribe_all().await.unwrap();
    v.wait_for(|e| matches!(e, Event::TileData { tile: 15, .. }).then_some(())).await.unwrap();

    let req = a.paint(70, 5, 7).await.unwrap();
    let seq = a.wait_for(ack_of(req)).await.unwrap();
    v.wait_for(|e| matches!(e, Event::Pixels { last, .. } if *last == seq).then_some(())).await.unwrap();
    assert_eq!(v.replica.as_ref().unwrap().pixel(70, 5), Some(7), "the visitor saw the paint live");

    let paint = v.paint(1, 1, 3).await.unwrap();
    assert_eq!(v.wait_for(error_of(paint)).await.unwrap(), ErrorCode::Unauthorized);
    let room = t.api.create_room(&alice.token, "lobby").await.unwrap();
    let join = v.join(room).await.unwrap();
    assert_eq!(v.wait_for(error_of(join)).await.unwrap(), ErrorCode::Unauthorized);
    let said = v.say(room, "hi").await.unwrap();
    assert_eq!(v.wait_for(error_of(said)).await.unwrap(), ErrorCode::Unauthorized);
    assert!(
        drain(&mut v).await.iter().all(|e| social(e).is_none()),
        "a visitor never gets Social (not even room_created)"
    );
    let pixel = t.api.ok("GET", "/canvas/pixel?x=1&y=1", None, None).await.unwrap();
    assert_eq!(pixel["colour"], 0, "nothing painted by the visitor");

    // Over WebTransport too; then the limit of two visitors is reached.
    let wt = ConnectOptions { transport: TransportKind::Wt, ..ConnectOptions::default() };
    let w = Connection::visitor(t.addr(), wt.clone()).await.unwrap();
    assert_eq!(w.welcome.role, Role::Visitor);
    let third = Connection::visitor(t.addr(), ConnectOptions::default()).await.unwrap_err();
    assert!(third.to_string().contains("503"), "over limits.max_visitors: {third}");
    let third = Connection::visitor(t.addr(), wt).await.unwrap_err();
    assert!(third.to_string().contains("rejected"), "refused over WebTransport too (429): {third}");
    w.close().await.unwrap();
    // Credentials that are presented are checked, visitor or not; a page holding a stale
    // (HttpOnly) cookie learns so from GET /session, which clears it.
    let forged = Connection::connect(t.addr(), "forged", ConnectOptions::default()).await.unwrap_err();
    assert!(forged.to_string().contains("401"), "{forged}");
    let stale = t.api.raw("GET", "/session", &[("cookie", "pp_session=forged")], Vec::new()).await.unwrap();
    assert_eq!((stale.status, &stale.body[..]), (200, &br#"{"user":null}"#[..]));
    let cleared = stale.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(cleared.starts_with("pp_session=;") && cleared.contains("Max-Age=0"), "{cleared}");

    // A version 2 client cannot be a visitor (it could not read the role); as a user it can.
    let old = ConnectOptions { version: 2, ..ConnectOptions::default() };
    v.close().await.unwrap();
    // Both slots are given back once the server has seen both sessions end.
    let visitors = &t.app().visitors;
    let freed = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while visitors.load(std::sync::atomic::Ordering::Acquire) > 0 {
            tokio::task::yield_now().await;
        }
    });
    assert!(freed.await.is_ok(), "visitor slots were never given back");
    let refused = Connection::visitor(t.addr(), old.clone()).await.unwrap_err();
    assert!(refused.to_string().contains("protocol version 3"), "{refused}");
    let old_user = Connection::connect(t.addr(), &alice.token, old).await.unwrap();
    assert_eq!(old_user.welcome.role, Role::User);
}

#[tokio::test(flavor = "current_thread")]
async fn social_changes_and_online_status_arrive_live() {
    let t = start(|_| {});
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let mut a = t.connect(&alice).await;
    let mut b = t.connect(&bob).await;
    let old = ConnectOptions { version: 2, ..ConnectOptions::default() };
    let mut a_old = Connection::connect(t.addr(), &alice.token, old).await.unwrap();
    let add = |token: String, name: &'static str| {
        let api = t.api.clone();
        async move { api.ok("POST", "/users/add", Some(&token), Some(&json!({ "username": name }))).await.unwrap() }
    };

    add(alice.token.clone(), "bob").await;
    assert_eq!(next_social(&mut a).await, (SocialKind::RequestSent, bob.id, "bob".into()));
    assert_eq!(next_social(&mut b).await, (SocialKind::FriendRequest, alice.id, "alice".into()));
    add(bob.token.clone(), "alice").await;
    assert_eq!(next_social(&mut a).await, (SocialKind::FriendAdded, bob.id, "bob".into()));
    assert_eq!(next_social(&mut b).await, (SocialKind::FriendAdded, alice.id, "alice".into()));
    let friends = t.api.ok("GET", "/friends", Some(&alice.token), None).await.unwrap();
    assert_eq!(friends["friends"][0]["username"], "bob");
    assert_eq!(friends["friends"][0]["online"], true, "bob has a session open");

    // Bob's only session ends: alice is told, and the list agrees; he comes back.
    b.close().await.unwrap();
    assert_eq!(next_social(&mut a).await, (SocialKind::Offline, bob.id, "bob".into()));
    let friends = t.api.ok("GET", "/friends", Some(&alice.token), None).await.unwrap();
    assert_eq!(friends["friends"][0]["online"], false);
    let b = t.connect(&bob).await;
    assert_eq!(next_social(&mut a).await, (SocialKind::Online, bob.id, "bob".into()));
    // A second tab changes nothing; closing one of two leaves him online.
    let b2 = t.connect(&bob).await;
    b2.close().await.unwrap();
    assert!(drain(&mut a).await.iter().all(|e| social(e).is_none()), "no online/offline for a second tab");
    // A reload (closed, then open again within the grace) tells nothing either.
    b.close().await.unwrap();
    let mut b = t.connect(&bob).await;

    // A block ends the friendship for both and tells the blocker's other sessions.
    let blocked =
        t.api.ok("POST", "/users/block", Some(&alice.token), Some(&json!({ "username": "bob" }))).await.unwrap();
    assert_eq!(blocked, json!({ "ended": "friend" }));
    assert_eq!(next_social(&mut a).await, (SocialKind::FriendRemoved, bob.id, "bob".into()));
    assert_eq!(next_social(&mut a).await, (SocialKind::Blocked, bob.id, "bob".into()));
    assert_eq!(next_social(&mut b).await, (SocialKind::FriendRemoved, alice.id, "alice".into()));
    assert!(drain(&mut b).await.iter().all(|e| social(e).is_none()), "the blocked user is not told of the block");
    t.api.ok("POST", "/users/unblock", Some(&alice.token), Some(&json!({ "username": "bob" }))).await.unwrap();
    assert_eq!(next_social(&mut a).await, (SocialKind::Unblocked, bob.id, "bob".into()));
    t.api.ok("POST", "/users/unblock", Some(&alice.token), Some(&json!({ "username": "bob" }))).await.unwrap();
    assert!(drain(&mut a).await.iter().all(|e| social(e).is_none()), "unblocking again changes nothing: no frame");

    // A request declined (removed) is gone for both; a new room reaches everyone logged in.
    add(carol.token.clone(), "alice").await;
    assert_eq!(next_social(&mut a).await, (SocialKind::FriendRequest, carol.id, "carol".into()));
    t.api.ok("POST", "/users/remove", Some(&alice.token), Some(&json!({ "username": "carol" }))).await.unwrap();
    assert_eq!(next_social(&mut a).await, (SocialKind::FriendRemoved, carol.id, "carol".into()));
    let room = t.api.create_room(&carol.token, "pixel art").await.unwrap();
    assert_eq!(next_social(&mut a).await, (SocialKind::RoomCreated, room, "pixel art".into()));
    assert_eq!(next_social(&mut b).await, (SocialKind::RoomCreated, room, "pixel art".into()));

    assert!(
        drain(&mut a_old).await.iter().all(|e| social(e).is_none()),
        "a version 2 session never gets a frame it cannot decode"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_timelapse_serves_the_journal_and_exports_it() {
    let t = start(|_| {});
    let alice = t.user("alice").await;
    let mut a = t.connect(&alice).await;
    let empty = t.api.ok("GET", "/canvas/timelapse", None, None).await.unwrap();
    assert_eq!((empty["last_seq"].as_u64(), empty["chunks"].as_u64()), (Some(0), Some(0)));
    assert_eq!(t.api.raw("GET", "/canvas/timelapse/0", &[], Vec::new()).await.unwrap().status, 404);

    let painted = [(3u16, 4u16, 5u8), (200, 100, 9), (3, 4, 2)];
    let mut seqs = Vec::new();
    for (x, y, c) in painted {
        let req = a.paint(x, y, c).await.unwrap();
        seqs.push(a.wait_for(ack_of(req)).await.unwrap());
    }
    let info = t.api.ok("GET", "/canvas/timelapse", None, None).await.unwrap();
    assert_eq!(info["first_seq"], 1);
    assert_eq!(info["last_seq"], seqs[2]);
    assert_eq!(info["complete"], true);
    assert_eq!((info["chunks"].as_u64(), info["chunk_updates"].as_u64()), (Some(1), Some(16384)));
    assert_eq!((info["width"].as_u64(), info["palette"].as_array().unwrap().len()), (Some(256), 16));

    let r = t.api.raw("GET", "/canvas/timelapse/0", &[], Vec::new()).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.headers.get("cache-control").unwrap(), "public, max-age=1", "the last chunk is not whole yet");
    let entries = pixelparty_gateway::timelapse::decode_chunk(&r.body).unwrap();
    let got: Vec<(u64, u16, u16, u8)> = entries.iter().map(|e| (e.seq, e.x, e.y, e.colour)).collect();
    let want: Vec<(u64, u16, u16, u8)> = seqs.iter().zip(painted).map(|(s, (x, y, c))| (*s, x, y, c)).collect();
    assert_eq!(got, want, "every update in order");
    assert!(entries.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
    let gz = t.api.raw("GET", "/canvas/timelapse/0", &[("accept-encoding", "gzip")], Vec::new()).await.unwrap();
    assert_eq!(gz.headers.get("content-encoding").unwrap(), "gzip");
    assert_eq!((t.api.raw("GET", "/canvas/timelapse/1", &[], Vec::new()).await.unwrap().status), 404);
    assert_eq!((t.api.raw("GET", "/canvas/timelapse/x", &[], Vec::new()).await.unwrap().status), 400);

    // The binary films it from the running server: 4 frames, the last showing all three paints.
    let out = t.dir.path().join("film.gif");
    let binary = env!("CARGO_BIN_EXE_pixelparty");
    let status = std::process::Command::new(binary)
        .args(["export", "timelapse", "--url", &format!("http://{}", t.addr()), "--fps", "2", "--seconds", "2"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::Indexed);
    let mut dec = opts.read_info(std::fs::File::open(&out).unwrap()).unwrap();
    let mut last = Vec::new();
    let mut frames = 0;
    while let Some(f) = dec.read_next_frame().unwrap() {
        last = f.buffer.to_vec();
        frames += 1;
    }
    assert_eq!(frames, 4);
    assert_eq!((last[4 * 256 + 3], last[100 * 256 + 200]), (2, 9), "the last frame is the canvas now");
}

#[tokio::test(flavor = "current_thread")]
async fn admins_rewind_an_area_and_read_the_audit_log() {
    let t = start(|_| {});
    let root = t.admin_user("root").await;
    let raider = t.user("raider").await;
    let mut r = t.connect(&raider).await;
    let req = r.paint(10, 10, 4).await.unwrap();
    r.wait_for(ack_of(req)).await.unwrap();
    let before_raid =
        t.api.ok("GET", "/canvas/pixel?x=10&y=10", None, None).await.unwrap()["time_ms"].as_u64().unwrap();
    // The raid comes after that moment (a later millisecond), inside and outside the area.
    while pixelparty_engine::now_ms() <= before_raid {
        tokio::task::yield_now().await;
    }
    let mut raid = Vec::new();
    for (x, y) in [(10u16, 10u16), (11, 10), (40, 40)] {
        let req = r.paint(x, y, 1).await.unwrap();
        raid.push(r.wait_for(ack_of(req)).await.unwrap());
    }
    let body = json!({ "at_ms": before_raid, "rect": { "x": 0, "y": 0, "width": 32, "height": 32 } });
    let (status, refused) = t.api.call("POST", "/canvas/rewind", Some(&raider.token), Some(&body)).await.unwrap();
    assert_eq!((status, refused["error"].as_str()), (403, Some("forbidden")));
    let report = t.api.ok("POST", "/canvas/rewind", Some(&root.token), Some(&body)).await.unwrap();
    assert_eq!((report["planned"].as_u64(), report["restored"].as_u64()), (Some(2), Some(2)), "{report}");
    let pixel = |x: u16, y: u16| {
        let api = t.api.clone();
        async move { api.ok("GET", &format!("/canvas/pixel?x={x}&y={y}"), None, None).await.unwrap()["colour"].clone() }
    };
    assert_eq!((pixel(10, 10).await, pixel(11, 10).await, pixel(40, 40).await), (json!(4), json!(0), json!(1)));
    let future = json!({ "at_ms": u64::MAX / 2 });
    assert_eq!(t.api.call("POST", "/canvas/rewind", Some(&root.token), Some(&future)).await.unwrap().0, 400);

    t.api
        .ok("POST", "/users/ban", Some(&root.token), Some(&json!({ "username": "raider", "reason": "raid" })))
        .await
        .unwrap();
    let audit = t.api.ok("GET", "/audit?limit=10", Some(&root.token), None).await.unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(&actions[..2], ["ban_user", "rewind"], "newest first: {audit}");
    assert_eq!((&entries[0]["target_name"], &entries[1]["target"]), (&json!("raider"), &json!("canvas")), "{audit}");
    let detail = entries[1]["detail"].as_str().unwrap();
    assert!(detail.starts_with("to 20") && detail.contains("2 restored"), "a readable moment: {detail}");
    assert!(entries[..2].iter().all(|e| e["actor_name"] == "root" && e["actor"] == root.id), "{audit}");
    let older = entries[0]["seq"].as_u64().unwrap();
    let page = t.api.ok("GET", &format!("/audit?before={older}&limit=1"), Some(&root.token), None).await.unwrap();
    assert_eq!(page["entries"][0]["action"], "rewind", "paging with before");
    let (status, _) = t.api.call("GET", "/audit", Some(&raider.token), None).await.unwrap();
    assert!(status == 401 || status == 403, "the banned raider reads nothing: {status}");
}
