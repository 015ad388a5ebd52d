//! The public HTTP API: routing, request parsing (bounded JSON bodies, query strings), session
//! authentication (cookie or bearer token), and JSON responses. One module per resource.

pub mod auth;
pub mod canvas;
pub mod chat;
pub mod error;
pub mod moderation;
pub mod openapi;
pub mod social;
pub mod web;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use pixelparty_engine::LocalShard;
use pixelparty_protocol::Role;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::app::{App, sha256};
use crate::config::ServerSection;
use error::ApiError;

/// Response body type.
pub type Body = Full<Bytes>;
/// A response.
pub type Resp = Response<Body>;

/// Name of the session cookie.
pub const COOKIE: &str = "pp_session";

/// What a handler knows about the connection it serves.
#[derive(Debug)]
pub struct Ctx {
    /// Shared state.
    pub app: Arc<App>,
    /// The shard this connection lives on.
    pub shard: LocalShard,
    /// The peer's address.
    pub peer: SocketAddr,
}

impl Ctx {
    /// The client's address for a request (see [`App::client_ip`]: behind a trusted proxy,
    /// from `X-Forwarded-For`).
    pub fn client_ip<B>(&self, req: &Request<B>) -> std::net::IpAddr {
        self.app.client_ip(self.peer.ip(), req.headers())
    }
}

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// User id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Hash of the session token used.
    pub token_hash: [u8; 32],
    /// When that login session expires (ms since the Unix epoch).
    pub expires_ms: u64,
}

impl AuthUser {
    /// The engine's view of this user on a live session from `addr`: it ends when the login
    /// session is revoked or expires, or when the address is banned.
    pub fn session_ctx(&self, addr: std::net::IpAddr) -> pixelparty_engine::UserCtx {
        pixelparty_engine::UserCtx {
            session: pixelparty_engine::UserCtx::session_key(&self.token_hash),
            expires_ms: self.expires_ms,
            addr,
            ..pixelparty_engine::UserCtx::new(self.id, self.name.as_str(), self.role)
        }
    }

    /// Fails unless the user is an administrator.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin { Ok(()) } else { Err(ApiError::forbidden("administrators only")) }
    }
}

/// A JSON response.
pub fn json(status: StatusCode, value: &impl Serialize) -> Resp {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// An empty response.
pub fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// Renders an error.
pub fn error_response(e: &ApiError) -> Resp {
    let mut body = serde_json::json!({ "error": e.code, "message": e.message });
    if let Some(until) = e.until_ms {
        body["until_ms"] = serde_json::json!(until);
    }
    let mut r = json(e.status, &body);
    if let Some(s) = e.retry_after_s
        && let Ok(v) = HeaderValue::from_str(&s.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The query string as a map (last value wins; bounded by the request line limit).
pub fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A numeric query parameter, or `default` when absent.
pub fn query_num<T: std::str::FromStr>(q: &HashMap<String, String>, key: &str, default: T) -> Result<T, ApiError> {
    match q.get(key) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| ApiError::invalid(format!("query parameter {key} must be a number"))),
    }
}

/// Reads a JSON body of at most `server.max_body_bytes` (413 beyond), arriving within
/// `server.request_timeout_ms` (408 beyond: a body trickled in byte by byte holds no
/// connection for long).
pub async fn json_body<T: DeserializeOwned>(req: Request<Incoming>, server: &ServerSection) -> Result<T, ApiError> {
    let (max, timeout) = (server.max_body_bytes, std::time::Duration::from_millis(server.request_timeout_ms));
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send JSON with content-type: application/json",
        ));
    }
    let body = tokio::time::timeout(timeout, Limited::new(req.into_body(), max).collect())
        .await
        .map_err(|_| ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", "request body too slow"))?
        .map_err(|_| {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("body over {max} bytes"))
        })?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| ApiError::invalid(format!("malformed JSON: {e}")))
}

/// The session token of a request: the `pp_session` cookie, an `Authorization: Bearer`
/// header, or (for WebSocket and WebTransport clients that cannot set headers) `?token=`.
pub fn token_of(req: &Request<Incoming>) -> Option<String> {
    if let Some(auth) = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some(t) = auth.strip_prefix("Bearer ")
    {
        return Some(t.trim().to_owned());
    }
    for cookies in req.headers().get_all(header::COOKIE) {
        let Ok(cookies) = cookies.to_str() else { continue };
        for c in cookies.split(';') {
            if let Some((k, v)) = c.trim().split_once('=')
                && k == COOKIE
            {
                return Some(v.to_owned());
            }
        }
    }
    query(req).remove("token")
}

impl Ctx {
    /// The authenticated user, or 401 (no or unknown session) / 403 (banned).
    pub async fn auth(&self, req: &Request<Incoming>) -> Result<AuthUser, ApiError> {
        let token = token_of(req).ok_or_else(|| ApiError::unauthorized("log in first"))?;
        self.app.authenticate(sha256(token.as_bytes()), pixelparty_engine::now_ms())
    }
}

/// Serves one request: routes it and turns errors into JSON responses; counts its latency
/// under its route's pattern.
pub async fn serve(req: Request<Incoming>, ctx: Rc<Ctx>) -> Result<Resp, Infallible> {
    let started = Instant::now();
    let route_index = route_index(req.method(), req.uri().path());
    // Checked at accept too, but a keep-alive connection outlives a new ban, and a proxy's
    // clients are only known per request.
    let banned = ctx.app.bans.find(ctx.client_ip(&req), pixelparty_engine::now_ms());
    let resp = match banned {
        Some(ban) => error_response(&ApiError::banned(ban.ban.reason, ban.ban.expires_ms)),
        None => match route(req, &ctx).await {
            Ok(r) => r,
            Err(e) => error_response(&e),
        },
    };
    if resp.status().is_server_error() {
        ctx.app.metrics.http_errors.inc();
    }
    ctx.app.metrics.observe_http(route_index, started.elapsed());
    Ok(resp)
}

async fn route(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["ws"]) => crate::ws::upgrade::upgrade(req, ctx).await,
        (&Method::POST, ["wt", "ticket"]) => canvas::wt_ticket(req, ctx).await,
        (&Method::POST, ["signup"]) => auth::signup(req, ctx).await,
        (&Method::POST, ["login"]) => auth::login(req, ctx).await,
        (&Method::POST, ["logout"]) => auth::logout(req, ctx).await,
        (&Method::GET, ["account"]) => auth::account(req, ctx).await,
        (&Method::GET, ["session"]) => auth::session(req, ctx).await,
        (&Method::GET, ["users", name]) => social::lookup(req, ctx, name).await,
        (&Method::GET, ["friends"]) => social::friends(req, ctx).await,
        (&Method::POST, ["users", "add"]) => social::add(req, ctx).await,
        (&Method::POST, ["users", "remove"]) => social::remove(req, ctx).await,
        (&Method::GET, ["blocks"]) => social::blocks(req, ctx).await,
        (&Method::POST, ["users", "block"]) => social::block(req, ctx, true).await,
        (&Method::POST, ["users", "unblock"]) => social::block(req, ctx, false).await,
        (&Method::POST, ["users", "ban"]) => moderation::ban_user(req, ctx, true).await,
        (&Method::POST, ["users", "unban"]) => moderation::ban_user(req, ctx, false).await,
        (&Method::POST, ["bans", "ip"]) => moderation::ban_ip(req, ctx, true).await,
        (&Method::POST, ["bans", "ip", "remove"]) => moderation::ban_ip(req, ctx, false).await,
        (&Method::GET, ["bans"]) => moderation::list_bans(req, ctx).await,
        (&Method::POST, ["canvas", "rollback"]) => moderation::rollback(req, ctx).await,
        (&Method::GET, ["rooms"]) => chat::list_rooms(req, ctx).await,
        (&Method::POST, ["rooms"]) => chat::create_room(req, ctx).await,
        (&Method::GET, ["rooms", id, "messages"]) => chat::room_messages(req, ctx, id).await,
        (&Method::DELETE, ["rooms", id, "messages", seq]) => chat::delete_room_message(req, ctx, id, seq).await,
        (&Method::GET, ["conversations"]) => chat::conversations(req, ctx).await,
        (&Method::GET, ["conversations", peer, "messages"]) => chat::direct_messages(req, ctx, peer).await,
        (&Method::DELETE, ["conversations", peer, "messages", seq]) => {
            chat::delete_direct_message(req, ctx, peer, seq).await
        }
        (&Method::GET, ["canvas"]) => canvas::info(ctx),
        (&Method::GET, ["canvas", "snapshot"]) => canvas::snapshot(req, ctx),
        (&Method::GET, ["canvas.png"]) => canvas::png(req, ctx).await,
        (&Method::GET, ["canvas", "pixel"]) => canvas::pixel(req, ctx),
        (&Method::GET, ["openapi.json"]) => Ok(openapi::document()),
        (&Method::GET, _) => web::asset(&path),
        _ if known_path(&segments) => {
            Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this path"))
        }
        _ => Err(ApiError::not_found("no such route")),
    }
}

/// Every route of the public API as `(method, pattern)`: the labels of the HTTP latency
/// histogram, a bounded set (patterns, never raw paths). `GET /*` is every other `GET` (the
/// web client's files, or 404); the last entry, every request that no route takes.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/ws"),
    ("POST", "/wt/ticket"),
    ("POST", "/signup"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/account"),
    ("GET", "/session"),
    ("GET", "/users/:name"),
    ("GET", "/friends"),
    ("POST", "/users/add"),
    ("POST", "/users/remove"),
    ("GET", "/blocks"),
    ("POST", "/users/block"),
    ("POST", "/users/unblock"),
    ("POST", "/users/ban"),
    ("POST", "/users/unban"),
    ("POST", "/bans/ip"),
    ("POST", "/bans/ip/remove"),
    ("GET", "/bans"),
    ("POST", "/canvas/rollback"),
    ("GET", "/rooms"),
    ("POST", "/rooms"),
    ("GET", "/rooms/:id/messages"),
    ("DELETE", "/rooms/:id/messages/:seq"),
    ("GET", "/conversations"),
    ("GET", "/conversations/:peer/messages"),
    ("DELETE", "/conversations/:peer/messages/:seq"),
    ("GET", "/canvas"),
    ("GET", "/canvas/snapshot"),
    ("GET", "/canvas.png"),
    ("GET", "/canvas/pixel"),
    ("GET", "/openapi.json"),
    ("GET", "/*"),
    ("other", "other"),
];

/// The index in [`ROUTES`] of the route `route` takes for this method and path. Keep it in
/// step with `route`, arm for arm (a route missing here is only counted as `other`).
pub fn route_index(method: &Method, path: &str) -> usize {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let pattern = match (method, segments.as_slice()) {
        (&Method::GET, ["ws"]) => "/ws",
        (&Method::POST, ["wt", "ticket"]) => "/wt/ticket",
        (&Method::POST, ["signup"]) => "/signup",
        (&Method::POST, ["login"]) => "/login",
        (&Method::POST, ["logout"]) => "/logout",
        (&Method::GET, ["account"]) => "/account",
        (&Method::GET, ["session"]) => "/session",
        (&Method::GET, ["users", _]) => "/users/:name",
        (&Method::GET, ["friends"]) => "/friends",
        (&Method::POST, ["users", "add"]) => "/users/add",
        (&Method::POST, ["users", "remove"]) => "/users/remove",
        (&Method::GET, ["blocks"]) => "/blocks",
        (&Method::POST, ["users", "block"]) => "/users/block",
        (&Method::POST, ["users", "unblock"]) => "/users/unblock",
        (&Method::POST, ["users", "ban"]) => "/users/ban",
        (&Method::POST, ["users", "unban"]) => "/users/unban",
        (&Method::POST, ["bans", "ip"]) => "/bans/ip",
        (&Method::POST, ["bans", "ip", "remove"]) => "/bans/ip/remove",
        (&Method::GET, ["bans"]) => "/bans",
        (&Method::POST, ["canvas", "rollback"]) => "/canvas/rollback",
        (&Method::GET | &Method::POST, ["rooms"]) => "/rooms",
        (&Method::GET, ["rooms", _, "messages"]) => "/rooms/:id/messages",
        (&Method::DELETE, ["rooms", _, "messages", _]) => "/rooms/:id/messages/:seq",
        (&Method::GET, ["conversations"]) => "/conversations",
        (&Method::GET, ["conversations", _, "messages"]) => "/conversations/:peer/messages",
        (&Method::DELETE, ["conversations", _, "messages", _]) => "/conversations/:peer/messages/:seq",
        (&Method::GET, ["canvas"]) => "/canvas",
        (&Method::GET, ["canvas", "snapshot"]) => "/canvas/snapshot",
        (&Method::GET, ["canvas.png"]) => "/canvas.png",
        (&Method::GET, ["canvas", "pixel"]) => "/canvas/pixel",
        (&Method::GET, ["openapi.json"]) => "/openapi.json",
        (&Method::GET, _) => "/*",
        _ => "other",
    };
    let method = if pattern == "other" { "other" } else { method.as_str() };
    ROUTES.iter().position(|r| *r == (method, pattern)).unwrap_or(ROUTES.len() - 1)
}

fn known_path(segments: &[&str]) -> bool {
    matches!(
        segments.first().copied(),
        Some(
            "ws" | "signup"
                | "login"
                | "logout"
                | "account"
                | "users"
                | "friends"
                | "blocks"
                | "bans"
                | "rooms"
                | "conversations"
                | "canvas"
        )
    )
}

/// Parses a numeric path segment.
pub fn path_num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, ApiError> {
    s.parse().map_err(|_| ApiError::invalid(format!("{what} must be a number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("x%41"), "xA");
    }

    #[test]
    fn every_route_pattern_is_reachable_and_raw_paths_map_to_patterns() {
        for (i, (method, pattern)) in ROUTES.iter().enumerate() {
            if *method == "other" {
                continue;
            }
            let path = pattern.replace(":id", "7").replace(":seq", "9").replace(":peer", "3").replace(":name", "bob");
            let path = path.replace('*', "app.js");
            let method: Method = method.parse().unwrap();
            assert_eq!(route_index(&method, &path), i, "{method} {path}");
        }
        let other = ROUTES.len() - 1;
        assert_eq!(ROUTES[route_index(&Method::GET, "/rooms/42/messages")], ("GET", "/rooms/:id/messages"));
        assert_eq!(ROUTES[route_index(&Method::GET, "/no/such/thing")], ("GET", "/*"));
        assert_eq!(route_index(&Method::PUT, "/signup"), other);
        assert_eq!(route_index(&"BREW".parse().unwrap(), "/coffee"), other);
    }
}
