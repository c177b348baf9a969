//! The metrics endpoint against the real binary (issue 14, item 4): `/health` still answers
//! when idle connections hold every slot, and client-chosen machine and state names cannot
//! make the per-state series grow without bound.

use rstmdb_testkit::TOKEN;
use rstmdb_testkit::binary::{RunningBinary, logged_addr};
use rstmdb_testkit::metrics::http_get;
use rstmdb_testkit::raw::Client;
use serde_json::json;
use std::path::Path;
use tokio::net::TcpStream;

fn start(env: &[(&str, &str)]) -> (RunningBinary, std::net::SocketAddr, std::net::SocketAddr) {
    let mut env = env.to_vec();
    env.extend([
        ("RSTMDB_METRICS_ENABLED", "true"),
        ("RSTMDB_METRICS_BIND", "127.0.0.1:0"),
    ]);
    let mut binary = RunningBinary::start(
        Path::new(env!("CARGO_BIN_EXE_rstmdb")),
        "text",
        "info",
        &env,
    );
    let metrics = logged_addr(&binary.wait_for("metrics endpoint listening"));
    let rcp = logged_addr(&binary.wait_for("rstmdb listening"));
    (binary, rcp, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_while_idle_connections_hold_every_metrics_slot() {
    let (binary, _, metrics) = start(&[]);
    let mut hogs = Vec::new();
    for _ in 0..64 {
        hogs.push(TcpStream::connect(metrics).await.expect("connects"));
    }
    // The slots are taken once the server has accepted them; a scrape made before that
    // could still get one, so wait until /metrics is refused.
    let mut refused = false;
    for _ in 0..50 {
        if http_get(metrics, "/metrics").await.0 == 503 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "64 idle connections hold every full slot");
    assert_eq!(http_get(metrics, "/health").await, (200, "OK".to_owned()));
    assert_eq!(http_get(metrics, "/healthz").await, (200, "OK".to_owned()));
    drop(hogs);
    binary.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_state_series_are_capped_and_the_rest_summed_under_other() {
    let (binary, rcp, metrics) = start(&[("RSTMDB_METRICS_MAX_STATE_SERIES", "3")]);
    let mut client = Client::new(TcpStream::connect(rcp).await.expect("connects"));
    client
        .call("AUTH", json!({"method": "bearer", "token": TOKEN}))
        .await;
    for n in 0..5 {
        let machine = format!("m{n}");
        let definition = json!({"states": [format!("s{n}")], "initial": format!("s{n}"),
                                "transitions": []});
        client
            .call(
                "PUT_MACHINE",
                json!({"machine": machine, "version": 1, "definition": definition}),
            )
            .await;
        for i in 0..=n {
            let created = client
                .call(
                    "CREATE_INSTANCE",
                    json!({"machine": machine, "version": 1, "instance_id": format!("{machine}-{i}")}),
                )
                .await;
            assert_eq!(created["status"], json!("ok"), "{created}");
        }
    }
    let (status, text) = http_get(metrics, "/metrics").await;
    assert_eq!(status, 200);
    let series: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("rstmdb_instances_by_state{"))
        .collect();
    assert_eq!(series.len(), 3, "{series:#?}");
    // m0 (1 instance) and m1 (2) keep their series; m2..m4 (3 + 4 + 5) are summed.
    let other = series
        .iter()
        .find(|line| line.contains("state=\"_other\""))
        .expect("an _other series");
    assert!(other.ends_with(" 12"), "{other}");
    assert!(
        text.contains("rstmdb_instances_total 15"),
        "the total stays exact"
    );
    binary.stop();
}
