//! CREATE_INSTANCE, GET_INSTANCE, LIST_INSTANCES and DELETE_INSTANCE against the real server
//! (spec §4.10–§4.13, §6.2, §6.4, §6.5): happy paths, every listed error with its details,
//! idempotent replays and the `meta` rule of §3.4.

mod server_ops_support;

use rstmdb_client::params::ListInstancesParams;
use rstmdb_client::{CreateInstanceOptions, ErrorCode, Op};
use serde_json::json;
use server_ops_support::*;

fn is_uuid_v4(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok_and(|uuid| uuid.get_version_num() == 4)
        && id.len() == 36
        && id
            .chars()
            .all(|c| c == '-' || c.is_ascii_digit() || c.is_ascii_lowercase())
}

#[tokio::test]
async fn create_instance_generates_a_lowercase_uuid_v4_when_no_id_is_given() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let expected_offset = latest_offset(&client).await;
    let raw = ok(
        &client,
        Op::CreateInstance,
        json!({"machine": "order", "version": 1}),
    )
    .await;
    let id = raw.result["instance_id"]
        .as_str()
        .expect("instance_id")
        .to_owned();
    assert!(is_uuid_v4(&id), "{id} is a lowercase UUID v4");
    assert_eq!(raw.result["state"], json!("created"));
    assert_eq!(raw.result["applied"], json!(true));
    assert_eq!(u64_field(&raw.result, "wal_offset"), expected_offset);
    assert_eq!(meta_offset(&raw), Some(expected_offset));
    let second = ok(
        &client,
        Op::CreateInstance,
        json!({"machine": "order", "version": 1}),
    )
    .await;
    assert_ne!(
        second.result["instance_id"],
        json!(id),
        "each call gets a new id"
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_null_initial_ctx_starts_as_an_empty_object_and_any_string_is_an_id() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let raw = ok(
        &client,
        Op::CreateInstance,
        json!({"machine": "order", "version": 1, "instance_id": "", "initial_ctx": null}),
    )
    .await;
    assert_eq!(raw.result["instance_id"], json!(""));
    let got = client.get_instance("").await.expect("the empty id exists");
    assert!(got.ctx.is_empty());
    let raw = ok(&client, Op::GetInstance, json!({"instance_id": ""})).await;
    assert_eq!(raw.result["ctx"], json!({}), "ctx is an object, never null");
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn create_instance_param_errors_name_the_param() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let long_key = "k".repeat(1025);
    let cases = [
        (
            json!({"version": 1}),
            json!({"reason": "missing_param", "param": "machine"}),
        ),
        (
            json!({"machine": "order"}),
            json!({"reason": "missing_param", "param": "version"}),
        ),
        (
            json!({"machine": "order", "version": -1}),
            json!({"reason": "invalid_param", "param": "version", "expected": "u32"}),
        ),
        (
            json!({"machine": "order", "version": 1, "instance_id": 7}),
            json!({"reason": "invalid_param", "param": "instance_id", "expected": "string"}),
        ),
        (
            json!({"machine": "order", "version": 1, "initial_ctx": [1]}),
            json!({"reason": "invalid_param", "param": "initial_ctx", "expected": "object or null"}),
        ),
        (
            json!({"machine": "order", "version": 1, "idempotency_key": ""}),
            json!({"reason": "invalid_param", "param": "idempotency_key",
                "expected": "string of 1 to 1024 bytes"}),
        ),
        (
            json!({"machine": "order", "version": 1, "idempotency_key": long_key}),
            json!({"reason": "invalid_param", "param": "idempotency_key",
                "expected": "string of 1 to 1024 bytes"}),
        ),
    ];
    for (params, details) in cases {
        assert_error(
            call(&client, Op::CreateInstance, params).await,
            ErrorCode::BadRequest,
            details,
        );
    }
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn an_idempotent_create_replays_the_original_result_without_meta() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let params = json!({"machine": "order", "version": 1, "initial_ctx": {"customer": "alice"},
        "idempotency_key": "create-1"});
    let first = ok(&client, Op::CreateInstance, params.clone()).await;
    let generated = first.result["instance_id"].clone();
    let after_first = latest_offset(&client).await;
    let replay = ok(&client, Op::CreateInstance, params).await;
    assert_eq!(
        replay.result["instance_id"], generated,
        "the generated id comes back"
    );
    assert_eq!(replay.result["wal_offset"], first.result["wal_offset"]);
    assert_eq!(replay.result["applied"], json!(false));
    assert_eq!(meta_offset(&replay), None);
    assert_eq!(
        latest_offset(&client).await,
        after_first,
        "a replay writes nothing"
    );
    // Giving the recorded id explicitly is still the same request (§6.2).
    let explicit = ok(
        &client,
        Op::CreateInstance,
        json!({"machine": "order", "version": 1, "instance_id": generated,
            "initial_ctx": {"customer": "alice"}, "idempotency_key": "create-1"}),
    )
    .await;
    assert_eq!(explicit.result["applied"], json!(false));
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_reused_create_key_with_a_different_request_is_a_conflict() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let first = ok(
        &client,
        Op::CreateInstance,
        json!({"machine": "order", "version": 1, "instance_id": "o-1", "idempotency_key": "k"}),
    )
    .await;
    let original = u64_field(&first.result, "wal_offset");
    let different = [
        json!({"machine": "order", "version": 1, "instance_id": "o-2", "idempotency_key": "k"}),
        json!({"machine": "order", "version": 1, "initial_ctx": {"a": 1}, "idempotency_key": "k"}),
        json!({"machine": "other", "version": 1, "idempotency_key": "k"}),
    ];
    for params in different {
        assert_error(
            call(&client, Op::CreateInstance, params).await,
            ErrorCode::Conflict,
            json!({"reason": "idempotency_key_reused", "idempotency_key": "k",
                "original_wal_offset": original}),
        );
    }
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn creating_a_live_id_again_is_instance_exists() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    let outcome = client
        .create_instance(
            "order",
            1,
            CreateInstanceOptions::default().instance_id("o-1"),
        )
        .await;
    assert_client_error(
        outcome,
        ErrorCode::InstanceExists,
        json!({"reason": "instance_exists", "instance_id": "o-1"}),
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_deleted_id_is_reserved_when_re_creation_is_disabled() {
    let config = ServerConfig::default().with_engine(|e| e.allow_instance_recreate = false);
    let server = OpsServer::start_with(config).await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    client.delete_instance("o-1", None).await.expect("DELETE");
    let outcome = client
        .create_instance(
            "order",
            1,
            CreateInstanceOptions::default().instance_id("o-1"),
        )
        .await;
    assert_client_error(
        outcome,
        ErrorCode::InstanceExists,
        json!({"reason": "instance_exists", "instance_id": "o-1"}),
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_deleted_id_is_re_created_fresh_when_allowed() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({"old": true})).await;
    client
        .apply_event("o-1", "PAY", Default::default())
        .await
        .expect("PAY");
    client.delete_instance("o-1", None).await.expect("DELETE");
    let offset = create_order(&client, "o-1", json!({"new": true})).await;
    let got = client.get_instance("o-1").await.expect("re-created");
    assert_eq!(got.state, "created");
    assert_eq!(serde_json::Value::Object(got.ctx), json!({"new": true}));
    assert_eq!(got.last_wal_offset, offset);
    assert_eq!(got.last_event_id, None);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn creating_from_an_unknown_machine_version_is_machine_not_found() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    for (machine, version) in [("order", 2), ("ghost", 1)] {
        let outcome = call(
            &client,
            Op::CreateInstance,
            json!({"machine": machine, "version": version, "instance_id": "x"}),
        )
        .await;
        assert_error(
            outcome,
            ErrorCode::MachineNotFound,
            json!({"reason": "machine_not_found", "machine": machine, "version": version}),
        );
    }
    // A live id is checked before the machine (step 3 before step 4).
    create_order(&client, "o-1", json!({})).await;
    let outcome = call(
        &client,
        Op::CreateInstance,
        json!({"machine": "ghost", "version": 1, "instance_id": "o-1"}),
    )
    .await;
    assert_eq!(outcome.expect_err("exists").code, ErrorCode::InstanceExists);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn get_instance_returns_every_field_with_record_timestamps() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let created_offset = create_order(&client, "o-1", json!({"customer": "alice"})).await;
    let created = ok(&client, Op::GetInstance, json!({"instance_id": "o-1"})).await;
    let result = &created.result;
    assert_eq!(meta_offset(&created), None);
    assert!(result.get("last_event_id").is_none(), "no apply yet");
    assert_eq!(result["created_at"], result["updated_at"]);
    let applied = client
        .apply_event(
            "o-1",
            "PAY",
            rstmdb_client::ApplyEventOptions::default().event_id("evt-1"),
        )
        .await
        .expect("PAY");
    let got = ok(&client, Op::GetInstance, json!({"instance_id": "o-1"}))
        .await
        .result;
    let records = client
        .wal_read(created_offset, None)
        .await
        .expect("WAL_READ")
        .records;
    let create_ts = &records[0].entry["timestamp"];
    let apply_ts = &records[1].entry["timestamp"];
    assert_eq!(
        got,
        obj(
            json!({"instance_id": "o-1", "machine": "order", "version": 1, "state": "paid",
            "ctx": {"customer": "alice"}, "last_event_id": "evt-1",
            "last_wal_offset": applied.wal_offset, "created_at": create_ts,
            "updated_at": apply_ts})
        )
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn get_instance_of_an_unknown_or_deleted_id_is_instance_not_found() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    client.delete_instance("o-1", None).await.expect("DELETE");
    for id in ["o-1", "never"] {
        assert_client_error(
            client.get_instance(id).await,
            ErrorCode::InstanceNotFound,
            json!({"reason": "instance_not_found", "instance_id": id}),
        );
    }
    assert_error(
        call(&client, Op::GetInstance, json!({"instance_id": null})).await,
        ErrorCode::BadRequest,
        json!({"reason": "missing_param", "param": "instance_id"}),
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn delete_instance_applies_once_then_repeats_the_original_offset() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    let expected = latest_offset(&client).await;
    let first = ok(&client, Op::DeleteInstance, json!({"instance_id": "o-1"})).await;
    assert_eq!(
        first.result,
        obj(
            json!({"instance_id": "o-1", "deleted": true, "wal_offset": expected, "applied": true})
        )
    );
    assert_eq!(meta_offset(&first), Some(expected));
    let after = latest_offset(&client).await;
    let repeat = ok(&client, Op::DeleteInstance, json!({"instance_id": "o-1"})).await;
    assert_eq!(
        repeat.result,
        obj(
            json!({"instance_id": "o-1", "deleted": true, "wal_offset": expected, "applied": false})
        )
    );
    assert_eq!(meta_offset(&repeat), None);
    assert_eq!(
        latest_offset(&client).await,
        after,
        "a repeat writes nothing"
    );
    assert_client_error(
        client.delete_instance("never", None).await,
        ErrorCode::InstanceNotFound,
        json!({"reason": "instance_not_found", "instance_id": "never"}),
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn delete_idempotency_keys_replay_and_conflict_in_the_instance_scope() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    let applied = client
        .apply_event(
            "o-1",
            "PAY",
            rstmdb_client::ApplyEventOptions::default().idempotency_key("k-pay"),
        )
        .await
        .expect("PAY");
    let first = ok(
        &client,
        Op::DeleteInstance,
        json!({"instance_id": "o-1", "idempotency_key": "k-del"}),
    )
    .await;
    let replay = ok(
        &client,
        Op::DeleteInstance,
        json!({"instance_id": "o-1", "idempotency_key": "k-del"}),
    )
    .await;
    assert_eq!(replay.result["applied"], json!(false));
    assert_eq!(replay.result["wal_offset"], first.result["wal_offset"]);
    assert_eq!(meta_offset(&replay), None);
    // The APPLY_EVENT's key lives in the same namespace; a DELETE is a different request.
    assert_error(
        call(
            &client,
            Op::DeleteInstance,
            json!({"instance_id": "o-1", "idempotency_key": "k-pay"}),
        )
        .await,
        ErrorCode::Conflict,
        json!({"reason": "idempotency_key_reused", "idempotency_key": "k-pay",
            "original_wal_offset": applied.wal_offset}),
    );
    assert_error(
        call(
            &client,
            Op::DeleteInstance,
            json!({"instance_id": "o-1", "idempotency_key": 5}),
        )
        .await,
        ErrorCode::BadRequest,
        json!({"reason": "invalid_param", "param": "idempotency_key", "expected": "string"}),
    );
    server.assert_fresh_connection_works().await;
}

async fn seed_for_listing(client: &rstmdb_client::Client) {
    client
        .put_machine("invoice", 1, order_definition())
        .await
        .expect("PUT invoice");
    for id in ["o-3", "o-1", "o-5", "o-2", "o-4"] {
        create_order(client, id, json!({})).await;
    }
    client
        .apply_event("o-2", "PAY", Default::default())
        .await
        .expect("PAY o-2");
    client
        .apply_event("o-4", "PAY", Default::default())
        .await
        .expect("PAY o-4");
    client
        .delete_instance("o-5", None)
        .await
        .expect("DELETE o-5");
    ok(
        client,
        Op::CreateInstance,
        json!({"machine": "invoice", "version": 1, "instance_id": "i-1"}),
    )
    .await;
}

fn ids(page: &rstmdb_client::results::ListInstancesResult) -> Vec<&str> {
    page.instances.iter().map(|i| i.id.as_str()).collect()
}

#[tokio::test]
async fn list_instances_filters_orders_by_id_and_counts_the_total() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    seed_for_listing(&client).await;
    let all = client
        .list_instances(Default::default())
        .await
        .expect("LIST");
    assert_eq!(
        ids(&all),
        ["i-1", "o-1", "o-2", "o-3", "o-4"],
        "deleted o-5 is left out"
    );
    assert_eq!((all.total, all.has_more), (5, false));
    let paid_orders = client
        .list_instances(ListInstancesParams {
            machine: Some("order".into()),
            state: Some("paid".into()),
            ..Default::default()
        })
        .await
        .expect("LIST");
    assert_eq!(ids(&paid_orders), ["o-2", "o-4"]);
    assert_eq!(paid_orders.total, 2);
    let o2 = client.get_instance("o-2").await.expect("GET");
    let summary = &paid_orders.instances[0];
    assert_eq!(
        (
            summary.machine.as_str(),
            summary.version,
            summary.state.as_str()
        ),
        ("order", 1, "paid")
    );
    assert_eq!(
        (
            summary.created_at,
            summary.updated_at,
            summary.last_wal_offset
        ),
        (o2.created_at, o2.updated_at, o2.last_wal_offset)
    );
    let raw = ok(&client, Op::ListInstances, json!({"machine": "invoice"})).await;
    assert!(
        raw.result["instances"][0].get("ctx").is_none(),
        "no ctx in listings"
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn list_instances_pages_with_limit_offset_and_after() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    seed_for_listing(&client).await;
    let list = |limit: Option<u32>, offset: Option<u32>, after: Option<&str>| {
        let client = &client;
        let params = ListInstancesParams {
            machine: Some("order".into()),
            limit,
            offset,
            after: after.map(str::to_owned),
            ..Default::default()
        };
        async move { client.list_instances(params).await.expect("LIST") }
    };
    let page = list(Some(2), None, None).await;
    assert_eq!(
        (ids(&page), page.total, page.has_more),
        (vec!["o-1", "o-2"], 4, true)
    );
    let page = list(Some(2), None, Some("o-2")).await;
    assert_eq!(
        (ids(&page), page.total, page.has_more),
        (vec!["o-3", "o-4"], 4, false)
    );
    let page = list(Some(1), Some(1), Some("o-1")).await;
    assert_eq!(
        (ids(&page), page.has_more),
        (vec!["o-3"], true),
        "offset counts after `after`"
    );
    let page = list(Some(0), None, None).await;
    assert_eq!((ids(&page).len(), page.total, page.has_more), (0, 4, true));
    let page = list(None, Some(10), None).await;
    assert_eq!((ids(&page).len(), page.total, page.has_more), (0, 4, false));
    assert_error(
        call(&client, Op::ListInstances, json!({"limit": "ten"})).await,
        ErrorCode::BadRequest,
        json!({"reason": "invalid_param", "param": "limit", "expected": "u32"}),
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn list_instances_caps_limit_at_one_thousand_and_defaults_to_one_hundred() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    // 1,001 creates in one atomic batch would exceed 100 ops; use batches of 100.
    for chunk in 0..11 {
        let ops: Vec<_> = (0..100)
            .map(|i| rstmdb_client::params::BatchOp {
                op: Op::CreateInstance,
                params: obj(json!({"machine": "order", "version": 1,
                    "instance_id": format!("i-{:05}", chunk * 100 + i)})),
            })
            .collect();
        client
            .batch(rstmdb_client::params::BatchMode::Atomic, ops)
            .await
            .expect("BATCH of creates");
    }
    let page = client
        .list_instances(ListInstancesParams {
            limit: Some(5000),
            ..Default::default()
        })
        .await
        .expect("LIST");
    assert_eq!(
        (page.instances.len(), page.total, page.has_more),
        (1000, 1100, true)
    );
    let page = client
        .list_instances(Default::default())
        .await
        .expect("LIST");
    assert_eq!((page.instances.len(), page.has_more), (100, true));
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_null_instance_id_is_generated_and_numbers_round_trip_as_section_3_8_says() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let raw = ok(
        &client,
        Op::CreateInstance,
        serde_json::from_str(
            r#"{"machine":"order","version":1,"instance_id":null,"initial_ctx":
                {"hundred":1e2,"half":1.50,"one":1.0,"max":18446744073709551615,
                 "min":-9223372036854775808}}"#,
        )
        .expect("params"),
    )
    .await;
    let id = raw.result["instance_id"].as_str().expect("generated id");
    assert!(is_uuid_v4(id));
    let got = ok(&client, Op::GetInstance, json!({"instance_id": id})).await;
    assert_eq!(
        got.result["ctx"],
        json!({"hundred": 100.0, "half": 1.5, "one": 1.0, "max": u64::MAX, "min": i64::MIN})
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_delete_key_replays_even_after_the_id_was_re_created() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    let first = client
        .delete_instance("o-1", Some("del"))
        .await
        .expect("DELETE");
    let recreated = create_order(&client, "o-1", json!({})).await;
    let replay = client
        .delete_instance("o-1", Some("del"))
        .await
        .expect("replay");
    assert_eq!(
        (replay.wal_offset, replay.applied),
        (first.wal_offset, false)
    );
    let live = client
        .get_instance("o-1")
        .await
        .expect("the new instance stays live");
    assert_eq!(live.last_wal_offset, recreated);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_create_key_replays_after_the_instance_was_deleted() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let keyed = CreateInstanceOptions::default()
        .instance_id("o-1")
        .idempotency_key("c");
    let first = client
        .create_instance("order", 1, keyed.clone())
        .await
        .expect("CREATE");
    client.delete_instance("o-1", None).await.expect("DELETE");
    let replay = client
        .create_instance("order", 1, keyed)
        .await
        .expect("replay");
    assert_eq!(
        (replay.wal_offset, replay.applied),
        (first.wal_offset, false)
    );
    assert_eq!(
        client
            .get_instance("o-1")
            .await
            .map_err(server_error)
            .expect_err("still deleted")
            .code,
        ErrorCode::InstanceNotFound
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_checkpoint_forgets_deleted_instances_when_re_creation_is_allowed() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    client.delete_instance("o-1", None).await.expect("DELETE");
    client.compact(false).await.expect("COMPACT");
    assert_client_error(
        client.delete_instance("o-1", None).await,
        ErrorCode::InstanceNotFound,
        json!({"reason": "instance_not_found", "instance_id": "o-1"}),
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_checkpoint_keeps_a_tombstone_when_re_creation_is_disabled() {
    let config = ServerConfig::default().with_engine(|e| e.allow_instance_recreate = false);
    let server = OpsServer::start_with(config).await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    let deleted = client.delete_instance("o-1", None).await.expect("DELETE");
    client.compact(false).await.expect("COMPACT");
    client.close().await.expect("close");
    // Across a restart too, which loads the checkpoint.
    let server = server.stop().await.restart().await;
    let client = server.client().await;
    let repeat = client
        .delete_instance("o-1", None)
        .await
        .expect("repeat DELETE");
    assert_eq!(
        (repeat.wal_offset, repeat.applied),
        (deleted.wal_offset, false)
    );
    let outcome = client
        .create_instance(
            "order",
            1,
            CreateInstanceOptions::default().instance_id("o-1"),
        )
        .await;
    assert_client_error(
        outcome,
        ErrorCode::InstanceExists,
        json!({"reason": "instance_exists", "instance_id": "o-1"}),
    );
    assert_client_error(
        client.get_instance("o-1").await,
        ErrorCode::InstanceNotFound,
        json!({"reason": "instance_not_found", "instance_id": "o-1"}),
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn expired_and_evicted_keys_are_unknown_again() {
    let config = ServerConfig::default().with_engine(|e| e.idempotency_max_entries = 1);
    let server = OpsServer::start_with(config).await;
    let client = client_with_order(&server).await;
    let keyed = |id: &str, key: &str| {
        CreateInstanceOptions::default()
            .instance_id(id)
            .idempotency_key(key)
    };
    client
        .create_instance("order", 1, keyed("o-1", "k1"))
        .await
        .expect("k1");
    client
        .create_instance("order", 1, keyed("o-2", "k2"))
        .await
        .expect("k2 evicts k1");
    // k1 is unknown again, so this runs anew and meets the live instance.
    assert_client_error(
        client.create_instance("order", 1, keyed("o-1", "k1")).await,
        ErrorCode::InstanceExists,
        json!({"reason": "instance_exists", "instance_id": "o-1"}),
    );
    let replay = client
        .create_instance("order", 1, keyed("o-2", "k2"))
        .await
        .expect("k2");
    assert!(!replay.applied);

    let config = ServerConfig::default().with_engine(|e| e.idempotency_ttl_ms = 1);
    let server = OpsServer::start_with(config).await;
    let client = client_with_order(&server).await;
    client
        .create_instance("order", 1, keyed("o-1", "k"))
        .await
        .expect("k");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_client_error(
        client.create_instance("order", 1, keyed("o-1", "k")).await,
        ErrorCode::InstanceExists,
        json!({"reason": "instance_exists", "instance_id": "o-1"}),
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_create_retry_without_the_id_replays_the_recorded_one() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let first = client
        .create_instance(
            "order",
            1,
            CreateInstanceOptions::default()
                .instance_id("o-1")
                .idempotency_key("c"),
        )
        .await
        .expect("CREATE");
    let retry = client
        .create_instance(
            "order",
            1,
            CreateInstanceOptions::default().idempotency_key("c"),
        )
        .await
        .expect("retry without an id");
    assert_eq!(
        (retry.instance_id.as_str(), retry.wal_offset, retry.applied),
        ("o-1", first.wal_offset, false)
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn listings_on_another_connection_only_show_committed_instances() {
    let server = OpsServer::start().await;
    let writer = client_with_order(&server).await;
    let reader = server.client().await;
    let writes = tokio::spawn(async move {
        for i in 0..300 {
            create_order(&writer, &format!("w-{i:03}"), json!({})).await;
        }
    });
    let mut polls = 0;
    while !writes.is_finished() || polls == 0 {
        let params = ListInstancesParams {
            limit: Some(1000),
            ..Default::default()
        };
        let page = reader.list_instances(params).await.expect("LIST");
        let durable = reader.wal_stats().await.expect("WAL_STATS").durable_offset;
        for summary in &page.instances {
            assert!(
                summary.last_wal_offset < durable,
                "{} visible before durable",
                summary.id
            );
        }
        polls += 1;
    }
    writes.await.expect("writer task");
    server.assert_fresh_connection_works().await;
}
