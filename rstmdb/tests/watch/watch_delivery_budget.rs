//! Fairness between writes and watch delivery (docs/watch-streams.md, "Fairness"): delivery
//! over its CPU share pauses and falls behind, yet every subscriber still gets every event once
//! and in order; steady streams are paced, a trickle is not.

use rstmdb::service::watch::WatchLimits;
use rstmdb_client::Op;
use rstmdb_testkit::watch::{Applied, Setup, WatchServer, applied_since, create};
use serde_json::json;
use std::time::Duration;

const INSTANCES: usize = 50;
const EVENTS: usize = 3_000;
const SUBSCRIBERS: usize = 5;
const PIPELINE: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_over_the_delivery_budget_pause_yet_get_every_event_in_order() {
    let limits = WatchLimits {
        // 1% of the cores: the burst allowance is used up at once, so delivery must pause.
        delivery_cpu_percent: 1,
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
    let mut subscribers = Vec::new();
    let mut start = 0;
    for _ in 0..SUBSCRIBERS {
        let mut conn = server.connect().await;
        start = conn.ok(Op::WatchAll, json!({"include_ctx": true})).await["wal_offset"]
            .as_u64()
            .expect("wal_offset");
        subscribers.push(conn);
    }
    let mut pending = std::collections::VecDeque::new();
    for k in 0..EVENTS {
        let event = if (k / INSTANCES).is_multiple_of(2) {
            "GO"
        } else {
            "BACK"
        };
        let params = json!({"instance_id": format!("i-{}", k % INSTANCES), "event": event});
        pending.push_back(admin.send(Op::ApplyEvent, params).await);
        if pending.len() >= PIPELINE
            && let Some(id) = pending.pop_front()
        {
            admin.response(&id).await;
        }
    }
    for id in pending {
        admin.response(&id).await;
    }
    let expected = applied_since(&mut admin, start).await;
    assert_eq!(expected.len(), EVENTS);
    for mut conn in subscribers {
        let received: Vec<Applied> = conn.events(EVENTS).await.iter().map(Applied::of).collect();
        assert_eq!(received, expected, "every transition, once, in WAL order");
        conn.expect_quiet(Duration::from_millis(200)).await;
    }
    let stats = server.stats();
    assert!(stats.delivery_pauses > 0, "delivery paused: {stats:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickle_of_events_is_not_held_back_by_the_delivery_interval() {
    let limits = WatchLimits {
        // Far longer than the test's wait: any pacing of a trickle would show.
        delivery_interval_ms: 60_000,
        ..WatchLimits::default()
    };
    let server = WatchServer::start(Setup {
        limits,
        ..Setup::default()
    })
    .await;
    let mut admin = server.connect().await;
    rstmdb_testkit::watch::put_flip_machine(&mut admin, "flip").await;
    create(&mut admin, "flip", "i-1").await;
    let mut watcher = server.connect().await;
    watcher
        .ok(Op::WatchInstance, json!({"instance_id": "i-1"}))
        .await;
    for k in 0..20 {
        let event = if k % 2 == 0 { "GO" } else { "BACK" };
        let applied = admin
            .ok(
                Op::ApplyEvent,
                json!({"instance_id": "i-1", "event": event}),
            )
            .await;
        let pushed = watcher
            .next_pushed(Duration::from_secs(10))
            .await
            .expect("the event arrives without waiting for the interval");
        let rstmdb_testkit::watch::Pushed::Event(pushed) = pushed else {
            panic!("expected an event, got {pushed:?}");
        };
        assert_eq!(Some(pushed.wal_offset), applied["wal_offset"].as_u64());
    }
    server.stop().await;
}
