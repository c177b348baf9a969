//! Idempotency keys (§6.2): scopes, compared fields, replays, conflicts, retention.

use crate::engine_support::{Harness, apply, create, delete, object, order_v1, put, review, wire};
use rstmdb::engine::{
    ApplyEvent, Command, CreateInstance, DeleteInstance, Engine, EngineConfig, InstanceIdChoice,
};
use serde_json::json;

fn harness(config: EngineConfig) -> Harness {
    let mut h = Harness::new(config);
    h.ok(put("order", 1, order_v1()));
    h.ok(put("review", 1, review()));
    h
}

fn keyed_create(id: InstanceIdChoice, ctx: serde_json::Value, key: &str) -> Command {
    Command::CreateInstance(CreateInstance {
        instance_id: id,
        initial_ctx: Some(object(ctx)),
        idempotency_key: Some(key.into()),
        ..create("order", 1, "")
    })
}

fn keyed_apply(id: &str, event: &str, key: &str) -> ApplyEvent {
    ApplyEvent {
        idempotency_key: Some(key.into()),
        ..apply(id, event)
    }
}

fn keyed_delete(id: &str, key: &str) -> Command {
    Command::DeleteInstance(DeleteInstance {
        instance_id: id.into(),
        idempotency_key: Some(key.into()),
    })
}

#[test]
fn a_create_replay_returns_the_original_result_and_writes_nothing() {
    let mut h = harness(EngineConfig::default());
    let generated = |id: &str| InstanceIdChoice::Generated(id.into());
    let first = h.ok(keyed_create(generated("gen-1"), json!({"a":1,"b":2}), "k"));
    let records = h.records.len();
    // A retry without an id gets a new generated id from the server: still a replay, and it
    // returns the id generated the first time. Key order does not matter.
    let replay = h
        .run(keyed_create(generated("gen-2"), json!({"b":2,"a":1}), "k"))
        .unwrap();
    assert_eq!(replay.wal_offset, None);
    let mut expected = first.clone();
    expected["applied"] = json!(false);
    assert_eq!(serde_json::to_value(&replay.result).unwrap(), expected);
    assert_eq!(h.records.len(), records);
    assert!(h.engine.get_instance("gen-2").is_err());
    // A retry that names the recorded id is the same request too.
    let named = h.ok(keyed_create(
        InstanceIdChoice::Given("gen-1".into()),
        json!({"a":1,"b":2}),
        "k",
    ));
    assert_eq!(named, expected);
}

#[test]
fn a_create_key_reused_with_a_different_request_is_a_conflict() {
    let mut h = harness(EngineConfig::default());
    let given = |id: &str| InstanceIdChoice::Given(id.into());
    let offset = h.ok(keyed_create(given("x"), json!({"n":1}), "k"))["wal_offset"].clone();
    for different in [
        keyed_create(given("y"), json!({"n":1}), "k"),
        keyed_create(given("x"), json!({"n":1.0}), "k"),
        keyed_create(given("x"), json!({}), "k"),
        Command::CreateInstance(CreateInstance {
            version: 2,
            ..match keyed_create(given("x"), json!({"n":1}), "k") {
                Command::CreateInstance(c) => c,
                _ => unreachable!(),
            }
        }),
    ] {
        let error = h.err(different);
        assert_eq!(
            wire(&error),
            json!({"code":"CONFLICT","details":{"reason":"idempotency_key_reused","idempotency_key":"k","original_wal_offset":offset}})
        );
    }
}

#[test]
fn a_null_initial_ctx_equals_an_empty_one() {
    let mut h = harness(EngineConfig::default());
    let mut first = create("order", 1, "x");
    first.idempotency_key = Some("k".into());
    h.ok(Command::CreateInstance(first.clone()));
    first.initial_ctx = Some(object(json!({})));
    assert_eq!(h.ok(Command::CreateInstance(first))["applied"], false);
}

#[test]
fn create_keys_are_checked_before_the_instance_and_survive_delete() {
    let mut h = harness(EngineConfig::default());
    let given = InstanceIdChoice::Given("x".into());
    h.ok(keyed_create(given.clone(), json!({}), "k"));
    h.ok(delete("x"));
    assert_eq!(h.ok(keyed_create(given, json!({}), "k"))["applied"], false);
    assert!(
        h.engine.get_instance("x").is_err(),
        "the replay did not re-create it"
    );
}

#[test]
fn an_apply_replay_returns_the_original_result_even_after_the_instance_changed() {
    let mut h = harness(EngineConfig::default());
    h.ok(Command::CreateInstance(create("order", 1, "o")));
    let cmd = ApplyEvent {
        payload: Some(object(json!({"ready":true}))),
        event_id: Some("evt".into()),
        ..keyed_apply("o", "PAY", "pay")
    };
    let first = h.ok(Command::ApplyEvent(cmd.clone()));
    h.ok(Command::ApplyEvent(apply("o", "SHIP")));
    h.ok(delete("o"));
    let replay = h.run(Command::ApplyEvent(cmd)).unwrap();
    assert_eq!(replay.wal_offset, None);
    let mut expected = first;
    expected["applied"] = json!(false);
    assert_eq!(serde_json::to_value(&replay.result).unwrap(), expected);
}

#[test]
fn an_apply_key_reused_with_any_compared_field_changed_is_a_conflict() {
    let mut h = harness(EngineConfig::default());
    h.ok(Command::CreateInstance(create("review", 1, "r")));
    let base = ApplyEvent {
        payload: Some(object(json!({"score":90}))),
        expected_state: Some("review".into()),
        event_id: Some("e".into()),
        ..keyed_apply("r", "DECIDE", "k")
    };
    let offset = h.ok(Command::ApplyEvent(base.clone()))["wal_offset"].clone();
    let variants = [
        ApplyEvent {
            event: "REOPEN".into(),
            ..base.clone()
        },
        ApplyEvent {
            payload: None,
            ..base.clone()
        },
        ApplyEvent {
            payload: Some(object(json!({"score":90.0}))),
            ..base.clone()
        },
        ApplyEvent {
            expected_state: None,
            ..base.clone()
        },
        ApplyEvent {
            expected_wal_offset: Some(1),
            ..base.clone()
        },
        ApplyEvent {
            event_id: Some("other".into()),
            ..base.clone()
        },
    ];
    for variant in variants {
        let error = h.err(Command::ApplyEvent(variant));
        assert_eq!(
            crate::engine_support::reason(&error),
            "idempotency_key_reused"
        );
        assert_eq!(
            crate::engine_support::wire(&error)["details"]["original_wal_offset"],
            offset
        );
    }
    assert_eq!(h.ok(Command::ApplyEvent(base))["applied"], false);
}

#[test]
fn apply_and_delete_share_one_namespace_per_instance() {
    let mut h = harness(EngineConfig::default());
    h.ok(Command::CreateInstance(create("order", 1, "a")));
    h.ok(Command::CreateInstance(create("order", 1, "b")));
    let offset = h.ok(Command::ApplyEvent(keyed_apply("a", "PAY", "k")))["wal_offset"].clone();
    let error = h.err(keyed_delete("a", "k"));
    assert_eq!(
        wire(&error),
        json!({"code":"CONFLICT","details":{"reason":"idempotency_key_reused","idempotency_key":"k","original_wal_offset":offset}})
    );
    // The same key on another instance is another key.
    assert_eq!(
        h.ok(Command::ApplyEvent(keyed_apply("b", "PAY", "k")))["applied"],
        true
    );
    // A create key lives in the global scope, apart from the instance scopes.
    let mut c = create("order", 1, "c");
    c.idempotency_key = Some("k".into());
    assert_eq!(h.ok(Command::CreateInstance(c))["applied"], true);
}

#[test]
fn a_delete_replay_answers_after_the_instance_is_gone() {
    let mut h = harness(EngineConfig::default());
    h.ok(Command::CreateInstance(create("order", 1, "x")));
    let first = h.ok(keyed_delete("x", "d"));
    h.engine.drop_deleted();
    let replay = h.ok(keyed_delete("x", "d"));
    assert_eq!(replay["wal_offset"], first["wal_offset"]);
    assert_eq!(replay["applied"], false);
    assert_eq!(
        crate::engine_support::code(&h.err(delete("x"))),
        "INSTANCE_NOT_FOUND"
    );
}

#[test]
fn a_failed_request_does_not_consume_its_key() {
    let mut h = harness(EngineConfig::default());
    h.ok(Command::CreateInstance(create("order", 1, "o")));
    let cmd = ApplyEvent {
        expected_state: Some("created".into()),
        ..keyed_apply("o", "SHIP", "k")
    };
    assert_eq!(
        crate::engine_support::code(&h.err(Command::ApplyEvent(cmd))),
        "INVALID_TRANSITION"
    );
    let ok = ApplyEvent {
        expected_state: Some("created".into()),
        ..keyed_apply("o", "PAY", "k")
    };
    assert_eq!(h.ok(Command::ApplyEvent(ok))["applied"], true);
    // Nor does a request that writes nothing (a repeated delete).
    h.ok(delete("o"));
    let repeated = h.ok(keyed_delete("o", "d"));
    assert_eq!(repeated["applied"], false);
    h.ok(Command::CreateInstance(create("order", 1, "o")));
    assert_eq!(h.ok(keyed_delete("o", "d"))["applied"], true);
}

#[test]
fn an_expired_key_executes_anew() {
    let mut h = harness(EngineConfig {
        idempotency_ttl_ms: 1_000,
        ..EngineConfig::default()
    });
    let t = h.engine.last_timestamp_ms();
    h.run_at(Command::CreateInstance(create("review", 1, "r")), t)
        .unwrap();
    let cmd = Command::ApplyEvent(keyed_apply("r", "DECIDE", "k"));
    h.run_at(cmd.clone(), t).unwrap();
    h.run_at(Command::ApplyEvent(apply("r", "REOPEN")), t)
        .unwrap();
    let replay = h.run_at(cmd.clone(), t + 999).unwrap();
    assert!(replay.wal_offset.is_none(), "still known 999 ms later");
    let anew = h.run_at(cmd, t + 1_000).unwrap();
    assert!(anew.wal_offset.is_some(), "expired after exactly the TTL");
    assert_eq!(h.engine.idempotency_key_count(), 1);
    assert_eq!(h.replayed().encode_image(), h.engine.encode_image());
}

#[test]
fn the_oldest_keys_are_evicted_beyond_the_maximum() {
    let mut h = harness(EngineConfig {
        idempotency_max_entries: 2,
        ..EngineConfig::default()
    });
    for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
        let mut c = create("order", 1, id);
        c.idempotency_key = Some(format!("k{i}"));
        h.ok(Command::CreateInstance(c));
    }
    assert_eq!(h.engine.idempotency_key_count(), 2);
    // k0 was evicted: the same request runs again and meets the live instance.
    let mut again = create("order", 1, "a");
    again.idempotency_key = Some("k0".into());
    assert_eq!(
        crate::engine_support::code(&h.err(Command::CreateInstance(again))),
        "INSTANCE_EXISTS"
    );
    let mut kept = create("order", 1, "c");
    kept.idempotency_key = Some("k2".into());
    assert_eq!(h.ok(Command::CreateInstance(kept))["applied"], false);
    assert_eq!(h.replayed().encode_image(), h.engine.encode_image());
}

#[test]
fn flush_all_erases_everything_including_keys_and_tombstones() {
    let mut h = harness(EngineConfig {
        allow_flush_all: true,
        allow_instance_recreate: false,
        ..EngineConfig::default()
    });
    let mut c = create("order", 1, "a");
    c.idempotency_key = Some("k".into());
    h.ok(Command::CreateInstance(c.clone()));
    h.ok(Command::CreateInstance(create("order", 1, "b")));
    h.ok(Command::CreateInstance(create("order", 1, "gone")));
    h.ok(delete("gone"));
    h.engine.drop_deleted();
    let result = h.ok(Command::FlushAll);
    assert_eq!(
        result,
        json!({"flushed":true,"instances_removed":2,"machines_removed":2})
    );
    assert_eq!(h.engine.live_instance_count(), 0);
    assert_eq!(h.engine.list_machines().items.len(), 0);
    assert_eq!(h.engine.idempotency_key_count(), 0);
    h.ok(put("order", 1, order_v1()));
    assert_eq!(
        h.ok(Command::CreateInstance(c))["applied"],
        true,
        "the key is unknown again"
    );
    assert_eq!(
        h.ok(Command::CreateInstance(create("order", 1, "gone")))["applied"],
        true
    );
}

#[test]
fn instance_keys_survive_delete_and_re_create() {
    let mut h = harness(EngineConfig::default());
    h.ok(Command::CreateInstance(create("order", 1, "x")));
    let first = h.ok(Command::ApplyEvent(keyed_apply("x", "PAY", "k")));
    h.ok(delete("x"));
    h.ok(Command::CreateInstance(create("order", 1, "x")));
    let replay = h.ok(Command::ApplyEvent(keyed_apply("x", "PAY", "k")));
    assert_eq!(replay["wal_offset"], first["wal_offset"]);
    assert_eq!(replay["applied"], false);
    assert_eq!(
        h.engine.get_instance("x").unwrap().state,
        "created",
        "the replay changed nothing"
    );
}

/// The `n`th keyed apply of the byte-budget tests: DECIDE and REOPEN in turn on `r`, each with
/// about 1 KiB of payload, which the ctx then holds too (an entry keeps both).
fn large_keyed_apply(n: usize) -> Command {
    let event = if n.is_multiple_of(2) {
        "DECIDE"
    } else {
        "REOPEN"
    };
    Command::ApplyEvent(ApplyEvent {
        payload: Some(object(
            json!({"score": 90, "note": "x".repeat(1000), "n": n}),
        )),
        ..keyed_apply("r", event, &format!("k{n}"))
    })
}

fn budget_config(max_entries: usize, max_bytes: usize) -> EngineConfig {
    EngineConfig {
        idempotency_max_entries: max_entries,
        idempotency_max_bytes: max_bytes,
        ..EngineConfig::default()
    }
}

#[test]
fn the_oldest_keys_are_evicted_beyond_the_byte_budget_which_bounds_the_checkpoint() {
    const BUDGET: usize = 16 * 1024;
    let mut budgeted = harness(budget_config(100_000, BUDGET));
    // The same writes with no key kept at all: the images differ by the keys alone.
    let mut keyless = harness(budget_config(0, BUDGET));
    for h in [&mut budgeted, &mut keyless] {
        h.ok(Command::CreateInstance(create("review", 1, "r")));
        for n in 0..40 {
            h.ok(large_keyed_apply(n));
        }
    }
    let image = budgeted.engine.encode_image();
    let keys_bytes = image.len() - keyless.engine.encode_image().len();
    assert!(
        keys_bytes <= BUDGET,
        "the checkpoint holds {keys_bytes} bytes of keys, budget {BUDGET}"
    );
    assert!(
        keys_bytes > BUDGET - 2_500,
        "evicted only down to the budget: {keys_bytes}"
    );
    let kept = budgeted.engine.idempotency_key_count();
    assert_eq!(
        budgeted.engine.idempotency_key_bytes(),
        keys_bytes,
        "counted as encoded"
    );
    assert!((5..40).contains(&kept), "{kept} keys kept");
    assert_eq!(
        budgeted.replayed().encode_image(),
        image,
        "replay evicts the same"
    );

    // The newest key replays; the oldest was evicted, so its request executes anew.
    assert_eq!(budgeted.ok(large_keyed_apply(39))["applied"], false);
    let again = budgeted.ok(large_keyed_apply(0));
    assert_eq!(again["applied"], true, "{again}");

    // A checkpoint decoded under a smaller budget is cut to it at once, oldest first.
    let image = budgeted.engine.encode_image();
    let smaller = Engine::decode_image(budget_config(100_000, BUDGET / 2), &image).unwrap();
    assert!(smaller.idempotency_key_count() < budgeted.engine.idempotency_key_count());
    let cut = smaller.encode_image().len() - keyless.engine.encode_image().len();
    assert!(cut <= BUDGET / 2, "{cut}");
    let same = Engine::decode_image(budget_config(100_000, BUDGET), &image).unwrap();
    assert_eq!(same.encode_image(), image, "a round trip evicts nothing");
}

#[test]
fn an_undone_write_gives_back_its_share_of_the_byte_budget() {
    let mut h = harness(budget_config(100_000, 12 * 1024));
    h.ok(Command::CreateInstance(create("review", 1, "r")));
    for n in 0..20 {
        h.ok(large_keyed_apply(n));
    }
    // Recorded (evicting the oldest entries), then undone as a failed atomic BATCH would.
    let undone = h.run(large_keyed_apply(20)).unwrap();
    h.undo_all(vec![undone]);
    for n in 20..40 {
        h.ok(large_keyed_apply(n));
    }
    assert_eq!(
        h.replayed().encode_image(),
        h.engine.encode_image(),
        "the live table evicted exactly what a replay of the kept records evicts"
    );
}

#[test]
fn an_entry_larger_than_the_whole_budget_is_not_kept_and_evicts_nothing() {
    let mut h = harness(budget_config(100_000, 1024));
    h.ok(Command::CreateInstance(create("review", 1, "r")));
    h.ok(keyed_small_create());
    let executed = h.run(large_keyed_apply(0)).unwrap();
    assert!(executed.wal_offset.is_some());
    assert_eq!(h.engine.idempotency_key_count(), 1, "only the small entry");
    h.undo_all(vec![executed]);
    assert_eq!(h.engine.idempotency_key_count(), 1);
    assert_eq!(h.replayed().encode_image(), h.engine.encode_image());
}

/// A keyed create with no ctx: an entry of well under 100 bytes.
fn keyed_small_create() -> Command {
    let mut c = create("order", 1, "small");
    c.idempotency_key = Some("small".into());
    Command::CreateInstance(c)
}
