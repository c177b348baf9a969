//! Resuming and compaction (spec §6.9): a subscriber that reconnects with "last seen offset
//! plus one" misses nothing and sees nothing twice; history removed by compaction is refused at
//! WATCH time, and ends a lagging subscription with an explicit `offset_compacted` stream error.

use rstmdb::database::RingLimits;
use rstmdb::service::watch::WatchLimits;
use rstmdb_client::{ErrorCode, Op};
use rstmdb_testkit::watch::{
    Applied, Conn, Pushed, Setup, WAIT, WatchServer, applied_since, create,
};
use serde_json::json;
use std::time::Duration;

const INSTANCES: usize = 50;

/// Applies `count` flips over the instances `i-0..`, pipelined, and waits for every answer.
async fn burst(mut conn: Conn, count: usize, payload_bytes: usize) -> Conn {
    let filler = "x".repeat(payload_bytes);
    let mut ids = Vec::new();
    for k in 0..count {
        let event = if (k / INSTANCES).is_multiple_of(2) {
            "GO"
        } else {
            "BACK"
        };
        let params = json!({"instance_id": format!("i-{}", k % INSTANCES), "event": event,
            "payload": {"filler": filler}});
        ids.push(conn.send(Op::ApplyEvent, params).await);
        if ids.len() >= 32 {
            let id = ids.remove(0);
            conn.response(&id).await;
        }
    }
    for id in ids {
        conn.response(&id).await;
    }
    conn
}

async fn prepare(server: &WatchServer) -> Conn {
    let mut conn = server.connect().await;
    rstmdb_testkit::watch::put_flip_machine(&mut conn, "flip").await;
    for i in 0..INSTANCES {
        create(&mut conn, "flip", &format!("i-{i}")).await;
    }
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_from_the_last_seen_offset_plus_one_loses_and_repeats_nothing() {
    let server = WatchServer::start(Setup::default()).await;
    let mut admin = prepare(&server).await;
    let mut first = server.connect().await;
    let start = first.ok(Op::WatchAll, json!({})).await["wal_offset"]
        .as_u64()
        .unwrap();

    const TOTAL: usize = 3_000;
    let writer = tokio::spawn(burst(server.connect().await, TOTAL, 16));
    let mut seen: Vec<Applied> = first.events(700).await.iter().map(Applied::of).collect();
    drop(first); // mid-burst
    let resume = seen.last().expect("events seen").offset + 1;
    let mut second = server.connect().await;
    second
        .ok(Op::WatchAll, json!({"from_offset": resume}))
        .await;
    seen.extend(second.events(TOTAL - 700).await.iter().map(Applied::of));
    second.expect_quiet(Duration::from_millis(300)).await;
    writer.await.expect("writer");

    assert_eq!(seen, applied_since(&mut admin, start).await);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_offset_replays_history_before_the_subscription_point_then_continues_live() {
    let server = WatchServer::start(Setup::default()).await;
    let mut admin = prepare(&server).await;
    admin = burst(admin, 200, 16).await;
    let mut watcher = server.connect().await;
    let result = watcher
        .ok(
            Op::WatchInstance,
            json!({"instance_id": "i-3", "from_offset": 0}),
        )
        .await;
    assert_eq!(result["current_state"], "a", "four flips: back in a");
    admin = burst(admin, 100, 16).await;
    let expected: Vec<Applied> = applied_since(&mut admin, 0)
        .await
        .into_iter()
        .filter(|a| a.instance_id == "i-3")
        .collect();
    assert_eq!(expected.len(), 6);
    let got: Vec<Applied> = watcher.events(6).await.iter().map(Applied::of).collect();
    assert_eq!(got, expected);
    watcher.expect_quiet(Duration::from_millis(300)).await;
    server.stop().await;
}

fn small_wal() -> Setup {
    Setup {
        segment_size_bytes: 64 << 10,
        limits: WatchLimits {
            ring: RingLimits {
                events: 16,
                bytes: 1 << 20,
            },
            batch_events: 16,
            ..WatchLimits::default()
        },
        ..Setup::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_from_before_the_oldest_segment_is_offset_compacted() {
    let server = WatchServer::start(small_wal()).await;
    let admin = prepare(&server).await;
    let mut admin = burst(admin, 500, 1_000).await;
    let compacted = admin.ok(Op::Compact, json!({})).await;
    assert!(compacted["segments_deleted"].as_u64().unwrap() > 0);
    let oldest = admin.ok(Op::WalStats, json!({})).await["oldest_offset"]
        .as_u64()
        .unwrap();

    let first_offset = 1u64 << 40;
    for (op, params) in [
        (Op::WatchAll, json!({"from_offset": first_offset})),
        (
            Op::WatchInstance,
            json!({"instance_id": "i-1", "from_offset": first_offset}),
        ),
    ] {
        let err = admin.err(op, params).await;
        assert_eq!(err.code, ErrorCode::NotFound);
        let details = err.details.unwrap_or_default();
        assert_eq!(details["reason"], "offset_compacted");
        assert_eq!(details["from_offset"], first_offset);
        assert_eq!(details["oldest_offset"], oldest);
    }
    // The oldest offset itself is still complete history.
    admin.ok(Op::WatchAll, json!({"from_offset": oldest})).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_left_behind_by_compaction_gets_an_explicit_stream_error() {
    let server = WatchServer::start(small_wal()).await;
    let admin = prepare(&server).await;
    let mut lagging = server.connect().await;
    let sub = lagging.ok(Op::WatchAll, json!({})).await["subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The subscriber reads nothing while far more than its socket, queue and ring hold is
    // written; then compaction removes the segments it still needs.
    let mut admin = burst(admin, 6_000, 4_000).await;
    admin.ok(Op::Compact, json!({})).await;
    let oldest = admin.ok(Op::WalStats, json!({})).await["oldest_offset"]
        .as_u64()
        .unwrap();

    let mut last_offset = None;
    let error = loop {
        match lagging.next_pushed(WAIT).await {
            Some(Pushed::Event(event)) => {
                assert!(last_offset < Some(event.wal_offset), "increasing offsets");
                last_offset = Some(event.wal_offset);
            }
            Some(Pushed::StreamError(error)) => break error,
            None => panic!("neither an event nor a stream error arrived"),
        }
    };
    assert_eq!(error.subscription_id, sub);
    assert_eq!(error.error.code, ErrorCode::NotFound);
    let details = error.error.details.clone().unwrap_or_default();
    assert_eq!(details["reason"], "offset_compacted");
    assert_eq!(details["oldest_offset"], oldest);
    let last = last_offset.expect("some events came before the error");
    assert_eq!(
        details["next_offset"],
        last + 1,
        "resume right after the last event"
    );
    lagging.expect_quiet(Duration::from_millis(300)).await;

    let stats = server
        .wait_stats("gauge after the stream error", |s| {
            s.subscriptions_active_all == 0
        })
        .await;
    assert_eq!(stats.stream_errors_offset_compacted, 1);
    let unwatch = lagging
        .ok(Op::Unwatch, json!({"subscription_id": sub}))
        .await;
    assert_eq!(
        unwatch["removed"], false,
        "the stream error already ended it"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_from_offset_above_the_subscription_point_skips_what_lies_below_it() {
    let server = WatchServer::start(Setup::default()).await;
    let mut conn = prepare(&server).await;
    let start = conn.ok(Op::WalStats, json!({})).await["latest_offset"]
        .as_u64()
        .unwrap();
    // The next record starts exactly at S; asking for S + 1 leaves it out.
    conn.ok(Op::WatchAll, json!({"from_offset": start + 1}))
        .await;
    let first = conn
        .ok(Op::ApplyEvent, json!({"instance_id": "i-0", "event": "GO"}))
        .await;
    assert_eq!(first["wal_offset"], start);
    let second = conn
        .ok(Op::ApplyEvent, json!({"instance_id": "i-1", "event": "GO"}))
        .await;
    let event = conn.next_event().await;
    assert_eq!(json!(event.wal_offset), second["wal_offset"]);
    conn.expect_quiet(Duration::from_millis(300)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_by_id_includes_the_transitions_of_an_earlier_instance_with_that_id() {
    let server = WatchServer::start(Setup::default()).await;
    let mut conn = prepare(&server).await;
    conn.ok(Op::ApplyEvent, json!({"instance_id": "i-7", "event": "GO"}))
        .await;
    conn.ok(Op::DeleteInstance, json!({"instance_id": "i-7"}))
        .await;
    create(&mut conn, "flip", "i-7").await;
    conn.ok(Op::ApplyEvent, json!({"instance_id": "i-7", "event": "GO"}))
        .await;
    conn.ok(
        Op::WatchInstance,
        json!({"instance_id": "i-7", "from_offset": 0}),
    )
    .await;
    let events = conn.events(2).await;
    assert!(
        events
            .iter()
            .all(|e| e.instance_id == "i-7" && e.event == "GO")
    );
    assert!(events[0].wal_offset < events[1].wal_offset);
    conn.expect_quiet(Duration::from_millis(300)).await;
    server.stop().await;
}
