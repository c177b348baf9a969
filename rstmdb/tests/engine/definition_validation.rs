//! Validation rules of §7.1–7.3 and the error details of §7.10, including their order.

use rstmdb::dsl::definition::{DefinitionError, DefinitionErrorKind, MachineDefinition};
use rstmdb::dsl::guard::GuardErrorKind;
use serde_json::{Value, json};

fn error_details(definition: Value) -> Value {
    match MachineDefinition::from_json(&definition) {
        Ok(_) => panic!("expected {definition} to be refused"),
        Err(error) => error.details_json(),
    }
}

fn valid(definition: Value) -> MachineDefinition {
    match MachineDefinition::from_json(&definition) {
        Ok(machine) => machine,
        Err(error) => panic!("expected {definition} to be valid, got {error}"),
    }
}

fn kind_and_pointer(definition: Value) -> (String, String) {
    let details = error_details(definition);
    (
        details["kind"].as_str().unwrap_or_default().to_owned(),
        details["pointer"].as_str().unwrap_or_default().to_owned(),
    )
}

fn expect(definition: Value, kind: &str, pointer: &str) {
    assert_eq!(
        kind_and_pointer(definition),
        (kind.to_owned(), pointer.to_owned())
    );
}

#[test]
fn definition_that_is_not_an_object_is_not_object_at_the_root() {
    for definition in [
        json!([1, 2]),
        json!("x"),
        json!(3),
        json!(true),
        json!(null),
    ] {
        assert_eq!(
            error_details(definition),
            json!({"reason":"invalid_definition","kind":"not_object","pointer":""})
        );
    }
}

#[test]
fn missing_top_level_keys_are_reported_in_states_initial_transitions_order() {
    assert_eq!(
        error_details(json!({"states": ["a"], "initial": "a"})),
        json!({"reason":"invalid_definition","kind":"missing_field","pointer":"","text":"transitions","field":"transitions"})
    );
    assert_eq!(
        error_details(json!({})),
        json!({"reason":"invalid_definition","kind":"missing_field","pointer":"","text":"states","field":"states"})
    );
    assert_eq!(
        error_details(json!({"states": ["a"], "transitions": []}))["field"],
        "initial"
    );
}

#[test]
fn each_key_is_checked_for_presence_and_type_before_the_next_key() {
    // `states` has the wrong type: that wins over the missing `initial`.
    expect(
        json!({"states": "a", "transitions": []}),
        "wrong_type",
        "/states",
    );
    // A non-string state entry is part of `states`' type, checked before `initial`.
    expect(
        json!({"states": ["a", "b", "c", 4]}),
        "wrong_type",
        "/states/3",
    );
    expect(
        json!({"states": ["a"], "initial": 1, "transitions": []}),
        "wrong_type",
        "/initial",
    );
    expect(
        json!({"states": ["a"], "initial": "a", "transitions": {}}),
        "wrong_type",
        "/transitions",
    );
}

#[test]
fn transition_with_a_missing_key_names_the_transition_object() {
    let definition = json!({"states": ["a"], "initial": "a", "transitions": [
        {"from": "a", "event": "E", "to": "a"},
        {"from": "a", "event": "F", "to": "a"},
        {"from": "a", "event": "G"}
    ]});
    assert_eq!(
        error_details(definition),
        json!({"reason":"invalid_definition","kind":"missing_field","pointer":"/transitions/2","text":"to","field":"to"})
    );
}

#[test]
fn transition_keys_are_checked_in_from_event_to_guard_order() {
    let with =
        |transition: Value| json!({"states": ["a"], "initial": "a", "transitions": [transition]});
    expect(with(json!(["a"])), "wrong_type", "/transitions/0");
    expect(
        with(json!({"event": 1, "to": 2})),
        "missing_field",
        "/transitions/0",
    );
    assert_eq!(error_details(with(json!({"event": 1})))["field"], "from");
    expect(
        with(json!({"from": 1, "event": 1})),
        "wrong_type",
        "/transitions/0/from",
    );
    expect(
        with(json!({"from": ["a", 7, 8], "event": 1})),
        "wrong_type",
        "/transitions/0/from/1",
    );
    expect(
        with(json!({"from": "a", "event": 1})),
        "wrong_type",
        "/transitions/0/event",
    );
    assert_eq!(
        error_details(with(json!({"from": "a", "event": "E"})))["field"],
        "to"
    );
    expect(
        with(json!({"from": "a", "event": "E", "to": ["a"]})),
        "wrong_type",
        "/transitions/0/to",
    );
    expect(
        with(json!({"from": "a", "event": "E", "to": "a", "guard": 5})),
        "wrong_type",
        "/transitions/0/guard",
    );
}

#[test]
fn shape_of_every_transition_is_checked_before_any_name() {
    // Unknown initial and an unknown target in transition 0, but transition 2 has a bad guard
    // type: the shape pass covers the whole definition first.
    let definition = json!({"states": ["a"], "initial": "zz", "transitions": [
        {"from": "a", "event": "E", "to": "nowhere"},
        {"from": "a", "event": "F", "to": "a"},
        {"from": "a", "event": "G", "to": "a", "guard": false}
    ]});
    expect(definition, "wrong_type", "/transitions/2/guard");
}

#[test]
fn unknown_initial_is_checked_before_any_transition() {
    let definition = json!({"states": ["a"], "initial": "b", "transitions": [
        {"from": "x", "event": "E", "to": "y"}
    ]});
    assert_eq!(
        error_details(definition),
        json!({"reason":"invalid_definition","kind":"unknown_initial","pointer":"/initial","text":"b"})
    );
}

#[test]
fn empty_states_can_never_validate() {
    expect(
        json!({"states": [], "initial": "a", "transitions": []}),
        "unknown_initial",
        "/initial",
    );
}

#[test]
fn within_a_transition_target_then_guard_then_sources_then_shadowing() {
    let base = |transition: Value| {
        json!({"states": ["a", "b"], "initial": "a", "transitions": [
            {"from": "a", "event": "E", "to": "b"},
            transition
        ]})
    };
    // Everything wrong: the unknown target wins.
    assert_eq!(
        error_details(base(
            json!({"from": ["q"], "event": "E", "to": "zz", "guard": ""})
        )),
        json!({"reason":"invalid_definition","kind":"unknown_target","pointer":"/transitions/1/to","text":"zz"})
    );
    // Then the guard.
    let details = error_details(base(
        json!({"from": ["q"], "event": "E", "to": "b", "guard": ""}),
    ));
    assert_eq!(details["reason"], "invalid_guard");
    assert_eq!(details["pointer"], "/transitions/1/guard");
    // Then the sources.
    assert_eq!(
        error_details(base(
            json!({"from": ["a", "q"], "event": "E", "to": "b", "guard": "ctx.ok"})
        )),
        json!({"reason":"invalid_definition","kind":"unknown_source","pointer":"/transitions/1/from/1","text":"q"})
    );
    // And only then shadowing.
    expect(
        base(json!({"from": ["a"], "event": "E", "to": "b"})),
        "unreachable_transition",
        "/transitions/1",
    );
}

#[test]
fn earlier_transition_errors_win_over_later_ones() {
    let definition = json!({"states": ["a", "b"], "initial": "a", "transitions": [
        {"from": "q", "event": "E", "to": "b"},
        {"from": "a", "event": "E", "to": "zz"}
    ]});
    expect(definition, "unknown_source", "/transitions/0/from");
}

#[test]
fn unknown_source_pointer_follows_the_form_of_from() {
    let with = |from: Value| json!({"states": ["a"], "initial": "a", "transitions": [{"from": from, "event": "E", "to": "a"}]});
    assert_eq!(
        error_details(with(json!("b"))),
        json!({"reason":"invalid_definition","kind":"unknown_source","pointer":"/transitions/0/from","text":"b"})
    );
    assert_eq!(
        error_details(with(json!(["a", "a", "c"]))),
        json!({"reason":"invalid_definition","kind":"unknown_source","pointer":"/transitions/0/from/2","text":"c"})
    );
}

#[test]
fn invalid_guard_carries_pointer_guard_span_and_position() {
    let definition = json!({"states": ["a"], "initial": "a", "transitions": [
        {"from": "a", "event": "E", "to": "a", "guard": "ctx.ok"},
        {"from": "a", "event": "F", "to": "a", "guard": "  \n "}
    ]});
    let error = MachineDefinition::from_json(&definition).expect_err("empty guard");
    let DefinitionError::Guard {
        pointer,
        guard,
        error: guard_error,
    } = &error
    else {
        panic!("expected a guard error, got {error:?}");
    };
    assert_eq!(pointer, "/transitions/1/guard");
    assert_eq!(guard, "  \n ");
    assert_eq!(guard_error.kind, GuardErrorKind::EmptyGuard);
    assert_eq!(
        error.details_json(),
        json!({"reason":"invalid_guard","kind":"empty_guard","pointer":"/transitions/1/guard","guard":"  \n ",
               "span":{"offset":0,"length":4},"line":1,"column":1,"text":"  \n "})
    );
    assert!(
        error
            .to_string()
            .starts_with("invalid guard at /transitions/1/guard, line 1 column 1: ")
    );
}

#[test]
fn trailing_guard_text_matches_the_spec_example() {
    let definition = json!({"states": ["a"], "initial": "a", "transitions": [
        {"from": "a", "event": "E", "to": "a"},
        {"from": "a", "event": "F", "to": "a", "guard": "ctx.ok foo"}
    ]});
    let error = MachineDefinition::from_json(&definition).expect_err("trailing input");
    assert_eq!(
        error.details_json(),
        json!({"reason":"invalid_guard","kind":"trailing_input","pointer":"/transitions/1/guard","guard":"ctx.ok foo",
               "span":{"offset":7,"length":3},"line":1,"column":8,"text":"foo"})
    );
    assert_eq!(
        error.to_string(),
        "invalid guard at /transitions/1/guard, line 1 column 8: unexpected trailing text 'foo'"
    );
}

#[test]
fn unguarded_transition_shadows_a_later_one_for_the_same_state_and_event() {
    // The §7.10 example.
    let definition = json!({"states": ["a", "b", "c"], "initial": "a", "transitions": [
        {"from": ["a"], "event": "GO", "to": "c"},
        {"from": "a", "event": "GO", "to": "b"}
    ]});
    assert_eq!(
        error_details(definition),
        json!({"reason":"invalid_definition","kind":"unreachable_transition","pointer":"/transitions/1","shadowed_by":0})
    );
}

#[test]
fn shadowing_names_the_earliest_unguarded_transition() {
    let definition = json!({"states": ["a", "b"], "initial": "a", "transitions": [
        {"from": "a", "event": "GO", "to": "b", "guard": "ctx.x"},
        {"from": ["b", "a"], "event": "GO", "to": "b"},
        {"from": "b", "event": "OTHER", "to": "a"},
        {"from": ["b"], "event": "GO", "to": "a", "guard": "ctx.y"}
    ]});
    assert_eq!(
        error_details(definition),
        json!({"reason":"invalid_definition","kind":"unreachable_transition","pointer":"/transitions/3","shadowed_by":1})
    );
}

#[test]
fn guarded_paths_before_an_unguarded_fallback_are_valid() {
    // The §7.9 example, plus a different event and a different state that must not collide.
    let machine = valid(
        json!({"states": ["review", "approved", "manual", "rejected"], "initial": "review",
        "transitions": [
            {"from":"review","event":"DECIDE","to":"approved","guard":"payload.score >= 80"},
            {"from":"review","event":"DECIDE","to":"manual","guard":"payload.score >= 50"},
            {"from":"manual","event":"DECIDE","to":"approved"},
            {"from":"review","event":"WITHDRAW","to":"rejected"},
            {"from":"review","event":"DECIDE","to":"rejected"}
        ]}),
    );
    let review = machine.state_id("review").expect("review is a state");
    let manual = machine.state_id("manual").expect("manual is a state");
    assert_eq!(machine.candidates(review, "DECIDE"), &[0, 1, 4]);
    assert_eq!(machine.candidates(manual, "DECIDE"), &[2]);
    assert_eq!(machine.candidates(review, "WITHDRAW"), &[3]);
    assert!(machine.candidates(review, "UNKNOWN").is_empty());
    assert!(
        machine
            .candidates(machine.state_id("approved").unwrap_or(0), "DECIDE")
            .is_empty()
    );
}

#[test]
fn duplicate_state_names_share_one_id() {
    let machine = valid(
        json!({"states": ["a", "b", "a", "b", "c"], "initial": "c", "transitions": [
            {"from": ["a", "a"], "event": "E", "to": "b"}
        ]}),
    );
    assert_eq!(machine.states, ["a", "b", "a", "b", "c"]);
    assert_eq!(machine.state_count(), 3);
    assert_eq!(machine.state_id("a"), Some(0));
    assert_eq!(machine.state_id("c"), Some(2));
    assert_eq!(machine.state_name(2), "c");
    assert_eq!(machine.initial_id(), 2);
    assert_eq!(machine.transitions[0].to_id, 1);
    // Listing a source twice makes the transition one candidate, not two.
    assert_eq!(machine.candidates(0, "E"), &[0]);
}

#[test]
fn star_is_an_ordinary_state_not_a_wildcard() {
    let machine = valid(
        json!({"states": ["*", "a"], "initial": "a", "transitions": [
            {"from": "*", "event": "RESET", "to": "a"}
        ]}),
    );
    let star = machine.state_id("*").expect("* is a state");
    assert_eq!(machine.candidates(star, "RESET"), &[0]);
    assert!(machine.candidates(machine.initial_id(), "RESET").is_empty());
    expect(
        json!({"states": ["a"], "initial": "a", "transitions": [{"from": "*", "event": "E", "to": "a"}]}),
        "unknown_source",
        "/transitions/0/from",
    );
}

#[test]
fn empty_from_list_is_valid_and_creates_no_edge() {
    let machine = valid(json!({"states": ["a"], "initial": "a", "transitions": [
        {"from": [], "event": "E", "to": "a"},
        {"from": "a", "event": "E", "to": "a"}
    ]}));
    assert!(machine.transitions[0].from.is_empty());
    assert_eq!(machine.candidates(0, "E"), &[1]);
}

#[test]
fn null_guard_and_null_meta_count_as_absent_and_unknown_keys_are_ignored() {
    let machine = valid(json!({"states": ["a"], "initial": "a", "owner": {"x": 1},
        "transitions": [{"from": "a", "event": "E", "to": "a", "guard": null, "note": [1]}],
        "meta": null}));
    assert_eq!(machine.transitions[0].guard, None);
    assert_eq!(machine.meta, None);
    // An unguarded transition: a later one for the same pair is unreachable.
    expect(
        json!({"states": ["a"], "initial": "a", "transitions": [
            {"from": "a", "event": "E", "to": "a", "guard": null},
            {"from": "a", "event": "E", "to": "a", "guard": "ctx.x"}]}),
        "unreachable_transition",
        "/transitions/1",
    );
}

#[test]
fn any_string_is_an_event_and_a_state_name() {
    let machine = valid(
        json!({"states": ["", "ünï", "a/b~c"], "initial": "", "transitions": [
            {"from": ["ünï", ""], "event": "", "to": "a/b~c"}
        ]}),
    );
    assert_eq!(machine.candidates(machine.initial_id(), ""), &[0]);
}

#[test]
fn put_machine_example_normalises_to_the_get_machine_example() {
    // §4.7 request and §4.8 response.
    let machine = valid(
        json!({"states":["created","paid","shipped"],"initial":"created","transitions":[
        {"from":"created","event":"PAY","to":"paid"},
        {"from":"paid","event":"SHIP","to":"shipped","guard":"ctx.ready"}]}),
    );
    assert_eq!(
        machine.normalized(),
        json!({"states":["created","paid","shipped"],"initial":"created","transitions":[
            {"from":["created"],"event":"PAY","to":"paid"},
            {"from":["paid"],"event":"SHIP","to":"shipped","guard":"ctx.ready"}]})
    );
    assert_eq!(machine.checksum_hex(), "eef67bea");
    assert_eq!(
        machine.transitions[1].guard.as_ref().map(|g| g.text()),
        Some("ctx.ready")
    );
}

#[test]
fn errors_read_as_one_line_messages() {
    let message = |definition: Value| {
        MachineDefinition::from_json(&definition)
            .expect_err("invalid")
            .to_string()
    };
    assert_eq!(
        message(
            json!({"states": ["shipped"], "initial": "shipped", "transitions": [
            {"from": "shipped", "event": "E", "to": "shiped"}]})
        ),
        "invalid definition at /transitions/0/to: target state 'shiped' is not one of states"
    );
    assert_eq!(
        message(json!({"states": ["a", 1]})),
        "invalid definition at /states/1: wrong type, expected a string"
    );
    assert_eq!(
        message(json!({"states": ["a"], "initial": "a"})),
        "invalid definition: missing field 'transitions'"
    );
    let kind = |definition: Value| match MachineDefinition::from_json(&definition) {
        Err(DefinitionError::Invalid(invalid)) => Some(invalid.kind),
        _ => None,
    };
    assert_eq!(kind(json!(1)), Some(DefinitionErrorKind::NotObject));
}
