//! One crash cycle: clients write against the running server, the server is SIGKILLed at a
//! chosen moment, a new server starts on the same data directory, and the window's history is
//! resolved, read back and checked (`window`).

use super::Rng;
use super::connect;
use super::process::{ServerProcess, ServerSetup};
use super::verify::LogShape;
use super::window::verify_window;
use super::workload::{Plan, Signals, run_client, run_compactor};
use crate::history_support::{Baseline, Call, Counts, Recorder};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::task::JoinHandle;

pub const CLIENTS: usize = 6;
/// Own instances each client keeps using; older ones retire.
pub const OWN_LIVE: usize = 8;
/// Client id used for the harness's own retries and reads.
pub const VERIFIER: usize = 99;

/// What a run carries from one cycle to the next.
#[derive(Debug)]
pub struct RunState {
    pub server: ServerProcess,
    pub setup: ServerSetup,
    pub checked: Checked,
}

/// What the windows checked so far leave to the next one, whatever kills the servers.
#[derive(Debug, Default)]
pub struct Checked {
    /// The instances in use, with the client that created them (`None`: shared) and the
    /// cycle they were created in. Older ones retire so each cycle reads a bounded set.
    pub instances: BTreeMap<String, (Option<usize>, u64)>,
    pub baseline: Vec<Baseline>,
    /// The log below this offset was checked by earlier windows.
    pub checked_below: u64,
    pub shape: LogShape,
}

/// Figures of one cycle.
#[derive(Debug, Default)]
pub struct CycleReport {
    pub policy: String,
    pub counts: Counts,
    pub killed_during_compaction: bool,
    pub killed_near_rotation: bool,
    /// Recovery found a newest segment without records: the kill fell between creating the
    /// segment and appending to it.
    pub killed_inside_rotation: bool,
    pub rotations: u64,
    pub compactions: u64,
    /// Cluster mode: the node killed was the leader.
    pub killed_leader: bool,
    /// Acknowledged writes missing after the restart (allowed only inside an fsync window).
    pub lost_acks: u64,
    pub recovery_cuts: u64,
    pub checkpoints_skipped: u64,
    pub violations: Vec<String>,
}

/// Most cycles `every_write`; some with the windowed policies.
pub fn pick_setup(rng: &mut Rng) -> ServerSetup {
    let fsync_policy = match rng.range(0, 100) {
        0..=69 => "every_write".to_owned(),
        70..=84 => format!("every_n:{}", rng.range(2, 64)),
        _ => format!("every_ms:{}", rng.range(2, 50)),
    };
    ServerSetup {
        fsync_policy,
        segment_size_mb: 1,
        eager_compaction: true,
    }
}

/// Starts the [`CLIENTS`] clients of cycle `cycle`, each on the server `addr_for` picks:
/// its own instances and the shared ones.
pub async fn start_clients(
    run: &Checked,
    cycle: u64,
    recorder: &Recorder,
    signals: &Arc<Signals>,
    rng: &mut Rng,
    mut addr_for: impl FnMut(&mut Rng) -> SocketAddr,
) -> Result<Vec<JoinHandle<Vec<String>>>, String> {
    let shared: Vec<String> = run
        .instances
        .iter()
        .filter(|(_, (who, _))| who.is_none())
        .map(|(i, _)| i.clone())
        .collect();
    let mut clients = Vec::new();
    for who in 0..CLIENTS {
        let client = connect(addr_for(rng)).await?;
        let mut instances: Vec<String> = run
            .instances
            .iter()
            .filter(|(_, (w, _))| *w == Some(who))
            .map(|(i, _)| i.clone())
            .collect();
        instances.extend(shared.iter().cloned());
        let plan = Plan {
            who,
            prefix: format!("k{cycle}-c{who}"),
            instances,
            max_ops: None,
            create_percent: 3,
            read_percent: 15,
            pad_bytes: (200, 1500),
        };
        clients.push(tokio::spawn(run_client(
            client,
            recorder.clone(),
            plan,
            rng.fork(),
            signals.clone(),
        )));
    }
    Ok(clients)
}

/// Waits for the clients and keeps the instances they created, and those whose create lost
/// its answer (it may have happened).
pub async fn keep_created(
    run: &mut Checked,
    cycle: u64,
    clients: Vec<JoinHandle<Vec<String>>>,
    recorder: &Recorder,
) -> Result<(), String> {
    for (who, task) in clients.into_iter().enumerate() {
        let created = task.await.map_err(|err| format!("client task: {err}"))?;
        for instance in created {
            run.instances.insert(instance, (Some(who), cycle));
        }
    }
    for op in recorder.snapshot().ops {
        if let Call::Create { instance, .. } = &op.call {
            run.instances
                .entry(instance.clone())
                .or_insert((Some(op.client), cycle));
        }
    }
    Ok(())
}

pub async fn run_cycle(
    binary: &Path,
    data_dir: &Path,
    cycle: u64,
    run: &mut RunState,
    rng: &mut Rng,
) -> Result<CycleReport, String> {
    let mut report = CycleReport {
        policy: run.setup.fsync_policy.clone(),
        ..CycleReport::default()
    };
    let recorder = Recorder::new(run.checked.baseline.clone(), run.checked.checked_below);
    let signals = Arc::new(Signals::default());
    let addr = run.server.addr;
    let clients = start_clients(&run.checked, cycle, &recorder, &signals, rng, |_| addr).await?;
    let compactor = if rng.percent(40) {
        let client = connect(run.server.addr)
            .await?
            .with_request_timeout(Duration::from_secs(120));
        let every_ms = rng.range(100, 400);
        Some(tokio::spawn(run_compactor(
            client,
            signals.clone(),
            rng.fork(),
            every_ms,
        )))
    } else {
        None
    };

    // Aim the kill: just after a COMPACT starts, just after or just before a rotation, or
    // anywhere.
    let budget = Duration::from_millis(rng.range(150, 1200));
    let aim = rng.range(0, 100);
    if compactor.is_some() && aim < 50 {
        // The first, second or third COMPACT, so some complete and delete segments first.
        let nth = rng.range(1, 4);
        let _ = tokio::time::timeout(budget * 2, async {
            for _ in 0..nth {
                signals.compact_started.notified().await;
            }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(rng.range(0, 15))).await;
    } else if aim < 60 {
        let _ = tokio::time::timeout(budget * 2, signals.rotated.notified()).await;
        tokio::time::sleep(Duration::from_millis(rng.range(0, 5))).await;
    } else if aim < 80 {
        // Just before a rotation, hoping to land inside it.
        let _ = tokio::time::timeout(budget * 2, signals.near_segment_end.notified()).await;
        tokio::time::sleep(Duration::from_micros(rng.range(0, 3000))).await;
    } else {
        tokio::time::sleep(budget).await;
    }
    let kill_at_us = recorder.now_us();
    report.killed_during_compaction = signals.compacting.load(Ordering::SeqCst);
    let rotated_at = signals.rotated_at_us.load(Ordering::SeqCst);
    report.rotations = signals.rotations.load(Ordering::SeqCst);
    report.killed_near_rotation =
        report.rotations > 0 && kill_at_us.saturating_sub(rotated_at) < 20_000;
    run.server.kill();

    if let Some(task) = compactor {
        let seen = task.await.map_err(|err| format!("compactor task: {err}"))?;
        report.compactions = seen.completed;
        report.violations.extend(seen.refused);
    }
    keep_created(&mut run.checked, cycle, clients, &recorder).await?;

    run.setup = pick_setup(rng);
    run.server = ServerProcess::start(binary, data_dir, &run.setup)?;
    // Recovery names every cut of the WAL and every checkpoint it had to skip (spec §6.1).
    let logged = |needle: &str| run.server.log.iter().filter(|l| l.contains(needle)).count() as u64;
    report.recovery_cuts = logged("WAL cut during recovery");
    report.checkpoints_skipped = logged("invalid checkpoint skipped");
    let addr = run.server.addr;
    verify_window(
        addr,
        true,
        0,
        &mut run.checked,
        &recorder,
        kill_at_us,
        &mut report,
    )
    .await?;
    Ok(report)
}
