//! A real server in this process for the watch tests, and a client that speaks binary frames
//! with the protocol crate's types, keeping events and stream errors apart from responses.

use crate::server::{DbServer, DbSetup};
use futures::{SinkExt, StreamExt};
use rstmdb::database::Database;
use rstmdb::service::DatabaseHandler;
use rstmdb::service::watch::{WatchLimits, WatchStats};
use rstmdb::wal::{FsyncPolicy, Storage, WalConfig};
use rstmdb_client::message::{Event, Outcome, Response, ServerMessage, StreamError};
use rstmdb_client::{Op, Request, WireCodec, WireMode};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// How long a test waits for an expected message before failing.
pub const WAIT: Duration = Duration::from_secs(30);

/// A database in a temporary directory, served with the watch limits of its [`Setup`].
#[derive(Debug)]
pub struct WatchServer {
    pub addr: SocketAddr,
    pub handler: Arc<DatabaseHandler>,
    pub db: Arc<Database>,
    server: DbServer,
    pub dir: TempDir,
}

/// What a watch test varies.
#[derive(Debug, Clone)]
pub struct Setup {
    pub fsync_policy: FsyncPolicy,
    pub segment_size_bytes: u64,
    pub limits: WatchLimits,
    /// `None`: real files in the temp dir; fault tests pass a crashing in-memory storage.
    pub wal_storage: Option<Arc<dyn Storage>>,
}

impl Default for Setup {
    /// `never`: watch tests are about delivery, not durability, unless they say so.
    fn default() -> Self {
        Setup {
            fsync_policy: FsyncPolicy::Never,
            segment_size_bytes: 64 << 20,
            limits: WatchLimits::default(),
            wal_storage: None,
        }
    }
}

impl WatchServer {
    pub async fn start(setup: Setup) -> WatchServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = DbServer::start(
            dir.path(),
            &DbSetup {
                wal: WalConfig {
                    segment_size_bytes: setup.segment_size_bytes,
                    fsync_policy: setup.fsync_policy,
                },
                watch_limits: setup.limits,
                wal_storage: setup.wal_storage,
                ..DbSetup::default()
            },
        )
        .await;
        WatchServer {
            addr: server.addr,
            handler: Arc::clone(&server.handler),
            db: Arc::clone(&server.db),
            server,
            dir,
        }
    }

    pub async fn connect(&self) -> Conn {
        Conn::new(TcpStream::connect(self.addr).await.expect("connects"))
    }

    pub fn stats(&self) -> WatchStats {
        self.handler.watch_hub().stats()
    }

    /// Waits until the watch counters satisfy `check` (gauges follow task ends).
    pub async fn wait_stats(&self, what: &str, check: impl Fn(&WatchStats) -> bool) -> WatchStats {
        let deadline = Instant::now() + WAIT;
        loop {
            let stats = self.stats();
            if check(&stats) {
                return stats;
            }
            assert!(Instant::now() < deadline, "{what}: stats stayed {stats:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Graceful shutdown, waiting up to 10 s.
    pub async fn stop(self) {
        self.server.stop_quietly(Duration::from_secs(10)).await;
    }
}

/// A client connection. Events and stream errors that arrive while a response is awaited are
/// kept, in arrival order, for `next_event` / `next_stream_message`.
#[derive(Debug)]
pub struct Conn {
    framed: Framed<TcpStream, WireCodec>,
    next_id: u64,
    responses: HashMap<String, Response>,
    pushed: VecDeque<Pushed>,
}

/// An event or a stream error.
#[derive(Debug, Clone, PartialEq)]
pub enum Pushed {
    Event(Event),
    StreamError(StreamError),
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        Conn {
            framed: Framed::new(stream, WireCodec::new(WireMode::BinaryJson, 64 << 20)),
            next_id: 1,
            responses: HashMap::new(),
            pushed: VecDeque::new(),
        }
    }

    /// Sends a request without waiting; returns its id.
    pub async fn send(&mut self, op: Op, params: Value) -> String {
        let id = self.next_id.to_string();
        self.next_id += 1;
        let params = match params {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let request = Request::new(id.clone(), op, params);
        let payload = serde_json::to_string(&request).expect("request encodes");
        self.framed.send(payload).await.expect("request is sent");
        id
    }

    /// Like `send`, but `None` once the connection is broken (crash tests).
    pub async fn try_send(&mut self, op: Op, params: Value) -> Option<String> {
        let id = self.next_id.to_string();
        self.next_id += 1;
        let params = match params {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let payload = serde_json::to_string(&Request::new(id.clone(), op, params)).ok()?;
        self.framed.send(payload).await.ok()?;
        Some(id)
    }

    /// The outcome of `id`, or `None` once the connection is broken (crash tests).
    pub async fn try_response(&mut self, id: &str) -> Option<Outcome> {
        loop {
            if let Some(response) = self.responses.remove(id) {
                return Some(response.outcome);
            }
            self.try_read_one(WAIT).await?;
        }
    }

    /// The next pushed message already sent, or `None` once the connection ended (crash tests).
    pub async fn try_next_pushed(&mut self) -> Option<Pushed> {
        loop {
            if let Some(pushed) = self.pushed.pop_front() {
                return Some(pushed);
            }
            self.try_read_one(WAIT).await?;
        }
    }

    /// Reads one message; `None` on timeout, end of stream or a broken connection.
    async fn try_read_one(&mut self, wait: Duration) -> Option<()> {
        let payload = match tokio::time::timeout(wait, self.framed.next()).await {
            Ok(Some(Ok(payload))) => payload,
            _ => return None,
        };
        self.store(&payload);
        Some(())
    }

    /// Reads until the response to `id` arrives.
    pub async fn response(&mut self, id: &str) -> Response {
        loop {
            if let Some(response) = self.responses.remove(id) {
                return response;
            }
            self.read_one(WAIT)
                .await
                .unwrap_or_else(|| panic!("no response to request {id} in time"));
        }
    }

    pub async fn call(&mut self, op: Op, params: Value) -> Response {
        let id = self.send(op, params).await;
        self.response(&id).await
    }

    /// The result of a request that must succeed.
    pub async fn ok(&mut self, op: Op, params: Value) -> Map<String, Value> {
        let response = self.call(op, params.clone()).await;
        match response.outcome {
            Outcome::Ok { result, .. } => result,
            Outcome::Error { error } => panic!("{op} {params} failed: {error:?}"),
        }
    }

    /// The error of a request that must fail.
    pub async fn err(&mut self, op: Op, params: Value) -> rstmdb_client::RcpError {
        let response = self.call(op, params.clone()).await;
        match response.outcome {
            Outcome::Error { error } => error,
            Outcome::Ok { result, .. } => panic!("{op} {params} succeeded: {result:?}"),
        }
    }

    /// The next event or stream error, or `None` if none arrives within `wait`.
    pub async fn next_pushed(&mut self, wait: Duration) -> Option<Pushed> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(pushed) = self.pushed.pop_front() {
                return Some(pushed);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            self.read_one(left).await?;
        }
    }

    /// The next event; fails on a stream error or a timeout.
    pub async fn next_event(&mut self) -> Event {
        match self.next_pushed(WAIT).await {
            Some(Pushed::Event(event)) => event,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// `count` events in arrival order.
    pub async fn events(&mut self, count: usize) -> Vec<Event> {
        let mut events = Vec::with_capacity(count);
        for _ in 0..count {
            events.push(self.next_event().await);
        }
        events
    }

    /// Asserts that nothing is pushed for `wait`.
    pub async fn expect_quiet(&mut self, wait: Duration) {
        if let Some(pushed) = self.next_pushed(wait).await {
            panic!("expected no event, got {pushed:?}");
        }
    }

    /// Reads one message (None on timeout); responses are stored, pushes queued.
    async fn read_one(&mut self, wait: Duration) -> Option<()> {
        let payload = match tokio::time::timeout(wait, self.framed.next()).await {
            Err(_) => return None,
            Ok(Some(Ok(payload))) => payload,
            Ok(other) => panic!("connection ended or broke: {other:?}"),
        };
        self.store(&payload);
        Some(())
    }

    fn store(&mut self, payload: &str) {
        match ServerMessage::parse(payload).expect("server message parses") {
            ServerMessage::Response(response) => {
                self.responses.insert(response.id.clone(), response);
            }
            ServerMessage::Event(event) => self.pushed.push_back(Pushed::Event(event)),
            ServerMessage::StreamError(error) => {
                self.pushed.push_back(Pushed::StreamError(error));
            }
            ServerMessage::Unknown { message_type } => panic!("unknown message {message_type}"),
        }
    }

    /// The raw JSON of the next pushed message, for shape checks.
    pub async fn next_raw(&mut self) -> Value {
        let payload = tokio::time::timeout(WAIT, self.framed.next())
            .await
            .expect("a message in time")
            .expect("connection open")
            .expect("frame decodes");
        serde_json::from_str(&payload).expect("JSON")
    }
}

/// A machine that flips between `a` and `b` (GO, BACK) and can be `closed` from `b` (CLOSE).
pub fn flip_definition() -> Value {
    json!({
        "states": ["a", "b", "closed"],
        "initial": "a",
        "transitions": [
            {"from": "a", "event": "GO", "to": "b"},
            {"from": "b", "event": "BACK", "to": "a"},
            {"from": "b", "event": "CLOSE", "to": "closed"}
        ]
    })
}

pub async fn put_flip_machine(conn: &mut Conn, machine: &str) {
    conn.ok(
        Op::PutMachine,
        json!({"machine": machine, "version": 1, "definition": flip_definition()}),
    )
    .await;
}

pub async fn create(conn: &mut Conn, machine: &str, instance_id: &str) {
    conn.ok(
        Op::CreateInstance,
        json!({"machine": machine, "version": 1, "instance_id": instance_id, "initial_ctx": {"n": 0}}),
    )
    .await;
}

/// One committed apply_event record as WAL_READ shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub offset: u64,
    pub instance_id: String,
    pub from_state: String,
    pub to_state: String,
    pub event: String,
}

impl Applied {
    pub fn of(event: &Event) -> Applied {
        Applied {
            offset: event.wal_offset,
            instance_id: event.instance_id.clone(),
            from_state: event.from_state.clone(),
            to_state: event.to_state.clone(),
            event: event.event.clone(),
        }
    }
}

/// Every apply_event record with offset >= `from`, read with WAL_READ.
pub async fn applied_since(conn: &mut Conn, from: u64) -> Vec<Applied> {
    let mut applied = Vec::new();
    let mut from_offset = from;
    loop {
        let page = conn
            .ok(
                Op::WalRead,
                json!({"from_offset": from_offset, "limit": 5000}),
            )
            .await;
        let records = page["records"].as_array().cloned().unwrap_or_default();
        for record in &records {
            let entry = &record["entry"];
            if entry["type"] == "apply_event" {
                applied.push(Applied {
                    offset: record["offset"].as_u64().expect("offset"),
                    instance_id: entry["instance_id"].as_str().unwrap_or_default().to_owned(),
                    from_state: entry["from_state"].as_str().unwrap_or_default().to_owned(),
                    to_state: entry["to_state"].as_str().unwrap_or_default().to_owned(),
                    event: entry["event"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
        match page["next_offset"].as_u64() {
            Some(next) if !records.is_empty() => from_offset = next,
            _ => return applied,
        }
    }
}
