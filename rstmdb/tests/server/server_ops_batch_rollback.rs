//! BATCH's all-or-nothing edges against the real server (spec §4.15, §6.8): the 16 MiB
//! response budget in both modes, and rollback that leaves no record, offset, sequence or
//! idempotency key behind.

use rstmdb_client::{ApplyEventOptions, Client, CreateInstanceOptions, ErrorCode, Op};
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

/// An instance whose GET_INSTANCE result is about 6 MB, so three of them pass 16 MiB.
async fn create_six_megabyte_instance(client: &Client, id: &str) {
    let ctx = json!({"blob": "x".repeat(6_000_000)});
    let raw = call(
        client,
        Op::CreateInstance,
        json!({"machine": "order", "version": 1, "instance_id": id, "initial_ctx": ctx}),
    )
    .await;
    raw.expect("CREATE a large instance");
}

fn assert_response_too_large(error: &Value) {
    assert_eq!(error["code"], json!("BAD_REQUEST"), "{error}");
    assert_eq!(error["details"]["reason"], json!("response_too_large"));
    let size = error["details"]["size"].as_u64().expect("size");
    let limit = error["details"]["limit"].as_u64().expect("limit");
    assert!(size > limit, "{error}");
}

#[tokio::test]
async fn a_best_effort_batch_stops_before_the_sub_op_that_would_pass_16_mib() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_six_megabyte_instance(&client, "big").await;
    let get = json!({"op": "GET_INSTANCE", "params": {"instance_id": "big"}});
    let create = json!({"op": "CREATE_INSTANCE",
        "params": {"machine": "order", "version": 1, "instance_id": "late"}});
    let raw = batch(&client, json!({"ops": [get, get, get, create]}))
        .await
        .expect("best effort answers ok");
    let results = results(&raw);
    assert_eq!(results.len(), 4);
    assert_eq!(
        (&results[0]["status"], &results[1]["status"]),
        (&json!("ok"), &json!("ok"))
    );
    for skipped in &results[2..] {
        assert_eq!(skipped["status"], json!("error"));
        assert_eq!(skipped["result"], Value::Null);
        assert_response_too_large(&skipped["error"]);
    }
    assert_eq!(meta_offset(&raw), None, "the CREATE was not executed");
    assert_eq!(
        client
            .get_instance("late")
            .await
            .map_err(server_error)
            .expect_err("not run")
            .code,
        ErrorCode::InstanceNotFound
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn an_atomic_batch_that_would_pass_16_mib_applies_nothing() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_six_megabyte_instance(&client, "big").await;
    let before = latest_offset(&client).await;
    let get = json!({"op": "GET_INSTANCE", "params": {"instance_id": "big"}});
    let create = json!({"op": "CREATE_INSTANCE",
        "params": {"machine": "order", "version": 1, "instance_id": "early"}});
    let error = batch(
        &client,
        json!({"mode": "atomic", "ops": [create, get, get, get]}),
    )
    .await
    .expect_err("too large");
    assert_response_too_large(&serde_json::to_value(&error).expect("error as JSON"));
    assert_eq!(latest_offset(&client).await, before);
    assert_eq!(
        client
            .get_instance("early")
            .await
            .map_err(server_error)
            .expect_err("rolled back")
            .code,
        ErrorCode::InstanceNotFound
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_failed_atomic_batch_records_none_of_its_keys() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    let outcome = batch(
        &client,
        json!({"mode": "atomic", "ops": [
            {"op": "CREATE_INSTANCE", "params": {"machine": "order", "version": 1,
                "instance_id": "n-1", "idempotency_key": "ck"}},
            {"op": "APPLY_EVENT", "params": {"instance_id": "o-1", "event": "PAY", "idempotency_key": "ak"}},
            {"op": "DELETE_INSTANCE", "params": {"instance_id": "o-1", "idempotency_key": "dk"}},
            {"op": "GET_INSTANCE", "params": {"instance_id": "nope"}}]}),
    )
    .await;
    assert_eq!(
        outcome.expect_err("index 3 fails").detail("index"),
        Some(&json!(3))
    );
    // Different requests with the same keys run anew: the keys were rolled back too.
    let created = client
        .create_instance(
            "order",
            1,
            CreateInstanceOptions::default()
                .instance_id("other")
                .idempotency_key("ck"),
        )
        .await
        .expect("ck is unknown");
    assert!(created.applied);
    let shipped = client
        .apply_event(
            "o-1",
            "SHIP",
            ApplyEventOptions::default().idempotency_key("ak"),
        )
        .await;
    assert_eq!(
        shipped
            .map_err(server_error)
            .expect_err("no SHIP from created")
            .code,
        ErrorCode::InvalidTransition,
        "ak is unknown, so the SHIP ran (and found no transition)"
    );
    let got = client
        .get_instance("o-1")
        .await
        .expect("o-1 is live and unchanged");
    assert_eq!(got.state, "created");
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_best_effort_write_taken_back_for_size_leaves_no_trace() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_six_megabyte_instance(&client, "big").await;
    let before = latest_offset(&client).await;
    let get = json!({"op": "GET_INSTANCE", "params": {"instance_id": "big"}});
    // APPLY_EVENT's result carries the 6 MB ctx, so it is the sub-op that does not fit.
    let pay = json!({"op": "APPLY_EVENT",
        "params": {"instance_id": "big", "event": "PAY", "idempotency_key": "k"}});
    let raw = batch(&client, json!({"ops": [get, get, pay]}))
        .await
        .expect("best effort");
    assert_response_too_large(&results(&raw)[2]["error"]);
    assert_eq!(meta_offset(&raw), None);
    assert_eq!(
        latest_offset(&client).await,
        before,
        "its record was taken back"
    );
    assert_eq!(
        client.get_instance("big").await.expect("GET").state,
        "created"
    );
    let paid = client
        .apply_event(
            "big",
            "PAY",
            ApplyEventOptions::default().idempotency_key("k"),
        )
        .await
        .expect("PAY");
    assert!(paid.applied, "the key was not recorded");
    assert_eq!(paid.wal_offset, before, "the taken-back record left no gap");
    let record = client.wal_read(before, Some(1)).await.expect("WAL_READ");
    let sequence_before = record.records[0].sequence - 1;
    assert_eq!(
        sequence_before, 2,
        "put and create came first; no sequence was skipped"
    );
    server.assert_fresh_connection_works().await;
}
