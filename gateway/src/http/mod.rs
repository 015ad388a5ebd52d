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
    pub fn session_ctx(&self, addr: std::net::IpAddr, blocks: Arc<[u32]>) -> pixelparty_engine::UserCtx {
        pixelparty_engine::UserCtx {
            session: pixelparty_engine::UserCtx::session_key(&self.token_hash),
            expires_ms: self.expires_ms,
            addr,
            blocks,
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
    let mut r = json(e.status, &e.body());
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

/// Whether the request carries any credentials at all (an `Authorization` header of any
/// scheme, the session cookie, `?token=`): only one that carries none may be a visitor.
pub fn presents_credentials(req: &Request<Incoming>) -> bool {
    req.headers().contains_key(header::AUTHORIZATION)
        || session_cookie_of(req).is_some()
        || query(req).contains_key("token")
}

/// The session cookie's value, if the request has one.
pub fn session_cookie_of(req: &Request<Incoming>) -> Option<String> {
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
    None
}

/// The session token of a request: an `Authorization: Bearer` header, the `pp_session`
/// cookie, or (for WebSocket and WebTransport clients that cannot set headers) `?token=`.
pub fn token_of(req: &Request<Incoming>) -> Option<String> {
    if let Some(auth) = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some(t) = auth.strip_prefix("Bearer ")
    {
        return Some(t.trim().to_owned());
    }
    session_cookie_of(req).or_else(|| query(req).remove("token"))
}

impl Ctx {
    /// The authenticated user, or 401 (no or unknown session) / 403 (banned).
    pub async fn auth(&self, req: &Request<Incoming>) -> Result<AuthUser, ApiError> {
        let token = token_of(req).ok_or_else(|| ApiError::unauthorized("log in first"))?;
        self.app.authenticate(sha256(token.as_bytes()), pixelparty_engine::now_ms()).await
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

/// A route of the public API (see [`ROUTES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[expect(missing_docs, reason = "each variant is described by its row in ROUTES and its handler")]
pub enum Route {
    WebSocket,
    WtTicket,
    Signup,
    Login,
    Logout,
    Account,
    Session,
    UserLookup,
    Friends,
    FriendAdd,
    FriendRemove,
    Blocks,
    Block,
    Unblock,
    BanUser,
    UnbanUser,
    BanIp,
    UnbanIp,
    Bans,
    Rollback,
    Rooms,
    CreateRoom,
    RoomMessages,
    DeleteRoomMessage,
    Conversations,
    DirectMessages,
    DeleteDirectMessage,
    Canvas,
    Snapshot,
    CanvasPng,
    Pixel,
    Timelapse,
    TimelapseChunk,
    Rewind,
    Audit,
    OpenApi,
    WebClient,
}

/// Every route of the public API: method, path template as OpenAPI writes it (`{name}`
/// matches one segment) and route. The router matches requests against this table
/// and a test checks `GET /openapi.json` against it, both ways: a route cannot be added
/// without its description, nor described without being served. Other `GET` paths are the
/// web client's files.
///
/// As in OpenAPI, a path without `{name}` segments shadows the templates it also fits:
/// `/users/add` is only ever `POST /users/add` (a `GET` is 405), never a lookup of a user
/// named `add` (names are case-insensitive, so `GET /users/Add` finds that one).
pub const ROUTES: &[(&str, &str, Route)] = &[
    ("GET", "/ws", Route::WebSocket),
    ("POST", "/wt/ticket", Route::WtTicket),
    ("POST", "/signup", Route::Signup),
    ("POST", "/login", Route::Login),
    ("POST", "/logout", Route::Logout),
    ("GET", "/account", Route::Account),
    ("GET", "/session", Route::Session),
    ("GET", "/users/{username}", Route::UserLookup),
    ("GET", "/friends", Route::Friends),
    ("POST", "/users/add", Route::FriendAdd),
    ("POST", "/users/remove", Route::FriendRemove),
    ("GET", "/blocks", Route::Blocks),
    ("POST", "/users/block", Route::Block),
    ("POST", "/users/unblock", Route::Unblock),
    ("POST", "/users/ban", Route::BanUser),
    ("POST", "/users/unban", Route::UnbanUser),
    ("POST", "/bans/ip", Route::BanIp),
    ("POST", "/bans/ip/remove", Route::UnbanIp),
    ("GET", "/bans", Route::Bans),
    ("POST", "/canvas/rollback", Route::Rollback),
    ("GET", "/rooms", Route::Rooms),
    ("POST", "/rooms", Route::CreateRoom),
    ("GET", "/rooms/{id}/messages", Route::RoomMessages),
    ("DELETE", "/rooms/{id}/messages/{seq}", Route::DeleteRoomMessage),
    ("GET", "/conversations", Route::Conversations),
    ("GET", "/conversations/{user_id}/messages", Route::DirectMessages),
    ("DELETE", "/conversations/{user_id}/messages/{seq}", Route::DeleteDirectMessage),
    ("GET", "/canvas", Route::Canvas),
    ("GET", "/canvas/snapshot", Route::Snapshot),
    ("GET", "/canvas.png", Route::CanvasPng),
    ("GET", "/canvas/pixel", Route::Pixel),
    ("GET", "/canvas/timelapse", Route::Timelapse),
    ("GET", "/canvas/timelapse/{n}", Route::TimelapseChunk),
    ("POST", "/canvas/rewind", Route::Rewind),
    ("GET", "/audit", Route::Audit),
    ("GET", "/openapi.json", Route::OpenApi),
    ("GET", "/", Route::WebClient),
];

/// Most `{name}` segments in a path template of [`ROUTES`].
const MAX_PARAMS: usize = 2;

/// What the router makes of a method and a path.
#[derive(Debug, PartialEq, Eq)]
enum Matched<'p> {
    /// A route, with the path's `{name}` segments in order (unused ones empty).
    Route(Route, [&'p str; MAX_PARAMS]),
    /// The path is a route's, for other methods: these.
    OtherMethods(Vec<&'static str>),
    /// No route has this path.
    None,
}

/// The path's `{name}` segments if `template` matches `segments`.
fn match_template<'p>(template: &str, segments: &[&'p str]) -> Option<[&'p str; MAX_PARAMS]> {
    let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = [""; MAX_PARAMS];
    let mut n = 0;
    for (part, seg) in parts.iter().zip(segments) {
        if part.starts_with('{') {
            *params.get_mut(n)? = seg;
            n += 1;
        } else if part != seg {
            return None;
        }
    }
    Some(params)
}

/// Finds the route of `method` and `segments` (the path without its outer slashes, split).
fn find<'p>(method: &Method, segments: &[&'p str]) -> Matched<'p> {
    let fits = |template: &str| match_template(template, segments).is_some();
    let concrete = ROUTES.iter().any(|(_, t, _)| !t.contains('{') && fits(t));
    let mut others = Vec::new();
    for &(m, template, route) in ROUTES.iter().filter(|(_, t, _)| !(concrete && t.contains('{'))) {
        if let Some(params) = match_template(template, segments) {
            if m.eq_ignore_ascii_case(method.as_str()) {
                return Matched::Route(route, params);
            }
            others.push(m);
        }
    }
    if others.is_empty() { Matched::None } else { Matched::OtherMethods(others) }
}

/// 405 with the `Allow` header that RFC 9110 asks for.
pub fn method_not_allowed(methods: &[&str]) -> Resp {
    let e = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this path");
    let mut r = error_response(&e);
    let allow = methods.iter().map(|m| m.to_ascii_uppercase()).collect::<Vec<_>>().join(", ");
    if let Ok(v) = HeaderValue::from_str(&allow) {
        r.headers_mut().insert(header::ALLOW, v);
    }
    r
}

/// A refused WebSocket upgrade. A 426 names the protocol to upgrade to, as RFC 9110 (section
/// 15.5.22) requires, and the WebSocket version this server speaks (RFC 6455, section 4.4).
fn websocket_refusal(e: &ApiError) -> Resp {
    let mut r = error_response(e);
    if e.status == StatusCode::UPGRADE_REQUIRED {
        r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        r.headers_mut().insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        r.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
    }
    r
}

async fn route(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (route, [a, b]) = match find(req.method(), &segments) {
        Matched::Route(route, params) => (route, params),
        Matched::OtherMethods(methods) => return Ok(method_not_allowed(&methods)),
        Matched::None if req.method() == Method::GET => return web::asset(&path),
        Matched::None => return Err(ApiError::not_found("no such route")),
    };
    match route {
        Route::WebSocket => crate::ws::upgrade::upgrade(req, ctx).await.or_else(|e| Ok(websocket_refusal(&e))),
        Route::WtTicket => canvas::wt_ticket(req, ctx).await,
        Route::Signup => auth::signup(req, ctx).await,
        Route::Login => auth::login(req, ctx).await,
        Route::Logout => auth::logout(req, ctx).await,
        Route::Account => auth::account(req, ctx).await,
        Route::Session => auth::session(req, ctx).await,
        Route::UserLookup => social::lookup(req, ctx, a).await,
        Route::Friends => social::friends(req, ctx).await,
        Route::FriendAdd => social::add(req, ctx).await,
        Route::FriendRemove => social::remove(req, ctx).await,
        Route::Blocks => social::blocks(req, ctx).await,
        Route::Block => social::block(req, ctx).await,
        Route::Unblock => social::unblock(req, ctx).await,
        Route::BanUser => moderation::ban_user(req, ctx).await,
        Route::UnbanUser => moderation::unban_user(req, ctx).await,
        Route::BanIp => moderation::ban_ip(req, ctx).await,
        Route::UnbanIp => moderation::unban_ip(req, ctx).await,
        Route::Bans => moderation::list_bans(req, ctx).await,
        Route::Rollback => moderation::rollback(req, ctx).await,
        Route::Rooms => chat::list_rooms(req, ctx).await,
        Route::CreateRoom => chat::create_room(req, ctx).await,
        Route::RoomMessages => chat::room_messages(req, ctx, a).await,
        Route::DeleteRoomMessage => chat::delete_room_message(req, ctx, a, b).await,
        Route::Conversations => chat::conversations(req, ctx).await,
        Route::DirectMessages => chat::direct_messages(req, ctx, a).await,
        Route::DeleteDirectMessage => chat::delete_direct_message(req, ctx, a, b).await,
        Route::Canvas => canvas::info(ctx),
        Route::Snapshot => canvas::snapshot(req, ctx),
        Route::CanvasPng => canvas::png(req, ctx).await,
        Route::Pixel => canvas::pixel(req, ctx).await,
        Route::Timelapse => canvas::timelapse(ctx).await,
        Route::TimelapseChunk => canvas::timelapse_chunk(req, ctx, a).await,
        Route::Rewind => moderation::rewind(req, ctx).await,
        Route::Audit => moderation::audit(req, ctx).await,
        Route::OpenApi => Ok(openapi::document()),
        Route::WebClient => web::asset(&path),
    }
}

/// The labels of the HTTP latency histogram, in the order of [`route_index`]: every route of
/// [`ROUTES`] as `(method, pattern)`, then `GET /*` for every other `GET` (the web client's
/// files, or 404) and `other` for every request that no route takes. A bounded set: patterns,
/// never raw paths. Patterns write a `{name}` segment of the template as `:name`, which every
/// Prometheus text parser reads (some stumble on braces in label values).
pub fn route_labels() -> impl Iterator<Item = (&'static str, &'static str)> {
    static LABELS: std::sync::LazyLock<Vec<(&'static str, String)>> = std::sync::LazyLock::new(|| {
        let pattern = |template: &str| {
            template
                .split('/')
                .map(|s| {
                    s.strip_prefix('{').and_then(|s| s.strip_suffix('}')).map_or(s.to_owned(), |n| format!(":{n}"))
                })
                .collect::<Vec<_>>()
                .join("/")
        };
        let routes = ROUTES.iter().map(|&(method, template, _)| (method, pattern(template)));
        routes.chain([("GET", "/*".to_owned()), ("other", "other".to_owned())]).collect()
    });
    LABELS.iter().map(|(method, pattern)| (*method, pattern.as_str()))
}

/// The index in [`route_labels`] of the route a request with this method and path takes.
pub fn route_index(method: &Method, path: &str) -> usize {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match find(method, &segments) {
        Matched::Route(route, _) => ROUTES.iter().position(|r| r.2 == route).unwrap_or(ROUTES.len() + 1),
        Matched::None if method == Method::GET => ROUTES.len(),
        Matched::OtherMethods(_) | Matched::None => ROUTES.len() + 1,
    }
}

/// Parses a numeric path segment.
pub fn path_num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, ApiError> {
    s.parse().map_err(|_| ApiError::invalid(format!("{what} must be a number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing() {
        let find = |m: Method, p: &'static str| find(&m, &p.trim_matches('/').split('/').collect::<Vec<_>>());
        assert_eq!(find(Method::GET, "/canvas"), Matched::Route(Route::Canvas, ["", ""]));
        assert_eq!(find(Method::GET, "/"), Matched::Route(Route::WebClient, ["", ""]));
        assert_eq!(find(Method::GET, "/users/bob"), Matched::Route(Route::UserLookup, ["bob", ""]));
        assert_eq!(find(Method::GET, "/users/Add"), Matched::Route(Route::UserLookup, ["Add", ""]));
        assert_eq!(find(Method::POST, "/users/add"), Matched::Route(Route::FriendAdd, ["", ""]));
        assert_eq!(find(Method::DELETE, "/rooms/7/messages/9"), Matched::Route(Route::DeleteRoomMessage, ["7", "9"]));
        // A concrete path shadows the templates it fits, as in OpenAPI.
        assert_eq!(find(Method::PUT, "/users/add"), Matched::OtherMethods(vec!["POST"]));
        assert_eq!(find(Method::GET, "/users/add"), Matched::OtherMethods(vec!["POST"]));
        assert_eq!(find(Method::PUT, "/users/bob"), Matched::OtherMethods(vec!["GET"]));
        assert_eq!(find(Method::GET, "/signup"), Matched::OtherMethods(vec!["POST"]));
        assert_eq!(find(Method::GET, "/app.js"), Matched::None);
        assert_eq!(find(Method::POST, "/rooms/7"), Matched::None);
    }

    #[test]
    fn route_templates_fit_the_matcher() {
        for (method, template, _) in ROUTES {
            assert!(matches!(*method, "GET" | "POST" | "DELETE"), "{method} {template}");
            assert!(template.starts_with('/'), "{template}");
            assert!(template.matches('{').count() <= MAX_PARAMS, "{template}");
        }
    }

    #[test]
    fn route_index_names_the_route_taken() {
        let labels: Vec<_> = route_labels().collect();
        let label = |m: Method, p: &str| labels[route_index(&m, p)];
        assert_eq!(label(Method::GET, "/rooms/7/messages"), ("GET", "/rooms/:id/messages"));
        assert_eq!(label(Method::POST, "/rooms"), ("POST", "/rooms"));
        assert_eq!(label(Method::GET, "/users/add"), ("other", "other"), "405");
        assert_eq!(label(Method::GET, "/app.js"), ("GET", "/*"));
        assert_eq!(label(Method::PUT, "/nowhere"), ("other", "other"));
        assert_eq!(labels.len(), ROUTES.len() + 2);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("x%41"), "xA");
    }

    #[test]
    fn every_route_pattern_is_reachable_and_raw_paths_map_to_patterns() {
        let labels: Vec<_> = route_labels().collect();
        for (i, (method, pattern)) in labels.iter().enumerate() {
            if *method == "other" {
                continue;
            }
            let path = pattern.replace(":id", "7").replace(":seq", "9").replace(":user_id", "3");
            let path = path.replace(":username", "bob").replace('*', "app.js");
            let method: Method = method.parse().unwrap();
            assert_eq!(route_index(&method, &path), i, "{method} {path}");
        }
        let other = labels.len() - 1;
        assert_eq!(labels[route_index(&Method::GET, "/rooms/42/messages")], ("GET", "/rooms/:id/messages"));
        assert_eq!(labels[route_index(&Method::GET, "/no/such/thing")], ("GET", "/*"));
        assert_eq!(route_index(&Method::PUT, "/signup"), other);
        assert_eq!(route_index(&"BREW".parse().unwrap(), "/coffee"), other);
    }
}
