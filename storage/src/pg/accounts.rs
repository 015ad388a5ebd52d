//! Accounts and sessions in PostgreSQL (`users`, `sessions`), mirroring
//! [`crate::accounts`]: dense ids assigned under a lock, names unique by
//! [`fold_name`], sessions keyed by token hash.

use deadpool_postgres::GenericClient;
use pixelparty_protocol::limits::MAX_NAME_BYTES;
use tokio_postgres::Row;

use super::error::{col, to_i64, u8_of, u32_of, u64_of};
use super::sql::{Global, execute, lock, query, query_one, query_opt};
use crate::accounts::{TOKEN_HASH_LEN, fold_name};
use crate::error::{Result, StorageError};
use crate::records::{PixelRecord, Role, Session, User};

const USER_COLUMNS: &str = "id, name, role, password_hash, created_ms";

fn user_of(row: &Row) -> Result<User> {
    let role = u8_of(col(row, 2)?, "users")?;
    Ok(User {
        id: u32_of(col(row, 0)?, "users")?,
        name: col(row, 1)?,
        role: Role::from_code(role).ok_or_else(|| StorageError::corrupt("users", "unknown role"))?,
        password_hash: col(row, 3)?,
        created_ms: u64_of(col(row, 4)?, "users")?,
    })
}

pub(crate) async fn user<C: GenericClient>(c: &C, id: u32) -> Result<Option<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    query_opt(c, &sql, &[&i64::from(id)]).await?.as_ref().map(user_of).transpose()
}

pub(crate) async fn user_names<C: GenericClient>(c: &C, ids: Vec<u32>) -> Result<Vec<(u32, String)>> {
    let ids: Vec<i64> = ids.into_iter().take(crate::backend::MAX_NAMES).map(i64::from).collect();
    let rows = query(c, "SELECT id, name FROM users WHERE id = ANY($1)", &[&ids]).await?;
    rows.iter().map(|row| Ok((u32_of(col(row, 0)?, "users")?, col(row, 1)?))).collect()
}

pub(crate) async fn user_by_name<C: GenericClient>(c: &C, name: String) -> Result<Option<User>> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Ok(None);
    }
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE folded = $1");
    query_opt(c, &sql, &[&fold_name(&name)]).await?.as_ref().map(user_of).transpose()
}

pub(crate) async fn users<C: GenericClient>(c: &C, after: u32, limit: usize) -> Result<Vec<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id >= $1 ORDER BY id LIMIT $2");
    let from = i64::from(after.saturating_add(1));
    query(c, &sql, &[&from, &super::error::limit(limit)]).await?.iter().map(user_of).collect()
}

/// The highest id (ids are dense and never reused, so the count), as the fjall backend.
pub(crate) async fn user_count<C: GenericClient>(c: &C) -> Result<u32> {
    let row = query_one(c, "SELECT coalesce(max(id), 0) FROM users", &[]).await?;
    u32_of(col(&row, 0)?, "users")
}

pub(crate) async fn session<C: GenericClient>(
    c: &C,
    token_hash: [u8; TOKEN_HASH_LEN],
    now_ms: u64,
) -> Result<Option<Session>> {
    let sql = "SELECT user_id, created_ms, expires_ms FROM sessions WHERE token_hash = $1";
    let Some(row) = query_opt(c, sql, &[&&token_hash[..]]).await? else {
        return Ok(None);
    };
    let session = Session {
        user: u32_of(col(&row, 0)?, "sessions")?,
        created_ms: u64_of(col(&row, 1)?, "sessions")?,
        expires_ms: u64_of(col(&row, 2)?, "sessions")?,
    };
    Ok((now_ms < session.expires_ms).then_some(session))
}

pub(crate) async fn create_user<C: GenericClient>(
    c: &C,
    name: String,
    password_hash: String,
    role: Role,
    now_ms: u64,
) -> Result<User> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(StorageError::invalid("user name length"));
    }
    let created = to_i64(now_ms, "time")?;
    lock(c, Global::Users).await?;
    let folded = fold_name(&name);
    if query_opt(c, "SELECT 1 FROM users WHERE folded = $1", &[&folded]).await?.is_some() {
        return Err(StorageError::conflict("user name"));
    }
    let id = user_count(c).await?.checked_add(1).ok_or_else(|| StorageError::conflict("no more user ids"))?;
    // Ids at or above the journal's rollback flag would read as restores.
    if id >= PixelRecord::ROLLBACK {
        return Err(StorageError::conflict("no more user ids"));
    }
    execute(
        c,
        "INSERT INTO users (id, name, folded, password_hash, role, created_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&i64::from(id), &name, &folded, &password_hash, &i16::from(role.to_u8()), &created],
    )
    .await?;
    Ok(User { id, name, role, password_hash, created_ms: now_ms })
}

pub(crate) async fn set_role<C: GenericClient>(c: &C, user: u32, role: Role, actor: u32, now_ms: u64) -> Result<User> {
    let sql = format!("UPDATE users SET role = $2 WHERE id = $1 RETURNING {USER_COLUMNS}");
    let row = query_opt(c, &sql, &[&i64::from(user), &i16::from(role.to_u8())]).await?;
    let record = user_of(&row.ok_or_else(|| StorageError::not_found("user"))?)?;
    let detail = format!("{role:?}").to_lowercase();
    let entry = crate::backend::AuditDraft {
        actor,
        action: crate::records::AuditAction::SetRole,
        target: user.to_string(),
        detail,
        time_ms: now_ms,
    };
    super::moderation::audit(c, &entry).await?;
    Ok(record)
}

pub(crate) async fn set_password_hash<C: GenericClient>(c: &C, user: u32, password_hash: String) -> Result<()> {
    let n =
        execute(c, "UPDATE users SET password_hash = $2 WHERE id = $1", &[&i64::from(user), &password_hash]).await?;
    if n == 0 {
        return Err(StorageError::not_found("user"));
    }
    Ok(())
}

pub(crate) async fn create_session<C: GenericClient>(
    c: &C,
    token_hash: [u8; TOKEN_HASH_LEN],
    user_id: u32,
    now_ms: u64,
    ttl_ms: u64,
) -> Result<Session> {
    if user(c, user_id).await?.is_none() {
        return Err(StorageError::not_found("user"));
    }
    let session = Session { user: user_id, created_ms: now_ms, expires_ms: now_ms.saturating_add(ttl_ms) };
    execute(
        c,
        "INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (token_hash) DO UPDATE
         SET user_id = excluded.user_id, created_ms = excluded.created_ms, expires_ms = excluded.expires_ms",
        &[
            &&token_hash[..],
            &i64::from(user_id),
            &to_i64(session.created_ms, "time")?,
            &to_i64(session.expires_ms, "session expiry")?,
        ],
    )
    .await?;
    Ok(session)
}

pub(crate) async fn revoke_session<C: GenericClient>(c: &C, token_hash: [u8; TOKEN_HASH_LEN]) -> Result<bool> {
    Ok(execute(c, "DELETE FROM sessions WHERE token_hash = $1", &[&&token_hash[..]]).await? > 0)
}

pub(crate) async fn revoke_user_sessions<C: GenericClient>(c: &C, user: u32) -> Result<usize> {
    let n = execute(c, "DELETE FROM sessions WHERE user_id = $1", &[&i64::from(user)]).await?;
    usize::try_from(n).map_err(|_| StorageError::corrupt("sessions", "count out of range"))
}
