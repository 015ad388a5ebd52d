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
use pixelparty_engine::{Target, UserCtx, now_ms};
use pixelparty_protocol::CloseReason;
use pixelparty_storage::{Role, User};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::{COOKIE, Ctx, Resp, empty, json, json_body};
use crate::app::sha256;
use crate::hasher::HashError;
use crate::ratelimit::client_key;

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
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

/// The JSON form of a user.
pub fn user_json(u: &User) -> serde_json::Value {
    json!({ "id": u.id, "username": u.name, "role": role_name(u.role) })
}

/// `"user"` or `"admin"`.
pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::User => "user",
        Role::Admin => "admin",
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
    ctx.app.write(move |tx| tx.create_session(hash, id, now, ttl_s * 1000)).await?;
    let mut r = json(status, &json!({ "user": user_json(user), "token": token }));
    if let Some(c) = session_cookie(ctx, &token, ttl_s) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(r)
}

/// `POST /signup {username, password}`.
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
    if ctx.app.store.user_by_name(&c.username)?.is_some() {
        return Err(ApiError::conflict("username taken"));
    }
    let hash = ctx.app.hasher.hash(c.password).await.map_err(hash_error)?;
    let (name, now) = (c.username, now_ms());
    let user = ctx.app.write(move |tx| tx.create_user(&name, &hash, Role::User, now)).await?;
    ctx.app.metrics.signups.inc();
    tracing::info!(user = user.id, name = %user.name, "signed up");
    start_session(ctx, &user, StatusCode::CREATED).await
}

/// `POST /login {username, password}`.
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
    let user = ctx.app.store.user_by_name(&c.username)?;
    let stored = user.as_ref().map_or_else(|| ctx.app.dummy_hash.clone(), |u| u.password_hash.clone());
    let ok = ctx.app.hasher.verify(c.password, stored).await.map_err(hash_error)?;
    let Some(user) = user.filter(|_| ok) else {
        m.logins_failed.inc();
        return Err(ApiError::unauthorized("wrong username or password"));
    };
    if let Some(ban) = ctx.app.store.user_ban(user.id, now)? {
        m.logins_banned.inc();
        return Err(ApiError::banned(ban.reason, ban.expires_ms));
    }
    m.logins_ok.inc();
    start_session(ctx, &user, StatusCode::OK).await
}

/// `POST /logout`: ends this session.
pub async fn logout(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let user = ctx.auth(&req).await?;
    let hash = user.token_hash;
    ctx.app.write(move |tx| tx.revoke_session(hash)).await?;
    // Live sessions opened with this token end too (the user's other logins stay).
    let target = Target::Session { user: user.id, session: UserCtx::session_key(&hash) };
    ctx.app.engine.end_sessions(target, CloseReason::SessionRevoked, "logged out").await;
    let mut r = empty(StatusCode::NO_CONTENT);
    if let Some(c) = session_cookie(ctx, "", 0) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(r)
}

fn account_json(ctx: &Ctx, id: u32) -> Result<serde_json::Value, ApiError> {
    let u = ctx.app.store.user(id)?.ok_or_else(|| ApiError::not_found("user"))?;
    let mut v = user_json(&u);
    v["created_ms"] = json!(u.created_ms);
    Ok(v)
}

/// `GET /account`.
pub async fn account(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    Ok(json(StatusCode::OK, &account_json(ctx, me.id)?))
}

/// `GET /session`: `{"user": account}` when the request has a valid session, `{"user": null}`
/// otherwise, and `{"user": null, "banned": {"reason", "until_ms"}}` for a banned user's
/// session (200 in every case, so a page can ask without logging a failed request).
pub async fn session(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let body = match ctx.auth(&req).await {
        Ok(me) => json!({ "user": account_json(ctx, me.id)? }),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => json!({ "user": null }),
        Err(e) if e.code == "banned" => {
            json!({ "user": null, "banned": { "reason": e.message, "until_ms": e.until_ms.flatten() } })
        }
        Err(e) => return Err(e),
    };
    Ok(json(StatusCode::OK, &body))
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
