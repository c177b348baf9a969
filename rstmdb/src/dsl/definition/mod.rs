//! Machine definitions: the JSON shape (§7.1), normalised form (§7.2), validation (§7.3),
//! error details (§7.10) and the checksum (§6.7).
//!
//! TEMPORARY STUB: this file fixes the public API that the engine codes against. The
//! definition work replaces the bodies without changing these signatures.

use crate::dsl::guard::{Guard, GuardError};
use serde_json::Value;

/// Index of a distinct state name within one definition (duplicates in `states` share one id).
pub type StateId = u32;

/// One transition of a validated definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// Source states, as received (a plain string became a one-element list).
    pub from: Vec<String>,
    pub event: String,
    pub to: String,
    /// `to` resolved to its state id.
    pub to_id: StateId,
    pub guard: Option<Guard>,
}

/// A validated, normalised machine definition.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineDefinition {
    /// As received: same order, duplicates kept.
    pub states: Vec<String>,
    pub initial: String,
    pub transitions: Vec<Transition>,
    /// Absent when missing or null.
    pub meta: Option<Value>,
}

/// The `kind` values of an `invalid_definition` error (§7.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DefinitionErrorKind {
    NotObject,
    MissingField,
    WrongType,
    UnknownInitial,
    UnknownTarget,
    UnknownSource,
    UnreachableTransition,
}

impl DefinitionErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotObject => "not_object",
            Self::MissingField => "missing_field",
            Self::WrongType => "wrong_type",
            Self::UnknownInitial => "unknown_initial",
            Self::UnknownTarget => "unknown_target",
            Self::UnknownSource => "unknown_source",
            Self::UnreachableTransition => "unreachable_transition",
        }
    }
}

/// Why a definition was refused; the first error found wins (§7.3).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DefinitionError {
    /// `details.reason = "invalid_definition"`.
    #[error("invalid definition at {pointer:?}: {}", kind.as_str())]
    Invalid {
        kind: DefinitionErrorKind,
        /// JSON Pointer relative to the definition; `""` is the definition itself.
        pointer: String,
        /// The offending or missing name, for the kinds that have one (§7.10 table).
        text: Option<String>,
        /// For `missing_field`: the missing key.
        field: Option<String>,
        /// For `unreachable_transition`: the earlier unguarded transition.
        shadowed_by: Option<usize>,
    },
    /// `details.reason = "invalid_guard"`.
    #[error("invalid guard at {pointer}: {error}")]
    Guard {
        pointer: String,
        guard: String,
        error: GuardError,
    },
}

impl MachineDefinition {
    /// Validates a definition as received in PUT_MACHINE (§7.3).
    pub fn from_json(_definition: &Value) -> Result<MachineDefinition, DefinitionError> {
        Err(DefinitionError::Invalid {
            kind: DefinitionErrorKind::NotObject,
            pointer: String::new(),
            text: None,
            field: None,
            shadowed_by: None,
        })
    }

    /// The canonical serialisation of §6.7 (the bytes the checksum covers).
    pub fn canonical_json(&self) -> String {
        String::new()
    }

    /// CRC32C of [`Self::canonical_json`].
    pub fn checksum(&self) -> u32 {
        crc32c::crc32c(self.canonical_json().as_bytes())
    }

    /// The checksum as 8 lowercase hex digits.
    pub fn checksum_hex(&self) -> String {
        format!("{:08x}", self.checksum())
    }

    /// The normalised definition returned by GET_MACHINE (§7.2).
    pub fn normalized(&self) -> Value {
        Value::Null
    }

    /// The id of a state name, if it is one of `states`.
    pub fn state_id(&self, _name: &str) -> Option<StateId> {
        None
    }

    /// The name of a state id. Panics on an id this definition did not hand out.
    pub fn state_name(&self, id: StateId) -> &str {
        &self.states[id as usize]
    }

    /// The id of `initial`.
    pub fn initial_id(&self) -> StateId {
        0
    }

    /// Indices (into `transitions`) of the candidates for (state, event), in definition order
    /// (§7.9). Allocation-free.
    pub fn candidates(&self, _state: StateId, _event: &str) -> &[u32] {
        &[]
    }
}
