//! APPLY_EVENT's idempotency and concurrency against the real server (spec §4.14 step 2, §6.2,
//! §6.3): replays return the original result whatever happened since, reused keys conflict,
//! failures do not consume keys, "same request" is structural, and concurrent applies to one
//! instance are serialised.

use rstmdb_client::{ApplyEventOptions, ErrorCode, Op};
use rstmdb_testkit::ops::*;
use serde_json::json;

#[tokio::test]
async fn a_replay_returns_the_original_result_even_after_the_instance_changed() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "order-1", json!({"customer": "alice"})).await;
    let params = json!({"instance_id": "order-1", "event": "PAY",
        "payload": {"amount": 42.5, "ready": true}, "event_id": "evt-1", "idempotency_key": "pay-1"});
    let first = ok(&client, Op::ApplyEvent, params.clone()).await;
    client
        .apply_event("order-1", "SHIP", Default::default())
        .await
        .expect("SHIP");
    let replay = ok(&client, Op::ApplyEvent, params.clone()).await;
    let mut expected = first.result.clone();
    expected.insert("applied".into(), json!(false));
    assert_eq!(
        replay.result, expected,
        "the original result, from_state and ctx included"
    );
    assert_eq!(meta_offset(&replay), None);
    // Even a deleted instance replays: the key is checked before anything else (§6.2).
    client
        .delete_instance("order-1", None)
        .await
        .expect("DELETE");
    let after_delete = latest_offset(&client).await;
    let replay = ok(&client, Op::ApplyEvent, params).await;
    assert_eq!(replay.result, expected);
    assert_eq!(
        latest_offset(&client).await,
        after_delete,
        "a replay writes nothing"
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_reused_apply_key_with_a_different_request_is_a_conflict() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    let first = ok(
        &client,
        Op::ApplyEvent,
        json!({"instance_id": "o-1", "event": "PAY", "payload": null, "idempotency_key": "k"}),
    )
    .await;
    let original = u64_field(&first.result, "wal_offset");
    // A missing payload equals a null one: still the same request.
    let same = ok(
        &client,
        Op::ApplyEvent,
        json!({"instance_id": "o-1", "event": "PAY", "idempotency_key": "k"}),
    )
    .await;
    assert_eq!(same.result["applied"], json!(false));
    let different = [
        json!({"instance_id": "o-1", "event": "SHIP", "idempotency_key": "k"}),
        json!({"instance_id": "o-1", "event": "PAY", "payload": {"a": 1}, "idempotency_key": "k"}),
        json!({"instance_id": "o-1", "event": "PAY", "event_id": "e", "idempotency_key": "k"}),
        json!({"instance_id": "o-1", "event": "PAY", "expected_state": "created",
            "idempotency_key": "k"}),
    ];
    for params in different {
        assert_error(
            call(&client, Op::ApplyEvent, params).await,
            ErrorCode::Conflict,
            json!({"reason": "idempotency_key_reused", "idempotency_key": "k",
                "original_wal_offset": original}),
        );
    }
    // The scope is the instance: the same key on another instance is a new request.
    create_order(&client, "o-2", json!({})).await;
    let other = client
        .apply_event(
            "o-2",
            "PAY",
            ApplyEventOptions::default().idempotency_key("k"),
        )
        .await
        .expect("another instance's scope");
    assert!(other.applied);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_failed_apply_does_not_consume_its_idempotency_key() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    let ship = || ApplyEventOptions::default().idempotency_key("k");
    let failed = client.apply_event("o-1", "SHIP", ship()).await;
    assert_eq!(
        failed
            .map_err(server_error)
            .expect_err("no transition")
            .code,
        ErrorCode::InvalidTransition
    );
    let pay = client
        .apply_event(
            "o-1",
            "PAY",
            ApplyEventOptions::default().idempotency_key("k"),
        )
        .await
        .expect("the key is still free");
    assert!(pay.applied);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn same_request_compares_json_structurally_but_number_spelling_matters() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let created = create_order(&client, "o-1", json!({})).await;
    let first = call(
        &client,
        Op::ApplyEvent,
        serde_json::from_str(&format!(
            r#"{{"instance_id":"o-1","event":"PAY","payload":{{"a":1,"b":2}},
                "expected_wal_offset":{created},"idempotency_key":"k"}}"#
        ))
        .expect("params"),
    )
    .await
    .expect("PAY");
    let reordered = call(
        &client,
        Op::ApplyEvent,
        serde_json::from_str(&format!(
            r#"{{"instance_id":"o-1","event":"PAY","payload":{{"b":2,"a":1}},
                "expected_wal_offset":{created},"idempotency_key":"k"}}"#
        ))
        .expect("params"),
    )
    .await
    .expect("key order does not matter");
    assert_eq!(reordered.result["applied"], json!(false));
    assert_eq!(reordered.result["wal_offset"], first.result["wal_offset"]);
    let respelled = call(
        &client,
        Op::ApplyEvent,
        serde_json::from_str(&format!(
            r#"{{"instance_id":"o-1","event":"PAY","payload":{{"a":1.0,"b":2}},
                "expected_wal_offset":{created},"idempotency_key":"k"}}"#
        ))
        .expect("params"),
    )
    .await;
    assert_eq!(
        respelled.expect_err("1 and 1.0 differ").reason(),
        Some("idempotency_key_reused")
    );
    let other_offset = call(
        &client,
        Op::ApplyEvent,
        json!({"instance_id": "o-1", "event": "PAY", "payload": {"a": 1, "b": 2},
            "expected_wal_offset": created + 1, "idempotency_key": "k"}),
    )
    .await;
    assert_eq!(
        other_offset.expect_err("differs").reason(),
        Some("idempotency_key_reused")
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn concurrent_applies_from_many_connections_are_serialised_per_instance() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let racer = server.client().await;
        tasks.push(tokio::spawn(async move {
            let options = ApplyEventOptions::default().expected_state("created");
            racer
                .apply_event("o-1", "PAY", options)
                .await
                .map_err(server_error)
        }));
    }
    let mut winners = 0;
    for task in tasks {
        match task.await.expect("racer task") {
            Ok(applied) => {
                assert_eq!(applied.from_state, "created");
                winners += 1;
            }
            Err(error) => assert_eq!(
                error.details,
                Some(obj(
                    json!({"reason": "state_mismatch", "expected": "created", "actual": "paid"})
                ))
            ),
        }
    }
    assert_eq!(winners, 1, "exactly one PAY moved the instance");
    let records = client.wal_read(0, None).await.expect("WAL_READ").records;
    assert_eq!(records.len(), 3, "put, create and one apply");
    server.assert_fresh_connection_works().await;
}
