//! An ADMIN bans a USER: every session of theirs is closed with the reason, they cannot log
//! in or reconnect; an address ban refuses the connection at accept; the admin endpoint
//! needs its token and serves metrics, health and rollback.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use pixelparty_bench::client::{Api, ConnectOptions, Connection, Event};
use pixelparty_protocol::CloseReason;
use serde_json::json;

#[tokio::test(flavor = "current_thread")]
async fn bans_and_admin_endpoint() {
    let t = start(|_| {});
    let root = t.admin_user("root").await;
    let mallory = t.user("mallory").await;
    let mut m1 = t.connect(&mallory).await;
    let mut m2 = t.connect(&mallory).await;

    // Mallory paints, then gets banned; her pixels are rolled back.
    let before = pixelparty_engine::now_ms();
    for i in 0..5u16 {
        let req = m1.paint(i, 0, 9).await.unwrap();
        m1.wait_for(ack_of(req)).await.unwrap();
    }
    let after = pixelparty_engine::now_ms() + 1;
    let r = t
        .api
        .ok("POST", "/users/ban", Some(&root.token), Some(&json!({"username": "mallory", "reason": "griefing"})))
        .await
        .unwrap_or_default();
    assert!(r.is_null());
    for m in [&mut m1, &mut m2] {
        let closing = m
            .wait_for(
                |e| if let Event::Closing { reason, message } = e { Some((*reason, message.clone())) } else { None },
            )
            .await
            .unwrap();
        assert_eq!(closing, (CloseReason::Banned, "griefing".to_string()));
    }
    let login =
        t.api.call("POST", "/login", None, Some(&json!({"username": "mallory", "password": PASSWORD}))).await.unwrap();
    assert_eq!(
        (login.0, login.1["error"].as_str(), login.1["message"].as_str()),
        (403, Some("banned"), Some("griefing"))
    );
    let again = Connection::connect(t.addr(), &mallory.token, ConnectOptions::default()).await.unwrap_err();
    assert!(matches!(again.status(), Some(401 | 403)), "{again}");
    let restored = t
        .api
        .ok(
            "POST",
            "/canvas/rollback",
            Some(&root.token),
            Some(&json!({"username": "mallory", "from_ms": before, "to_ms": after})),
        )
        .await
        .unwrap();
    assert_eq!(
        restored,
        json!({"planned": 5, "restored": 5, "painted_over": 0, "not_restored": 0, "outcome_unknown": 0}),
        "real counts"
    );
    let watcher = t.user("watcher").await;
    let mut w = t.connect(&watcher).await;
    w.subscribe(&[(0, u64::MAX)]).await.unwrap();
    let mut rolled_back = false;
    for _ in 0..50 {
        let px = t.api.ok("GET", "/canvas/pixel?x=2&y=0", None, None).await.unwrap();
        if px["colour"] == 0 {
            rolled_back = true;
            break;
        }
        w.ping(1).await.unwrap();
        w.wait_for(|e| matches!(e, Event::Pong { .. }).then_some(())).await.unwrap();
    }
    assert!(rolled_back, "the pixel went back to its previous colour");
    // The inspector credits nobody with the restore: it says whose pixel it undid.
    let px = t.api.ok("GET", "/canvas/pixel?x=2&y=0", None, None).await.unwrap();
    assert_eq!((&px["user"], &px["restored_by_rollback_of"]["username"]), (&json!(null), &json!("mallory")), "{px}");
    assert_eq!(px["history"][1]["username"], "mallory", "her paint stays in the history");
    // Unban lets her back in.
    t.admin_call("POST", "/unbans/user", json!({"username": "mallory"})).await;
    assert!(t.api.login("mallory", PASSWORD).await.is_ok());

    // An address ban refuses connections from it at accept; others are unaffected.
    t.admin_call("POST", "/bans/ip", json!({"cidr": "127.0.0.7/32", "reason": "abuse"})).await;
    let banned = Connection::connect(
        t.addr(),
        &watcher.token,
        ConnectOptions { source_ip: Some("127.0.0.7".parse().unwrap()), ..Default::default() },
    )
    .await;
    assert!(banned.is_err(), "connections from a banned address are refused");
    let ok = Connection::connect(
        t.addr(),
        &watcher.token,
        ConnectOptions { source_ip: Some("127.0.0.8".parse().unwrap()), ..Default::default() },
    )
    .await;
    assert!(ok.is_ok());

    // The admin endpoint: health without a token, everything else with it.
    let admin = Api::new(t.admin);
    assert_eq!(admin.call("GET", "/healthz", None, None).await.unwrap().0, 200);
    assert_eq!(admin.call("GET", "/readyz", None, None).await.unwrap().0, 200);
    assert_eq!(admin.call("GET", "/metrics", None, None).await.unwrap().0, 401);
    assert_eq!(admin.call("GET", "/metrics", Some("wrong"), None).await.unwrap().0, 401);
    let metrics =
        admin.raw("GET", "/metrics", &[("authorization", "Bearer test-admin-token")], Vec::new()).await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body);
    // Each backend adds its own gauges.
    let backend = if pixelparty_storage::testing::postgres_wanted() {
        ["pixelparty_storage_pg_pool_connections", "pixelparty_storage_pg_pool_waiting"]
    } else {
        ["pixelparty_storage_fsync_duration_seconds_bucket", "pixelparty_storage_index_l0_tables"]
    };
    for name in [
        "pixelparty_paints_accepted_total",
        "pixelparty_logins_total{outcome=\"ok\"}",
        "pixelparty_shard_stalls_total",
        "pixelparty_inbox_depth",
        "pixelparty_write_timeouts_total",
        "pixelparty_paint_ack_duration_seconds_count",
        "pixelparty_storage_ready",
    ]
    .into_iter()
    .chain(backend)
    {
        assert!(text.contains(name), "metrics lack {name}");
    }
    let stats = t.admin_call("GET", "/stats", serde_json::Value::Null).await;
    assert!(stats["users"].as_u64().unwrap() >= 3);
    let snap = t.admin_call("POST", "/snapshot", json!({})).await;
    assert!(snap["version"].as_u64().unwrap() >= 1);
    let audit = t.admin_call("GET", "/audit", serde_json::Value::Null).await;
    let actions: Vec<&str> =
        audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in ["ban_user", "unban_user", "rollback", "ban_net", "set_role"] {
        assert!(actions.contains(&a), "audit lacks {a}: {actions:?}");
    }
}

// The same tests on PostgreSQL (a fresh database each; skipped without a server, failed
// under CI=true).
#[test]
fn bans_and_admin_endpoint_on_postgres() {
    pixelparty_storage::testing::on_postgres(bans_and_admin_endpoint);
}
