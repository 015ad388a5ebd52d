//! Both OpenAPI documents, as served: the public one at `/openapi.json` describes exactly the
//! router's routes, and each of them is routed (no 404 or 405 from the router); the admin
//! endpoint serves its own at `/openapi.json` without the token, and every operation it
//! describes is routed there. Refusals carry the headers the document promises: 405 with
//! `Allow`, 426 with `Upgrade`. (gateway/tests/schemathesis/run.sh checks far more against the
//! running server; this is the part `cargo test` can do without Python.)
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use pixelparty_bench::client::Api;
use pixelparty_gateway::http::ROUTES;
use serde_json::{Value, json};

/// `template` with every `{name}` segment replaced by `1`.
fn concrete(template: &str) -> String {
    template.split('/').map(|s| if s.starts_with('{') { "1" } else { s }).collect::<Vec<_>>().join("/")
}

fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.push((method.clone(), path.clone()));
        }
    }
    ops.sort();
    ops
}

#[tokio::test(flavor = "current_thread")]
async fn the_public_document_describes_exactly_the_routed_routes() {
    let t = start(|_| {});
    let doc = t.api.ok("GET", "/openapi.json", None, None).await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut routed: Vec<(String, String)> =
        ROUTES.iter().map(|(m, p, _)| (m.to_ascii_lowercase(), (*p).to_owned())).collect();
    routed.sort();
    assert_eq!(operations(&doc), routed);

    // Every route is reached (whatever it then answers without a session or a body).
    for (method, template, _) in ROUTES {
        let path = concrete(template);
        let (status, body) = t.api.call(method, &path, None, None).await.unwrap();
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert!(body["message"] != "no such route", "{method} {path}: {status} {body}");
        let described = &doc["paths"][*template][method.to_ascii_lowercase()]["responses"][status.to_string()];
        assert!(described.is_object(), "{method} {path}: {status} is not in the document");
    }

    // A path of the router with another method: 405 with the methods it has.
    let r = t.api.raw("PUT", "/rooms", &[], Vec::new()).await.unwrap();
    assert_eq!((r.status, r.headers.get("allow").and_then(|v| v.to_str().ok())), (405, Some("GET, POST")));
    // A path without `{name}` shadows the templates it also fits, as in OpenAPI.
    let r = t.api.raw("GET", "/users/add", &[], Vec::new()).await.unwrap();
    assert_eq!((r.status, r.headers.get("allow").and_then(|v| v.to_str().ok())), (405, Some("POST")));
    // Not a WebSocket upgrade: 426 naming the protocol (RFC 9110 section 15.5.22).
    let r = t.api.raw("GET", "/ws", &[], Vec::new()).await.unwrap();
    let header = |name: &str| r.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(r.status, 426);
    assert_eq!((header("upgrade"), header("sec-websocket-version")), (Some("websocket".into()), Some("13".into())));
    // An upgrade in another WebSocket version: 426 naming the one spoken (RFC 6455 4.4), not 400.
    let upgrade = [
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "8"),
    ];
    let r = t.api.raw("GET", "/ws", &upgrade, Vec::new()).await.unwrap();
    let header = |name: &str| r.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!((r.status, header("sec-websocket-version")), (426, Some("13".into())));
}

#[tokio::test(flavor = "current_thread")]
async fn the_admin_endpoint_serves_its_document_and_routes_every_operation_in_it() {
    let t = start(|_| {});
    let admin = Api::new(t.admin);
    let (status, doc) = admin.call("GET", "/openapi.json", None, None).await.unwrap();
    assert_eq!(status, 200, "served without the admin token");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["components"]["securitySchemes"]["admin_token"]["scheme"], "bearer");
    let ops = operations(&doc);
    // The document lists exactly the endpoint's route table, both ways.
    let mut table: Vec<(String, String)> = pixelparty_gateway::admin::ADMIN_ROUTES
        .iter()
        .map(|(m, p)| (m.to_ascii_lowercase(), (*p).to_owned()))
        .collect();
    let mut listed = ops.clone();
    table.sort();
    listed.sort();
    assert_eq!(listed, table, "the admin document and ADMIN_ROUTES differ");
    // A known path with another method: 405 naming the methods it has.
    let r = admin.raw("DELETE", "/kick", &[("authorization", "Bearer test-admin-token")], Vec::new()).await.unwrap();
    assert_eq!((r.status, r.headers.get("allow").and_then(|v| v.to_str().ok())), (405, Some("POST")));
    for (method, path) in ops {
        // An empty object: operations with a body refuse it (400), the others ignore it.
        let (status, body) =
            admin.call(&method.to_uppercase(), &path, Some(&t.admin_token), Some(&json!({}))).await.unwrap();
        assert!(body["message"] != "no such admin route", "{method} {path}: {status} {body}");
        let described = &doc["paths"][&path][&method]["responses"][status.to_string()];
        assert!(described.is_object(), "{method} {path}: {status} is not in the document");
    }
}
