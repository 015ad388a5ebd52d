//! Every route's happy path and its refusals through a real socket: no token, wrong role,
//! malformed JSON, wrong content type, oversize body, unknown user, unknown route, wrong
//! method, duplicate names, bad credentials, login rate limit; the OpenAPI document describes
//! every route.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "current_thread")]
async fn routes_answer_and_refuse_correctly() {
    let t = start(|c| {
        c.auth.login_per_account_per_min = 3;
        c.server.max_body_bytes = 1024;
    });
    let api = &t.api;
    let alice = t.user("alice").await;
    let bob = t.user("bob").await;
    let root = t.admin_user("root").await;
    let (a, b, r) = (Some(alice.token.as_str()), Some(bob.token.as_str()), Some(root.token.as_str()));

    // Account and sessions.
    let (s, v) = api.call("GET", "/account", a, None).await.unwrap();
    assert_eq!((s, v["username"].as_str()), (200, Some("alice")));
    assert_eq!(api.call("GET", "/account", None, None).await.unwrap().0, 401, "no token");
    assert_eq!(api.call("GET", "/account", Some("forged"), None).await.unwrap().0, 401, "unknown token");
    assert_eq!(
        api.call("POST", "/signup", None, Some(&json!({"username": "ALICE", "password": PASSWORD}))).await.unwrap().0,
        409
    );
    assert_eq!(
        api.call("POST", "/signup", None, Some(&json!({"username": "x", "password": PASSWORD}))).await.unwrap().0,
        400
    );
    assert_eq!(
        api.call("POST", "/signup", None, Some(&json!({"username": "shorty", "password": "short"}))).await.unwrap().0,
        400
    );
    let wrong = api
        .call("POST", "/login", None, Some(&json!({"username": "alice", "password": "wrong password"})))
        .await
        .unwrap();
    assert_eq!((wrong.0, wrong.1["error"].as_str()), (401, Some("unauthorized")));
    assert_eq!(
        api.call("POST", "/login", None, Some(&json!({"username": "nobody", "password": PASSWORD}))).await.unwrap().0,
        401
    );

    // Malformed input.
    let raw = api
        .raw(
            "POST",
            "/rooms",
            &[("content-type", "application/json"), ("authorization", &format!("Bearer {}", alice.token))],
            b"{not json".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(raw.status, 400);
    let body: Value = serde_json::from_slice(&raw.body).unwrap();
    assert_eq!(body["error"], "invalid_argument");
    let raw = api
        .raw(
            "POST",
            "/rooms",
            &[("content-type", "text/plain"), ("authorization", &format!("Bearer {}", alice.token))],
            b"{}".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(raw.status, 415);
    let big = json!({ "name": "x".repeat(5000) });
    assert_eq!(api.call("POST", "/rooms", a, Some(&big)).await.unwrap().0, 413);
    assert_eq!(api.call("GET", "/nope", None, None).await.unwrap().0, 404);
    assert_eq!(api.call("DELETE", "/rooms", a, None).await.unwrap().0, 405);

    // Rooms.
    let (s, room) = api.call("POST", "/rooms", a, Some(&json!({"name": "General"}))).await.unwrap();
    assert_eq!(s, 201);
    assert_eq!(api.call("POST", "/rooms", b, Some(&json!({"name": "general"}))).await.unwrap().0, 409);
    let (s, rooms) = api.call("GET", "/rooms", None, None).await.unwrap();
    assert_eq!((s, rooms["rooms"][0]["name"].as_str()), (200, Some("General")));
    let id = room["id"].as_u64().unwrap();
    let (s, msgs) = api.call("GET", &format!("/rooms/{id}/messages?limit=10"), a, None).await.unwrap();
    assert_eq!((s, msgs["messages"].as_array().map(Vec::len)), (200, Some(0)));
    assert_eq!(api.call("GET", &format!("/rooms/{id}/messages?limit=0"), a, None).await.unwrap().0, 400);
    assert_eq!(api.call("GET", "/rooms/999/messages", a, None).await.unwrap().0, 404);
    assert_eq!(api.call("DELETE", &format!("/rooms/{id}/messages/1"), a, None).await.unwrap().0, 404);

    // Social.
    assert_eq!(
        api.call("POST", "/users/add", a, Some(&json!({"username": "ghost"}))).await.unwrap().0,
        404,
        "unknown user"
    );
    assert_eq!(
        api.ok("POST", "/users/add", a, Some(&json!({"username": "bob"}))).await.unwrap()["status"],
        "requested"
    );
    assert_eq!(api.ok("GET", "/friends", b, None).await.unwrap()["incoming"][0]["username"], "alice");
    assert_eq!(
        api.ok("POST", "/users/add", b, Some(&json!({"username": "alice"}))).await.unwrap()["status"],
        "friends"
    );
    assert_eq!(api.ok("GET", "/friends", a, None).await.unwrap()["friends"][0]["username"], "bob");
    assert_eq!(
        api.ok("POST", "/users/remove", a, Some(&json!({"username": "bob"}))).await.unwrap()["removed"],
        "friend"
    );
    assert_eq!(
        api.call("POST", "/users/block", a, Some(&json!({"username": "bob"}))).await.unwrap(),
        (200, json!({"ended": null})),
        "no friendship left to end"
    );
    assert_eq!(api.ok("GET", "/blocks", a, None).await.unwrap()["blocks"][0]["username"], "bob");
    assert_eq!(api.call("POST", "/users/unblock", a, Some(&json!({"username": "bob"}))).await.unwrap().0, 204);
    assert_eq!(api.ok("GET", "/users/bob", a, None).await.unwrap()["id"], bob.id);
    assert_eq!(api.ok("GET", "/conversations", a, None).await.unwrap()["conversations"], json!([]));
    assert_eq!(api.call("GET", &format!("/conversations/{}/messages", bob.id), a, None).await.unwrap().0, 200);

    // Moderation needs ADMIN.
    let ban = json!({"username": "bob", "reason": "spam"});
    assert_eq!(api.call("POST", "/users/ban", a, Some(&ban)).await.unwrap().0, 403, "wrong role");
    assert_eq!(api.call("GET", "/bans", a, None).await.unwrap().0, 403);
    assert_eq!(api.call("POST", "/bans/ip", r, Some(&json!({"cidr": "not an ip"}))).await.unwrap().0, 400);
    assert_eq!(
        api.call("POST", "/bans/ip", r, Some(&json!({"cidr": "10.9.0.0/16", "reason": "x"}))).await.unwrap().0,
        204
    );
    assert_eq!(api.ok("GET", "/bans", r, None).await.unwrap()["ips"][0]["cidr"], "10.9.0.0/16");
    assert_eq!(api.call("POST", "/bans/ip/remove", r, Some(&json!({"cidr": "10.9.0.0/16"}))).await.unwrap().0, 204);
    assert_eq!(
        api.call("POST", "/canvas/rollback", r, Some(&json!({"username": "bob", "from_ms": 0, "to_ms": 1})))
            .await
            .unwrap()
            .0,
        200
    );

    // Canvas.
    let info = api.ok("GET", "/canvas", None, None).await.unwrap();
    assert_eq!((info["width"].as_u64(), info["palette"].as_array().map(Vec::len)), (Some(256), Some(16)));
    assert_eq!(api.call("GET", "/canvas/pixel?x=999&y=0", None, None).await.unwrap().0, 400);
    assert_eq!(api.ok("GET", "/canvas/pixel?x=1&y=1", None, None).await.unwrap()["user"], Value::Null);

    // Logout ends the session.
    assert_eq!(api.call("POST", "/logout", b, None).await.unwrap().0, 204);
    assert_eq!(api.call("GET", "/account", b, None).await.unwrap().0, 401);

    // Login rate limit per account (3 per minute here).
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            api.call("POST", "/login", None, Some(&json!({"username": "alice", "password": "nope nope"})))
                .await
                .unwrap()
                .0,
        );
    }
    assert!(statuses.contains(&429), "{statuses:?}");

    // The served OpenAPI document describes every route of the router.
    let doc = api.ok("GET", "/openapi.json", None, None).await.unwrap();
    for (method, path, _) in pixelparty_gateway::http::ROUTES {
        assert!(doc["paths"][path][method.to_ascii_lowercase()].is_object(), "{method} {path}");
    }
    for path in [
        "/signup",
        "/login",
        "/rooms",
        "/account",
        "/users/block",
        "/users/add",
        "/users/remove",
        "/users/ban",
        "/canvas/snapshot",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
}

// The same tests on PostgreSQL (a fresh database each; skipped without a server, failed
// under CI=true).
#[test]
fn routes_answer_and_refuse_correctly_on_postgres() {
    pixelparty_storage::testing::on_postgres(routes_answer_and_refuse_correctly);
}
