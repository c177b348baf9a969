//! The worked example of spec §4.0: the same writes at the same offsets and timestamps give
//! exactly the results, entries and reads that the examples of §4 show.

use crate::engine_support::{Harness, apply, create, delete, object, order_v1, put};
use rstmdb::engine::{ApplyEvent, Command, EngineConfig};
use rstmdb_client::params::ListInstancesParams;
use serde_json::{Value, json};

/// Runs a command as the record at `offset`, stamped `timestamp`.
fn at(h: &mut Harness, offset: u64, timestamp: i64, command: Command) -> Value {
    h.next_offset = offset;
    let executed = h.run_at(command, timestamp).expect("the example succeeds");
    assert_eq!(
        executed.wal_offset,
        Some(offset),
        "the example writes a record"
    );
    serde_json::to_value(&executed.result).unwrap()
}

fn order_v2() -> Value {
    json!({"states":["created","paid","shipped","cancelled"],"initial":"created","transitions":[
        {"from":"created","event":"PAY","to":"paid"},
        {"from":"paid","event":"SHIP","to":"shipped","guard":"ctx.ready"},
        {"from":["created","paid"],"event":"CANCEL","to":"cancelled"}]})
}

fn pay_1() -> Command {
    Command::ApplyEvent(ApplyEvent {
        payload: Some(object(json!({"amount":42.5,"ready":true}))),
        event_id: Some("evt-1".into()),
        idempotency_key: Some("pay-1".into()),
        ..apply("order-1", "PAY")
    })
}

/// Records 1 to 8 of the §4.0 table.
fn worked_example() -> Harness {
    let mut h = Harness::new(EngineConfig {
        allow_flush_all: true,
        ..EngineConfig::default()
    });
    let put_1 = at(
        &mut h,
        1099511627776,
        1767225599000,
        put("order", 1, order_v1()),
    );
    assert_eq!(
        put_1,
        json!({"machine":"order","version":1,"stored_checksum":"eef67bea","created":true})
    );
    let mut create_1 = create("order", 1, "order-1");
    create_1.initial_ctx = Some(object(json!({"customer":"alice"})));
    create_1.idempotency_key = Some("create-order-1".into());
    let created = at(
        &mut h,
        1099511628107,
        1767225600000,
        Command::CreateInstance(create_1),
    );
    assert_eq!(
        created,
        json!({"instance_id":"order-1","state":"created","wal_offset":1099511628107_u64,"applied":true})
    );
    let paid = at(&mut h, 1099511628333, 1767225601234, pay_1());
    assert_eq!(
        paid,
        json!({"from_state":"created","to_state":"paid","ctx":{"customer":"alice","amount":42.5,"ready":true},
            "wal_offset":1099511628333_u64,"applied":true,"event_id":"evt-1"})
    );
    at(
        &mut h,
        1099511628652,
        1767225602000,
        put("order", 2, order_v2()),
    );
    for (offset, timestamp, id, customer) in [
        (1099511629057, 1767225603000, "order-2", "bob"),
        (1099511629246, 1767225604000, "order-3", "carol"),
    ] {
        let mut c = create("order", 2, id);
        c.initial_ctx = Some(object(json!({"customer": customer})));
        at(&mut h, offset, timestamp, Command::CreateInstance(c));
    }
    let pay_3 = Command::ApplyEvent(ApplyEvent {
        payload: Some(object(json!({"amount":10}))),
        ..apply("order-3", "PAY")
    });
    at(&mut h, 1099511629437, 1767225605000, pay_3);
    let deleted = at(&mut h, 1099511629681, 1767225606000, delete("order-2"));
    assert_eq!(
        deleted,
        json!({"instance_id":"order-2","deleted":true,"wal_offset":1099511629681_u64,"applied":true})
    );
    h
}

#[test]
fn the_first_two_entries_are_those_wal_read_shows() {
    let h = worked_example();
    let entries: Vec<Value> = h.records[..2]
        .iter()
        .map(|(record, _)| serde_json::to_value(record).unwrap())
        .collect();
    assert_eq!(
        entries,
        [
            json!({"type":"put_machine","machine":"order","version":1,"definition_hash":"eef67bea",
                "definition":order_v1(),"timestamp":1767225599000_i64}),
            json!({"type":"create_instance","instance_id":"order-1","machine":"order","version":1,
                "initial_state":"created","initial_ctx":{"customer":"alice"},
                "idempotency_key":"create-order-1","timestamp":1767225600000_i64}),
        ]
    );
}

#[test]
fn reads_between_records_8_and_9_match_the_examples() {
    let h = worked_example();
    assert_eq!(
        serde_json::to_value(h.engine.get_instance("order-1").unwrap()).unwrap(),
        json!({"instance_id":"order-1","machine":"order","version":1,"state":"paid",
            "ctx":{"customer":"alice","amount":42.5,"ready":true},"last_event_id":"evt-1",
            "last_wal_offset":1099511628333_u64,"created_at":1767225600000_i64,"updated_at":1767225601234_i64})
    );
    let query = ListInstancesParams {
        machine: Some("order".into()),
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(h.engine.list_instances(&query)).unwrap(),
        json!({"instances":[{"id":"order-1","machine":"order","version":1,"state":"paid",
            "created_at":1767225600000_i64,"updated_at":1767225601234_i64,"last_wal_offset":1099511628333_u64}],
            "total":2,"has_more":true})
    );
    assert_eq!(
        serde_json::to_value(h.engine.list_machines()).unwrap(),
        json!({"items":[{"machine":"order","versions":[1,2]}]})
    );
}

#[test]
fn the_replay_and_the_failures_of_the_examples_write_nothing() {
    let mut h = worked_example();
    let replay = h.ok(pay_1());
    assert_eq!(
        replay,
        json!({"from_state":"created","to_state":"paid","ctx":{"customer":"alice","amount":42.5,"ready":true},
            "wal_offset":1099511628333_u64,"applied":false,"event_id":"evt-1"})
    );
    let guard = h.err(Command::ApplyEvent(apply("order-3", "SHIP")));
    assert_eq!(
        crate::engine_support::wire(&guard)["details"],
        json!({"reason":"guard_failed","state":"paid","event":"SHIP","guards":["ctx.ready"]})
    );
    // The atomic batch of §4.15: CREATE order-9 runs, APPLY SHIP fails, the create is undone.
    let created = h
        .run(Command::CreateInstance(create("order", 1, "order-9")))
        .unwrap();
    let failed = h.err(Command::ApplyEvent(apply("order-9", "SHIP")));
    assert_eq!(
        crate::engine_support::wire(&failed)["details"],
        json!({"reason":"no_transition","state":"created","event":"SHIP"})
    );
    h.undo_all(vec![created]);
    assert!(h.engine.get_instance("order-9").is_err());
    assert_eq!(h.records.len(), 8);
}

#[test]
fn flush_all_removes_two_instances_and_two_machine_versions() {
    let mut h = worked_example();
    let flushed = at(&mut h, 1099511629781, 1767225609000, Command::FlushAll);
    assert_eq!(
        flushed,
        json!({"flushed":true,"instances_removed":2,"machines_removed":2})
    );
    assert_eq!(
        serde_json::to_value(&h.records.last().unwrap().0).unwrap(),
        json!({"type":"flush_all","timestamp":1767225609000_i64})
    );
}
