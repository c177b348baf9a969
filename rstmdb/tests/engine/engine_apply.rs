//! APPLY_EVENT (§4.14): processing order, merge (§6.6), several candidates (§7.9),
//! optimistic concurrency (§6.3).

use crate::engine_support::{Harness, apply, create, object, order_v1, put, review, wire};
use rstmdb::engine::{ApplyEvent, Command};
use serde_json::{Value, json};

fn order_with(id: &str, ctx: Value) -> Harness {
    let mut h = Harness::with_defaults();
    h.ok(put("order", 1, order_v1()));
    let mut cmd = create("order", 1, id);
    cmd.initial_ctx = Some(object(ctx));
    h.ok(Command::CreateInstance(cmd));
    h
}

#[test]
fn the_worked_example_pay_merges_the_payload_and_echoes_the_event_id() {
    let mut h = order_with("order-1", json!({"customer":"alice"}));
    let executed = h
        .run(Command::ApplyEvent(ApplyEvent {
            payload: Some(object(json!({"amount":42.5,"ready":true}))),
            event_id: Some("evt-1".into()),
            idempotency_key: Some("pay-1".into()),
            ..apply("order-1", "PAY")
        }))
        .unwrap();
    let offset = executed.wal_offset.unwrap();
    assert_eq!(
        serde_json::to_value(&executed.result).unwrap(),
        json!({"from_state":"created","to_state":"paid","ctx":{"customer":"alice","amount":42.5,"ready":true},
            "wal_offset":offset,"applied":true,"event_id":"evt-1"})
    );
    let view = serde_json::to_value(h.engine.get_instance("order-1").unwrap()).unwrap();
    assert_eq!(view["state"], "paid");
    assert_eq!(view["last_event_id"], "evt-1");
    assert_eq!(view["last_wal_offset"], offset);
    assert_eq!(
        view["ctx"],
        json!({"customer":"alice","amount":42.5,"ready":true})
    );
    let entry = serde_json::to_value(executed.record.as_ref().unwrap()).unwrap();
    assert_eq!(
        entry,
        json!({"type":"apply_event","instance_id":"order-1","machine":"order","version":1,"event":"PAY",
            "from_state":"created","to_state":"paid","payload":{"amount":42.5,"ready":true},
            "ctx":{"customer":"alice","amount":42.5,"ready":true},"event_id":"evt-1",
            "idempotency_key":"pay-1","timestamp":entry["timestamp"]})
    );
}

#[test]
fn the_merge_is_shallow_and_null_sets_null() {
    let mut h = Harness::with_defaults();
    h.ok(put(
        "loop",
        1,
        json!({"states":["s"],"initial":"s","transitions":[{"from":"s","event":"E","to":"s"}]}),
    ));
    let mut cmd = create("loop", 1, "i");
    cmd.initial_ctx = Some(object(json!({"b":{"x":1},"k":1})));
    h.ok(Command::CreateInstance(cmd));
    let result = h.ok(Command::ApplyEvent(ApplyEvent {
        payload: Some(object(json!({"b":{"y":2},"c":3}))),
        ..apply("i", "E")
    }));
    assert_eq!(
        result["ctx"],
        json!({"b":{"y":2},"c":3,"k":1}),
        "the §6.6 example"
    );
    let result = h.ok(Command::ApplyEvent(ApplyEvent {
        payload: Some(object(json!({"k":null}))),
        ..apply("i", "E")
    }));
    assert_eq!(result["ctx"], json!({"b":{"y":2},"c":3,"k":null}));
    let result = h.ok(Command::ApplyEvent(apply("i", "E")));
    assert_eq!(
        result["ctx"],
        json!({"b":{"y":2},"c":3,"k":null}),
        "no payload: unchanged"
    );
    let record = serde_json::to_value(&h.records.last().unwrap().0).unwrap();
    assert_eq!(record["payload"], Value::Null);
}

#[test]
fn guards_read_ctx_before_the_merge() {
    let mut h = order_with("order-3", json!({"customer":"carol"}));
    h.ok(Command::ApplyEvent(apply("order-3", "PAY")));
    let error = h.err(Command::ApplyEvent(ApplyEvent {
        payload: Some(object(json!({"ready":true}))),
        ..apply("order-3", "SHIP")
    }));
    assert_eq!(
        wire(&error),
        json!({"code":"GUARD_FAILED","details":{"reason":"guard_failed","state":"paid","event":"SHIP","guards":["ctx.ready"]}})
    );
    assert_eq!(
        error.to_string(),
        "no guard passed for event 'SHIP' in state 'paid' (tried: ctx.ready)"
    );
    assert_eq!(h.engine.get_instance("order-3").unwrap().state, "paid");
}

#[test]
fn the_first_passing_candidate_in_definition_order_wins() {
    let mut h = Harness::with_defaults();
    h.ok(put("review", 1, review()));
    for (id, score, expected) in [
        ("a", 90, "approved"),
        ("b", 60, "manual"),
        ("c", 10, "rejected"),
    ] {
        h.ok(Command::CreateInstance(create("review", 1, id)));
        let result = h.ok(Command::ApplyEvent(ApplyEvent {
            payload: Some(object(json!({"score":score}))),
            ..apply(id, "DECIDE")
        }));
        assert_eq!(result["to_state"], expected, "score {score}");
    }
    // No payload: both guards fail and the unguarded fallback applies.
    h.ok(Command::ApplyEvent(apply("a", "REOPEN")));
    assert_eq!(
        h.ok(Command::ApplyEvent(apply("a", "DECIDE")))["to_state"],
        "rejected"
    );
}

#[test]
fn guard_failed_lists_every_guard_tried_in_order() {
    let mut h = Harness::with_defaults();
    let definition = json!({"states":["s","hi","mid"],"initial":"s","transitions":[
        {"from":"s","event":"E","to":"hi","guard":"payload.n > 10"},
        {"from":"s","event":"E","to":"mid","guard":"payload.n > 5"}]});
    h.ok(put("m", 1, definition));
    h.ok(Command::CreateInstance(create("m", 1, "i")));
    let error = h.err(Command::ApplyEvent(ApplyEvent {
        payload: Some(object(json!({"n":1}))),
        ..apply("i", "E")
    }));
    assert_eq!(
        wire(&error)["details"]["guards"],
        json!(["payload.n > 10", "payload.n > 5"])
    );
    assert_eq!(h.records.len(), 2, "a failure writes nothing");
}

#[test]
fn an_event_without_a_transition_is_invalid_transition() {
    let mut h = order_with("order-9", json!({}));
    let error = h.err(Command::ApplyEvent(apply("order-9", "SHIP")));
    assert_eq!(
        wire(&error),
        json!({"code":"INVALID_TRANSITION","details":{"reason":"no_transition","state":"created","event":"SHIP"}})
    );
    assert_eq!(error.to_string(), "cannot apply 'SHIP' in state 'created'");
}

#[test]
fn an_unknown_instance_is_instance_not_found() {
    let mut h = order_with("x", json!({}));
    let error = h.err(Command::ApplyEvent(apply("zz", "PAY")));
    assert_eq!(
        wire(&error),
        json!({"code":"INSTANCE_NOT_FOUND","details":{"reason":"instance_not_found","instance_id":"zz"}})
    );
}

#[test]
fn expected_state_is_checked_before_the_offset_and_the_transition() {
    let mut h = order_with("x", json!({}));
    let error = h.err(Command::ApplyEvent(ApplyEvent {
        expected_state: Some("paid".into()),
        expected_wal_offset: Some(1),
        ..apply("x", "NO_SUCH_EVENT")
    }));
    assert_eq!(
        wire(&error),
        json!({"code":"CONFLICT","details":{"reason":"state_mismatch","expected":"paid","actual":"created"}})
    );
}

#[test]
fn expected_wal_offset_is_compared_with_last_wal_offset() {
    let mut h = order_with("x", json!({}));
    let last = h.engine.get_instance("x").unwrap().last_wal_offset;
    let error = h.err(Command::ApplyEvent(ApplyEvent {
        expected_state: Some("created".into()),
        expected_wal_offset: Some(last + 1),
        ..apply("x", "NO_SUCH_EVENT")
    }));
    assert_eq!(
        wire(&error),
        json!({"code":"CONFLICT","details":{"reason":"wal_offset_mismatch","expected":last + 1,"actual":last}})
    );
    let ok = h.ok(Command::ApplyEvent(ApplyEvent {
        expected_state: Some("created".into()),
        expected_wal_offset: Some(last),
        ..apply("x", "PAY")
    }));
    assert_eq!(ok["applied"], true);
    let entry = serde_json::to_value(&h.records.last().unwrap().0).unwrap();
    assert_eq!(
        (
            entry["expected_state"].clone(),
            entry["expected_wal_offset"].clone()
        ),
        (json!("created"), json!(last))
    );
}

#[test]
fn last_event_id_follows_the_latest_apply() {
    let mut h = Harness::with_defaults();
    h.ok(put(
        "loop",
        1,
        json!({"states":["s"],"initial":"s","transitions":[{"from":"s","event":"E","to":"s"}]}),
    ));
    h.ok(Command::CreateInstance(create("loop", 1, "i")));
    h.ok(Command::ApplyEvent(ApplyEvent {
        event_id: Some("e1".into()),
        ..apply("i", "E")
    }));
    assert_eq!(
        h.engine.get_instance("i").unwrap().last_event_id.as_deref(),
        Some("e1")
    );
    let result = h.ok(Command::ApplyEvent(apply("i", "E")));
    assert!(result.get("event_id").is_none());
    assert_eq!(h.engine.get_instance("i").unwrap().last_event_id, None);
}

#[test]
fn an_unknown_instance_is_reported_before_concurrency_checks() {
    let mut h = order_with("x", json!({}));
    let error = h.err(Command::ApplyEvent(ApplyEvent {
        expected_state: Some("nope".into()),
        expected_wal_offset: Some(1),
        ..apply("zz", "PAY")
    }));
    assert_eq!(wire(&error)["details"]["reason"], "instance_not_found");
}
