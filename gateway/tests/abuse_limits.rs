//! The limits that keep one client from hurting the rest, through real sockets: connections per
//! address, slow request bodies, oversized names, room creation, a role change ending live
//! sessions, and clients behind a trusted reverse proxy (bans and login limits per forwarded
//! address).
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use pixelparty_bench::client::{Event, TransportKind};
use pixelparty_protocol::CloseReason;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request` on a fresh connection and returns what came back before the server closed
/// or stopped (at most one read's worth).
async fn first_read(stream: &mut TcpStream, request: &[u8]) -> String {
    if stream.write_all(request).await.is_err() {
        return String::new();
    }
    let mut buf = vec![0u8; 4096];
    match stream.read(&mut buf).await {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(_) => String::new(),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn connections_per_address_are_capped() {
    let t = start(|c| c.server.max_connections_per_ip = 3);
    // Four connections held open at once (keep-alive): whichever the server took last is
    // closed before any work, the other three are served.
    let mut streams = Vec::new();
    for _ in 0..4 {
        streams.push(TcpStream::connect(t.addr()).await.unwrap());
    }
    let mut answers = Vec::new();
    for s in &mut streams {
        answers.push(first_read(s, b"GET /canvas HTTP/1.1\r\nhost: test\r\n\r\n").await);
    }
    let served = answers.iter().filter(|a| a.starts_with("HTTP/1.1 200")).count();
    assert_eq!(served, 3, "{answers:?}");
    assert_eq!(answers.iter().filter(|a| a.is_empty()).count(), 1, "{answers:?}");
    assert_eq!(t.app().metrics.accept_per_ip.get(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_trickled_body_gets_408() {
    let t = start(|c| c.server.request_timeout_ms = 300);
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    let head = "POST /login HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n";
    let answer = first_read(&mut s, format!("{head}{{\"user").as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
}

#[tokio::test(flavor = "current_thread")]
async fn oversized_names_and_room_creation_limits() {
    let t = start(|c| {
        c.limits.room_creates_per_user_per_hour = 2;
        c.limits.max_rooms = 4;
    });
    let api = &t.api;
    let alice = t.user("alice").await;
    let root = t.admin_user("root").await;
    let (a, r) = (Some(alice.token.as_str()), Some(root.token.as_str()));

    // 'İ' lowercases to three bytes: folded, this name is a ~98 KB key. It is no account's.
    let huge = "İ".repeat(32_000);
    let (s, v) =
        api.call("POST", "/login", None, Some(&json!({"username": huge, "password": PASSWORD}))).await.unwrap();
    assert_eq!((s, v["error"].as_str()), (401, Some("unauthorized")));
    assert_eq!(api.call("POST", "/users/add", a, Some(&json!({"username": huge}))).await.unwrap().0, 404);
    assert_eq!(api.call("POST", "/users/block", a, Some(&json!({"username": huge}))).await.unwrap().0, 404);
    assert_eq!(api.call("GET", "/account", a, None).await.unwrap().0, 200, "the server is still up");

    // Two rooms an hour for a user; the admin is exempt but not from the server's maximum.
    for name in ["one", "two"] {
        assert_eq!(api.call("POST", "/rooms", a, Some(&json!({ "name": name }))).await.unwrap().0, 201);
    }
    let (s, v) = api.call("POST", "/rooms", a, Some(&json!({"name": "three"}))).await.unwrap();
    assert_eq!((s, v["error"].as_str()), (429, Some("rate_limited")));
    for name in ["three", "four"] {
        assert_eq!(api.call("POST", "/rooms", r, Some(&json!({ "name": name }))).await.unwrap().0, 201);
    }
    let (s, v) = api.call("POST", "/rooms", r, Some(&json!({"name": "five"}))).await.unwrap();
    assert_eq!((s, v["error"].as_str()), (409, Some("room_limit")));
}

#[tokio::test(flavor = "current_thread")]
async fn a_role_change_ends_the_users_sessions() {
    let t = start(|_| {});
    let root = t.admin_user("root").await;
    let mut conn = t.connect(&root).await;
    t.admin_call("POST", "/users/role", json!({"username": "root", "role": "user"})).await;
    let reason = conn
        .wait_for(|e| match e {
            Event::Closing { reason, .. } => Some(*reason),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(reason, CloseReason::Kicked);
    // Reconnecting, the session carries the new role.
    let again = t.api.login("root", PASSWORD).await.unwrap();
    assert_eq!(t.connect(&again).await.welcome.role, pixelparty_protocol::Role::User);
}

#[tokio::test(flavor = "current_thread")]
async fn clients_behind_a_trusted_proxy_are_told_apart() {
    let t = start(|c| {
        c.server.trusted_proxies = vec!["127.0.0.0/8".into()];
        c.auth.login_per_ip_per_min = 2;
    });
    t.user("alice").await;
    t.admin_call("POST", "/bans/ip", json!({"cidr": "203.0.113.0/24", "reason": "abuse"})).await;
    let get = |xff: Option<&'static str>| {
        let api = t.api.clone();
        async move {
            let headers: Vec<(&str, &str)> = xff.map(|v| vec![("x-forwarded-for", v)]).unwrap_or_default();
            let r = api.raw("GET", "/canvas", &headers, Vec::new()).await.unwrap();
            (r.status, serde_json::from_slice::<serde_json::Value>(&r.body).unwrap_or_default())
        }
    };
    let (s, v) = get(Some("203.0.113.7")).await;
    assert_eq!((s, v["error"].as_str()), (403, Some("banned")), "a banned client through the proxy");
    assert_eq!(get(Some("198.51.100.1")).await.0, 200);
    assert_eq!(get(None).await.0, 200, "the proxy itself");
    // Entries left of the last untrusted one are the client's own claims.
    assert_eq!(get(Some("203.0.113.7, 198.51.100.1")).await.0, 200);
    assert_eq!(get(Some("198.51.100.1, 203.0.113.7")).await.0, 403);

    // Login limits apply per forwarded client (2 a minute here), not to the proxy as a whole.
    let login = |xff: &'static str| {
        let api = t.api.clone();
        async move {
            let body = serde_json::to_vec(&json!({"username": "alice", "password": "wrong password"})).unwrap();
            let headers = [("content-type", "application/json"), ("x-forwarded-for", xff)];
            api.raw("POST", "/login", &headers, body).await.unwrap().status
        }
    };
    assert_eq!(
        [login("198.51.100.1").await, login("198.51.100.1").await, login("198.51.100.1").await],
        [401, 401, 429]
    );
    assert_eq!(login("198.51.100.2").await, 401, "another client behind the same proxy");
}

#[tokio::test(flavor = "current_thread")]
async fn a_websocket_client_that_stops_reading_is_cut_off_by_the_write_deadline() {
    stops_reading(TransportKind::Ws).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_webtransport_client_that_stops_reading_is_cut_off_by_the_write_deadline() {
    stops_reading(TransportKind::Wt).await;
}

async fn stops_reading(transport: TransportKind) {
    use pixelparty_bench::client::{ConnectOptions, Connection};

    let t = start(|c| c.server.write_timeout_ms = 200);
    let talker_account = t.user("talker").await;
    let sleeper_account = t.user("sleeper").await;
    let room = t.api.create_room(&talker_account.token, "flood").await.unwrap();
    // A fixed 16 KiB receive window: what the server can push into a socket that is not read
    // is its own send buffer and no more (over QUIC, the stream's flow-control window).
    let options = ConnectOptions { socket_recv_buffer: Some(16 * 1024), transport, ..Default::default() };
    let mut sleeper = Connection::connect(t.addr(), &sleeper_account.token, options).await.unwrap();
    let req = sleeper.join(room).await.unwrap();
    sleeper.wait_for(ack_of(req)).await.unwrap();
    let mut talker =
        Connection::connect(t.addr(), &talker_account.token, ConnectOptions { transport, ..Default::default() })
            .await
            .unwrap();
    let req = talker.join(room).await.unwrap();
    talker.wait_for(ack_of(req)).await.unwrap();

    // The sleeper reads nothing more; the talker fills the room with the longest messages
    // until the server gives up on the sleeper's socket, 32 at a time (a room acknowledges in
    // order, so the last acknowledgement of a window vouches for the window). The talker,
    // reading, is served throughout.
    let text = "z".repeat(pixelparty_protocol::limits::MAX_TEXT_BYTES);
    let metrics = &t.app().metrics;
    let mut sent = 0;
    while metrics.write_timeouts.get() == 0 {
        assert!(sent < 20_000, "40 MB sent and the server still waits on a socket nobody reads");
        let mut last = 0;
        for _ in 0..32 {
            last = talker.say(room, &text).await.unwrap();
        }
        talker.wait_for(ack_of(last)).await.unwrap();
        sent += 32;
    }
    assert_eq!(metrics.write_timeouts.get(), 1, "only the sleeper timed out");

    // The sleeper's session is over: reading now drains what was buffered, then the end.
    let drained = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let mut events = 0u64;
        while sleeper.recv().await.is_ok() {
            events += 1;
        }
        events
    })
    .await
    .expect("the server closed the sleeper's connection");
    eprintln!("{sent} messages sent before the write deadline cut the sleeper off; it had {drained} buffered");
    assert!(drained < sent, "the sleeper got {drained} events of {sent} messages");
    let req = talker.say(room, "still here").await.unwrap();
    talker.wait_for(ack_of(req)).await.unwrap();
}

// The same tests on PostgreSQL (a fresh database each; skipped without a server, failed
// under CI=true).
#[test]
fn connections_per_address_are_capped_on_postgres() {
    pixelparty_storage::testing::on_postgres(connections_per_address_are_capped);
}

#[test]
fn a_trickled_body_gets_408_on_postgres() {
    pixelparty_storage::testing::on_postgres(a_trickled_body_gets_408);
}

#[test]
fn oversized_names_and_room_creation_limits_on_postgres() {
    pixelparty_storage::testing::on_postgres(oversized_names_and_room_creation_limits);
}

#[test]
fn a_role_change_ends_the_users_sessions_on_postgres() {
    pixelparty_storage::testing::on_postgres(a_role_change_ends_the_users_sessions);
}

#[test]
fn clients_behind_a_trusted_proxy_are_told_apart_on_postgres() {
    pixelparty_storage::testing::on_postgres(clients_behind_a_trusted_proxy_are_told_apart);
}

#[test]
fn a_websocket_client_that_stops_reading_is_cut_off_by_the_write_deadline_on_postgres() {
    pixelparty_storage::testing::on_postgres(a_websocket_client_that_stops_reading_is_cut_off_by_the_write_deadline);
}

#[test]
fn a_webtransport_client_that_stops_reading_is_cut_off_by_the_write_deadline_on_postgres() {
    pixelparty_storage::testing::on_postgres(a_webtransport_client_that_stops_reading_is_cut_off_by_the_write_deadline);
}
