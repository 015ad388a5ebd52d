//! Statement helpers shared by the domain files: cached prepared statements with errors
//! mapped, and the advisory locks that make read-check-write operations exact (what the fjall
//! backend gets from its single writer).

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::error::statement;
use super::migrate::LOCK_CLASS;
use crate::error::Result;

/// Parameters of a statement.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Every row of a (bounded) query.
pub(crate) async fn query<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
    let st = c.prepare_cached(sql).await.map_err(statement)?;
    c.query(&st, params).await.map_err(statement)
}

/// At most one row.
pub(crate) async fn query_opt<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
    let st = c.prepare_cached(sql).await.map_err(statement)?;
    c.query_opt(&st, params).await.map_err(statement)
}

/// Exactly one row.
pub(crate) async fn query_one<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<Row> {
    let st = c.prepare_cached(sql).await.map_err(statement)?;
    c.query_one(&st, params).await.map_err(statement)
}

/// Rows affected.
pub(crate) async fn execute<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<u64> {
    let st = c.prepare_cached(sql).await.map_err(statement)?;
    c.execute(&st, params).await.map_err(statement)
}

/// Process-wide locks (second key of the two-key advisory lock space; 1 is the migrations').
#[derive(Debug, Clone, Copy)]
#[repr(i32)]
pub(crate) enum Global {
    /// User id allocation and name uniqueness.
    Users = 2,
    /// Room id allocation and name uniqueness.
    Rooms = 3,
    /// The address ban count limit.
    NetBans = 4,
    /// The canvas geometry row.
    Canvas = 5,
    /// The next canvas sequence (cluster mode: held from assignment to commit).
    CanvasSeq = 6,
    /// The next control log id (held from assignment to commit).
    Control = 7,
}

/// Advisory lock class of rooms' next sequences (two-key space: class, room).
const ROOM_SEQ_CLASS: i32 = LOCK_CLASS + 1;

/// Holds `lock` until the transaction ends.
pub(crate) async fn lock<C: GenericClient>(c: &C, lock: Global) -> Result<()> {
    let key = lock as i32;
    execute(c, "SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK_CLASS, &key]).await.map(drop)
}

/// Holds the lock of `room`'s next sequence until the transaction ends.
pub(crate) async fn lock_room<C: GenericClient>(c: &C, room: u32) -> Result<()> {
    // The two-key form takes i32 keys: the cast is a bijection of u32 onto i32.
    let key = room as i32;
    execute(c, "SELECT pg_advisory_xact_lock($1, $2)", &[&ROOM_SEQ_CLASS, &key]).await.map(drop)
}

/// Holds the lock of the pair `{a, b}` (social graph transitions, a conversation's next
/// sequence) until the transaction ends. One-key space: `lo << 32 | hi`.
pub(crate) async fn lock_pair<C: GenericClient>(c: &C, a: u32, b: u32) -> Result<()> {
    let (lo, hi) = crate::chat::conversation_pair(a, b);
    let key = ((u64::from(lo) << 32) | u64::from(hi)) as i64;
    execute(c, "SELECT pg_advisory_xact_lock($1)", &[&key]).await.map(drop)
}
