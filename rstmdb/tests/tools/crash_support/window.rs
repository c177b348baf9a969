//! After the restart: the window of history since the previous restart is resolved (retries
//! with the same idempotency keys), read back and handed to the history checker.

use super::connect;
use super::cycle::{Checked, CycleReport, OWN_LIVE, VERIFIER};
use super::verify::{logged_writes, lost_acks, read_all, read_log_from, retry};
use super::workload::model;
use crate::history_support::{Baseline, Call, Outcome, Recorder, check};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Checks the window recorded by `recorder` against the restarted server at `addr` (in a
/// cluster, any node); the kill happened at `kill_at_us`. Leaves the next window's baseline
/// in `run`. With `may_compact`, a long log is compacted afterwards. The log is read from
/// `log_from` on (0: whole); a window's writes all lie at or above `run.checked_below`.
pub async fn verify_window(
    addr: SocketAddr,
    may_compact: bool,
    log_from: u64,
    run: &mut Checked,
    recorder: &Recorder,
    kill_at_us: u64,
    report: &mut CycleReport,
) -> Result<(), String> {
    let verifier = connect(addr).await?;

    // 1. The log as recovery left it: its shape, and which acknowledged writes it lacks.
    let log = read_log_from(&verifier, log_from).await?;
    run.shape.check(&log);
    report.killed_inside_rotation = log.newest_segment_empty();
    let lost = lost_acks(&recorder.snapshot(), &log);
    report.lost_acks = lost.len() as u64;
    if !lost.is_empty() {
        eprintln!(
            "the log read on {addr} from {log_from} lacks {} acknowledged writes: oldest {}, \
             partial {}, {} records from {:?} to {:?}, latest {}",
            lost.len(),
            log.oldest_offset,
            log.partial,
            log.records.len(),
            log.records.first().map(|r| r.offset),
            log.records.last().map(|r| r.offset),
            log.latest_offset,
        );
    }
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
    read_all(&verifier, recorder, VERIFIER, &all).await?;

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
    retry(&verifier, recorder, calls, 32).await?;

    // 4. The log and the instances once more; the final reads start the next window.
    let log = read_log_from(&verifier, log_from).await?;
    run.shape.check(&log);
    recorder.observe_wal(log.oldest_offset, logged_writes(&log));
    let found = read_all(&verifier, recorder, VERIFIER, &all).await?;
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
    if may_compact && log.records.len() > 3000 {
        verifier
            .with_request_timeout(Duration::from_secs(120))
            .compact(false)
            .await
            .map_err(|err| format!("COMPACT after verification: {err}"))?;
    }
    Ok(())
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

/// Keeps the instances that exist, and of each client's own only the newest [`OWN_LIVE`]; the
/// retired ones are never touched again, so later windows need not read them.
fn retire(run: &mut Checked, found: Vec<Baseline>) {
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
