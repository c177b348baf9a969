//! The canonical serialisation of §6.7 and the normalised form of §7.2.
//!
//! Typed structs fix the key order (`states`, `initial`, `transitions`, `meta`; `from`, `event`,
//! `to`, `guard`) and serde_json's compact writer produces exactly the string escapes and number
//! forms §6.7 lists. `meta` is sorted explicitly at every depth, so the bytes stay the same even
//! if another crate in the build turns on serde_json's `preserve_order` feature.

use super::MachineDefinition;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

#[derive(serde::Serialize)]
struct CanonicalDefinition<'a> {
    states: &'a [String],
    initial: &'a str,
    transitions: Vec<CanonicalTransition<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<SortedKeys<'a>>,
}

#[derive(serde::Serialize)]
struct CanonicalTransition<'a> {
    from: &'a [String],
    event: &'a str,
    to: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    guard: Option<&'a str>,
}

/// Serialises a JSON value with the keys of every object in byte order.
struct SortedKeys<'a>(&'a Value);

impl Serialize for SortedKeys<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&SortedKeys(item))?;
                }
                seq.end()
            }
            Value::Object(members) => {
                let mut entries: Vec<(&String, &Value)> = members.iter().collect();
                // `str` order is byte order (§1.4).
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, &SortedKeys(value))?;
                }
                map.end()
            }
            scalar => scalar.serialize(serializer),
        }
    }
}

fn canonical(definition: &MachineDefinition) -> CanonicalDefinition<'_> {
    CanonicalDefinition {
        states: &definition.states,
        initial: &definition.initial,
        transitions: definition
            .transitions
            .iter()
            .map(|transition| CanonicalTransition {
                from: &transition.from,
                event: &transition.event,
                to: &transition.to,
                guard: transition.guard.as_ref().map(|guard| guard.text()),
            })
            .collect(),
        meta: definition.meta.as_ref().map(SortedKeys),
    }
}

pub(super) fn canonical_json(definition: &MachineDefinition) -> String {
    // Serialising strings, numbers and derived structs into a String cannot fail: the only
    // error sources are non-string map keys and I/O, and there are neither here.
    serde_json::to_string(&canonical(definition)).unwrap_or_default()
}

pub(super) fn normalized(definition: &MachineDefinition) -> Value {
    serde_json::to_value(canonical(definition)).unwrap_or(Value::Null)
}
