//! FLUSH_ALL, INFO, REPLICATION_STATUS, REPLICATE, the auth gate, `record_too_large`, pipelining
//! through the client, against the real server (spec §4.0, §4.5, §4.6, §4.23, §4.24, §2.4, §3.7).

use rstmdb_client::{ApplyEventOptions, Client, CreateInstanceOptions, ErrorCode, Op};
use rstmdb_testkit::ops::*;
use serde_json::{Value, json};

/// The WAL record payload cap (spec §2.4): 16 MiB − 64 KiB.
const MAX_RECORD_BYTES: u64 = 16_711_680;

#[tokio::test]
async fn flush_all_is_refused_while_disabled() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let before = latest_offset(&client).await;
    assert_client_error(
        client.flush_all().await,
        ErrorCode::BadRequest,
        json!({"reason": "flush_all_disabled"}),
    );
    assert_eq!(latest_offset(&client).await, before);
    assert_eq!(client.list_machines().await.expect("LIST").items.len(), 1);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn flush_all_erases_everything_but_offsets_and_sequences_keep_counting() {
    let config = ServerConfig::default().with_engine(|e| e.allow_flush_all = true);
    let server = OpsServer::start_with(config).await;
    let client = client_with_order(&server).await;
    client
        .put_machine("order", 2, order_definition())
        .await
        .expect("PUT v2");
    let keyed = CreateInstanceOptions::default()
        .instance_id("o-1")
        .idempotency_key("create-o-1");
    client
        .create_instance("order", 1, keyed.clone())
        .await
        .expect("CREATE o-1");
    create_order(&client, "o-2", json!({})).await;
    create_order(&client, "o-3", json!({})).await;
    client
        .delete_instance("o-3", None)
        .await
        .expect("DELETE o-3");
    let before = client.wal_stats().await.expect("WAL_STATS");

    let raw = ok(&client, Op::FlushAll, json!({"ignored": 1})).await;
    assert_eq!(
        raw.result,
        obj(json!({"flushed": true, "instances_removed": 2, "machines_removed": 2}))
    );
    assert_eq!(meta_offset(&raw), Some(before.latest_offset));
    let after = client.wal_stats().await.expect("WAL_STATS");
    assert_eq!(
        after.entry_count,
        before.entry_count + 1,
        "sequences are not reset"
    );
    let record = client
        .wal_read(before.latest_offset, None)
        .await
        .expect("WAL_READ");
    assert_eq!(record.records[0].sequence, before.entry_count + 1);
    let mut entry = record.records[0].entry.clone();
    assert!(entry.remove("timestamp").is_some_and(|t| t.is_i64()));
    assert_eq!(Value::Object(entry), json!({"type": "flush_all"}));

    assert!(client.list_machines().await.expect("LIST").items.is_empty());
    let listed = client
        .list_instances(Default::default())
        .await
        .expect("LIST");
    assert_eq!((listed.instances.len(), listed.total), (0, 0));
    for id in ["o-1", "o-3"] {
        assert_eq!(
            client
                .get_instance(id)
                .await
                .map_err(server_error)
                .expect_err("gone")
                .code,
            ErrorCode::InstanceNotFound
        );
    }
    // Keys were cleared: the same keyed CREATE runs anew, at a new offset.
    client
        .put_machine("order", 1, order_definition())
        .await
        .expect("PUT again");
    let again = client
        .create_instance("order", 1, keyed)
        .await
        .expect("CREATE again");
    assert!(again.applied, "the key is unknown again");
    assert!(again.wal_offset > before.latest_offset);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn info_lists_every_feature_in_the_server_order() {
    let server = OpsServer::start().await;
    let client = server.client().await;
    let raw = ok(&client, Op::Info, json!({"whatever": [1]})).await;
    let mut result = raw.result;
    let version = result.remove("server_version").expect("server_version");
    assert!(
        version.as_str().is_some_and(|v| v.split('.').count() == 3),
        "{version}"
    );
    assert_eq!(
        Value::Object(result),
        json!({"server_name": "rstmdb", "protocol_version": 1,
            "features": ["idempotency", "batch", "wal_read", "atomic_batch", "watch_from_offset",
                "payload_guards", "ordered_transitions", "error_details"],
            "max_frame_bytes": 16_777_216, "max_batch_ops": 100})
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn replication_status_is_standalone_and_replicate_ops_are_internal() {
    let server = OpsServer::start().await;
    let client = server.client().await;
    let raw = ok(&client, Op::ReplicationStatus, json!({})).await;
    assert_eq!(raw.result, obj(json!({"role": "standalone"})));
    assert_eq!(meta_offset(&raw), None);
    for op in [Op::Replicate, Op::ReplicateAck] {
        assert_error(
            call(&client, op, json!({"anything": true})).await,
            ErrorCode::BadRequest,
            json!({"reason": "replication_internal"}),
        );
    }
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn ops_that_need_auth_are_unauthorized_before_their_params_are_read() {
    let server = OpsServer::start_with(ServerConfig::default().auth_required()).await;
    // No token: the client sends HELLO only.
    let anonymous = Client::connect(server.client_options())
        .await
        .expect("connects without AUTH");
    assert!(anonymous.ping().await.expect("PING needs no auth").pong);
    let needs_auth = [
        Op::Info,
        Op::ReplicationStatus,
        Op::PutMachine,
        Op::GetMachine,
        Op::ListMachines,
        Op::CreateInstance,
        Op::GetInstance,
        Op::ListInstances,
        Op::DeleteInstance,
        Op::ApplyEvent,
        Op::Batch,
        Op::SnapshotInstance,
        Op::WalRead,
        Op::WalStats,
        Op::Compact,
        Op::FlushAll,
    ];
    for op in needs_auth {
        // Params that would be a BAD_REQUEST: the auth gate must answer first.
        assert_error(
            call(
                &anonymous,
                op,
                json!({"machine": 5, "ops": "x", "from_offset": "y"}),
            )
            .await,
            ErrorCode::Unauthorized,
            json!({"reason": "auth_required"}),
        );
    }
    assert_client_error(
        anonymous.auth("wrong-token").await,
        ErrorCode::AuthFailed,
        json!({"reason": "invalid_token"}),
    );
    assert!(anonymous.auth(TOKEN).await.expect("AUTH").authenticated);
    anonymous
        .put_machine("order", 1, order_definition())
        .await
        .expect("authenticated writes work");
    anonymous.close().await.expect("close");
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn an_apply_whose_record_would_pass_the_wal_cap_is_record_too_large() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    // Each request fits a 16 MiB frame, but the apply_event record holds the payload AND the
    // merged ctx, so together they pass the record cap.
    let half = "x".repeat(8_500_000);
    create_order(&client, "big", json!({"a": half})).await;
    let before = client.wal_stats().await.expect("WAL_STATS");
    let mut payload = serde_json::Map::new();
    payload.insert("b".to_owned(), Value::String(half));
    let outcome = client
        .apply_event("big", "PAY", ApplyEventOptions::default().payload(payload))
        .await;
    let error = server_error(outcome.expect_err("the record is too large"));
    assert_eq!(
        (error.code.clone(), error.reason()),
        (ErrorCode::BadRequest, Some("record_too_large"))
    );
    let details = error.details.as_ref().expect("details");
    let mut keys: Vec<&str> = details.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["limit", "reason", "size"]);
    assert_eq!(details["limit"], json!(MAX_RECORD_BYTES));
    let size = details["size"].as_u64().expect("size is a u64");
    // The record holds the 8.5 MB payload and the 17 MB merged ctx.
    assert!(size > 25_500_000, "size {size}");

    let after = client.wal_stats().await.expect("WAL_STATS");
    assert_eq!(
        (after.entry_count, after.latest_offset),
        (before.entry_count, before.latest_offset)
    );
    let got = client.get_instance("big").await.expect("GET");
    assert_eq!(got.state, "created", "nothing was applied");
    assert!(got.ctx.get("b").is_none());
    // The refused record took no sequence number: the next one gets entry_count + 1.
    client
        .apply_event("big", "PAY", Default::default())
        .await
        .expect("a small PAY");
    let next = client
        .wal_read(before.latest_offset, None)
        .await
        .expect("WAL_READ");
    assert_eq!(next.records[0].sequence, before.entry_count + 1);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_thousand_pipelined_requests_on_one_connection_all_succeed() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let creates = (0..1000).map(|i| {
        let client = &client;
        async move {
            let options = CreateInstanceOptions::default().instance_id(format!("p-{i:04}"));
            (i, client.create_instance("order", 1, options).await)
        }
    });
    let answers = futures::future::join_all(creates).await;
    let mut offsets = Vec::with_capacity(answers.len());
    for (i, answer) in answers {
        let created = answer.expect("pipelined CREATE");
        assert_eq!(
            created.instance_id,
            format!("p-{i:04}"),
            "answers match their requests"
        );
        offsets.push(created.wal_offset);
    }
    offsets.sort_unstable();
    offsets.dedup();
    assert_eq!(offsets.len(), 1000, "every create has its own record");
    let listed = client
        .list_instances(Default::default())
        .await
        .expect("LIST");
    assert_eq!(listed.total, 1000);
    // Group commit (§6.1): syncs that ran while writes queued up covered several records.
    let stats = client.wal_stats().await.expect("WAL_STATS");
    assert!(stats.io_stats.fsyncs < 1000, "{:?}", stats.io_stats);
    assert!(stats.records_per_fsync > 1.0, "{}", stats.records_per_fsync);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_create_whose_ctx_alone_passes_the_record_cap_is_record_too_large() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    // 16,720,000 bytes of ctx fit in a 16 MiB frame (16,777,216) but not in a record
    // (16,711,680): the 64 KiB between the two limits is reachable over the wire.
    let ctx = json!({"blob": "x".repeat(16_720_000)});
    let before = client.wal_stats().await.expect("WAL_STATS");
    for mode in ["alone", "atomic"] {
        let create =
            json!({"machine": "order", "version": 1, "instance_id": "huge", "initial_ctx": ctx});
        let outcome = if mode == "alone" {
            call(&client, Op::CreateInstance, create).await
        } else {
            let ops = json!([{"op": "CREATE_INSTANCE", "params": create}]);
            call(&client, Op::Batch, json!({"mode": "atomic", "ops": ops})).await
        };
        let error = outcome.expect_err("too large");
        assert_eq!(
            (error.code.clone(), error.reason()),
            (ErrorCode::BadRequest, Some("record_too_large"))
        );
        assert_eq!(error.detail("limit"), Some(&json!(MAX_RECORD_BYTES)));
        assert!(
            error
                .detail("size")
                .and_then(Value::as_u64)
                .is_some_and(|s| s > 16_720_000)
        );
        if mode == "atomic" {
            assert_eq!(
                (error.detail("index"), error.detail("op")),
                (Some(&json!(0)), Some(&json!("CREATE_INSTANCE")))
            );
        }
    }
    let after = client.wal_stats().await.expect("WAL_STATS");
    assert_eq!(
        (after.entry_count, after.latest_offset),
        (before.entry_count, before.latest_offset)
    );
    assert_eq!(
        client
            .get_instance("huge")
            .await
            .map_err(server_error)
            .expect_err("not created")
            .code,
        ErrorCode::InstanceNotFound
    );
    server.assert_fresh_connection_works().await;
}

/// Creates `edge` with a ctx string of `blob_len` bytes; the error's `size` when refused.
async fn create_with_blob(client: &Client, blob_len: usize) -> Result<u64, u64> {
    let ctx = json!({"blob": "x".repeat(blob_len)});
    let params =
        json!({"machine": "order", "version": 1, "instance_id": "edge", "initial_ctx": ctx});
    match call(client, Op::CreateInstance, params).await {
        Ok(raw) => Ok(u64_field(&raw.result, "wal_offset")),
        Err(error) => {
            assert_eq!(error.reason(), Some("record_too_large"), "{error:?}");
            Err(error.detail("size").and_then(Value::as_u64).expect("size"))
        }
    }
}

#[tokio::test]
async fn a_record_exactly_at_the_cap_is_stored_read_back_and_served() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let probe_len = 16_720_000;
    let probe_size = create_with_blob(&client, probe_len)
        .await
        .expect_err("over the cap");
    // The record grows byte for byte with the blob, so this blob makes it exactly the cap.
    let exact_len = probe_len - usize::try_from(probe_size - MAX_RECORD_BYTES).expect("small");
    assert_eq!(
        create_with_blob(&client, exact_len + 1).await,
        Err(MAX_RECORD_BYTES + 1),
        "one byte over"
    );
    let offset = create_with_blob(&client, exact_len)
        .await
        .expect("equal to the cap is allowed");

    let got = client
        .get_instance("edge")
        .await
        .expect("GET_INSTANCE fits a response");
    assert_eq!(got.ctx["blob"].as_str().map(str::len), Some(exact_len));
    let read = client.wal_read(offset, None).await.expect("WAL_READ");
    assert_eq!(read.records.len(), 1, "the one record is returned alone");
    assert_eq!(read.records[0].offset, offset);
    client
        .snapshot_instance("edge")
        .await
        .expect("SNAPSHOT_INSTANCE");
    let stats = client.wal_stats().await.expect("WAL_STATS");
    assert_eq!(stats.entry_count, 2, "refused records took no sequence");
    client.close().await.expect("close");
    // Recovery reads the largest possible record back.
    let server = server.stop().await.restart().await;
    let client = server.client().await;
    let again = client
        .get_instance("edge")
        .await
        .expect("GET after restart");
    assert_eq!(again.last_wal_offset, offset);
    assert_eq!(
        client.wal_stats().await.expect("WAL_STATS").latest_offset,
        stats.latest_offset
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_lowered_frame_limit_is_reported_and_a_larger_request_ends_only_its_connection() {
    let server = OpsServer::start_with(ServerConfig::default().max_frame_bytes(65_536)).await;
    let client = server.client().await;
    assert_eq!(client.info().await.expect("INFO").max_frame_bytes, 65_536);
    // A request just under the limit reaches the database.
    let ctx = json!({"blob": "x".repeat(65_000)});
    let params = json!({"machine": "order", "version": 1, "definition": order_definition()});
    ok(&client, Op::PutMachine, params).await;
    let created = call(
        &client,
        Op::CreateInstance,
        json!({"machine": "order", "version": 1, "instance_id": "near", "initial_ctx": ctx}),
    )
    .await;
    assert!(created.is_ok(), "{created:?}");
    // Over the limit: a framing fault (too_large), so this connection closes, unexecuted.
    let over = json!({"blob": "x".repeat(70_000)});
    let params =
        json!({"machine": "order", "version": 1, "instance_id": "over", "initial_ctx": over});
    let outcome = client.request(Op::CreateInstance, obj(params)).await;
    assert!(
        matches!(
            outcome,
            Err(rstmdb_client::ClientError::ConnectionLost { .. })
        ),
        "{outcome:?}"
    );
    let fresh = server.client().await;
    fresh
        .get_instance("near")
        .await
        .expect("the earlier create stands");
    assert_eq!(
        fresh
            .get_instance("over")
            .await
            .map_err(server_error)
            .expect_err("never ran")
            .code,
        ErrorCode::InstanceNotFound
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn flush_all_erases_tombstones_so_reserved_ids_are_free_again() {
    let config = ServerConfig::default().with_engine(|e| {
        e.allow_flush_all = true;
        e.allow_instance_recreate = false;
    });
    let server = OpsServer::start_with(config).await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    client.delete_instance("o-1", None).await.expect("DELETE");
    let flushed = client.flush_all().await.expect("FLUSH_ALL");
    assert_eq!(
        (flushed.instances_removed, flushed.machines_removed),
        (0, 1),
        "o-1 was not live"
    );
    assert_client_error(
        client.delete_instance("o-1", None).await,
        ErrorCode::InstanceNotFound,
        json!({"reason": "instance_not_found", "instance_id": "o-1"}),
    );
    client
        .put_machine("order", 1, order_definition())
        .await
        .expect("PUT");
    let created = client
        .create_instance(
            "order",
            1,
            CreateInstanceOptions::default().instance_id("o-1"),
        )
        .await
        .expect("the id is no longer reserved");
    assert!(created.applied);
    server.assert_fresh_connection_works().await;
}
