//! Sign up, log in, open a WebSocket, paint: a second client sees the pixel; the paint shows
//! up in the snapshot, the PNG and the pixel inspector; the cooldown refuses a second paint.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use pixelparty_bench::client::{Event, Replica};
use pixelparty_protocol::ErrorCode;

#[tokio::test(flavor = "current_thread")]
async fn paint_reaches_another_client_and_the_snapshot() {
    let t = start(|c| c.canvas.cooldown_ms = 60_000);
    t.user("alice").await;
    let bob = t.user("bob").await;
    let alice = t.api.login("alice", PASSWORD).await.unwrap();
    let mut a = t.connect(&alice).await;
    let mut b = t.connect(&bob).await;
    assert_eq!(a.welcome.geometry.width(), 256);
    assert_eq!(a.welcome.cooldown_ms, 60_000);
    b.track(Replica::new(b.welcome.geometry));
    b.subscribe_all().await.unwrap();
    b.wait_for(|e| matches!(e, Event::TileData { tile: 15, .. }).then_some(())).await.unwrap();

    let req = a.paint(70, 5, 7).await.unwrap();
    let seq = a.wait_for(ack_of(req)).await.unwrap();
    assert!(seq > 0);
    let cooldown = a
        .wait_for(|e| if let Event::Cooldown { ready_at_ms, .. } = e { Some(*ready_at_ms) } else { None })
        .await
        .unwrap();
    assert!(cooldown > a.welcome.server_time_ms);
    b.wait_for(|e| matches!(e, Event::Pixels { last, .. } if *last == seq).then_some(())).await.unwrap();
    assert_eq!(b.replica.as_ref().unwrap().pixel(70, 5), Some(7));

    let again = a.paint(71, 5, 7).await.unwrap();
    assert_eq!(a.wait_for(error_of(again)).await.unwrap(), ErrorCode::Cooldown);

    // The inspector names the painter; the snapshot (refreshed every 50 ms) holds the pixel.
    let (status, pixel) = t.api.call("GET", "/canvas/pixel?x=70&y=5", None, None).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(pixel["colour"], 7);
    assert_eq!(pixel["user"]["username"], "alice");
    let mut snap = t.api.snapshot().await.unwrap();
    for _ in 0..200 {
        if Replica::from_snapshot(snap.clone()).pixel(70, 5) == Some(7) {
            break;
        }
        tokio::task::yield_now().await;
        snap = t.api.snapshot().await.unwrap();
    }
    assert_eq!(Replica::from_snapshot(snap.clone()).pixel(70, 5), Some(7));
    // ETag and 304.
    let r = t.api.raw("GET", "/canvas/snapshot", &[], Vec::new()).await.unwrap();
    let etag = r.headers.get("etag").unwrap().to_str().unwrap().to_owned();
    assert_eq!(r.headers.get("cache-control").unwrap(), "public, max-age=1");
    let r = t.api.raw("GET", "/canvas/snapshot", &[("if-none-match", &etag)], Vec::new()).await.unwrap();
    assert!(r.status == 304 || r.headers.get("etag").unwrap().to_str().unwrap() != etag);
    let png = t.api.raw("GET", "/canvas.png", &[], Vec::new()).await.unwrap();
    assert_eq!(png.status, 200);
    assert_eq!(&png.body[1..4], b"PNG");
}

// The same tests on PostgreSQL (a fresh database each; skipped without a server, failed
// under CI=true).
#[test]
fn paint_reaches_another_client_and_the_snapshot_on_postgres() {
    pixelparty_storage::testing::on_postgres(paint_reaches_another_client_and_the_snapshot);
}
