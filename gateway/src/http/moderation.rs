//! Moderation over HTTP (ADMIN only): user bans, address bans, rollback. A ban ends the
//! user's sessions everywhere at once; address bans apply at the next accept.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use ipnet::IpNet;
use pixelparty_engine::{Target, now_ms};
use pixelparty_protocol::CloseReason;
use pixelparty_storage::Ban;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::{Ctx, Resp, empty, json, json_body};
use crate::app::App;

#[derive(Deserialize)]
struct BanUser {
    username: String,
    #[serde(default)]
    reason: String,
    duration_s: Option<u64>,
}

#[derive(Deserialize)]
struct BanIp {
    cidr: String,
    #[serde(default)]
    reason: String,
    duration_s: Option<u64>,
}

#[derive(Deserialize)]
struct Rollback {
    username: String,
    from_ms: u64,
    to_ms: u64,
}

/// Parses `1.2.3.4`, `10.0.0.0/8`, `::1` or `2001:db8::/32`.
pub fn parse_net(s: &str) -> Result<IpNet, ApiError> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| ApiError::invalid("cidr must be an address or address/prefix"))
}

fn ban_record(reason: String, by: u32, duration_s: Option<u64>) -> Ban {
    let now = now_ms();
    let reason = if reason.trim().is_empty() { "banned".to_owned() } else { reason.chars().take(200).collect() };
    Ban { reason, by, created_ms: now, expires_ms: duration_s.map(|s| now.saturating_add(s.saturating_mul(1000))) }
}

/// Bans (or unbans) a user by name as `actor`; shared by the public and admin endpoints.
pub async fn set_user_ban(
    app: &App,
    actor: u32,
    username: &str,
    ban: Option<(String, Option<u64>)>,
) -> Result<(), ApiError> {
    let user = app.store.user_by_name(username)?.ok_or_else(|| ApiError::not_found("no such user"))?;
    let id = user.id;
    match ban {
        Some((reason, duration_s)) => {
            let record = ban_record(reason, actor, duration_s);
            let message = record.reason.clone();
            app.write(move |tx| tx.ban_user(id, &record)).await?;
            app.engine.kick(id, CloseReason::Banned, &message).await;
            tracing::info!(user = id, actor, "user banned");
        }
        None => {
            let now = now_ms();
            app.write(move |tx| tx.unban_user(id, actor, now)).await?;
        }
    }
    Ok(())
}

/// Bans (or unbans) an address range as `actor`.
pub async fn set_net_ban(
    app: &App,
    actor: u32,
    cidr: &str,
    ban: Option<(String, Option<u64>)>,
) -> Result<(), ApiError> {
    let net = parse_net(cidr)?;
    match ban {
        Some((reason, duration_s)) => {
            let record = ban_record(reason, actor, duration_s);
            let message = record.reason.clone();
            app.write(move |tx| tx.ban_net(net, &record)).await?;
            app.bans.reload(&app.store)?;
            // Live sessions from the range end too, not only new connections.
            app.engine.end_sessions(Target::Net(net), CloseReason::Banned, &message).await;
            tracing::info!(%net, actor, "address range banned");
            return Ok(());
        }
        None => {
            let now = now_ms();
            app.write(move |tx| tx.unban_net(net, actor, now)).await?;
        }
    }
    app.bans.reload(&app.store)?;
    Ok(())
}

/// `POST /users/ban {username, reason, duration_s?}` and `POST /users/unban {username}`.
pub async fn ban_user(req: Request<Incoming>, ctx: &Ctx, on: bool) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    me.require_admin()?;
    let b: BanUser = json_body(req, &ctx.app.config.server).await?;
    if on && b.username.eq_ignore_ascii_case(&me.name) {
        return Err(ApiError::invalid("you cannot ban yourself"));
    }
    set_user_ban(&ctx.app, me.id, &b.username, on.then_some((b.reason, b.duration_s))).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /bans/ip {cidr, reason, duration_s?}` and `POST /bans/ip/remove {cidr}`.
pub async fn ban_ip(req: Request<Incoming>, ctx: &Ctx, on: bool) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    me.require_admin()?;
    let client = ctx.client_ip(&req);
    let b: BanIp = json_body(req, &ctx.app.config.server).await?;
    if on && parse_net(&b.cidr)?.contains(&client) {
        return Err(ApiError::invalid("that range holds your own address"));
    }
    set_net_ban(&ctx.app, me.id, &b.cidr, on.then_some((b.reason, b.duration_s))).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// The bans as JSON (shared with the admin endpoint).
pub fn bans_json(app: &App) -> Result<serde_json::Value, ApiError> {
    let mut users = Vec::new();
    for (id, b) in app.store.user_bans(10_000)? {
        let name = app.store.user(id)?.map(|u| u.name).unwrap_or_default();
        users.push(json!({ "id": id, "username": name, "reason": b.reason, "by": b.by, "created_ms": b.created_ms, "expires_ms": b.expires_ms }));
    }
    let ips: Vec<_> = app
        .store
        .net_bans()?
        .into_iter()
        .map(|b| json!({ "cidr": b.net.to_string(), "reason": b.ban.reason, "by": b.ban.by, "created_ms": b.ban.created_ms, "expires_ms": b.ban.expires_ms }))
        .collect();
    Ok(json!({ "users": users, "ips": ips }))
}

/// `GET /bans`.
pub async fn list_bans(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    ctx.auth(&req).await?.require_admin()?;
    Ok(json(StatusCode::OK, &bans_json(&ctx.app)?))
}

/// Runs a rollback off the event loop; shared with the admin endpoint.
pub async fn run_rollback(
    app: &std::sync::Arc<App>,
    actor: u32,
    username: &str,
    from_ms: u64,
    to_ms: u64,
) -> Result<crate::rollback::RollbackReport, ApiError> {
    if from_ms >= to_ms {
        return Err(ApiError::invalid("from_ms must be before to_ms"));
    }
    let user = app.store.user_by_name(username)?.ok_or_else(|| ApiError::not_found("no such user"))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let app2 = app.clone();
    std::thread::Builder::new()
        .name("rollback".into())
        .spawn(move || {
            let _ = tx.send(crate::rollback::run(&app2.store, &app2.engine, actor, user.id, from_ms, to_ms));
        })
        .map_err(|_| ApiError::internal("cannot start rollback"))?;
    Ok(rx.await.map_err(|_| ApiError::internal("rollback failed"))??)
}

/// `POST /canvas/rollback {username, from_ms, to_ms}`.
pub async fn rollback(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    me.require_admin()?;
    let r: Rollback = json_body(req, &ctx.app.config.server).await?;
    let report = run_rollback(&ctx.app, me.id, &r.username, r.from_ms, r.to_ms).await?;
    Ok(json(StatusCode::OK, &report))
}
