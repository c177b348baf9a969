//! Replay (docs/architecture.md §4): state is a pure function of the records; no guard re-runs.

use crate::engine_support::{Harness, apply, create, delete, object, order_v1, put, review};
use rstmdb::engine::{
    ApplyEvent, ApplyEventRecord, Command, Engine, EngineConfig, Record, ReplayError,
};
use serde_json::json;
use serde_json::value::RawValue;

#[test]
fn replaying_the_records_rebuilds_an_identical_state() {
    let mut h = Harness::new(EngineConfig {
        idempotency_max_entries: 3,
        ..EngineConfig::default()
    });
    h.ok(put("order", 1, order_v1()));
    h.ok(put("review", 2, review()));
    for i in 0..5 {
        let mut c = create("review", 2, &format!("r{i}"));
        c.idempotency_key = Some(format!("c{i}"));
        c.initial_ctx = Some(object(json!({"i": i})));
        h.ok(Command::CreateInstance(c));
        h.ok(Command::ApplyEvent(ApplyEvent {
            payload: Some(object(json!({"score": i * 25}))),
            event_id: Some(format!("e{i}")),
            idempotency_key: Some(format!("a{i}")),
            ..apply(&format!("r{i}"), "DECIDE")
        }));
    }
    h.ok(delete("r1"));
    h.ok(Command::CreateInstance(create("review", 2, "r1")));
    let replayed = h.replayed();
    assert_eq!(replayed.encode_image(), h.engine.encode_image());
    assert_eq!(replayed.state_counts(), h.engine.state_counts());
    assert_eq!(replayed.last_timestamp_ms(), h.engine.last_timestamp_ms());
}

#[test]
fn replay_takes_the_outcome_from_the_record_without_evaluating_guards() {
    let mut h = Harness::with_defaults();
    h.ok(put("order", 1, order_v1()));
    h.ok(Command::CreateInstance(create("order", 1, "o")));
    h.ok(Command::ApplyEvent(apply("o", "PAY")));
    let mut engine = h.replayed();
    // ctx.ready is false, so SHIP's guard would fail; the record says it passed.
    let record = Record::ApplyEvent(ApplyEventRecord {
        instance_id: "o".into(),
        machine: "order".into(),
        version: 1,
        event: "SHIP".into(),
        from_state: "paid".into(),
        to_state: "shipped".into(),
        payload: None,
        ctx: RawValue::from_string(r#"{"from":"record"}"#.into()).unwrap(),
        event_id: None,
        idempotency_key: None,
        expected_state: None,
        expected_wal_offset: None,
        timestamp: h.now_ms,
    });
    engine.apply_record(&record, h.next_offset).unwrap();
    let view = engine.get_instance("o").unwrap();
    assert_eq!(
        (view.state.as_str(), view.ctx.get()),
        ("shipped", r#"{"from":"record"}"#)
    );
}

#[test]
fn a_record_that_does_not_fit_the_state_is_refused_and_changes_nothing() {
    let mut engine = Engine::new(EngineConfig::default());
    let record: Record =
        serde_json::from_value(json!({"type":"delete_instance","instance_id":"x","timestamp":5}))
            .unwrap();
    let before = engine.encode_image();
    assert_eq!(
        engine.apply_record(&record, 1 << 40),
        Err(ReplayError::UnknownInstance {
            instance_id: "x".into()
        })
    );
    let create: Record = serde_json::from_value(json!({"type":"create_instance","instance_id":"x",
        "machine":"m","version":1,"initial_state":"a","initial_ctx":{},"timestamp":5}))
    .unwrap();
    assert!(matches!(
        engine.apply_record(&create, 1 << 40),
        Err(ReplayError::UnknownMachine { .. })
    ));
    assert_eq!(engine.encode_image(), before);
}
