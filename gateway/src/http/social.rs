//! Friends, friend requests and blocks over HTTP. Blocks take effect in live sessions at once
//! (the engine is told); friendship is read from the store when a direct message is sent.
//! Every change is pushed to the live sessions of both users as `Social` frames (protocol
//! version 3), on every node, once it is durable.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use pixelparty_engine::now_ms;
use pixelparty_protocol::SocialKind;
use pixelparty_storage::{FriendOutcome, Relation, Removed, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::UserInfo;
use super::error::ApiError;
use super::openapi::{BodyErrors, ErrorBody, ReadErrors, SessionErrors, WriteErrors};
use super::{Ctx, Resp, empty, json, json_body};

/// Most entries a list returns.
const LIST_MAX: usize = 1000;

/// A body naming a user.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UsernameBody {
    /// The user's name (any case).
    #[schema(example = "bob")]
    pub username: String,
}

/// Another user and since when they are a friend, a request or blocked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Contact {
    /// User id.
    pub id: u32,
    /// Name (empty if the account is gone).
    pub username: String,
    /// Since when, ms since the Unix epoch.
    pub since_ms: u64,
    /// For friends: whether they have a live session now (absent for requests and blocks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<bool>,
}

/// Friends and pending friend requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct Friends {
    /// Friends (at most 1000).
    pub friends: Vec<Contact>,
    /// Requests to you, waiting for your answer.
    pub incoming: Vec<Contact>,
    /// Your requests, waiting for theirs.
    pub outgoing: Vec<Contact>,
}

/// The users you block.
#[derive(Debug, Serialize, ToSchema)]
pub struct Blocks {
    /// Blocked users (at most 1000).
    pub blocks: Vec<Contact>,
}

/// What a friend request did.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FriendStatus {
    /// Your request waits for their answer.
    Requested,
    /// They had asked you: you are friends now.
    Friends,
}

/// The answer of `POST /users/add`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FriendRequested {
    /// What happened.
    pub status: FriendStatus,
}

/// A relation between two users that can end.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RelationKind {
    /// A friendship.
    Friend,
    /// Their request to you.
    Incoming,
    /// Your request to them.
    Outgoing,
}

impl From<Removed> for RelationKind {
    fn from(r: Removed) -> Self {
        match r {
            Removed::Friend => Self::Friend,
            Removed::Incoming => Self::Incoming,
            Removed::Outgoing => Self::Outgoing,
        }
    }
}

/// The answer of `POST /users/remove`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RelationRemoved {
    /// What ended: unfriended, declined or cancelled.
    pub removed: RelationKind,
}

/// The answer of `POST /users/block`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Blocked {
    /// The friendship or request the block ended, or `null`.
    #[schema(required = true)]
    pub ended: Option<RelationKind>,
}

async fn target(req: Request<Incoming>, ctx: &Ctx) -> Result<(super::AuthUser, User), ApiError> {
    let me = ctx.auth(&req).await?;
    let t: UsernameBody = json_body(req, &ctx.app.config.server).await?;
    let other = ctx.app.user_named(&t.username).await?;
    Ok((me, other))
}

async fn relations(ctx: &Ctx, list: Vec<Relation>) -> Result<Vec<Contact>, ApiError> {
    let mut names = ctx.app.names(list.iter().map(|r| r.user)).await?;
    Ok(list
        .into_iter()
        .map(|r| Contact {
            id: r.user,
            username: names.remove(&r.user).unwrap_or_default(),
            since_ms: r.since_ms,
            online: None,
        })
        .collect())
}

/// Tells the live sessions of `to` (on every node) that `kind` happened with `other`.
async fn tell(ctx: &Ctx, to: u32, kind: SocialKind, other: (u32, &str)) -> Result<(), ApiError> {
    ctx.app.control(crate::cluster::control::Control::social(vec![to], kind, other.0, other.1)).await
}

/// Look up a user by name
///
/// Names are case-insensitive. A name that is also a path here (`add`, `remove`, `block`,
/// `unblock`, `ban`, `unban`) is that route, not a lookup: find such a user with another
/// capitalisation (`/users/Add`).
#[utoipa::path(get, path = "/users/{username}", tag = "social", operation_id = "lookup_user",
    security(("cookie" = []), ("bearer" = [])),
    params(("username" = String, Path, description = "The user's name (any case)")),
    responses(
        (status = 200, description = "The user", body = UserInfo),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
        SessionErrors, ReadErrors,
    ))]
pub async fn lookup(req: Request<Incoming>, ctx: &Ctx, name: &str) -> Result<Resp, ApiError> {
    ctx.auth(&req).await?;
    let u = ctx.app.user_named(name).await?;
    Ok(json(StatusCode::OK, &UserInfo::from(&u)))
}

/// Friends and pending requests both ways
#[utoipa::path(get, path = "/friends", tag = "social", security(("cookie" = []), ("bearer" = [])),
    responses((status = 200, description = "Friends and requests", body = Friends), SessionErrors, ReadErrors))]
pub async fn friends(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    let id = me.id;
    let (friends, incoming, outgoing) = ctx
        .app
        .db(move |b| {
            let f = (b.friends_of(id, LIST_MAX), b.incoming_requests(id, LIST_MAX), b.outgoing_requests(id, LIST_MAX));
            Box::pin(async move { Ok((f.0.await?, f.1.await?, f.2.await?)) })
        })
        .await?;
    let mut friends = relations(ctx, friends).await?;
    for f in &mut friends {
        f.online = Some(ctx.app.online.is_online(f.id));
    }
    Ok(json(
        StatusCode::OK,
        &Friends { friends, incoming: relations(ctx, incoming).await?, outgoing: relations(ctx, outgoing).await? },
    ))
}

/// Send a friend request, or accept theirs
#[utoipa::path(post, path = "/users/add", tag = "social", operation_id = "add_friend",
    security(("cookie" = []), ("bearer" = [])), request_body = UsernameBody,
    responses(
        (status = 200, description = "Requested, or friends now", body = FriendRequested),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
        (status = 409, description = "`conflict`: already friends, a request already pending, or a block between you", body = ErrorBody),
        BodyErrors, SessionErrors, WriteErrors,
    ))]
pub async fn add(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let (me, other) = target(req, ctx).await?;
    let (a, b, now) = (me.id, other.id, now_ms());
    let outcome = ctx.app.db(move |s| s.request_friend(a, b, now)).await?;
    let status = match outcome {
        FriendOutcome::Requested => {
            tell(ctx, a, SocialKind::RequestSent, (b, &other.name)).await?;
            tell(ctx, b, SocialKind::FriendRequest, (a, &me.name)).await?;
            FriendStatus::Requested
        }
        FriendOutcome::BecameFriends => {
            tell(ctx, a, SocialKind::FriendAdded, (b, &other.name)).await?;
            tell(ctx, b, SocialKind::FriendAdded, (a, &me.name)).await?;
            FriendStatus::Friends
        }
    };
    Ok(json(StatusCode::OK, &FriendRequested { status }))
}

/// Unfriend, decline or cancel
#[utoipa::path(post, path = "/users/remove", tag = "social", operation_id = "remove_friend",
    security(("cookie" = []), ("bearer" = [])), request_body = UsernameBody,
    responses(
        (status = 200, description = "What ended", body = RelationRemoved),
        (status = 404, description = "`not_found`: no such user, or no friendship or request with them", body = ErrorBody),
        BodyErrors, SessionErrors, WriteErrors,
    ))]
pub async fn remove(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let (me, other) = target(req, ctx).await?;
    let (a, b) = (me.id, other.id);
    let removed = ctx.app.db(move |s| s.remove_relation(a, b)).await?;
    tell(ctx, a, SocialKind::FriendRemoved, (b, &other.name)).await?;
    tell(ctx, b, SocialKind::FriendRemoved, (a, &me.name)).await?;
    Ok(json(StatusCode::OK, &RelationRemoved { removed: removed.into() }))
}

/// The users you block
#[utoipa::path(get, path = "/blocks", tag = "social", security(("cookie" = []), ("bearer" = [])),
    responses((status = 200, description = "Blocked users", body = Blocks), SessionErrors, ReadErrors))]
pub async fn blocks(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    let id = me.id;
    let list = relations(ctx, ctx.app.db(move |b| b.blocks_of(id, LIST_MAX)).await?).await?;
    Ok(json(StatusCode::OK, &Blocks { blocks: list }))
}

/// Block a user
///
/// Their messages disappear from your live sessions and history at once. A block ends any
/// friendship or request between the two, said in `ended` so a client can tell its user;
/// unblocking does not bring it back.
#[utoipa::path(post, path = "/users/block", tag = "social", security(("cookie" = []), ("bearer" = [])),
    request_body = UsernameBody,
    responses(
        (status = 200, description = "Blocked", body = Blocked),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
        BodyErrors, SessionErrors, WriteErrors,
    ))]
pub async fn block(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    set_block(req, ctx, true).await
}

/// Unblock a user
///
/// Unblocking a user who is not blocked succeeds too.
#[utoipa::path(post, path = "/users/unblock", tag = "social", security(("cookie" = []), ("bearer" = [])),
    request_body = UsernameBody,
    responses(
        (status = 204, description = "Not blocked (any more)"),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
        BodyErrors, SessionErrors, WriteErrors,
    ))]
pub async fn unblock(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    set_block(req, ctx, false).await
}

async fn set_block(req: Request<Incoming>, ctx: &Ctx, on: bool) -> Result<Resp, ApiError> {
    let (me, other) = target(req, ctx).await?;
    let (a, b, now) = (me.id, other.id, now_ms());
    let was = ctx.app.db(move |s| s.is_blocking(a, b)).await?;
    let resp = if on {
        let ended = ctx.app.db(move |s| s.block(a, b, now)).await?.map(RelationKind::from);
        if ended.is_some() {
            tell(ctx, a, SocialKind::FriendRemoved, (b, &other.name)).await?;
            tell(ctx, b, SocialKind::FriendRemoved, (a, &me.name)).await?;
        }
        json(StatusCode::OK, &Blocked { ended })
    } else {
        ctx.app.db(move |s| s.unblock(a, b)).await?;
        empty(StatusCode::NO_CONTENT)
    };
    ctx.app.control(crate::cluster::control::Control::BlocksChanged { user: me.id }).await?;
    // Only a change is told (blocking twice, or unblocking someone not blocked, is not).
    if was != on {
        let kind = if on { SocialKind::Blocked } else { SocialKind::Unblocked };
        tell(ctx, a, kind, (b, &other.name)).await?;
    }
    Ok(resp)
}
