//! COMPACT against the real server (spec §4.19, §6.10): when a checkpoint is written, which
//! segments go, what the result and WAL_STATS report afterwards, and the files kept on disk.

use rstmdb_client::{ErrorCode, Op};
use rstmdb_testkit::ops::*;
use serde_json::json;

#[tokio::test]
async fn compact_writes_a_checkpoint_only_when_something_changed_or_forced() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let before = client.wal_stats().await.expect("WAL_STATS");
    let raw = ok(&client, Op::Compact, json!({})).await;
    assert_eq!(meta_offset(&raw), None, "COMPACT never writes a record");
    assert_eq!(
        raw.result["snapshots_created"],
        json!(1),
        "no checkpoint yet"
    );
    assert_eq!(raw.result["checkpoint_offset"], json!(before.latest_offset));
    assert_eq!(
        (
            &raw.result["segments_deleted"],
            &raw.result["bytes_reclaimed"]
        ),
        (&json!(0), &json!(0))
    );
    assert_eq!(raw.result["wal_segments"], json!(1));
    assert_eq!(raw.result["total_snapshots"], json!(1));
    let again = client.compact(false).await.expect("COMPACT");
    assert_eq!(again.snapshots_created, 0, "nothing committed since");
    let forced = client.compact(true).await.expect("COMPACT forced");
    assert_eq!(forced.snapshots_created, 1);
    assert_eq!(
        forced.checkpoint_offset, before.latest_offset,
        "same commit position"
    );
    let after = client.wal_stats().await.expect("WAL_STATS");
    assert_eq!(
        (after.entry_count, after.latest_offset),
        (before.entry_count, before.latest_offset)
    );
    assert_eq!(
        (after.checkpoint_offset, after.bytes_since_checkpoint),
        (Some(before.latest_offset), 0)
    );
    assert_error(
        call(&client, Op::Compact, json!({"force_snapshot": "yes"})).await,
        ErrorCode::BadRequest,
        json!({"reason": "invalid_param", "param": "force_snapshot", "expected": "bool"}),
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn compact_deletes_the_segments_below_the_checkpoint() {
    let server = OpsServer::start_with(ServerConfig::default().segment_size_bytes(4096)).await;
    let client = client_with_order(&server).await;
    create_many(&client, 200).await;
    let before = client.wal_stats().await.expect("WAL_STATS");
    assert!(
        before.segment_count >= 3,
        "small segments rotate: {before:?}"
    );
    let newest_segment = before.latest_offset >> 40;
    assert_eq!(
        before.segment_count, newest_segment,
        "ids 1..=newest are all present"
    );
    let newest_length = before.latest_offset & ((1 << 40) - 1);

    let compacted = client.compact(false).await.expect("COMPACT");
    assert_eq!(compacted.snapshots_created, 1);
    assert_eq!(compacted.segments_deleted, before.segment_count - 1);
    assert_eq!(compacted.wal_segments, 1);
    assert_eq!(
        compacted.bytes_reclaimed,
        before.total_size_bytes - newest_length
    );
    assert_eq!(compacted.checkpoint_offset, before.latest_offset);

    let after = client.wal_stats().await.expect("WAL_STATS");
    assert_eq!(
        after.total_size_bytes,
        before.total_size_bytes - compacted.bytes_reclaimed
    );
    assert_eq!(
        (after.entry_count, after.latest_offset),
        (before.entry_count, before.latest_offset)
    );
    assert_eq!(after.oldest_offset, newest_segment << 40);
    assert_eq!(after.segment_count, 1);
    let oldest = client.wal_read(0, Some(1)).await.expect("WAL_READ from 0");
    assert!(
        oldest.records[0].offset >= newest_segment << 40,
        "reads from the oldest retained"
    );
    let got = client
        .get_instance("i-00000")
        .await
        .expect("state survives compaction");
    assert_eq!(got.state, "created");
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn compact_on_a_fresh_database_checkpoints_at_the_first_offset() {
    let server = OpsServer::start().await;
    let client = server.client().await;
    let compacted = client.compact(false).await.expect("COMPACT");
    assert_eq!(
        (compacted.snapshots_created, compacted.checkpoint_offset),
        (1, FIRST_OFFSET)
    );
    let forced = client.compact(true).await.expect("COMPACT forced");
    assert_eq!(
        (forced.snapshots_created, forced.checkpoint_offset),
        (1, FIRST_OFFSET)
    );
    assert!((1..=2).contains(&forced.total_snapshots), "{forced:?}");
    // Records after the checkpoint count towards bytes_since_checkpoint.
    client
        .put_machine("order", 1, order_definition())
        .await
        .expect("PUT");
    let stats = client.wal_stats().await.expect("WAL_STATS");
    assert_eq!(stats.checkpoint_offset, Some(FIRST_OFFSET));
    assert_eq!(
        stats.bytes_since_checkpoint,
        stats.latest_offset - FIRST_OFFSET
    );
    assert_eq!(stats.entry_count, 1, "COMPACT wrote no record");
    let end = client
        .wal_read(u64::MAX, None)
        .await
        .expect("WAL_READ past the end");
    assert_eq!((end.records.len(), end.next_offset), (0, None));
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn compact_keeps_at_most_the_newest_two_checkpoint_files() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    for id in ["a", "b", "c", "d"] {
        create_order(&client, id, json!({})).await;
        let compacted = client.compact(false).await.expect("COMPACT");
        assert_eq!(
            compacted.snapshots_created, 1,
            "a record was committed since the last one"
        );
        let on_disk = std::fs::read_dir(server.data_dir().join("checkpoints"))
            .expect("checkpoint dir")
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".ckpt"))
            .count() as u64;
        assert_eq!(compacted.total_snapshots, on_disk);
        assert!((1..=2).contains(&on_disk), "{on_disk} checkpoint files");
    }
    server.assert_fresh_connection_works().await;
}
