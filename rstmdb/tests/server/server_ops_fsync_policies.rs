//! WAL_STATS' durability fields under each fsync policy, through the real server (spec §4.18,
//! §6.1, §6.10): when `durable_offset` catches up with `latest_offset`, how many fsyncs ran, and
//! that a committed record is readable before it is durable except under `every_write`; COMPACT
//! syncs first; and `bytes_since_checkpoint` once records pass the checkpoint's segment.

use rstmdb::wal::FsyncPolicy;
use rstmdb_client::Client;
use rstmdb_testkit::ops::*;
use serde_json::json;
use std::time::Duration;

async fn write_three_records(client: &Client) {
    client
        .put_machine("order", 1, order_definition())
        .await
        .expect("PUT");
    create_order(client, "o-1", json!({})).await;
    create_order(client, "o-2", json!({})).await;
}

#[tokio::test]
async fn under_never_records_are_committed_but_only_durable_after_a_restart() {
    let server =
        OpsServer::start_with(ServerConfig::default().fsync_policy(FsyncPolicy::Never)).await;
    let client = server.client().await;
    write_three_records(&client).await;
    let stats = client.wal_stats().await.expect("WAL_STATS");
    assert_eq!(stats.fsync_policy, "never");
    assert_eq!(stats.io_stats.fsyncs, 0);
    assert_eq!(stats.durable_offset, FIRST_OFFSET, "nothing synced yet");
    assert!(stats.latest_offset > stats.durable_offset);
    assert_eq!(stats.records_per_fsync, 0.0);
    let latency = (stats.fsync_latency_us.p50, stats.fsync_latency_us.p99);
    assert_eq!(latency, (0, 0), "zeros when there were no fsyncs");
    let read = client.wal_read(0, None).await.expect("WAL_READ");
    assert_eq!(read.records.len(), 3, "committed once written");
    client.close().await.expect("close");

    let server = server.stop().await.restart().await;
    let client = server.client().await;
    let after = client.wal_stats().await.expect("WAL_STATS");
    assert_eq!(
        after.durable_offset, after.latest_offset,
        "synced at start-up"
    );
    assert_eq!(after.latest_offset, stats.latest_offset);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn under_every_n_a_sync_follows_every_nth_record() {
    let policy = FsyncPolicy::EveryN(2);
    let server = OpsServer::start_with(ServerConfig::default().fsync_policy(policy)).await;
    let client = server.client().await;
    write_three_records(&client).await;
    let records = client.wal_read(0, None).await.expect("WAL_READ").records;
    // The sync thread runs beside the appender, so its sync lands shortly after the 2nd record.
    let stats = wait_for(&client, |stats| stats.io_stats.fsyncs >= 1).await;
    assert_eq!(stats.fsync_policy, "every_n:2");
    assert!(
        stats.durable_offset >= records[2].offset,
        "covers the first two records"
    );
    assert!(stats.durable_offset <= stats.latest_offset);
    assert!(stats.records_per_fsync >= 2.0, "{stats:?}");
    server.assert_fresh_connection_works().await;
}

/// Polls WAL_STATS until `done` holds (for at most 10 s).
async fn wait_for(
    client: &Client,
    done: impl Fn(&rstmdb_client::results::WalStatsResult) -> bool,
) -> rstmdb_client::results::WalStatsResult {
    for _ in 0..500 {
        let stats = client.wal_stats().await.expect("WAL_STATS");
        if done(&stats) {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("WAL_STATS never reached the expected state");
}

#[tokio::test]
async fn under_every_ms_the_timer_really_syncs() {
    let policy = FsyncPolicy::EveryMs(20);
    let server = OpsServer::start_with(ServerConfig::default().fsync_policy(policy)).await;
    let client = server.client().await;
    write_three_records(&client).await;
    let stats = wait_for(&client, |stats| stats.durable_offset == stats.latest_offset).await;
    assert_eq!(stats.fsync_policy, "every_ms:20");
    assert!(stats.io_stats.fsyncs >= 1);
    let synced = stats.io_stats.fsyncs;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let idle = client.wal_stats().await.expect("WAL_STATS");
    assert_eq!(
        idle.io_stats.fsyncs, synced,
        "no sync while nothing is unsynced"
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn compact_syncs_the_wal_first_whatever_the_policy() {
    let server =
        OpsServer::start_with(ServerConfig::default().fsync_policy(FsyncPolicy::Never)).await;
    let client = server.client().await;
    write_three_records(&client).await;
    let compacted = client.compact(false).await.expect("COMPACT");
    let stats = client.wal_stats().await.expect("WAL_STATS");
    assert_eq!(compacted.checkpoint_offset, stats.latest_offset);
    assert!(
        stats.durable_offset >= compacted.checkpoint_offset,
        "a checkpoint never covers a record a crash could lose: {stats:?}"
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn bytes_since_checkpoint_counts_only_records_at_or_above_it() {
    let server = OpsServer::start_with(ServerConfig::default().segment_size_bytes(1024)).await;
    let client = server.client().await;
    write_three_records(&client).await;
    for i in 0..4 {
        create_order(&client, &format!("pre-{i}"), json!({})).await;
    }
    let checkpoint = client
        .compact(false)
        .await
        .expect("COMPACT")
        .checkpoint_offset;
    for i in 0..10 {
        create_order(&client, &format!("post-{i}"), json!({})).await;
    }
    let stats = client.wal_stats().await.expect("WAL_STATS");
    assert!(
        stats.latest_offset >> 40 > checkpoint >> 40,
        "later records rotated: {stats:?}"
    );
    let records = client
        .wal_read(checkpoint, None)
        .await
        .expect("WAL_READ")
        .records;
    assert_eq!(records.len(), 10);
    // Records are back to back inside a segment; each segment's last one ends at its length.
    let retained_below_checkpoint = checkpoint & ((1 << 40) - 1);
    assert_eq!(
        stats.bytes_since_checkpoint,
        stats.total_size_bytes - retained_below_checkpoint
    );
    assert_eq!(stats.oldest_offset, (checkpoint >> 40) << 40);
    server.assert_fresh_connection_works().await;
}
