//! SNAPSHOT_INSTANCE, WAL_READ and WAL_STATS against the real server (spec §4.16–§4.18, §6.10):
//! snapshot files on disk, paging and end of log, committed-only reads, the 16 MiB cap, segment
//! placement and every statistic after a known workload.

use rstmdb_client::{ErrorCode, Op};
use rstmdb_testkit::ops::*;
use serde_json::{Value, json};

#[tokio::test]
async fn snapshot_instance_stores_a_file_whose_crc32c_is_the_checksum() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "order-1", json!({"customer": "alice"})).await;
    let paid = client
        .apply_event("order-1", "PAY", Default::default())
        .await
        .expect("PAY");
    let raw = ok(
        &client,
        Op::SnapshotInstance,
        json!({"instance_id": "order-1"}),
    )
    .await;
    assert_eq!(meta_offset(&raw), None, "a snapshot is not a WAL record");
    let snapshot_id = raw.result["snapshot_id"].as_str().expect("snapshot_id");
    let uuid = snapshot_id.strip_prefix("snap-").expect("snap- prefix");
    assert_eq!(
        uuid::Uuid::parse_str(uuid).expect("uuid").get_version_num(),
        4
    );
    assert_eq!(raw.result["instance_id"], json!("order-1"));
    assert_eq!(u64_field(&raw.result, "wal_offset"), paid.wal_offset);

    let path = server
        .data_dir()
        .join("snapshots")
        .join(format!("{snapshot_id}.json"));
    let bytes = std::fs::read(&path).expect("the snapshot file exists under the data dir");
    assert_eq!(u64_field(&raw.result, "size_bytes"), bytes.len() as u64);
    assert_eq!(
        raw.result["checksum"],
        json!(format!("{:08x}", crc32c::crc32c(&bytes)))
    );
    let stored: Value = serde_json::from_slice(&bytes).expect("the file is JSON");
    assert_eq!(stored["snapshot_id"], json!(snapshot_id));
    assert_eq!(
        (
            &stored["instance_id"],
            &stored["machine"],
            &stored["version"],
            &stored["state"]
        ),
        (
            &json!("order-1"),
            &json!("order"),
            &json!(1),
            &json!("paid")
        )
    );
    assert_eq!(stored["ctx"], json!({"customer": "alice"}));
    assert_eq!(stored["wal_offset"], json!(paid.wal_offset));
    assert!(stored["created_at"].as_i64().is_some_and(|t| t > 0));
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn snapshot_of_an_unknown_or_deleted_instance_is_instance_not_found() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    client.delete_instance("o-1", None).await.expect("DELETE");
    for id in ["o-1", "never"] {
        assert_client_error(
            client.snapshot_instance(id).await,
            ErrorCode::InstanceNotFound,
            json!({"reason": "instance_not_found", "instance_id": id}),
        );
    }
    assert_error(
        call(&client, Op::SnapshotInstance, json!({})).await,
        ErrorCode::BadRequest,
        json!({"reason": "missing_param", "param": "instance_id"}),
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn wal_read_pages_a_thousand_records_by_default_and_ends_with_null() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_many(&client, 1100).await;
    let first = client.wal_read(0, None).await.expect("WAL_READ from 0");
    assert_eq!(first.records.len(), 1000, "limit defaults to 1,000");
    assert_eq!(
        first.records[0].offset, FIRST_OFFSET,
        "0 reads from the oldest record"
    );
    let sequences: Vec<u64> = first.records.iter().map(|r| r.sequence).collect();
    assert_eq!(
        sequences,
        (1..=1000).collect::<Vec<_>>(),
        "sequences are dense"
    );
    assert!(first.records.windows(2).all(|w| w[0].offset < w[1].offset));
    let last = first.records.last().expect("a last record");
    assert_eq!(first.next_offset, Some(last.offset + 1));

    let rest = client
        .wal_read(last.offset + 1, None)
        .await
        .expect("WAL_READ on");
    assert_eq!(
        rest.records.len(),
        101,
        "1 put_machine + 1,100 creates in all"
    );
    assert_eq!(rest.records[0].sequence, 1001);
    let end = rest.next_offset.expect("records were returned");
    let at_end = client
        .wal_read(end, Some(5))
        .await
        .expect("WAL_READ at the end");
    assert!(at_end.records.is_empty());
    assert_eq!(at_end.next_offset, None);
    let none = client.wal_read(0, Some(0)).await.expect("limit 0");
    assert_eq!((none.records.len(), none.next_offset), (0, None));
    let two = client
        .wal_read(FIRST_OFFSET + 1, Some(2))
        .await
        .expect("limit 2");
    assert_eq!(
        two.records[0].sequence, 2,
        "offset + 1 means after that record"
    );
    assert_eq!(two.records.len(), 2);
    assert_error(
        call(&client, Op::WalRead, json!({"limit": 1})).await,
        ErrorCode::BadRequest,
        json!({"reason": "missing_param", "param": "from_offset"}),
    );
    assert_error(
        call(
            &client,
            Op::WalRead,
            json!({"from_offset": 0, "limit": 1.5}),
        )
        .await,
        ErrorCode::BadRequest,
        json!({"reason": "invalid_param", "param": "limit", "expected": "u64"}),
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn wal_read_entries_carry_the_spec_fields() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "order-1", json!({"customer": "alice"})).await;
    ok(
        &client,
        Op::ApplyEvent,
        json!({"instance_id": "order-1", "event": "PAY", "payload": {"ready": true},
            "event_id": "evt-1", "idempotency_key": "pay-1", "expected_state": "created"}),
    )
    .await;
    client
        .delete_instance("order-1", None)
        .await
        .expect("DELETE");
    let records = client.wal_read(0, None).await.expect("WAL_READ").records;
    let mut entries: Vec<Value> = records
        .into_iter()
        .map(|r| Value::Object(r.entry))
        .collect();
    for entry in &mut entries {
        assert!(
            entry["timestamp"].as_i64().is_some_and(|t| t > 0),
            "{entry}"
        );
        entry.as_object_mut().expect("object").remove("timestamp");
    }
    assert_eq!(
        entries,
        [
            json!({"type": "put_machine", "machine": "order", "version": 1,
                "definition_hash": ORDER_CHECKSUM, "definition": order_definition()}),
            json!({"type": "create_instance", "instance_id": "order-1", "machine": "order",
                "version": 1, "initial_state": "created", "initial_ctx": {"customer": "alice"}}),
            json!({"type": "apply_event", "instance_id": "order-1", "machine": "order",
                "version": 1, "event": "PAY", "from_state": "created", "to_state": "paid",
                "payload": {"ready": true}, "ctx": {"customer": "alice", "ready": true},
                "event_id": "evt-1", "idempotency_key": "pay-1", "expected_state": "created"}),
            json!({"type": "delete_instance", "instance_id": "order-1"}),
        ]
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn wal_read_on_another_connection_only_sees_committed_records() {
    let server = OpsServer::start().await;
    let writer = client_with_order(&server).await;
    let reader = server.client().await;
    let writes = tokio::spawn(async move {
        create_many(&writer, 500).await;
        writer
    });
    let mut polls = 0;
    while !writes.is_finished() || polls == 0 {
        let read = reader.wal_read(0, None).await.expect("WAL_READ");
        let durable = reader.wal_stats().await.expect("WAL_STATS").durable_offset;
        if let Some(last) = read.records.last() {
            assert!(
                last.offset < durable,
                "record {} seen before it was durable",
                last.offset
            );
        }
        polls += 1;
    }
    writes.await.expect("writer task");
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn wal_stats_describe_a_known_workload() {
    let server = OpsServer::start().await;
    let client = server.client().await;
    let empty = client.wal_stats().await.expect("WAL_STATS");
    assert_eq!(
        (
            empty.entry_count,
            empty.segment_count,
            empty.total_size_bytes,
            empty.latest_offset
        ),
        (0, 1, 0, FIRST_OFFSET)
    );
    assert_eq!(
        (empty.durable_offset, empty.oldest_offset),
        (FIRST_OFFSET, 0)
    );
    assert_eq!(
        (empty.checkpoint_offset, empty.bytes_since_checkpoint),
        (None, 0)
    );
    assert_eq!(empty.records_per_fsync, 0.0);

    client
        .put_machine("order", 1, order_definition())
        .await
        .expect("PUT");
    for id in ["a", "b", "c"] {
        create_order(&client, id, json!({})).await;
    }
    client
        .apply_event("a", "PAY", Default::default())
        .await
        .expect("PAY");
    let stats = client.wal_stats().await.expect("WAL_STATS");
    let records = client.wal_read(0, None).await.expect("WAL_READ").records;
    assert_eq!(records.len(), 5);
    assert_eq!(stats.entry_count, 5, "the newest record's sequence");
    assert_eq!(stats.segment_count, 1);
    assert_eq!(
        stats.total_size_bytes,
        stats.latest_offset & ((1 << 40) - 1)
    );
    assert!(
        stats.latest_offset > records[4].offset,
        "the end of the last record"
    );
    assert_eq!(
        stats.durable_offset, stats.latest_offset,
        "every_write, nothing in flight"
    );
    assert_eq!(stats.oldest_offset, 0);
    assert_eq!(stats.checkpoint_offset, None);
    assert_eq!(stats.bytes_since_checkpoint, stats.total_size_bytes);
    assert_eq!(stats.fsync_policy, "every_write");
    assert_eq!(stats.io_stats.writes, 5);
    assert_eq!(stats.io_stats.bytes_written, stats.total_size_bytes);
    assert!(
        (1..=5).contains(&stats.io_stats.fsyncs),
        "{:?}",
        stats.io_stats
    );
    assert!(stats.io_stats.write_calls >= 1);
    assert!(stats.records_per_fsync >= 1.0);
    assert!(stats.fsync_latency_us.p50 <= stats.fsync_latency_us.p99);
    assert_eq!(stats.io_stats.reads == 0, stats.io_stats.bytes_read == 0);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn wal_read_returns_fewer_records_rather_than_pass_16_mib() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    for id in ["big-1", "big-2", "big-3"] {
        let ctx = json!({"blob": "x".repeat(6_000_000)});
        ok(
            &client,
            Op::CreateInstance,
            json!({"machine": "order", "version": 1, "instance_id": id, "initial_ctx": ctx}),
        )
        .await;
    }
    let first = client.wal_read(0, None).await.expect("WAL_READ");
    assert_eq!(
        first.records.len(),
        3,
        "put_machine and two 6 MB creates fit, a third does not"
    );
    let next = first.next_offset.expect("more to read");
    let rest = client.wal_read(next, None).await.expect("WAL_READ on");
    assert_eq!(rest.records.len(), 1);
    assert_eq!(rest.records[0].entry["instance_id"], json!("big-3"));
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_record_larger_than_a_segment_gets_a_segment_of_its_own() {
    let server = OpsServer::start_with(ServerConfig::default().segment_size_bytes(1024)).await;
    let client = client_with_order(&server).await;
    create_order(&client, "big", json!({"blob": "x".repeat(2000)})).await;
    create_order(&client, "small", json!({})).await;
    let records = client.wal_read(0, None).await.expect("WAL_READ").records;
    let places: Vec<(u64, u64)> = records
        .iter()
        .map(|r| (r.offset >> 40, r.offset & ((1 << 40) - 1)))
        .collect();
    // put_machine opens segment 1; the big record would pass 1,024 bytes there, so it starts
    // segment 2; the next record would pass it too, so it starts segment 3.
    assert_eq!(places, [(1, 0), (2, 0), (3, 0)]);
    let stats = client.wal_stats().await.expect("WAL_STATS");
    assert_eq!(stats.segment_count, 3);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn wal_read_counts_exactly_the_records_it_read_back() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    for id in ["a", "b", "c", "d"] {
        create_order(&client, id, json!({})).await;
    }
    let before = client.wal_stats().await.expect("WAL_STATS").io_stats;
    // The spec's example (§4.18): a WAL_READ of two records reads two records from the file.
    let read = client
        .wal_read(FIRST_OFFSET, Some(2))
        .await
        .expect("WAL_READ");
    let after = client.wal_stats().await.expect("WAL_STATS").io_stats;
    assert_eq!(read.records.len(), 2);
    assert_eq!(after.reads - before.reads, 2, "{before:?} -> {after:?}");
    // Records are back to back, so two records' bytes run up to the third's offset.
    let third = client
        .wal_read(read.records[1].offset + 1, Some(1))
        .await
        .expect("WAL_READ");
    let two_records_bytes = third.records[0].offset - read.records[0].offset;
    assert_eq!(after.bytes_read - before.bytes_read, two_records_bytes);
    let none = client.wal_read(0, Some(0)).await.expect("WAL_READ limit 0");
    assert!(none.records.is_empty());
    let idle = client.wal_stats().await.expect("WAL_STATS").io_stats;
    assert_eq!(
        idle.reads,
        after.reads + 1,
        "only the 1-record read above; limit 0 reads none"
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn wal_read_from_any_offset_returns_the_records_at_or_after_it() {
    let server = OpsServer::start_with(ServerConfig::default().segment_size_bytes(1024)).await;
    let client = client_with_order(&server).await;
    create_many(&client, 40).await;
    let all = client.wal_read(0, None).await.expect("WAL_READ").records;
    let offsets: Vec<u64> = all.iter().map(|r| r.offset).collect();
    assert!(
        offsets.last().is_some_and(|o| o >> 40 >= 3),
        "several segments"
    );
    // Offsets past a segment's end, inside a record, and exactly at a record.
    let probes = [
        (1 << 40) + 1_000_000,
        (2 << 40) + 1,
        offsets[7],
        offsets[7] + 1,
        offsets[offsets.len() - 1],
    ];
    for from in probes {
        let expected: Vec<u64> = offsets
            .iter()
            .copied()
            .filter(|&o| o >= from)
            .take(3)
            .collect();
        let got = client.wal_read(from, Some(3)).await.expect("WAL_READ");
        let got: Vec<u64> = got.records.iter().map(|r| r.offset).collect();
        assert_eq!(got, expected, "from {from}");
    }
    server.assert_fresh_connection_works().await;
}
