//! DELETE_INSTANCE and LIST_INSTANCES against the real server (spec §4.12, §4.13, §6.2, §6.4):
//! applied/repeat deletes, instance-scoped keys, tombstones across checkpoints and restarts,
//! filters, paging, the limit cap and committed-only visibility.

use rstmdb_client::params::ListInstancesParams;
use rstmdb_client::{CreateInstanceOptions, ErrorCode, Op};
use rstmdb_testkit::ops::*;
use serde_json::json;

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
async fn a_checkpoint_forgets_deleted_instances_when_re_creation_is_allowed() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    let deleted = client
        .delete_instance("o-1", Some("del"))
        .await
        .expect("DELETE");
    client.compact(false).await.expect("COMPACT");
    assert_client_error(
        client.delete_instance("o-1", None).await,
        ErrorCode::InstanceNotFound,
        json!({"reason": "instance_not_found", "instance_id": "o-1"}),
    );
    // A keyed retry still replays from the idempotency table (§6.4).
    let replay = client
        .delete_instance("o-1", Some("del"))
        .await
        .expect("keyed retry");
    assert_eq!(
        (replay.wal_offset, replay.applied),
        (deleted.wal_offset, false)
    );
    client.close().await.expect("close");
    // And the same after a restart from that checkpoint.
    let server = server.stop().await.restart().await;
    let client = server.client().await;
    assert_client_error(
        client.get_instance("o-1").await,
        ErrorCode::InstanceNotFound,
        json!({"reason": "instance_not_found", "instance_id": "o-1"}),
    );
    let replay = client
        .delete_instance("o-1", Some("del"))
        .await
        .expect("keyed retry");
    assert_eq!(
        (replay.wal_offset, replay.applied),
        (deleted.wal_offset, false)
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

#[tokio::test]
async fn a_page_that_would_pass_16_mib_is_cut_short_with_has_more() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    // Ids are any string, so 170 ids of 100,000 bytes make a 17 MB page.
    let id = |i: usize| format!("{i:03}{}", "x".repeat(99_997));
    for chunk in 0..17 {
        let ops = (chunk * 10..chunk * 10 + 10)
            .map(|i| rstmdb_client::params::BatchOp {
                op: Op::CreateInstance,
                params: obj(json!({"machine": "order", "version": 1, "instance_id": id(i)})),
            })
            .collect();
        client
            .batch(rstmdb_client::params::BatchMode::Atomic, ops)
            .await
            .expect("BATCH");
    }
    let params = ListInstancesParams {
        limit: Some(1000),
        ..Default::default()
    };
    let first = client.list_instances(params).await.expect("LIST");
    assert!(
        first.instances.len() < 170,
        "{} returned",
        first.instances.len()
    );
    assert!(
        first.instances.len() > 150,
        "{} returned",
        first.instances.len()
    );
    assert_eq!((first.total, first.has_more), (170, true));
    let last = first.instances.last().expect("a last id").id.clone();
    let params = ListInstancesParams {
        limit: Some(1000),
        after: Some(last),
        ..Default::default()
    };
    let rest = client.list_instances(params).await.expect("LIST after");
    assert_eq!(first.instances.len() + rest.instances.len(), 170);
    assert!(!rest.has_more);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn create_keys_and_instance_keys_live_in_different_scopes() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let keyed = CreateInstanceOptions::default()
        .instance_id("o-1")
        .idempotency_key("k");
    client
        .create_instance("order", 1, keyed)
        .await
        .expect("CREATE with k");
    let deleted = client
        .delete_instance("o-1", Some("k"))
        .await
        .expect("DELETE with k");
    assert!(
        deleted.applied,
        "the global CREATE scope does not hold instance keys"
    );
    server.assert_fresh_connection_works().await;
}

/// A page after an offset above 10,000 walks what it skips and runs as a long read (off the
/// runtime's workers): it must still be the page a cursor gives, filtered or not.
#[tokio::test]
async fn a_page_after_a_large_offset_is_the_page_the_cursor_gives() {
    use rstmdb_client::params::{BatchMode, BatchOp};
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    const INSTANCES: u32 = 10_010;
    for first in (0..INSTANCES).step_by(100) {
        let ops = (first..(first + 100).min(INSTANCES))
            .map(|n| BatchOp {
                op: Op::CreateInstance,
                params: obj(json!({"machine": "order", "version": 1,
                    "instance_id": format!("o-{n:05}")})),
            })
            .collect();
        client.batch(BatchMode::Atomic, ops).await.expect("BATCH");
    }
    for machine in [None, Some("order")] {
        let params = ListInstancesParams {
            machine: machine.map(Into::into),
            limit: Some(3),
            offset: Some(10_005),
            ..Default::default()
        };
        let page = client.list_instances(params).await.expect("LIST");
        assert_eq!(
            (ids(&page), page.total, page.has_more),
            (vec!["o-10005", "o-10006", "o-10007"], 10_010, true),
            "{machine:?}"
        );
        let params = ListInstancesParams {
            machine: machine.map(Into::into),
            limit: Some(3),
            offset: Some(10_001),
            after: Some("o-00003".into()),
            ..Default::default()
        };
        let page = client.list_instances(params).await.expect("LIST");
        assert_eq!(
            (ids(&page), page.has_more),
            (vec!["o-10005", "o-10006", "o-10007"], true),
            "offset after a cursor, {machine:?}"
        );
    }
}
