//! What a client can make the real binary write (issue 14, items 10 and 11): snapshot files
//! are kept per instance up to a limit, failed AUTHs are logged with the peer's address at a
//! bounded rate, and the start-up refuses or warns about configurations that are open to
//! anyone.

use rstmdb_testkit::binary::{RunningBinary, clear_rstmdb_env, logged_addr};
use rstmdb_testkit::raw::authenticated;
use rstmdb_testkit::raw::{Client, frame, request};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use tokio::net::TcpStream;

fn binary_path() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_rstmdb"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_instance_in_a_loop_keeps_only_the_newest_snapshots_of_the_instance() {
    let (binary, addr) =
        RunningBinary::listening(binary_path(), &[("RSTMDB_MAX_SNAPSHOTS_PER_INSTANCE", "3")]);
    let mut client = authenticated(addr).await;
    let definition = json!({"states": ["a"], "initial": "a", "transitions": []});
    client
        .call(
            "PUT_MACHINE",
            json!({"machine": "m", "version": 1, "definition": definition}),
        )
        .await;
    for id in ["kept-apart", "looped"] {
        let created = client
            .call(
                "CREATE_INSTANCE",
                json!({"machine": "m", "version": 1, "instance_id": id}),
            )
            .await;
        assert_eq!(created["status"], json!("ok"), "{created}");
    }
    let apart = client
        .call("SNAPSHOT_INSTANCE", json!({"instance_id": "kept-apart"}))
        .await;
    let mut taken = Vec::new();
    for _ in 0..10 {
        let snapshot = client
            .call("SNAPSHOT_INSTANCE", json!({"instance_id": "looped"}))
            .await;
        taken.push(
            snapshot["result"]["snapshot_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }

    let snapshots = binary.data_dir().join("snapshots");
    let mut files: Vec<String> = std::fs::read_dir(&snapshots)
        .expect("snapshot dir")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    let mut expected: Vec<String> = taken[7..]
        .iter()
        .chain([apart["result"]["snapshot_id"].as_str().unwrap().to_owned()].iter())
        .map(|id| format!("{id}.json"))
        .collect();
    expected.sort();
    assert_eq!(
        files, expected,
        "the newest 3 of the looped instance and the other one"
    );
    let index = std::fs::read_to_string(snapshots.join("index.jsonl")).expect("index");
    assert_eq!(index.lines().count(), 4, "{index}");
    binary.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_auths_are_logged_with_the_peer_at_a_bounded_rate_and_never_the_token() {
    const SECRET: &str = "audit-trail-token-5e1b-never-logged";
    let mut binary = RunningBinary::start(binary_path(), "json", "info", &[]);
    let addr = logged_addr(&binary.wait_for("rstmdb listening"));
    // 60 failures, three per connection (the third closes it, §4.2).
    for _ in 0..20 {
        let mut client = Client::new(TcpStream::connect(addr).await.expect("connects"));
        for n in 0..3 {
            let auth = request(
                &format!("a{n}"),
                "AUTH",
                json!({"method": "bearer", "token": SECRET}),
            );
            client.send_raw(&frame(auth.as_bytes())).await;
            assert_eq!(
                client.read_frame().await["error"]["code"],
                json!("AUTH_FAILED")
            );
        }
        client.expect_closed().await;
    }
    let lines = binary.stop();
    let failures: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["message"] == "authentication failed")
        .collect();
    assert_eq!(
        failures.len(),
        20,
        "20 lines per 10 s window, the other 40 of 60 dropped"
    );
    for event in &failures {
        assert_eq!(event["level"], json!("WARN"));
        let peer = event["peer"].as_str().expect("peer field");
        assert!(peer.starts_with("127.0.0.1:"), "{event}");
        assert_eq!(event["reason"], json!("invalid_token"));
    }
    for line in &lines {
        assert!(!line.contains(SECRET), "the token was logged: {line}");
    }
}

/// Runs `rstmdb serve` with `args` and `env` until it logs `needle` (or exits), returning
/// what it wrote and its exit status if it ended. `ulimit` (e.g. `-n 512`) runs it under that
/// open-file limit, through the shell.
fn serve_until(
    args: &[&str],
    env: &[(&str, &str)],
    needle: &str,
) -> (Vec<String>, Option<std::process::ExitStatus>) {
    serve_until_limited(None, args, env, needle)
}

fn serve_until_limited(
    ulimit: Option<&str>,
    args: &[&str],
    env: &[(&str, &str)],
    needle: &str,
) -> (Vec<String>, Option<std::process::ExitStatus>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = match ulimit {
        Some(limit) => {
            let mut shell = Command::new("sh");
            shell
                .arg("-c")
                .arg(format!("ulimit {limit} && exec \"$0\" \"$@\""))
                .arg(binary_path());
            shell
        }
        None => Command::new(binary_path()),
    };
    command
        .arg("serve")
        .args(args)
        .arg("--data-dir")
        .arg(dir.path());
    clear_rstmdb_env(&mut command);
    let mut child = command
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rstmdb starts");
    let stderr = child.stderr.take().expect("piped");
    let mut lines = Vec::new();
    let mut found = false;
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        found = line.contains(needle);
        lines.push(line);
        if found {
            break;
        }
    }
    if found {
        // Still serving: stopped by its own pid.
        let _ = child.kill();
        let _ = child.wait();
        return (lines, None);
    }
    (lines, child.wait().ok())
}

#[test]
fn an_open_file_limit_too_small_for_max_connections_stops_start_up_naming_both() {
    let (lines, status) = serve_until_limited(
        Some("-n 512"),
        &["--bind", "127.0.0.1:0"],
        &[],
        "TLS disabled",
    );
    let status = status.expect("the server refused to start");
    assert!(!status.success());
    let text = lines.join("\n");
    assert!(text.contains("network.max_connections = 1000"), "{text}");
    assert!(text.contains("may open only 512"), "{text}");

    // The same limit with fewer connections starts.
    let (lines, status) = serve_until_limited(
        Some("-n 512"),
        &["--bind", "127.0.0.1:0"],
        &[("RSTMDB_MAX_CONNECTIONS", "200")],
        "TLS disabled",
    );
    assert!(status.is_none(), "{lines:#?}");
}

#[test]
fn a_low_soft_open_file_limit_is_raised_to_the_hard_limit() {
    let (lines, status) = serve_until_limited(
        Some("-S -n 256 && ulimit -H -n 4096"),
        &["--bind", "127.0.0.1:0"],
        &[],
        "TLS disabled",
    );
    assert!(status.is_none(), "it started: {lines:#?}");
    assert!(
        lines
            .iter()
            .any(|line| line.contains("raised the open-file limit")
                && line.contains("256")
                && line.contains("4096")),
        "{lines:#?}"
    );
}

#[test]
fn listening_beyond_loopback_without_auth_warns_that_anyone_can_reach_the_data() {
    // "TLS disabled" is the last start-up line, after the authentication lines.
    let (open, _) = serve_until(&["--bind", "0.0.0.0:0"], &[], "TLS disabled");
    let (loopback, _) = serve_until(&["--bind", "127.0.0.1:0"], &[], "TLS disabled");
    let warning = "anyone who can reach this address";
    assert!(
        open.iter()
            .any(|line| line.contains(warning) && line.contains("WARN")),
        "{open:#?}"
    );
    assert!(
        !loopback.iter().any(|line| line.contains(warning)),
        "{loopback:#?}"
    );
}

#[test]
fn mutual_tls_without_tls_is_a_start_up_error() {
    let (lines, status) = serve_until(
        &["--bind", "127.0.0.1:0"],
        &[("RSTMDB_TLS_REQUIRE_CLIENT_CERT", "true")],
        "TLS disabled",
    );
    let status = status.expect("the server refused to start");
    assert!(!status.success());
    let text = lines.join("\n");
    assert!(text.contains("tls.require_client_cert"), "{text}");
    assert!(text.contains("TLS is not enabled"), "{text}");
}
