//! Constructors for the semantic errors of §5.3, one per `details.reason`, so the server never
//! spells a details key by hand. Messages follow the spec's examples; they are not contract.

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

    pub fn machine_not_found(machine: &str, version: u32) -> Self {
        Self::with_reason(
            ErrorCode::MachineNotFound,
            "machine_not_found",
            format!("machine not found: {machine} version {version}"),
        )
        .with_detail("machine", machine)
        .with_detail("version", version)
    }

    /// A re-PUT of an existing version with a different checksum (§4.7).
    pub fn version_exists(
        machine: &str,
        version: u32,
        existing_checksum: &str,
        new_checksum: &str,
    ) -> Self {
        Self::with_reason(
            ErrorCode::MachineVersionExists,
            "version_exists",
            format!("machine {machine} version {version} already exists with another definition"),
        )
        .with_detail("machine", machine)
        .with_detail("version", version)
        .with_detail("existing_checksum", existing_checksum)
        .with_detail("new_checksum", new_checksum)
    }

    /// `storage.max_machine_versions` reached (§4.7).
    pub fn version_limit(machine: &str, limit: u32) -> Self {
        Self::with_reason(
            ErrorCode::MachineVersionLimitExceeded,
            "version_limit",
            format!("machine {machine} already has {limit} versions"),
        )
        .with_detail("machine", machine)
        .with_detail("limit", limit)
    }

    pub fn instance_not_found(instance_id: &str) -> Self {
        Self::with_reason(
            ErrorCode::InstanceNotFound,
            "instance_not_found",
            format!("instance not found: {instance_id}"),
        )
        .with_detail("instance_id", instance_id)
    }

    pub fn instance_exists(instance_id: &str) -> Self {
        Self::with_reason(
            ErrorCode::InstanceExists,
            "instance_exists",
            format!("instance already exists: {instance_id}"),
        )
        .with_detail("instance_id", instance_id)
    }

    /// No transition for (state, event) (§4.14 step 7).
    pub fn no_transition(state: &str, event: &str) -> Self {
        Self::with_reason(
            ErrorCode::InvalidTransition,
            "no_transition",
            format!("cannot apply '{event}' in state '{state}'"),
        )
        .with_detail("state", state)
        .with_detail("event", event)
    }

    /// Transitions exist but no guard passed; `guards` in the order tried (§4.14 step 8).
    pub fn guard_failed(state: &str, event: &str, guards: Vec<String>) -> Self {
        Self::with_reason(
            ErrorCode::GuardFailed,
            "guard_failed",
            format!(
                "no guard passed for event '{event}' in state '{state}' (tried: {})",
                guards.join(", ")
            ),
        )
        .with_detail("state", state)
        .with_detail("event", event)
        .with_detail("guards", guards)
    }

    /// `expected_state` differs from the current state (§6.3).
    pub fn state_mismatch(expected: &str, actual: &str) -> Self {
        Self::with_reason(
            ErrorCode::Conflict,
            "state_mismatch",
            format!("expected state '{expected}', instance is in '{actual}'"),
        )
        .with_detail("expected", expected)
        .with_detail("actual", actual)
    }

    /// `expected_wal_offset` differs from `last_wal_offset` (§6.3).
    pub fn wal_offset_mismatch(expected: u64, actual: u64) -> Self {
        Self::with_reason(
            ErrorCode::Conflict,
            "wal_offset_mismatch",
            format!("expected last_wal_offset {expected}, instance has {actual}"),
        )
        .with_detail("expected", expected)
        .with_detail("actual", actual)
    }

    /// A recorded idempotency key reused with a different request (§6.2).
    pub fn idempotency_key_reused(idempotency_key: &str, original_wal_offset: u64) -> Self {
        Self::with_reason(
            ErrorCode::Conflict,
            "idempotency_key_reused",
            "idempotency key was already used for a different request",
        )
        .with_detail("idempotency_key", idempotency_key)
        .with_detail("original_wal_offset", original_wal_offset)
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

    /// FLUSH_ALL while `storage.allow_flush_all` is false (§4.23).
    pub fn flush_all_disabled() -> Self {
        Self::bad_request("flush_all_disabled", "FLUSH_ALL is disabled")
    }

    /// REPLICATE and REPLICATE_ACK (§4.24).
    pub fn replication_internal() -> Self {
        Self::bad_request(
            "replication_internal",
            "replication operations are handled internally",
        )
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
    fn guard_failed_matches_the_spec_example() {
        let error = RcpError::guard_failed("paid", "SHIP", vec!["ctx.ready".into()]);
        assert_eq!(
            wire(&error),
            json!({"code":"GUARD_FAILED","message":"no guard passed for event 'SHIP' in state 'paid' (tried: ctx.ready)","retryable":false,"details":{"reason":"guard_failed","state":"paid","event":"SHIP","guards":["ctx.ready"]}})
        );
    }

    #[test]
    fn atomic_batch_failure_matches_the_spec_example() {
        let error = RcpError::no_transition("created", "SHIP").in_batch(1, Op::ApplyEvent);
        assert_eq!(
            wire(&error),
            json!({"code":"INVALID_TRANSITION","message":"batch op 1 (APPLY_EVENT) failed: cannot apply 'SHIP' in state 'created'","retryable":false,"details":{"reason":"no_transition","state":"created","event":"SHIP","index":1,"op":"APPLY_EVENT"}})
        );
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

    #[test]
    fn conflict_details_carry_expected_and_actual() {
        let error = RcpError::wal_offset_mismatch(5, 7);
        assert_eq!(
            error.details,
            json!({"reason":"wal_offset_mismatch","expected":5,"actual":7})
                .as_object()
                .cloned()
        );
        let error = RcpError::idempotency_key_reused("k", 9);
        assert_eq!(error.detail("original_wal_offset"), Some(&json!(9)));
    }
}
