//! `GET /openapi.json`: the OpenAPI 3.1 description of the public HTTP API, built from one
//! table of routes so it cannot drift from the router silently (a test checks every routed
//! path is described).

use hyper::StatusCode;
use serde_json::{Map, Value, json};

use super::{Resp, json};

/// `(method, path, summary, auth, body properties, response description)`.
type Route = (&'static str, &'static str, &'static str, Auth, &'static [(&'static str, &'static str)], &'static str);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    None,
    User,
    Admin,
}

/// Every route of the public API.
const ROUTES: &[Route] = &[
    (
        "post",
        "/signup",
        "Create an account and log in",
        Auth::None,
        &[("username", "string"), ("password", "string")],
        "201: {user, token}; sets the session cookie",
    ),
    (
        "post",
        "/login",
        "Log in",
        Auth::None,
        &[("username", "string"), ("password", "string")],
        "200: {user, token}; sets the session cookie",
    ),
    ("post", "/logout", "End this session", Auth::User, &[], "204"),
    ("get", "/account", "The logged-in account", Auth::User, &[], "200: {id, username, role, created_ms}"),
    ("get", "/session", "The logged-in account or null (never 401)", Auth::None, &[], "200: {user: account|null}"),
    ("get", "/users/{username}", "Look up a user by name", Auth::User, &[], "200: {id, username, role}"),
    ("get", "/friends", "Friends and pending requests", Auth::User, &[], "200: {friends, incoming, outgoing}"),
    (
        "post",
        "/users/add",
        "Send a friend request, or accept theirs",
        Auth::User,
        &[("username", "string")],
        "200: {status: requested|friends}",
    ),
    (
        "post",
        "/users/remove",
        "Unfriend, decline or cancel",
        Auth::User,
        &[("username", "string")],
        "200: {removed: friend|incoming|outgoing}",
    ),
    ("get", "/blocks", "Users you block", Auth::User, &[], "200: {blocks}"),
    (
        "post",
        "/users/block",
        "Block a user (their messages disappear); ends a friendship or request, said in `ended`",
        Auth::User,
        &[("username", "string")],
        "200",
    ),
    ("post", "/users/unblock", "Unblock a user", Auth::User, &[("username", "string")], "204"),
    (
        "post",
        "/users/ban",
        "Ban a user and end their sessions (ADMIN)",
        Auth::Admin,
        &[("username", "string"), ("reason", "string"), ("duration_s", "integer")],
        "204",
    ),
    ("post", "/users/unban", "Lift a user ban (ADMIN)", Auth::Admin, &[("username", "string")], "204"),
    (
        "post",
        "/bans/ip",
        "Ban an address or CIDR range (ADMIN)",
        Auth::Admin,
        &[("cidr", "string"), ("reason", "string"), ("duration_s", "integer")],
        "204",
    ),
    ("post", "/bans/ip/remove", "Lift an address ban (ADMIN)", Auth::Admin, &[("cidr", "string")], "204"),
    ("get", "/bans", "User and address bans (ADMIN)", Auth::Admin, &[], "200: {users, ips}"),
    (
        "post",
        "/canvas/rollback",
        "Restore the pixels a user painted in a time range (ADMIN)",
        Auth::Admin,
        &[("username", "string"), ("from_ms", "integer"), ("to_ms", "integer")],
        "200: {restored}",
    ),
    ("get", "/rooms", "List rooms (?after=&limit=)", Auth::None, &[], "200: {rooms}"),
    ("post", "/rooms", "Create a room", Auth::User, &[("name", "string")], "201: room"),
    ("get", "/rooms/{id}/messages", "Room history (?before=&limit=, oldest first)", Auth::User, &[], "200: {messages}"),
    ("delete", "/rooms/{id}/messages/{seq}", "Delete a room message (author or ADMIN)", Auth::User, &[], "204"),
    ("get", "/conversations", "Your direct-message conversations", Auth::User, &[], "200: {conversations}"),
    (
        "get",
        "/conversations/{user_id}/messages",
        "Direct-message history (?before=&limit=)",
        Auth::User,
        &[],
        "200: {messages}",
    ),
    ("delete", "/conversations/{user_id}/messages/{seq}", "Delete your direct message", Auth::User, &[], "204"),
    (
        "get",
        "/canvas",
        "Canvas geometry, palette and cooldown",
        Auth::None,
        &[],
        "200: {width, height, bpp, tile_size, tiles_x, tiles_y, palette, cooldown_ms, snapshot_url, ws_url, webtransport: {url, cert_hashes}|null}",
    ),
    (
        "get",
        "/canvas/snapshot",
        "Binary canvas snapshot with per-tile sequences (PROTOCOL.md section 11); gzip, ETag",
        Auth::None,
        &[],
        "200: application/octet-stream; 304 when the ETag matches",
    ),
    ("get", "/canvas.png", "The canvas as a PNG image", Auth::None, &[], "200: image/png"),
    (
        "get",
        "/canvas/pixel",
        "Pixel inspector: colour, who placed it and when (?x=&y=)",
        Auth::None,
        &[],
        "200: {x, y, colour, seq, user, time_ms, history}",
    ),
    (
        "get",
        "/ws",
        "WebSocket upgrade into the binary protocol (PROTOCOL.md)",
        Auth::User,
        &[],
        "101 Switching Protocols",
    ),
    ("get", "/openapi.json", "This document", Auth::None, &[], "200"),
];

/// Paths the router serves that are described here (for the drift test).
pub fn described_paths() -> Vec<(&'static str, &'static str)> {
    ROUTES.iter().map(|r| (r.0, r.1)).collect()
}

fn operation(r: &Route) -> Value {
    let (_, path, summary, auth, body, response) = *r;
    let mut op = Map::new();
    op.insert("summary".into(), json!(summary));
    let params: Vec<Value> = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": if name == "username" { "string" } else { "integer" } } }))
        .collect();
    if !params.is_empty() {
        op.insert("parameters".into(), json!(params));
    }
    if !body.is_empty() {
        let props: Map<String, Value> = body.iter().map(|(k, t)| ((*k).to_owned(), json!({ "type": t }))).collect();
        let required: Vec<&str> =
            body.iter().map(|(k, _)| *k).filter(|k| !matches!(*k, "reason" | "duration_s")).collect();
        op.insert(
            "requestBody".into(),
            json!({ "required": true, "content": { "application/json": { "schema": { "type": "object", "properties": props, "required": required } } } }),
        );
    }
    let status = response.split(':').next().unwrap_or("200").trim().split(' ').next().unwrap_or("200");
    let mut responses = Map::new();
    responses.insert(status.into(), json!({ "description": response }));
    responses.insert("default".into(), json!({ "description": "error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }));
    op.insert("responses".into(), Value::Object(responses));
    if auth != Auth::None {
        op.insert("security".into(), json!([{ "cookie": [] }, { "bearer": [] }]));
    }
    if auth == Auth::Admin {
        op.insert(
            "description".into(),
            json!("Requires a session of a user with role ADMIN; 403 forbidden otherwise."),
        );
    }
    Value::Object(op)
}

/// The document.
pub fn document() -> Resp {
    let mut paths = Map::new();
    for r in ROUTES {
        let entry = paths.entry(r.1.to_owned()).or_insert_with(|| json!({}));
        if let Value::Object(m) = entry {
            m.insert(r.0.to_owned(), operation(r));
        }
    }
    json(
        StatusCode::OK,
        &json!({
            "openapi": "3.1.0",
            "info": { "title": "pixelparty", "version": env!("CARGO_PKG_VERSION"),
                      "description": "Collaborative pixel canvas and chat. Real-time traffic uses the binary protocol over /ws (see protocol/PROTOCOL.md)." },
            "paths": paths,
            "components": {
                "securitySchemes": {
                    "cookie": { "type": "apiKey", "in": "cookie", "name": super::COOKIE },
                    "bearer": { "type": "http", "scheme": "bearer" }
                },
                "schemas": {
                    "Error": { "type": "object", "required": ["error", "message"],
                               "properties": { "error": { "type": "string" }, "message": { "type": "string" } } }
                }
            }
        }),
    )
}
