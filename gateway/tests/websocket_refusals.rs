//! WebSocket refusals: no session (401), a foreign Origin (403), a text message (close 1003),
//! a malformed frame (Error frame, then close 1002), an oversize message (close 1009); the
//! session's connection is the only one affected.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use pixelparty_bench::client::{ClientError, ConnectOptions, Connection, Event};
use pixelparty_protocol::{CloseReason, ErrorCode};

#[tokio::test(flavor = "current_thread")]
async fn websocket_refusals() {
    let t = start(|_| {});
    let alice = t.user("alice").await;
    let err = Connection::connect(t.addr(), "not-a-token", ConnectOptions::default()).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    let foreign = ConnectOptions { origin: Some("https://evil.example".into()), ..Default::default() };
    assert_eq!(Connection::connect(t.addr(), &alice.token, foreign).await.unwrap_err().status(), Some(403));
    let same = ConnectOptions { origin: Some(format!("http://{}", t.addr())), ..Default::default() };
    let bystander = Connection::connect(t.addr(), &alice.token, same).await.unwrap();

    let mut c = t.connect(&alice).await;
    c.send_text("hello?").await.unwrap();
    let err = c.recv().await.unwrap_err();
    assert!(matches!(&err, ClientError::Closed(why) if why.starts_with("1003")), "{err}");

    let mut c = t.connect(&alice).await;
    c.send_raw(vec![0x7f, 0, 0, 0, 0]).await.unwrap();
    let code = c.wait_for(|e| if let Event::Error { code, .. } = e { Some(*code) } else { None }).await.unwrap();
    assert_eq!(code, ErrorCode::UnknownOpcode);
    let closing =
        c.wait_for(|e| if let Event::Closing { reason, .. } = e { Some(*reason) } else { None }).await.unwrap();
    assert_eq!(closing, CloseReason::ProtocolViolation);
    let err = c.recv().await.unwrap_err();
    assert!(matches!(&err, ClientError::Closed(why) if why.starts_with("1002")), "{err}");

    let mut c = t.connect(&alice).await;
    c.send_raw(vec![0u8; 300 * 1024]).await.unwrap();
    let err = c.recv().await.unwrap_err();
    assert!(matches!(&err, ClientError::Closed(why) if why.starts_with("1009")), "{err}");

    // The bystander on the same account is unaffected.
    let mut b = bystander;
    b.ping(3).await.unwrap();
    b.wait_for(|e| matches!(e, Event::Pong { nonce: 3, .. }).then_some(())).await.unwrap();
}

// The same tests on PostgreSQL (a fresh database each; skipped without a server, failed
// under CI=true).
#[test]
fn websocket_refusals_on_postgres() {
    pixelparty_storage::testing::on_postgres(websocket_refusals);
}
