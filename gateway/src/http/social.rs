//! Friends, friend requests and blocks over HTTP. Blocks take effect in live sessions at once
//! (the engine is told); friendship is read from the store when a direct message is sent.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use pixelparty_engine::now_ms;
use pixelparty_storage::{FriendOutcome, Relation, Removed, User};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::user_json;
use super::error::ApiError;
use super::{Ctx, Resp, empty, json, json_body};

/// Most entries a list returns.
const LIST_MAX: usize = 1000;

#[derive(Deserialize)]
struct Target {
    username: String,
}

async fn target(req: Request<Incoming>, ctx: &Ctx) -> Result<(super::AuthUser, User), ApiError> {
    let me = ctx.auth(&req).await?;
    let t: Target = json_body(req, &ctx.app.config.server).await?;
    let other = ctx.app.store.user_by_name(&t.username)?.ok_or_else(|| ApiError::not_found("no such user"))?;
    Ok((me, other))
}

fn relations(ctx: &Ctx, list: Vec<Relation>) -> Result<Vec<Value>, ApiError> {
    list.into_iter()
        .map(|r| {
            let name = ctx.app.store.user(r.user)?.map(|u| u.name).unwrap_or_default();
            Ok(json!({ "id": r.user, "username": name, "since_ms": r.since_ms }))
        })
        .collect()
}

/// `GET /users/{username}`.
pub async fn lookup(req: Request<Incoming>, ctx: &Ctx, name: &str) -> Result<Resp, ApiError> {
    ctx.auth(&req).await?;
    let u = ctx.app.store.user_by_name(name)?.ok_or_else(|| ApiError::not_found("no such user"))?;
    Ok(json(StatusCode::OK, &user_json(&u)))
}

/// `GET /friends`: friends and pending requests both ways.
pub async fn friends(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    let s = &ctx.app.store;
    Ok(json(
        StatusCode::OK,
        &json!({
            "friends": relations(ctx, s.friends_of(me.id, LIST_MAX)?)?,
            "incoming": relations(ctx, s.incoming_requests(me.id, LIST_MAX)?)?,
            "outgoing": relations(ctx, s.outgoing_requests(me.id, LIST_MAX)?)?,
        }),
    ))
}

/// `POST /users/add {username}`: send a friend request, or accept theirs.
pub async fn add(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let (me, other) = target(req, ctx).await?;
    let (a, b, now) = (me.id, other.id, now_ms());
    let outcome = ctx.app.write(move |tx| tx.request_friend(a, b, now)).await?;
    let status = match outcome {
        FriendOutcome::Requested => "requested",
        FriendOutcome::BecameFriends => "friends",
    };
    Ok(json(StatusCode::OK, &json!({ "status": status })))
}

/// `POST /users/remove {username}`: unfriend, decline or cancel.
pub async fn remove(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let (me, other) = target(req, ctx).await?;
    let (a, b) = (me.id, other.id);
    let removed = ctx.app.write(move |tx| tx.remove_relation(a, b)).await?;
    Ok(json(StatusCode::OK, &json!({ "removed": removed_name(removed) })))
}

/// `GET /blocks`.
pub async fn blocks(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    let list = relations(ctx, ctx.app.store.blocks_of(me.id, LIST_MAX)?)?;
    Ok(json(StatusCode::OK, &json!({ "blocks": list })))
}

/// `POST /users/block {username}` → `{"ended": "friend" | "incoming" | "outgoing" | null}`:
/// a block ends any friendship or request between the two (said in `ended`, so a client can
/// tell its user), and unblocking does not bring it back. `POST /users/unblock {username}` →
/// 204.
pub async fn block(req: Request<Incoming>, ctx: &Ctx, on: bool) -> Result<Resp, ApiError> {
    let (me, other) = target(req, ctx).await?;
    let (a, b, now) = (me.id, other.id, now_ms());
    let resp = if on {
        let ended = ctx.app.write(move |tx| tx.block(a, b, now)).await?.map(removed_name);
        json(StatusCode::OK, &json!({ "ended": ended }))
    } else {
        ctx.app.write(move |tx| tx.unblock(a, b)).await?;
        empty(StatusCode::NO_CONTENT)
    };
    ctx.app.engine.blocks_changed(me.id).await?;
    Ok(resp)
}

fn removed_name(r: Removed) -> &'static str {
    match r {
        Removed::Friend => "friend",
        Removed::Incoming => "incoming",
        Removed::Outgoing => "outgoing",
    }
}
