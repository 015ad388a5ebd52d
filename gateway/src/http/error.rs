//! HTTP errors: a status, a stable snake-case code (the protocol's error names where one
//! fits), a human message, and a `Retry-After` when waiting helps. Rendered as
//! [`ErrorBody`]: `{"error": code, "message": message}`, plus `until_ms` for `banned`.

use hyper::StatusCode;
use pixelparty_protocol::ErrorCode;
use pixelparty_storage::StorageError;
use serde::Serialize;
use utoipa::ToSchema;

/// The JSON body of every error response of the HTTP API and of the admin endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": "not_found", "message": "no such user"}))]
pub struct ErrorBody {
    /// Machine-readable code, snake case: `invalid_argument`, `unauthorized`, `forbidden`,
    /// `banned`, `not_found`, `method_not_allowed`, `request_timeout`, `conflict`,
    /// `room_limit`, `payload_too_large`, `unsupported_media_type`, `upgrade_required`,
    /// `rate_limited`, `internal`, `outcome_unknown`, `overloaded`, `unavailable`, or the
    /// protocol error name (PROTOCOL.md) of an engine refusal.
    pub error: &'static str,
    /// Human-readable detail (for `banned`: the ban's reason).
    pub message: String,
    /// Only with `banned`: when the ban ends, ms since the Unix epoch; `null` for a permanent
    /// ban.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>)]
    pub until_ms: Option<Option<u64>>,
}

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: &'static str,
    /// Human-readable detail.
    pub message: String,
    /// Seconds to wait before retrying.
    pub retry_after_s: Option<u64>,
    /// For `banned`: when the ban ends (`Some(None)`: never), rendered as `until_ms`.
    pub until_ms: Option<Option<u64>>,
}

impl ApiError {
    /// The JSON body of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody { error: self.code, message: self.message.clone(), until_ms: self.until_ms }
    }

    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after_s: None, until_ms: None }
    }

    /// 403 `banned` with the ban's reason as the message and its end as `until_ms` (`null`
    /// for a permanent ban).
    pub fn banned(reason: impl Into<String>, expires_ms: Option<u64>) -> Self {
        let mut e = Self::new(StatusCode::FORBIDDEN, "banned", reason);
        e.until_ms = Some(expires_ms);
        e
    }

    /// 400 `invalid_argument`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidArgument.name(), message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized.name(), message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden.name(), message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound.name(), message)
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 429 `rate_limited` with a retry hint.
    pub fn rate_limited(retry_after_ms: u64) -> Self {
        let mut e =
            Self::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited.name(), "too many attempts; retry later");
        e.retry_after_s = Some(retry_after_ms.div_ceil(1000).max(1));
        e
    }

    /// 503 `overloaded`.
    pub fn overloaded() -> Self {
        let mut e =
            Self::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Overloaded.name(), "server busy; retry later");
        e.retry_after_s = Some(1);
        e
    }

    /// 503 `unavailable`: storage is not taking writes; nothing was applied.
    pub fn unavailable() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable.name(),
            "storage is not taking writes; not applied",
        );
        e.retry_after_s = Some(1);
        e
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal.name(), message)
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        if e.is_conflict() {
            Self::conflict(e.detail())
        } else if e.is_not_found() {
            Self::not_found(e.detail())
        } else if e.is_invalid() {
            Self::invalid(e.detail())
        } else if e.is_overloaded() {
            Self::overloaded()
        } else if e.is_outcome_unknown() {
            tracing::error!(error = %e, "storage failed during a write");
            Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::OutcomeUnknown.name(),
                "storage failed while writing this; it may be applied: read it back before retrying",
            )
        } else if e.is_poisoned() || e.is_closed() || e.is_unavailable() {
            Self::unavailable()
        } else {
            tracing::error!(error = %e, "storage error");
            Self::internal("storage error")
        }
    }
}
