//! The one place where the database's typed errors become RCP errors (spec §5).

use crate::engine::ApplyError;
use crate::wal::WalError;
use rstmdb_protocol::{ErrorCode, RcpError};
use serde_json::Value;

/// The RCP error code of an engine refusal (§5.1). Exhaustive on purpose: a new refusal does
/// not compile until it is given its code.
pub fn error_code(err: &ApplyError) -> ErrorCode {
    match err {
        ApplyError::InvalidDefinition(_) | ApplyError::FlushAllDisabled => ErrorCode::BadRequest,
        ApplyError::MachineVersionExists { .. } => ErrorCode::MachineVersionExists,
        ApplyError::MachineVersionLimitExceeded { .. } => ErrorCode::MachineVersionLimitExceeded,
        ApplyError::MachineNotFound { .. } => ErrorCode::MachineNotFound,
        ApplyError::InstanceNotFound { .. } => ErrorCode::InstanceNotFound,
        ApplyError::InstanceExists { .. } => ErrorCode::InstanceExists,
        ApplyError::NoTransition { .. } => ErrorCode::InvalidTransition,
        ApplyError::GuardFailed { .. } => ErrorCode::GuardFailed,
        ApplyError::StateMismatch { .. }
        | ApplyError::WalOffsetMismatch { .. }
        | ApplyError::IdempotencyKeyReused { .. } => ErrorCode::Conflict,
    }
}

/// An engine refusal as the RCP error the client receives: its code, its message and its
/// `details` (the error's own serialisation: `reason` plus the keys of §5.3's table).
pub fn from_apply(err: &ApplyError) -> RcpError {
    let code = error_code(err);
    let details = match serde_json::to_value(err) {
        Ok(Value::Object(details)) => Some(details),
        // Every variant serialises to an object of strings and numbers; this is unreachable.
        _ => None,
    };
    RcpError {
        retryable: code.retryable(),
        code,
        message: err.to_string(),
        details,
    }
}

/// A WAL failure on the write or read path: retryable `WAL_IO_ERROR`. The write was not
/// acknowledged; a retry should reuse its idempotency key (spec §5.1).
pub(crate) fn from_wal(err: &WalError) -> RcpError {
    RcpError::new(ErrorCode::WalIoError, format!("WAL I/O error: {err}"))
}

/// A bug caught at run time, reported for the one request instead of crashing (spec §2.8).
pub(crate) fn internal(what: impl std::fmt::Display) -> RcpError {
    RcpError::internal(format!("internal error: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wire(err: &ApplyError) -> Value {
        serde_json::to_value(from_apply(err)).expect("serialises")
    }

    #[test]
    fn guard_failed_matches_the_spec_example() {
        let error = ApplyError::GuardFailed {
            state: "paid".into(),
            event: "SHIP".into(),
            guards: vec!["ctx.ready".into()],
        };
        assert_eq!(
            wire(&error),
            json!({"code":"GUARD_FAILED","message":"no guard passed for event 'SHIP' in state 'paid' (tried: ctx.ready)","retryable":false,"details":{"reason":"guard_failed","state":"paid","event":"SHIP","guards":["ctx.ready"]}})
        );
    }

    #[test]
    fn an_atomic_batch_failure_matches_the_spec_example() {
        let error = ApplyError::NoTransition {
            state: "created".into(),
            event: "SHIP".into(),
        };
        let wire =
            serde_json::to_value(from_apply(&error).in_batch(1, rstmdb_protocol::Op::ApplyEvent))
                .expect("serialises");
        assert_eq!(
            wire,
            json!({"code":"INVALID_TRANSITION","message":"batch op 1 (APPLY_EVENT) failed: cannot apply 'SHIP' in state 'created'","retryable":false,"details":{"reason":"no_transition","state":"created","event":"SHIP","index":1,"op":"APPLY_EVENT"}})
        );
    }

    #[test]
    fn each_refusal_has_its_code_reason_and_detail_keys() {
        let cases = [
            (
                ApplyError::MachineVersionExists {
                    machine: "order".into(),
                    version: 1,
                    existing_checksum: "eef67bea".into(),
                    new_checksum: "00000000".into(),
                },
                "MACHINE_VERSION_EXISTS",
                json!({"reason":"version_exists","machine":"order","version":1,"existing_checksum":"eef67bea","new_checksum":"00000000"}),
            ),
            (
                ApplyError::MachineVersionLimitExceeded {
                    machine: "order".into(),
                    limit: 3,
                },
                "MACHINE_VERSION_LIMIT_EXCEEDED",
                json!({"reason":"version_limit","machine":"order","limit":3}),
            ),
            (
                ApplyError::MachineNotFound {
                    machine: "order".into(),
                    version: 2,
                },
                "MACHINE_NOT_FOUND",
                json!({"reason":"machine_not_found","machine":"order","version":2}),
            ),
            (
                ApplyError::InstanceNotFound {
                    instance_id: "i-1".into(),
                },
                "INSTANCE_NOT_FOUND",
                json!({"reason":"instance_not_found","instance_id":"i-1"}),
            ),
            (
                ApplyError::InstanceExists {
                    instance_id: "i-1".into(),
                },
                "INSTANCE_EXISTS",
                json!({"reason":"instance_exists","instance_id":"i-1"}),
            ),
            (
                ApplyError::StateMismatch {
                    expected: "paid".into(),
                    actual: "created".into(),
                },
                "CONFLICT",
                json!({"reason":"state_mismatch","expected":"paid","actual":"created"}),
            ),
            (
                ApplyError::WalOffsetMismatch {
                    expected: 5,
                    actual: 7,
                },
                "CONFLICT",
                json!({"reason":"wal_offset_mismatch","expected":5,"actual":7}),
            ),
            (
                ApplyError::IdempotencyKeyReused {
                    idempotency_key: "k".into(),
                    original_wal_offset: 9,
                },
                "CONFLICT",
                json!({"reason":"idempotency_key_reused","idempotency_key":"k","original_wal_offset":9}),
            ),
            (
                ApplyError::FlushAllDisabled,
                "BAD_REQUEST",
                json!({"reason":"flush_all_disabled"}),
            ),
        ];
        for (error, code, details) in cases {
            let wire = wire(&error);
            assert_eq!(wire["code"], json!(code), "{error}");
            assert_eq!(wire["details"], details, "{error}");
            assert_eq!(wire["retryable"], json!(false), "{error}");
        }
    }

    #[test]
    fn a_refused_definition_carries_its_own_section_7_10_details() {
        let refused = crate::dsl::definition::MachineDefinition::from_json(&json!({
            "states": ["a"], "initial": "a",
            "transitions": [{"from": "a", "event": "GO", "to": "a", "guard": "ctx.x > 1 foo"}]
        }))
        .expect_err("trailing text in the guard");
        let wire = wire(&ApplyError::InvalidDefinition(refused));
        assert_eq!(wire["code"], json!("BAD_REQUEST"));
        assert_eq!(
            wire["details"],
            json!({"reason":"invalid_guard","kind":"trailing_input","pointer":"/transitions/0/guard",
                   "guard":"ctx.x > 1 foo","span":{"offset":10,"length":3},"line":1,"column":11,
                   "text":"foo"})
        );
    }
}
