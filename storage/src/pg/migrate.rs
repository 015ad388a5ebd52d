//! The schema: versioned SQL migrations embedded in the binary, applied at connect.
//!
//! Each node runs [`migrate`] when it connects. It takes a transaction-scoped advisory lock
//! first, so nodes starting together apply each migration once, one after the other; the
//! `schema_migrations` table records what ran. A database with a version this build does not
//! know (written by a newer build) is refused.

use deadpool_postgres::Object;

use super::error::statement;
use crate::error::{Result, StorageError};

/// The migrations in order: (version, SQL).
const MIGRATIONS: &[(i32, &str)] =
    &[(1, include_str!("migrations/0001_init.sql")), (2, include_str!("migrations/0002_cluster.sql"))];

/// Advisory lock held while migrating (two-key form: "pxpt", 1). The one-key space, which
/// the per-pair locks use, does not overlap it.
pub(crate) const LOCK_CLASS: i32 = 0x7078_7074;

/// Brings the schema up to date.
pub(crate) async fn migrate(client: &mut Object) -> Result<usize> {
    let tx = client.transaction().await.map_err(statement)?;
    tx.execute("SELECT pg_advisory_xact_lock($1, 1)", &[&LOCK_CLASS]).await.map_err(statement)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version int PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(statement)?;
    let rows = tx.query("SELECT version FROM schema_migrations", &[]).await.map_err(statement)?;
    let mut applied = Vec::with_capacity(rows.len());
    for row in &rows {
        applied.push(super::error::col::<i32>(row, 0)?);
    }
    let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if applied.iter().any(|v| *v > known) {
        return Err(StorageError::corrupt("schema_migrations", "database schema is newer than this build"));
    }
    let mut ran = 0;
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await.map_err(statement)?;
        tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[version]).await.map_err(statement)?;
        ran += 1;
    }
    tx.commit().await.map_err(super::error::commit)?;
    Ok(ran)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_ascend_from_one() {
        for (i, (version, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version as usize, i + 1);
        }
    }
}
