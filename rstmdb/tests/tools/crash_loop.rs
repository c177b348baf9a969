//! Crash loop (issue 9, items 1 and 2; docs/architecture.md §7): the real `rstmdb serve` with
//! small segments and a mix of fsync policies, written to by several clients and compacted, is
//! killed with SIGKILL at a random moment — often just after a COMPACT starts or a segment
//! rotates — and restarted on the same data directory, again and again. After each restart every
//! window of history (each call with its invocation, answer and values, the log, the instances as
//! recovery left them, the retries of every unresolved and every acknowledged write) goes
//! through the history checker, and the log's shape is checked: dense sequences, segments in
//! order, records never rewritten.
//!
//! `RSTMDB_CRASH_LOOP_CYCLES` (default 10), `RSTMDB_CRASH_LOOP_SEED` (default random, always
//! printed; timing still varies between runs) and `RSTMDB_CRASH_LOOP_BIN` (default: the binary
//! cargo built for this test). `scripts/crash-loop [CYCLES]` runs the long mode on a release
//! build.

use crate::crash_support::cluster_cycle::{NODES, client_addr, run_cluster_cycle};
use crate::crash_support::cycle::{
    Checked, CycleReport, RunState, VERIFIER, pick_setup, run_cycle,
};
use crate::crash_support::verify::{LogShape, read_all};
use crate::crash_support::workload::{MACHINE, definition, execute, model};
use crate::crash_support::{Rng, ServerProcess, connect, server_binary};
use crate::history_support::{Call, Counts, Recorder, WRITE_TAG, check};
use rstmdb_testkit::cluster::TestCluster;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

const SHARED_INSTANCES: usize = 8;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Totals over the run, printed as the summary.
#[derive(Debug, Default)]
struct Totals {
    cycles: u64,
    counts: Counts,
    kills_during_compaction: u64,
    kills_near_rotation: u64,
    kills_inside_rotation: u64,
    kills_of_a_leader: u64,
    cycles_with_rotation: u64,
    compactions: u64,
    recovery_cuts: u64,
    checkpoints_skipped: u64,
    /// Per policy kind: (cycles, acknowledged writes lost).
    by_policy: BTreeMap<String, (u64, u64)>,
    violations: Vec<String>,
}

impl Totals {
    fn add(&mut self, cycle: u64, report: CycleReport) {
        self.cycles += 1;
        self.counts.add(&report.counts);
        self.kills_during_compaction += u64::from(report.killed_during_compaction);
        self.kills_near_rotation += u64::from(report.killed_near_rotation);
        self.kills_inside_rotation += u64::from(report.killed_inside_rotation);
        self.kills_of_a_leader += u64::from(report.killed_leader);
        self.cycles_with_rotation += u64::from(report.rotations > 0);
        self.compactions += report.compactions;
        self.recovery_cuts += report.recovery_cuts;
        self.checkpoints_skipped += report.checkpoints_skipped;
        let kind = report
            .policy
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        let entry = self.by_policy.entry(kind).or_default();
        entry.0 += 1;
        entry.1 += report.lost_acks;
        for v in report.violations {
            self.violations
                .push(format!("cycle {cycle} ({}):\n{v}", report.policy));
        }
    }

    fn summary(&self, seed: u64, seconds: f64) -> String {
        let c = &self.counts;
        let mut out = format!(
            "crash loop: {} cycles in {seconds:.1} s (seed {seed})\n\
             ops checked: {} creates acked, {} applies acked, {} replays, {} reads, {} refused, {} unknown, {} log records\n\
             kills: {} during a COMPACT, {} within 20 ms after a segment rotation, {} inside one (empty newest segment), {} of a cluster's leader; {} cycles rotated, {} COMPACTs completed\n\
             recovery: {} WAL cuts, {} invalid checkpoints skipped\n",
            self.cycles,
            c.creates_acked,
            c.applies_acked,
            c.replays,
            c.reads,
            c.refused,
            c.unknown,
            c.wal_records,
            self.kills_during_compaction,
            self.kills_near_rotation,
            self.kills_inside_rotation,
            self.kills_of_a_leader,
            self.cycles_with_rotation,
            self.compactions,
            self.recovery_cuts,
            self.checkpoints_skipped,
        );
        for (policy, (cycles, lost)) in &self.by_policy {
            out.push_str(&format!(
                "  {policy}: {cycles} cycles, {lost} acknowledged writes lost\n"
            ));
        }
        out.push_str(&format!("violations: {}\n", self.violations.len()));
        out
    }
}

impl Totals {
    /// Prints the summary; fails with every violation and log-shape problem, or if the run
    /// did no work.
    fn assert_clean(&self, checked: &Checked, seed: u64, started: Instant) {
        let summary = self.summary(seed, started.elapsed().as_secs_f64());
        eprintln!("{summary}");
        assert!(
            self.violations.is_empty() && checked.shape.problems.is_empty(),
            "{summary}\nhistory violations:\n{}\nlog shape problems:\n{:#?}",
            self.violations.join("\n"),
            checked.shape.problems
        );
        assert!(
            self.counts.applies_acked > 0 && self.counts.unknown + self.counts.replays > 0,
            "the loop did no work: {summary}"
        );
    }
}

/// The machine and the shared instances, written through `addr` and checked like any
/// window; returns the first state.
async fn set_up(addr: SocketAddr) -> Result<Checked, String> {
    let client = connect(addr).await?;
    client
        .put_machine(MACHINE, 1, definition())
        .await
        .map_err(|err| format!("PUT_MACHINE: {err}"))?;
    let recorder = Recorder::default();
    let mut names = Vec::new();
    for n in 0..SHARED_INSTANCES {
        let key = format!("setup-{n}");
        let instance = format!("shared-{n}");
        let ctx = json!({WRITE_TAG: key})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let call = Call::Create {
            instance: instance.clone(),
            key,
            initial_ctx: ctx,
        };
        execute(&client, &recorder, VERIFIER, call).await;
        names.push(instance);
    }
    let baseline = read_all(&client, &recorder, VERIFIER, &names).await?;
    let history = recorder.snapshot();
    let report = check(&history, &model);
    if !report.violations.is_empty() {
        return Err(report.describe(&history));
    }
    Ok(Checked {
        instances: names.into_iter().map(|i| (i, (None, 0))).collect(),
        baseline,
        checked_below: 0,
        shape: LogShape::default(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_servers_keep_every_acknowledged_write_exactly_once() {
    let cycles = env_u64("RSTMDB_CRASH_LOOP_CYCLES").unwrap_or(10);
    let seed = rstmdb_testkit::rng::seed_from_env("RSTMDB_CRASH_LOOP_SEED");
    let binary = server_binary();
    eprintln!(
        "crash loop: {cycles} cycles, seed {seed}, binary {}",
        binary.display()
    );
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let mut rng = Rng::new(seed);
    let setup = pick_setup(&mut rng);
    let server = ServerProcess::start(&binary, &data_dir, &setup).expect("server starts");
    let checked = set_up(server.addr).await.expect("set-up window passes");
    let mut run = RunState {
        server,
        setup,
        checked,
    };
    let mut totals = Totals::default();
    for cycle in 1..=cycles {
        let report = run_cycle(&binary, &data_dir, cycle, &mut run, &mut rng)
            .await
            .unwrap_or_else(|err| panic!("cycle {cycle} (seed {seed}): {err}"));
        totals.add(cycle, report);
        if cycle % 50 == 0 {
            eprintln!("{}", totals.summary(seed, started.elapsed().as_secs_f64()));
        }
    }
    totals.assert_clean(&run.checked, seed, started);
}

/// The cluster mode (issue 17): a random node of three killed per cycle, the leader half the
/// time. `RSTMDB_CRASH_LOOP_CLUSTER_CYCLES` (default 4); `scripts/crash-loop CYCLES cluster`
/// runs the long form on a release build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_cluster_nodes_keep_every_acknowledged_write_exactly_once() {
    let cycles = env_u64("RSTMDB_CRASH_LOOP_CLUSTER_CYCLES").unwrap_or(4);
    let seed = rstmdb_testkit::rng::seed_from_env("RSTMDB_CRASH_LOOP_SEED");
    let binary = server_binary();
    eprintln!(
        "crash loop (cluster of {NODES}): {cycles} cycles, seed {seed}, binary {}",
        binary.display()
    );
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let mut cluster = TestCluster::start(&binary, NODES, "");
    let leader = cluster.leader(std::time::Duration::from_secs(15)).await;
    let addr = client_addr(&cluster, leader).expect("the leader's address");
    let mut checked = set_up(addr).await.expect("set-up window passes");
    checked.shape.sequence_gaps = true;
    let mut totals = Totals::default();
    for cycle in 1..=cycles {
        let report = run_cluster_cycle(&mut cluster, cycle, &mut checked, &mut rng)
            .await
            .unwrap_or_else(|err| panic!("cycle {cycle} (seed {seed}): {err}"));
        totals.add(cycle, report);
        if cycle % 50 == 0 {
            eprintln!("{}", totals.summary(seed, started.elapsed().as_secs_f64()));
        }
    }
    totals.assert_clean(&checked, seed, started);
}
