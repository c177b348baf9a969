//! `Record` serialises to exactly the §4.17 entry JSON and reads it back.

use rstmdb::engine::{
    ApplyEventRecord, CreateInstanceRecord, DeleteInstanceRecord, FlushAllRecord, PutMachineRecord,
    Record,
};
use serde_json::json;
use serde_json::value::RawValue;

fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).expect("valid JSON")
}

fn round_trip(record: &Record) -> Record {
    let text = serde_json::to_string(record).expect("serialises");
    serde_json::from_str(&text).expect("deserialises")
}

#[test]
fn create_instance_entry_matches_the_wal_read_example() {
    let record = Record::CreateInstance(CreateInstanceRecord {
        instance_id: "order-1".into(),
        machine: "order".into(),
        version: 1,
        initial_state: "created".into(),
        initial_ctx: raw(r#"{"customer":"alice"}"#),
        idempotency_key: Some("create-order-1".into()),
        timestamp: 1767225600000,
    });
    let expected = json!({"type":"create_instance","instance_id":"order-1","machine":"order",
        "version":1,"initial_state":"created","initial_ctx":{"customer":"alice"},
        "idempotency_key":"create-order-1","timestamp":1767225600000_i64});
    assert_eq!(serde_json::to_value(&record).unwrap(), expected);
    assert_eq!(record.kind_code(), 2);
    let back = round_trip(&record);
    assert_eq!(serde_json::to_value(&back).unwrap(), expected);
}

#[test]
fn put_machine_entry_keeps_the_definition_as_received() {
    let definition = json!({"states":["a"],"initial":"a","transitions":[],"extra":{"x":1}});
    let record = Record::PutMachine(PutMachineRecord {
        machine: "m".into(),
        version: 0,
        definition_hash: "0000abcd".into(),
        definition: definition.clone(),
        timestamp: 5,
    });
    let expected = json!({"type":"put_machine","machine":"m","version":0,
        "definition_hash":"0000abcd","definition":definition,"timestamp":5});
    assert_eq!(serde_json::to_value(&record).unwrap(), expected);
    assert_eq!(serde_json::to_value(round_trip(&record)).unwrap(), expected);
}

#[test]
fn apply_event_entry_writes_null_payload_and_omits_absent_optionals() {
    let record = Record::ApplyEvent(ApplyEventRecord {
        instance_id: "i".into(),
        machine: "m".into(),
        version: 2,
        event: "GO".into(),
        from_state: "a".into(),
        to_state: "b".into(),
        payload: None,
        ctx: raw(r#"{"k":1}"#),
        event_id: None,
        idempotency_key: None,
        expected_state: None,
        expected_wal_offset: None,
        timestamp: 7,
    });
    let text = serde_json::to_string(&record).unwrap();
    assert_eq!(
        text,
        r#"{"type":"apply_event","instance_id":"i","machine":"m","version":2,"event":"GO","from_state":"a","to_state":"b","payload":null,"ctx":{"k":1},"timestamp":7}"#
    );
    assert_eq!(serde_json::to_string(&round_trip(&record)).unwrap(), text);
}

#[test]
fn apply_event_entry_carries_every_optional_field_when_present() {
    let record = Record::ApplyEvent(ApplyEventRecord {
        instance_id: "i".into(),
        machine: "m".into(),
        version: 2,
        event: "GO".into(),
        from_state: "a".into(),
        to_state: "b".into(),
        payload: Some(raw(r#"{"amount":10}"#)),
        ctx: raw(r#"{"amount":10}"#),
        event_id: Some("e1".into()),
        idempotency_key: Some("k".into()),
        expected_state: Some("a".into()),
        expected_wal_offset: Some(1099511627776),
        timestamp: 7,
    });
    let value = serde_json::to_value(&record).unwrap();
    assert_eq!(value["payload"], json!({"amount":10}));
    assert_eq!(value["event_id"], "e1");
    assert_eq!(value["idempotency_key"], "k");
    assert_eq!(value["expected_state"], "a");
    assert_eq!(value["expected_wal_offset"], 1099511627776_u64);
    assert_eq!(serde_json::to_value(round_trip(&record)).unwrap(), value);
}

#[test]
fn delete_and_flush_entries_have_their_spec_shapes() {
    let delete = Record::DeleteInstance(DeleteInstanceRecord {
        instance_id: "order-2".into(),
        idempotency_key: None,
        timestamp: 1767225606000,
    });
    assert_eq!(
        serde_json::to_string(&delete).unwrap(),
        r#"{"type":"delete_instance","instance_id":"order-2","timestamp":1767225606000}"#
    );
    let flush = Record::FlushAll(FlushAllRecord { timestamp: 9 });
    assert_eq!(
        serde_json::to_string(&flush).unwrap(),
        r#"{"type":"flush_all","timestamp":9}"#
    );
    assert_eq!(
        serde_json::to_value(round_trip(&flush)).unwrap(),
        json!({"type":"flush_all","timestamp":9})
    );
    let codes = [delete.kind_code(), flush.kind_code()];
    assert_eq!(codes, [4, 5]);
}

#[test]
fn reading_ignores_the_unit_marker_and_unknown_keys() {
    let text = r#"{"type":"delete_instance","instance_id":"x","timestamp":1,"unit":{"index":0,"count":2},"future":true}"#;
    let record: Record = serde_json::from_str(text).unwrap();
    assert_eq!(
        serde_json::to_value(&record).unwrap(),
        json!({"type":"delete_instance","instance_id":"x","timestamp":1})
    );
}

#[test]
fn reading_refuses_unknown_types_missing_fields_and_non_object_ctx() {
    for bad in [
        r#"{"type":"compact","timestamp":1}"#,
        r#"{"type":"delete_instance","timestamp":1}"#,
        r#"{"type":"delete_instance","instance_id":"x"}"#,
        r#"{"type":"apply_event","instance_id":"i","machine":"m","version":1,"event":"E","from_state":"a","to_state":"b","payload":null,"ctx":[1],"timestamp":1}"#,
        r#"{"type":"create_instance","instance_id":"i","machine":"m","version":1,"initial_state":"a","initial_ctx":"s","timestamp":1}"#,
    ] {
        assert!(
            serde_json::from_str::<Record>(bad).is_err(),
            "accepted {bad}"
        );
    }
}
