//! Accounts and sessions over HTTP: sign-up, login, logout, the current account.
//!
//! Passwords are hashed with argon2id on the hashing pool (never on a shard thread). A login
//! for an unknown name still runs one verification against a dummy hash so that timing does
//! not reveal which names exist. Tokens are 256-bit random, returned once, stored only as
//! their SHA-256, and set as an `HttpOnly; SameSite=Strict` cookie.

use base64::Engine as _;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode};
use pixelparty_engine::{UserCtx, now_ms};
use pixelparty_storage::{Role, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::openapi::{AddressErrors, BodyErrors, ErrorBody, ReadErrors, SessionErrors, WriteErrors};
use super::{COOKIE, Ctx, Resp, empty, json, json_body};
use crate::app::sha256;
use crate::hasher::HashError;
use crate::ratelimit::client_key;

/// The body of `POST /signup` and `POST /login`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Credentials {
    /// 3 to 32 characters of `A-Z a-z 0-9 _ . -`, unique regardless of case. A login with a
    /// name no account can have fails like a wrong password (401).
    #[schema(pattern = r"^[A-Za-z0-9_.-]{3,32}$", example = "alice")]
    pub username: String,
    /// 8 to 256 bytes of UTF-8 (sign-up refuses others with 400).
    #[schema(max_length = 256, example = "correct horse")]
    pub password: String,
}

/// A role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    /// A user.
    User,
    /// An administrator (moderation routes).
    Admin,
}

impl From<Role> for RoleName {
    fn from(r: Role) -> Self {
        match r {
            Role::User => Self::User,
            Role::Admin => Self::Admin,
        }
    }
}

/// A user as others see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserInfo {
    /// User id.
    pub id: u32,
    /// Name.
    pub username: String,
    /// Role.
    pub role: RoleName,
}

impl From<&User> for UserInfo {
    fn from(u: &User) -> Self {
        Self { id: u.id, username: u.name.clone(), role: u.role.into() }
    }
}

/// The logged-in account.
#[derive(Debug, Serialize, ToSchema)]
pub struct Account {
    /// User id.
    pub id: u32,
    /// Name.
    pub username: String,
    /// Role.
    pub role: RoleName,
    /// When the account was created, ms since the Unix epoch.
    pub created_ms: u64,
}

/// The answer to a sign-up or a login.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoggedIn {
    /// The account.
    pub user: UserInfo,
    /// The session token (also set as the `pp_session` cookie): send it as
    /// `Authorization: Bearer <token>`. Shown once; the server keeps only its hash.
    pub token: String,
}

/// The answer of `GET /session`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// The logged-in account, or `null` without a valid session.
    #[schema(required = true)]
    pub user: Option<Account>,
    /// Present when the session's user is banned: why and until when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub banned: Option<BanInfo>,
}

/// A ban as its user is told of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BanInfo {
    /// The reason given.
    pub reason: String,
    /// When the ban ends (ms since the Unix epoch); `null` for a permanent ban.
    #[schema(required = true)]
    pub until_ms: Option<u64>,
}

/// Checks a user name: 3..=32 characters of `A-Z a-z 0-9 _ . -`.
pub fn valid_username(name: &str) -> bool {
    (3..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn hash_error(e: HashError) -> ApiError {
    match e {
        HashError::Overloaded => ApiError::overloaded(),
        HashError::Failed => ApiError::internal("password hashing failed"),
    }
}

fn new_token() -> Result<String, ApiError> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|_| ApiError::internal("no randomness"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

fn session_cookie(ctx: &Ctx, token: &str, max_age_s: u64) -> Option<HeaderValue> {
    let secure = if ctx.app.config.server.cookie_secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"))
        .ok()
}

async fn start_session(ctx: &Ctx, user: &User, status: StatusCode) -> Result<Resp, ApiError> {
    let token = new_token()?;
    let ttl_s = ctx.app.config.auth.session_ttl_hours * 3600;
    let (hash, id, now) = (sha256(token.as_bytes()), user.id, now_ms());
    ctx.app.db(move |b| b.create_session(hash, id, now, ttl_s * 1000)).await?;
    let mut r = json(status, &LoggedIn { user: user.into(), token: token.clone() });
    if let Some(c) = session_cookie(ctx, &token, ttl_s) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(r)
}

/// Create an account and log in
///
/// Answers the session token and sets it as the `pp_session` cookie (`HttpOnly`,
/// `SameSite=Strict`). Sign-ups are limited per client address (`auth.signup_per_ip_per_hour`).
#[utoipa::path(post, path = "/signup", tag = "auth", request_body = Credentials,
    responses(
        (status = 201, description = "Created and logged in", body = LoggedIn,
            headers(("set-cookie" = String, description = "`pp_session=<token>; Path=/; HttpOnly; SameSite=Strict; Max-Age=...`"))),
        (status = 409, description = "`conflict`: the name is taken", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many sign-ups from this address; see `Retry-After`", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait"))),
        BodyErrors, AddressErrors, WriteErrors,
    ))]
pub async fn signup(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let client = client_key(ctx.client_ip(&req));
    let c: Credentials = json_body(req, &ctx.app.config.server).await?;
    if !valid_username(&c.username) {
        return Err(ApiError::invalid("username must be 3-32 characters of A-Z, a-z, 0-9, _ . -"));
    }
    if !(8..=256).contains(&c.password.len()) {
        return Err(ApiError::invalid("password must be 8-256 bytes"));
    }
    ctx.app.signup_ip.check(client, now_ms()).map_err(ApiError::rate_limited)?;
    let name = c.username.clone();
    if ctx.app.db(move |b| b.user_by_name(name)).await?.is_some() {
        return Err(ApiError::conflict("username taken"));
    }
    let hash = ctx.app.hasher.hash(c.password).await.map_err(hash_error)?;
    let (name, now) = (c.username, now_ms());
    let user = ctx.app.db(move |b| b.create_user(name, hash, Role::User, now)).await?;
    ctx.app.metrics.signups.inc();
    tracing::info!(user = user.id, name = %user.name, "signed up");
    start_session(ctx, &user, StatusCode::CREATED).await
}

/// Log in
///
/// Answers a new session token and sets it as the `pp_session` cookie. Limited per client
/// address and per account (`auth.login_per_ip_per_min`, `auth.login_per_account_per_min`).
#[utoipa::path(post, path = "/login", tag = "auth", request_body = Credentials,
    responses(
        (status = 200, description = "Logged in", body = LoggedIn,
            headers(("set-cookie" = String, description = "`pp_session=<token>; Path=/; HttpOnly; SameSite=Strict; Max-Age=...`"))),
        (status = 401, description = "`unauthorized`: wrong username or password", body = ErrorBody),
        (status = 403, description = "`banned`: the account or the client address is banned (reason in `message`, end in `until_ms`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many attempts; see `Retry-After`", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait"))),
        BodyErrors, WriteErrors,
    ))]
pub async fn login(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let client = client_key(ctx.client_ip(&req));
    let c: Credentials = json_body(req, &ctx.app.config.server).await?;
    let now = now_ms();
    let m = &ctx.app.metrics;
    if let Err(wait) = ctx.app.login_ip.check(client, now) {
        m.logins_limited.inc();
        return Err(ApiError::rate_limited(wait));
    }
    // A name no account can have, or an oversized password, fails like a wrong password,
    // before it is keyed in the per-account limiter or looked up.
    if !valid_username(&c.username) || c.password.len() > 256 {
        m.logins_failed.inc();
        return Err(ApiError::unauthorized("wrong username or password"));
    }
    if let Err(wait) = ctx.app.login_account.check(pixelparty_storage::accounts::fold_name(&c.username), now) {
        m.logins_limited.inc();
        return Err(ApiError::rate_limited(wait));
    }
    let name = c.username.clone();
    let user = ctx.app.db(move |b| b.user_by_name(name)).await?;
    let stored = user.as_ref().map_or_else(|| ctx.app.dummy_hash.clone(), |u| u.password_hash.clone());
    let ok = ctx.app.hasher.verify(c.password, stored).await.map_err(hash_error)?;
    let Some(user) = user.filter(|_| ok) else {
        m.logins_failed.inc();
        return Err(ApiError::unauthorized("wrong username or password"));
    };
    let id = user.id;
    if let Some(ban) = ctx.app.db(move |b| b.user_ban(id, now)).await? {
        m.logins_banned.inc();
        return Err(ApiError::banned(ban.reason, ban.expires_ms));
    }
    m.logins_ok.inc();
    start_session(ctx, &user, StatusCode::OK).await
}

/// Log out
///
/// Ends this login session, and the WebSocket and WebTransport sessions opened with its token
/// (closed with `session_revoked`); clears the cookie.
#[utoipa::path(post, path = "/logout", tag = "auth", security(("cookie" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Logged out",
            headers(("set-cookie" = String, description = "`pp_session=; ...; Max-Age=0`"))),
        SessionErrors, WriteErrors,
    ))]
pub async fn logout(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let user = ctx.auth(&req).await?;
    let hash = user.token_hash;
    ctx.app.db(move |b| b.revoke_session(hash)).await?;
    // Live sessions opened with this token end too (the user's other logins stay).
    let event = crate::cluster::control::Control::EndSession {
        user: user.id,
        session: UserCtx::session_key(&hash),
        message: "logged out".into(),
    };
    ctx.app.control(event).await?;
    let mut r = empty(StatusCode::NO_CONTENT);
    if let Some(c) = session_cookie(ctx, "", 0) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(r)
}

async fn account_of(ctx: &Ctx, id: u32) -> Result<Account, ApiError> {
    let u = ctx.app.db(move |b| b.user(id)).await?.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Account { id: u.id, username: u.name, role: u.role.into(), created_ms: u.created_ms })
}

/// The logged-in account
#[utoipa::path(get, path = "/account", tag = "auth", security(("cookie" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The account", body = Account),
        (status = 404, description = "`not_found`: the account no longer exists", body = ErrorBody),
        SessionErrors, ReadErrors,
    ))]
pub async fn account(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    Ok(json(StatusCode::OK, &account_of(ctx, me.id).await?))
}

/// The logged-in account, or null
///
/// `{"user": account}` when the request has a valid session, `{"user": null}` otherwise, and
/// `{"user": null, "banned": {"reason", "until_ms"}}` for a banned user's session (200 in
/// every case, so a page can ask without logging a failed request). A session cookie that no
/// longer names a session is cleared (`Max-Age=0`): the page cannot remove an HttpOnly cookie
/// itself, and would otherwise present it forever (a visitor session needs no credentials).
#[utoipa::path(get, path = "/session", tag = "auth", security((), ("cookie" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The account or null (and the ban, for a banned user)", body = SessionInfo,
            headers(("set-cookie" = String, description = "`pp_session=; ...; Max-Age=0` when the cookie names no session"))),
        (status = 403, description = "`banned`: the client address is banned (reason in `message`, end in `until_ms`)", body = ErrorBody),
        (status = 404, description = "`not_found`: the session's account no longer exists", body = ErrorBody),
        ReadErrors,
    ))]
pub async fn session(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let mut stale = false;
    let info = match ctx.auth(&req).await {
        Ok(me) => SessionInfo { user: Some(account_of(ctx, me.id).await?), banned: None },
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            // Only when the cookie is what failed (a stale bearer token beside a good cookie
            // leaves the cookie alone).
            stale = super::session_cookie_of(&req).is_some() && super::token_of(&req) == super::session_cookie_of(&req);
            SessionInfo { user: None, banned: None }
        }
        Err(e) if e.code == "banned" => {
            SessionInfo { user: None, banned: Some(BanInfo { reason: e.message, until_ms: e.until_ms.flatten() }) }
        }
        Err(e) => return Err(e),
    };
    let mut r = json(StatusCode::OK, &info);
    if stale && let Some(c) = session_cookie(ctx, "", 0) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(valid_username("alice_1.x-y"));
        assert!(!valid_username("al"));
        assert!(!valid_username("a b c"));
        assert!(!valid_username("zoë_zoë"));
        assert!(!valid_username(&"a".repeat(33)));
    }
}
