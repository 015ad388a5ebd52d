//! Rooms, room history and deletion, direct-message conversations over HTTP. Deleting a room
//! message goes through the room's home shard so live members get the tombstone; deleting a
//! direct message tells both users' sessions.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use pixelparty_engine::now_ms;
use pixelparty_protocol::Role;
use pixelparty_protocol::limits::MAX_HISTORY_PAGE;
use pixelparty_storage::{Message, Room};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::{Ctx, Resp, empty, json, json_body, path_num, query, query_num};

fn room_json(r: &Room) -> Value {
    json!({ "id": r.id, "name": r.name, "created_by": r.created_by, "created_ms": r.created_ms })
}

fn messages_json(ctx: &Ctx, list: &[Message]) -> Result<Value, ApiError> {
    let mut names = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(list.len());
    for m in list {
        if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(m.author) {
            slot.insert(ctx.app.store.user(m.author)?.map(|u| u.name).unwrap_or_default());
        }
        out.push(json!({ "seq": m.seq, "author": m.author, "author_name": names[&m.author], "time_ms": m.time_ms, "text": m.text }));
    }
    Ok(json!({ "messages": out }))
}

fn page_args(req: &Request<Incoming>) -> Result<(u64, usize), ApiError> {
    let q = query(req);
    let before = query_num(&q, "before", u64::MAX)?;
    let limit = query_num(&q, "limit", MAX_HISTORY_PAGE)?;
    if !(1..=MAX_HISTORY_PAGE).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1..=50"));
    }
    Ok((before, limit))
}

/// `GET /rooms?after=&limit=`.
pub async fn list_rooms(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let q = query(&req);
    let after = query_num(&q, "after", 0u32)?;
    let limit = query_num(&q, "limit", 200usize)?.clamp(1, 1000);
    let rooms: Vec<Value> = ctx.app.store.rooms(after, limit)?.iter().map(room_json).collect();
    Ok(json(StatusCode::OK, &json!({ "rooms": rooms })))
}

#[derive(Deserialize)]
struct NewRoom {
    name: String,
}

/// `POST /rooms {name}`.
pub async fn create_room(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    let r: NewRoom = json_body(req, &ctx.app.config.server).await?;
    let (id, now) = (me.id, now_ms());
    if me.role != Role::Admin {
        ctx.app.room_creates.check(id, now).map_err(ApiError::rate_limited)?;
    }
    // Checked before the write, so concurrent creations may pass it together: the bound is
    // exceeded at most by the store's queue.
    if ctx.app.store.room_count()? >= ctx.app.config.limits.max_rooms {
        return Err(ApiError::new(StatusCode::CONFLICT, "room_limit", "the server holds its maximum number of rooms"));
    }
    let room = ctx.app.write(move |tx| tx.create_room(&r.name, id, now)).await?;
    Ok(json(StatusCode::CREATED, &room_json(&room)))
}

/// The users `me` blocks, whose messages history leaves out (as the engine does).
fn blocked_by(ctx: &Ctx, me: u32) -> Result<Vec<u32>, ApiError> {
    Ok(ctx.app.store.blocks_of(me, pixelparty_engine::MAX_BLOCKS)?.into_iter().map(|r| r.user).collect())
}

/// `GET /rooms/{id}/messages?before=&limit=`.
pub async fn room_messages(req: Request<Incoming>, ctx: &Ctx, id: &str) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    let room: u32 = path_num(id, "room id")?;
    ctx.app.store.room(room)?.ok_or_else(|| ApiError::not_found("no such room"))?;
    let (before, limit) = page_args(&req)?;
    let blocks = blocked_by(ctx, me.id)?;
    let page = ctx.app.store.room_history(room, before, limit, |m| !blocks.contains(&m.author))?;
    Ok(json(StatusCode::OK, &messages_json(ctx, &page)?))
}

/// `DELETE /rooms/{id}/messages/{seq}` (author or admin).
pub async fn delete_room_message(req: Request<Incoming>, ctx: &Ctx, id: &str, seq: &str) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    let (room, seq) = (path_num(id, "room id")?, path_num(seq, "sequence")?);
    let reply = ctx.app.engine.delete_room_message(room, seq, me.id, me.role == Role::Admin).await;
    match reply.await {
        Ok(Ok(_)) => Ok(empty(StatusCode::NO_CONTENT)),
        Ok(Err(r)) => Err(refusal(&r)),
        Err(_) => Err(ApiError::internal("engine did not answer")),
    }
}

/// Maps an engine refusal to an HTTP error.
pub fn refusal(r: &pixelparty_engine::msg::Refusal) -> ApiError {
    use pixelparty_protocol::ErrorCode as C;
    let status = match r.code {
        C::NotFound => StatusCode::NOT_FOUND,
        C::Forbidden | C::Blocked | C::NotFriends | C::NotMember => StatusCode::FORBIDDEN,
        C::Overloaded | C::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        C::RateLimited | C::Cooldown => StatusCode::TOO_MANY_REQUESTS,
        C::Internal | C::OutcomeUnknown => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut e = ApiError::new(status, r.code.name(), r.message);
    if r.retry_after_ms > 0 {
        e.retry_after_s = Some(u64::from(r.retry_after_ms).div_ceil(1000));
    }
    e
}

/// `GET /conversations`.
pub async fn conversations(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    let list = ctx.app.store.conversations(me.id, 200)?;
    let mut out = Vec::with_capacity(list.len());
    for c in list {
        let name = ctx.app.store.user(c.peer)?.map(|u| u.name).unwrap_or_default();
        out.push(json!({ "peer": c.peer, "username": name, "last_seq": c.last_seq, "last_ms": c.last_ms }));
    }
    Ok(json(StatusCode::OK, &json!({ "conversations": out })))
}

/// `GET /conversations/{user_id}/messages?before=&limit=`.
pub async fn direct_messages(req: Request<Incoming>, ctx: &Ctx, peer: &str) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    let peer: u32 = path_num(peer, "user id")?;
    ctx.app.store.user(peer)?.ok_or_else(|| ApiError::not_found("no such user"))?;
    let (before, limit) = page_args(&req)?;
    let blocks = blocked_by(ctx, me.id)?;
    let page = ctx.app.store.direct_history(me.id, peer, before, limit, |m| !blocks.contains(&m.author))?;
    Ok(json(StatusCode::OK, &messages_json(ctx, &page)?))
}

/// `DELETE /conversations/{user_id}/messages/{seq}` (author only).
pub async fn delete_direct_message(req: Request<Incoming>, ctx: &Ctx, peer: &str, seq: &str) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    let (peer, seq): (u32, u64) = (path_num(peer, "user id")?, path_num(seq, "sequence")?);
    match ctx.app.store.direct_message(me.id, peer, seq)? {
        Some(m) if !m.deleted && m.author == me.id => {}
        Some(m) if !m.deleted => return Err(ApiError::forbidden("only the author may delete it")),
        _ => return Err(ApiError::not_found("no such message")),
    }
    let id = me.id;
    ctx.app.write(move |tx| tx.delete_direct(id, peer, seq)).await?;
    ctx.app.engine.direct_deleted(me.id, peer, seq).await;
    Ok(empty(StatusCode::NO_CONTENT))
}
