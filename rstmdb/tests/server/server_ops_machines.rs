//! PUT_MACHINE, GET_MACHINE and LIST_MACHINES against the real server (spec §4.7–§4.9, §6.7,
//! §7.10): happy paths, every listed error with its details, and the `meta` rule of §3.4.

use rstmdb_client::{ErrorCode, Op};
use rstmdb_testkit::ops::*;
use serde_json::json;

#[tokio::test]
async fn put_machine_stores_a_new_version_and_reports_the_spec_checksum() {
    let server = OpsServer::start().await;
    let client = server.client().await;
    let raw = ok(
        &client,
        Op::PutMachine,
        json!({"machine": "order", "version": 1, "definition": order_definition()}),
    )
    .await;
    assert_eq!(
        raw.result,
        obj(
            json!({"machine": "order", "version": 1, "stored_checksum": ORDER_CHECKSUM, "created": true})
        )
    );
    assert_eq!(
        meta_offset(&raw),
        Some(FIRST_OFFSET),
        "first record of a fresh WAL"
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn re_putting_an_equivalent_definition_writes_nothing_and_carries_no_meta() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let before = latest_offset(&client).await;
    // "from" as a list and an unknown key normalise to the same definition (§6.7).
    let mut same = order_definition();
    same["transitions"][0]["from"] = json!(["created"]);
    same["extra"] = json!("ignored");
    let raw = ok(
        &client,
        Op::PutMachine,
        json!({"machine": "order", "version": 1, "definition": same, "checksum": 42}),
    )
    .await;
    assert_eq!(raw.result["created"], json!(false));
    assert_eq!(raw.result["stored_checksum"], json!(ORDER_CHECKSUM));
    assert_eq!(meta_offset(&raw), None);
    assert_eq!(latest_offset(&client).await, before, "nothing was appended");
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_different_definition_for_an_existing_version_is_refused_with_both_checksums() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let other = json!({"states": ["a", "b"], "initial": "a",
        "transitions": [{"from": ["a"], "event": "GO", "to": "b"}]});
    // Spec §6.7 test vector 3: this definition's checksum.
    let outcome = call(
        &client,
        Op::PutMachine,
        json!({"machine": "order", "version": 1, "definition": other}),
    )
    .await;
    assert_error(
        outcome,
        ErrorCode::MachineVersionExists,
        json!({"reason": "version_exists", "machine": "order", "version": 1,
            "existing_checksum": ORDER_CHECKSUM, "new_checksum": "cd587fc1"}),
    );
    let stored = client.get_machine("order", 1).await.expect("GET_MACHINE");
    assert_eq!(stored.checksum, ORDER_CHECKSUM, "the original stays");
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn the_version_limit_refuses_a_new_version_but_never_a_re_put() {
    let config = ServerConfig::default().with_engine(|engine| engine.max_machine_versions = 2);
    let server = OpsServer::start_with(config).await;
    let client = server.client().await;
    for version in [0, 7] {
        let put = client
            .put_machine("order", version, order_definition())
            .await;
        assert!(put.expect("within the limit").created);
    }
    let outcome = client.put_machine("order", 8, order_definition()).await;
    assert_client_error(
        outcome,
        ErrorCode::MachineVersionLimitExceeded,
        json!({"reason": "version_limit", "machine": "order", "limit": 2}),
    );
    let again = client.put_machine("order", 7, order_definition()).await;
    assert!(!again.expect("a re-put is never limited").created);
    // An existing version with a different definition is step 3, before the limit (step 4).
    let outcome = client
        .put_machine(
            "order",
            7,
            json!({"states": ["a"], "initial": "a", "transitions": []}),
        )
        .await;
    assert_eq!(
        outcome.map_err(server_error).expect_err("differs").code,
        ErrorCode::MachineVersionExists
    );
    let other_name = client.put_machine("invoice", 1, order_definition()).await;
    assert!(other_name.expect("the limit is per name").created);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn params_are_checked_in_table_order_before_the_definition() {
    let server = OpsServer::start().await;
    let client = server.client().await;
    let cases = [
        (
            json!({"version": 1, "definition": order_definition()}),
            json!({"reason": "missing_param", "param": "machine"}),
        ),
        (
            json!({"machine": 5, "version": "x"}),
            json!({"reason": "invalid_param", "param": "machine", "expected": "string"}),
        ),
        (
            json!({"machine": "m", "version": 1.0, "definition": order_definition()}),
            json!({"reason": "invalid_param", "param": "version", "expected": "u32"}),
        ),
        (
            json!({"machine": "m", "version": 4294967296u64, "definition": order_definition()}),
            json!({"reason": "invalid_param", "param": "version", "expected": "u32"}),
        ),
        (
            json!({"machine": "m", "version": 1}),
            json!({"reason": "missing_param", "param": "definition"}),
        ),
        (
            json!({"machine": "m", "version": 1, "definition": null}),
            json!({"reason": "missing_param", "param": "definition"}),
        ),
    ];
    for (params, details) in cases {
        let outcome = call(&client, Op::PutMachine, params).await;
        assert_error(outcome, ErrorCode::BadRequest, details);
    }
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_definition_that_is_not_an_object_is_an_invalid_definition() {
    let server = OpsServer::start().await;
    let client = server.client().await;
    for definition in [json!([1, 2]), json!("text"), json!(3), json!(true)] {
        let outcome = call(
            &client,
            Op::PutMachine,
            json!({"machine": "m", "version": 1, "definition": definition}),
        )
        .await;
        assert_error(
            outcome,
            ErrorCode::BadRequest,
            json!({"reason": "invalid_definition", "kind": "not_object", "pointer": ""}),
        );
    }
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn invalid_definitions_report_kind_pointer_and_text_as_in_section_7_10() {
    let server = OpsServer::start().await;
    let client = server.client().await;
    let go = |from: serde_json::Value, to: &str| json!({"from": from, "event": "GO", "to": to});
    let cases = [
        (
            json!({"states": ["a"], "initial": "a"}),
            json!({"reason": "invalid_definition", "kind": "missing_field", "pointer": "",
                "text": "transitions", "field": "transitions"}),
        ),
        (
            json!({"states": ["a", "b"], "initial": "a", "transitions": [
                go(json!("a"), "b"), go(json!("b"), "a"), {"from": "a", "event": "X"}]}),
            json!({"reason": "invalid_definition", "kind": "missing_field",
                "pointer": "/transitions/2", "text": "to", "field": "to"}),
        ),
        (
            json!({"states": ["a", "b", "c"], "initial": "a", "transitions": [
                go(json!(["a"]), "c"), go(json!("a"), "b")]}),
            json!({"reason": "invalid_definition", "kind": "unreachable_transition",
                "pointer": "/transitions/1", "shadowed_by": 0}),
        ),
        (
            json!({"states": ["a"], "initial": "z", "transitions": []}),
            json!({"reason": "invalid_definition", "kind": "unknown_initial",
                "pointer": "/initial", "text": "z"}),
        ),
        (
            json!({"states": ["a"], "initial": "a", "transitions": [go(json!("a"), "q")]}),
            json!({"reason": "invalid_definition", "kind": "unknown_target",
                "pointer": "/transitions/0/to", "text": "q"}),
        ),
        (
            json!({"states": ["a"], "initial": "a", "transitions": [go(json!(["a", "w"]), "a")]}),
            json!({"reason": "invalid_definition", "kind": "unknown_source",
                "pointer": "/transitions/0/from/1", "text": "w"}),
        ),
        (
            json!({"states": ["a", 3], "initial": "a", "transitions": []}),
            json!({"reason": "invalid_definition", "kind": "wrong_type", "pointer": "/states/1"}),
        ),
    ];
    for (definition, details) in cases {
        let outcome = call(
            &client,
            Op::PutMachine,
            json!({"machine": "m", "version": 1, "definition": definition}),
        )
        .await;
        assert_error(outcome, ErrorCode::BadRequest, details);
    }
    assert!(client.list_machines().await.expect("LIST").items.is_empty());
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn an_invalid_guard_reports_the_section_7_10_example_details() {
    let server = OpsServer::start().await;
    let client = server.client().await;
    let definition = json!({"states": ["a", "b"], "initial": "a", "transitions": [
        {"from": "a", "event": "GO", "to": "b"},
        {"from": "b", "event": "BACK", "to": "a", "guard": "ctx.ok foo"}]});
    let outcome = call(
        &client,
        Op::PutMachine,
        json!({"machine": "m", "version": 1, "definition": definition}),
    )
    .await;
    assert_error(
        outcome,
        ErrorCode::BadRequest,
        json!({"reason": "invalid_guard", "kind": "trailing_input",
            "pointer": "/transitions/1/guard", "guard": "ctx.ok foo",
            "span": {"offset": 7, "length": 3}, "line": 1, "column": 8, "text": "foo"}),
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn get_machine_returns_the_normalised_definition_and_checksum() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let raw = ok(
        &client,
        Op::GetMachine,
        json!({"machine": "order", "version": 1}),
    )
    .await;
    assert_eq!(
        raw.result,
        obj(
            json!({"definition": {"states": ["created", "paid", "shipped"], "initial": "created",
            "transitions": [{"from": ["created"], "event": "PAY", "to": "paid"},
                {"from": ["paid"], "event": "SHIP", "to": "shipped", "guard": "ctx.ready"}]},
            "checksum": ORDER_CHECKSUM})
        )
    );
    assert_eq!(meta_offset(&raw), None, "reads carry no meta");
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn get_machine_of_an_unknown_name_or_version_is_machine_not_found() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    for (machine, version) in [("order", 2), ("nope", 1)] {
        let outcome = client.get_machine(machine, version).await;
        assert_client_error(
            outcome,
            ErrorCode::MachineNotFound,
            json!({"reason": "machine_not_found", "machine": machine, "version": version}),
        );
    }
    let outcome = call(&client, Op::GetMachine, json!({"machine": "order"})).await;
    assert_error(
        outcome,
        ErrorCode::BadRequest,
        json!({"reason": "missing_param", "param": "version"}),
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn list_machines_sorts_names_by_bytes_and_versions_ascending() {
    let server = OpsServer::start().await;
    let client = server.client().await;
    assert_eq!(
        ok(&client, Op::ListMachines, json!({})).await.result,
        obj(json!({"items": []}))
    );
    for (name, version) in [
        ("order", 9),
        ("Zeta", 1),
        ("order", 0),
        ("alpha", 3),
        ("order", 2),
    ] {
        client
            .put_machine(name, version, order_definition())
            .await
            .expect("PUT_MACHINE");
    }
    let raw = ok(&client, Op::ListMachines, json!({"ignored": true})).await;
    assert_eq!(
        raw.result,
        obj(json!({"items": [
            {"machine": "Zeta", "versions": [1]},
            {"machine": "alpha", "versions": [3]},
            {"machine": "order", "versions": [0, 2, 9]}]}))
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn the_checksum_test_vectors_hold_through_the_server() {
    let server = OpsServer::start().await;
    let client = server.client().await;
    // Spec §6.7 vectors 2 and 4, sent as raw text so number spellings reach the server intact.
    let vectors = [
        (
            r#"{"states":["a","b"],"initial":"a","transitions":[{"from":"a","event":"GO","to":"b","guard":null,"note":"x"}],"meta":{"z":1,"a":{"y":"q\"/\u00e9\n","b":[2.5,true,null,1.0,1e2]}},"extra":1}"#,
            "467966b7",
            json!({"states": ["a", "b"], "initial": "a",
                "transitions": [{"from": ["a"], "event": "GO", "to": "b"}],
                "meta": {"a": {"b": [2.5, true, null, 1.0, 100.0], "y": "q\"/é\n"}, "z": 1}}),
        ),
        (
            r#"{"states":["a"],"initial":"a","transitions":[],"meta":{"big":1e20}}"#,
            "4f9ecc43",
            json!({"states": ["a"], "initial": "a", "transitions": [], "meta": {"big": 1e20}}),
        ),
    ];
    for (version, (text, checksum, normalised)) in (1u32..).zip(vectors) {
        let definition: serde_json::Value = serde_json::from_str(text).expect("vector JSON");
        let put = client
            .put_machine("vec", version, definition)
            .await
            .expect("PUT");
        assert_eq!(put.stored_checksum, checksum);
        let got = client.get_machine("vec", version).await.expect("GET");
        assert_eq!(got.checksum, checksum);
        assert_eq!(serde_json::Value::Object(got.definition), normalised);
    }
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn hostile_guards_are_refused_with_spans_and_the_server_keeps_serving() {
    let server = OpsServer::start().await;
    let client = server.client().await;
    let with_guard = |guard: &str| {
        json!({"machine": "m", "version": 1, "definition": {"states": ["a"], "initial": "a",
            "transitions": [{"from": "a", "event": "GO", "to": "a", "guard": guard}]}})
    };
    let deep = format!("{}ctx.a{}", "(".repeat(10_000), ")".repeat(10_000));
    let outcome = call(&client, Op::PutMachine, with_guard(&deep)).await;
    assert_error(
        outcome,
        ErrorCode::BadRequest,
        json!({"reason": "invalid_guard", "kind": "too_deep", "pointer": "/transitions/0/guard",
            "guard": deep, "span": {"offset": 64, "length": 1}, "line": 1, "column": 65,
            "text": "("}),
    );
    let outcome = call(&client, Op::PutMachine, with_guard("ctx.é == \"\\ud800\"")).await;
    assert_error(
        outcome,
        ErrorCode::BadRequest,
        json!({"reason": "invalid_guard", "kind": "invalid_escape",
            "pointer": "/transitions/0/guard", "guard": "ctx.é == \"\\ud800\"",
            "span": {"offset": 11, "length": 6}, "line": 1, "column": 11, "text": "\\ud800"}),
    );
    let outcome = call(&client, Op::PutMachine, with_guard(" \n\t")).await;
    assert_error(
        outcome,
        ErrorCode::BadRequest,
        json!({"reason": "invalid_guard", "kind": "empty_guard", "pointer": "/transitions/0/guard",
            "guard": " \n\t", "span": {"offset": 0, "length": 3}, "line": 1, "column": 1,
            "text": " \n\t"}),
    );
    server.assert_fresh_connection_works().await;
}
