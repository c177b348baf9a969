//! PUT_MACHINE (§4.7), GET_MACHINE (§4.8) and LIST_MACHINES (§4.9).

use crate::engine_support::{Harness, order_v1, put, wire};
use rstmdb::engine::{Command, EngineConfig};
use serde_json::json;

#[test]
fn first_put_stores_the_definition_with_the_spec_checksum() {
    let mut h = Harness::with_defaults();
    let result = h.ok(put("order", 1, order_v1()));
    assert_eq!(
        result,
        json!({"machine":"order","version":1,"stored_checksum":"eef67bea","created":true})
    );
    assert_eq!(h.records.len(), 1);
    let entry = serde_json::to_value(&h.records[0].0).unwrap();
    assert_eq!(entry["type"], "put_machine");
    assert_eq!(entry["definition_hash"], "eef67bea");
    assert_eq!(entry["definition"], order_v1());
}

#[test]
fn re_putting_an_equivalent_definition_writes_nothing() {
    let mut h = Harness::with_defaults();
    h.ok(put("order", 1, order_v1()));
    // `from` as a list and an unknown key normalise to the same definition (§6.7).
    let equivalent = json!({"states":["created","paid","shipped"],"initial":"created","note":1,
        "transitions":[{"from":["created"],"event":"PAY","to":"paid"},
        {"from":["paid"],"event":"SHIP","to":"shipped","guard":"ctx.ready"}]});
    let executed = h.run(put("order", 1, equivalent)).unwrap();
    assert_eq!(
        serde_json::to_value(&executed.result).unwrap(),
        json!({"machine":"order","version":1,"stored_checksum":"eef67bea","created":false})
    );
    assert_eq!(executed.wal_offset, None);
    assert_eq!(h.records.len(), 1);
}

#[test]
fn re_putting_a_different_definition_is_version_exists_with_both_checksums() {
    let mut h = Harness::with_defaults();
    h.ok(put("order", 1, order_v1()));
    let other = json!({"states":["a","b"],"initial":"a","transitions":[{"from":["a"],"event":"GO","to":"b"}]});
    let error = h.err(put("order", 1, other));
    assert_eq!(
        wire(&error),
        json!({"code":"MACHINE_VERSION_EXISTS","details":{"reason":"version_exists",
            "machine":"order","version":1,"existing_checksum":"eef67bea","new_checksum":"cd587fc1"}})
    );
    assert_eq!(h.records.len(), 1);
}

#[test]
fn the_version_limit_refuses_new_versions_but_not_re_puts() {
    let mut h = Harness::new(EngineConfig {
        max_machine_versions: 2,
        ..EngineConfig::default()
    });
    h.ok(put("order", 0, order_v1()));
    h.ok(put("order", 7, order_v1()));
    let error = h.err(put("order", 3, order_v1()));
    assert_eq!(
        wire(&error),
        json!({"code":"MACHINE_VERSION_LIMIT_EXCEEDED","details":{"reason":"version_limit",
            "machine":"order","limit":2}})
    );
    assert_eq!(h.ok(put("order", 7, order_v1()))["created"], false);
    // Another name has its own budget.
    assert_eq!(h.ok(put("other", 3, order_v1()))["created"], true);
}

#[test]
fn a_non_object_definition_is_an_invalid_definition() {
    let mut h = Harness::with_defaults();
    let error = h.err(put("m", 1, json!([1, 2])));
    assert_eq!(
        wire(&error),
        json!({"code":"BAD_REQUEST","details":{"reason":"invalid_definition","kind":"not_object","pointer":""}})
    );
    assert!(h.records.is_empty());
}

#[test]
fn a_missing_field_names_the_field() {
    let mut h = Harness::with_defaults();
    let error = h.err(put("m", 1, json!({"states":["a"],"initial":"a"})));
    assert_eq!(
        crate::engine_support::wire(&error)["details"],
        json!({"reason":"invalid_definition","kind":"missing_field","pointer":"","text":"transitions","field":"transitions"})
    );
}

#[test]
fn an_invalid_guard_reports_span_line_column_and_text() {
    let mut h = Harness::with_defaults();
    let definition = json!({"states":["a","b"],"initial":"a","transitions":[
        {"from":"a","event":"GO","to":"b"},{"from":"b","event":"GO","to":"a","guard":"ctx.ok foo"}]});
    let error = h.err(put("m", 1, definition));
    assert_eq!(
        wire(&error),
        json!({"code":"BAD_REQUEST","details":{"reason":"invalid_guard","kind":"trailing_input",
            "pointer":"/transitions/1/guard","guard":"ctx.ok foo","span":{"offset":7,"length":3},
            "line":1,"column":8,"text":"foo"}})
    );
}

#[test]
fn get_machine_returns_the_normalised_definition() {
    let mut h = Harness::with_defaults();
    h.ok(put("order", 1, order_v1()));
    let got = serde_json::to_value(h.engine.get_machine("order", 1).unwrap()).unwrap();
    assert_eq!(
        got,
        json!({"definition":{"states":["created","paid","shipped"],"initial":"created","transitions":[
            {"from":["created"],"event":"PAY","to":"paid"},
            {"from":["paid"],"event":"SHIP","to":"shipped","guard":"ctx.ready"}]},"checksum":"eef67bea"})
    );
    assert_eq!(
        h.engine.machine_definition_as_received("order", 1),
        Some(&order_v1())
    );
}

#[test]
fn get_machine_of_an_unknown_name_or_version_is_machine_not_found() {
    let mut h = Harness::with_defaults();
    h.ok(put("order", 1, order_v1()));
    for (name, version) in [("order", 2), ("nope", 1)] {
        let error = h.engine.get_machine(name, version).unwrap_err();
        assert_eq!(
            wire(&error),
            json!({"code":"MACHINE_NOT_FOUND","details":{"reason":"machine_not_found","machine":name,"version":version}})
        );
    }
}

#[test]
fn list_machines_sorts_names_by_bytes_and_versions_ascending() {
    let mut h = Harness::with_defaults();
    for (name, version) in [
        ("order", 2),
        ("Zeta", 1),
        ("order", 0),
        ("alpha", 9),
        ("order", 1),
    ] {
        h.ok(put(name, version, order_v1()));
    }
    assert_eq!(
        serde_json::to_value(h.engine.list_machines()).unwrap(),
        json!({"items":[{"machine":"Zeta","versions":[1]},{"machine":"alpha","versions":[9]},
            {"machine":"order","versions":[0,1,2]}]})
    );
    assert_eq!(h.engine.machine_version_count(), 5);
}

#[test]
fn flush_all_is_refused_while_disabled() {
    let mut h = Harness::with_defaults();
    h.ok(put("order", 1, order_v1()));
    let error = h.err(Command::FlushAll);
    assert_eq!(
        wire(&error),
        json!({"code":"BAD_REQUEST","details":{"reason":"flush_all_disabled"}})
    );
    assert_eq!(h.engine.machine_version_count(), 1);
}

#[test]
fn validation_comes_before_the_existing_version_check() {
    let mut h = Harness::with_defaults();
    h.ok(put("order", 1, order_v1()));
    let error = h.err(put(
        "order",
        1,
        json!({"states":["a"],"initial":"b","transitions":[]}),
    ));
    assert_eq!(
        wire(&error),
        json!({"code":"BAD_REQUEST","details":{"reason":"invalid_definition","kind":"unknown_initial",
            "pointer":"/initial","text":"b"}})
    );
}
