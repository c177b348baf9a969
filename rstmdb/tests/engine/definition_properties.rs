//! Property tests: the loader never panics, and a valid definition's normalised form is a
//! fixed point with the same checksum.

use proptest::prelude::*;
use rstmdb::dsl::definition::MachineDefinition;
use serde_json::{Map, Value, json};

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)),
        "[a-z*ü\"\\\\ .]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("states".to_owned()),
                    Just("initial".to_owned()),
                    Just("transitions".to_owned()),
                    Just("from".to_owned()),
                    Just("event".to_owned()),
                    Just("to".to_owned()),
                    Just("guard".to_owned()),
                    Just("meta".to_owned()),
                    "[a-z]{1,3}",
                ],
                inner,
                0..6
            )
            .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn state_name() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("b"), Just("c"), Just("*"), Just("")].prop_map(str::to_owned)
}

/// Definitions that are mostly well-shaped, so the name, guard and shadowing checks run.
fn near_valid_definition() -> impl Strategy<Value = Value> {
    let guard = prop_oneof![
        Just(Value::Null),
        Just(json!("ctx.ok")),
        Just(json!("payload.n >= 3 && !ctx.flag")),
        Just(json!("")),
        Just(json!("ctx.ok foo")),
        Just(json!(7)),
    ];
    let from = prop_oneof![
        state_name().prop_map(Value::String),
        prop::collection::vec(state_name(), 0..3).prop_map(|names| json!(names)),
    ];
    let transition = (from, prop_oneof![Just("E"), Just("F")], state_name(), guard).prop_map(
        |(from, event, to, guard)| json!({"from": from, "event": event, "to": to, "guard": guard}),
    );
    (
        prop::collection::vec(state_name(), 0..4),
        state_name(),
        prop::collection::vec(transition, 0..6),
        arbitrary_json(),
    )
        .prop_map(|(states, initial, transitions, meta)| {
            json!({"states": states, "initial": initial, "transitions": transitions, "meta": meta})
        })
}

fn check_fixed_point(definition: &Value) -> Result<(), TestCaseError> {
    if let Ok(machine) = MachineDefinition::from_json(definition) {
        let again = MachineDefinition::from_json(&machine.normalized());
        prop_assert!(again.is_ok(), "normalised form refused: {:?}", again);
        if let Ok(again) = again {
            prop_assert_eq!(again.canonical_json(), machine.canonical_json());
        }
        // Only parseability is compared here: serde_json's default float parser is not
        // correctly rounded, so a reparsed float in `meta` may differ in its last bit.
        let reparsed: Value = serde_json::from_str(&machine.canonical_json())
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        prop_assert_eq!(&reparsed["states"], &machine.normalized()["states"]);
        for state in 0..machine.state_count() {
            let state = u32::try_from(state).unwrap_or(u32::MAX);
            for &candidate in machine.candidates(state, "E") {
                let transition = &machine.transitions[candidate as usize];
                prop_assert_eq!(&transition.event, "E");
                prop_assert!(
                    transition
                        .from
                        .iter()
                        .any(|name| name == machine.state_name(state))
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(rstmdb_testkit::proptest_config(512))]

    #[test]
    fn from_json_never_panics_on_arbitrary_json(definition in arbitrary_json()) {
        check_fixed_point(&definition)?;
    }

    #[test]
    fn valid_definitions_normalise_to_a_fixed_point(definition in near_valid_definition()) {
        check_fixed_point(&definition)?;
    }

    #[test]
    fn errors_always_carry_a_pointer_that_resolves_in_the_definition(definition in near_valid_definition()) {
        if let Err(error) = MachineDefinition::from_json(&definition) {
            let details = error.details_json();
            let pointer = error.pointer();
            prop_assert!(definition.pointer(pointer).is_some(), "{} does not resolve", pointer);
            prop_assert_eq!(details["pointer"].as_str(), Some(pointer));
        }
    }
}
