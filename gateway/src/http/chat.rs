//! Rooms, room history and deletion, direct-message conversations over HTTP. Deleting a room
//! message goes through the room's home shard so live members get the tombstone; deleting a
//! direct message tells both users' sessions.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use pixelparty_engine::now_ms;
use pixelparty_protocol::limits::MAX_HISTORY_PAGE;
use pixelparty_protocol::{Role, SocialKind};
use pixelparty_storage::{Message, Room};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::openapi::{AddressErrors, BodyErrors, ErrorBody, ReadErrors, SessionErrors, WriteErrors};
use super::{Ctx, Resp, empty, json, json_body, path_num, query, query_num};

/// A chat room.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomInfo {
    /// Room id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Id of the user who created it.
    pub created_by: u32,
    /// When it was created, ms since the Unix epoch.
    pub created_ms: u64,
}

impl From<&Room> for RoomInfo {
    fn from(r: &Room) -> Self {
        Self { id: r.id, name: r.name.clone(), created_by: r.created_by, created_ms: r.created_ms }
    }
}

/// A page of rooms, by id.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rooms {
    /// Rooms with an id above `after`, in id order.
    pub rooms: Vec<RoomInfo>,
}

/// The body of `POST /rooms`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewRoom {
    /// 1 to 64 bytes of UTF-8, unique.
    #[schema(min_length = 1, max_length = 64, example = "lobby")]
    pub name: String,
}

/// A room or direct message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageInfo {
    /// Sequence within its room or conversation.
    pub seq: u64,
    /// Author's user id.
    pub author: u32,
    /// Author's name (empty if the account is gone).
    pub author_name: String,
    /// When it was sent, ms since the Unix epoch.
    pub time_ms: u64,
    /// Text.
    pub text: String,
}

/// A page of history, oldest first. Messages of users you block are left out.
#[derive(Debug, Serialize, ToSchema)]
pub struct Messages {
    /// At most `limit` messages before `before`, oldest first.
    pub messages: Vec<MessageInfo>,
}

/// A direct-message conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationInfo {
    /// The other user's id.
    pub peer: u32,
    /// Their name (empty if the account is gone).
    pub username: String,
    /// Sequence of the latest message.
    pub last_seq: u64,
    /// Time of the latest message, ms since the Unix epoch.
    pub last_ms: u64,
}

/// Your direct-message conversations.
#[derive(Debug, Serialize, ToSchema)]
pub struct Conversations {
    /// At most 200 conversations.
    pub conversations: Vec<ConversationInfo>,
}

async fn messages_of(ctx: &Ctx, list: &[Message]) -> Result<Messages, ApiError> {
    let names = ctx.app.names(list.iter().map(|m| m.author)).await?;
    let messages = list
        .iter()
        .map(|m| MessageInfo {
            seq: m.seq,
            author: m.author,
            author_name: names.get(&m.author).cloned().unwrap_or_default(),
            time_ms: m.time_ms,
            text: m.text.clone(),
        })
        .collect();
    Ok(Messages { messages })
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

/// List rooms
#[utoipa::path(get, path = "/rooms", tag = "rooms",
    params(
        ("after" = Option<u32>, Query, description = "Rooms with an id above this (default 0)"),
        ("limit" = Option<usize>, Query, description = "Most rooms (default 200, clamped to 1..=1000)"),
    ),
    responses(
        (status = 200, description = "Rooms in id order", body = Rooms),
        (status = 400, description = "`invalid_argument`: a query parameter is not a number of its range", body = ErrorBody),
        AddressErrors, ReadErrors,
    ))]
pub async fn list_rooms(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let q = query(&req);
    let after = query_num(&q, "after", 0u32)?;
    let limit = query_num(&q, "limit", 200usize)?.clamp(1, 1000);
    let rooms = ctx.app.db(move |b| b.rooms(after, limit)).await?.iter().map(RoomInfo::from).collect();
    Ok(json(StatusCode::OK, &Rooms { rooms }))
}

/// Create a room
///
/// Limited per user (`limits.room_creates_per_user_per_hour`, administrators exempt) and in
/// total (`limits.max_rooms`).
#[utoipa::path(post, path = "/rooms", tag = "rooms", security(("cookie" = []), ("bearer" = [])),
    request_body = NewRoom,
    responses(
        (status = 201, description = "Created", body = RoomInfo),
        (status = 409, description = "`conflict`: the name is taken; `room_limit`: the server holds its maximum number of rooms", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many rooms created; see `Retry-After`", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait"))),
        BodyErrors, SessionErrors, WriteErrors,
    ))]
pub async fn create_room(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    let r: NewRoom = json_body(req, &ctx.app.config.server).await?;
    let (id, now) = (me.id, now_ms());
    if me.role != Role::Admin {
        ctx.app.room_creates.check(id, now).map_err(ApiError::rate_limited)?;
    }
    // Checked before the write, so concurrent creations may pass it together: the bound is
    // exceeded at most by the store's queue.
    if ctx.app.db(|b| b.room_count()).await? >= ctx.app.config.limits.max_rooms {
        return Err(ApiError::new(StatusCode::CONFLICT, "room_limit", "the server holds its maximum number of rooms"));
    }
    let room = ctx.app.db(move |b| b.create_room(r.name, id, now)).await?;
    let event = crate::cluster::control::Control::social(Vec::new(), SocialKind::RoomCreated, room.id, &room.name);
    ctx.app.control(event).await?;
    Ok(json(StatusCode::CREATED, &RoomInfo::from(&room)))
}

/// Room history
///
/// Anyone logged in may read a room's history, member or not.
#[utoipa::path(get, path = "/rooms/{id}/messages", tag = "rooms", security(("cookie" = []), ("bearer" = [])),
    params(
        ("id" = u32, Path, example = 1, description = "Room id"),
        ("before" = Option<u64>, Query, description = "Messages with a sequence below this (default: the newest)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 50, description = "Most messages (default 50)"),
    ),
    responses(
        (status = 200, description = "A page, oldest first", body = Messages),
        (status = 400, description = "`invalid_argument`: a path or query parameter is not a number of its range", body = ErrorBody),
        (status = 404, description = "`not_found`: no such room", body = ErrorBody),
        SessionErrors, ReadErrors,
    ))]
pub async fn room_messages(req: Request<Incoming>, ctx: &Ctx, id: &str) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    let room: u32 = path_num(id, "room id")?;
    let (before, limit) = page_args(&req)?;
    // Blocked authors are left out, as the engine does.
    let hidden = ctx.app.blocks_of(me.id).await?;
    let page = ctx
        .app
        .db(move |b| {
            let (exists, page) = (b.room(room), b.room_history(room, before, limit, hidden));
            Box::pin(async move { if exists.await?.is_some() { Ok(Some(page.await?)) } else { Ok(None) } })
        })
        .await?
        .ok_or_else(|| ApiError::not_found("no such room"))?;
    Ok(json(StatusCode::OK, &messages_of(ctx, &page).await?))
}

/// Delete a room message
///
/// By its author or an administrator. Live members get a tombstone; history leaves it out.
#[utoipa::path(delete, path = "/rooms/{id}/messages/{seq}", tag = "rooms", security(("cookie" = []), ("bearer" = [])),
    params(("id" = u32, Path, example = 1, description = "Room id"), ("seq" = u64, Path, description = "Message sequence")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`invalid_argument`: a path parameter is not a number of its range", body = ErrorBody),
        (status = 404, description = "`not_found`: no such room or message", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the room's home shard refused for now", body = ErrorBody),
        SessionErrors, WriteErrors,
    ))]
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

/// Your direct-message conversations
#[utoipa::path(get, path = "/conversations", tag = "direct messages", security(("cookie" = []), ("bearer" = [])),
    responses((status = 200, description = "Conversations", body = Conversations), SessionErrors, ReadErrors))]
pub async fn conversations(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    let id = me.id;
    let list = ctx.app.db(move |b| b.conversations(id, 200)).await?;
    let mut names = ctx.app.names(list.iter().map(|c| c.peer)).await?;
    let out = list
        .into_iter()
        .map(|c| ConversationInfo {
            peer: c.peer,
            username: names.remove(&c.peer).unwrap_or_default(),
            last_seq: c.last_seq,
            last_ms: c.last_ms,
        })
        .collect();
    Ok(json(StatusCode::OK, &Conversations { conversations: out }))
}

/// Direct-message history with a user
#[utoipa::path(get, path = "/conversations/{user_id}/messages", tag = "direct messages",
    security(("cookie" = []), ("bearer" = [])),
    params(
        ("user_id" = u32, Path, example = 2, description = "The other user's id"),
        ("before" = Option<u64>, Query, description = "Messages with a sequence below this (default: the newest)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 50, description = "Most messages (default 50)"),
    ),
    responses(
        (status = 200, description = "A page, oldest first", body = Messages),
        (status = 400, description = "`invalid_argument`: a path or query parameter is not a number of its range", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
        SessionErrors, ReadErrors,
    ))]
pub async fn direct_messages(req: Request<Incoming>, ctx: &Ctx, peer: &str) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    let peer: u32 = path_num(peer, "user id")?;
    let (before, limit) = page_args(&req)?;
    let (hidden, id) = (ctx.app.blocks_of(me.id).await?, me.id);
    let page = ctx
        .app
        .db(move |b| {
            let (exists, page) = (b.user(peer), b.direct_history(id, peer, before, limit, hidden));
            Box::pin(async move { if exists.await?.is_some() { Ok(Some(page.await?)) } else { Ok(None) } })
        })
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))?;
    Ok(json(StatusCode::OK, &messages_of(ctx, &page).await?))
}

/// Delete your direct message
///
/// Only its author may; both users' live sessions are told.
#[utoipa::path(delete, path = "/conversations/{user_id}/messages/{seq}", tag = "direct messages",
    security(("cookie" = []), ("bearer" = [])),
    params(("user_id" = u32, Path, example = 2, description = "The other user's id"), ("seq" = u64, Path, description = "Message sequence")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`invalid_argument`: a path parameter is not a number of its range", body = ErrorBody),
        (status = 404, description = "`not_found`: no such message", body = ErrorBody),
        SessionErrors, WriteErrors,
    ))]
pub async fn delete_direct_message(req: Request<Incoming>, ctx: &Ctx, peer: &str, seq: &str) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    let (peer, seq): (u32, u64) = (path_num(peer, "user id")?, path_num(seq, "sequence")?);
    let id = me.id;
    match ctx.app.db(move |b| b.direct_message(id, peer, seq)).await? {
        Some(m) if !m.deleted && m.author == me.id => {}
        Some(m) if !m.deleted => return Err(ApiError::forbidden("only the author may delete it")),
        _ => return Err(ApiError::not_found("no such message")),
    }
    ctx.app.db(move |b| b.delete_direct(id, peer, seq)).await?;
    ctx.app.control(crate::cluster::control::Control::DirectDeleted { a: me.id, b: peer, seq }).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
