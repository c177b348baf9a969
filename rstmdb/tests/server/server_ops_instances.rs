//! CREATE_INSTANCE and GET_INSTANCE against the real server
//! (spec §4.10, §4.11, §6.2, §6.4, §6.5): happy paths, every listed error with its details,
//! idempotent replays and the `meta` rule of §3.4.

use rstmdb_client::{CreateInstanceOptions, ErrorCode, Op};
use rstmdb_testkit::ops::*;
use serde_json::json;

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
async fn a_create_retry_with_an_empty_ctx_is_the_same_as_one_without() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let first = ok(
        &client,
        Op::CreateInstance,
        json!({"machine": "order", "version": 1, "idempotency_key": "k"}),
    )
    .await;
    let retry = ok(
        &client,
        Op::CreateInstance,
        json!({"machine": "order", "version": 1, "initial_ctx": {}, "idempotency_key": "k"}),
    )
    .await;
    assert_eq!(retry.result["instance_id"], first.result["instance_id"]);
    assert_eq!(retry.result["applied"], json!(false));
    server.assert_fresh_connection_works().await;
}
