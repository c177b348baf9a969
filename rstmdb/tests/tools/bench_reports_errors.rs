//! `rstmdb bench` never counts an error as a success: injected invalid events come back as
//! INVALID_TRANSITION, are reported by code in the text and JSON reports, leave throughput
//! counting only the successes, and make the command exit 1.

use assert_cmd::Command;
use serde_json::Value;

fn bench(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("rstmdb")
        .expect("the rstmdb binary is built")
        .args([
            "bench",
            "--embedded",
            "--fsync",
            "never",
            "-c",
            "2",
            "-P",
            "4",
        ])
        .args(["-i", "20"])
        .args(args)
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("bench runs")
}

#[test]
fn invalid_events_are_counted_as_invalid_transition_errors() {
    // 100 applies, every 5th one invalid: exactly 20 errors.
    let output = bench(&[
        "-w",
        "apply",
        "-n",
        "100",
        "--invalid-event-every",
        "5",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1), "errors make the bench fail");
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    assert_eq!(report["ops"], 100);
    assert_eq!(report["ok_ops"], 80);
    assert_eq!(report["errors"]["total"], 20);
    assert_eq!(report["errors"]["by_code"]["INVALID_TRANSITION"], 20);
}

#[test]
fn the_text_report_names_the_error_code_and_count() {
    let output = bench(&["-w", "apply", "-n", "40", "--invalid-event-every", "4"]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("errors: 10"), "{stdout}");
    assert!(stdout.contains("INVALID_TRANSITION: 10"), "{stdout}");
}

#[test]
fn failed_sub_ops_of_a_batch_are_counted_one_by_one() {
    // 10 batches of 10 applies, every 5th sub-op invalid: 20 failed sub-ops in best effort.
    let output = bench(&[
        "-w",
        "batch",
        "-n",
        "10",
        "--batch-size",
        "10",
        "--invalid-event-every",
        "5",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    assert_eq!(report["errors"]["by_code"]["INVALID_TRANSITION"], 20);
    assert_eq!(report["items_ok"], 80);
    assert_eq!(report["ok_ops"], 0, "no batch was free of failures");
}

#[test]
fn an_unreachable_server_is_an_error_not_an_empty_report() {
    // Port 1 on localhost: nothing listens there.
    let output = Command::cargo_bin("rstmdb")
        .expect("the rstmdb binary is built")
        .args(["bench", "-s", "127.0.0.1:1", "-n", "10"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("bench runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

#[test]
fn an_fsync_policy_for_a_remote_server_is_refused_not_ignored() {
    let output = Command::cargo_bin("rstmdb")
        .expect("the rstmdb binary is built")
        .args(["bench", "-s", "127.0.0.1:1", "--fsync", "never", "-n", "1"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("bench runs");
    assert_eq!(output.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--fsync"), "{stderr}");
}
