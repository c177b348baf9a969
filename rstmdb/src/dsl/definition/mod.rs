//! Machine definitions: the JSON shape (§7.1), normalised form (§7.2), validation (§7.3),
//! error details (§7.10) and the checksum (§6.7).
//!
//! Start at [`MachineDefinition::from_json`]. It runs two passes over the received JSON:
//! - [`shape`] reads the whole definition into borrowed, typed parts (`not_object`,
//!   `missing_field`, `wrong_type`);
//! - [`validate`] resolves names and guards in the §7.3 order and builds the indices
//!   ([`index`]: state ids, candidate transitions per (state, event)).
//!
//! [`canonical`] writes the checksum bytes and the GET_MACHINE form; [`error`] holds the typed
//! error with its wire `details`.
//!
//! Cost and limits: validation is linear in the size of the definition (one hash lookup per
//! name; the shadowing check reads one precomputed entry per (source, event)), and memory is a
//! small constant times the received JSON. Guard nesting is capped by the guard parser (64).
//! `meta` is copied and serialised recursively, so its depth is bounded by serde_json's parse
//! recursion limit (128) for any definition that arrived as JSON text. Nothing else is capped:
//! the frame and record limits of the server bound the total size.

mod canonical;
pub mod error;
mod index;
mod shape;
mod validate;

pub use error::{DefinitionDetails, DefinitionError, DefinitionErrorKind, InvalidDefinition};

use crate::dsl::guard::Guard;
use index::{CandidateIndex, StateIndex};
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

/// A validated, normalised machine definition. Built only by [`MachineDefinition::from_json`],
/// which also builds the lookup indices; the public fields are for reading.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineDefinition {
    /// As received: same order, duplicates kept.
    pub states: Vec<String>,
    pub initial: String,
    pub transitions: Vec<Transition>,
    /// Absent when missing or null.
    pub meta: Option<Value>,
    index: DefinitionIndex,
}

/// Lookups precomputed at validation time, so the engine's event path neither allocates nor
/// scans the transition list.
#[derive(Debug, Clone, PartialEq)]
struct DefinitionIndex {
    states: StateIndex,
    initial_id: StateId,
    candidates: CandidateIndex,
}

impl MachineDefinition {
    /// Validates a definition as received in PUT_MACHINE (§7.3). Unknown keys are ignored.
    pub fn from_json(definition: &Value) -> Result<MachineDefinition, DefinitionError> {
        let shape = shape::read_shape(definition)?;
        validate::validate(shape)
    }

    /// The canonical serialisation of §6.7 (the bytes the checksum covers).
    pub fn canonical_json(&self) -> String {
        canonical::canonical_json(self)
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
    ///
    /// A `serde_json::Value` object does not keep key order unless serde_json's
    /// `preserve_order` feature is on; send [`Self::canonical_json`] where the order matters.
    pub fn normalized(&self) -> Value {
        canonical::normalized(self)
    }

    /// The id of a state name, if it is one of `states`.
    pub fn state_id(&self, name: &str) -> Option<StateId> {
        self.index.states.id(name)
    }

    /// The name of a state id. Panics on an id this definition did not hand out.
    pub fn state_name(&self, id: StateId) -> &str {
        match self.index.states.name(id) {
            Some(name) => name,
            None => panic!("state id {id} was not handed out by this definition"),
        }
    }

    /// The number of distinct state names (ids are `0..state_count`).
    pub fn state_count(&self) -> usize {
        self.index.states.len()
    }

    /// The id of `initial`.
    pub fn initial_id(&self) -> StateId {
        self.index.initial_id
    }

    /// Indices (into `transitions`) of the candidates for (state, event), in definition order
    /// (§7.9). Allocation-free.
    pub fn candidates(&self, state: StateId, event: &str) -> &[u32] {
        self.index.candidates.candidates(state, event)
    }
}
