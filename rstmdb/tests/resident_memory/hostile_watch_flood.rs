//! 100,000 instances, each with a WATCH_INSTANCE attempt, pipelined over several connections
//! (issue 9, item 4): the per-connection and server-wide subscription limits refuse the excess
//! with `BAD_REQUEST`, reason `subscription_limit` and the `limit`, the server keeps answering
//! other clients' reads with normal latency, its tasks and memory stay bounded, and closing the
//! flooding connections frees the slots.

use rstmdb::service::watch::WatchLimits;
use rstmdb::wal::FsyncPolicy;
use rstmdb_testkit::hostile::{Bystander, alive_tasks, median_and_worst};
use rstmdb_testkit::memory::{measuring_resident_memory, resident_bytes};
use rstmdb_testkit::ops::*;
use rstmdb_testkit::raw::{frame, request};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const INSTANCES: usize = 100_000;
const CONNECTIONS: usize = 12;
/// Latency bounds for other clients during the flood. The flooding clients share the test's
/// two runtime threads with the server, on a 2-core machine that other builds also load, so
/// single requests can wait a while (up to ~1.3 s measured at load average 8); the median shows
/// normal service, and the worst stays far below the 20 s a blocked server would take.
const MEDIAN_LATENCY: Duration = Duration::from_millis(250);
const WORST_LATENCY: Duration = Duration::from_secs(3);

/// Pipelines a WATCH_INSTANCE for each id on one connection; returns (subscriptions opened,
/// refusals by limit) and keeps the connection open (its subscriptions with it).
async fn watch_each(
    addr: std::net::SocketAddr,
    ids: Vec<String>,
) -> (
    rstmdb_testkit::raw::Client<tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
    usize,
    BTreeMap<u64, usize>,
) {
    let stream = TcpStream::connect(addr).await.expect("connects");
    let (read_half, mut write_half) = stream.into_split();
    let count = ids.len();
    let writer = tokio::spawn(async move {
        let mut burst = Vec::new();
        for (n, id) in ids.iter().enumerate() {
            let params = json!({"instance_id": id, "include_ctx": false});
            burst.extend(frame(
                request(&n.to_string(), "WATCH_INSTANCE", params).as_bytes(),
            ));
        }
        write_half.write_all(&burst).await.expect("write the burst");
        write_half
    });
    let mut reader = rstmdb_testkit::raw::Client::new(read_half);
    let mut opened = 0;
    let mut refused = BTreeMap::new();
    for n in 0..count {
        let response = reader.read_frame().await;
        assert_eq!(response["id"], json!(n.to_string()), "{response}");
        if response["status"] == json!("ok") {
            opened += 1;
            continue;
        }
        let error = &response["error"];
        assert_eq!(error["code"], json!("BAD_REQUEST"), "{response}");
        assert_eq!(
            error["details"]["reason"],
            json!("subscription_limit"),
            "{response}"
        );
        let limit = error["details"]["limit"].as_u64().expect("the limit");
        *refused.entry(limit).or_insert(0) += 1;
    }
    let write_half = writer.await.expect("writer");
    (reader, write_half, opened, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_watch_attempts_are_bounded_by_the_subscription_limits() {
    // Measures this process's resident memory: no other test of the binary runs meanwhile.
    let _alone = measuring_resident_memory().await;
    // Durability is not what this test is about; `never` keeps 1,000 batches fast.
    let config = ServerConfig::default().fsync_policy(FsyncPolicy::Never);
    let server = OpsServer::start_with(config).await;
    let limits = WatchLimits::default();
    let client = client_with_order(&server).await;
    let started = Instant::now();
    create_many(&client, INSTANCES).await;
    let created_in = started.elapsed();

    let bystander = Bystander::start(server.addr).await;
    let reading = Arc::new(AtomicBool::new(true));
    let reader_probe = tokio::spawn({
        let (client, reading) = (server.client().await, reading.clone());
        async move {
            let mut latencies = Vec::new();
            while reading.load(Ordering::Relaxed) {
                let at = Instant::now();
                client
                    .get_instance("i-00042")
                    .await
                    .expect("GET_INSTANCE during the flood");
                latencies.push(at.elapsed());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            latencies
        }
    });
    let rss_before = resident_bytes();
    let tasks_before = alive_tasks();
    let flood_started = Instant::now();
    let ids: Vec<String> = (0..INSTANCES).map(|i| format!("i-{i:05}")).collect();
    let mut floods = Vec::new();
    for share in ids.chunks(INSTANCES.div_ceil(CONNECTIONS)) {
        floods.push(tokio::spawn(watch_each(server.addr, share.to_vec())));
    }
    let mut connections = Vec::new();
    let mut opened_total = 0;
    let mut refused_total: BTreeMap<u64, usize> = BTreeMap::new();
    for flood in floods {
        let (reader, writer, opened, refused) = flood.await.expect("flood connection");
        assert!(
            opened <= limits.max_subscriptions_per_connection,
            "one connection opened {opened}"
        );
        opened_total += opened;
        for (limit, n) in refused {
            *refused_total.entry(limit).or_insert(0) += n;
        }
        connections.push((reader, writer));
    }
    let flood_took = flood_started.elapsed();
    let tasks_during = alive_tasks().saturating_sub(tasks_before);
    let rss_grown = resident_bytes().saturating_sub(rss_before);
    reading.store(false, Ordering::Relaxed);
    let reads = reader_probe.await.expect("reader probe");
    let pings = bystander.finish().await;
    let (median_read, worst_read) = median_and_worst(&reads);
    let (median_ping, worst_ping) = median_and_worst(&pings);

    assert_eq!(
        opened_total, limits.max_subscriptions,
        "the server-wide limit is reached exactly"
    );
    assert_eq!(
        opened_total + refused_total.values().sum::<usize>(),
        INSTANCES,
        "every attempt was answered"
    );
    let per_connection = limits.max_subscriptions_per_connection as u64;
    let server_wide = limits.max_subscriptions as u64;
    assert!(
        refused_total
            .keys()
            .all(|limit| [per_connection, server_wide].contains(limit)),
        "{refused_total:?}"
    );
    assert!(
        refused_total.contains_key(&server_wide),
        "{refused_total:?}"
    );
    for (what, median, worst) in [
        ("GET_INSTANCE", median_read, worst_read),
        ("PING", median_ping, worst_ping),
    ] {
        assert!(
            median < MEDIAN_LATENCY && worst < WORST_LATENCY,
            "{what} during the flood: median {median:?}, worst {worst:?}"
        );
    }
    // One task per subscription, and nothing per refused attempt.
    assert!(
        tasks_during <= limits.max_subscriptions + 2 * CONNECTIONS + 16,
        "{tasks_during} more tasks"
    );
    // 10,000 subscriptions: a few KiB each, far from anything per attempt.
    assert!(rss_grown < 256 << 20, "memory grew by {rss_grown} bytes");

    // Closing the flooding connections ends their subscriptions and frees the slots.
    drop(connections);
    let deadline = Instant::now() + Duration::from_secs(10);
    let watcher = server.client().await;
    loop {
        match watcher.watch_instance("i-00001", false, None).await {
            Ok(_) => break,
            Err(err) => {
                assert!(Instant::now() < deadline, "slots never freed: {err:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    server.assert_fresh_connection_works().await;
    eprintln!(
        "watch flood: {INSTANCES} instances created in {created_in:?}; {INSTANCES} attempts over \
         {CONNECTIONS} connections in {flood_took:?}: {opened_total} opened, refused by limit \
         {refused_total:?}; +{tasks_during} tasks, rss +{} MiB; {} GETs (median \
         {median_read:?}, worst {worst_read:?}), {} PINGs (median {median_ping:?}, worst \
         {worst_ping:?})",
        rss_grown >> 20,
        reads.len(),
        pings.len()
    );
}
