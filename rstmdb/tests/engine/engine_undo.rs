//! Undo and refused records: the two ways a command is taken back (atomic BATCH, §6.8, and a
//! failed WAL append), and `assign` refusing a record (e.g. `record_too_large`).

use crate::engine_support::{Harness, apply, create, delete, object, order_v1, put};
use rstmdb::engine::{ApplyEvent, Command, EngineConfig, ExecuteError, Record};
use serde_json::json;

fn harness(config: EngineConfig) -> Harness {
    let mut h = Harness::new(config);
    h.ok(put("order", 1, order_v1()));
    h
}

#[test]
fn the_atomic_batch_example_leaves_no_trace() {
    let mut h = harness(EngineConfig::default());
    let before = h.engine.encode_image();
    // §4.15: CREATE order-9, then APPLY SHIP fails; the batch undoes the create.
    let created = h
        .run(Command::CreateInstance(create("order", 1, "order-9")))
        .unwrap();
    let error = h.err(Command::ApplyEvent(apply("order-9", "SHIP")));
    assert_eq!(crate::engine_support::reason(&error), "no_transition");
    h.undo_all(vec![created]);
    assert_eq!(
        crate::engine_support::code(&h.engine.get_instance("order-9").unwrap_err()),
        "INSTANCE_NOT_FOUND"
    );
    assert_eq!(h.engine.encode_image(), before);
    assert_eq!(h.engine.live_instance_count(), 0);
}

#[test]
fn later_sub_ops_see_earlier_ones_and_undo_restores_every_part_of_the_state() {
    let mut h = harness(EngineConfig {
        idempotency_max_entries: 1,
        allow_flush_all: true,
        ..EngineConfig::default()
    });
    let mut seed = create("order", 1, "old");
    seed.idempotency_key = Some("seed".into());
    h.ok(Command::CreateInstance(seed));
    h.ok(Command::CreateInstance(create("order", 1, "x")));
    h.ok(delete("x"));
    let before = h.engine.encode_image();
    let counts_before = h.engine.state_counts();
    let timestamp_before = h.engine.last_timestamp_ms();

    let mut executed = Vec::new();
    executed.push(h.run(put("fresh", 3, order_v1())).unwrap());
    let mut recreate = create("fresh", 3, "x");
    recreate.idempotency_key = Some("evicts-seed".into());
    executed.push(h.run(Command::CreateInstance(recreate)).unwrap());
    executed.push(
        h.run(Command::ApplyEvent(ApplyEvent {
            payload: Some(object(json!({"n":1}))),
            idempotency_key: Some("pay".into()),
            ..apply("x", "PAY")
        }))
        .unwrap(),
    );
    executed.push(h.run(delete("old")).unwrap());
    executed.push(h.run(Command::FlushAll).unwrap());
    h.now_ms += 10_000;
    assert_eq!(h.engine.live_instance_count(), 0);

    h.undo_all(executed);
    assert_eq!(h.engine.encode_image(), before);
    assert_eq!(h.engine.state_counts(), counts_before);
    assert_eq!(h.engine.last_timestamp_ms(), timestamp_before);
    assert!(h.engine.get_instance("x").is_err());
    assert_eq!(h.engine.list_machines().items.len(), 1);
    // The evicted key is back.
    let mut seed = create("order", 1, "old");
    seed.idempotency_key = Some("seed".into());
    assert_eq!(h.ok(Command::CreateInstance(seed))["applied"], false);
}

#[test]
fn a_refused_record_changes_nothing_and_records_no_key() {
    let mut h = harness(EngineConfig::default());
    h.ok(Command::CreateInstance(create("order", 1, "o")));
    let before = h.engine.encode_image();
    let cmd = Command::ApplyEvent(ApplyEvent {
        payload: Some(object(json!({"big":"x".repeat(100)}))),
        idempotency_key: Some("k".into()),
        ..apply("o", "PAY")
    });
    let refused = h.engine.execute(&cmd, h.now_ms + 50, |record: &Record| {
        Err::<u64, _>(serde_json::to_vec(record).unwrap().len())
    });
    match refused {
        Err(ExecuteError::Assign(size)) => assert!(size > 100),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(h.engine.encode_image(), before);
    // The key was not consumed: the retry applies.
    assert_eq!(h.ok(cmd)["applied"], true);
}

#[test]
fn commands_that_write_nothing_never_call_assign() {
    let mut h = harness(EngineConfig::default());
    h.ok(Command::CreateInstance(create("order", 1, "o")));
    h.ok(delete("o"));
    for cmd in [put("order", 1, order_v1()), delete("o")] {
        let executed = h
            .engine
            .execute(&cmd, 0, |_: &Record| -> Result<u64, ()> {
                panic!("assign called for a command that writes nothing")
            })
            .unwrap();
        assert!(executed.record.is_none() && executed.wal_offset.is_none());
        h.engine.undo(executed.undo);
    }
}

#[test]
fn within_a_batch_a_repeated_key_is_a_replay_and_undo_forgets_the_key() {
    let mut h = harness(EngineConfig::default());
    let before = h.engine.encode_image();
    let mut keyed = create("order", 1, "a");
    keyed.idempotency_key = Some("k".into());
    let first = h.run(Command::CreateInstance(keyed.clone())).unwrap();
    let second = h.run(Command::CreateInstance(keyed.clone())).unwrap();
    assert_eq!(
        second.wal_offset, None,
        "the second sub-op replays the first"
    );
    let mut conflicting = keyed.clone();
    conflicting.version = 2;
    assert_eq!(
        crate::engine_support::reason(&h.err(Command::CreateInstance(conflicting))),
        "idempotency_key_reused"
    );
    h.undo_all(vec![first, second]);
    assert_eq!(h.engine.encode_image(), before);
    assert_eq!(h.ok(Command::CreateInstance(keyed))["applied"], true);
}
