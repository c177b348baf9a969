//! Why a command was refused, with exactly the data of the spec's `error.details` (§5.3).
//!
//! [`ApplyError`] is the one place that maps an engine refusal to its RCP code, reason and
//! details; the server only wraps it in an envelope.

use crate::dsl::definition::DefinitionError;
use crate::dsl::guard::GuardError;
use serde_json::{Map, Value, json};

/// A command refused by the engine. Every variant is a client-visible, non-retryable error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    /// §4.7 step 2: `BAD_REQUEST`, reason `invalid_definition` or `invalid_guard`.
    #[error("{0}")]
    InvalidDefinition(#[from] DefinitionError),
    #[error(
        "machine '{machine}' version {version} already exists with checksum {existing_checksum} \
         (new checksum {new_checksum})"
    )]
    MachineVersionExists {
        machine: String,
        version: u32,
        existing_checksum: String,
        new_checksum: String,
    },
    #[error("machine '{machine}' already has the maximum of {limit} versions")]
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
}

impl ApplyError {
    /// The RCP error code (§5.1).
    pub fn code(&self) -> &'static str {
        match self {
            ApplyError::InvalidDefinition(_) | ApplyError::FlushAllDisabled => "BAD_REQUEST",
            ApplyError::MachineVersionExists { .. } => "MACHINE_VERSION_EXISTS",
            ApplyError::MachineVersionLimitExceeded { .. } => "MACHINE_VERSION_LIMIT_EXCEEDED",
            ApplyError::MachineNotFound { .. } => "MACHINE_NOT_FOUND",
            ApplyError::InstanceNotFound { .. } => "INSTANCE_NOT_FOUND",
            ApplyError::InstanceExists { .. } => "INSTANCE_EXISTS",
            ApplyError::NoTransition { .. } => "INVALID_TRANSITION",
            ApplyError::GuardFailed { .. } => "GUARD_FAILED",
            ApplyError::StateMismatch { .. }
            | ApplyError::WalOffsetMismatch { .. }
            | ApplyError::IdempotencyKeyReused { .. } => "CONFLICT",
        }
    }

    /// `details.reason` (§5.3).
    pub fn reason(&self) -> &'static str {
        match self {
            ApplyError::InvalidDefinition(DefinitionError::Invalid { .. }) => "invalid_definition",
            ApplyError::InvalidDefinition(DefinitionError::Guard { .. }) => "invalid_guard",
            ApplyError::MachineVersionExists { .. } => "version_exists",
            ApplyError::MachineVersionLimitExceeded { .. } => "version_limit",
            ApplyError::MachineNotFound { .. } => "machine_not_found",
            ApplyError::InstanceNotFound { .. } => "instance_not_found",
            ApplyError::InstanceExists { .. } => "instance_exists",
            ApplyError::NoTransition { .. } => "no_transition",
            ApplyError::GuardFailed { .. } => "guard_failed",
            ApplyError::StateMismatch { .. } => "state_mismatch",
            ApplyError::WalOffsetMismatch { .. } => "wal_offset_mismatch",
            ApplyError::IdempotencyKeyReused { .. } => "idempotency_key_reused",
            ApplyError::FlushAllDisabled => "flush_all_disabled",
        }
    }

    /// Every engine error is final: retrying the same request gives the same answer.
    pub fn retryable(&self) -> bool {
        false
    }

    /// The `error.details` object: `reason` plus the keys of §5.3's table.
    pub fn details(&self) -> Map<String, Value> {
        let mut details = Map::new();
        details.insert("reason".into(), self.reason().into());
        let mut put = |key: &str, value: Value| {
            details.insert(key.to_owned(), value);
        };
        match self {
            ApplyError::InvalidDefinition(error) => definition_details(error, &mut put),
            ApplyError::MachineVersionExists {
                machine,
                version,
                existing_checksum,
                new_checksum,
            } => {
                put("machine", json!(machine));
                put("version", json!(version));
                put("existing_checksum", json!(existing_checksum));
                put("new_checksum", json!(new_checksum));
            }
            ApplyError::MachineVersionLimitExceeded { machine, limit } => {
                put("machine", json!(machine));
                put("limit", json!(limit));
            }
            ApplyError::MachineNotFound { machine, version } => {
                put("machine", json!(machine));
                put("version", json!(version));
            }
            ApplyError::InstanceNotFound { instance_id }
            | ApplyError::InstanceExists { instance_id } => {
                put("instance_id", json!(instance_id));
            }
            ApplyError::NoTransition { state, event } => {
                put("state", json!(state));
                put("event", json!(event));
            }
            ApplyError::GuardFailed {
                state,
                event,
                guards,
            } => {
                put("state", json!(state));
                put("event", json!(event));
                put("guards", json!(guards));
            }
            ApplyError::StateMismatch { expected, actual } => {
                put("expected", json!(expected));
                put("actual", json!(actual));
            }
            ApplyError::WalOffsetMismatch { expected, actual } => {
                put("expected", json!(expected));
                put("actual", json!(actual));
            }
            ApplyError::IdempotencyKeyReused {
                idempotency_key,
                original_wal_offset,
            } => {
                put("idempotency_key", json!(idempotency_key));
                put("original_wal_offset", json!(original_wal_offset));
            }
            ApplyError::FlushAllDisabled => {}
        }
        details
    }
}

/// The details of §7.10 for an invalid definition or guard.
fn definition_details(error: &DefinitionError, put: &mut impl FnMut(&str, Value)) {
    match error {
        DefinitionError::Invalid {
            kind,
            pointer,
            text,
            field,
            shadowed_by,
        } => {
            put("kind", json!(kind.as_str()));
            put("pointer", json!(pointer));
            if let Some(text) = text {
                put("text", json!(text));
            }
            if let Some(field) = field {
                put("field", json!(field));
            }
            if let Some(index) = shadowed_by {
                put("shadowed_by", json!(index));
            }
        }
        DefinitionError::Guard {
            pointer,
            guard,
            error,
        } => {
            let (line, column) = line_column(guard, error);
            put("kind", json!(error.kind.as_str()));
            put("pointer", json!(pointer));
            put("guard", json!(guard));
            put(
                "span",
                json!({"offset": error.span.offset, "length": error.span.length}),
            );
            put("line", json!(line));
            put("column", json!(column));
            put("text", json!(span_text(guard, error)));
        }
    }
}

/// The guard text under the span; `""` if the span does not fit the text (never panics).
fn span_text<'a>(guard: &'a str, error: &GuardError) -> &'a str {
    let end = error.span.offset.saturating_add(error.span.length);
    guard.get(error.span.offset..end).unwrap_or("")
}

/// 1-based line and column (in Unicode scalar values) of the span start (§7.10).
fn line_column(guard: &str, error: &GuardError) -> (usize, usize) {
    let before = guard.get(..error.span.offset).unwrap_or(guard);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
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
