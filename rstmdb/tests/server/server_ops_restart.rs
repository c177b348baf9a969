//! Stopping the real server and reopening the same data directory (spec §6.1): state, offsets,
//! sequences and idempotency keys are identical; acknowledged writes survive a stop under load;
//! checkpoints taken while writes race with them restart to the same state.

use rstmdb_client::params::ListInstancesParams;
use rstmdb_client::{ApplyEventOptions, Client, CreateInstanceOptions, Op};
use rstmdb_testkit::ops::*;
use serde_json::{Value, json};

/// Everything a client can observe about the database, to compare across a restart.
async fn observable_state(client: &Client) -> Value {
    let stats = client.wal_stats().await.expect("WAL_STATS");
    let records = client.wal_read(0, None).await.expect("WAL_READ").records;
    let machines = client.list_machines().await.expect("LIST_MACHINES");
    let listed = client
        .list_instances(Default::default())
        .await
        .expect("LIST_INSTANCES");
    let mut instances = Vec::new();
    for summary in &listed.instances {
        let raw = ok(client, Op::GetInstance, json!({"instance_id": summary.id})).await;
        instances.push(Value::Object(raw.result));
    }
    json!({
        "wal": [stats.entry_count, stats.segment_count, stats.total_size_bytes,
            stats.latest_offset, stats.oldest_offset, stats.checkpoint_offset,
            stats.bytes_since_checkpoint],
        "records": records.iter().map(|r| json!([r.sequence, r.offset, r.entry])).collect::<Vec<_>>(),
        "machines": machines.items.iter().map(|m| json!([m.machine, m.versions])).collect::<Vec<_>>(),
        "instances": instances,
    })
}

async fn write_workload(client: &Client, prefix: &str) {
    for i in 0..5 {
        let id = format!("{prefix}-{i}");
        create_order(client, &id, json!({"n": i})).await;
        let options = ApplyEventOptions::default()
            .event_id(format!("evt-{id}"))
            .idempotency_key(format!("pay-{id}"))
            .payload(obj(json!({"ready": true})));
        client.apply_event(&id, "PAY", options).await.expect("PAY");
    }
    client
        .apply_event(&format!("{prefix}-0"), "SHIP", Default::default())
        .await
        .expect("SHIP");
    client
        .delete_instance(&format!("{prefix}-1"), None)
        .await
        .expect("DELETE");
    let unit = json!({"mode": "atomic", "ops": [
        {"op": "CREATE_INSTANCE", "params": {"machine": "order", "version": 1, "instance_id": format!("{prefix}-u")}},
        {"op": "APPLY_EVENT", "params": {"instance_id": format!("{prefix}-u"), "event": "PAY"}}]});
    ok(client, Op::Batch, unit).await;
}

#[tokio::test]
async fn a_restart_over_the_same_data_dir_keeps_state_and_offsets() {
    let server = OpsServer::start_with(ServerConfig::default().segment_size_bytes(2048)).await;
    let client = client_with_order(&server).await;
    write_workload(&client, "a").await;
    // A checkpoint in the middle: the restart loads it and replays the WAL after it.
    client.compact(false).await.expect("COMPACT");
    write_workload(&client, "b").await;
    let before = observable_state(&client).await;
    let latest = latest_offset(&client).await;
    let entry_count = client.wal_stats().await.expect("WAL_STATS").entry_count;
    client.close().await.expect("close");

    let server = server.stop().await.restart().await;
    let client = server.client().await;
    assert_eq!(observable_state(&client).await, before);
    let stats = client.wal_stats().await.expect("WAL_STATS");
    assert_eq!(
        stats.durable_offset, stats.latest_offset,
        "synced at start-up"
    );
    // Idempotency keys survive, from the WAL (b-*) and from the checkpoint (a-*).
    for id in ["a-2", "b-2"] {
        let replay = client
            .apply_event(
                id,
                "PAY",
                ApplyEventOptions::default()
                    .event_id(format!("evt-{id}"))
                    .idempotency_key(format!("pay-{id}"))
                    .payload(obj(json!({"ready": true}))),
            )
            .await
            .expect("replay after restart");
        assert!(!replay.applied, "{id}");
    }
    // The next record continues the sequence and the offsets.
    let next = client
        .apply_event("b-2", "SHIP", Default::default())
        .await
        .expect("SHIP");
    let record = client
        .wal_read(next.wal_offset, Some(1))
        .await
        .expect("WAL_READ");
    assert_eq!(record.records[0].sequence, entry_count + 1);
    assert!(next.wal_offset >= latest);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_flush_survives_a_restart() {
    let config = ServerConfig::default().with_engine(|e| e.allow_flush_all = true);
    let server = OpsServer::start_with(config).await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    client.flush_all().await.expect("FLUSH_ALL");
    // Once from a checkpoint built across the flush, once from the WAL after it.
    client.compact(false).await.expect("COMPACT");
    client
        .put_machine("after", 1, order_definition())
        .await
        .expect("PUT after");
    client.flush_all().await.expect("FLUSH_ALL again");
    let before = observable_state(&client).await;
    client.close().await.expect("close");
    let server = server.stop().await.restart().await;
    let client = server.client().await;
    assert_eq!(observable_state(&client).await, before);
    assert!(client.list_machines().await.expect("LIST").items.is_empty());
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_graceful_stop_under_pipelined_writes_keeps_every_acknowledged_one() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let writer = client.clone();
    let writes = tokio::spawn(async move {
        let creates = (0..300).map(|i| {
            let client = &writer;
            async move {
                let options = CreateInstanceOptions::default().instance_id(format!("s-{i:03}"));
                client
                    .create_instance("order", 1, options)
                    .await
                    .ok()
                    .map(|c| c.instance_id)
            }
        });
        futures::future::join_all(creates).await
    });
    // Stop while the writes are in flight: the server finishes what it received (§6.1).
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let stopped = server.stop().await;
    let acknowledged: Vec<String> = writes
        .await
        .expect("writer task")
        .into_iter()
        .flatten()
        .collect();
    client.close().await.ok();
    let server = stopped.restart().await;
    let client = server.client().await;
    let listed = client.list_instances(ListInstancesParams {
        limit: Some(1000),
        ..Default::default()
    });
    let listed = listed.await.expect("LIST");
    let stored: Vec<&str> = listed.instances.iter().map(|i| i.id.as_str()).collect();
    for id in &acknowledged {
        assert!(
            stored.contains(&id.as_str()),
            "acknowledged {id} survives the restart"
        );
    }
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn compactions_racing_with_writes_restart_to_the_same_state() {
    let server = OpsServer::start_with(ServerConfig::default().segment_size_bytes(4096)).await;
    let client = client_with_order(&server).await;
    let writer = client.clone();
    let writes = tokio::spawn(async move {
        for round in 0..4 {
            write_workload(&writer, &format!("r{round}")).await;
        }
    });
    let mut checkpoints = 0;
    while !writes.is_finished() {
        checkpoints += client
            .compact(false)
            .await
            .expect("COMPACT")
            .snapshots_created;
    }
    writes.await.expect("writer task");
    assert!(checkpoints >= 1);
    let before = observable_state(&client).await;
    client.close().await.expect("close");
    let server = server.stop().await.restart().await;
    let client = server.client().await;
    assert_eq!(observable_state(&client).await, before);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn io_stats_after_a_restart_count_what_recovery_read() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    for id in ["a", "b", "c", "d"] {
        create_order(&client, id, json!({})).await;
    }
    let before = client.wal_stats().await.expect("WAL_STATS");
    client.close().await.expect("close");
    let server = server.stop().await.restart().await;
    let client = server.client().await;
    let after = client.wal_stats().await.expect("WAL_STATS");
    // Counters run since process start (here: since the database was reopened); recovery read
    // every record of the segment back, and nothing was written since.
    assert_eq!(
        after.io_stats.reads, before.entry_count,
        "{:?}",
        after.io_stats
    );
    assert_eq!(after.io_stats.bytes_read, before.total_size_bytes);
    assert_eq!(
        (after.io_stats.writes, after.io_stats.bytes_written),
        (0, 0)
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn atomic_units_spanning_segments_restart_whole() {
    let server = OpsServer::start_with(ServerConfig::default().segment_size_bytes(1024)).await;
    let client = client_with_order(&server).await;
    create_many(&client, 150).await;
    let before = observable_state(&client).await;
    let segments = client.wal_stats().await.expect("WAL_STATS").segment_count;
    assert!(
        segments > 10,
        "the 100-record unit spans segments: {segments}"
    );
    client.close().await.expect("close");
    let server = server.stop().await.restart().await;
    let client = server.client().await;
    assert_eq!(observable_state(&client).await, before);
    server.assert_fresh_connection_works().await;
}
