//! Write ops when the WAL's storage fails or is slow, through the real server (spec §4.0, §5.1,
//! §6.1): `WAL_IO_ERROR` is retryable, an unacknowledged write is never visible, and nothing is
//! answered from state whose record is not committed yet.

mod server_ops_support;

use rstmdb::wal::fault::FaultStorage;
use rstmdb_client::{CreateInstanceOptions, ErrorCode};
use serde_json::json;
use server_ops_support::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn faulty_server_config() -> (ServerConfig, Arc<FaultStorage>) {
    let storage = Arc::new(FaultStorage::new());
    (
        ServerConfig::default().wal_storage(Arc::clone(&storage)),
        storage,
    )
}

#[tokio::test]
async fn a_failed_fsync_is_a_retryable_wal_io_error_and_the_write_stays_invisible() {
    let (config, storage) = faulty_server_config();
    let server = OpsServer::start_with(config).await;
    let client = client_with_order(&server).await;
    storage.set_fail_syncs(true);
    let outcome = client
        .create_instance(
            "order",
            1,
            CreateInstanceOptions::default().instance_id("x"),
        )
        .await;
    let error = server_error(outcome.expect_err("the sync failed"));
    assert_eq!(error.code, ErrorCode::WalIoError);
    assert!(error.retryable, "WAL_IO_ERROR is retryable (§5.1)");
    // Whatever the server answers now, it never shows the unacknowledged instance.
    let other = server.client().await;
    match other.get_instance("x").await {
        Ok(found) => panic!("an unacknowledged write became visible: {found:?}"),
        Err(err) => {
            let code = server_error(err).code;
            assert!(
                matches!(code, ErrorCode::InstanceNotFound | ErrorCode::WalIoError),
                "{code:?}"
            );
        }
    }
    assert!(
        other.ping().await.expect("PING").pong,
        "the server still answers"
    );
}

#[tokio::test]
async fn a_failed_append_is_a_wal_io_error_and_leaves_nothing_behind() {
    let (config, storage) = faulty_server_config();
    let server = OpsServer::start_with(config).await;
    let client = client_with_order(&server).await;
    let before = client.wal_stats().await.expect("WAL_STATS");
    storage.set_write_budget(Some(10));
    let outcome = client
        .create_instance(
            "order",
            1,
            CreateInstanceOptions::default().instance_id("x"),
        )
        .await;
    let error = server_error(outcome.expect_err("the append failed"));
    assert_eq!(
        (error.code.clone(), error.retryable),
        (ErrorCode::WalIoError, true)
    );
    storage.set_write_budget(None);
    assert_client_error(
        client.get_instance("x").await,
        ErrorCode::InstanceNotFound,
        json!({"reason": "instance_not_found", "instance_id": "x"}),
    );
    let after = client.wal_stats().await.expect("WAL_STATS");
    assert_eq!(
        (after.entry_count, after.latest_offset),
        (before.entry_count, before.latest_offset)
    );
    // The refused record gave its sequence back; the next write takes it.
    let created = client
        .create_instance(
            "order",
            1,
            CreateInstanceOptions::default().instance_id("y"),
        )
        .await
        .expect("writes work again once the disk has room");
    assert_eq!(created.wal_offset, before.latest_offset);
    let record = client
        .wal_read(created.wal_offset, Some(1))
        .await
        .expect("WAL_READ");
    assert_eq!(record.records[0].sequence, before.entry_count + 1);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn another_connection_sees_a_write_only_after_it_is_acknowledged() {
    let (config, storage) = faulty_server_config();
    let server = OpsServer::start_with(config).await;
    let writer = client_with_order(&server).await;
    let reader = server.client().await;
    let sync_delay = Duration::from_millis(300);
    storage.set_sync_delay(sync_delay);
    let write_sent = Instant::now();
    let write = tokio::spawn(async move {
        let options = CreateInstanceOptions::default().instance_id("slow");
        writer
            .create_instance("order", 1, options)
            .await
            .expect("CREATE");
    });
    // Let the create reach the sequencer and its fsync start.
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The create's fsync starts after `write_sent` and takes `sync_delay`, so anything that
    // reflects the create can only be answered `sync_delay` after `write_sent` or later.
    let found = reader.get_instance("slow").await;
    if found.is_ok() {
        assert!(
            write_sent.elapsed() >= sync_delay,
            "GET showed the instance before its commit"
        );
    }
    let exists = reader
        .create_instance(
            "order",
            1,
            CreateInstanceOptions::default().instance_id("slow"),
        )
        .await;
    assert_eq!(
        exists.map_err(server_error).expect_err("it exists").code,
        ErrorCode::InstanceExists
    );
    assert!(
        write_sent.elapsed() >= sync_delay,
        "INSTANCE_EXISTS revealed an uncommitted write"
    );
    write.await.expect("writer task");
    storage.set_sync_delay(Duration::ZERO);
    server.assert_fresh_connection_works().await;
}
