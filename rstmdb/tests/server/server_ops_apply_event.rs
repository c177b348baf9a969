//! APPLY_EVENT against the real server (spec §4.14, §6.2, §6.3, §6.6, §7.8, §7.9): each step of
//! the processing order with its error and details, the merge, optimistic concurrency, event
//! ids and the `meta` rule of §3.4. Replays and races: `server_ops_apply_event_replays.rs`.

use rstmdb_client::{ApplyEventOptions, Client, ErrorCode, Op};
use rstmdb_testkit::ops::*;
use serde_json::{Value, json};

/// A machine whose (review, DECIDE) has three ordered candidates (§7.9), plus a guarded
/// transition that reads the ctx before the merge.
fn review_definition() -> Value {
    json!({
        "states": ["review", "approved", "manual", "rejected", "done"],
        "initial": "review",
        "transitions": [
            {"from": "review", "event": "DECIDE", "to": "approved", "guard": "payload.score >= 80"},
            {"from": "review", "event": "DECIDE", "to": "manual", "guard": "payload.score >= 50"},
            {"from": "review", "event": "DECIDE", "to": "rejected"},
            {"from": "review", "event": "CHECK", "to": "done", "guard": "ctx.ready && payload.ok"},
            {"from": "review", "event": "CHECK", "to": "done", "guard": "payload.force == true"}
        ]
    })
}

async fn client_with_review(server: &OpsServer) -> Client {
    let client = server.client().await;
    client
        .put_machine("review", 1, review_definition())
        .await
        .expect("PUT review");
    client
}

async fn create_review(client: &Client, id: &str, ctx: Value) -> u64 {
    let raw = ok(
        client,
        Op::CreateInstance,
        json!({"machine": "review", "version": 1, "instance_id": id, "initial_ctx": ctx}),
    )
    .await;
    u64_field(&raw.result, "wal_offset")
}

#[tokio::test]
async fn apply_event_moves_the_instance_and_reports_its_record_offset() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "order-1", json!({"customer": "alice"})).await;
    let expected_offset = latest_offset(&client).await;
    // The spec's example request (§4.14).
    let raw = ok(
        &client,
        Op::ApplyEvent,
        json!({"instance_id": "order-1", "event": "PAY", "payload": {"amount": 42.5, "ready": true},
            "event_id": "evt-1", "idempotency_key": "pay-1"}),
    )
    .await;
    assert_eq!(
        raw.result,
        obj(json!({"from_state": "created", "to_state": "paid",
            "ctx": {"customer": "alice", "amount": 42.5, "ready": true},
            "wal_offset": expected_offset, "applied": true, "event_id": "evt-1"}))
    );
    assert_eq!(meta_offset(&raw), Some(expected_offset));
    let got = client.get_instance("order-1").await.expect("GET");
    assert_eq!(
        (
            got.state.as_str(),
            got.last_event_id.as_deref(),
            got.last_wal_offset
        ),
        ("paid", Some("evt-1"), expected_offset)
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn an_apply_without_event_id_omits_it_and_clears_last_event_id() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({"ready": true})).await;
    let options = ApplyEventOptions::default().event_id("evt-1");
    client
        .apply_event("o-1", "PAY", options)
        .await
        .expect("PAY");
    let raw = ok(
        &client,
        Op::ApplyEvent,
        json!({"instance_id": "o-1", "event": "SHIP"}),
    )
    .await;
    assert!(
        raw.result.get("event_id").is_none(),
        "no event_id echoed: {raw:?}"
    );
    let got = ok(&client, Op::GetInstance, json!({"instance_id": "o-1"})).await;
    assert!(
        got.result.get("last_event_id").is_none(),
        "the most recent apply carried none: {got:?}"
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn the_payload_is_merged_shallowly_into_ctx() {
    let server = OpsServer::start().await;
    let client = client_with_review(&server).await;
    // §6.6's example, with a null value that sets (not deletes) a key.
    create_review(&client, "r-1", json!({"b": {"x": 1}, "k": 1, "gone": 5})).await;
    let raw = ok(
        &client,
        Op::ApplyEvent,
        json!({"instance_id": "r-1", "event": "DECIDE",
            "payload": {"b": {"y": 2}, "c": 3, "gone": null}}),
    )
    .await;
    let merged = json!({"b": {"y": 2}, "c": 3, "k": 1, "gone": null});
    assert_eq!(raw.result["ctx"], merged);
    let got = client.get_instance("r-1").await.expect("GET");
    assert_eq!(Value::Object(got.ctx), merged);
    // A null payload leaves ctx unchanged.
    create_review(&client, "r-2", json!({"k": 1})).await;
    let raw = ok(
        &client,
        Op::ApplyEvent,
        json!({"instance_id": "r-2", "event": "DECIDE", "payload": null}),
    )
    .await;
    assert_eq!(raw.result["ctx"], json!({"k": 1}));
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn candidates_are_tried_in_definition_order_with_payload_guards() {
    let server = OpsServer::start().await;
    let client = client_with_review(&server).await;
    for (id, score, to) in [
        ("a", 95, "approved"),
        ("m", 60, "manual"),
        ("r", 10, "rejected"),
    ] {
        create_review(&client, id, json!({})).await;
        let raw = ok(
            &client,
            Op::ApplyEvent,
            json!({"instance_id": id, "event": "DECIDE", "payload": {"score": score}}),
        )
        .await;
        assert_eq!(raw.result["to_state"], json!(to), "score {score}");
    }
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn guards_read_ctx_before_the_merge_and_failures_list_every_guard_tried() {
    let server = OpsServer::start().await;
    let client = client_with_review(&server).await;
    create_review(&client, "r-1", json!({"ready": false})).await;
    let before = latest_offset(&client).await;
    // `ready: true` in the payload is not visible as ctx.ready to this event's guard (§7.8).
    let outcome = call(
        &client,
        Op::ApplyEvent,
        json!({"instance_id": "r-1", "event": "CHECK", "payload": {"ready": true, "ok": true}}),
    )
    .await;
    assert_error(
        outcome,
        ErrorCode::GuardFailed,
        json!({"reason": "guard_failed", "state": "review", "event": "CHECK",
            "guards": ["ctx.ready && payload.ok", "payload.force == true"]}),
    );
    assert_eq!(
        latest_offset(&client).await,
        before,
        "a failure writes nothing"
    );
    let got = client.get_instance("r-1").await.expect("GET");
    assert_eq!(
        Value::Object(got.ctx),
        json!({"ready": false}),
        "no merge on failure"
    );
    let raw = ok(
        &client,
        Op::ApplyEvent,
        json!({"instance_id": "r-1", "event": "CHECK", "payload": {"force": true}}),
    )
    .await;
    assert_eq!(raw.result["to_state"], json!("done"));
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn the_spec_guard_failure_example_reports_state_event_and_guards() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "order-3", json!({"customer": "carol"})).await;
    client
        .apply_event("order-3", "PAY", Default::default())
        .await
        .expect("PAY");
    let outcome = call(
        &client,
        Op::ApplyEvent,
        json!({"instance_id": "order-3", "event": "SHIP"}),
    )
    .await;
    assert_error(
        outcome,
        ErrorCode::GuardFailed,
        json!({"reason": "guard_failed", "state": "paid", "event": "SHIP", "guards": ["ctx.ready"]}),
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn an_event_with_no_transition_from_the_state_is_invalid_transition() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    for event in ["SHIP", "UNKNOWN"] {
        assert_error(
            call(
                &client,
                Op::ApplyEvent,
                json!({"instance_id": "o-1", "event": event}),
            )
            .await,
            ErrorCode::InvalidTransition,
            json!({"reason": "no_transition", "state": "created", "event": event}),
        );
    }
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn param_errors_come_first_in_table_order() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let cases = [
        (
            json!({"event": "PAY"}),
            json!({"reason": "missing_param", "param": "instance_id"}),
        ),
        (
            json!({"instance_id": "nope"}),
            json!({"reason": "missing_param", "param": "event"}),
        ),
        (
            json!({"instance_id": "nope", "event": "PAY", "payload": [1]}),
            json!({"reason": "invalid_param", "param": "payload", "expected": "object or null"}),
        ),
        (
            json!({"instance_id": "nope", "event": "PAY", "expected_state": 1}),
            json!({"reason": "invalid_param", "param": "expected_state", "expected": "string"}),
        ),
        (
            json!({"instance_id": "nope", "event": "PAY", "expected_wal_offset": -5}),
            json!({"reason": "invalid_param", "param": "expected_wal_offset", "expected": "u64"}),
        ),
        (
            json!({"instance_id": "nope", "event": "PAY", "event_id": false}),
            json!({"reason": "invalid_param", "param": "event_id", "expected": "string"}),
        ),
        (
            json!({"instance_id": "nope", "event": "PAY", "idempotency_key": ""}),
            json!({"reason": "invalid_param", "param": "idempotency_key",
                "expected": "string of 1 to 1024 bytes"}),
        ),
    ];
    for (params, details) in cases {
        assert_error(
            call(&client, Op::ApplyEvent, params).await,
            ErrorCode::BadRequest,
            details,
        );
    }
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn an_unknown_or_deleted_instance_is_instance_not_found() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    client.delete_instance("o-1", None).await.expect("DELETE");
    for id in ["o-1", "never"] {
        // Step 3 comes before the concurrency checks of steps 4 and 5.
        let outcome = call(
            &client,
            Op::ApplyEvent,
            json!({"instance_id": id, "event": "PAY", "expected_state": "zzz"}),
        )
        .await;
        assert_error(
            outcome,
            ErrorCode::InstanceNotFound,
            json!({"reason": "instance_not_found", "instance_id": id}),
        );
    }
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn expected_state_and_offset_are_checked_before_the_transition_lookup() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let created = create_order(&client, "o-1", json!({})).await;
    // Both mismatch and the event has no transition: the state check (step 4) wins.
    let outcome = call(
        &client,
        Op::ApplyEvent,
        json!({"instance_id": "o-1", "event": "NOPE", "expected_state": "paid",
            "expected_wal_offset": 1}),
    )
    .await;
    assert_error(
        outcome,
        ErrorCode::Conflict,
        json!({"reason": "state_mismatch", "expected": "paid", "actual": "created"}),
    );
    let outcome = call(
        &client,
        Op::ApplyEvent,
        json!({"instance_id": "o-1", "event": "NOPE", "expected_state": "created",
            "expected_wal_offset": created + 1}),
    )
    .await;
    assert_error(
        outcome,
        ErrorCode::Conflict,
        json!({"reason": "wal_offset_mismatch", "expected": created + 1, "actual": created}),
    );
    let options = ApplyEventOptions::default()
        .expected_state("created")
        .expected_wal_offset(created);
    let applied = client
        .apply_event("o-1", "PAY", options)
        .await
        .expect("matching checks");
    assert_eq!(applied.to_state, "paid");
    // The offset to expect now is the apply's own record.
    let outcome = client
        .apply_event(
            "o-1",
            "SHIP",
            ApplyEventOptions::default().expected_wal_offset(created),
        )
        .await;
    assert_client_error(
        outcome,
        ErrorCode::Conflict,
        json!({"reason": "wal_offset_mismatch", "expected": created, "actual": applied.wal_offset}),
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn optional_params_sent_as_null_mean_absent() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({"k": 1})).await;
    let raw = ok(
        &client,
        Op::ApplyEvent,
        json!({"instance_id": "o-1", "event": "PAY", "payload": null, "expected_state": null,
            "expected_wal_offset": null, "event_id": null, "idempotency_key": null}),
    )
    .await;
    assert_eq!(raw.result["to_state"], json!("paid"));
    assert!(raw.result.get("event_id").is_none());
    let record = client
        .wal_read(u64_field(&raw.result, "wal_offset"), Some(1))
        .await;
    let entry = &record.expect("WAL_READ").records[0].entry;
    for absent in [
        "event_id",
        "idempotency_key",
        "expected_state",
        "expected_wal_offset",
    ] {
        assert!(entry.get(absent).is_none(), "{absent} in {entry:?}");
    }
    assert_eq!(entry["payload"], Value::Null);
    server.assert_fresh_connection_works().await;
}
