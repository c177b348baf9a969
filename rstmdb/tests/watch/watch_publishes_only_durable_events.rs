//! Durability before publish (spec §6.9) under simulated power loss: the WAL lives on a
//! fault-injecting storage whose syncs take time, so unsynced records always exist while
//! writers run. Every event a subscriber received before the "power cut" is in the WAL the
//! cut leaves behind, and a write whose sync fails is never published.

use rstmdb::database::{Database, DatabaseOptions};
use rstmdb::wal::fault::{CrashPlan, FaultStorage};
use rstmdb::wal::{FsyncPolicy, WalConfig};
use rstmdb_client::{ErrorCode, Op};
use rstmdb_testkit::watch::{Applied, Conn, Pushed, Setup, WatchServer, create};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const INSTANCES: usize = 40;

fn setup(storage: &FaultStorage) -> Setup {
    Setup {
        fsync_policy: FsyncPolicy::EveryWrite,
        wal_storage: Some(Arc::new(storage.clone())),
        ..Setup::default()
    }
}

async fn prepare(server: &WatchServer) -> Conn {
    let mut conn = server.connect().await;
    rstmdb_testkit::watch::put_flip_machine(&mut conn, "flip").await;
    for i in 0..INSTANCES {
        create(&mut conn, "flip", &format!("i-{i}")).await;
    }
    conn
}

/// Flips instances `i-{first}`, `i-{first+4}`, … forever, 8 requests in flight.
async fn write_forever(mut conn: Conn, first: usize) {
    let mut pending = Vec::new();
    for round in 0usize.. {
        for i in (first..INSTANCES).step_by(4) {
            let event = if round.is_multiple_of(2) {
                "GO"
            } else {
                "BACK"
            };
            let Some(id) = conn
                .try_send(
                    Op::ApplyEvent,
                    json!({"instance_id": format!("i-{i}"), "event": event}),
                )
                .await
            else {
                return;
            };
            pending.push(id);
            if pending.len() >= 8 && conn.try_response(&pending.remove(0)).await.is_none() {
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_received_before_a_power_cut_survives_it() {
    let storage = FaultStorage::new();
    storage.set_sync_delay(Duration::from_millis(3));
    let server = WatchServer::start(setup(&storage)).await;
    prepare(&server).await;
    let mut watcher = server.connect().await;
    watcher.ok(Op::WatchAll, json!({})).await;
    let mut writers = Vec::new();
    for first in 0..4 {
        writers.push(tokio::spawn(write_forever(server.connect().await, first)));
    }

    let mut received = Vec::new();
    while received.len() < 1_000 {
        match watcher.next_pushed(Duration::from_secs(30)).await {
            Some(Pushed::Event(event)) => received.push(Applied::of(&event)),
            other => panic!("expected an event, got {other:?}"),
        }
    }
    // The disk a power cut would leave now; writes are still in flight, unsynced.
    let unsynced: usize = storage.unsynced_ops().values().sum();
    let after_cut = storage.crash(CrashPlan::default());
    for writer in &writers {
        writer.abort();
    }

    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut options = DatabaseOptions::new(
        data_dir.path(),
        WalConfig {
            segment_size_bytes: 64 << 20,
            fsync_policy: FsyncPolicy::EveryWrite,
        },
    );
    options.wal_storage = Some(Arc::new(after_cut));
    let (recovered, _) = Database::open(options).expect("the cut WAL recovers");
    let mut survived = HashMap::new();
    let mut from_offset = 0;
    loop {
        let page = recovered
            .wal_read(from_offset, 10_000)
            .await
            .expect("WAL_READ");
        for record in &page.records {
            survived.insert(record.offset, record.entry.clone());
        }
        match page.next_offset {
            Some(next) => from_offset = next,
            None => break,
        }
    }
    for event in &received {
        let entry = survived
            .get(&event.offset)
            .unwrap_or_else(|| panic!("event at {} was published but lost", event.offset));
        assert_eq!(entry["instance_id"], json!(event.instance_id));
        assert_eq!(entry["event"], json!(event.event));
    }
    eprintln!(
        "{} events received, {unsynced} unsynced operations at the cut, {} records survived",
        received.len(),
        survived.len()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_sync_fails_is_answered_with_an_error_and_never_published() {
    let storage = FaultStorage::new();
    let server = WatchServer::start(setup(&storage)).await;
    let mut conn = prepare(&server).await;
    conn.ok(Op::WatchAll, json!({})).await;
    conn.ok(Op::ApplyEvent, json!({"instance_id": "i-0", "event": "GO"}))
        .await;
    assert_eq!(conn.next_event().await.instance_id, "i-0");

    storage.set_fail_syncs(true);
    let err = conn
        .err(Op::ApplyEvent, json!({"instance_id": "i-1", "event": "GO"}))
        .await;
    assert_eq!(err.code, ErrorCode::WalIoError);
    conn.expect_quiet(Duration::from_millis(500)).await;
    server.stop().await;
}
