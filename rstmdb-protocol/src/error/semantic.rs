//! Constructors for the errors of §5.3 that the protocol layer and the server's network and watch
//! paths raise, so no caller spells a details key by hand. (The engine's refusals carry their
//! details themselves, as serde derives, and are mapped to codes in the server's database layer.)
//! Messages follow the spec's examples; they are not contract.

use serde_json::Value;

use super::RcpError;
use crate::error_code::ErrorCode;
use crate::ops::Op;

/// Why an AUTH failed (§4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// `method` is not exactly `"bearer"`.
    UnsupportedMethod,
    /// `token` is `""`.
    EmptyToken,
    /// No configured hash matches.
    InvalidToken,
}

impl AuthFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnsupportedMethod => "unsupported_method",
            Self::EmptyToken => "empty_token",
            Self::InvalidToken => "invalid_token",
        }
    }
}

impl RcpError {
    /// An AUTH that failed (§4.2).
    pub fn auth_failed(failure: AuthFailure) -> Self {
        let message = match failure {
            AuthFailure::UnsupportedMethod => "unsupported auth method",
            AuthFailure::EmptyToken => "empty token",
            AuthFailure::InvalidToken => "invalid token",
        };
        Self::with_reason(ErrorCode::AuthFailed, failure.as_str(), message)
    }

    /// A WATCH `from_offset` below the oldest retained offset (§4.20, §6.9).
    pub fn offset_compacted_from(from_offset: u64, oldest_offset: u64) -> Self {
        Self::with_reason(
            ErrorCode::NotFound,
            "offset_compacted",
            format!("WAL records from offset {from_offset} were removed by compaction"),
        )
        .with_detail("from_offset", from_offset)
        .with_detail("oldest_offset", oldest_offset)
    }

    /// A subscription whose catch-up position was compacted away (the stream error of §3.6).
    pub fn offset_compacted_next(next_offset: u64, oldest_offset: u64) -> Self {
        Self::with_reason(
            ErrorCode::NotFound,
            "offset_compacted",
            format!("WAL records from offset {next_offset} were removed by compaction"),
        )
        .with_detail("next_offset", next_offset)
        .with_detail("oldest_offset", oldest_offset)
    }

    /// A WAL record could not be read or decoded (§4.17, §3.6).
    pub fn wal_read_failed(message: impl Into<String>) -> Self {
        Self::with_reason(ErrorCode::WalIoError, "wal_read_failed", message)
    }

    /// The connection limit is reached (§8.4).
    pub fn connection_limit(limit: u32) -> Self {
        Self::with_reason(
            ErrorCode::RateLimited,
            "connection_limit",
            "connection limit reached",
        )
        .with_detail("limit", limit)
    }

    /// The limit on connections that have not authenticated yet is reached (§13): the §8.4
    /// frame with its own reason.
    pub fn unauthenticated_limit(limit: u64) -> Self {
        Self::with_reason(
            ErrorCode::RateLimited,
            "unauthenticated_limit",
            "too many connections waiting to authenticate",
        )
        .with_detail("limit", limit)
    }

    /// REPLICATE and REPLICATE_ACK (§4.24).
    pub fn replication_internal() -> Self {
        Self::bad_request(
            "replication_internal",
            "replication operations are handled internally",
        )
    }

    /// A cluster write that was not handed to a leader in time (§12.2): it was not applied.
    pub fn no_leader(message: impl Into<String>) -> Self {
        Self::with_reason(ErrorCode::ReplicationTimeout, "no_leader", message)
    }

    /// A cluster write handed to the leader whose commit was not confirmed (§12.2): it may
    /// still commit; a retry with the same idempotency key resolves it.
    pub fn commit_unknown(message: impl Into<String>) -> Self {
        Self::with_reason(ErrorCode::ReplicationTimeout, "commit_unknown", message)
    }

    /// A write on a node that does not forward writes (§12.2), with the leader's client
    /// address when one is known.
    pub fn not_leader(leader: Option<&str>) -> Self {
        Self::with_reason(
            ErrorCode::ReadOnlyMode,
            "not_leader",
            match leader {
                Some(leader) => format!("this node is not the leader; the leader is {leader}"),
                None => "this node is not the leader, and no leader is known".to_owned(),
            },
        )
        .with_detail("leader", leader.map_or(Value::Null, Value::from))
    }

    /// The error of a failed atomic BATCH (§4.15): the sub-op's error with `index` and `op`
    /// added to its details.
    pub fn in_batch(self, index: usize, op: Op) -> Self {
        let message = format!("batch op {index} ({op}) failed: {}", self.message);
        let mut error = self
            .with_detail("index", index)
            .with_detail("op", Value::from(op.as_str()));
        error.message = message;
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wire(error: &RcpError) -> Value {
        serde_json::to_value(error).unwrap()
    }

    #[test]
    fn stream_error_and_connection_limit_match_the_spec_examples() {
        let error = RcpError::offset_compacted_next(1_099_511_628_334, 3_298_534_883_328);
        assert_eq!(
            wire(&error),
            json!({"code":"NOT_FOUND","message":"WAL records from offset 1099511628334 were removed by compaction","retryable":false,"details":{"reason":"offset_compacted","next_offset":1099511628334_u64,"oldest_offset":3298534883328_u64}})
        );
        assert_eq!(
            wire(&RcpError::connection_limit(1000)),
            json!({"code":"RATE_LIMITED","message":"connection limit reached","retryable":true,"details":{"reason":"connection_limit","limit":1000}})
        );
    }

    #[test]
    fn replication_internal_matches_the_spec_example() {
        assert_eq!(
            wire(&RcpError::replication_internal()),
            json!({"code":"BAD_REQUEST","message":"replication operations are handled internally","retryable":false,"details":{"reason":"replication_internal"}})
        );
    }

    #[test]
    fn auth_failures_name_their_reason() {
        for (failure, reason) in [
            (AuthFailure::UnsupportedMethod, "unsupported_method"),
            (AuthFailure::EmptyToken, "empty_token"),
            (AuthFailure::InvalidToken, "invalid_token"),
        ] {
            let error = RcpError::auth_failed(failure);
            assert_eq!(error.code, ErrorCode::AuthFailed);
            assert_eq!(error.reason(), Some(reason));
        }
    }
}
