//! Logs of the real binary: `--log-format json` writes one JSON object per line with
//! timestamp, level, target and message; each request gets a debug span with its op,
//! connection id and duration; and a token sent in AUTH never reaches any log line, at any
//! level, in either format.

mod server_support;

use serde_json::{Value, json};
use server_support::{Client, TOKEN, TOKEN_HASH};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tokio::net::TcpStream;

/// A second secret: a wrong token must not be logged either.
const WRONG_TOKEN: &str = "not-the-token-but-still-secret-0xC0FFEE";

struct RunningBinary {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    _dir: tempfile::TempDir,
}

impl RunningBinary {
    fn start(log_format: &str, rust_log: &str) -> RunningBinary {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_rstmdb"))
            .args(["serve", "--bind", "127.0.0.1:0", "--log-format", log_format])
            .arg("--data-dir")
            .arg(dir.path())
            .env("RUST_LOG", rust_log)
            .env("RSTMDB_AUTH_REQUIRED", "true")
            .env("RSTMDB_AUTH_TOKEN_HASH", TOKEN_HASH)
            .env_remove("RSTMDB_CONFIG")
            .env_remove("RSTMDB_LOG_FORMAT")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        RunningBinary {
            child,
            lines,
            seen: Vec::new(),
            _dir: dir,
        }
    }

    /// Waits for a log line containing `needle`.
    fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("no log line with {needle:?}; saw {:#?}", self.seen));
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Sends SIGTERM to the process by its pid, waits for the graceful shutdown to finish,
    /// and returns every line it wrote.
    fn stop(mut self) -> Vec<String> {
        let terminated = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        if !matches!(terminated, Ok(status) if status.success()) {
            let _ = self.child.kill();
        }
        self.wait_for("shutdown complete");
        let _ = self.child.wait();
        // The reader thread ends at end of file, closing the channel.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        self.seen
    }
}

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

fn listening_addr(line: &str) -> SocketAddr {
    if let Ok(event) = serde_json::from_str::<Value>(line) {
        return event["addr"]
            .as_str()
            .expect("addr field")
            .parse()
            .expect("an address");
    }
    // Text format: "... rstmdb listening addr=127.0.0.1:PORT"
    let at = line.find("addr=").expect("addr= in the text line") + "addr=".len();
    line[at..]
        .split_whitespace()
        .next()
        .and_then(|addr| addr.parse().ok())
        .expect("an address")
}

/// Runs a session against the binary and returns its log lines.
async fn logs_of_a_session(log_format: &str, rust_log: &str) -> Vec<String> {
    let mut binary = RunningBinary::start(log_format, rust_log);
    let addr = listening_addr(&binary.wait_for("rstmdb listening"));
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
        }
    }
}
