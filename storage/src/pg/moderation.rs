//! Moderation in PostgreSQL (`user_bans`, `net_bans`, `audit`), mirroring
//! [`crate::moderation`]: the same audit entries for the same actions, the same cap on
//! address bans, address bans listed in the fjall key order (the `cidr` order).

use std::net::IpAddr;

use deadpool_postgres::GenericClient;
use ipnet::IpNet;
use tokio_postgres::Row;

use super::error::{below, col, limit, to_i64, u32_of, u64_of};
use super::sql::{Global, execute, lock, query, query_opt};
use crate::backend::AuditDraft;
use crate::error::{Result, StorageError};
use crate::moderation::MAX_NET_BANS;
use crate::records::{AuditAction, AuditEntry, Ban, NetBan};

/// Columns of a ban after the key: reason, by, created, expires.
fn ban_of(row: &Row, at: usize, table: &'static str) -> Result<Ban> {
    let expires: Option<i64> = col(row, at + 3)?;
    Ok(Ban {
        reason: col(row, at)?,
        by: u32_of(col(row, at + 1)?, table)?,
        created_ms: u64_of(col(row, at + 2)?, table)?,
        expires_ms: expires.map(|e| u64_of(e, table)).transpose()?,
    })
}

fn net_ban_of(row: &Row) -> Result<NetBan> {
    let text: String = col(row, 0)?;
    let net: IpNet = text.parse().map_err(|_| StorageError::corrupt("net_bans", "bad network"))?;
    Ok(NetBan { net, ban: ban_of(row, 1, "net_bans")? })
}

pub(crate) async fn user_ban<C: GenericClient>(c: &C, user: u32, now_ms: u64) -> Result<Option<Ban>> {
    let sql = "SELECT reason, by_id, created_ms, expires_ms FROM user_bans WHERE user_id = $1";
    let Some(row) = query_opt(c, sql, &[&i64::from(user)]).await? else {
        return Ok(None);
    };
    let ban = ban_of(&row, 0, "user_bans")?;
    Ok(ban.active_at(now_ms).then_some(ban))
}

pub(crate) async fn user_bans<C: GenericClient>(c: &C, max: usize) -> Result<Vec<(u32, Ban)>> {
    let sql = "SELECT user_id, reason, by_id, created_ms, expires_ms FROM user_bans ORDER BY user_id LIMIT $1";
    query(c, sql, &[&limit(max)])
        .await?
        .iter()
        .map(|row| Ok((u32_of(col(row, 0)?, "user_bans")?, ban_of(row, 1, "user_bans")?)))
        .collect()
}

pub(crate) async fn net_bans<C: GenericClient>(c: &C) -> Result<Vec<NetBan>> {
    let sql = "SELECT net::text, reason, by_id, created_ms, expires_ms FROM net_bans ORDER BY net LIMIT $1";
    query(c, sql, &[&limit(MAX_NET_BANS)]).await?.iter().map(net_ban_of).collect()
}

/// The first ban in force containing `addr`, in the order of [`net_bans`] (as the fjall
/// backend's scan), found by the server.
pub(crate) async fn net_ban_for<C: GenericClient>(c: &C, addr: IpAddr, now_ms: u64) -> Result<Option<NetBan>> {
    // A time beyond any stored expiry: every ban with one has ended.
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let sql = "SELECT net::text, reason, by_id, created_ms, expires_ms FROM net_bans
               WHERE net >>= $1::text::inet AND (expires_ms IS NULL OR $2 < expires_ms)
               ORDER BY net LIMIT 1";
    let row = query_opt(c, sql, &[&addr.to_string(), &now]).await?;
    match row {
        // `now_ms` past i64::MAX: only permanent bans are in force (as `active_at` says).
        Some(row) => Ok(Some(net_ban_of(&row)?).filter(|b| b.ban.active_at(now_ms))),
        None => Ok(None),
    }
}

pub(crate) async fn audit_log<C: GenericClient>(c: &C, before: u64, max: usize) -> Result<Vec<AuditEntry>> {
    let Some(last) = below(before) else {
        return Ok(Vec::new());
    };
    let sql = "SELECT id, time_ms, actor, action, target, detail FROM audit WHERE id <= $1 ORDER BY id DESC LIMIT $2";
    query(c, sql, &[&last, &limit(max)])
        .await?
        .iter()
        .map(|row| {
            let action: String = col(row, 3)?;
            Ok(AuditEntry {
                seq: u64_of(col(row, 0)?, "audit")?,
                time_ms: u64_of(col(row, 1)?, "audit")?,
                actor: u32_of(col(row, 2)?, "audit")?,
                action: AuditAction::from_name(&action)
                    .ok_or_else(|| StorageError::corrupt("audit", "unknown action"))?,
                target: col(row, 4)?,
                detail: col(row, 5)?,
            })
        })
        .collect()
}

pub(crate) async fn audit<C: GenericClient>(c: &C, entry: &AuditDraft) -> Result<()> {
    let sql = "INSERT INTO audit (time_ms, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)";
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
        [&to_i64(entry.time_ms, "time")?, &i64::from(entry.actor), &entry.action.name(), &entry.target, &entry.detail];
    execute(c, sql, &params).await.map(drop)
}

fn draft(actor: u32, action: AuditAction, target: String, detail: String, time_ms: u64) -> AuditDraft {
    AuditDraft { actor, action, target, detail, time_ms }
}

/// A ban's columns as parameters: reason, by, created, expires.
fn ban_params(ban: &Ban) -> Result<(i64, i64, Option<i64>)> {
    let expires = ban.expires_ms.map(|e| to_i64(e, "ban expiry")).transpose()?;
    Ok((i64::from(ban.by), to_i64(ban.created_ms, "time")?, expires))
}

pub(crate) async fn ban_user<C: GenericClient>(c: &C, user: u32, ban: Ban) -> Result<()> {
    if super::accounts::user(c, user).await?.is_none() {
        return Err(StorageError::not_found("user"));
    }
    let (by, created, expires) = ban_params(&ban)?;
    let sql = "INSERT INTO user_bans (user_id, reason, by_id, created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (user_id) DO UPDATE SET reason = excluded.reason, by_id = excluded.by_id,
               created_ms = excluded.created_ms, expires_ms = excluded.expires_ms";
    execute(c, sql, &[&i64::from(user), &ban.reason, &by, &created, &expires]).await?;
    let detail = match ban.expires_ms {
        Some(until) => format!("{} (until {until})", ban.reason),
        None => ban.reason.clone(),
    };
    audit(c, &draft(ban.by, AuditAction::BanUser, user.to_string(), detail, ban.created_ms)).await
}

pub(crate) async fn unban_user<C: GenericClient>(c: &C, user: u32, actor: u32, now_ms: u64) -> Result<bool> {
    to_i64(now_ms, "time")?;
    if execute(c, "DELETE FROM user_bans WHERE user_id = $1", &[&i64::from(user)]).await? == 0 {
        return Ok(false);
    }
    audit(c, &draft(actor, AuditAction::UnbanUser, user.to_string(), String::new(), now_ms)).await?;
    Ok(true)
}

pub(crate) async fn ban_net<C: GenericClient>(c: &C, net: IpNet, ban: Ban) -> Result<()> {
    let net = net.trunc();
    let key = net.to_string();
    let (by, created, expires) = ban_params(&ban)?;
    lock(c, Global::NetBans).await?;
    let exists = query_opt(c, "SELECT 1 FROM net_bans WHERE net = $1::text::cidr", &[&key]).await?.is_some();
    if !exists {
        let row = super::sql::query_one(c, "SELECT count(*) FROM net_bans", &[]).await?;
        let count = u64_of(col(&row, 0)?, "net_bans")?;
        if count >= MAX_NET_BANS as u64 {
            return Err(StorageError::conflict("too many address bans"));
        }
    }
    let sql =
        "INSERT INTO net_bans (net, reason, by_id, created_ms, expires_ms) VALUES ($1::text::cidr, $2, $3, $4, $5)
               ON CONFLICT (net) DO UPDATE SET reason = excluded.reason, by_id = excluded.by_id,
               created_ms = excluded.created_ms, expires_ms = excluded.expires_ms";
    execute(c, sql, &[&key, &ban.reason, &by, &created, &expires]).await?;
    audit(c, &draft(ban.by, AuditAction::BanNet, key, ban.reason.clone(), ban.created_ms)).await
}

pub(crate) async fn unban_net<C: GenericClient>(c: &C, net: IpNet, actor: u32, now_ms: u64) -> Result<bool> {
    to_i64(now_ms, "time")?;
    let key = net.trunc().to_string();
    if execute(c, "DELETE FROM net_bans WHERE net = $1::text::cidr", &[&key]).await? == 0 {
        return Ok(false);
    }
    audit(c, &draft(actor, AuditAction::UnbanNet, key, String::new(), now_ms)).await?;
    Ok(true)
}
