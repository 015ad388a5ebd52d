//! A restart keeps users, sessions, rooms, messages, friendships and pixels.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use pixelparty_bench::client::{Event, Replica};
use serde_json::json;

#[tokio::test(flavor = "current_thread")]
async fn everything_survives_a_restart() {
    let t = start(|c| c.storage.durability = "sync".into());
    let alice = t.user("alice").await;
    let bob = t.user("bob").await;
    let room = t.api.create_room(&alice.token, "keep").await.unwrap();
    t.api.ok("POST", "/users/add", Some(&alice.token), Some(&json!({"username": "bob"}))).await.unwrap();
    let mut a = t.connect(&alice).await;
    let req = a.join(room).await.unwrap();
    a.wait_for(ack_of(req)).await.unwrap();
    let req = a.say(room, "remember me").await.unwrap();
    a.wait_for(ack_of(req)).await.unwrap();
    let mut painted = Vec::new();
    for i in 0..20u16 {
        let req = a.paint(i * 3, 200, (i % 15 + 1) as u8).await.unwrap();
        painted.push((i * 3, (i % 15 + 1) as u8, a.wait_for(ack_of(req)).await.unwrap()));
    }
    drop(a);

    let t = t.restart();
    // The old session token still works; the room, its message, the request and pixels remain.
    let account = t.api.ok("GET", "/account", Some(&alice.token), None).await.unwrap();
    assert_eq!(account["username"], "alice");
    assert_eq!(t.api.ok("GET", "/friends", Some(&bob.token), None).await.unwrap()["incoming"][0]["username"], "alice");
    let page = t.api.ok("GET", &format!("/rooms/{room}/messages"), Some(&bob.token), None).await.unwrap();
    assert_eq!(page["messages"][0]["text"], "remember me");
    let snap = t.api.snapshot().await.unwrap();
    let replica = Replica::from_snapshot(snap);
    for (x, colour, _) in &painted {
        assert_eq!(replica.pixel(u32::from(*x), 200), Some(*colour), "pixel ({x}, 200)");
    }
    // New paints continue the sequence.
    let mut a = t.connect(&alice).await;
    let req = a.paint(1, 1, 1).await.unwrap();
    let seq = a.wait_for(ack_of(req)).await.unwrap();
    assert!(seq > painted.last().unwrap().2, "sequences continue after a restart");
    let req = a.join(room).await.unwrap();
    assert_eq!(a.wait_for(ack_of(req)).await.unwrap(), 1);
    let req = a.say(room, "after").await.unwrap();
    let mut seen = Vec::new();
    a.collect_until(&mut seen, |e| matches!(e, Event::Ack { req: r, value: 2 } if *r == req)).await.unwrap();
    if !seen.iter().any(|e| matches!(e, Event::Room { seq: 2, .. })) {
        a.collect_until(&mut seen, |e| matches!(e, Event::Room { seq: 2, .. })).await.unwrap();
    }
    assert!(seen.iter().any(|e| matches!(e, Event::Room { seq: 2, text, .. } if text == "after")), "{seen:?}");
}

// The same tests on PostgreSQL (a fresh database each; skipped without a server, failed
// under CI=true).
#[test]
fn everything_survives_a_restart_on_postgres() {
    pixelparty_storage::testing::on_postgres(everything_survives_a_restart);
}
