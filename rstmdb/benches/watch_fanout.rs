//! Watch fan-out on this machine: writers apply events as fast as they can under `never` while
//! N WATCH_ALL subscribers (one connection each) read every event.
//!
//! `cargo bench -p rstmdb --bench watch_fanout` prints, for 0, 10 and 100 subscribers: the write
//! throughput (4 writer connections, 64 requests in flight each), the events delivered per
//! second to all subscribers together, how long delivery went on after the last write, the CPU
//! time of the server and of the bench's own clients, and the latency from an APPLY_EVENT
//! response to the receipt of its event (p50/p99, one probe writer sending one request at a
//! time while the subscribers stay connected).
//!
//! Server and clients share this process and its cores, but run on separate runtimes with named
//! threads, so their CPU time is measured apart (`/proc/self/task/*/schedstat`). The
//! subscriber clients are deliberately cheap yet honest: they check each frame's CRC and read
//! only `wal_offset`, and at the end every subscriber must have received every write's event
//! exactly once, in increasing offset order (count, order and the sum of offsets are compared
//! with the writers' responses); the bench panics otherwise.
//!
//! `WATCH_BENCH_EVENTS` (default 20000) sets the events per run, `WATCH_BENCH_SUBSCRIBERS`
//! (default `0,10,100`) the subscriber counts, `WATCH_BENCH_ROUNDS` (default 1) the repetitions.

use bytes::{Buf, BytesMut};
use futures::{SinkExt, StreamExt};
use rstmdb::database::{Database, DatabaseOptions};
use rstmdb::server::{Server, ServerSettings};
use rstmdb::service::watch::{WatchHub, WatchLimits};
use rstmdb::service::{DatabaseHandler, OpHandler};
use rstmdb::wal::{FsyncPolicy, WalConfig};
use rstmdb_client::limits::FRAME_HEADER_BYTES;
use rstmdb_client::message::{Outcome, ServerMessage};
use rstmdb_client::{Op, Request, WireCodec, WireMode};
use rstmdb_testkit::server::loopback_settings;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
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

/// A fingerprint of a set of offsets: count, sum and sum of squares (wrapping). A subscriber's
/// offsets strictly increase (no duplicates); with the same count and both sums as the
/// writers' offsets, a missing event could only hide behind a foreign one that matches both
/// sums, which the bench's offsets (all from this WAL) do not produce.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Offsets {
    count: u64,
    sum: u64,
    sum_of_squares: u64,
}

impl Offsets {
    fn add(&mut self, offset: u64) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(offset);
        self.sum_of_squares = self
            .sum_of_squares
            .wrapping_add(offset.wrapping_mul(offset));
    }

    fn merge(&mut self, other: Offsets) {
        self.count += other.count;
        self.sum = self.sum.wrapping_add(other.sum);
        self.sum_of_squares = self.sum_of_squares.wrapping_add(other.sum_of_squares);
    }
}

/// Applies events `first, first + WRITERS, …` below `total`, PIPELINE in flight; returns the
/// offsets the server answered.
async fn writer(addr: SocketAddr, first: usize, total: usize) -> Offsets {
    let mut conn = connect(addr).await;
    let mut offsets = Offsets::default();
    let mut record = |result: Map<String, Value>| {
        offsets.add(result["wal_offset"].as_u64().expect("wal_offset"));
    };
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
            record(response(&mut conn).await);
            in_flight -= 1;
        }
    }
    for _ in 0..in_flight {
        record(response(&mut conn).await);
    }
    offsets
}

/// Reads raw frames until `expected` events arrived: checks each CRC, reads only `wal_offset`
/// and checks that offsets strictly increase. Returns the offsets and when the last arrived.
async fn subscriber(conn: Conn, expected: u64) -> (Offsets, Instant) {
    let parts = conn.into_parts();
    let (mut stream, mut buf) = (parts.io, parts.read_buf);
    let mut offsets = Offsets::default();
    let mut last = 0u64;
    let mut last_at = Instant::now();
    while offsets.count < expected {
        while let Some(offset) = next_event_offset(&mut buf) {
            assert!(offset > last, "offset {offset} after {last}: out of order");
            last = offset;
            offsets.add(offset);
            last_at = Instant::now();
        }
        if offsets.count >= expected {
            break;
        }
        buf.reserve(256 << 10);
        let read = stream.read_buf(&mut buf).await.expect("read");
        assert!(read > 0, "subscriber connection ended after {offsets:?}");
    }
    (offsets, last_at)
}

/// Takes one complete frame off `buf` and returns its event's `wal_offset`.
fn next_event_offset(buf: &mut BytesMut) -> Option<u64> {
    if buf.len() < FRAME_HEADER_BYTES {
        return None;
    }
    assert_eq!(&buf[..4], b"RCPX", "bad magic");
    let header_len = usize::from(u16::from_be_bytes([buf[8], buf[9]]));
    let payload_len = u32::from_be_bytes([buf[10], buf[11], buf[12], buf[13]]) as usize;
    let crc = u32::from_be_bytes([buf[14], buf[15], buf[16], buf[17]]);
    let start = FRAME_HEADER_BYTES + header_len;
    if buf.len() < start + payload_len {
        return None;
    }
    let payload = &buf[start..start + payload_len];
    assert_eq!(crc32c::crc32c(payload), crc, "CRC mismatch");
    let offset = wal_offset_of(payload);
    buf.advance(start + payload_len);
    Some(offset)
}

fn wal_offset_of(payload: &[u8]) -> u64 {
    const KEY: &[u8] = b"\"wal_offset\":";
    let at = payload
        .windows(KEY.len())
        .position(|window| window == KEY)
        .expect("an event frame");
    let digits = &payload[at + KEY.len()..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end])
        .expect("digits")
        .parse()
        .expect("a u64 offset")
}

/// CPU time (ns) of this process's threads, by group: the server's runtime and threads, the
/// bench's writer clients, its subscriber clients, anything else.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    server_ns: u64,
    writers_ns: u64,
    subscribers_ns: u64,
}

impl Cpu {
    fn now() -> Cpu {
        let mut cpu = Cpu::default();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return cpu;
        };
        for task in tasks.flatten() {
            let path = task.path();
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            let ns: u64 = std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
                .unwrap_or(0);
            let name = name.trim();
            if name.starts_with("server") || name == "sequencer" || name == "wal-sync" {
                cpu.server_ns += ns;
            } else if name.starts_with("bench-writers") {
                cpu.writers_ns += ns;
            } else if name.starts_with("bench-subs") {
                cpu.subscribers_ns += ns;
            }
        }
        cpu
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            server_ns: self.server_ns.saturating_sub(before.server_ns),
            writers_ns: self.writers_ns.saturating_sub(before.writers_ns),
            subscribers_ns: self.subscribers_ns.saturating_sub(before.subscribers_ns),
        }
    }
}

struct Run {
    writes_per_sec: f64,
    delivered_per_sec: f64,
    /// From the last write's response to the last event's receipt.
    drain_ms: f64,
    /// WAL reads of subscriptions that fell behind the ring, and budget pauses.
    catch_up_reads: u64,
    pauses: u64,
    cpu: Cpu,
    latency_us: (u128, u128),
}

struct Runtimes {
    writers: Runtime,
    subscribers: Runtime,
    hub: WatchHub,
}

fn runtime(name: &str) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn run(rt: &Runtimes, addr: SocketAddr, subscribers: usize, events: usize) -> Run {
    let mut readers = Vec::new();
    for _ in 0..subscribers {
        let mut conn = rt.subscribers.spawn(connect(addr)).await.expect("connect");
        call(&mut conn, Op::WatchAll, json!({"include_ctx": true})).await;
        readers.push(rt.subscribers.spawn(subscriber(conn, events as u64)));
    }
    let cpu_before = Cpu::now();
    let stats_before = rt.hub.stats();
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|first| rt.writers.spawn(writer(addr, first, events)))
        .collect();
    let mut written = Offsets::default();
    for writer in writers {
        written.merge(writer.await.expect("writer"));
    }
    let written_at = Instant::now();
    let mut delivered_until = written_at;
    for reader in readers {
        let (received, last_at) = reader.await.expect("subscriber");
        assert_eq!(received, written, "a subscriber missed or repeated events");
        delivered_until = delivered_until.max(last_at);
    }
    let cpu = Cpu::now().since(cpu_before);
    let stats = rt.hub.stats();
    let catch_up_reads = stats.catch_up_reads - stats_before.catch_up_reads;
    let pauses = stats.delivery_pauses - stats_before.delivery_pauses;
    let write_secs = written_at.duration_since(started).as_secs_f64();
    let delivery_secs = delivered_until.duration_since(started).as_secs_f64();
    let latency_us = latency(rt, addr, subscribers).await;
    Run {
        writes_per_sec: events as f64 / write_secs,
        delivered_per_sec: (events * subscribers) as f64 / delivery_secs,
        drain_ms: delivered_until.duration_since(written_at).as_secs_f64() * 1e3,
        cpu,
        latency_us,
        catch_up_reads,
        pauses,
    }
}

/// p50/p99 of "event received" minus "APPLY_EVENT response received", sequential applies, with
/// `background` other WATCH_ALL subscribers draining their events meanwhile.
async fn latency(rt: &Runtimes, addr: SocketAddr, background: usize) -> (u128, u128) {
    let mut drains = Vec::new();
    for _ in 0..background {
        let mut conn = rt.subscribers.spawn(connect(addr)).await.expect("connect");
        call(&mut conn, Op::WatchAll, json!({})).await;
        drains.push(rt.subscribers.spawn(async move {
            let parts = conn.into_parts();
            let (mut stream, mut buf) = (parts.io, parts.read_buf);
            loop {
                while next_event_offset(&mut buf).is_some() {}
                buf.reserve(64 << 10);
                if !matches!(stream.read_buf(&mut buf).await, Ok(n) if n > 0) {
                    return;
                }
            }
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

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn per_event_us(ns: u64, events: usize) -> f64 {
    ns as f64 / 1e3 / events.max(1) as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Medians over the rounds, per subscriber count: a ratio of medians resists one round that
/// another process on the machine disturbed.
fn summarise(results: &[(usize, Run)], counts: &[usize], events: usize) {
    let of = |n: usize, f: &dyn Fn(&Run) -> f64| {
        median(
            results
                .iter()
                .filter(|(c, _)| *c == n)
                .map(|(_, r)| f(r))
                .collect(),
        )
    };
    let base_writes = of(0, &|r| r.writes_per_sec);
    let base_server_ns = of(0, &|r| r.cpu.server_ns as f64);
    println!("medians over the rounds:");
    for &n in counts {
        let writes = of(n, &|r| r.writes_per_sec);
        let server_ns = of(n, &|r| r.cpu.server_ns as f64);
        let per_event = if n == 0 {
            String::new()
        } else {
            format!(
                ", server {:.2} us/delivered event, bench subscribers {:.2} us/event",
                (server_ns - base_server_ns) / 1e3 / (events * n) as f64,
                of(n, &|r| r.cpu.subscribers_ns as f64) / 1e3 / (events * n) as f64
            )
        };
        println!(
            "  {n:>3} subscribers: {writes:>7.0} writes/s ({:.0}% of 0 subscribers), {:>9.0} events delivered/s, drained {:.0} ms after the last write, latency p50 {:.0} us p99 {:.0} us, server {:.2} us/write{per_event}",
            writes / base_writes * 100.0,
            of(n, &|r| r.delivered_per_sec),
            of(n, &|r| r.drain_ms),
            of(n, &|r| r.latency_us.0 as f64),
            of(n, &|r| r.latency_us.1 as f64),
            server_ns / 1e3 / events as f64,
        );
    }
}

fn main() {
    let events: usize = env_or("WATCH_BENCH_EVENTS", 20_000);
    let rounds: usize = env_or("WATCH_BENCH_ROUNDS", 1);
    let counts: Vec<usize> = std::env::var("WATCH_BENCH_SUBSCRIBERS")
        .unwrap_or_else(|_| "0,10,100".to_owned())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let server_rt = runtime("server");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let (addr, hub) = server_rt.block_on(async {
        let options = DatabaseOptions::new(
            dir.path(),
            WalConfig {
                segment_size_bytes: 256 << 20,
                fsync_policy: FsyncPolicy::Never,
            },
        );
        let (db, _) = Database::open(options).expect("open");
        let defaults = WatchLimits::default();
        let limits = WatchLimits {
            delivery_interval_ms: env_or("WATCH_BENCH_INTERVAL_MS", defaults.delivery_interval_ms),
            delivery_cpu_percent: env_or("WATCH_BENCH_CPU_PERCENT", defaults.delivery_cpu_percent),
            ..defaults
        };
        let handler = Arc::new(DatabaseHandler::with_watch_limits(Arc::new(db), limits));
        let hub = handler.watch_hub().clone();
        let handler: Arc<dyn OpHandler> = handler;
        let settings = ServerSettings {
            max_connections: 10_000,
            ..loopback_settings()
        };
        let server = Server::bind(settings, handler).await.expect("bind");
        let addr = server.local_addr().expect("addr");
        tokio::spawn(server.run_until(std::future::pending()));
        (addr, hub)
    });
    let rt = Runtimes {
        writers: runtime("bench-writers"),
        subscribers: runtime("bench-subs"),
        hub,
    };
    rt.writers.block_on(async move {
        let mut admin = connect(addr).await;
        let definition = json!({"states": ["a", "b"], "initial": "a", "transitions": [
            {"from": "a", "event": "GO", "to": "b"}, {"from": "b", "event": "BACK", "to": "a"}]});
        call(
            &mut admin,
            Op::PutMachine,
            json!({"machine": "flip", "version": 1, "definition": definition}),
        )
        .await;
        for i in 0..INSTANCES {
            call(
                &mut admin,
                Op::CreateInstance,
                json!({"machine": "flip", "version": 1,
                "instance_id": format!("i-{i}"), "initial_ctx": {"customer": "alice", "n": i}}),
            )
            .await;
        }
        call(
            &mut admin,
            Op::CreateInstance,
            json!({"machine": "flip", "version": 1, "instance_id": "probe"}),
        )
        .await;
    });

    println!(
        "watch fan-out, {events} events per run, fsync never, {WRITERS} writers x {PIPELINE} in flight, {rounds} round(s)"
    );
    let mut results: Vec<(usize, Run)> = Vec::new();
    for round in 1..=rounds {
        let mut baseline: Option<(f64, u64)> = None;
        for &subscribers in &counts {
            let r = rt.writers.block_on(run(&rt, addr, subscribers, events));
            let (slowdown, marginal) = match baseline {
                Some((writes, server_ns)) => (
                    format!(
                        " ({:+.1}% vs 0 subscribers)",
                        (r.writes_per_sec / writes - 1.0) * 100.0
                    ),
                    // The same writes cost `server_ns` without subscribers: the rest is delivery.
                    format!(
                        ", server {:.2} us/delivered event",
                        per_event_us(
                            r.cpu.server_ns.saturating_sub(server_ns),
                            events * subscribers
                        )
                    ),
                ),
                None => (String::new(), String::new()),
            };
            if subscribers == 0 {
                baseline = Some((r.writes_per_sec, r.cpu.server_ns));
            }
            println!(
                "round {round}, {subscribers:>3} subscribers: {:>7.0} writes/s{slowdown}, {:>9.0} events delivered/s, drained {:.0} ms after the last write, latency p50 {} us p99 {} us",
                r.writes_per_sec, r.delivered_per_sec, r.drain_ms, r.latency_us.0, r.latency_us.1
            );
            println!(
                "        watch: {} WAL catch-up reads, {} budget pauses",
                r.catch_up_reads, r.pauses
            );
            println!(
                "        cpu: server {:.2} us/write{marginal}; bench writers {:.2} us/write, bench subscribers {:.2} us/event",
                per_event_us(r.cpu.server_ns, events),
                per_event_us(r.cpu.writers_ns, events),
                per_event_us(r.cpu.subscribers_ns, events * subscribers),
            );
            results.push((subscribers, r));
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    if rounds > 1 {
        summarise(&results, &counts, events);
    }
    drop(dir);
}
