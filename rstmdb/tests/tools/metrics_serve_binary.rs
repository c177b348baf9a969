//! `rstmdb serve` with `[metrics] enabled`: the real binary serves `/health` and `/metrics`, and
//! the metrics follow what its clients do (the wiring in `serve`, not only the library).

use rstmdb_testkit::TOKEN;
use rstmdb_testkit::binary::{RunningBinary, logged_addr};
use rstmdb_testkit::metrics::{Scrape, http_get};
use rstmdb_testkit::raw::Client;
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpStream;

async fn scrape_until(addr: SocketAddr, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = http_get(addr, "/metrics").await;
        assert_eq!(status, 200, "{body}");
        let scrape = Scrape::parse(&body);
        if done(&scrape) || tokio::time::Instant::now() > deadline {
            return scrape;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn serve_exports_metrics_of_its_clients_and_reports_healthy() {
    let mut binary = RunningBinary::start(
        Path::new(env!("CARGO_BIN_EXE_rstmdb")),
        "json",
        "info",
        &[
            ("RSTMDB_METRICS_ENABLED", "true"),
            ("RSTMDB_METRICS_BIND", "127.0.0.1:0"),
        ],
    );
    let metrics_addr = logged_addr(&binary.wait_for("metrics endpoint listening"));
    let rcp_addr = logged_addr(&binary.wait_for("rstmdb listening"));
    assert_eq!(
        http_get(metrics_addr, "/health").await,
        (200, "OK".to_owned())
    );

    let mut client = Client::new(TcpStream::connect(rcp_addr).await.expect("connects"));
    let auth = client
        .call("AUTH", json!({"method": "bearer", "token": TOKEN}))
        .await;
    assert_eq!(auth["status"], "ok", "{auth}");
    let definition = json!({"states": ["open", "closed"], "initial": "open",
        "transitions": [{"from": "open", "event": "CLOSE", "to": "closed"}]});
    let put = client
        .call(
            "PUT_MACHINE",
            json!({"machine": "door", "version": 1, "definition": definition}),
        )
        .await;
    assert_eq!(put["status"], "ok", "{put}");
    let created = client
        .call(
            "CREATE_INSTANCE",
            json!({"machine": "door", "version": 1, "instance_id": "front"}),
        )
        .await;
    assert_eq!(created["status"], "ok", "{created}");

    let open = scrape_until(metrics_addr, |s| {
        s.value("rstmdb_connections_active", &[]) == 1.0
    })
    .await;
    assert_eq!(open.value("rstmdb_connections_active", &[]), 1.0);
    assert_eq!(
        open.value("rstmdb_requests_total", &[("operation", "CREATE_INSTANCE")]),
        1.0
    );
    assert_eq!(open.value("rstmdb_instances_total", &[]), 1.0);
    let front_door = [("machine", "door"), ("version", "1"), ("state", "open")];
    assert_eq!(
        open.get("rstmdb_instances_by_state", &front_door),
        Some(1.0)
    );
    assert_eq!(open.value("rstmdb_wal_writes_total", &[]), 2.0);
    assert!(open.value("rstmdb_wal_fsyncs_total", &[]) >= 1.0);
    assert!(open.value("rstmdb_wal_fsync_duration_seconds_count", &[]) >= 1.0);
    assert!(open.get("rstmdb_recovery_duration_seconds", &[]).is_some());

    drop(client);
    let closed = scrape_until(metrics_addr, |s| {
        s.value("rstmdb_connections_active", &[]) == 0.0
    })
    .await;
    assert_eq!(closed.value("rstmdb_connections_active", &[]), 0.0);
    assert_eq!(closed.value("rstmdb_connections_total", &[]), 1.0);
    binary.stop();
}
