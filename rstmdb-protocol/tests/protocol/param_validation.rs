//! The §4.0 param rules, checked op by op against each op's param table: missing and null
//! required params, wrong JSON types, integers written as `1.0` or `1e3`, range limits,
//! idempotency key lengths, null optional params, and the table order of the checks.

use rstmdb_protocol::{Op, OpParams, RcpError};
use serde_json::{Map, Value, json};

/// One row of an op's param table.
struct Row {
    name: &'static str,
    /// The Type column, which is what `expected` must say.
    expected: &'static str,
    required: bool,
}

const fn req(name: &'static str, expected: &'static str) -> Row {
    Row {
        name,
        expected,
        required: true,
    }
}

const fn opt(name: &'static str, expected: &'static str) -> Row {
    Row {
        name,
        expected,
        required: false,
    }
}

/// Each op with params: a valid params object and its table, in table order.
fn tables() -> Vec<(Op, Value, Vec<Row>)> {
    vec![
        (
            Op::Hello,
            json!({"protocol_version": 1}),
            vec![
                req("protocol_version", "u16"),
                opt("client_name", "string"),
                opt("wire_modes", "string[]"),
                opt("features", "string[]"),
            ],
        ),
        (
            Op::Auth,
            json!({"method": "bearer", "token": "t"}),
            vec![req("method", "string"), req("token", "string")],
        ),
        (
            Op::PutMachine,
            json!({"machine": "m", "version": 0, "definition": {}}),
            vec![req("machine", "string"), req("version", "u32")],
        ),
        (
            Op::GetMachine,
            json!({"machine": "m", "version": 1}),
            vec![req("machine", "string"), req("version", "u32")],
        ),
        (
            Op::CreateInstance,
            json!({"machine": "m", "version": 1}),
            vec![
                req("machine", "string"),
                req("version", "u32"),
                opt("instance_id", "string"),
                opt("initial_ctx", "object or null"),
                opt("idempotency_key", "string"),
            ],
        ),
        (
            Op::GetInstance,
            json!({"instance_id": "i"}),
            vec![req("instance_id", "string")],
        ),
        (
            Op::ListInstances,
            json!({}),
            vec![
                opt("machine", "string"),
                opt("state", "string"),
                opt("limit", "u32"),
                opt("offset", "u32"),
                opt("after", "string"),
            ],
        ),
        (
            Op::DeleteInstance,
            json!({"instance_id": "i"}),
            vec![
                req("instance_id", "string"),
                opt("idempotency_key", "string"),
            ],
        ),
        (
            Op::ApplyEvent,
            json!({"instance_id": "i", "event": "E"}),
            vec![
                req("instance_id", "string"),
                req("event", "string"),
                opt("payload", "object or null"),
                opt("expected_state", "string"),
                opt("expected_wal_offset", "u64"),
                opt("event_id", "string"),
                opt("idempotency_key", "string"),
            ],
        ),
        (
            Op::SnapshotInstance,
            json!({"instance_id": "i"}),
            vec![req("instance_id", "string")],
        ),
        (
            Op::WalRead,
            json!({"from_offset": 0}),
            vec![req("from_offset", "u64"), opt("limit", "u64")],
        ),
        (Op::Compact, json!({}), vec![opt("force_snapshot", "bool")]),
        (
            Op::WatchInstance,
            json!({"instance_id": "i"}),
            vec![
                req("instance_id", "string"),
                opt("include_ctx", "bool"),
                opt("from_offset", "u64"),
            ],
        ),
        (
            Op::WatchAll,
            json!({}),
            vec![
                opt("include_ctx", "bool"),
                opt("from_offset", "u64"),
                opt("machines", "string[]"),
                opt("from_states", "string[]"),
                opt("to_states", "string[]"),
                opt("events", "string[]"),
            ],
        ),
        (
            Op::Unwatch,
            json!({"subscription_id": "s"}),
            vec![req("subscription_id", "string")],
        ),
    ]
}

/// A value of the wrong JSON type for `expected`.
fn wrong_type(expected: &str) -> Value {
    match expected {
        "string" => json!(5),
        "u16" | "u32" | "u64" => json!("1"),
        "string[]" => json!(["a", 1]),
        "object or null" => json!([]),
        "bool" => json!("true"),
        other => panic!("no wrong value for {other}"),
    }
}

fn with(base: &Value, name: &str, value: Value) -> Map<String, Value> {
    let mut params = base.as_object().cloned().expect("bases are objects");
    params.insert(name.to_owned(), value);
    params
}

fn without(base: &Value, name: &str) -> Map<String, Value> {
    let mut params = base.as_object().cloned().expect("bases are objects");
    params.remove(name);
    params
}

fn parse(op: Op, params: &Map<String, Value>) -> Result<OpParams, RcpError> {
    OpParams::parse(op, params)
}

fn details(op: Op, params: &Map<String, Value>) -> Value {
    let error = parse(op, params).expect_err("params should be refused");
    assert_eq!(error.code.as_str(), "BAD_REQUEST");
    Value::Object(error.details.unwrap_or_default())
}

#[test]
fn valid_params_parse_and_unknown_params_are_ignored() {
    for (op, base, _) in tables() {
        let params = with(&base, "no_such_param", json!({"x": [1, 2]}));
        let parsed = parse(op, &params).unwrap_or_else(|e| panic!("{op}: {e}"));
        assert_eq!(parsed.op(), op);
    }
}

#[test]
fn missing_or_null_required_params_are_missing_param() {
    for (op, base, rows) in tables() {
        for row in rows.iter().filter(|row| row.required) {
            let expected = json!({"reason": "missing_param", "param": row.name});
            assert_eq!(
                details(op, &without(&base, row.name)),
                expected,
                "{op} {}",
                row.name
            );
            assert_eq!(
                details(op, &with(&base, row.name, Value::Null)),
                expected,
                "{op} null"
            );
        }
    }
}

#[test]
fn optional_params_may_be_null() {
    for (op, base, rows) in tables() {
        for row in rows.iter().filter(|row| !row.required) {
            let params = with(&base, row.name, Value::Null);
            assert!(parse(op, &params).is_ok(), "{op} {} = null", row.name);
        }
    }
}

#[test]
fn wrong_json_types_are_invalid_param_with_the_type_column() {
    for (op, base, rows) in tables() {
        for row in &rows {
            let params = with(&base, row.name, wrong_type(row.expected));
            assert_eq!(
                details(op, &params),
                json!({"reason": "invalid_param", "param": row.name, "expected": row.expected}),
                "{op} {}",
                row.name
            );
        }
    }
}

#[test]
fn integers_must_be_written_without_fraction_or_exponent() {
    for (op, base, rows) in tables() {
        for row in rows.iter().filter(|row| row.expected.starts_with('u')) {
            assert!(
                parse(op, &with(&base, row.name, json!(1))).is_ok(),
                "{op} {} = 1",
                row.name
            );
            for spelling in ["1.0", "1e3", "-1", "0.5"] {
                let value: Value = serde_json::from_str(spelling).unwrap();
                assert_eq!(
                    details(op, &with(&base, row.name, value)),
                    json!({"reason": "invalid_param", "param": row.name, "expected": row.expected}),
                    "{op} {} = {spelling}",
                    row.name
                );
            }
        }
    }
}

#[test]
fn integers_out_of_their_type_range_are_invalid_param() {
    let limits = [
        ("u16", "65535", "65536"),
        ("u32", "4294967295", "4294967296"),
    ];
    let u64_overflow: Value = serde_json::from_str("18446744073709551616").unwrap();
    for (op, base, rows) in tables() {
        for row in rows.iter().filter(|row| row.expected.starts_with('u')) {
            let refused = |value: Value| {
                assert_eq!(
                    details(op, &with(&base, row.name, value)),
                    json!({"reason": "invalid_param", "param": row.name, "expected": row.expected}),
                    "{op} {}",
                    row.name
                );
            };
            match limits.iter().find(|(ty, ..)| *ty == row.expected) {
                Some((_, max, over)) => {
                    let max: Value = serde_json::from_str(max).unwrap();
                    assert!(parse(op, &with(&base, row.name, max)).is_ok());
                    refused(serde_json::from_str(over).unwrap());
                }
                None => {
                    assert!(parse(op, &with(&base, row.name, json!(u64::MAX))).is_ok());
                    refused(u64_overflow.clone());
                }
            }
        }
    }
}

#[test]
fn idempotency_keys_must_be_1_to_1024_bytes() {
    let length_error = json!({
        "reason": "invalid_param", "param": "idempotency_key",
        "expected": "string of 1 to 1024 bytes"
    });
    for (op, base, rows) in tables() {
        if !rows.iter().any(|row| row.name == "idempotency_key") {
            continue;
        }
        for key in [String::new(), "k".repeat(1025), "é".repeat(513)] {
            let params = with(&base, "idempotency_key", json!(key));
            assert_eq!(
                details(op, &params),
                length_error,
                "{op} key of {} bytes",
                key.len()
            );
        }
        for key in ["k".to_owned(), "k".repeat(1024), "é".repeat(512)] {
            assert!(
                parse(op, &with(&base, "idempotency_key", json!(key))).is_ok(),
                "{op}"
            );
        }
    }
}

#[test]
fn the_first_bad_param_in_table_order_is_reported() {
    for (op, base, rows) in tables() {
        for first in 0..rows.len() {
            let mut params = base.as_object().cloned().unwrap();
            for row in &rows[first..] {
                params.insert(row.name.to_owned(), wrong_type(row.expected));
            }
            assert_eq!(
                details(op, &params)["param"],
                json!(rows[first].name),
                "{op}: all params from #{first} on are bad"
            );
        }
    }
}

#[test]
fn a_missing_required_param_after_a_bad_earlier_one_is_not_reported() {
    let params = json!({"version": "1"}).as_object().cloned().unwrap();
    assert_eq!(
        details(Op::GetMachine, &params),
        json!({"reason": "missing_param", "param": "machine"})
    );
    let params = json!({"machine": 1}).as_object().cloned().unwrap();
    assert_eq!(
        details(Op::GetMachine, &params),
        json!({"reason": "invalid_param", "param": "machine", "expected": "string"})
    );
}

#[test]
fn put_machine_keeps_a_non_object_definition_for_the_validator() {
    for definition in [json!("text"), json!([1]), json!(3), json!(false)] {
        let params =
            json!({"machine": "m", "version": 1, "definition": definition, "checksum": [0]});
        let Ok(OpParams::PutMachine(parsed)) = parse(Op::PutMachine, params.as_object().unwrap())
        else {
            panic!("a non-object definition is not a param error");
        };
        assert_eq!(parsed.definition, definition);
    }
    let params = json!({"machine": "m", "version": 1, "definition": null});
    assert_eq!(
        details(Op::PutMachine, params.as_object().unwrap()),
        json!({"reason": "missing_param", "param": "definition"})
    );
}

#[test]
fn defaults_apply_when_optional_params_are_absent() {
    let empty = Map::new();
    let Ok(OpParams::WatchAll(watch)) = parse(Op::WatchAll, &empty) else {
        panic!()
    };
    assert!(watch.include_ctx);
    assert!(watch.machines.is_empty());
    let Ok(OpParams::ListInstances(list)) = parse(Op::ListInstances, &empty) else {
        panic!()
    };
    assert_eq!((list.page_size(), list.skip()), (100, 0));
    let capped = json!({"limit": 5000});
    let Ok(OpParams::ListInstances(list)) = parse(Op::ListInstances, capped.as_object().unwrap())
    else {
        panic!()
    };
    assert_eq!(list.page_size(), 1000);
    let create = json!({"machine": "m", "version": 1, "initial_ctx": null});
    let Ok(OpParams::CreateInstance(create)) =
        parse(Op::CreateInstance, create.as_object().unwrap())
    else {
        panic!()
    };
    assert!(create.initial_ctx.is_empty());
    let Ok(OpParams::Compact(compact)) = parse(Op::Compact, &empty) else {
        panic!()
    };
    assert!(!compact.force_snapshot);
}

#[test]
fn ops_that_ignore_params_accept_anything_inside_the_object() {
    let junk = json!({"protocol_version": "x", "ops": 5, "instance_id": null});
    for op in [
        Op::Ping,
        Op::Bye,
        Op::Info,
        Op::ReplicationStatus,
        Op::ListMachines,
        Op::WalStats,
        Op::FlushAll,
        Op::Replicate,
        Op::ReplicateAck,
    ] {
        assert_eq!(parse(op, junk.as_object().unwrap()).map(|p| p.op()), Ok(op));
    }
}

#[test]
fn batch_sub_op_params_are_checked_later_like_the_op_alone() {
    let params = json!({"ops": [{"op": "GET_INSTANCE", "params": {"instance_id": 7}}]});
    let Ok(OpParams::Batch(batch)) = parse(Op::Batch, params.as_object().unwrap()) else {
        panic!("a bad sub-op param is not batch_invalid");
    };
    let sub = &batch.ops[0];
    assert_eq!(
        details(sub.op, &sub.params),
        json!({"reason": "invalid_param", "param": "instance_id", "expected": "string"})
    );
}
