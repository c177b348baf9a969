//! Logs of the real binary: `--log-format json` writes one JSON object per line with
//! timestamp, level, target and message; each request gets a debug span with its op,
//! connection id and duration; and a token sent in AUTH never reaches any log line, at any
//! level, in either format.

use rstmdb_testkit::binary::{RunningBinary, logged_addr};
use rstmdb_testkit::raw::Client;
use rstmdb_testkit::{TOKEN, TOKEN_HASH};
use std::path::Path;

use serde_json::{Value, json};
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// A second secret: a wrong token must not be logged either.
const WRONG_TOKEN: &str = "not-the-token-but-still-secret-0xC0FFEE";

/// AUTH with a wrong and then the right token, a few requests, BYE.
async fn authenticated_session(addr: SocketAddr) {
    let mut client = Client::new(TcpStream::connect(addr).await.expect("connects"));
    let auth = |token: &str| json!({"method": "bearer", "token": token});
    let refused = client.call("AUTH", auth(WRONG_TOKEN)).await;
    assert_eq!(refused["status"], "error", "{refused}");
    let accepted = client.call("AUTH", auth(TOKEN)).await;
    assert_eq!(accepted["status"], "ok", "{accepted}");
    let pong = client.call("PING", json!({})).await;
    assert_eq!(pong["status"], "ok", "{pong}");
    let missing = client
        .call("GET_INSTANCE", json!({"instance_id": "missing"}))
        .await;
    assert_eq!(missing["status"], "error", "{missing}");
    client.call("BYE", json!({})).await;
    client.expect_closed().await;
}

/// Runs a session against the binary and returns its log lines.
async fn logs_of_a_session(log_format: &str, rust_log: &str) -> Vec<String> {
    let mut binary = RunningBinary::start(
        Path::new(env!("CARGO_BIN_EXE_rstmdb")),
        log_format,
        rust_log,
        &[],
    );
    let addr = logged_addr(&binary.wait_for("rstmdb listening"));
    authenticated_session(addr).await;
    binary.stop()
}

#[tokio::test]
async fn json_log_lines_are_objects_with_timestamp_level_target_and_message() {
    let lines = logs_of_a_session("json", "debug").await;
    assert!(lines.len() >= 5, "{lines:#?}");
    for line in &lines {
        let event: Value =
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
        for field in ["timestamp", "level", "target", "message"] {
            assert!(event[field].is_string(), "{field} missing: {line}");
        }
    }
    let startup = lines
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|event| event["message"] == "WAL fsync policy")
        .expect("the start-up summary");
    assert_eq!(
        startup["fsync_policy"], "every_write",
        "fields sit beside the message"
    );
    assert_eq!(startup["level"], "INFO");
}

#[tokio::test]
async fn each_request_is_a_debug_span_with_op_connection_and_duration() {
    let lines = logs_of_a_session("json", "rstmdb=debug").await;
    let finished: Vec<Value> = lines
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["message"] == "request finished")
        .collect();
    let ops: Vec<&str> = finished
        .iter()
        .filter_map(|event| event["span"]["op"].as_str())
        .collect();
    assert_eq!(
        ops,
        ["AUTH", "AUTH", "PING", "GET_INSTANCE", "BYE"],
        "{finished:#?}"
    );
    for event in &finished {
        assert_eq!(event["level"], "DEBUG");
        assert_eq!(event["span"]["name"], "request");
        assert!(event["span"]["conn"].as_u64() >= Some(1), "{event}");
        assert!(event["duration_us"].is_u64(), "{event}");
    }
    let not_found = &finished[3];
    assert_eq!(not_found["status"], "error");
    assert_eq!(not_found["code"], "INSTANCE_NOT_FOUND");

    let info_only = logs_of_a_session("json", "info").await;
    assert!(
        !info_only
            .iter()
            .any(|line| line.contains("request finished")),
        "request spans are debug level"
    );
}

#[tokio::test]
async fn auth_tokens_never_appear_in_any_log_line_at_any_level() {
    for format in ["json", "text"] {
        let lines = logs_of_a_session(format, "trace").await;
        assert!(
            lines.iter().any(|line| line.contains("AUTH")),
            "the AUTH requests were logged at trace level ({format}): {lines:#?}"
        );
        for line in &lines {
            assert!(!line.contains(TOKEN), "token logged ({format}): {line}");
            assert!(
                !line.contains(WRONG_TOKEN),
                "wrong token logged ({format}): {line}"
            );
            assert!(
                !line.contains(TOKEN_HASH),
                "token hash logged ({format}): {line}"
            );
        }
    }
}
