//! The WebSocket upgrade of `GET /ws`: the handshake headers, the `Origin` check, the session
//! (cookie or bearer token, or a logged-out visitor's read-only session with `?visitor=1` and
//! no credentials), bans, then the 101 answer and the hand-over of the upgraded TCP stream to
//! a [`session`](super::session) task on this shard.

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::http::error::ApiError;
use crate::http::{Ctx, Resp, empty};

use super::session::run;

fn header_is<B>(req: &Request<B>, name: header::HeaderName, token: &str) -> bool {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// Whether the request's `Origin` may open a WebSocket.
pub fn origin_allowed(req: &Request<Incoming>, allowed: &[String]) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true; // Not a browser: no cross-site hijacking to fear.
    };
    if !allowed.is_empty() {
        return allowed.iter().any(|a| a.eq_ignore_ascii_case(origin));
    }
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// `GET /ws`: checks the upgrade, the origin, the session and bans, answers 101 and hands the
/// connection to the engine.
pub async fn upgrade(mut req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let refused = |e: ApiError| {
        ctx.app.metrics.ws_refused.inc();
        e
    };
    let accept = handshake_accept(&req).map_err(refused)?;
    if !origin_allowed(&req, &ctx.app.config.server.allowed_origins) {
        return Err(refused(ApiError::forbidden("origin not allowed")));
    }
    // Credentials that are presented are always checked; `?visitor=1` without any is a
    // visitor (PROTOCOL.md, section 3).
    let visitor = !crate::http::presents_credentials(&req)
        && crate::http::query(&req).get("visitor").map(String::as_str) == Some("1");
    let signed_in = if visitor { None } else { Some(ctx.auth(&req).await.map_err(refused)?) };
    if let Some(ban) = ctx.app.bans.find(ctx.client_ip(&req), pixelparty_engine::now_ms()) {
        return Err(refused(ApiError::banned(ban.ban.reason, ban.ban.expires_ms)));
    }
    let (user, token_hash, visitor) = match signed_in {
        Some(user) => {
            let token_hash = user.token_hash;
            let blocks = ctx.app.blocks_of(user.id).await.map_err(refused)?;
            (user.session_ctx(ctx.client_ip(&req), blocks), Some(token_hash), None)
        }
        None => {
            let slot = ctx.app.admit_visitor().ok_or_else(|| refused(ApiError::overloaded()))?;
            (pixelparty_engine::UserCtx::visitor(ctx.client_ip(&req)), None, Some(slot))
        }
    };
    let (shard, app) = (ctx.shard.clone(), ctx.app.clone());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::task::spawn_local(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => return tracing::debug!(error = %e, "upgrade failed"),
        };
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                app.metrics.ws_opened.inc();
                // A task of its own, so the session's memory is only its own state machine.
                let leftover = (!parts.read_buf.is_empty()).then(|| parts.read_buf.to_vec());
                tokio::task::spawn_local(run(shard, app, parts.io.into_inner(), leftover, user, token_hash, visitor));
            }
            Err(_) => tracing::error!("upgraded connection is not a TCP stream"),
        }
    });
    Ok(switching_protocols(&accept))
}

/// Checks the handshake headers of a WebSocket upgrade request (RFC 6455 4.2.1: `Connection:
/// upgrade`, `Upgrade: websocket`, a key, version 13) and returns the `Sec-WebSocket-Accept`
/// value. Origin, session and bans are [`upgrade`]'s business.
pub fn handshake_accept<B>(req: &Request<B>) -> Result<String, ApiError> {
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY);
    let is_upgrade = header_is(req, header::CONNECTION, "upgrade") && header_is(req, header::UPGRADE, "websocket");
    let Some(key) = key.filter(|_| is_upgrade) else {
        return Err(ApiError::new(StatusCode::UPGRADE_REQUIRED, "upgrade_required", "this is a WebSocket endpoint"));
    };
    if req.headers().get(header::SEC_WEBSOCKET_VERSION).and_then(|v| v.to_str().ok()) != Some("13") {
        // RFC 6455 4.4: 426 with the version spoken (`websocket_refusal` adds the headers).
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            "Sec-WebSocket-Version must be 13",
        ));
    }
    Ok(tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

/// The 101 answer that completes an upgrade whose key gave `accept`.
pub fn switching_protocols(accept: &str) -> Resp {
    let mut r = empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}
