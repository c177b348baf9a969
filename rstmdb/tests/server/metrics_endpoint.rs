//! The metrics endpoint against a real database server: after a scripted workload the counters
//! and gauges moved by exactly what the workload did, gauges return to zero when clients leave,
//! `/health` follows the server's life cycle, and the Grafana dashboard only queries metrics
//! the server exports.

use rstmdb::metrics::HealthState;
use rstmdb::server::ServerSettings;
use rstmdb_testkit::metrics::{MetricsServerUnderTest, http_get};
use rstmdb_testkit::server::loopback_settings;
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn order_definition() -> Value {
    json!({"states":["created","paid","shipped"],"initial":"created",
        "transitions":[{"from":"created","event":"PAY","to":"paid"},
                       {"from":"paid","event":"SHIP","to":"shipped"}]})
}

fn error_code(response: &Value) -> String {
    response["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("an error response: {response}"))
        .to_owned()
}

fn ok(response: Value) -> Value {
    assert_eq!(response["status"], "ok", "{response}");
    response
}

/// The workload every test below starts from; returns the error codes it provoked and the
/// final WAL_STATS result.
async fn run_workload(server: &MetricsServerUnderTest) -> (Vec<String>, Value) {
    let mut client = server.connect().await;
    let machine = json!({"machine": "order", "version": 1, "definition": order_definition()});
    ok(client.call("PUT_MACHINE", machine).await);
    for id in ["a", "b", "c"] {
        let params = json!({"machine": "order", "version": 1, "instance_id": id});
        ok(client.call("CREATE_INSTANCE", params).await);
    }
    ok(client
        .call("APPLY_EVENT", json!({"instance_id": "a", "event": "PAY"}))
        .await);
    let mut errors = Vec::new();
    let missing = client
        .call("GET_INSTANCE", json!({"instance_id": "missing"}))
        .await;
    errors.push(error_code(&missing));
    let refused = client
        .call("APPLY_EVENT", json!({"instance_id": "b", "event": "SHIP"}))
        .await;
    errors.push(error_code(&refused));
    ok(client.call("PING", json!({})).await);
    ok(client.call("COMPACT", json!({})).await);
    let stats = ok(client.call("WAL_STATS", json!({})).await)["result"].clone();
    (errors, stats)
}

#[tokio::test]
async fn workload_moves_request_error_and_instance_metrics_by_exactly_its_amounts() {
    let server = MetricsServerUnderTest::start().await;
    let (errors, stats) = run_workload(&server).await;
    let scrape = server.scrape().await;

    let requests = |op: &str| scrape.value("rstmdb_requests_total", &[("operation", op)]);
    assert_eq!(requests("PUT_MACHINE"), 1.0);
    assert_eq!(requests("CREATE_INSTANCE"), 3.0);
    assert_eq!(requests("APPLY_EVENT"), 2.0);
    assert_eq!(requests("GET_INSTANCE"), 1.0);
    assert_eq!(requests("PING"), 1.0);
    assert_eq!(requests("WAL_STATS"), 1.0);
    assert_eq!(requests("DELETE_INSTANCE"), 0.0);
    let latency_count = scrape.value(
        "rstmdb_request_duration_seconds_count",
        &[("operation", "CREATE_INSTANCE")],
    );
    assert_eq!(latency_count, 3.0, "one latency sample per request");

    assert_eq!(errors.len(), 2);
    for code in &errors {
        let expected = errors.iter().filter(|c| *c == code).count() as f64;
        assert_eq!(
            scrape.value("rstmdb_errors_total", &[("code", code)]),
            expected
        );
    }
    assert_eq!(
        scrape.value("rstmdb_errors_total", &[("code", "AUTH_FAILED")]),
        0.0
    );

    assert_eq!(scrape.value("rstmdb_instances_total", &[]), 3.0);
    assert_eq!(scrape.value("rstmdb_machines_total", &[]), 1.0);
    let by_state = |state: &str| {
        scrape.get(
            "rstmdb_instances_by_state",
            &[("machine", "order"), ("version", "1"), ("state", state)],
        )
    };
    assert_eq!(by_state("created"), Some(2.0));
    assert_eq!(by_state("paid"), Some(1.0));
    assert_eq!(
        by_state("shipped"),
        None,
        "states without instances are absent"
    );

    let age = scrape.get("rstmdb_checkpoint_age_seconds", &[]);
    assert!(
        matches!(age, Some(age) if (0.0..60.0).contains(&age)),
        "{age:?}"
    );
    assert!(stats["io_stats"]["fsyncs"].as_u64() > Some(0));
}

#[tokio::test]
async fn wal_metrics_equal_what_wal_stats_reports() {
    let server = MetricsServerUnderTest::start().await;
    let (_, stats) = run_workload(&server).await;
    let scrape = server.scrape().await;
    let same = |metric: &str, field: &Value| {
        let expected = field
            .as_u64()
            .unwrap_or_else(|| panic!("{metric}: {stats}"));
        assert_eq!(scrape.value(metric, &[]), expected as f64, "{metric}");
    };
    same("rstmdb_wal_entries", &stats["entry_count"]);
    same("rstmdb_wal_segments", &stats["segment_count"]);
    same("rstmdb_wal_size_bytes", &stats["total_size_bytes"]);
    same("rstmdb_wal_latest_offset", &stats["latest_offset"]);
    same("rstmdb_wal_durable_offset", &stats["durable_offset"]);
    let io = &stats["io_stats"];
    same("rstmdb_wal_bytes_written_total", &io["bytes_written"]);
    same("rstmdb_wal_bytes_read_total", &io["bytes_read"]);
    same("rstmdb_wal_writes_total", &io["writes"]);
    same("rstmdb_wal_reads_total", &io["reads"]);
    same("rstmdb_wal_fsyncs_total", &io["fsyncs"]);
    assert_eq!(
        stats["io_stats"]["writes"], 5,
        "PUT_MACHINE, 3 creates, 1 event"
    );

    // The fsync hook is process-wide, so other tests' fsyncs may add to these; ours alone
    // made at least one fsync carrying at least one record.
    let fsyncs = scrape.value("rstmdb_wal_fsync_duration_seconds_count", &[]);
    assert!(fsyncs >= 1.0, "fsync latency observed: {fsyncs}");
    let records = scrape.value("rstmdb_wal_group_commit_records_sum", &[]);
    assert!(records >= 5.0, "records per fsync observed: {records}");
}

#[tokio::test]
async fn connection_gauge_returns_to_zero_after_every_kind_of_close() {
    let server = MetricsServerUnderTest::start().await;
    let mut polite = server.connect().await;
    let mut abrupt = server.connect().await;
    let mut faulty = server.connect().await;
    ok(polite.call("PING", json!({})).await);
    ok(abrupt.call("PING", json!({})).await);
    ok(faulty.call("PING", json!({})).await);
    let open = server
        .scrape_until(|s| s.value("rstmdb_connections_active", &[]) == 3.0)
        .await;
    assert_eq!(open.value("rstmdb_connections_active", &[]), 3.0);
    assert_eq!(open.value("rstmdb_connections_total", &[]), 3.0);

    ok(polite.call("BYE", json!({})).await);
    drop(abrupt);
    // A frame with a wrong magic: a framing fault, answered with one error, then closed.
    faulty.send_raw(&[b'X'; 18]).await;
    let fault = faulty.read_frame().await;
    let fault_code = error_code(&fault);

    let closed = server
        .scrape_until(|s| s.value("rstmdb_connections_active", &[]) == 0.0)
        .await;
    assert_eq!(closed.value("rstmdb_connections_active", &[]), 0.0);
    assert_eq!(closed.value("rstmdb_connections_total", &[]), 3.0);
    assert_eq!(
        closed.value("rstmdb_requests_total", &[("operation", "BYE")]),
        1.0
    );
    assert_eq!(
        closed.value("rstmdb_errors_total", &[("code", &fault_code)]),
        1.0
    );
}

#[tokio::test]
async fn a_connection_refused_over_the_limit_counts_as_an_error_not_as_a_connection() {
    let settings = ServerSettings {
        max_connections: 1,
        ..loopback_settings()
    };
    let server = MetricsServerUnderTest::start_with(settings).await;
    let mut admitted = server.connect().await;
    ok(admitted.call("PING", json!({})).await);
    let mut refused = server.connect().await;
    let refusal = refused.read_frame().await;
    let code = error_code(&refusal);
    refused.expect_closed().await;

    let scrape = server.scrape().await;
    assert_eq!(
        scrape.value("rstmdb_errors_total", &[("code", &code)]),
        1.0,
        "{code}"
    );
    assert_eq!(scrape.value("rstmdb_connections_active", &[]), 1.0);
    assert_eq!(scrape.value("rstmdb_connections_total", &[]), 1.0);
}

#[tokio::test]
async fn subscriptions_and_forwarded_events_follow_real_watches_and_return_to_zero() {
    let server = MetricsServerUnderTest::start().await;
    let before = server.scrape().await;
    for kind in ["instance", "all"] {
        assert_eq!(
            before.get("rstmdb_subscriptions_active", &[("type", kind)]),
            Some(0.0)
        );
        assert_eq!(
            before.get("rstmdb_events_forwarded_total", &[("type", kind)]),
            Some(0.0)
        );
    }
    for reason in ["offset_compacted", "wal_read_failed"] {
        assert_eq!(
            before.get("rstmdb_watch_stream_errors_total", &[("reason", reason)]),
            Some(0.0)
        );
    }

    let mut writer = server.connect().await;
    let machine = json!({"machine": "order", "version": 1, "definition": order_definition()});
    ok(writer.call("PUT_MACHINE", machine).await);
    let create = json!({"machine": "order", "version": 1, "instance_id": "a"});
    ok(writer.call("CREATE_INSTANCE", create).await);

    let mut watcher = server.connect().await;
    ok(watcher.call("WATCH_ALL", json!({})).await);
    ok(watcher
        .call("WATCH_INSTANCE", json!({"instance_id": "a"}))
        .await);
    let unwatched = ok(watcher.call("WATCH_ALL", json!({"events": ["NOPE"]})).await);
    let id = unwatched["result"]["subscription_id"].clone();
    ok(watcher
        .call("UNWATCH", json!({"subscription_id": id}))
        .await);
    let during = server
        .scrape_until(|s| s.value("rstmdb_subscriptions_active", &[("type", "all")]) == 1.0)
        .await;
    assert_eq!(
        during.value("rstmdb_subscriptions_active", &[("type", "instance")]),
        1.0
    );

    ok(writer
        .call("APPLY_EVENT", json!({"instance_id": "a", "event": "PAY"}))
        .await);
    let forwarded = server
        .scrape_until(|s| {
            s.value("rstmdb_events_forwarded_total", &[("type", "all")]) == 1.0
                && s.value("rstmdb_events_forwarded_total", &[("type", "instance")]) == 1.0
        })
        .await;
    assert_eq!(
        forwarded.value("rstmdb_subscriptions_active", &[("type", "all")]),
        1.0
    );

    // The watcher disconnects without UNWATCH: both gauges must come back to zero.
    drop(watcher);
    let after = server
        .scrape_until(|s| {
            s.value("rstmdb_subscriptions_active", &[("type", "all")]) == 0.0
                && s.value("rstmdb_subscriptions_active", &[("type", "instance")]) == 0.0
        })
        .await;
    assert_eq!(
        after.value("rstmdb_events_forwarded_total", &[("type", "all")]),
        1.0
    );
}

#[tokio::test]
async fn health_is_ok_only_while_serving_and_unknown_paths_are_404() {
    let server = MetricsServerUnderTest::start().await;
    assert_eq!(
        http_get(server.http_addr, "/health").await,
        (200, "OK".to_owned())
    );
    assert_eq!(
        http_get(server.http_addr, "/ready").await,
        (200, "OK".to_owned()),
        "a standalone server is ready whenever it serves (spec §12.5)"
    );
    assert_eq!(
        http_get(server.http_addr, "/healthz").await,
        (200, "OK".to_owned())
    );
    for state in [HealthState::Recovering, HealthState::ShuttingDown] {
        server.health.set(state);
        assert_eq!(
            http_get(server.http_addr, "/health").await.0,
            503,
            "{state:?}"
        );
        assert_eq!(
            http_get(server.http_addr, "/healthz").await.0,
            503,
            "{state:?}"
        );
        assert_eq!(
            http_get(server.http_addr, "/ready").await.0,
            503,
            "{state:?}"
        );
    }
    assert_eq!(
        http_get(server.http_addr, "/nope").await,
        (404, "Not Found".to_owned())
    );
    let (status, index) = http_get(server.http_addr, "/").await;
    assert_eq!(status, 200);
    assert!(index.contains("href=\"/metrics\"") && index.contains("href=\"/health\""));
}

#[tokio::test]
async fn reserved_replication_metrics_are_not_exported_and_process_metrics_are() {
    let server = MetricsServerUnderTest::start().await;
    let scrape = server.scrape().await;
    assert!(
        !scrape.text.contains("rstmdb_replication"),
        "{}",
        scrape.text
    );
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(scrape.names().contains(name), "{name} missing");
    }
    let recovery = scrape.get("rstmdb_recovery_duration_seconds", &[]);
    assert!(matches!(recovery, Some(s) if s > 0.0), "{recovery:?}");
}

/// Metric names in a PromQL expression: identifiers starting with `rstmdb_` or `process_`.
fn metric_names_in(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let rest = &expr[i..];
        if starts_word && (rest.starts_with("rstmdb_") || rest.starts_with("process_")) {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            names.push(rest[..len].to_owned());
            i += len;
        } else {
            i += 1;
        }
    }
    names
}

fn collect_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    _ => collect_exprs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_exprs(item, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_metric_the_grafana_dashboard_queries_is_exported() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../grafana/dashboards/rstmdb.json"
    );
    let text = std::fs::read_to_string(path).expect("dashboard JSON exists");
    let dashboard: Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(
        exprs.len() >= 10,
        "the dashboard has its panels' queries: {exprs:?}"
    );
    let used: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names_in(e)).collect();
    for needed in [
        "rstmdb_requests_total",
        "rstmdb_request_duration_seconds_bucket",
        "rstmdb_errors_total",
        "rstmdb_connections_active",
        "rstmdb_subscriptions_active",
        "rstmdb_wal_size_bytes",
        "rstmdb_wal_fsync_duration_seconds_bucket",
        "rstmdb_wal_group_commit_records_bucket",
        "rstmdb_instances_by_state",
        "rstmdb_machines_total",
    ] {
        assert!(used.contains(needed), "the dashboard shows {needed}");
    }

    let server = MetricsServerUnderTest::start().await;
    run_workload(&server).await;
    let exported = server.scrape().await.names();
    let missing: Vec<&String> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(missing.is_empty(), "queried but not exported: {missing:?}");
}

#[test]
fn metric_name_extraction_finds_names_inside_promql() {
    let expr = "histogram_quantile(0.99, sum by (le, operation) \
                (rate(rstmdb_request_duration_seconds_bucket[5m]))) / process_open_fds";
    assert_eq!(
        metric_names_in(expr),
        ["rstmdb_request_duration_seconds_bucket", "process_open_fds"]
    );
    assert!(metric_names_in("sum(up{job=\"x_rstmdb_y\"})").is_empty());
}
