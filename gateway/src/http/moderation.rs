//! Moderation over HTTP (ADMIN only): user bans, address bans, rollback, rewinding an area of
//! the canvas to an earlier moment, the audit log. A ban ends the user's sessions everywhere
//! at once; address bans apply at the next accept.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use ipnet::IpNet;
use pixelparty_engine::now_ms;
use pixelparty_storage::Ban;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::openapi::{AdminErrors, BodyErrors, ErrorBody, ReadErrors, WriteErrors};
use super::social::UsernameBody;
use super::{Ctx, Resp, empty, json, json_body};
use crate::app::App;
use crate::rollback::RollbackReport;

/// The body of a user ban.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BanUserRequest {
    /// The user's name (any case).
    #[schema(example = "spammer")]
    pub username: String,
    /// Shown to the user (first 200 characters; default `banned`).
    #[serde(default)]
    pub reason: String,
    /// How long, seconds; absent or `null` for ever.
    pub duration_s: Option<u64>,
}

/// The body of an address ban.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BanIpRequest {
    /// An address (`192.0.2.7`, `2001:db8::1`) or a CIDR range (`10.0.0.0/8`, `2001:db8::/32`).
    #[schema(example = "192.0.2.0/24")]
    pub cidr: String,
    /// Shown to clients from the range (first 200 characters; default `banned`).
    #[serde(default)]
    pub reason: String,
    /// How long, seconds; absent or `null` for ever.
    pub duration_s: Option<u64>,
}

/// The body naming an address ban to lift.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CidrBody {
    /// The address or range, as banned.
    #[schema(example = "192.0.2.0/24")]
    pub cidr: String,
}

/// The body of a rollback.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RollbackRequest {
    /// Whose pixels.
    pub username: String,
    /// Start of the range, ms since the Unix epoch (inclusive).
    pub from_ms: u64,
    /// End of the range, ms since the Unix epoch; after `from_ms`.
    pub to_ms: u64,
}

/// A user ban.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserBanInfo {
    /// User id.
    pub id: u32,
    /// Name (empty if the account is gone).
    pub username: String,
    /// Reason.
    pub reason: String,
    /// Id of the administrator who banned (0: the admin endpoint).
    pub by: u32,
    /// When, ms since the Unix epoch.
    pub created_ms: u64,
    /// When it ends, ms since the Unix epoch; `null`: never.
    #[schema(required = true)]
    pub expires_ms: Option<u64>,
}

/// An address ban.
#[derive(Debug, Serialize, ToSchema)]
pub struct NetBanInfo {
    /// The range, `address/prefix`.
    pub cidr: String,
    /// Reason.
    pub reason: String,
    /// Id of the administrator who banned (0: the admin endpoint).
    pub by: u32,
    /// When, ms since the Unix epoch.
    pub created_ms: u64,
    /// When it ends, ms since the Unix epoch; `null`: never.
    #[schema(required = true)]
    pub expires_ms: Option<u64>,
}

/// The bans in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct Bans {
    /// User bans (at most 10000).
    pub users: Vec<UserBanInfo>,
    /// Address bans.
    pub ips: Vec<NetBanInfo>,
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
    let id = app.user_named(username).await?.id;
    match ban {
        Some((reason, duration_s)) => {
            let record = ban_record(reason, actor, duration_s);
            let message = record.reason.clone();
            app.db(move |b| b.ban_user(id, record)).await?;
            let reason = crate::cluster::control::Reason::Banned;
            app.control(crate::cluster::control::Control::EndUser { user: id, reason, message }).await?;
            tracing::info!(user = id, actor, "user banned");
        }
        None => {
            let now = now_ms();
            app.db(move |b| b.unban_user(id, actor, now)).await?;
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
            app.db(move |b| b.ban_net(net, record)).await?;
            reload_bans(app).await?;
            // Live sessions from the range end too, not only new connections.
            app.control(crate::cluster::control::Control::EndNet { net, message }).await?;
            tracing::info!(%net, actor, "address range banned");
            return Ok(());
        }
        None => {
            let now = now_ms();
            app.db(move |b| b.unban_net(net, actor, now)).await?;
        }
    }
    reload_bans(app).await
}

/// Reads the address bans into the cache (a reload that started later wins a race).
async fn reload_bans(app: &App) -> Result<(), ApiError> {
    let ticket = app.bans.ticket();
    let list = app.db(|b| b.net_bans()).await?;
    app.bans.set(ticket, list);
    // The other nodes read them again too.
    if let Some(cluster) = app.cluster.get()
        && let Err(e) = cluster.publish_control(&crate::cluster::control::Control::NetBansChanged).await
    {
        tracing::error!(error = %e, "the other nodes were not told of an address ban change");
    }
    Ok(())
}

/// Ban a user (ADMIN)
///
/// Ends their live sessions at once (closed with `banned`); their requests get 403 `banned`
/// until the ban ends.
#[utoipa::path(post, path = "/users/ban", tag = "moderation", security(("cookie" = []), ("bearer" = [])),
    request_body = BanUserRequest,
    responses(
        (status = 204, description = "Banned"),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
        BodyErrors, AdminErrors, WriteErrors,
    ))]
pub async fn ban_user(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    me.require_admin()?;
    let b: BanUserRequest = json_body(req, &ctx.app.config.server).await?;
    if b.username.eq_ignore_ascii_case(&me.name) {
        return Err(ApiError::invalid("you cannot ban yourself"));
    }
    set_user_ban(&ctx.app, me.id, &b.username, Some((b.reason, b.duration_s))).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Lift a user ban (ADMIN)
#[utoipa::path(post, path = "/users/unban", tag = "moderation", security(("cookie" = []), ("bearer" = [])),
    request_body = UsernameBody,
    responses(
        (status = 204, description = "Not banned (any more)"),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
        BodyErrors, AdminErrors, WriteErrors,
    ))]
pub async fn unban_user(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    me.require_admin()?;
    let b: UsernameBody = json_body(req, &ctx.app.config.server).await?;
    set_user_ban(&ctx.app, me.id, &b.username, None).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Ban an address or a CIDR range (ADMIN)
///
/// New connections from the range get a fixed 403 `banned` at accept; its live sessions end
/// at once. A range that holds your own address is refused.
#[utoipa::path(post, path = "/bans/ip", tag = "moderation", security(("cookie" = []), ("bearer" = [])),
    request_body = BanIpRequest,
    responses(
        (status = 204, description = "Banned"),
        (status = 409, description = "`conflict`: too many address bans", body = ErrorBody),
        BodyErrors, AdminErrors, WriteErrors,
    ))]
pub async fn ban_ip(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    me.require_admin()?;
    let client = ctx.client_ip(&req);
    let b: BanIpRequest = json_body(req, &ctx.app.config.server).await?;
    if parse_net(&b.cidr)?.contains(&client) {
        return Err(ApiError::invalid("that range holds your own address"));
    }
    set_net_ban(&ctx.app, me.id, &b.cidr, Some((b.reason, b.duration_s))).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Lift an address ban (ADMIN)
#[utoipa::path(post, path = "/bans/ip/remove", tag = "moderation", security(("cookie" = []), ("bearer" = [])),
    request_body = CidrBody,
    responses(
        (status = 204, description = "Not banned (any more)"),
        BodyErrors, AdminErrors, WriteErrors,
    ))]
pub async fn unban_ip(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    me.require_admin()?;
    let b: CidrBody = json_body(req, &ctx.app.config.server).await?;
    set_net_ban(&ctx.app, me.id, &b.cidr, None).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// The bans in force (shared with the admin endpoint).
pub async fn bans_json(app: &App) -> Result<Bans, ApiError> {
    let (user_bans, net_bans) = app
        .db(|b| {
            let (u, n) = (b.user_bans(10_000), b.net_bans());
            Box::pin(async move { Ok((u.await?, n.await?)) })
        })
        .await?;
    let mut names = app.names(user_bans.iter().map(|(id, _)| *id)).await?;
    let mut users = Vec::new();
    for (id, b) in user_bans {
        let username = names.remove(&id).unwrap_or_default();
        let (reason, by, created_ms, expires_ms) = (b.reason, b.by, b.created_ms, b.expires_ms);
        users.push(UserBanInfo { id, username, reason, by, created_ms, expires_ms });
    }
    let ips = net_bans
        .into_iter()
        .map(|b| NetBanInfo {
            cidr: b.net.to_string(),
            reason: b.ban.reason,
            by: b.ban.by,
            created_ms: b.ban.created_ms,
            expires_ms: b.ban.expires_ms,
        })
        .collect();
    Ok(Bans { users, ips })
}

/// User and address bans (ADMIN)
#[utoipa::path(get, path = "/bans", tag = "moderation", security(("cookie" = []), ("bearer" = [])),
    responses((status = 200, description = "The bans in force", body = Bans), AdminErrors, ReadErrors))]
pub async fn list_bans(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    ctx.auth(&req).await?.require_admin()?;
    Ok(json(StatusCode::OK, &bans_json(&ctx.app).await?))
}

/// Runs a rollback off the event loop; shared with the admin endpoint.
pub async fn run_rollback(
    app: &std::sync::Arc<App>,
    actor: u32,
    username: &str,
    from_ms: u64,
    to_ms: u64,
) -> Result<RollbackReport, ApiError> {
    if from_ms >= to_ms {
        return Err(ApiError::invalid("from_ms must be before to_ms"));
    }
    let user = app.user_named(username).await?;
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

/// Rewinds `r.rect` (default: the whole canvas) to `r.at_ms` as `actor` (0: the admin
/// endpoint), one rewind at a time on this node (409 otherwise).
pub async fn run_rewind(
    app: &std::sync::Arc<App>,
    actor: u32,
    r: crate::admin::RewindRequest,
) -> Result<RollbackReport, ApiError> {
    use std::sync::atomic::Ordering;
    if r.at_ms > now_ms() {
        return Err(ApiError::invalid("at_ms is in the future"));
    }
    // One rewind at a time (each replays the journal).
    if app.rewinding.swap(true, Ordering::AcqRel) {
        return Err(ApiError::conflict("a rewind is already running"));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let app2 = app.clone();
    std::thread::Builder::new()
        .name("rewind".into())
        .spawn(move || {
            let report = crate::rewind::run(&app2.store, &app2.engine, actor, r.at_ms, r.rect);
            app2.rewinding.store(false, Ordering::Release);
            let _ = tx.send(report);
        })
        .map_err(|_| {
            app.rewinding.store(false, Ordering::Release);
            ApiError::internal("cannot start the rewind")
        })?;
    Ok(rx.await.map_err(|_| ApiError::internal("rewind failed"))??)
}

/// A page of the audit log, newest first, below `before`, with the actors' names.
pub async fn audit_page(app: &App, before: u64, limit: usize) -> Result<crate::admin_openapi::AuditPage, ApiError> {
    let list = app.db(move |b| b.audit_log(before, limit)).await?;
    use pixelparty_storage::AuditAction as A;
    // Actions whose target is a user id.
    let user_target = |e: &pixelparty_storage::AuditEntry| -> Option<u32> {
        matches!(e.action, A::BanUser | A::UnbanUser | A::SetRole | A::Kick | A::Rollback)
            .then(|| e.target.parse().ok())
            .flatten()
    };
    let ids = list.iter().map(|e| e.actor).filter(|a| *a != 0).chain(list.iter().filter_map(user_target));
    let names = app.names(ids).await?;
    let entries = list
        .into_iter()
        .map(|e| crate::admin_openapi::AuditEntry {
            target_name: user_target(&e).map(|u| names.get(&u).cloned().unwrap_or_default()),
            seq: e.seq,
            time_ms: e.time_ms,
            actor: e.actor,
            actor_name: if e.actor == 0 {
                "admin endpoint".into()
            } else {
                names.get(&e.actor).cloned().unwrap_or_default()
            },
            action: e.action.name().to_owned(),
            target: e.target,
            detail: e.detail,
        })
        .collect();
    Ok(crate::admin_openapi::AuditPage { entries })
}

/// Rewind an area of the canvas to an earlier moment (ADMIN)
///
/// Rebuilds the canvas as it was at `at_ms` from the journal and gives every pixel of `rect`
/// (default: the whole canvas) that differs its colour of then back, as compare-and-set
/// restores like a rollback's: a pixel painted after the rewind began is never overwritten.
/// Clients see ordinary updates. One rewind runs at a time. Recorded in the audit log.
#[utoipa::path(post, path = "/canvas/rewind", tag = "moderation", operation_id = "rewind_canvas",
    security(("cookie" = []), ("bearer" = [])),
    request_body = crate::admin::RewindRequest,
    responses(
        (status = 200, description = "What the rewind did", body = RollbackReport),
        (status = 409, description = "`conflict`: a rewind is already running", body = ErrorBody),
        BodyErrors, AdminErrors, WriteErrors,
    ))]
pub async fn rewind(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    me.require_admin()?;
    let r: crate::admin::RewindRequest = json_body(req, &ctx.app.config.server).await?;
    Ok(json(StatusCode::OK, &run_rewind(&ctx.app, me.id, r).await?))
}

/// The moderation audit log (ADMIN)
///
/// Bans, unbans, kicks, rollbacks, rewinds and role changes, newest first, with who did them.
#[utoipa::path(get, path = "/audit", tag = "moderation", operation_id = "audit_log",
    security(("cookie" = []), ("bearer" = [])),
    params(
        ("before" = Option<u64>, Query, description = "Entries with a sequence below this (default: the newest)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Most entries (default 100)"),
    ),
    responses(
        (status = 200, description = "A page of the audit log", body = crate::admin_openapi::AuditPage),
        (status = 400, description = "`invalid_argument`: a query parameter is not a number of its range", body = ErrorBody),
        AdminErrors, ReadErrors,
    ))]
pub async fn audit(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    me.require_admin()?;
    let q = super::query(&req);
    let before = super::query_num(&q, "before", u64::MAX)?;
    let limit = super::query_num(&q, "limit", 100usize)?;
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1 to 1000"));
    }
    Ok(json(StatusCode::OK, &audit_page(&ctx.app, before, limit).await?))
}

/// Roll back a user's pixels in a time range (ADMIN)
///
/// Restores each pixel the user painted in the range to its colour before, only where the
/// pixel still holds that user's update (a compare-and-set at the tile's home shard: nobody's
/// later paint is overwritten). The inspector shows a restored pixel as
/// `restored_by_rollback_of` that user.
#[utoipa::path(post, path = "/canvas/rollback", tag = "moderation", security(("cookie" = []), ("bearer" = [])),
    request_body = RollbackRequest,
    responses(
        (status = 200, description = "What the rollback did", body = RollbackReport),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
        BodyErrors, AdminErrors, WriteErrors,
    ))]
pub async fn rollback(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    me.require_admin()?;
    let r: RollbackRequest = json_body(req, &ctx.app.config.server).await?;
    let report = run_rollback(&ctx.app, me.id, &r.username, r.from_ms, r.to_ms).await?;
    Ok(json(StatusCode::OK, &report))
}
