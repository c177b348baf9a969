//! The Rust client against a real server that restarts: it reconnects with backoff, and a
//! WATCH_ALL subscription resumes from the last offset it delivered, so the application sees
//! every transition exactly once, in WAL order, across the restart (issue: client, watch).

use futures::StreamExt;
use rstmdb::server::ServerSettings;
use rstmdb::wal::WalConfig;
use rstmdb_client::params::WatchAllParams;
use rstmdb_client::{
    ApplyEventOptions, Client, ClientError, ClientOptions, CreateInstanceOptions, ReconnectPolicy,
};
use rstmdb_testkit::server::{DbServer, DbSetup, loopback_settings};
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Serves the database in `dir` on `bind_addr` (the same address after the restart, so the
/// client reconnects to where it was).
async fn start(dir: &Path, bind_addr: SocketAddr) -> (SocketAddr, DbServer) {
    let setup = DbSetup {
        settings: ServerSettings {
            bind_addr,
            max_connections: 100,
            ..loopback_settings()
        },
        wal: WalConfig::default(),
        ..DbSetup::default()
    };
    let server = DbServer::start(dir, &setup).await;
    (server.addr, server)
}

async fn stop(running: DbServer) {
    running.stop(Duration::from_secs(30)).await;
}

/// Applies `event`, retrying while the client is between connections.
async fn apply_retrying(client: &Client, event: &str, n: u32) {
    for _ in 0..200 {
        let options = ApplyEventOptions {
            payload: json!({"n": n}).as_object().cloned(),
            idempotency_key: Some(format!("apply-{n}")),
            ..ApplyEventOptions::default()
        };
        match client.apply_event("i", event, options).await {
            Ok(_) => return,
            Err(ClientError::Server(err)) => panic!("apply {n} refused: {err:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    panic!("apply {n} never succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_continues_without_gap_or_duplicate_across_a_server_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (addr, running) = start(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0))).await;
    let options = ClientOptions::new(addr.to_string())
        .reconnect(ReconnectPolicy::exponential(
            Duration::from_millis(20),
            Duration::from_millis(200),
        ))
        .request_timeout(Duration::from_secs(10));
    let client = Client::connect(options).await.expect("connects");
    let definition = json!({"states": ["a", "b"], "initial": "a", "transitions": [
        {"from": "a", "event": "GO", "to": "b"}, {"from": "b", "event": "BACK", "to": "a"}]});
    client
        .put_machine("flip", 1, definition)
        .await
        .expect("put");
    let create = CreateInstanceOptions {
        instance_id: Some("i".into()),
        ..CreateInstanceOptions::default()
    };
    client
        .create_instance("flip", 1, create)
        .await
        .expect("create");
    let mut events = client
        .watch_all(WatchAllParams::default())
        .await
        .expect("watch");

    let event_name = |n: u32| if n.is_multiple_of(2) { "GO" } else { "BACK" };
    for n in 0..10 {
        apply_retrying(&client, event_name(n), n).await;
    }
    let mut received = Vec::new();
    while received.len() < 10 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .expect("event");
        received.push(event);
    }

    // Restart on the same address and data directory.
    stop(running).await;
    let (_, running) = start(dir.path(), addr).await;
    for n in 10..20 {
        apply_retrying(&client, event_name(n), n).await;
    }
    while received.len() < 20 {
        let event = tokio::time::timeout(Duration::from_secs(20), events.next())
            .await
            .expect("event in time after the restart")
            .expect("stream open")
            .expect("event");
        received.push(event);
    }

    let offsets: Vec<u64> = received.iter().map(|e| e.wal_offset).collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "WAL order, no duplicate: {offsets:?}"
    );
    let payload_n: Vec<u64> = received
        .iter()
        .map(|e| {
            e.payload
                .as_ref()
                .and_then(|p| p["n"].as_u64())
                .expect("payload n")
        })
        .collect();
    assert_eq!(
        payload_n,
        (0..20).collect::<Vec<u64>>(),
        "every transition exactly once"
    );
    let log = client.wal_read(0, None).await.expect("wal read");
    let applied: Vec<u64> = log
        .records
        .iter()
        .filter(|r| r.entry["type"] == "apply_event")
        .map(|r| r.offset)
        .collect();
    assert_eq!(offsets, applied, "the stream equals the WAL's transitions");
    client.close().await.expect("close");
    stop(running).await;
}
