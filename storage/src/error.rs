//! The store's error type: opaque, queried with `is_*()`, never matched on its text.

use std::fmt;

/// What went wrong, for the store's own use and for `Display`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A unique name is taken, a relation already exists, or a precondition failed.
    Conflict(&'static str),
    /// The record a write needs does not exist.
    NotFound(&'static str),
    /// An argument is outside what the store accepts.
    Invalid(&'static str),
    /// A stored value failed its format check.
    Corrupt { keyspace: &'static str, reason: &'static str },
    /// An earlier write or fsync failed; the store refuses further writes. The write that
    /// gets this was not applied.
    Poisoned,
    /// The write reached the store's journal but the store failed before it was made durable
    /// (its fsync, or another write of its group, failed): it may or may not survive a restart.
    Unsynced,
    /// Committing the write's batch failed part way (an I/O error while writing it): part of
    /// it may be in the journal and replayed at the next start.
    CommitFailed(String),
    /// The writer's queue is full.
    Overloaded,
    /// The store is closed.
    Closed,
    /// The database could not be reached, or refused the statement for now (connection lost
    /// before COMMIT was sent, statement timeout, server shutting down, deadlock): the
    /// operation was not applied and may be retried.
    Unavailable(String),
    /// An error from fjall, the file system or the database.
    Io(String),
}

/// An error from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError {
    kind: Kind,
}

impl StorageError {
    pub(crate) fn new(kind: Kind) -> Self {
        Self { kind }
    }

    pub(crate) fn conflict(what: &'static str) -> Self {
        Self::new(Kind::Conflict(what))
    }

    pub(crate) fn not_found(what: &'static str) -> Self {
        Self::new(Kind::NotFound(what))
    }

    /// A request the store refuses as invalid (`what` says why).
    pub fn invalid(what: &'static str) -> Self {
        Self::new(Kind::Invalid(what))
    }

    pub(crate) fn corrupt(keyspace: &'static str, reason: &'static str) -> Self {
        Self::new(Kind::Corrupt { keyspace, reason })
    }

    /// Too much work in flight: try again shortly. Nothing was applied.
    pub fn overloaded() -> Self {
        Self::new(Kind::Overloaded)
    }

    pub(crate) fn poisoned() -> Self {
        Self::new(Kind::Poisoned)
    }

    pub(crate) fn unsynced() -> Self {
        Self::new(Kind::Unsynced)
    }

    pub(crate) fn commit_failed(cause: impl fmt::Display) -> Self {
        Self::new(Kind::CommitFailed(cause.to_string()))
    }

    /// A service the operation needs could not be reached, or refused it for now: nothing
    /// was applied; try again later.
    pub fn unavailable(cause: impl fmt::Display) -> Self {
        Self::new(Kind::Unavailable(cause.to_string()))
    }

    pub(crate) fn io(cause: impl fmt::Display) -> Self {
        Self::new(Kind::Io(cause.to_string()))
    }

    /// The write may or may not have been applied: the store failed while writing it (an
    /// I/O error in its commit, or after it was committed and before it was durable). A
    /// restart may replay it. With PostgreSQL: COMMIT was sent and no answer came. Read it
    /// back before retrying. (Any other error of a write means it was not applied: a job's
    /// own error never commits anything.)
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self.kind, Kind::Unsynced | Kind::CommitFailed(_))
    }

    /// A unique constraint or precondition failed (name taken, already friends, ...).
    pub fn is_conflict(&self) -> bool {
        matches!(self.kind, Kind::Conflict(_))
    }

    /// The record the operation needs does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self.kind, Kind::NotFound(_))
    }

    /// An argument was refused.
    pub fn is_invalid(&self) -> bool {
        matches!(self.kind, Kind::Invalid(_))
    }

    /// A stored record failed its checks.
    pub fn is_corrupt(&self) -> bool {
        matches!(self.kind, Kind::Corrupt { .. })
    }

    /// The store refuses writes after an earlier failure.
    pub fn is_poisoned(&self) -> bool {
        matches!(self.kind, Kind::Poisoned)
    }

    /// The writer's queue is full: retry later.
    pub fn is_overloaded(&self) -> bool {
        matches!(self.kind, Kind::Overloaded)
    }

    /// The store was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self.kind, Kind::Closed)
    }

    /// The database could not be reached or refused the statement for now (PostgreSQL
    /// backend): the operation was not applied; retry later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self.kind, Kind::Unavailable(_))
    }

    /// A short machine-readable detail (`"user name"`, `"friend request"`).
    pub fn detail(&self) -> &'static str {
        match &self.kind {
            Kind::Conflict(w) | Kind::NotFound(w) | Kind::Invalid(w) => w,
            Kind::Corrupt { reason, .. } => reason,
            Kind::Poisoned => "poisoned",
            Kind::Unsynced => "unsynced",
            Kind::CommitFailed(_) => "commit failed",
            Kind::Overloaded => "overloaded",
            Kind::Closed => "closed",
            Kind::Unavailable(_) => "unavailable",
            Kind::Io(_) => "io",
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Conflict(w) => write!(f, "conflict: {w}"),
            Kind::NotFound(w) => write!(f, "not found: {w}"),
            Kind::Invalid(w) => write!(f, "invalid argument: {w}"),
            Kind::Corrupt { keyspace, reason } => {
                write!(f, "corrupt record in {keyspace}: {reason}")
            }
            Kind::Poisoned => write!(f, "store is poisoned after a failed write; restart required"),
            Kind::Unsynced => write!(f, "written but not made durable before the store failed; outcome unknown"),
            Kind::CommitFailed(e) => write!(f, "committing a write failed part way ({e}); outcome unknown"),
            Kind::Overloaded => write!(f, "store writer queue is full"),
            Kind::Closed => write!(f, "store is closed"),
            Kind::Unavailable(e) => write!(f, "database unavailable ({e}); not applied"),
            Kind::Io(e) => write!(f, "storage i/o error: {e}"),
        }
    }
}

impl std::error::Error for StorageError {}

impl From<fjall::Error> for StorageError {
    fn from(e: fjall::Error) -> Self {
        match e {
            fjall::Error::Poisoned => Self::poisoned(),
            other => Self::new(Kind::Io(other.to_string())),
        }
    }
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        Self::new(Kind::Io(e.to_string()))
    }
}

/// Result alias of the store.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
