//! Every way a session loses its right to exist ends the live sessions it covers, and a
//! refused connection says why:
//! - a logout ends the WebSocket sessions opened with that token (`session_revoked`), not the
//!   user's other logins;
//! - an address ban ends the live sessions from that range (`banned`), and a new connection
//!   from it gets a 403 with a JSON error instead of a TCP reset;
//! - a banned user's WebSocket upgrade and API calls get 403 `banned` with the reason and the
//!   end of the ban, not 401 "session expired".
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use pixelparty_bench::client::{ClientError, ConnectOptions, Connection, Event};
use pixelparty_protocol::CloseReason;
use serde_json::json;

fn closing(e: &Event) -> Option<(CloseReason, String)> {
    if let Event::Closing { reason, message } = e { Some((*reason, message.clone())) } else { None }
}

async fn alive(c: &mut Connection, nonce: u64) {
    c.ping(nonce).await.unwrap();
    c.wait_for(|e| matches!(e, Event::Pong { nonce: n, .. } if *n == nonce).then_some(())).await.unwrap();
}

fn from(ip: &str) -> ConnectOptions {
    ConnectOptions { source_ip: Some(ip.parse().unwrap()), ..Default::default() }
}

#[tokio::test(flavor = "current_thread")]
async fn logout_ends_the_sessions_of_that_token_only() {
    let t = start(|_| {});
    let alice = t.user("alice").await;
    let second = t.api.login("alice", PASSWORD).await.unwrap();
    let mut first_ws = t.connect(&alice).await;
    let mut second_ws = t.connect(&second).await;
    alive(&mut first_ws, 1).await;
    assert_eq!(t.api.call("POST", "/logout", Some(&alice.token), None).await.unwrap().0, 204);
    let (reason, _) = first_ws.wait_for(closing).await.unwrap();
    assert_eq!(reason, CloseReason::SessionRevoked);
    alive(&mut second_ws, 2).await;
    let again = Connection::connect(t.addr(), &alice.token, ConnectOptions::default()).await.unwrap_err();
    assert_eq!(again.status(), Some(401), "the token is gone");
}

#[tokio::test(flavor = "current_thread")]
async fn an_address_ban_ends_live_sessions_and_refuses_with_a_403() {
    let t = start(|_| {});
    let bob = t.user("bob").await;
    let mut banned = Connection::connect(t.addr(), &bob.token, from("127.0.0.9")).await.unwrap();
    let mut spared = Connection::connect(t.addr(), &bob.token, from("127.0.0.10")).await.unwrap();
    alive(&mut banned, 1).await;
    t.admin_call("POST", "/bans/ip", json!({"cidr": "127.0.0.9", "reason": "abuse"})).await;
    assert_eq!(banned.wait_for(closing).await.unwrap(), (CloseReason::Banned, "abuse".to_string()));
    alive(&mut spared, 2).await;
    match Connection::connect(t.addr(), &bob.token, from("127.0.0.9")).await {
        Err(ClientError::Status { status, body }) => {
            assert_eq!(status, 403);
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["error"], "banned", "{body}");
        }
        Err(other) => panic!("expected a 403 with a JSON error, got {other}"),
        Ok(_) => panic!("a banned address connected"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_banned_user_is_told_banned_with_the_reason_and_the_end() {
    let t = start(|_| {});
    let carol = t.user("carol").await;
    let before = pixelparty_engine::now_ms();
    t.admin_call("POST", "/bans/user", json!({"username": "carol", "reason": "spam", "duration_s": 3600})).await;
    let upgrade = Connection::connect(t.addr(), &carol.token, ConnectOptions::default()).await.unwrap_err();
    let ClientError::Status { status, body } = upgrade else { panic!("expected an HTTP refusal, got {upgrade}") };
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, body["error"].as_str(), body["message"].as_str()), (403, Some("banned"), Some("spam")));
    let until = body["until_ms"].as_u64().unwrap();
    assert!(until >= before + 3_600_000 && until <= pixelparty_engine::now_ms() + 3_600_000, "{body}");
    let (status, account) = t.api.call("GET", "/account", Some(&carol.token), None).await.unwrap();
    assert_eq!((status, account["error"].as_str(), account["until_ms"].as_u64()), (403, Some("banned"), Some(until)));
    // GET /session answers 200 whatever the state, and says so.
    let session = t.api.call("GET", "/session", Some(&carol.token), None).await.unwrap();
    assert_eq!(session, (200, serde_json::json!({"user": null, "banned": {"reason": "spam", "until_ms": until}})));
    // A permanent ban says so with a null end.
    t.admin_call("POST", "/bans/user", json!({"username": "carol", "reason": "for good"})).await;
    let (status, account) = t.api.call("GET", "/account", Some(&carol.token), None).await.unwrap();
    assert_eq!((status, &account["until_ms"]), (403, &serde_json::Value::Null), "{account}");
}

// The same tests on PostgreSQL (a fresh database each; skipped without a server, failed
// under CI=true).
#[test]
fn logout_ends_the_sessions_of_that_token_only_on_postgres() {
    pixelparty_storage::testing::on_postgres(logout_ends_the_sessions_of_that_token_only);
}

#[test]
fn an_address_ban_ends_live_sessions_and_refuses_with_a_403_on_postgres() {
    pixelparty_storage::testing::on_postgres(an_address_ban_ends_live_sessions_and_refuses_with_a_403);
}

#[test]
fn a_banned_user_is_told_banned_with_the_reason_and_the_end_on_postgres() {
    pixelparty_storage::testing::on_postgres(a_banned_user_is_told_banned_with_the_reason_and_the_end);
}
