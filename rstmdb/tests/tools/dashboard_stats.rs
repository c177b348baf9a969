//! STATS (extension, docs/stats-op.md) against a real `rstmdb serve`: exact per-state counts
//! after creates, transitions and deletes, server totals, and the auth gate.

use crate::repl_support::Server;
use futures::StreamExt;
use rstmdb_client::params::WatchAllParams;
use rstmdb_client::results::StatsResult;
use rstmdb_client::{ApplyEventOptions, Client, ClientOptions, CreateInstanceOptions, ErrorCode};
use rstmdb_testkit::machines::ORDER_DEFINITION;
use serde_json::Value;
use std::time::Duration;

fn counts(stats: &StatsResult) -> Vec<(String, u32, String, u64)> {
    stats
        .instances
        .iter()
        .map(|e| (e.machine.clone(), e.version, e.state.clone(), e.count))
        .collect()
}

fn row(state: &str, count: u64) -> (String, u32, String, u64) {
    ("order".to_owned(), 1, state.to_owned(), count)
}

#[tokio::test]
async fn stats_counts_instances_per_state_and_reports_the_server() {
    // Metrics on a port of its own: STATS reads connections and requests from them.
    let server = Server::start_with_env(&[
        ("RSTMDB_METRICS_ENABLED", "true"),
        ("RSTMDB_METRICS_BIND", "127.0.0.1:0"),
    ]);
    let client = Client::connect(ClientOptions::new(server.addr.to_string()))
        .await
        .expect("connect");
    let definition: Value = serde_json::from_str(ORDER_DEFINITION).expect("definition");
    client
        .put_machine("order", 1, definition)
        .await
        .expect("put machine");
    for id in ["o-1", "o-2", "o-3"] {
        client
            .create_instance("order", 1, CreateInstanceOptions::default().instance_id(id))
            .await
            .expect("create");
    }
    let mut watch = client
        .watch_all(WatchAllParams::default())
        .await
        .expect("watch all");
    client
        .apply_event("o-1", "PAY", ApplyEventOptions::default())
        .await
        .expect("pay");
    client.delete_instance("o-3", None).await.expect("delete");

    let stats = client.stats().await.expect("stats");
    assert_eq!(counts(&stats), [row("created", 1), row("paid", 1)]);
    assert_eq!(stats.instance_count, 2);
    assert_eq!(stats.machine_count, 1);
    assert_eq!(stats.machine_version_count, 1);
    assert_eq!(stats.subscriptions, 1);
    assert_eq!(stats.connections, Some(1));
    assert!(stats.requests_total.is_some_and(|total| total >= 6));
    assert_eq!(stats.wal.entry_count, 6);
    assert_eq!(stats.wal.durable_offset, stats.wal.latest_offset);
    assert_eq!(stats.wal.fsync_policy, "every_write");

    let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("the transition arrives")
        .expect("stream open")
        .expect("an event");
    assert_eq!(event.instance_id, "o-1");
    client.close().await.expect("close");
}

#[tokio::test]
async fn stats_needs_auth_when_auth_is_required() {
    let server = Server::start_with_token("s3cret");
    let options = ClientOptions::new(server.addr.to_string());
    let client = Client::connect(options)
        .await
        .expect("connect without a token");
    let error = client.stats().await.expect_err("refused");
    assert_eq!(error.code(), Some(&ErrorCode::Unauthorized));
}
