//! How PostgreSQL's failures become [`StorageError`]s, and the checked conversions between the
//! records' unsigned integers and PostgreSQL's signed ones.
//!
//! Failures are told apart by SQLSTATE and by `is_closed()` / the error's source, never by
//! message text. Not applied and worth a retry (the server could not be reached, the
//! connection was lost before COMMIT, a statement timed out, a deadlock): unavailable. COMMIT
//! sent and no answer: outcome unknown. A unique violation: conflict, as the fjall backend
//! reports a taken name.

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

use crate::error::{Result, StorageError};

/// A failed statement (not COMMIT): nothing of the transaction is applied.
pub(crate) fn statement(e: tokio_postgres::Error) -> StorageError {
    match e.code() {
        Some(code) => by_code(code, &e),
        None if e.is_closed() || is_io(&e) => StorageError::unavailable(e),
        None => StorageError::io(e),
    }
}

/// A failed COMMIT: an answer from the server means it was not applied; none (the connection
/// broke after COMMIT was sent) means it may have been.
pub(crate) fn commit(e: tokio_postgres::Error) -> StorageError {
    match e.code() {
        Some(code) => by_code(code, &e),
        None => StorageError::commit_failed(e),
    }
}

/// No connection could be had from the pool.
pub(crate) fn pool(e: PoolError) -> StorageError {
    match e {
        PoolError::Closed => StorageError::new(crate::error::Kind::Closed),
        // Every connection busy for the whole wait: load, not a lost server (readiness stays).
        PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => StorageError::overloaded(),
        PoolError::Backend(e) if e.code().is_some_and(|c| !transient(c)) => StorageError::io(e),
        other => StorageError::unavailable(other),
    }
}

fn is_io(e: &tokio_postgres::Error) -> bool {
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

fn by_code(code: &SqlState, e: &tokio_postgres::Error) -> StorageError {
    if *code == SqlState::UNIQUE_VIOLATION {
        StorageError::conflict("already exists")
    } else if transient(code) {
        StorageError::unavailable(e)
    } else {
        StorageError::io(e)
    }
}

/// Server answers that mean "not now" rather than "never".
fn transient(code: &SqlState) -> bool {
    let class = code.code().get(..2);
    matches!(class, Some("08" | "53" | "57" | "40")) || *code == SqlState::LOCK_NOT_AVAILABLE
}

/// A record's `u64` as a bigint; beyond `i64::MAX` it is refused (not truncated).
pub(crate) fn to_i64(v: u64, what: &'static str) -> Result<i64> {
    i64::try_from(v).map_err(|_| StorageError::invalid(what))
}

/// A limit as a bigint (a limit beyond `i64::MAX` rows means no limit).
pub(crate) fn limit(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `seq < before` as the inclusive bound `seq <= bound`; `None` when nothing qualifies.
pub(crate) fn below(before: u64) -> Option<i64> {
    before.checked_sub(1).map(|b| i64::try_from(b).unwrap_or(i64::MAX))
}

/// A stored bigint as the record's `u64`; negative is corrupt.
pub(crate) fn u64_of(v: i64, table: &'static str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StorageError::corrupt(table, "negative value"))
}

/// A stored bigint as the record's `u32`; out of range is corrupt.
pub(crate) fn u32_of(v: i64, table: &'static str) -> Result<u32> {
    u32::try_from(v).map_err(|_| StorageError::corrupt(table, "value out of range"))
}

/// A stored integer as a coordinate; out of range is corrupt.
pub(crate) fn u16_of(v: i32, table: &'static str) -> Result<u16> {
    u16::try_from(v).map_err(|_| StorageError::corrupt(table, "value out of range"))
}

/// A stored smallint as a byte; out of range is corrupt.
pub(crate) fn u8_of(v: i16, table: &'static str) -> Result<u8> {
    u8::try_from(v).map_err(|_| StorageError::corrupt(table, "value out of range"))
}

/// A column of a row (a type mismatch between schema and code is reported, not a panic).
pub(crate) fn col<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a tokio_postgres::Row, i: usize) -> Result<T> {
    row.try_get(i).map_err(StorageError::io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_refuse_rather_than_truncate() {
        assert_eq!(to_i64(5, "x").unwrap(), 5);
        assert!(to_i64(u64::MAX, "x").unwrap_err().is_invalid());
        assert!(u64_of(-1, "t").unwrap_err().is_corrupt());
        assert!(u32_of(1 << 32, "t").unwrap_err().is_corrupt());
        assert_eq!(u32_of(7, "t").unwrap(), 7);
        assert!(u16_of(70_000, "t").unwrap_err().is_corrupt());
        assert!(u8_of(256, "t").unwrap_err().is_corrupt());
        assert_eq!(below(0), None);
        assert_eq!(below(10), Some(9));
        assert_eq!(below(u64::MAX), Some(i64::MAX));
        assert_eq!(limit(usize::MAX), i64::MAX);
    }
}
