//! Measurements of the hostile tests: live tokio tasks, and a bystander client whose PING
//! latency shows whether other clients are still served normally while one misbehaves. (The
//! process's resident memory is in [`crate::memory`].)

use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// What "normal latency" means for a request on loopback in a debug build on a shared 2-core
/// machine (other builds and tests run beside it): far above the usual sub-millisecond, far
/// below the multi-second waits a blocked server or a starved runtime would cause.
pub const NORMAL_PING_LATENCY: Duration = Duration::from_secs(1);

/// Tasks alive in the current tokio runtime (server and test share it).
pub fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Samples [`alive_tasks`] until stopped and keeps the maximum.
#[derive(Debug)]
pub struct TaskSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TaskSampler {
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicUsize::new(alive_tasks()));
        let task = tokio::spawn({
            let (stop, peak) = (stop.clone(), peak.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(alive_tasks(), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
        Self { stop, peak, task }
    }

    /// The most tasks seen alive at once.
    pub async fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed)
    }
}

/// A well-behaved client that PINGs every 20 ms over raw binary frames and records each
/// round trip, so a test can show that other clients stayed unaffected.
#[derive(Debug)]
pub struct Bystander {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Vec<Duration>>,
}

impl Bystander {
    /// Connects (the connection must be admitted before the misbehaviour starts) and begins.
    pub async fn start(addr: SocketAddr) -> Self {
        let mut stream = TcpStream::connect(addr).await.expect("bystander connects");
        // One round trip first: the connection is admitted and counted before anything else.
        ping(&mut stream, 0).await;
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut latencies = Vec::new();
                let mut n = 1;
                while !stop.load(Ordering::Relaxed) {
                    latencies.push(ping(&mut stream, n).await);
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                latencies
            }
        });
        Self { stop, task }
    }

    /// Stops and returns every PING's round trip.
    pub async fn finish(self) -> Vec<Duration> {
        self.stop.store(true, Ordering::Relaxed);
        self.task
            .await
            .expect("the bystander's PINGs all got answers")
    }

    /// Stops and asserts that every PING was answered within [`NORMAL_PING_LATENCY`];
    /// returns (pings, worst latency).
    pub async fn assert_unaffected(self) -> (usize, Duration) {
        let latencies = self.finish().await;
        let worst = latencies.iter().copied().max().unwrap_or_default();
        assert!(!latencies.is_empty(), "the bystander sent no PING");
        assert!(
            worst < NORMAL_PING_LATENCY,
            "a bystander PING took {worst:?} (of {} pings)",
            latencies.len()
        );
        (latencies.len(), worst)
    }
}

/// One PING round trip on a raw binary connection; panics if it is not answered in 5 s.
async fn ping(stream: &mut TcpStream, n: u64) -> Duration {
    let id = format!("bystander-{n}");
    let payload = json!({"type": "request", "id": id, "op": "PING"}).to_string();
    let mut frame = Vec::with_capacity(18 + payload.len());
    frame.extend_from_slice(b"RCPX\x00\x01\x00\x01\x00\x00");
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&crc32c::crc32c(payload.as_bytes()).to_be_bytes());
    frame.extend_from_slice(payload.as_bytes());
    let started = Instant::now();
    stream.write_all(&frame).await.expect("bystander writes");
    let answered = tokio::time::timeout(Duration::from_secs(5), async {
        let mut header = [0u8; 18];
        stream.read_exact(&mut header).await?;
        let len = u32::from_be_bytes([header[10], header[11], header[12], header[13]]);
        let mut body = vec![0u8; len as usize];
        stream.read_exact(&mut body).await?;
        Ok::<_, std::io::Error>(body)
    })
    .await
    .expect("the bystander's PING is answered within 5 s")
    .expect("the bystander's connection stays up");
    let response: serde_json::Value = serde_json::from_slice(&answered).expect("JSON");
    assert_eq!(response["id"], json!(id), "{response}");
    assert_eq!(response["result"], json!({"pong": true}), "{response}");
    started.elapsed()
}

/// The median and the worst of some latencies (zero when there are none).
pub fn median_and_worst(latencies: &[Duration]) -> (Duration, Duration) {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
    (median, sorted.last().copied().unwrap_or_default())
}
