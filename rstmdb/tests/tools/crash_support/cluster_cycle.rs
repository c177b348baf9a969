//! The crash loop's cluster mode (issue 17, `docs/cluster.md` section 14): three `rstmdb
//! serve` nodes under `every_write`, clients on random nodes (a follower relays their writes
//! to the leader), and each cycle one node killed with SIGKILL at a random moment (the leader
//! half the time) while the others go on through the election, then restarted on its data
//! directory. The window is checked on a random node exactly as in the single-server loop
//! (`window`), with no acknowledged write allowed to go missing, and every node must end
//! with the same log.

use super::cycle::{CLIENTS, Checked, CycleReport};
use super::verify::read_log;
use super::window::verify_window;
use super::workload::{Plan, Signals, run_client};
use super::{Rng, connect};
use crate::history_support::{Call, Recorder};
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
    let shared: Vec<String> = run
        .instances
        .iter()
        .filter(|(_, (who, _))| who.is_none())
        .map(|(i, _)| i.clone())
        .collect();
    let mut clients = Vec::new();
    for who in 0..CLIENTS {
        let node = rng.range(1, NODES + 1);
        let client = connect(client_addr(cluster, node)?).await?;
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

    cluster.restart(victim);
    cluster.leader(Duration::from_secs(15)).await;
    let verifier = rng.range(1, NODES + 1);
    verify_window(
        client_addr(cluster, verifier)?,
        false,
        run,
        &recorder,
        kill_at_us,
        &mut report,
    )
    .await?;
    same_logs(cluster, verifier).await?;
    Ok(report)
}

/// Waits until every node's log is node `reference`'s, record for record (offsets and
/// sequences included); what differs if one never gets there.
async fn same_logs(cluster: &TestCluster, reference: u64) -> Result<(), String> {
    let expected = records_of(cluster, reference).await?;
    let deadline = Instant::now() + CONVERGE;
    for id in (1..=NODES).filter(|id| *id != reference) {
        loop {
            let found = records_of(cluster, id).await?;
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

async fn records_of(cluster: &TestCluster, id: u64) -> Result<Vec<WalRecord>, String> {
    let client = connect(client_addr(cluster, id)?).await?;
    Ok(read_log(&client).await?.records)
}
