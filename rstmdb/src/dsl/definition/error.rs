//! Why a definition was refused (§7.3, §7.10), with the wire `details` and a one-line message.

use crate::dsl::guard::{GuardError, Span};
use serde::{Serialize, Serializer};
use serde_json::Value;

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
///
/// `Display` is the human message of the RCP error (e.g. `invalid guard at /transitions/1/guard,
/// line 1 column 8: unexpected trailing text 'foo'`); it serialises as its `error.details`
/// object ([`DefinitionDetails`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DefinitionError {
    /// `details.reason = "invalid_definition"`.
    #[error("{}", with_pointer("invalid definition", &.0.pointer, &self.problem()))]
    Invalid(InvalidDefinition),
    /// `details.reason = "invalid_guard"`.
    #[error("invalid guard at {pointer}, line {} column {}: {}",
        error.line_column(guard).0, error.line_column(guard).1, self.problem())]
    Guard {
        pointer: String,
        guard: String,
        error: GuardError,
    },
}

/// A definition that breaks a rule of §7.3 other than a guard's syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDefinition {
    pub kind: DefinitionErrorKind,
    /// JSON Pointer relative to the definition; `""` is the definition itself.
    pub pointer: String,
    /// The offending or missing name, for the kinds that have one (§7.10 table).
    pub text: Option<String>,
    /// For `missing_field`: the missing key.
    pub field: Option<String>,
    /// For `unreachable_transition`: the earlier unguarded transition.
    pub shadowed_by: Option<usize>,
}

impl DefinitionError {
    /// `details.reason`: `"invalid_definition"` or `"invalid_guard"`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_definition",
            Self::Guard { .. } => "invalid_guard",
        }
    }

    /// `details.kind`, e.g. `"unknown_target"` or `"trailing_input"`.
    pub fn kind_str(&self) -> &'static str {
        match self {
            Self::Invalid(invalid) => invalid.kind.as_str(),
            Self::Guard { error, .. } => error.kind.as_str(),
        }
    }

    /// JSON Pointer to the offending value, relative to the definition.
    pub fn pointer(&self) -> &str {
        match self {
            Self::Invalid(InvalidDefinition { pointer, .. }) | Self::Guard { pointer, .. } => {
                pointer
            }
        }
    }

    /// The `error.details` object of §5.3 / §7.10; keys shown as — in the §7.10 table are absent.
    pub fn details(&self) -> DefinitionDetails<'_> {
        match self {
            Self::Invalid(invalid) => DefinitionDetails::InvalidDefinition {
                kind: invalid.kind.as_str(),
                pointer: &invalid.pointer,
                text: invalid.text.as_deref(),
                field: invalid.field.as_deref(),
                shadowed_by: invalid.shadowed_by,
            },
            Self::Guard {
                pointer,
                guard,
                error,
            } => {
                let (line, column) = error.line_column(guard);
                DefinitionDetails::InvalidGuard {
                    kind: error.kind.as_str(),
                    pointer,
                    guard,
                    span: error.span,
                    line,
                    column,
                    text: error.text(guard),
                }
            }
        }
    }

    /// [`DefinitionError::details`] as a JSON value, for callers that compare or print it.
    pub fn details_json(&self) -> Value {
        // Strings and integers always serialise; `Null` is unreachable.
        serde_json::to_value(self.details()).unwrap_or(Value::Null)
    }
}

/// The `error.details` of a refused definition (§7.10), with `reason` naming the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DefinitionDetails<'a> {
    InvalidDefinition {
        kind: &'static str,
        pointer: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        field: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        shadowed_by: Option<usize>,
    },
    InvalidGuard {
        kind: &'static str,
        pointer: &'a str,
        guard: &'a str,
        span: Span,
        /// 1-based, of the span start.
        line: usize,
        /// 1-based, in Unicode scalar values.
        column: usize,
        /// The guard text under the span.
        text: &'a str,
    },
}

impl Serialize for DefinitionError {
    /// As its `error.details` object.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.details().serialize(serializer)
    }
}

fn with_pointer(what: &str, pointer: &str, problem: &str) -> String {
    if pointer.is_empty() {
        format!("{what}: {problem}")
    } else {
        format!("{what} at {pointer}: {problem}")
    }
}

impl DefinitionError {
    /// What is wrong, without the pointer: e.g. `target state 'shiped' is not one of states`
    /// or `unexpected trailing text 'foo'`.
    pub fn problem(&self) -> String {
        match self {
            Self::Guard { guard, error, .. } => error.message(guard),
            Self::Invalid(invalid) => invalid.problem(),
        }
    }
}

impl InvalidDefinition {
    /// What is wrong, without the pointer: e.g. `target state 'shiped' is not one of states`.
    pub fn problem(&self) -> String {
        let name = self.text.as_deref().unwrap_or_default();
        let (field, pointer, shadowed_by) = (&self.field, &self.pointer, self.shadowed_by);
        match self.kind {
            DefinitionErrorKind::NotObject => "the definition must be a JSON object".to_owned(),
            DefinitionErrorKind::MissingField => {
                format!("missing field '{}'", field.as_deref().unwrap_or(name))
            }
            DefinitionErrorKind::WrongType => {
                format!("wrong type, expected {}", expected_type(pointer))
            }
            DefinitionErrorKind::UnknownInitial => {
                format!("initial state '{name}' is not one of states")
            }
            DefinitionErrorKind::UnknownTarget => {
                format!("target state '{name}' is not one of states")
            }
            DefinitionErrorKind::UnknownSource => {
                format!("source state '{name}' is not one of states")
            }
            DefinitionErrorKind::UnreachableTransition => match shadowed_by {
                Some(j) => format!(
                    "unreachable transition: transition {j} has the same event and source and no guard"
                ),
                None => "unreachable transition".to_owned(),
            },
        }
    }
}

/// What a `wrong_type` pointer should have held. The shape pass only reports these pointers
/// (§7.10 table), so the last one or two tokens identify the slot.
pub fn expected_type(pointer: &str) -> &'static str {
    let tokens: Vec<&str> = pointer.split('/').skip(1).collect();
    let is_index = |token: &str| !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    match tokens.as_slice() {
        ["states"] => "an array of state names",
        ["states", _] | ["initial"] => "a string",
        ["transitions"] => "an array of transitions",
        ["transitions", i] if is_index(i) => "a transition object",
        ["transitions", _, "from"] => "a string or an array of strings",
        ["transitions", _, "from", _] | ["transitions", _, "event" | "to"] => "a string",
        ["transitions", _, "guard"] => "a string or null",
        _ => "another type",
    }
}

/// Constructors used by the validation passes, so every error carries exactly the keys of its
/// row in the §7.10 table.
impl DefinitionError {
    pub(super) fn not_object() -> Self {
        Self::invalid(DefinitionErrorKind::NotObject, String::new(), None)
    }

    pub(super) fn missing_field(object_pointer: String, field: &str) -> Self {
        Self::Invalid(InvalidDefinition {
            kind: DefinitionErrorKind::MissingField,
            pointer: object_pointer,
            text: Some(field.to_owned()),
            field: Some(field.to_owned()),
            shadowed_by: None,
        })
    }

    pub(super) fn wrong_type(pointer: String) -> Self {
        Self::invalid(DefinitionErrorKind::WrongType, pointer, None)
    }

    pub(super) fn unknown_state(kind: DefinitionErrorKind, pointer: String, name: &str) -> Self {
        Self::invalid(kind, pointer, Some(name.to_owned()))
    }

    pub(super) fn unreachable(transition: usize, shadowed_by: usize) -> Self {
        Self::Invalid(InvalidDefinition {
            kind: DefinitionErrorKind::UnreachableTransition,
            pointer: format!("/transitions/{transition}"),
            text: None,
            field: None,
            shadowed_by: Some(shadowed_by),
        })
    }

    fn invalid(kind: DefinitionErrorKind, pointer: String, text: Option<String>) -> Self {
        Self::Invalid(InvalidDefinition {
            kind,
            pointer,
            text,
            field: None,
            shadowed_by: None,
        })
    }
}
