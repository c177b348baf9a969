//! Ops when storage fails or is slow, through the real server (spec §4.0, §4.16, §4.17, §4.19,
//! §5.1, §6.1): `WAL_IO_ERROR` is retryable, an unacknowledged write is never visible, nothing
//! is answered from state whose record is not committed yet, a failed unit leaves no trace, a
//! corrupt record is `wal_read_failed`, and unwritable checkpoints or snapshots are
//! `INTERNAL_ERROR`.

use rstmdb::wal::fault::FaultStorage;
use rstmdb_client::{CreateInstanceOptions, ErrorCode, Op};
use rstmdb_testkit::ops::*;
use serde_json::{Value, json};
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

#[tokio::test]
async fn a_replay_from_another_connection_waits_for_the_original_commit() {
    let (config, storage) = faulty_server_config();
    let server = OpsServer::start_with(config).await;
    let writer = client_with_order(&server).await;
    let retrier = server.client().await;
    create_order(&writer, "o-1", json!({})).await;
    let sync_delay = Duration::from_millis(300);
    storage.set_sync_delay(sync_delay);
    let keyed = || rstmdb_client::ApplyEventOptions::default().idempotency_key("k");
    let write_sent = Instant::now();
    let write = tokio::spawn(async move { writer.apply_event("o-1", "PAY", keyed()).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let replay = retrier
        .apply_event("o-1", "PAY", keyed())
        .await
        .expect("replay");
    assert!(
        write_sent.elapsed() >= sync_delay,
        "a replay revealed a result whose record was not committed"
    );
    let original = write.await.expect("writer task").expect("PAY");
    assert_eq!(
        (replay.wal_offset, replay.applied),
        (original.wal_offset, false)
    );
    storage.set_sync_delay(Duration::ZERO);
    server.assert_fresh_connection_works().await;
}

/// Sends `write` on one connection while every fsync takes `SLOW_SYNC`, then `probe` on
/// another; the probe's answer reflects the write, so it must not come before the write's
/// record is committed. Returns the probe's outcome and the write's result.
async fn probe_during_slow_commit(
    setup: &[(Op, Value)],
    write: (Op, Value),
    probe: (Op, Value),
) -> (
    Result<rstmdb_client::RawResult, rstmdb_client::RcpError>,
    rstmdb_client::RawResult,
) {
    const SLOW_SYNC: Duration = Duration::from_millis(300);
    let (config, storage) = faulty_server_config();
    let server = OpsServer::start_with(config).await;
    let writer = server.client().await;
    let prober = server.client().await;
    for (op, params) in setup {
        ok(&writer, *op, params.clone()).await;
    }
    storage.set_sync_delay(SLOW_SYNC);
    let write_sent = Instant::now();
    let written = tokio::spawn(async move { call(&writer, write.0, write.1).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let outcome = call(&prober, probe.0, probe.1.clone()).await;
    assert!(
        write_sent.elapsed() >= SLOW_SYNC,
        "{probe:?} answered before the write it reflects was committed: {outcome:?}"
    );
    let written = written
        .await
        .expect("writer task")
        .expect("the write succeeds");
    storage.set_sync_delay(Duration::ZERO);
    server.assert_fresh_connection_works().await;
    (outcome, written)
}

#[tokio::test]
async fn answers_that_reveal_an_uncommitted_write_wait_for_its_commit() {
    let put = json!({"machine": "order", "version": 1, "definition": order_definition()});
    let other_definition = json!({"machine": "order", "version": 1,
        "definition": {"states": ["a"], "initial": "a", "transitions": []}});
    let create = json!({"machine": "order", "version": 1, "instance_id": "o-1"});
    let o1 = json!({"instance_id": "o-1"});
    let pay = json!({"instance_id": "o-1", "event": "PAY"});
    let with_order = [(Op::PutMachine, put.clone())];
    let with_instance = [
        (Op::PutMachine, put.clone()),
        (Op::CreateInstance, create.clone()),
    ];

    let (outcome, _) = probe_during_slow_commit(
        &[],
        (Op::PutMachine, put.clone()),
        (Op::PutMachine, other_definition),
    )
    .await;
    assert_eq!(
        outcome.expect_err("exists").code,
        ErrorCode::MachineVersionExists
    );
    let (outcome, _) = probe_during_slow_commit(
        &[],
        (Op::PutMachine, put.clone()),
        (Op::PutMachine, put.clone()),
    )
    .await;
    assert_eq!(outcome.expect("re-put").result["created"], json!(false));
    let (outcome, _) = probe_during_slow_commit(
        &with_order,
        (Op::CreateInstance, create.clone()),
        (Op::ListInstances, json!({})),
    )
    .await;
    assert_eq!(outcome.expect("LIST").result["total"], json!(1));
    let (outcome, _) = probe_during_slow_commit(
        &with_instance,
        (Op::DeleteInstance, o1.clone()),
        (Op::DeleteInstance, o1.clone()),
    )
    .await;
    assert_eq!(outcome.expect("repeat").result["applied"], json!(false));
    let (outcome, _) = probe_during_slow_commit(
        &with_instance,
        (Op::DeleteInstance, o1.clone()),
        (Op::ApplyEvent, pay.clone()),
    )
    .await;
    assert_eq!(
        outcome.expect_err("deleted").code,
        ErrorCode::InstanceNotFound
    );
    let expecting_created =
        json!({"instance_id": "o-1", "event": "PAY", "expected_state": "created"});
    let (outcome, _) = probe_during_slow_commit(
        &with_instance,
        (Op::ApplyEvent, pay.clone()),
        (Op::ApplyEvent, expecting_created),
    )
    .await;
    assert_eq!(outcome.expect_err("moved").reason(), Some("state_mismatch"));
    let (outcome, paid) = probe_during_slow_commit(
        &with_instance,
        (Op::ApplyEvent, pay),
        (Op::SnapshotInstance, o1),
    )
    .await;
    let snapshot = outcome.expect("snapshot");
    assert_eq!(snapshot.result["wal_offset"], paid.result["wal_offset"]);
}

#[tokio::test]
async fn an_atomic_unit_whose_append_fails_across_segments_is_rolled_back_whole() {
    let storage = Arc::new(FaultStorage::new());
    let config = ServerConfig::default()
        .segment_size_bytes(1024)
        .wal_storage(Arc::clone(&storage));
    let server = OpsServer::start_with(config).await;
    let client = client_with_order(&server).await;
    let before = client.wal_stats().await.expect("WAL_STATS");
    // About 4 KB of records: the unit spans several segments, and the disk fills in the middle.
    storage.set_write_budget(Some(1500));
    let ops: Vec<Value> = (0..20)
        .map(|i| {
            json!({"op": "CREATE_INSTANCE",
            "params": {"machine": "order", "version": 1, "instance_id": format!("u-{i:02}")}})
        })
        .collect();
    let outcome = call(&client, Op::Batch, json!({"mode": "atomic", "ops": ops})).await;
    assert_eq!(
        outcome.expect_err("the disk filled up").code,
        ErrorCode::WalIoError
    );
    storage.set_write_budget(None);

    let after_failure = client.wal_stats().await.expect("WAL_STATS");
    assert_eq!(
        (after_failure.entry_count, after_failure.total_size_bytes),
        (before.entry_count, before.total_size_bytes),
        "no record of the unit remains"
    );
    // Segments the failed append created stay, empty, so their ids are never reused; the
    // next record goes to the newest one, where latest_offset points.
    assert_eq!(after_failure.latest_offset & ((1 << 40) - 1), 0);
    let listed = client
        .list_instances(Default::default())
        .await
        .expect("LIST");
    assert_eq!(listed.total, 0);
    let next = create_order(&client, "after", json!({})).await;
    assert_eq!(next, after_failure.latest_offset);
    let record = client
        .wal_read(next, Some(1))
        .await
        .expect("WAL_READ")
        .records;
    assert_eq!(
        record[0].sequence,
        before.entry_count + 1,
        "no sequence was lost"
    );
    let records = client.wal_read(0, None).await.expect("WAL_READ").records;
    client.close().await.expect("close");

    // A restart over the same storage finds a clean log.
    let server = server.stop().await.restart().await;
    let client = server.client().await;
    let again = client.wal_read(0, None).await.expect("WAL_READ").records;
    assert_eq!(again, records);
    assert_eq!(
        client
            .list_instances(Default::default())
            .await
            .expect("LIST")
            .total,
        1
    );
    server.assert_fresh_connection_works().await;
}

/// Replaces the directory `name` under the data dir with a plain file, so writing into it fails.
fn block_directory(server: &OpsServer, name: &str) -> std::path::PathBuf {
    let dir = server.data_dir().join(name);
    std::fs::remove_dir_all(&dir).expect("remove the directory");
    std::fs::write(&dir, b"not a directory").expect("put a file in its place");
    dir
}

fn unblock_directory(dir: &std::path::Path) {
    std::fs::remove_file(dir).expect("remove the blocking file");
    std::fs::create_dir(dir).expect("recreate the directory");
}

#[tokio::test]
async fn a_checkpoint_or_snapshot_that_cannot_be_stored_is_a_retryable_internal_error() {
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;

    let snapshots = block_directory(&server, "snapshots");
    let error = server_error(
        client
            .snapshot_instance("o-1")
            .await
            .expect_err("cannot store"),
    );
    assert_eq!(
        (error.code.clone(), error.retryable),
        (ErrorCode::InternalError, true)
    );
    unblock_directory(&snapshots);
    client
        .snapshot_instance("o-1")
        .await
        .expect("stored once the directory is back");

    let checkpoints = block_directory(&server, "checkpoints");
    let error = server_error(client.compact(false).await.expect_err("cannot checkpoint"));
    assert_eq!(
        (error.code.clone(), error.retryable),
        (ErrorCode::InternalError, true)
    );
    let stats = client.wal_stats().await.expect("WAL_STATS");
    assert_eq!(
        (stats.checkpoint_offset, stats.segment_count),
        (None, 1),
        "nothing was compacted"
    );
    unblock_directory(&checkpoints);
    let compacted = client
        .compact(false)
        .await
        .expect("COMPACT once the directory is back");
    assert_eq!(compacted.snapshots_created, 1);
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_record_that_cannot_be_read_back_is_a_wal_read_failed_error() {
    let (config, storage) = faulty_server_config();
    let server = OpsServer::start_with(config).await;
    let client = client_with_order(&server).await;
    let second = create_order(&client, "o-1", json!({})).await;
    create_order(&client, "o-2", json!({})).await;
    // Flip a byte inside the second record, behind the server's back.
    let name = "0000000000000001.wal";
    let mut bytes = storage.contents(name).expect("segment 1");
    let inside = usize::try_from(second & ((1 << 40) - 1)).expect("small") + 40;
    bytes[inside] ^= 0x55;
    storage.put_synced(name, bytes);
    let error = server_error(client.wal_read(0, None).await.expect_err("corrupt record"));
    assert_eq!(
        (error.code.clone(), error.retryable),
        (ErrorCode::WalIoError, true)
    );
    assert_eq!(
        error.details,
        Some(obj(json!({"reason": "wal_read_failed"})))
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn an_apply_whose_append_failed_consumes_neither_state_nor_key() {
    let (config, storage) = faulty_server_config();
    let server = OpsServer::start_with(config).await;
    let client = client_with_order(&server).await;
    create_order(&client, "o-1", json!({})).await;
    let keyed = || rstmdb_client::ApplyEventOptions::default().idempotency_key("k");
    storage.set_write_budget(Some(10));
    let failed = client.apply_event("o-1", "PAY", keyed()).await;
    assert_eq!(
        failed.map_err(server_error).expect_err("no room").code,
        ErrorCode::WalIoError
    );
    storage.set_write_budget(None);
    let got = client.get_instance("o-1").await.expect("GET");
    assert_eq!(got.state, "created", "the failed apply was undone");
    // A different request with the key runs anew (no CONFLICT): the key was not recorded.
    let ship = client.apply_event("o-1", "SHIP", keyed()).await;
    assert_eq!(
        ship.map_err(server_error).expect_err("no SHIP").code,
        ErrorCode::InvalidTransition
    );
    let paid = client
        .apply_event("o-1", "PAY", keyed())
        .await
        .expect("the retry");
    assert!(paid.applied);
    server.assert_fresh_connection_works().await;
}
