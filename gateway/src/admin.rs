//! The admin endpoint: its own listener (default 127.0.0.1:9091) on its own thread, every
//! route but `/healthz`, `/readyz` and `/openapi.json` (its OpenAPI document, see
//! [`crate::admin_openapi`]) behind `Authorization: Bearer <admin token>`.
//! Prometheus `/metrics` (rendered by [`crate::metrics`]), stats, snapshot now, bans, kick,
//! rollback, roles, audit log.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use serde_json::json;

use crate::app::{App, sha256};
use crate::http::error::ApiError;
// The bodies are the documented types (one definition for the handler and the document).
use crate::admin_openapi::{KickRequest, SetRole};
use crate::http::auth::RoleName;
use crate::http::moderation::{
    BanIpRequest, BanUserRequest, RollbackRequest, bans_json, run_rollback, set_net_ban, set_user_ban,
};
use crate::http::{Resp, error_response, json, json_body, query, query_num};

/// The running admin endpoint.
#[derive(Debug)]
pub struct AdminHandle {
    stop: tokio::sync::watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
}

impl AdminHandle {
    /// Stops the endpoint and waits for its thread (dropping its connections).
    pub fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.thread.join();
    }
}

/// Starts the admin endpoint on `listener` in a thread of its own.
pub fn spawn(listener: std::net::TcpListener, app: Arc<App>) -> std::io::Result<AdminHandle> {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let thread = std::thread::Builder::new().name("admin".into()).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => return tracing::error!(error = %e, "admin runtime"),
        };
        rt.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
            if let Some(every) = app.backups.interval {
                tokio::spawn(scheduled_backups(app.clone(), every));
            }
            // Friends' online status (and, in cluster mode, this node's list for the others).
            tokio::spawn(crate::online::run(app.clone()));
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = stopped.changed() => return,
                };
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let app = app.clone();
                let request_timeout = Duration::from_millis(app.config.server.request_timeout_ms);
                tokio::spawn(async move {
                    let service = service_fn(move |req| serve(req, app.clone()));
                    let _ = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(request_timeout)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    })?;
    Ok(AdminHandle { stop, thread })
}

async fn serve(req: Request<Incoming>, app: Arc<App>) -> Result<Resp, Infallible> {
    Ok(route(req, &app).await.unwrap_or_else(|e| error_response(&e)))
}

fn authorized(req: &Request<Incoming>, app: &App) -> bool {
    let token =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    // Compare hashes so the comparison time does not depend on how much of the token matches.
    token.is_some_and(|t| sha256(t.trim().as_bytes()) == app.admin_token_hash)
}

fn text(status: StatusCode, body: String, content_type: &'static str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn ready(app: &App) -> bool {
    app.store.is_ready() && app.accepting.load(Ordering::Acquire) && app.cluster.get().is_none_or(|c| c.is_ready())
}

/// Every route of the admin endpoint, `(method, path)`: the document lists exactly these (a
/// test checks both ways), and a known path with another method answers 405 with `Allow`.
pub const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/metrics"),
    ("GET", "/stats"),
    ("POST", "/snapshot"),
    ("GET", "/bans"),
    ("POST", "/bans/user"),
    ("POST", "/unbans/user"),
    ("POST", "/bans/ip"),
    ("POST", "/unbans/ip"),
    ("POST", "/kick"),
    ("POST", "/rollback"),
    ("POST", "/users/role"),
    ("GET", "/audit"),
    ("POST", "/backup"),
    ("GET", "/backups"),
    ("POST", "/canvas/rewind"),
];

/// The answer to `POST /backup`.
fn backup_answer(r: Result<crate::backup::Manifest, crate::backup::BackupError>) -> Result<Resp, ApiError> {
    match r {
        Ok(m) => Ok(json(StatusCode::OK, &m)),
        Err(crate::backup::BackupError::Busy) => Err(ApiError::conflict("a backup is already running")),
        Err(crate::backup::BackupError::Failed(e)) => {
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "backup_failed", format!("{e:#}")))
        }
    }
}

/// Takes a backup every `every` (the first one `every` after start) while the server runs.
async fn scheduled_backups(app: Arc<App>, every: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if !app.accepting.load(Ordering::Acquire) {
            return;
        }
        // The outcome is logged and counted by `take`; a busy one (an operator's backup
        // running) is simply skipped.
        let _ = app.backups.take(&app.store).await;
    }
}

/// The body of a rewind.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewindRequest {
    /// The moment to go back to, ms since the Unix epoch.
    pub at_ms: u64,
    /// Only this rectangle (default: the whole canvas).
    #[serde(default)]
    pub rect: Option<crate::rewind::Rect>,
}

async fn route(req: Request<Incoming>, app: &Arc<App>) -> Result<Resp, ApiError> {
    let path = req.uri().path().to_owned();
    let methods: Vec<&str> = ADMIN_ROUTES.iter().filter(|(_, p)| *p == path).map(|(m, _)| *m).collect();
    if !methods.is_empty() && !methods.contains(&req.method().as_str()) {
        return Ok(crate::http::method_not_allowed(&methods));
    }
    let server = &app.config.server;
    match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => return Ok(text(StatusCode::OK, "ok\n".into(), "text/plain")),
        (&Method::GET, "/openapi.json") => return Ok(crate::admin_openapi::document()),
        (&Method::GET, "/readyz") => {
            return Ok(if ready(app) {
                text(StatusCode::OK, "ready\n".into(), "text/plain")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into(), "text/plain")
            });
        }
        _ => {}
    }
    if !authorized(&req, app) {
        return Err(ApiError::unauthorized("admin token required (Authorization: Bearer ...)"));
    }
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/metrics") => {
            let body = app.metrics.encode().map_err(|_| ApiError::internal("metrics encoding failed"))?;
            Ok(text(StatusCode::OK, body, crate::metrics::CONTENT_TYPE))
        }
        (Method::GET, "/stats") => stats(app).await,
        (Method::POST, "/snapshot") => {
            let app2 = app.clone();
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                app2.snapshots.refresh();
                let _ = tx.send(app2.snapshots.snapshotter().persist());
            });
            let written = rx.await.map_err(|_| ApiError::internal("snapshot failed"))??;
            Ok(json(StatusCode::OK, &json!({ "tiles_written": written, "version": app.snapshots.latest().version })))
        }
        (Method::GET, "/bans") => Ok(json(StatusCode::OK, &bans_json(app).await?)),
        (Method::POST, "/bans/user") => {
            let b: BanUserRequest = json_body(req, server).await?;
            set_user_ban(app, 0, &b.username, Some((b.reason, b.duration_s))).await?;
            Ok(json(StatusCode::OK, &json!({ "banned": b.username })))
        }
        (Method::POST, "/unbans/user") => {
            let b: BanUserRequest = json_body(req, server).await?;
            set_user_ban(app, 0, &b.username, None).await?;
            Ok(json(StatusCode::OK, &json!({ "unbanned": b.username })))
        }
        (Method::POST, "/bans/ip") => {
            let b: BanIpRequest = json_body(req, server).await?;
            set_net_ban(app, 0, &b.cidr, Some((b.reason, b.duration_s))).await?;
            Ok(json(StatusCode::OK, &json!({ "banned": b.cidr })))
        }
        (Method::POST, "/unbans/ip") => {
            let b: BanIpRequest = json_body(req, server).await?;
            set_net_ban(app, 0, &b.cidr, None).await?;
            Ok(json(StatusCode::OK, &json!({ "unbanned": b.cidr })))
        }
        (Method::POST, "/kick") => {
            let k: KickRequest = json_body(req, server).await?;
            let user = app.user_named(&k.username).await?;
            let message = if k.message.is_empty() { "kicked by an administrator".to_owned() } else { k.message };
            let reason = crate::cluster::control::Reason::Kicked;
            app.control(crate::cluster::control::Control::EndUser { user: user.id, reason, message: message.clone() })
                .await?;
            let (id, now) = (user.id, pixelparty_engine::now_ms());
            let entry = pixelparty_storage::AuditDraft {
                actor: 0,
                action: pixelparty_storage::AuditAction::Kick,
                target: id.to_string(),
                detail: message,
                time_ms: now,
            };
            app.db(move |b| b.audit(entry)).await?;
            Ok(json(StatusCode::OK, &json!({ "kicked": k.username })))
        }
        (Method::POST, "/rollback") => {
            let r: RollbackRequest = json_body(req, server).await?;
            let report = run_rollback(app, 0, &r.username, r.from_ms, r.to_ms).await?;
            Ok(json(StatusCode::OK, &report))
        }
        (Method::POST, "/users/role") => {
            let r: SetRole = json_body(req, server).await?;
            let role = match r.role {
                RoleName::Admin => pixelparty_storage::Role::Admin,
                RoleName::User => pixelparty_storage::Role::User,
            };
            let user = app.user_named(&r.username).await?;
            let (id, now) = (user.id, pixelparty_engine::now_ms());
            app.db(move |b| b.set_role(id, role, 0, now)).await?;
            // Live sessions carry the role they connected with: end them, so that a demoted
            // admin keeps no admin power and a promoted user reconnects with it.
            let (reason, message) = (crate::cluster::control::Reason::Kicked, "your role changed; reconnect".into());
            app.control(crate::cluster::control::Control::EndUser { user: id, reason, message }).await?;
            Ok(json(StatusCode::OK, &r))
        }
        (Method::GET, "/audit") => {
            let q = query(&req);
            let before = query_num(&q, "before", u64::MAX)?;
            let limit = query_num(&q, "limit", 100usize)?.clamp(1, 1000);
            Ok(json(StatusCode::OK, &crate::http::moderation::audit_page(app, before, limit).await?))
        }
        // A task of its own: the backup goes on (and ends cleanly) if the client goes away.
        (Method::POST, "/backup") => {
            let task = {
                let app = app.clone();
                tokio::spawn(async move { app.backups.take(&app.store).await })
            };
            backup_answer(task.await.map_err(|_| ApiError::internal("backup task failed"))?)
        }
        (Method::GET, "/backups") => {
            let loc = app
                .backups
                .location()
                .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "backup_failed", format!("{e:#}")))?;
            let list = crate::backup::list(&loc)
                .await
                .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "backup_failed", format!("{e:#}")))?;
            Ok(json(StatusCode::OK, &json!({ "location": loc.to_string(), "backups": list })))
        }
        (Method::POST, "/canvas/rewind") => {
            let r: RewindRequest = json_body(req, server).await?;
            Ok(json(StatusCode::OK, &crate::http::moderation::run_rewind(app, 0, r).await?))
        }
        _ => Err(ApiError::not_found("no such admin route")),
    }
}

async fn stats(app: &App) -> Result<Resp, ApiError> {
    let users = app.db(|b| b.user_count()).await?;
    let shards = app.engine.stats(Duration::from_secs(2)).ok_or_else(|| ApiError::internal("shards did not answer"))?;
    let list: Vec<_> = shards
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({ "shard": i, "sessions": s.sessions, "rooms": s.rooms, "queued_bytes": s.queued_bytes,
                    "pending_outbound": s.pending_outbound, "pending_paints": s.pending_paints, "ticks_in_flight": s.ticks_in_flight })
        })
        .collect();
    let snap = app.snapshots.latest();
    Ok(json(
        StatusCode::OK,
        &json!({
            "connections": app.connections.load(Ordering::Relaxed),
            "sessions": shards.iter().map(|s| s.sessions).sum::<usize>(),
            "users": users,
            "snapshot_version": snap.version,
            "last_seq": app.engine.shared().next_seq.load(Ordering::Relaxed).saturating_sub(1),
            "store_poisoned": app.store.is_poisoned(),
            "shards": list,
        }),
    ))
}
