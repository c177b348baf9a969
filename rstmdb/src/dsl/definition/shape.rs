//! The shape pass (§7.3 step 1): a typed, borrowed view of the JSON, checked for the whole
//! definition before any name is looked up. Each error carries the pointer of §7.10.

use super::error::DefinitionError;
use serde_json::{Map, Value};

/// State and transition indices are stored as `u32` (`StateId`, candidate lists). A JSON array
/// longer than this would need well over 100 GiB of `serde_json::Value`s, so no definition that
/// fits in memory reaches it; the check only keeps the narrowing conversion honest.
pub(super) const MAX_ITEMS: usize = u32::MAX as usize;

/// The definition's keys with their types checked; names not yet resolved.
#[derive(Debug)]
pub(super) struct DefinitionShape<'a> {
    pub states: Vec<&'a str>,
    pub initial: &'a str,
    pub transitions: Vec<TransitionShape<'a>>,
    /// `None` when absent or null (§7.1).
    pub meta: Option<&'a Value>,
}

#[derive(Debug)]
pub(super) struct TransitionShape<'a> {
    pub from: Sources<'a>,
    pub event: &'a str,
    pub to: &'a str,
    /// `None` when absent or null (§7.1).
    pub guard: Option<&'a str>,
}

/// `from` as written: the form decides the pointer of an `unknown_source` error (§7.10).
#[derive(Debug)]
pub(super) enum Sources<'a> {
    One(&'a str),
    List(Vec<&'a str>),
}

impl<'a> Sources<'a> {
    /// Where an `unknown_source` error for entry `entry` of transition `transition` points:
    /// `from` itself when it is a plain string, the entry when it is a list (§7.10).
    pub fn pointer(&self, transition: usize, entry: usize) -> String {
        match self {
            Self::One(_) => format!("/transitions/{transition}/from"),
            Self::List(_) => format!("/transitions/{transition}/from/{entry}"),
        }
    }

    pub fn names(&self) -> &[&'a str] {
        match self {
            Self::One(name) => std::slice::from_ref(name),
            Self::List(names) => names,
        }
    }
}

/// Reads the whole definition's shape, in the order of §7.3 step 1.
pub(super) fn read_shape(definition: &Value) -> Result<DefinitionShape<'_>, DefinitionError> {
    let object = definition
        .as_object()
        .ok_or_else(DefinitionError::not_object)?;

    let states_value = required(object, "", "states")?;
    let states = string_list(states_value, "/states")?.ok_or_else(|| wrong_type("/states"))?;

    let initial = required(object, "", "initial")?
        .as_str()
        .ok_or_else(|| wrong_type("/initial"))?;

    let transitions_value = required(object, "", "transitions")?;
    let transition_values = transitions_value
        .as_array()
        .filter(|list| list.len() <= MAX_ITEMS)
        .ok_or_else(|| wrong_type("/transitions"))?;
    let transitions = transition_values
        .iter()
        .enumerate()
        .map(|(i, value)| read_transition(i, value))
        .collect::<Result<Vec<_>, _>>()?;

    let meta = object.get("meta").filter(|meta| !meta.is_null());
    Ok(DefinitionShape {
        states,
        initial,
        transitions,
        meta,
    })
}

fn read_transition(index: usize, value: &Value) -> Result<TransitionShape<'_>, DefinitionError> {
    let at = format!("/transitions/{index}");
    let object = value.as_object().ok_or_else(|| wrong_type(&at))?;

    let from_pointer = format!("{at}/from");
    let from = match required(object, &at, "from")? {
        Value::String(name) => Sources::One(name),
        list => Sources::List(
            string_list(list, &from_pointer)?.ok_or_else(|| wrong_type(&from_pointer))?,
        ),
    };
    let event = required_string(object, &at, "event")?;
    let to = required_string(object, &at, "to")?;
    let guard = match object.get("guard") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.as_str()),
        Some(_) => return Err(wrong_type(&format!("{at}/guard"))),
    };
    Ok(TransitionShape {
        from,
        event,
        to,
        guard,
    })
}

fn required<'a>(
    object: &'a Map<String, Value>,
    object_pointer: &str,
    key: &str,
) -> Result<&'a Value, DefinitionError> {
    object
        .get(key)
        .ok_or_else(|| DefinitionError::missing_field(object_pointer.to_owned(), key))
}

fn required_string<'a>(
    object: &'a Map<String, Value>,
    object_pointer: &str,
    key: &str,
) -> Result<&'a str, DefinitionError> {
    required(object, object_pointer, key)?
        .as_str()
        .ok_or_else(|| wrong_type(&format!("{object_pointer}/{key}")))
}

/// `Ok(None)` when `value` is not an array (the caller names the slot); an entry that is not a
/// string is reported at its own pointer, the first one in order winning.
fn string_list<'a>(
    value: &'a Value,
    pointer: &str,
) -> Result<Option<Vec<&'a str>>, DefinitionError> {
    let Some(entries) = value.as_array().filter(|list| list.len() <= MAX_ITEMS) else {
        return Ok(None);
    };
    entries
        .iter()
        .enumerate()
        .map(|(k, entry)| {
            entry
                .as_str()
                .ok_or_else(|| wrong_type(&format!("{pointer}/{k}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn wrong_type(pointer: &str) -> DefinitionError {
    DefinitionError::wrong_type(pointer.to_owned())
}
