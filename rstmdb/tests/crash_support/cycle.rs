//! One crash cycle: clients write against the running server, the server is SIGKILLed at a
//! chosen moment, a new server starts on the same data directory, and the window's history is
//! resolved (retries), read back and checked.

use super::connect;
use super::process::{ServerProcess, ServerSetup};
use super::rng::Rng;
use super::verify::{LogShape, logged_writes, lost_acks, read_all, read_log, retry};
use super::workload::{Plan, Signals, model, run_client, run_compactor};
use crate::history_support::{Baseline, Call, Counts, Outcome, Recorder, check};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

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
    }
}

/// The most acknowledged writes a kill may take under `policy`, per its documented window
/// (spec §6.1, docs/wal-format.md §5), given when each lost one was acknowledged.
fn within_window(policy: &str, lost_acked_at_us: &[u64], kill_at_us: u64) -> bool {
    if let Some(n) = policy
        .strip_prefix("every_n:")
        .and_then(|n| n.parse::<usize>().ok())
    {
        return lost_acked_at_us.len() < n;
    }
    if let Some(ms) = policy
        .strip_prefix("every_ms:")
        .and_then(|n| n.parse::<u64>().ok())
    {
        // The interval plus generous time for the sync itself on a busy machine.
        let window_us = (ms + 200) * 1000;
        return lost_acked_at_us
            .iter()
            .all(|t| kill_at_us.saturating_sub(*t) <= window_us);
    }
    false
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
    let recorder = Recorder::new(run.baseline.clone(), run.checked_below);
    let signals = Arc::new(Signals::default());
    let shared: Vec<String> = run
        .instances
        .iter()
        .filter(|(_, (who, _))| who.is_none())
        .map(|(i, _)| i.clone())
        .collect();
    let mut clients = Vec::new();
    for who in 0..CLIENTS {
        let client = connect(run.server.addr).await?;
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

    // Aim the kill: just after a COMPACT starts, just after a rotation, or anywhere.
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
    } else if aim < 75 {
        let _ = tokio::time::timeout(budget * 2, signals.rotated.notified()).await;
        tokio::time::sleep(Duration::from_millis(rng.range(0, 5))).await;
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
    for (who, task) in clients.into_iter().enumerate() {
        let created = task.await.map_err(|err| format!("client task: {err}"))?;
        for instance in created {
            run.instances.insert(instance, (Some(who), cycle));
        }
    }
    // Creates whose answer was lost may have happened: read them too.
    for op in recorder.snapshot().ops {
        if let Call::Create { instance, .. } = &op.call {
            run.instances
                .entry(instance.clone())
                .or_insert((Some(op.client), cycle));
        }
    }

    run.setup = pick_setup(rng);
    run.server = ServerProcess::start(binary, data_dir, &run.setup)?;
    // Recovery names every cut of the WAL and every checkpoint it had to skip (spec §6.1).
    let logged = |needle: &str| run.server.log.iter().filter(|l| l.contains(needle)).count() as u64;
    report.recovery_cuts = logged("WAL cut during recovery");
    report.checkpoints_skipped = logged("invalid checkpoint skipped");
    let verifier = connect(run.server.addr).await?;

    // 1. The log as recovery left it: its shape, and which acknowledged writes it lacks.
    let log = read_log(&verifier).await?;
    run.shape.check(&log);
    report.killed_inside_rotation = log.newest_segment_empty();
    let lost = lost_acks(&recorder.snapshot(), &log);
    report.lost_acks = lost.len() as u64;
    let acked_at: Vec<u64> = lost.iter().map(|(_, t)| *t).collect();
    if !lost.is_empty() && within_window(&report.policy, &acked_at, kill_at_us) {
        // Allowed by the policy: from now on those writes count as in flight.
        for (id, _) in &lost {
            recorder.forget_answer(*id, "lost within the fsync window");
        }
    }
    recorder.observe_wal(log.oldest_offset, logged_writes(&log));

    // 2. Every instance as recovery left it (the last acknowledged version or a later one).
    let all: Vec<String> = run.instances.keys().cloned().collect();
    read_all(&verifier, &recorder, VERIFIER, &all).await?;

    // 3. Retry every unresolved write and every acknowledged one with its key: exactly one
    //    record each, and replays for the acknowledged.
    let calls: Vec<(usize, Call)> = recorder
        .snapshot()
        .ops
        .into_iter()
        .filter(|op| {
            op.call.key().is_some()
                && matches!(
                    op.outcome,
                    None | Some(Outcome::Unknown { .. })
                        | Some(Outcome::Created { applied: true, .. })
                        | Some(Outcome::Applied { applied: true, .. })
                )
        })
        .map(|op| (VERIFIER, op.call))
        .collect();
    retry(&verifier, &recorder, calls, 32).await?;

    // 4. The log and the instances once more; the final reads start the next window.
    let log = read_log(&verifier).await?;
    run.shape.check(&log);
    recorder.observe_wal(log.oldest_offset, logged_writes(&log));
    let found = read_all(&verifier, &recorder, VERIFIER, &all).await?;
    run.checked_below = log
        .records
        .last()
        .map_or(run.checked_below, |r| r.offset + 1);
    retire(run, found);

    let history = recorder.snapshot();
    let checked = check(&history, &model);
    report.counts = checked.counts;
    if !checked.violations.is_empty() {
        report.violations.push(checked.describe(&history));
    }
    // Keep the log short so the whole-log reads stay cheap over hundreds of cycles.
    if log.records.len() > 3000 {
        verifier
            .with_request_timeout(Duration::from_secs(120))
            .compact(false)
            .await
            .map_err(|err| format!("COMPACT after verification: {err}"))?;
    }
    Ok(report)
}

/// Keeps the instances that exist, and of each client's own only the newest [`OWN_LIVE`]; the
/// retired ones are never touched again, so later windows need not read them.
fn retire(run: &mut RunState, found: Vec<Baseline>) {
    let exists: std::collections::HashSet<&str> =
        found.iter().map(|b| b.instance.as_str()).collect();
    run.instances
        .retain(|instance, _| exists.contains(instance.as_str()));
    let mut by_client: BTreeMap<usize, Vec<(u64, String)>> = BTreeMap::new();
    for (instance, (who, born)) in &run.instances {
        if let Some(who) = who {
            by_client
                .entry(*who)
                .or_default()
                .push((*born, instance.clone()));
        }
    }
    for mut own in by_client.into_values() {
        own.sort_unstable_by(|a, b| b.cmp(a));
        for (_, instance) in own.into_iter().skip(OWN_LIVE) {
            run.instances.remove(&instance);
        }
    }
    run.baseline = found
        .into_iter()
        .filter(|b| run.instances.contains_key(&b.instance))
        .collect();
}
