//! CREATE_INSTANCE (§4.10), DELETE_INSTANCE (§4.13), GET/LIST_INSTANCES (§4.11, §4.12), soft
//! delete and re-creation (§6.4), timestamps (§6.5).

use crate::engine_support::{Harness, apply, code, create, delete, object, order_v1, put, wire};
use rstmdb::engine::{Command, CreateInstance, EngineConfig, InstanceIdChoice};
use rstmdb_client::params::ListInstancesParams;
use serde_json::json;

fn with_order(config: EngineConfig) -> Harness {
    let mut h = Harness::new(config);
    h.ok(put("order", 1, order_v1()));
    h
}

#[test]
fn create_starts_in_the_initial_state_with_the_initial_ctx() {
    let mut h = with_order(EngineConfig::default());
    let mut cmd = create("order", 1, "order-1");
    cmd.initial_ctx = Some(object(json!({"customer":"alice"})));
    let now = h.now_ms;
    let executed = h.run(Command::CreateInstance(cmd)).unwrap();
    let offset = executed.wal_offset.unwrap();
    assert_eq!(
        serde_json::to_value(&executed.result).unwrap(),
        json!({"instance_id":"order-1","state":"created","wal_offset":offset,"applied":true})
    );
    assert_eq!(
        serde_json::to_value(h.engine.get_instance("order-1").unwrap()).unwrap(),
        json!({"instance_id":"order-1","machine":"order","version":1,"state":"created",
            "ctx":{"customer":"alice"},"last_wal_offset":offset,"created_at":now,"updated_at":now})
    );
}

#[test]
fn a_missing_initial_ctx_is_an_empty_object() {
    let mut h = with_order(EngineConfig::default());
    h.ok(Command::CreateInstance(create("order", 1, "x")));
    let view = serde_json::to_value(h.engine.get_instance("x").unwrap()).unwrap();
    assert_eq!(view["ctx"], json!({}));
    assert!(view.get("last_event_id").is_none());
}

#[test]
fn a_generated_id_is_used_when_none_was_given() {
    let mut h = with_order(EngineConfig::default());
    let mut cmd = create("order", 1, "");
    cmd.instance_id = InstanceIdChoice::Generated("9b21ea07-0156-426c-b4b5-ea6f35749410".into());
    let result = h.ok(Command::CreateInstance(cmd));
    assert_eq!(
        result["instance_id"],
        "9b21ea07-0156-426c-b4b5-ea6f35749410"
    );
    assert!(
        h.engine
            .get_instance("9b21ea07-0156-426c-b4b5-ea6f35749410")
            .is_ok()
    );
}

#[test]
fn the_empty_string_is_a_valid_id() {
    let mut h = with_order(EngineConfig::default());
    h.ok(Command::CreateInstance(create("order", 1, "")));
    assert_eq!(h.engine.get_instance("").unwrap().state, "created");
}

#[test]
fn creating_a_live_id_is_instance_exists_even_for_an_unknown_machine() {
    let mut h = with_order(EngineConfig::default());
    h.ok(Command::CreateInstance(create("order", 1, "a")));
    // Step 3 (the id) comes before step 4 (the machine).
    let error = h.err(Command::CreateInstance(create("ghost", 1, "a")));
    assert_eq!(
        wire(&error),
        json!({"code":"INSTANCE_EXISTS","details":{"reason":"instance_exists","instance_id":"a"}})
    );
}

#[test]
fn creating_on_an_unknown_machine_version_is_machine_not_found() {
    let mut h = with_order(EngineConfig::default());
    let error = h.err(Command::CreateInstance(create("order", 2, "a")));
    assert_eq!(
        wire(&error),
        json!({"code":"MACHINE_NOT_FOUND","details":{"reason":"machine_not_found","machine":"order","version":2}})
    );
    assert_eq!(h.records.len(), 1);
}

#[test]
fn delete_soft_deletes_and_a_repeat_returns_the_original_offset() {
    let mut h = with_order(EngineConfig::default());
    h.ok(Command::CreateInstance(create("order", 1, "order-2")));
    let first = h.run(delete("order-2")).unwrap();
    let offset = first.wal_offset.unwrap();
    assert_eq!(
        serde_json::to_value(&first.result).unwrap(),
        json!({"instance_id":"order-2","deleted":true,"wal_offset":offset,"applied":true})
    );
    let repeat = h.run(delete("order-2")).unwrap();
    assert_eq!(repeat.wal_offset, None);
    assert_eq!(
        serde_json::to_value(&repeat.result).unwrap(),
        json!({"instance_id":"order-2","deleted":true,"wal_offset":offset,"applied":false})
    );
    let error = h.engine.get_instance("order-2").unwrap_err();
    assert_eq!(
        wire(&error),
        json!({"code":"INSTANCE_NOT_FOUND","details":{"reason":"instance_not_found","instance_id":"order-2"}})
    );
    let error = h.err(Command::ApplyEvent(apply("order-2", "PAY")));
    assert_eq!(code(&error), "INSTANCE_NOT_FOUND");
    assert_eq!(h.engine.live_instance_count(), 0);
}

#[test]
fn deleting_an_unknown_id_is_instance_not_found() {
    let mut h = with_order(EngineConfig::default());
    assert_eq!(code(&h.err(delete("nope"))), "INSTANCE_NOT_FOUND");
}

#[test]
fn re_creating_a_deleted_id_gives_a_fresh_instance_when_allowed() {
    let mut h = with_order(EngineConfig::default());
    let mut first = create("order", 1, "x");
    first.initial_ctx = Some(object(json!({"old":true})));
    h.ok(Command::CreateInstance(first));
    h.ok(Command::ApplyEvent(apply("x", "PAY")));
    h.ok(delete("x"));
    let now = h.now_ms;
    let result = h.ok(Command::CreateInstance(create("order", 1, "x")));
    assert_eq!(result["state"], "created");
    let view = h.engine.get_instance("x").unwrap();
    assert_eq!(view.ctx.get(), "{}");
    assert_eq!((view.created_at, view.updated_at), (now, now));
    assert_eq!(view.last_wal_offset, result["wal_offset"].as_u64().unwrap());
}

#[test]
fn re_creating_a_deleted_id_is_instance_exists_when_disabled() {
    let mut h = with_order(EngineConfig {
        allow_instance_recreate: false,
        ..EngineConfig::default()
    });
    h.ok(Command::CreateInstance(create("order", 1, "x")));
    let deleted_at = h.ok(delete("x"))["wal_offset"].clone();
    assert_eq!(
        code(&h.err(Command::CreateInstance(create("order", 1, "x")))),
        "INSTANCE_EXISTS"
    );
    // A checkpoint keeps a tombstone: the id stays reserved and repeats keep answering.
    h.engine.drop_deleted();
    assert_eq!(
        code(&h.err(Command::CreateInstance(create("order", 1, "x")))),
        "INSTANCE_EXISTS"
    );
    let repeat = h.ok(delete("x"));
    assert_eq!(repeat["wal_offset"], deleted_at);
    assert_eq!(repeat["applied"], false);
    assert_eq!(
        code(&h.engine.get_instance("x").unwrap_err()),
        "INSTANCE_NOT_FOUND"
    );
}

#[test]
fn after_a_checkpoint_a_deleted_instance_disappears_when_re_creation_is_allowed() {
    let mut h = with_order(EngineConfig::default());
    h.ok(Command::CreateInstance(create("order", 1, "x")));
    h.ok(delete("x"));
    h.engine.drop_deleted();
    assert_eq!(code(&h.err(delete("x"))), "INSTANCE_NOT_FOUND");
    assert_eq!(
        h.ok(Command::CreateInstance(create("order", 1, "x")))["applied"],
        true
    );
}

#[test]
fn timestamps_never_go_back_and_updated_at_follows_each_change() {
    let mut h = with_order(EngineConfig::default());
    let t0 = h.engine.last_timestamp_ms();
    h.run_at(Command::CreateInstance(create("order", 1, "x")), t0 + 100)
        .unwrap();
    // The clock went back: the record reuses the previous timestamp (§6.5).
    h.run_at(Command::ApplyEvent(apply("x", "PAY")), t0 + 50)
        .unwrap();
    let view = h.engine.get_instance("x").unwrap();
    assert_eq!((view.created_at, view.updated_at), (t0 + 100, t0 + 100));
    assert_eq!(h.records[2].0.timestamp(), t0 + 100);
    h.run_at(Command::CreateInstance(create("order", 1, "y")), t0 + 200)
        .unwrap();
    assert_eq!(h.engine.get_instance("y").unwrap().created_at, t0 + 200);
    // Failed requests and replays change no timestamp.
    h.run_at(Command::ApplyEvent(apply("x", "NOPE")), t0 + 900)
        .unwrap_err();
    assert_eq!(h.engine.last_timestamp_ms(), t0 + 200);
}

fn list(h: &Harness, query: ListInstancesParams) -> serde_json::Value {
    serde_json::to_value(h.engine.list_instances(&query)).unwrap()
}

fn ids(page: &serde_json::Value) -> Vec<String> {
    page["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn list_instances_pages_in_id_byte_order_with_filters_and_totals() {
    let mut h = with_order(EngineConfig::default());
    h.ok(put("other", 1, order_v1()));
    for id in ["b", "a", "Z", "é", "c"] {
        h.ok(Command::CreateInstance(create("order", 1, id)));
    }
    h.ok(Command::CreateInstance(create("other", 1, "aa")));
    h.ok(Command::ApplyEvent(apply("c", "PAY")));
    h.ok(Command::ApplyEvent(apply("aa", "PAY")));
    h.ok(Command::CreateInstance(create("order", 1, "d")));
    h.ok(delete("d"));

    let all = list(&h, ListInstancesParams::default());
    assert_eq!(ids(&all), ["Z", "a", "aa", "b", "c", "é"]);
    assert_eq!(
        (all["total"].as_u64(), all["has_more"].as_bool()),
        (Some(6), Some(false))
    );

    let order = ListInstancesParams {
        machine: Some("order".into()),
        ..Default::default()
    };
    assert_eq!(list(&h, order)["total"], 5);
    let paid = ListInstancesParams {
        state: Some("paid".into()),
        ..Default::default()
    };
    let page = list(&h, paid);
    assert_eq!(
        (ids(&page), page["total"].clone()),
        (vec!["aa".to_owned(), "c".to_owned()], json!(2))
    );
    let both = ListInstancesParams {
        machine: Some("order".into()),
        state: Some("paid".into()),
        ..Default::default()
    };
    assert_eq!(ids(&list(&h, both)), ["c"]);
    let unknown = ListInstancesParams {
        machine: Some("ghost".into()),
        ..Default::default()
    };
    assert_eq!(list(&h, unknown)["total"], 0);

    let first = ListInstancesParams {
        limit: Some(2),
        ..Default::default()
    };
    let page = list(&h, first);
    assert_eq!(
        (ids(&page), page["has_more"].clone()),
        (vec!["Z".to_owned(), "a".to_owned()], json!(true))
    );
    let next = ListInstancesParams {
        limit: Some(2),
        after: Some("a".into()),
        ..Default::default()
    };
    let page = list(&h, next);
    assert_eq!(ids(&page), ["aa", "b"]);
    assert_eq!(page["total"], 6, "total ignores after, offset and limit");
    let skipped = ListInstancesParams {
        limit: Some(2),
        offset: Some(1),
        after: Some("a".into()),
        ..Default::default()
    };
    assert_eq!(ids(&list(&h, skipped)), ["b", "c"]);
    let last = ListInstancesParams {
        limit: Some(2),
        after: Some("c".into()),
        ..Default::default()
    };
    let page = list(&h, last);
    assert_eq!(
        (ids(&page), page["has_more"].clone()),
        (vec!["é".to_owned()], json!(false))
    );
    let empty = ListInstancesParams {
        limit: Some(0),
        ..Default::default()
    };
    let page = list(&h, empty);
    assert_eq!(
        (
            ids(&page).len(),
            page["has_more"].clone(),
            page["total"].clone()
        ),
        (0, json!(true), json!(6))
    );
}

#[test]
fn list_entries_carry_the_get_instance_values() {
    let mut h = with_order(EngineConfig::default());
    h.ok(Command::CreateInstance(create("order", 1, "order-1")));
    h.ok(Command::ApplyEvent(apply("order-1", "PAY")));
    let view = h.engine.get_instance("order-1").unwrap();
    let page = list(&h, ListInstancesParams::default());
    assert_eq!(
        page["instances"][0],
        json!({"id":"order-1","machine":"order","version":1,"state":"paid",
            "created_at":view.created_at,"updated_at":view.updated_at,"last_wal_offset":view.last_wal_offset})
    );
}

#[test]
fn list_limit_is_capped_at_one_thousand() {
    let mut h = with_order(EngineConfig::default());
    for i in 0..1_005 {
        h.ok(Command::CreateInstance(CreateInstance {
            instance_id: InstanceIdChoice::Given(format!("i{i:05}")),
            ..create("order", 1, "")
        }));
    }
    let page = h.engine.list_instances(&ListInstancesParams {
        limit: Some(u32::MAX),
        ..Default::default()
    });
    assert_eq!(
        (page.instances.len(), page.has_more, page.total),
        (1_000, true, 1_005)
    );
}

#[test]
fn state_counts_follow_creates_applies_and_deletes() {
    let mut h = with_order(EngineConfig::default());
    for id in ["a", "b", "c"] {
        h.ok(Command::CreateInstance(create("order", 1, id)));
    }
    h.ok(Command::ApplyEvent(apply("a", "PAY")));
    h.ok(delete("b"));
    let counts = serde_json::to_value(h.engine.state_counts()).unwrap();
    assert_eq!(
        counts,
        json!([{"machine":"order","version":1,"state":"created","count":1},
               {"machine":"order","version":1,"state":"paid","count":1}])
    );
    assert_eq!(h.engine.live_instance_count(), 2);
}

#[test]
fn the_latest_record_offset_covers_creates_applies_and_deletes() {
    let mut h = with_order(EngineConfig::default());
    assert_eq!(h.engine.latest_record_offset("x"), None);
    let created = h.ok(Command::CreateInstance(create("order", 1, "x")))["wal_offset"].as_u64();
    assert_eq!(h.engine.latest_record_offset("x"), created);
    let applied = h.ok(Command::ApplyEvent(apply("x", "PAY")))["wal_offset"].as_u64();
    assert_eq!(h.engine.latest_record_offset("x"), applied);
    let deleted = h.ok(delete("x"))["wal_offset"].as_u64();
    assert_eq!(h.engine.latest_record_offset("x"), deleted);
    assert!(deleted > applied && applied > created);
}
