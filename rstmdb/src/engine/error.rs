//! Why a command was refused, with exactly the data of the spec's `error.details` (§5.3).
//!
//! [`ApplyError`] serialises as its `details` object (serde derive: `reason` from the variant,
//! then the variant's fields); which RCP error code each variant is, is decided in one place,
//! by an exhaustive match (`database::errors::from_apply`).

use crate::dsl::definition::DefinitionError;
use serde::Serialize;

/// A command refused by the engine. Every variant is a client-visible, non-retryable error:
/// retrying the same request gives the same answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum ApplyError {
    #[error(
        "machine '{machine}' version {version} already exists with checksum {existing_checksum} \
         (new checksum {new_checksum})"
    )]
    #[serde(rename = "version_exists")]
    MachineVersionExists {
        machine: String,
        version: u32,
        existing_checksum: String,
        new_checksum: String,
    },
    #[error("machine '{machine}' already has the maximum of {limit} versions")]
    #[serde(rename = "version_limit")]
    MachineVersionLimitExceeded { machine: String, limit: u32 },
    #[error("machine not found: {machine} version {version}")]
    MachineNotFound { machine: String, version: u32 },
    #[error("instance not found: {instance_id}")]
    InstanceNotFound { instance_id: String },
    #[error("instance already exists: {instance_id}")]
    InstanceExists { instance_id: String },
    #[error("cannot apply '{event}' in state '{state}'")]
    NoTransition { state: String, event: String },
    #[error("no guard passed for event '{event}' in state '{state}' (tried: {})", guards.join(", "))]
    GuardFailed {
        state: String,
        event: String,
        /// Guard texts in the order tried (§4.14 step 8).
        guards: Vec<String>,
    },
    #[error("expected state '{expected}' but the instance is in '{actual}'")]
    StateMismatch { expected: String, actual: String },
    #[error("expected last_wal_offset {expected} but it is {actual}")]
    WalOffsetMismatch { expected: u64, actual: u64 },
    #[error(
        "idempotency key '{idempotency_key}' was already used by a different request \
         (recorded at WAL offset {original_wal_offset})"
    )]
    IdempotencyKeyReused {
        idempotency_key: String,
        original_wal_offset: u64,
    },
    #[error("FLUSH_ALL is disabled (storage.allow_flush_all is false)")]
    FlushAllDisabled,
    /// §4.7 step 2: reason `invalid_definition` or `invalid_guard`, which the definition error
    /// names itself (it serialises as its own §7.10 details).
    #[error("{0}")]
    #[serde(untagged)]
    InvalidDefinition(#[from] DefinitionError),
}

/// Why [`crate::engine::Engine::execute`] did not execute a command.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E> {
    /// The engine refused the command; nothing changed.
    #[error(transparent)]
    Rejected(#[from] ApplyError),
    /// The caller's `assign` refused the record (e.g. `record_too_large`); nothing changed.
    #[error("the record was refused: {0}")]
    Assign(E),
    /// The engine could not apply a record it had just built. A bug: the state is unchanged,
    /// but the caller has reserved a WAL position for the record and must not commit it.
    #[error("internal error applying a record the engine built: {0}")]
    Internal(#[source] Box<ReplayError>),
}

/// A record that cannot be applied to the current state: a corrupt or inconsistent log or
/// checkpoint. The state is unchanged when this is returned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplayError {
    #[error("put_machine {machine} version {version}: {error}")]
    InvalidDefinition {
        machine: String,
        version: u32,
        error: DefinitionError,
    },
    #[error(
        "put_machine {machine} version {version}: checksum {recorded} in the record, {computed} computed"
    )]
    ChecksumMismatch {
        machine: String,
        version: u32,
        recorded: String,
        computed: String,
    },
    #[error("put_machine {machine} version {version}: that version already exists")]
    MachineExists { machine: String, version: u32 },
    #[error("machine {machine} version {version} is unknown")]
    UnknownMachine { machine: String, version: u32 },
    #[error("state '{state}' is not a state of machine {machine} version {version}")]
    UnknownState {
        machine: String,
        version: u32,
        state: String,
    },
    #[error("instance {instance_id} is unknown or deleted")]
    UnknownInstance { instance_id: String },
    #[error("create_instance {instance_id}: the instance is live")]
    InstanceLive { instance_id: String },
    #[error("a record cannot sit at WAL offset 0")]
    ZeroOffset,
    #[error("apply_event {instance_id}: the record says {record}, the state says {current}")]
    RecordMismatch {
        instance_id: String,
        record: String,
        current: String,
    },
}
