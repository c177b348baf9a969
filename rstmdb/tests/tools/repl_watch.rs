//! `watch` in the REPL against a small fake server (the real one does not serve watch streams
//! yet): the filters go out as WATCH_ALL params, events print one per line, `--count` ends the
//! watch, Ctrl-C (SIGINT) ends it too, and either way the REPL sends UNWATCH before leaving.

use futures::{SinkExt, StreamExt};
use rstmdb_client::limits::MAX_PAYLOAD_BYTES;
use rstmdb_client::{Event, Op, RcpError, Request, Response, WireCodec, WireMode};
use rstmdb_testkit::binary::clear_rstmdb_env;
use serde_json::{Map, Value, json};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant};
use tokio_util::codec::Framed;

const EVENTS_PER_WATCH: u64 = 3;
const DEADLINE: Duration = Duration::from_secs(30);

/// Answers HELLO, WATCH_* (then pushes [`EVENTS_PER_WATCH`] events), UNWATCH and BYE, and
/// records every request.
struct FakeServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl FakeServer {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake server");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("fake server address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        // The thread ends with the test process.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("fake server runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve(stream, Arc::clone(&log)));
                }
            });
        });
        Self { addr, seen }
    }

    fn seen(&self, op: Op) -> Vec<Request> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.iter().filter(|r| r.op == op).cloned().collect()
    }

    fn wait_for(&self, op: Op) -> Request {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(request) = self.seen(op).pop() {
                return request;
            }
            assert!(Instant::now() < deadline, "the fake server never saw {op}");
            sleep(Duration::from_millis(20));
        }
    }
}

async fn serve(stream: tokio::net::TcpStream, seen: Arc<Mutex<Vec<Request>>>) {
    let mut framed = Framed::new(
        stream,
        WireCodec::new(WireMode::BinaryJson, MAX_PAYLOAD_BYTES),
    );
    while let Some(Ok(payload)) = framed.next().await {
        let Ok(request) = Request::parse(&payload) else {
            return;
        };
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request.clone());
        let mut outgoing = Vec::new();
        let result = match request.op {
            Op::Hello => json!({"protocol_version": 1, "wire_mode": "binary_json",
                "server_name": "rstmdb", "server_version": "fake", "features": []}),
            Op::WatchAll => json!({"subscription_id": "sub-1", "wal_offset": 100}),
            Op::WatchInstance => json!({"subscription_id": "sub-1", "instance_id": "order-1",
                "current_state": "created", "current_wal_offset": 99}),
            Op::Unwatch => json!({"subscription_id": "sub-1", "removed": true}),
            Op::Bye => json!({"goodbye": true}),
            _ => Value::Null,
        };
        let response = match result {
            Value::Object(result) => Response::ok(request.id.clone(), result),
            _ => Response::error(request.id.clone(), RcpError::internal("not faked")),
        };
        outgoing.push(serde_json::to_string(&response).unwrap_or_default());
        if matches!(request.op, Op::WatchAll | Op::WatchInstance) {
            for offset in 100..100 + EVENTS_PER_WATCH {
                outgoing.push(serde_json::to_string(&event_at(offset)).unwrap_or_default());
            }
        }
        for text in outgoing {
            if framed.send(text).await.is_err() {
                return;
            }
        }
        if request.op == Op::Bye {
            return;
        }
    }
}

fn event_at(wal_offset: u64) -> Event {
    Event {
        subscription_id: "sub-1".into(),
        instance_id: "order-1".into(),
        machine: "order".into(),
        version: 1,
        wal_offset,
        from_state: "created".into(),
        to_state: "paid".into(),
        event: "PAY".into(),
        payload: None,
        ctx: Some(Map::from_iter([("n".to_owned(), json!(wal_offset))])),
    }
}

fn repl(server: &FakeServer) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rstmdb"));
    command.arg("repl").arg("-s").arg(server.addr.to_string());
    clear_rstmdb_env(&mut command);
    command
}

#[test]
fn watch_all_sends_its_filters_prints_count_events_and_unwatches() {
    let server = FakeServer::start();
    let output = repl(&server)
        .args([
            "-c",
            "watch --machine order --to-state paid,shipped --event PAY --no-ctx --count 2",
        ])
        .output()
        .expect("run repl");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout,
        "100  order-1  order@1  PAY  created -> paid  ctx={\"n\":100}\n\
         101  order-1  order@1  PAY  created -> paid  ctx={\"n\":101}\n"
    );
    let watch = server.wait_for(Op::WatchAll);
    assert_eq!(watch.params["machines"], json!(["order"]));
    assert_eq!(watch.params["to_states"], json!(["paid", "shipped"]));
    assert_eq!(watch.params["events"], json!(["PAY"]));
    assert_eq!(watch.params["include_ctx"], json!(false));
    assert_eq!(
        server.wait_for(Op::Unwatch).params["subscription_id"],
        "sub-1"
    );
}

#[test]
fn ctrl_c_ends_a_watch_with_unwatch_and_exit_0() {
    let server = FakeServer::start();
    let mut child = repl(&server)
        .args(["--json", "-c", "watch order-1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn repl");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    for offset in 100..100 + EVENTS_PER_WATCH {
        let line = lines.next().expect("an event line").expect("read stdout");
        let event: Value = serde_json::from_str(&line).expect("an event as JSON");
        assert_eq!(event["wal_offset"], offset);
    }
    assert_eq!(
        server.wait_for(Op::WatchInstance).params["instance_id"],
        "order-1"
    );

    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("send SIGINT");
    assert!(interrupted.success());
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll repl") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the repl did not end its watch on SIGINT");
        }
        sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
    server.wait_for(Op::Unwatch);
}
