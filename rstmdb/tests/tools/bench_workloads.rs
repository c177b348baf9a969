//! `rstmdb bench --embedded`: a short run of each workload against an in-process server
//! reports non-zero throughput and no errors, in the text report and in the `--json` line.

use assert_cmd::Command;
use serde_json::Value;

/// A short, small run: a few hundred milliseconds, 2 connections × 4 in flight.
fn bench(workload: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("rstmdb").expect("the rstmdb binary is built");
    cmd.args(["bench", "--embedded", "--fsync", "never", "-w", workload])
        .args(["-d", "300ms", "-c", "2", "-P", "4", "-i", "50"])
        .args(extra)
        .timeout(std::time::Duration::from_secs(30));
    cmd
}

fn json_report(workload: &str, extra: &[&str]) -> Value {
    let output = bench(workload, &[&["--json"], extra].concat())
        .output()
        .expect("bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{workload}: exit {:?}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.lines().count(),
        1,
        "--json prints one line: {stdout}"
    );
    serde_json::from_str(stdout.trim()).expect("the line is JSON")
}

fn assert_clean_run(report: &Value, workload: &str) {
    assert_eq!(report["workload"], workload);
    assert!(
        report["ops_per_sec"].as_f64().unwrap_or(0.0) > 0.0,
        "{report}"
    );
    assert_eq!(report["errors"]["total"], 0, "{report}");
    assert_eq!(report["ops"], report["ok_ops"], "{report}");
    let latency = &report["latency_us"];
    let p50 = latency["p50"].as_u64().unwrap_or(0);
    let max = latency["max"].as_u64().unwrap_or(0);
    assert!(p50 > 0 && p50 <= max, "{report}");
    assert!(report["cpu_secs"]["total"].as_f64().is_some(), "{report}");
    assert_eq!(report["fsync"], "never");
}

#[test]
fn apply_workload_reports_throughput_and_no_errors() {
    assert_clean_run(&json_report("apply", &[]), "apply");
}

#[test]
fn create_workload_reports_throughput_and_no_errors() {
    assert_clean_run(&json_report("create", &[]), "create");
}

#[test]
fn get_workload_reports_throughput_and_no_errors() {
    assert_clean_run(&json_report("get", &[]), "get");
}

#[test]
fn mixed_workload_runs_every_kind_in_the_mix_without_errors() {
    let report = json_report("mixed", &["--mix", "get=2,apply=1,create=1"]);
    assert_clean_run(&report, "mixed");
}

#[test]
fn batch_workload_counts_every_sub_op() {
    let report = json_report("batch", &["--batch-size", "5"]);
    assert_clean_run(&report, "batch");
    assert_eq!(report["batch_size"], 5);
    let ops = report["ok_ops"].as_u64().unwrap_or(0);
    assert_eq!(report["items_ok"].as_u64(), Some(ops * 5), "{report}");
}

#[test]
fn watch_workload_delivers_every_transition_to_every_watcher() {
    let report = json_report("watch", &["--watchers", "3"]);
    assert_clean_run(&report, "watch");
    let watch = &report["watch"];
    assert_eq!(watch["watchers"], 3);
    assert_eq!(
        watch["events_delivered"], watch["events_expected"],
        "{report}"
    );
    assert_eq!(
        watch["events_expected"].as_u64(),
        report["items_ok"].as_u64().map(|items| items * 3)
    );
}

#[test]
fn text_report_shows_throughput_percentiles_and_zero_errors() {
    let output = bench("get", &[]).output().expect("bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("errors: 0"), "{stdout}");
    assert!(stdout.contains("ops/s"), "{stdout}");
    for percentile in ["p50", "p90", "p99", "p99.9", "max"] {
        assert!(
            stdout.contains(percentile),
            "{percentile} missing: {stdout}"
        );
    }
    assert!(stdout.contains("bench process cpu"), "{stdout}");
}

#[test]
fn an_operation_count_runs_exactly_that_many_operations() {
    let output = Command::cargo_bin("rstmdb")
        .expect("the rstmdb binary is built")
        .args([
            "bench", "--fsync", "never", "-w", "apply", "-n", "123", "-c", "3", "-P", "5",
        ])
        .args(["-i", "10", "--json"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("bench runs");
    assert!(output.status.success());
    let report: Value = serde_json::from_slice(&output.stdout).expect("the line is JSON");
    assert_eq!(report["ops"], 123);
    assert_eq!(report["ok_ops"], 123);
    assert!(
        report["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("embedded")),
        "no --server means an embedded server: {report}"
    );
}
