//! The cluster's control log in PostgreSQL (`control_log`): events that change live sessions
//! on every node, in one order. An id is the log's newest plus one, taken under an advisory
//! lock held until commit, so ids are gap-free and become visible in order (a reader that saw
//! id n can read everything below it).

use deadpool_postgres::GenericClient;

use super::error::{col, limit, to_i64, u64_of};
use super::sql::{Global, execute, lock, query, query_one};
use crate::backend::ControlRecord;
use crate::error::Result;

/// Rows kept: older ones are pruned as new ones come (a node behind by more re-reads from
/// the newest).
pub(crate) const KEEP: u64 = 100_000;

/// Appends `event` in the caller's transaction; its id.
pub(crate) async fn append<C: GenericClient>(c: &C, node: u64, event: &str, now_ms: u64) -> Result<u64> {
    lock(c, Global::Control).await?;
    let id = last_id(c).await? + 1;
    let sql = "INSERT INTO control_log (id, node, time_ms, event) VALUES ($1, $2, $3, $4)";
    // Node ids are opaque 64-bit values: stored as their bit pattern.
    execute(c, sql, &[&to_i64(id, "control id")?, &(node as i64), &to_i64(now_ms, "time")?, &event]).await?;
    if id.is_multiple_of(1000) && id > KEEP {
        execute(c, "DELETE FROM control_log WHERE id <= $1", &[&to_i64(id - KEEP, "control id")?]).await?;
    }
    Ok(id)
}

pub(crate) async fn last_id<C: GenericClient>(c: &C) -> Result<u64> {
    let row = query_one(c, "SELECT coalesce(max(id), 0) FROM control_log", &[]).await?;
    u64_of(col(&row, 0)?, "control_log")
}

pub(crate) async fn after<C: GenericClient>(c: &C, after: u64, max: usize) -> Result<Vec<ControlRecord>> {
    let Ok(after) = i64::try_from(after) else { return Ok(Vec::new()) };
    let sql = "SELECT id, node, event FROM control_log WHERE id > $1 ORDER BY id LIMIT $2";
    query(c, sql, &[&after, &limit(max)])
        .await?
        .iter()
        .map(|r| {
            let node: i64 = col(r, 1)?;
            Ok(ControlRecord { id: u64_of(col(r, 0)?, "control_log")?, node: node as u64, event: col(r, 2)? })
        })
        .collect()
}
