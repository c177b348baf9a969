//! Completeness and order under concurrent writers: every subscriber receives exactly the
//! matching committed transitions, in WAL order, none twice, none missing, compared with
//! WAL_READ (spec §6.9).

use rstmdb::wal::FsyncPolicy;
use rstmdb_client::Op;
use rstmdb_client::message::Outcome;
use rstmdb_testkit::watch::{Applied, Conn, Setup, WatchServer, applied_since, create};
use serde_json::json;
use std::time::{Duration, Instant};

const WRITERS: usize = 4;
const INSTANCES_PER_WRITER: usize = 125;
const EVENTS_PER_WRITER: usize = 5_000;
const PIPELINE: usize = 64;
const INSTANCE_WATCHERS: usize = 10;

fn instance(writer: usize, index: usize) -> String {
    format!("i-{writer}-{index}")
}

/// Applies this writer's events, PIPELINE requests in flight: each instance flips GO, BACK, …
async fn write_burst(mut conn: Conn, writer: usize) {
    let mut in_flight = std::collections::VecDeque::new();
    for k in 0..EVENTS_PER_WRITER {
        let id = instance(writer, k % INSTANCES_PER_WRITER);
        let event = if (k / INSTANCES_PER_WRITER).is_multiple_of(2) {
            "GO"
        } else {
            "BACK"
        };
        let request = conn
            .send(Op::ApplyEvent, json!({"instance_id": id, "event": event}))
            .await;
        in_flight.push_back(request);
        if in_flight.len() == PIPELINE
            && let Some(oldest) = in_flight.pop_front()
        {
            assert_ok(conn.response(&oldest).await.outcome);
        }
    }
    for request in in_flight {
        assert_ok(conn.response(&request).await.outcome);
    }
}

fn assert_ok(outcome: Outcome) {
    if let Outcome::Error { error } = outcome {
        panic!("apply failed: {error:?}");
    }
}

async fn collect(mut conn: Conn, count: usize) -> Vec<Applied> {
    let events = conn.events(count).await;
    conn.expect_quiet(Duration::from_millis(300)).await;
    events.iter().map(Applied::of).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscriber_gets_every_matching_transition_once_in_wal_order() {
    let server = WatchServer::start(Setup {
        fsync_policy: FsyncPolicy::EveryWrite,
        ..Setup::default()
    })
    .await;
    let mut admin = server.connect().await;
    rstmdb_testkit::watch::put_flip_machine(&mut admin, "flip").await;
    for writer in 0..WRITERS {
        for index in 0..INSTANCES_PER_WRITER {
            create(&mut admin, "flip", &instance(writer, index)).await;
        }
    }

    let mut all_watcher = server.connect().await;
    let start = all_watcher
        .ok(Op::WatchAll, json!({"include_ctx": true}))
        .await["wal_offset"]
        .as_u64()
        .expect("S");
    let mut instance_watchers = Vec::new();
    for w in 0..INSTANCE_WATCHERS {
        let id = instance(w % WRITERS, w * 11 % INSTANCES_PER_WRITER);
        let mut conn = server.connect().await;
        conn.ok(Op::WatchInstance, json!({"instance_id": id})).await;
        instance_watchers.push((id, conn));
    }

    let began = Instant::now();
    let total = WRITERS * EVENTS_PER_WRITER;
    let all_task = tokio::spawn(collect(all_watcher, total));
    let per_instance = EVENTS_PER_WRITER / INSTANCES_PER_WRITER;
    let instance_tasks: Vec<_> = instance_watchers
        .into_iter()
        .map(|(id, conn)| (id, tokio::spawn(collect(conn, per_instance))))
        .collect();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let conn = server.connect().await;
        writers.push(tokio::spawn(write_burst(conn, writer)));
    }
    for writer in writers {
        writer.await.expect("writer");
    }

    let expected = applied_since(&mut admin, start).await;
    assert_eq!(expected.len(), total, "WAL_READ shows every apply");
    let received = all_task.await.expect("WATCH_ALL subscriber");
    assert_eq!(
        received, expected,
        "WATCH_ALL: same transitions, same order"
    );
    for (id, task) in instance_tasks {
        let received = task.await.expect("WATCH_INSTANCE subscriber");
        let expected: Vec<Applied> = expected
            .iter()
            .filter(|a| a.instance_id == id)
            .cloned()
            .collect();
        assert_eq!(received, expected, "WATCH_INSTANCE {id}");
    }
    eprintln!(
        "{total} events through 11 subscribers in {:?}",
        began.elapsed()
    );
    server.stop().await;
}
