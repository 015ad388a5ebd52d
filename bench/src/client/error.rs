//! The client library's error.

use thiserror::Error;

/// Why a client operation failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// A network error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// An HTTP-level error.
    #[error("http: {0}")]
    Http(String),
    /// The server answered with an error status.
    #[error("server answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Response body.
        body: String,
    },
    /// A WebSocket error.
    #[error("websocket: {0}")]
    WebSocket(String),
    /// The server sent something that does not decode.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The session was closed (reason and message from the `Closing` frame, if any).
    #[error("closed: {0}")]
    Closed(String),
    /// Waiting took too long.
    #[error("timed out")]
    Timeout,
}

impl ClientError {
    /// The HTTP status if this is a status error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}
