//! The social graph in PostgreSQL (`friend_requests`, `friends`, `blocks`), mirroring
//! [`crate::social`] check for check. Every transition holds the pair's advisory lock, so
//! concurrent requests between the same two users run one after the other.

use deadpool_postgres::GenericClient;

use super::error::{col, limit, to_i64, u32_of, u64_of};
use super::sql::{execute, lock_pair, query, query_opt};
use crate::error::{Result, StorageError};
use crate::records::Relation;
use crate::social::{FriendOutcome, Removed};

/// Which list of relations.
#[derive(Debug, Clone, Copy)]
pub(crate) enum List {
    Friends,
    Incoming,
    Outgoing,
    Blocks,
}

pub(crate) async fn relations<C: GenericClient>(c: &C, list: List, user: u32, max: usize) -> Result<Vec<Relation>> {
    let (sql, table) = match list {
        List::Friends => {
            ("SELECT friend_id, since_ms FROM friends WHERE user_id = $1 ORDER BY friend_id LIMIT $2", "friends")
        }
        List::Incoming => (
            "SELECT from_id, since_ms FROM friend_requests WHERE to_id = $1 ORDER BY from_id LIMIT $2",
            "friend_requests",
        ),
        List::Outgoing => (
            "SELECT to_id, since_ms FROM friend_requests WHERE from_id = $1 ORDER BY to_id LIMIT $2",
            "friend_requests",
        ),
        List::Blocks => ("SELECT blocked, since_ms FROM blocks WHERE blocker = $1 ORDER BY blocked LIMIT $2", "blocks"),
    };
    query(c, sql, &[&i64::from(user), &limit(max)])
        .await?
        .iter()
        .map(|row| Ok(Relation { user: u32_of(col(row, 0)?, table)?, since_ms: u64_of(col(row, 1)?, table)? }))
        .collect()
}

pub(crate) async fn are_friends<C: GenericClient>(c: &C, a: u32, b: u32) -> Result<bool> {
    let sql = "SELECT 1 FROM friends WHERE user_id = $1 AND friend_id = $2";
    Ok(query_opt(c, sql, &[&i64::from(a), &i64::from(b)]).await?.is_some())
}

pub(crate) async fn is_blocking<C: GenericClient>(c: &C, blocker: u32, blocked: u32) -> Result<bool> {
    let sql = "SELECT 1 FROM blocks WHERE blocker = $1 AND blocked = $2";
    Ok(query_opt(c, sql, &[&i64::from(blocker), &i64::from(blocked)]).await?.is_some())
}

pub(crate) async fn blocked_either<C: GenericClient>(c: &C, a: u32, b: u32) -> Result<bool> {
    Ok(is_blocking(c, a, b).await? || is_blocking(c, b, a).await?)
}

async fn request_pending<C: GenericClient>(c: &C, from: u32, to: u32) -> Result<bool> {
    let sql = "SELECT 1 FROM friend_requests WHERE from_id = $1 AND to_id = $2";
    Ok(query_opt(c, sql, &[&i64::from(from), &i64::from(to)]).await?.is_some())
}

async fn drop_request<C: GenericClient>(c: &C, from: u32, to: u32) -> Result<()> {
    let sql = "DELETE FROM friend_requests WHERE from_id = $1 AND to_id = $2";
    execute(c, sql, &[&i64::from(from), &i64::from(to)]).await.map(drop)
}

async fn make_friends<C: GenericClient>(c: &C, a: u32, b: u32, now_ms: u64) -> Result<()> {
    let sql = "INSERT INTO friends (user_id, friend_id, since_ms) VALUES ($1, $2, $3), ($2, $1, $3)
               ON CONFLICT (user_id, friend_id) DO UPDATE SET since_ms = excluded.since_ms";
    if a == b {
        // Not reachable through the checks of the callers; one row, as the fjall backend.
        let sql = "INSERT INTO friends (user_id, friend_id, since_ms) VALUES ($1, $1, $2)
                   ON CONFLICT (user_id, friend_id) DO UPDATE SET since_ms = excluded.since_ms";
        return execute(c, sql, &[&i64::from(a), &to_i64(now_ms, "time")?]).await.map(drop);
    }
    execute(c, sql, &[&i64::from(a), &i64::from(b), &to_i64(now_ms, "time")?]).await.map(drop)
}

pub(crate) async fn request_friend<C: GenericClient>(c: &C, from: u32, to: u32, now_ms: u64) -> Result<FriendOutcome> {
    if from == to {
        return Err(StorageError::invalid("cannot befriend yourself"));
    }
    let now = to_i64(now_ms, "time")?;
    lock_pair(c, from, to).await?;
    if super::accounts::user(c, to).await?.is_none() {
        return Err(StorageError::not_found("user"));
    }
    if blocked_either(c, from, to).await? {
        return Err(StorageError::conflict("blocked"));
    }
    if are_friends(c, from, to).await? {
        return Err(StorageError::conflict("already friends"));
    }
    if request_pending(c, to, from).await? {
        drop_request(c, to, from).await?;
        make_friends(c, from, to, now_ms).await?;
        return Ok(FriendOutcome::BecameFriends);
    }
    if request_pending(c, from, to).await? {
        return Err(StorageError::conflict("request already pending"));
    }
    let sql = "INSERT INTO friend_requests (from_id, to_id, since_ms) VALUES ($1, $2, $3)";
    execute(c, sql, &[&i64::from(from), &i64::from(to), &now]).await?;
    Ok(FriendOutcome::Requested)
}

pub(crate) async fn accept_friend<C: GenericClient>(c: &C, me: u32, from: u32, now_ms: u64) -> Result<()> {
    to_i64(now_ms, "time")?;
    lock_pair(c, me, from).await?;
    if !request_pending(c, from, me).await? {
        return Err(StorageError::not_found("friend request"));
    }
    drop_request(c, from, me).await?;
    make_friends(c, me, from, now_ms).await
}

/// [`remove_relation`] without taking the lock (the caller holds it).
async fn remove_locked<C: GenericClient>(c: &C, me: u32, other: u32) -> Result<Removed> {
    if are_friends(c, me, other).await? {
        let sql = "DELETE FROM friends WHERE (user_id = $1 AND friend_id = $2) OR (user_id = $2 AND friend_id = $1)";
        execute(c, sql, &[&i64::from(me), &i64::from(other)]).await?;
        Ok(Removed::Friend)
    } else if request_pending(c, other, me).await? {
        drop_request(c, other, me).await?;
        Ok(Removed::Incoming)
    } else if request_pending(c, me, other).await? {
        drop_request(c, me, other).await?;
        Ok(Removed::Outgoing)
    } else {
        Err(StorageError::not_found("friend or request"))
    }
}

pub(crate) async fn remove_relation<C: GenericClient>(c: &C, me: u32, other: u32) -> Result<Removed> {
    lock_pair(c, me, other).await?;
    remove_locked(c, me, other).await
}

pub(crate) async fn block<C: GenericClient>(c: &C, blocker: u32, blocked: u32, now_ms: u64) -> Result<Option<Removed>> {
    if blocker == blocked {
        return Err(StorageError::invalid("cannot block yourself"));
    }
    let now = to_i64(now_ms, "time")?;
    lock_pair(c, blocker, blocked).await?;
    if super::accounts::user(c, blocked).await?.is_none() {
        return Err(StorageError::not_found("user"));
    }
    let ended = match remove_locked(c, blocker, blocked).await {
        Ok(r) => Some(r),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    let sql = "INSERT INTO blocks (blocker, blocked, since_ms) VALUES ($1, $2, $3)
               ON CONFLICT (blocker, blocked) DO UPDATE SET since_ms = excluded.since_ms";
    execute(c, sql, &[&i64::from(blocker), &i64::from(blocked), &now]).await?;
    Ok(ended)
}

pub(crate) async fn unblock<C: GenericClient>(c: &C, blocker: u32, blocked: u32) -> Result<bool> {
    let sql = "DELETE FROM blocks WHERE blocker = $1 AND blocked = $2";
    Ok(execute(c, sql, &[&i64::from(blocker), &i64::from(blocked)]).await? > 0)
}
