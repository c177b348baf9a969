//! The load: `connections` clients, each driven by one task that keeps `pipeline` requests in
//! flight on its connection; a stop condition (operation count or elapsed time); a progress
//! bar; and, for the watch workload, the subscribers that must receive every transition.

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rstmdb_client::params::WatchAllParams;
use rstmdb_client::{Client, ClientOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::BenchError;
use super::cpu::CpuTime;
use super::lists::ListOutcome;
use super::report::{ErrorCounts, Latency};
use super::workload::{self, MACHINE, Prepared, WorkloadSpec};

/// How long the watch workload waits, after the writers stopped, for every subscriber to
/// receive every transition before the missing ones count as errors.
const WATCH_DRAIN: Duration = Duration::from_secs(10);
/// How often the progress bar is redrawn.
const PROGRESS_TICK: Duration = Duration::from_millis(200);
/// The code under which transitions a subscriber never received are counted.
pub const WATCH_EVENTS_MISSING: &str = "WATCH_EVENTS_MISSING";

#[derive(Debug, Clone, Copy)]
pub enum StopAt {
    Count(u64),
    Elapsed(Duration),
}

#[derive(Debug, Clone)]
pub struct RunPlan {
    pub connections: u32,
    pub pipeline: u32,
    pub watchers: u32,
    pub stop: StopAt,
    /// Draw a progress bar (on stderr, and only when it is a terminal).
    pub progress: bool,
}

/// What the timed phase measured.
#[derive(Debug)]
pub struct Outcome {
    pub elapsed: Duration,
    /// Requests completed, failed ones included.
    pub ops: u64,
    /// Requests with no failure at all.
    pub ok_ops: u64,
    /// Successful items: one per successful op, one per successful BATCH sub-op.
    pub items_ok: u64,
    pub latency: Latency,
    pub errors: ErrorCounts,
    /// This process during the timed phase (with `--embedded`, the server's work included).
    pub cpu: Option<CpuTime>,
    /// `--server-pid` during the timed phase.
    pub server_cpu: Option<CpuTime>,
    pub watch: Option<WatchOutcome>,
    /// The background LIST_INSTANCES of `--list-pipeline`.
    pub lists: Option<ListOutcome>,
}

#[derive(Debug, Clone, Copy)]
pub struct WatchOutcome {
    pub watchers: u32,
    /// Events received by all subscribers together.
    pub events_delivered: u64,
    /// Transitions times subscribers: what should have been delivered.
    pub events_expected: u64,
    /// From the start of the run until the last subscriber had its last event.
    pub elapsed: Duration,
}

/// Counters every connection task updates, for the stop condition and the progress bar.
#[derive(Debug, Default)]
struct Shared {
    next_seq: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    /// The next operation's sequence number, or `None` when the run is over.
    fn ticket(&self, stop: StopAt) -> Option<u64> {
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        match stop {
            StopAt::Count(count) if seq >= count => None,
            _ => Some(seq),
        }
    }
}

/// What one connection task measured.
struct ConnectionStats {
    ops: u64,
    ok_ops: u64,
    items_ok: u64,
    latency: Latency,
    errors: ErrorCounts,
}

pub async fn run(
    options: &ClientOptions,
    spec: &WorkloadSpec,
    plan: &RunPlan,
    server_pid: Option<u32>,
) -> Result<Outcome, BenchError> {
    let setup_client = Client::connect(options.clone()).await?;
    let prepared = Arc::new(Prepared::setup(&setup_client, spec).await?);
    let pipeline = usize::try_from(plan.pipeline).unwrap_or(1);
    let mut clients = Vec::new();
    for _ in 0..plan.connections {
        let options = options.clone().max_in_flight_requests(pipeline.max(1));
        clients.push(Client::connect(options).await?);
    }
    let watchers = match spec.workload {
        workload::Workload::Watch => {
            Some(Watchers::start(options, plan.watchers, &prepared).await?)
        }
        _ => None,
    };

    let shared = Arc::new(Shared::default());
    // The lists run until the workload is done, whatever stopped it.
    let lists_stop = Arc::new(AtomicBool::new(false));
    let lists = spec
        .lists
        .filter(|lists| lists.pipeline > 0)
        .map(|lists| lists.start(options.clone(), lists_stop.clone()))
        .transpose()?;
    let cpu_before = CpuTime::of_self();
    let server_before = server_pid.and_then(CpuTime::of_pid);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        let (prepared, shared) = (prepared.clone(), shared.clone());
        let stop = plan.stop;
        tasks.spawn(drive_connection(client, prepared, shared, pipeline, stop));
    }
    let progress = plan
        .progress
        .then(|| tokio::spawn(show_progress(shared.clone(), plan.stop, started)));
    // Ctrl-C ends the run early: what completed is still reported, and an embedded server
    // still stops and removes its data directory.
    let interrupted = {
        let shared = shared.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                shared.stop.store(true, Ordering::Relaxed);
            }
        })
    };
    if let StopAt::Elapsed(duration) = plan.stop {
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            shared.stop.store(true, Ordering::Relaxed);
        });
    }

    let mut outcome = Outcome {
        elapsed: Duration::ZERO,
        ops: 0,
        ok_ops: 0,
        items_ok: 0,
        latency: Latency::new(),
        errors: ErrorCounts::default(),
        cpu: None,
        server_cpu: None,
        watch: None,
        lists: None,
    };
    while let Some(joined) = tasks.join_next().await {
        let stats = joined.map_err(|err| BenchError::Task(err.to_string()))?;
        outcome.ops += stats.ops;
        outcome.ok_ops += stats.ok_ops;
        outcome.items_ok += stats.items_ok;
        outcome.latency.merge(&stats.latency)?;
        outcome.errors.merge(&stats.errors);
    }
    outcome.elapsed = started.elapsed();
    outcome.cpu = cpu_before
        .zip(CpuTime::of_self())
        .map(|(before, after)| after.since(&before));
    outcome.server_cpu = server_before
        .zip(server_pid.and_then(CpuTime::of_pid))
        .map(|(before, after)| after.since(&before));
    shared.stop.store(true, Ordering::Relaxed);
    lists_stop.store(true, Ordering::Relaxed);
    if let Some(lists) = lists {
        let lists = tokio::task::spawn_blocking(move || lists.join())
            .await
            .map_err(|err| BenchError::Task(err.to_string()))?
            .map_err(|_| BenchError::Task("the list load panicked".into()))??;
        outcome.errors.merge(&lists.errors);
        outcome.lists = Some(lists);
    }
    interrupted.abort();
    if let Some(progress) = progress {
        let _ = progress.await;
    }
    if let Some(watchers) = watchers {
        // Every successful APPLY_EVENT is one transition each subscriber must receive.
        let watch = watchers.drain(outcome.items_ok, started).await;
        let missing = watch.events_expected.saturating_sub(watch.events_delivered);
        outcome.errors.add(WATCH_EVENTS_MISSING, missing);
        outcome.watch = Some(watch);
    }
    let _ = setup_client.close().await;
    Ok(outcome)
}

/// Keeps `pipeline` operations in flight on one connection until the run is over.
async fn drive_connection(
    client: Client,
    prepared: Arc<Prepared>,
    shared: Arc<Shared>,
    pipeline: usize,
    stop: StopAt,
) -> ConnectionStats {
    let mut stats = ConnectionStats {
        ops: 0,
        ok_ops: 0,
        items_ok: 0,
        latency: Latency::new(),
        errors: ErrorCounts::default(),
    };
    let mut in_flight = FuturesUnordered::new();
    let mut issuing = true;
    loop {
        while issuing && in_flight.len() < pipeline {
            match shared.ticket(stop) {
                Some(seq) => {
                    let (client, prepared) = (&client, &prepared);
                    in_flight.push(async move {
                        let sent = Instant::now();
                        let checked = prepared.execute(client, seq).await;
                        (sent.elapsed(), checked)
                    });
                }
                None => issuing = false,
            }
        }
        let Some((latency, checked)) = in_flight.next().await else {
            break;
        };
        stats.ops += 1;
        stats.latency.record(latency);
        stats.items_ok += checked.items_ok;
        if checked.failures.is_empty() {
            stats.ok_ops += 1;
        } else {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            for failure in checked.failures {
                stats.errors.add(&failure.code, 1);
            }
        }
        shared.completed.fetch_add(1, Ordering::Relaxed);
    }
    drop(in_flight);
    let _ = client.close().await;
    stats
}

/// A progress bar on stderr; indicatif hides it when stderr is not a terminal.
async fn show_progress(shared: Arc<Shared>, stop: StopAt, started: Instant) {
    let style = "{spinner} [{elapsed_precise}] {bar:40} {msg}";
    let (length, position): (u64, Box<dyn Fn() -> u64 + Send>) = match stop {
        StopAt::Count(count) => {
            let shared = shared.clone();
            (
                count,
                Box::new(move || shared.completed.load(Ordering::Relaxed)),
            )
        }
        StopAt::Elapsed(duration) => (
            u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            Box::new(move || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)),
        ),
    };
    let bar = indicatif::ProgressBar::new(length);
    if let Ok(style) = indicatif::ProgressStyle::with_template(style) {
        bar.set_style(style);
    }
    let mut tick = tokio::time::interval(PROGRESS_TICK);
    loop {
        tick.tick().await;
        let completed = shared.completed.load(Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        bar.set_position(position().min(length));
        bar.set_message(format!(
            "{completed} ops, {:.0} ops/s, {} errors",
            completed as f64 / secs,
            shared.failed.load(Ordering::Relaxed)
        ));
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
    }
    bar.finish_and_clear();
}

/// The WATCH_ALL subscribers of the watch workload, each on its own connection, counting the
/// transitions of this run's instances.
struct Watchers {
    received: Vec<Arc<AtomicU64>>,
    last_event_at: Arc<std::sync::Mutex<Option<Instant>>>,
    tasks: tokio::task::JoinSet<()>,
    clients: Vec<Client>,
}

impl Watchers {
    async fn start(
        options: &ClientOptions,
        count: u32,
        prepared: &Arc<Prepared>,
    ) -> Result<Self, BenchError> {
        let mut watchers = Watchers {
            received: Vec::new(),
            last_event_at: Arc::new(std::sync::Mutex::new(None)),
            tasks: tokio::task::JoinSet::new(),
            clients: Vec::new(),
        };
        for _ in 0..count {
            let client = Client::connect(options.clone()).await?;
            let filter = WatchAllParams {
                include_ctx: false,
                machines: vec![MACHINE.to_owned()],
                ..Default::default()
            };
            let mut subscription = client
                .watch_all(filter)
                .await
                .map_err(|err| BenchError::Setup(format!("WATCH_ALL: {err}")))?;
            let received = Arc::new(AtomicU64::new(0));
            let (counter, last, prepared) = (
                received.clone(),
                watchers.last_event_at.clone(),
                prepared.clone(),
            );
            watchers.tasks.spawn(async move {
                // Ends when the subscription ends (an error or a close) or the task is aborted.
                while let Some(Ok(event)) = subscription.next().await {
                    if prepared.owns(&event.instance_id) {
                        counter.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut last) = last.lock() {
                            *last = Some(Instant::now());
                        }
                    }
                }
            });
            watchers.received.push(received);
            watchers.clients.push(client);
        }
        Ok(watchers)
    }

    fn delivered(&self) -> u64 {
        self.received
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .sum()
    }

    /// Waits (at most [`WATCH_DRAIN`]) until every subscriber has `transitions` events.
    async fn drain(mut self, transitions: u64, started: Instant) -> WatchOutcome {
        let watchers = u32::try_from(self.received.len()).unwrap_or(u32::MAX);
        let expected = transitions.saturating_mul(u64::from(watchers));
        let deadline = Instant::now() + WATCH_DRAIN;
        while self.delivered() < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let delivered = self.delivered();
        self.tasks.abort_all();
        for client in &self.clients {
            let _ = client.close().await;
        }
        let last = self.last_event_at.lock().ok().and_then(|last| *last);
        WatchOutcome {
            watchers,
            events_delivered: delivered,
            events_expected: expected,
            elapsed: last.map_or(Duration::ZERO, |last| last.duration_since(started)),
        }
    }
}
