//! Watch fan-out on this machine: writers apply events as fast as they can under `never` while
//! N WATCH_ALL subscribers (one connection each) read every event.
//!
//! `cargo bench -p rstmdb --bench watch_fanout` prints, for 0, 10 and 100 subscribers: the write
//! throughput (4 writer connections, 64 requests in flight each), the events delivered per
//! second to all subscribers together, and the latency from an APPLY_EVENT response to the
//! receipt of its event (p50/p99, one probe writer sending one request at a time while the
//! subscribers stay connected). Server and clients share this process and its cores.
//! `WATCH_BENCH_EVENTS` (default 20000) sets the events per run.

use futures::{SinkExt, StreamExt};
use rstmdb::config::ResolvedAuth;
use rstmdb::database::{Database, DatabaseOptions};
use rstmdb::server::{DatabaseHandler, OpHandler, Server, ServerSettings};
use rstmdb::wal::{FsyncPolicy, WalConfig};
use rstmdb_client::message::{Outcome, ServerMessage};
use rstmdb_client::{Op, Request, WireCodec, WireMode};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

const WRITERS: usize = 4;
const PIPELINE: usize = 64;
const INSTANCES: usize = 1_000;
const LATENCY_SAMPLES: usize = 2_000;

type Conn = Framed<TcpStream, WireCodec>;

async fn connect(addr: SocketAddr) -> Conn {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    Framed::new(stream, WireCodec::new(WireMode::BinaryJson, 64 << 20))
}

async fn send(conn: &mut Conn, id: u64, op: Op, params: Value) {
    let params = match params {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let payload = serde_json::to_string(&Request::new(id.to_string(), op, params)).expect("encode");
    conn.send(payload).await.expect("send");
}

/// Reads until a response arrives and returns it (no events arrive on writer connections).
async fn response(conn: &mut Conn) -> Map<String, Value> {
    loop {
        let payload = conn.next().await.expect("open").expect("frame");
        if let Ok(ServerMessage::Response(response)) = ServerMessage::parse(&payload) {
            match response.outcome {
                Outcome::Ok { result, .. } => return result,
                Outcome::Error { error } => panic!("request failed: {error:?}"),
            }
        }
    }
}

async fn call(conn: &mut Conn, op: Op, params: Value) -> Map<String, Value> {
    send(conn, 0, op, params).await;
    response(conn).await
}

fn event_for(k: usize) -> (String, &'static str) {
    let event = if (k / INSTANCES).is_multiple_of(2) {
        "GO"
    } else {
        "BACK"
    };
    (format!("i-{}", k % INSTANCES), event)
}

/// Applies events `first, first + WRITERS, …` below `total`, PIPELINE in flight.
async fn writer(addr: SocketAddr, first: usize, total: usize) {
    let mut conn = connect(addr).await;
    let mut in_flight = 0usize;
    for k in (first..total).step_by(WRITERS) {
        let (instance_id, event) = event_for(k);
        send(
            &mut conn,
            k as u64,
            Op::ApplyEvent,
            json!({"instance_id": instance_id, "event": event}),
        )
        .await;
        in_flight += 1;
        if in_flight == PIPELINE {
            response(&mut conn).await;
            in_flight -= 1;
        }
    }
    for _ in 0..in_flight {
        response(&mut conn).await;
    }
}

/// Counts event frames (without parsing them) until `expected` arrived.
async fn subscriber(mut conn: Conn, expected: u64, delivered: Arc<AtomicU64>) {
    let mut seen = 0;
    while seen < expected {
        match conn.next().await {
            Some(Ok(_)) => {
                seen += 1;
                delivered.fetch_add(1, Ordering::Relaxed);
            }
            _ => panic!("subscriber connection ended after {seen} events"),
        }
    }
}

struct Run {
    writes_per_sec: f64,
    delivered_per_sec: f64,
    latency_us: (u128, u128),
}

async fn run(addr: SocketAddr, subscribers: usize, events: usize) -> Run {
    let delivered = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for _ in 0..subscribers {
        let mut conn = connect(addr).await;
        call(&mut conn, Op::WatchAll, json!({"include_ctx": true})).await;
        readers.push(tokio::spawn(subscriber(
            conn,
            events as u64,
            Arc::clone(&delivered),
        )));
    }
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|first| tokio::spawn(writer(addr, first, events)))
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let write_secs = started.elapsed().as_secs_f64();
    for reader in readers {
        reader.await.expect("subscriber");
    }
    let delivery_secs = started.elapsed().as_secs_f64();
    let latency_us = latency(addr, subscribers).await;
    Run {
        writes_per_sec: events as f64 / write_secs,
        delivered_per_sec: delivered.load(Ordering::Relaxed) as f64 / delivery_secs,
        latency_us,
    }
}

/// p50/p99 of "event received" minus "APPLY_EVENT response received", sequential applies, with
/// `background` other WATCH_ALL subscribers draining their events meanwhile.
async fn latency(addr: SocketAddr, background: usize) -> (u128, u128) {
    let mut drains = Vec::new();
    for _ in 0..background {
        let mut conn = connect(addr).await;
        call(&mut conn, Op::WatchAll, json!({})).await;
        drains.push(tokio::spawn(async move {
            while let Some(Ok(_)) = conn.next().await {}
        }));
    }
    let mut probe = connect(addr).await;
    call(
        &mut probe,
        Op::WatchInstance,
        json!({"instance_id": "probe"}),
    )
    .await;
    let mut writer = connect(addr).await;
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    let mut pending_events: HashMap<u64, Instant> = HashMap::new();
    for k in 0..LATENCY_SAMPLES {
        let event = if k.is_multiple_of(2) { "GO" } else { "BACK" };
        let result = call(
            &mut writer,
            Op::ApplyEvent,
            json!({"instance_id": "probe", "event": event}),
        )
        .await;
        let answered = Instant::now();
        let offset = result["wal_offset"].as_u64().expect("wal_offset");
        let received = match pending_events.remove(&offset) {
            Some(at) => at,
            None => loop {
                let payload = probe.next().await.expect("open").expect("frame");
                let at = Instant::now();
                if let Ok(ServerMessage::Event(e)) = ServerMessage::parse(&payload) {
                    if e.wal_offset == offset {
                        break at;
                    }
                    pending_events.insert(e.wal_offset, at);
                }
            },
        };
        samples.push(received.saturating_duration_since(answered).as_micros());
    }
    for drain in drains {
        drain.abort();
    }
    samples.sort_unstable();
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

fn main() {
    let events: usize = std::env::var("WATCH_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
        let options = DatabaseOptions::new(
            dir.path(),
            WalConfig { segment_size_bytes: 256 << 20, fsync_policy: FsyncPolicy::Never },
        );
        let (db, _) = Database::open(options).expect("open");
        let handler: Arc<dyn OpHandler> = Arc::new(DatabaseHandler::new(Arc::new(db)));
        let settings = ServerSettings {
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            idle_timeout: None,
            max_connections: 10_000,
            max_frame_bytes: 16 << 20,
            write_timeout: None,
            auth: ResolvedAuth { required: false, token_hashes: Vec::new() },
            tls: None,
        };
        let server = Server::bind(settings, handler).await.expect("bind");
        let addr = server.local_addr().expect("addr");
        tokio::spawn(server.run_until(std::future::pending()));

        let mut admin = connect(addr).await;
        let definition = json!({"states": ["a", "b"], "initial": "a", "transitions": [
            {"from": "a", "event": "GO", "to": "b"}, {"from": "b", "event": "BACK", "to": "a"}]});
        call(&mut admin, Op::PutMachine, json!({"machine": "flip", "version": 1, "definition": definition})).await;
        for i in 0..INSTANCES {
            call(&mut admin, Op::CreateInstance, json!({"machine": "flip", "version": 1,
                "instance_id": format!("i-{i}"), "initial_ctx": {"customer": "alice", "n": i}})).await;
        }
        call(&mut admin, Op::CreateInstance, json!({"machine": "flip", "version": 1, "instance_id": "probe"})).await;

        println!("watch fan-out, {events} events per run, fsync never, {WRITERS} writers x {PIPELINE} in flight");
        let mut baseline = None;
        for subscribers in [0, 10, 100] {
            let r = run(addr, subscribers, events).await;
            let slowdown = baseline.map_or(String::new(), |base: f64| {
                format!(" ({:+.1}% vs 0 subscribers)", (r.writes_per_sec / base - 1.0) * 100.0)
            });
            baseline.get_or_insert(r.writes_per_sec);
            println!(
                "{subscribers:>4} subscribers: {:>9.0} writes/s{slowdown}, {:>10.0} events delivered/s, response->event latency p50 {} us, p99 {} us",
                r.writes_per_sec, r.delivered_per_sec, r.latency_us.0, r.latency_us.1
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}
