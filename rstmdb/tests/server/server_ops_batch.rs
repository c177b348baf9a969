//! BATCH against the real server (spec §4.15, §6.8): both spec examples, every `batch_invalid`
//! case with `index`/`op`/`limit`, sub-op param errors reported as the sub-op's own error, the
//! atomic unit as WAL_READ shows it, and the `meta` rules of §3.4.

use rstmdb_client::{Client, ErrorCode, Op};
use rstmdb_testkit::ops::*;
use serde_json::{Value, json};

async fn batch(
    client: &Client,
    params: Value,
) -> Result<rstmdb_client::RawResult, rstmdb_client::RcpError> {
    call(client, Op::Batch, params).await
}

fn results(raw: &rstmdb_client::RawResult) -> &Vec<Value> {
    raw.result["results"]
        .as_array()
        .expect("results is an array")
}

#[tokio::test]
async fn the_best_effort_example_reports_each_sub_op_on_its_own() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let raw = batch(
        &client,
        json!({"mode": "best_effort", "ops": [
            {"op": "GET_MACHINE", "params": {"machine": "order", "version": 1}},
            {"op": "GET_INSTANCE", "params": {"instance_id": "zz"}}]}),
    )
    .await
    .expect("a best-effort batch is ok");
    let results = results(&raw);
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["status"], json!("ok"));
    assert_eq!(results[0]["error"], Value::Null);
    assert_eq!(results[0]["result"]["checksum"], json!(ORDER_CHECKSUM));
    assert_eq!(
        results[0]["result"]["definition"]["transitions"][0]["from"],
        json!(["created"])
    );
    assert_eq!(results[1]["status"], json!("error"));
    assert_eq!(results[1]["result"], Value::Null);
    assert_eq!(results[1]["error"]["code"], json!("INSTANCE_NOT_FOUND"));
    assert_eq!(results[1]["error"]["retryable"], json!(false));
    assert_eq!(
        results[1]["error"]["details"],
        json!({"reason": "instance_not_found", "instance_id": "zz"})
    );
    assert_eq!(
        meta_offset(&raw),
        None,
        "a batch that wrote nothing has no meta"
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn the_atomic_example_fails_whole_with_index_and_op_and_writes_nothing() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let before = latest_offset(&client).await;
    let outcome = batch(
        &client,
        json!({"mode": "atomic", "ops": [
            {"op": "CREATE_INSTANCE", "params": {"machine": "order", "version": 1, "instance_id": "order-9"}},
            {"op": "APPLY_EVENT", "params": {"instance_id": "order-9", "event": "SHIP"}}]}),
    )
    .await;
    assert_error(
        outcome,
        ErrorCode::InvalidTransition,
        json!({"reason": "no_transition", "state": "created", "event": "SHIP",
            "index": 1, "op": "APPLY_EVENT"}),
    );
    assert_client_error(
        client.get_instance("order-9").await,
        ErrorCode::InstanceNotFound,
        json!({"reason": "instance_not_found", "instance_id": "order-9"}),
    );
    assert_eq!(latest_offset(&client).await, before, "nothing was written");
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn an_atomic_batch_is_one_wal_unit_and_meta_points_at_its_first_record() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let start = latest_offset(&client).await;
    let raw = batch(
        &client,
        json!({"mode": "atomic", "ops": [
            {"op": "PUT_MACHINE", "params": {"machine": "order", "version": 1, "definition": order_definition()}},
            {"op": "CREATE_INSTANCE", "params": {"machine": "order", "version": 1, "instance_id": "b-1",
                "initial_ctx": {"ready": true}}},
            {"op": "GET_INSTANCE", "params": {"instance_id": "b-1"}},
            {"op": "APPLY_EVENT", "params": {"instance_id": "b-1", "event": "PAY", "idempotency_key": "k"}},
            {"op": "APPLY_EVENT", "params": {"instance_id": "b-1", "event": "PAY", "idempotency_key": "k"}},
            {"op": "APPLY_EVENT", "params": {"instance_id": "b-1", "event": "SHIP"}}]}),
    )
    .await
    .expect("atomic batch commits");
    let results = results(&raw);
    assert!(
        results.iter().all(|r| r["status"] == json!("ok")),
        "{results:?}"
    );
    assert_eq!(
        results[0]["result"]["created"],
        json!(false),
        "re-put writes no record"
    );
    assert_eq!(
        results[2]["result"]["state"],
        json!("created"),
        "reads see the staged state"
    );
    assert_eq!(
        results[4]["result"]["applied"],
        json!(false),
        "a repeated key is a replay"
    );
    assert_eq!(
        results[4]["result"]["wal_offset"],
        results[3]["result"]["wal_offset"]
    );
    assert_eq!(meta_offset(&raw), Some(start));

    let records = client
        .wal_read(start, None)
        .await
        .expect("WAL_READ")
        .records;
    let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
    let result_offsets: Vec<u64> = [1, 3, 5]
        .iter()
        .map(|&i| results[i]["result"]["wal_offset"].as_u64().expect("offset"))
        .collect();
    assert_eq!(
        offsets, result_offsets,
        "one record per writing sub-op, in order"
    );
    for (index, record) in records.iter().enumerate() {
        assert_eq!(record.entry["unit"], json!({"index": index, "count": 3}));
    }
    assert_eq!(
        records
            .iter()
            .map(|r| r.entry["type"].clone())
            .collect::<Vec<_>>(),
        [
            json!("create_instance"),
            json!("apply_event"),
            json!("apply_event")
        ]
    );
    let got = client.get_instance("b-1").await.expect("GET");
    assert_eq!(got.state, "shipped");
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_best_effort_batch_commits_each_sub_op_alone_without_unit_markers() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let start = latest_offset(&client).await;
    let raw = batch(
        &client,
        json!({"ops": [
            {"op": "GET_INSTANCE", "params": {"instance_id": "nope"}},
            {"op": "CREATE_INSTANCE", "params": {"machine": "order", "version": 1, "instance_id": "e-1"}},
            {"op": "APPLY_EVENT", "params": {"instance_id": "e-1", "event": "SHIP"}},
            {"op": "DELETE_INSTANCE", "params": {"instance_id": "e-1"}}]}),
    )
    .await
    .expect("best effort is the default mode");
    let statuses: Vec<&Value> = results(&raw).iter().map(|r| &r["status"]).collect();
    assert_eq!(
        statuses,
        [&json!("error"), &json!("ok"), &json!("error"), &json!("ok")]
    );
    assert_eq!(
        meta_offset(&raw),
        Some(start),
        "the first record the batch wrote"
    );
    let records = client
        .wal_read(start, None)
        .await
        .expect("WAL_READ")
        .records;
    assert_eq!(records.len(), 2);
    assert!(
        records.iter().all(|r| r.entry.get("unit").is_none()),
        "{records:?}"
    );
    assert_eq!(
        results(&raw)[3]["result"]["wal_offset"],
        json!(records[1].offset)
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn structural_problems_are_batch_invalid_with_index_op_and_limit() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let get = json!({"op": "GET_INSTANCE", "params": {"instance_id": "x"}});
    let too_many: Vec<Value> = (0..101).map(|_| get.clone()).collect();
    let cases = [
        (json!({}), json!({"reason": "batch_invalid"})),
        (json!({"ops": null}), json!({"reason": "batch_invalid"})),
        (
            json!({"ops": {"op": "PING"}}),
            json!({"reason": "batch_invalid"}),
        ),
        (
            json!({"ops": too_many, "mode": "bogus"}),
            json!({"reason": "batch_invalid", "limit": 100}),
        ),
        (
            json!({"ops": [get, 5]}),
            json!({"reason": "batch_invalid", "index": 1}),
        ),
        (
            json!({"ops": [{"params": {}}]}),
            json!({"reason": "batch_invalid", "index": 0}),
        ),
        (
            json!({"ops": [{"op": 7}]}),
            json!({"reason": "batch_invalid", "index": 0}),
        ),
        (
            json!({"ops": [get, {"op": "PING"}]}),
            json!({"reason": "batch_invalid", "index": 1, "op": "PING"}),
        ),
        (
            json!({"ops": [{"op": "BATCH", "params": {"ops": []}}]}),
            json!({"reason": "batch_invalid", "index": 0, "op": "BATCH"}),
        ),
        (
            json!({"ops": [{"op": "NOT_AN_OP"}]}),
            json!({"reason": "batch_invalid", "index": 0, "op": "NOT_AN_OP"}),
        ),
        (
            json!({"ops": [{"op": "GET_INSTANCE", "params": [1]}]}),
            json!({"reason": "batch_invalid", "index": 0, "op": "GET_INSTANCE"}),
        ),
        // Entries are checked before the mode (step 3 before step 4).
        (
            json!({"mode": "bogus", "ops": [{"op": "LIST_MACHINES"}]}),
            json!({"reason": "batch_invalid", "index": 0, "op": "LIST_MACHINES"}),
        ),
        (
            json!({"mode": "bogus", "ops": []}),
            json!({"reason": "batch_invalid"}),
        ),
        (
            json!({"mode": 1, "ops": [get]}),
            json!({"reason": "batch_invalid"}),
        ),
    ];
    let before = latest_offset(&client).await;
    for (params, details) in cases {
        assert_error(batch(&client, params).await, ErrorCode::BadRequest, details);
    }
    assert_eq!(latest_offset(&client).await, before);
    // Exactly 100 entries, null params and an empty list are all fine.
    let hundred: Vec<Value> = (0..100)
        .map(|_| json!({"op": "GET_MACHINE", "params": {"machine": "order", "version": 1}}))
        .collect();
    assert_eq!(
        results(
            &batch(&client, json!({"ops": hundred}))
                .await
                .expect("100 ops")
        )
        .len(),
        100
    );
    let empty = batch(&client, json!({"mode": null, "ops": []}))
        .await
        .expect("empty batch");
    assert_eq!((results(&empty).len(), meta_offset(&empty)), (0, None));
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_sub_op_param_error_is_that_ops_own_error() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let ops = json!([
        {"op": "GET_INSTANCE", "params": null},
        {"op": "CREATE_INSTANCE", "params": {"machine": "order", "version": "1"}},
        {"op": "PUT_MACHINE", "params": {"machine": "m", "version": 1, "definition": [1]}}]);
    let raw = batch(&client, json!({"ops": ops}))
        .await
        .expect("best effort");
    let errors: Vec<&Value> = results(&raw)
        .iter()
        .map(|r| &r["error"]["details"])
        .collect();
    assert_eq!(
        errors,
        [
            &json!({"reason": "missing_param", "param": "instance_id"}),
            &json!({"reason": "invalid_param", "param": "version", "expected": "u32"}),
            &json!({"reason": "invalid_definition", "kind": "not_object", "pointer": ""}),
        ]
    );
    let outcome = batch(
        &client,
        json!({"mode": "atomic", "ops": [
            {"op": "GET_MACHINE", "params": {"machine": "order", "version": 1}},
            {"op": "CREATE_INSTANCE", "params": {"machine": "order", "version": "1"}}]}),
    )
    .await;
    assert_error(
        outcome,
        ErrorCode::BadRequest,
        json!({"reason": "invalid_param", "param": "version", "expected": "u32",
            "index": 1, "op": "CREATE_INSTANCE"}),
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_batch_of_only_replays_and_re_puts_carries_no_meta() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    client
        .apply_event(
            "o-1",
            "PAY",
            rstmdb_client::ApplyEventOptions::default().idempotency_key("k"),
        )
        .await
        .expect("PAY");
    let before = latest_offset(&client).await;
    let re_put = json!({"op": "PUT_MACHINE",
        "params": {"machine": "order", "version": 1, "definition": order_definition()}});
    let replay = json!({"op": "APPLY_EVENT",
        "params": {"instance_id": "o-1", "event": "PAY", "idempotency_key": "k"}});
    let failing = json!({"op": "DELETE_INSTANCE", "params": {"instance_id": "never"}});
    let atomic = batch(&client, json!({"mode": "atomic", "ops": [re_put, replay]})).await;
    let atomic = atomic.expect("atomic batch of no-ops");
    assert_eq!(results(&atomic)[1]["result"]["applied"], json!(false));
    assert_eq!(meta_offset(&atomic), None);
    let best_effort = batch(&client, json!({"ops": [re_put, replay, failing]})).await;
    let best_effort = best_effort.expect("best effort");
    assert_eq!(results(&best_effort)[2]["status"], json!("error"));
    assert_eq!(meta_offset(&best_effort), None);
    assert_eq!(latest_offset(&client).await, before);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn atomic_sub_ops_see_staged_puts_deletes_and_keys() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({"old": true})).await;
    let raw = batch(
        &client,
        json!({"mode": "atomic", "ops": [
            {"op": "PUT_MACHINE", "params": {"machine": "fresh", "version": 3, "definition": order_definition()}},
            {"op": "CREATE_INSTANCE", "params": {"machine": "fresh", "version": 3, "instance_id": "f-1",
                "idempotency_key": "ck"}},
            {"op": "DELETE_INSTANCE", "params": {"instance_id": "o-1"}},
            {"op": "CREATE_INSTANCE", "params": {"machine": "order", "version": 1, "instance_id": "o-1"}},
            {"op": "CREATE_INSTANCE", "params": {"machine": "fresh", "version": 3, "instance_id": "f-1",
                "idempotency_key": "ck"}}]}),
    )
    .await
    .expect("atomic batch");
    let results = results(&raw);
    assert_eq!(
        results[4]["result"]["applied"],
        json!(false),
        "a replay of sub-op 1"
    );
    let records = client
        .wal_read(meta_offset(&raw).expect("meta"), None)
        .await
        .expect("WAL_READ");
    assert_eq!(records.records.len(), 4, "put, create, delete, create");
    assert!(
        records
            .records
            .iter()
            .all(|r| r.entry["unit"]["count"] == json!(4))
    );
    let o1 = client.get_instance("o-1").await.expect("re-created");
    assert!(o1.ctx.is_empty());

    // A later sub-op that reuses a staged key for a different request conflicts.
    let outcome = batch(
        &client,
        json!({"mode": "atomic", "ops": [
            {"op": "CREATE_INSTANCE", "params": {"machine": "order", "version": 1, "instance_id": "n-1",
                "idempotency_key": "nk"}},
            {"op": "CREATE_INSTANCE", "params": {"machine": "order", "version": 1, "instance_id": "n-2",
                "idempotency_key": "nk"}}]}),
    )
    .await;
    let error = outcome.expect_err("conflict");
    assert_eq!(error.code, ErrorCode::Conflict);
    assert_eq!(error.reason(), Some("idempotency_key_reused"));
    assert_eq!(
        (error.detail("index"), error.detail("op")),
        (Some(&json!(1)), Some(&json!("CREATE_INSTANCE")))
    );
    assert_eq!(error.detail("idempotency_key"), Some(&json!("nk")));
    assert!(
        error
            .detail("original_wal_offset")
            .is_some_and(Value::is_u64),
        "{error:?}"
    );
    assert_eq!(
        client
            .get_instance("n-1")
            .await
            .map_err(server_error)
            .expect_err("rolled back")
            .code,
        ErrorCode::InstanceNotFound
    );
    server.assert_fresh_connection_works().await;
}
