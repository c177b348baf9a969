//! The crash loop's cluster mode (issue 17, `docs/cluster.md` section 14): three `rstmdb
//! serve` nodes under `every_write`, clients on random nodes (a follower relays their writes
//! to the leader), and each cycle one node killed with SIGKILL at a random moment (the leader
//! half the time) while the others go on through the election, then restarted on its data
//! directory. The window is checked on a random node exactly as in the single-server loop
//! (`window`), with no acknowledged write allowed to go missing, and every node must end
//! with the same log.

use super::cycle::{Checked, CycleReport, keep_created, start_clients};
use super::verify::read_log_from;
use super::window::verify_window;
use super::workload::Signals;
use super::{Rng, connect};
use crate::history_support::Recorder;
use rstmdb_client::results::WalRecord;
use rstmdb_testkit::cluster::TestCluster;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Voters in the cluster: one may die at a time.
pub const NODES: u64 = 3;

/// How long a restarted node may take to hold the others' log.
const CONVERGE: Duration = Duration::from_secs(20);

/// Every this many cycles the whole log is read and compared; the others read the part
/// from the window's start. A node keeps its whole log (no COMPACT in a cluster), so whole
/// reads every cycle made a long run slow down with its length.
const WHOLE_LOG_EVERY: u64 = 10;

/// Where clients reach node `id`.
pub fn client_addr(cluster: &TestCluster, id: u64) -> Result<SocketAddr, String> {
    let addr = &cluster.node(id).client_addr;
    addr.parse()
        .map_err(|err| format!("node {id}'s address {addr}: {err}"))
}

pub async fn run_cluster_cycle(
    cluster: &mut TestCluster,
    cycle: u64,
    run: &mut Checked,
    rng: &mut Rng,
) -> Result<CycleReport, String> {
    let mut report = CycleReport {
        policy: "every_write (cluster)".to_owned(),
        ..CycleReport::default()
    };
    let recorder = Recorder::new(run.baseline.clone(), run.checked_below);
    let signals = Arc::new(Signals::default());
    let addrs: Vec<SocketAddr> = (1..=NODES)
        .map(|id| client_addr(cluster, id))
        .collect::<Result<_, _>>()?;
    let clients = start_clients(run, cycle, &recorder, &signals, rng, |rng| {
        addrs[usize::try_from(rng.range(0, NODES)).unwrap_or(0)]
    })
    .await?;

    tokio::time::sleep(Duration::from_millis(rng.range(150, 1200))).await;
    let leader = cluster.leader(Duration::from_secs(15)).await;
    let victim = if rng.percent(50) {
        leader
    } else {
        rng.range(1, NODES + 1)
    };
    let kill_at_us = recorder.now_us();
    report.killed_leader = victim == leader;
    cluster.kill(victim);
    // The clients on the other nodes go on through the election (their writes wait for a
    // leader), then stop.
    tokio::time::sleep(Duration::from_millis(rng.range(0, 1500))).await;
    signals.stop.store(true, Ordering::Relaxed);
    keep_created(run, cycle, clients, &recorder).await?;

    cluster.restart(victim);
    cluster.leader(Duration::from_secs(15)).await;
    let verifier = rng.range(1, NODES + 1);
    let log_from = if cycle.is_multiple_of(WHOLE_LOG_EVERY) {
        0
    } else {
        run.checked_below
    };
    verify_window(
        client_addr(cluster, verifier)?,
        false,
        log_from,
        run,
        &recorder,
        kill_at_us,
        &mut report,
    )
    .await?;
    same_logs(cluster, verifier, log_from).await?;
    Ok(report)
}

/// Waits until every node's log from `from` on is node `reference`'s, record for record
/// (offsets and sequences included); what differs if one never gets there.
async fn same_logs(cluster: &TestCluster, reference: u64, from: u64) -> Result<(), String> {
    let expected = records_of(cluster, reference, from).await?;
    let deadline = Instant::now() + CONVERGE;
    for id in (1..=NODES).filter(|id| *id != reference) {
        loop {
            let found = records_of(cluster, id, from).await?;
            if found == expected {
                break;
            }
            if Instant::now() > deadline {
                let differs = found
                    .iter()
                    .zip(&expected)
                    .position(|(a, b)| a != b)
                    .unwrap_or(found.len().min(expected.len()));
                return Err(format!(
                    "node {id}'s log ({} records) differs from node {reference}'s ({}) from \
                     record {differs} on",
                    found.len(),
                    expected.len()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

async fn records_of(cluster: &TestCluster, id: u64, from: u64) -> Result<Vec<WalRecord>, String> {
    let client = connect(client_addr(cluster, id)?).await?;
    Ok(read_log_from(&client, from).await?.records)
}
