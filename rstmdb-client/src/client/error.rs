//! The one error type of the client: what the server said, or why it could not be asked.

use std::time::Duration;

use crate::error::RcpError;
use crate::error_code::ErrorCode;
use crate::ops::Op;

/// Why a client call, a connection attempt or a subscription failed.
///
/// Retry guidance: [`ClientError::is_retryable`] says whether sending the same request again
/// may succeed. A write that failed with [`ClientError::ConnectionLost`] or
/// [`ClientError::Timeout`] may or may not have executed on the server; retry writes with the
/// same idempotency key (spec §6.2) so that a retry cannot apply the change twice.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error response (§3.3), or ended a subscription with a
    /// stream error (§3.6). Unknown codes arrive as [`ErrorCode::Other`].
    #[error("server error {}: {}", .0.code, .0.message)]
    Server(RcpError),

    /// The connection broke while the request was outstanding, or before it could be sent.
    /// The request may or may not have executed.
    #[error("connection lost: {reason}")]
    ConnectionLost { reason: String },

    /// No answer arrived in time. The request may still execute on the server.
    #[error("{op} timed out after {timeout_ms} ms")]
    Timeout { op: Op, timeout_ms: u128 },

    /// The TCP connection could not be opened.
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },

    /// The TLS configuration is unusable (unreadable PEM, bad server name) or the handshake
    /// failed.
    #[error("TLS: {0}")]
    Tls(String),

    /// The request would exceed the 16 MiB payload ceiling (§2.4); nothing was sent.
    #[error("request of {size_bytes} bytes exceeds the {limit_bytes}-byte limit")]
    RequestTooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },

    /// The client options are inconsistent.
    #[error("invalid client options: {0}")]
    Config(String),

    /// The server sent something this client cannot understand: a framing fault, a malformed
    /// message or a result of the wrong shape.
    #[error("protocol violation: {0}")]
    Protocol(String),

    /// The client was closed (by [`crate::client::Client::close`], or because reconnecting
    /// gave up); nothing more will be sent.
    #[error("client closed: {reason}")]
    Closed { reason: String },
}

impl ClientError {
    /// Whether the same request may succeed if sent again: the server's `retryable` flag for
    /// server errors; true for transport trouble (lost connection, timeout, connect failure);
    /// false for configuration, protocol and closed-client errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Server(error) => error.retryable,
            Self::ConnectionLost { .. } | Self::Timeout { .. } | Self::Connect { .. } => true,
            Self::Tls(_)
            | Self::RequestTooLarge { .. }
            | Self::Config(_)
            | Self::Protocol(_)
            | Self::Closed { .. } => false,
        }
    }

    /// The server's error object, if the server sent one.
    pub fn server_error(&self) -> Option<&RcpError> {
        match self {
            Self::Server(error) => Some(error),
            _ => None,
        }
    }

    /// The server's error code, if the server sent one.
    pub fn code(&self) -> Option<&ErrorCode> {
        self.server_error().map(|error| &error.code)
    }

    /// `details.reason` of the server's error, if any (§5.3).
    pub fn reason(&self) -> Option<&str> {
        self.server_error().and_then(RcpError::reason)
    }

    pub(crate) fn timeout(op: Op, timeout: Duration) -> Self {
        Self::Timeout {
            op,
            timeout_ms: timeout.as_millis(),
        }
    }

    pub(crate) fn lost(reason: impl Into<String>) -> Self {
        Self::ConnectionLost {
            reason: reason.into(),
        }
    }
}

impl From<RcpError> for ClientError {
    fn from(error: RcpError) -> Self {
        Self::Server(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_follows_the_server_flag_for_server_errors() {
        let internal = ClientError::Server(RcpError::internal("boom"));
        assert!(internal.is_retryable());
        let conflict = ClientError::Server(RcpError::new(ErrorCode::Conflict, "x"));
        assert!(!conflict.is_retryable());
        assert_eq!(conflict.code(), Some(&ErrorCode::Conflict));
    }

    #[test]
    fn transport_errors_are_retryable_and_configuration_errors_are_not() {
        assert!(ClientError::lost("eof").is_retryable());
        assert!(ClientError::timeout(Op::Ping, Duration::from_millis(5)).is_retryable());
        assert!(!ClientError::Config("x".into()).is_retryable());
        assert!(!ClientError::Closed { reason: "x".into() }.is_retryable());
        assert_eq!(ClientError::lost("eof").code(), None);
    }
}
