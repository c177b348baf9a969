//! A subscriber that reads nothing for a while is not skipped: it falls behind the in-memory
//! ring, is served from the WAL, and receives every transition once it reads again, while the
//! server holds only a bounded number of its events (spec §6.9 "No silent drops").

use rstmdb::database::RingLimits;
use rstmdb::service::OUTBOUND_QUEUE_MESSAGES;
use rstmdb::service::watch::WatchLimits;
use rstmdb_client::Op;
use rstmdb_testkit::memory::{measuring_resident_memory, resident_bytes};
use rstmdb_testkit::watch::{Applied, Setup, WatchServer, applied_since, create};
use serde_json::json;
use std::time::Duration;

const INSTANCES: usize = 100;
const EVENTS: usize = 20_000;
const PAYLOAD_BYTES: usize = 2_000;
const BATCH_EVENTS: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_catches_up_from_the_wal_without_loss() {
    // Measures this process's resident memory: no other test of the binary runs meanwhile.
    let _alone = measuring_resident_memory().await;
    let limits = WatchLimits {
        ring: RingLimits {
            events: 256,
            bytes: 4 << 20,
        },
        batch_events: BATCH_EVENTS,
        ..WatchLimits::default()
    };
    let server = WatchServer::start(Setup {
        limits,
        ..Setup::default()
    })
    .await;
    let mut admin = server.connect().await;
    rstmdb_testkit::watch::put_flip_machine(&mut admin, "flip").await;
    for i in 0..INSTANCES {
        create(&mut admin, "flip", &format!("i-{i}")).await;
    }
    let mut slow = server.connect().await;
    let start = slow.ok(Op::WatchAll, json!({})).await["wal_offset"]
        .as_u64()
        .unwrap();
    let before = resident_bytes();

    // ~20,000 events of ~2 KB (plus their ctx): some 80 MB if the server buffered them.
    let filler = "x".repeat(PAYLOAD_BYTES);
    let mut pending = Vec::new();
    for k in 0..EVENTS {
        let event = if (k / INSTANCES).is_multiple_of(2) {
            "GO"
        } else {
            "BACK"
        };
        let params = json!({"instance_id": format!("i-{}", k % INSTANCES), "event": event,
            "payload": {"filler": filler}});
        pending.push(admin.send(Op::ApplyEvent, params).await);
        if pending.len() >= 64 {
            let id = pending.remove(0);
            admin.response(&id).await;
        }
    }
    for id in pending {
        admin.response(&id).await;
    }
    let lagging = resident_bytes();
    let stats = server.stats();
    assert!(
        stats.held_events_max <= BATCH_EVENTS as u64,
        "a subscription holds at most one batch outside the connection's queue of {OUTBOUND_QUEUE_MESSAGES}: {stats:?}"
    );
    let growth_mb = lagging.saturating_sub(before) >> 20;
    assert!(
        growth_mb < 40,
        "memory grew by {growth_mb} MiB while the subscriber lagged"
    );

    let expected = applied_since(&mut admin, start).await;
    assert_eq!(expected.len(), EVENTS);
    let received: Vec<Applied> = slow.events(EVENTS).await.iter().map(Applied::of).collect();
    assert_eq!(received, expected, "every transition, once, in WAL order");
    slow.expect_quiet(Duration::from_millis(300)).await;
    let stats = server.stats();
    assert!(
        stats.catch_up_reads > 0,
        "it was served from the WAL: {stats:?}"
    );
    assert!(stats.held_events_max <= BATCH_EVENTS as u64, "{stats:?}");
    eprintln!(
        "resident memory grew by {growth_mb} MiB while lagging; {} catch-up reads",
        server.stats().catch_up_reads
    );
    server.stop().await;
}
