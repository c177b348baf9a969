//! Cluster mode's metrics (spec §12.5 and the `rstmdb_replication_*` names of §10), and what
//! `/ready` answers. Registered only when the server is a cluster node (`Metrics::
//! attach_cluster`): a standalone server does not export them. Refreshed at scrape time
//! from the node's status.

use super::error::MetricsError;
use crate::cluster::status::ClusterObserver;
use prometheus::{Gauge, IntCounter, IntGauge, IntGaugeVec, Opts, Registry};

/// A node's Raft and replication gauges.
#[derive(Debug, Clone)]
pub(super) struct ClusterMetrics {
    observer: ClusterObserver,
    max_lag_entries: u64,
    term: IntGauge,
    is_leader: IntGauge,
    commit_index: IntGauge,
    applied_index: IntGauge,
    elections_total: IntCounter,
    entries_sent_total: IntCounter,
    sync_timeouts_total: IntCounter,
    slow_replica_disconnects_total: IntCounter,
    lag_entries: IntGauge,
    lag_seconds: Gauge,
    connected_replicas: IntGauge,
    replica_lag_entries: IntGaugeVec,
    replica_last_acked_sequence: IntGaugeVec,
}

/// Brings a Prometheus counter up to a count kept elsewhere (read at scrape time).
fn catch_up(counter: &IntCounter, count: u64) {
    let counted = counter.get();
    if count > counted {
        counter.inc_by(count - counted);
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl ClusterMetrics {
    pub(super) fn register(
        registry: &Registry,
        observer: ClusterObserver,
        max_lag_entries: u64,
    ) -> Result<Self, MetricsError> {
        let gauge = |name: &str, help: &str| IntGauge::new(name, help);
        let by_replica =
            |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), &["replica_id"]);
        let metrics = Self {
            observer,
            max_lag_entries,
            term: gauge("rstmdb_raft_term", "The node's current Raft term")?,
            is_leader: gauge("rstmdb_raft_is_leader", "1 on the leader, 0 elsewhere")?,
            commit_index: gauge(
                "rstmdb_raft_commit_index",
                "Raft index of the last entry the node knows committed",
            )?,
            applied_index: gauge(
                "rstmdb_raft_applied_index",
                "Raft index of the last entry the node applied",
            )?,
            elections_total: IntCounter::new(
                "rstmdb_raft_elections_total",
                "Times this node became a candidate",
            )?,
            entries_sent_total: IntCounter::new(
                "rstmdb_replication_entries_sent_total",
                "Raft entries this node's replication calls delivered to other members",
            )?,
            sync_timeouts_total: IntCounter::new(
                "rstmdb_replication_sync_timeouts_total",
                "Writes answered REPLICATION_TIMEOUT commit_unknown: not committed by a quorum \
                 within cluster.write_timeout_ms",
            )?,
            slow_replica_disconnects_total: IntCounter::new(
                "rstmdb_replication_slow_replica_disconnects_total",
                "Replication calls that failed or missed their deadline, dropping the \
                 connection to that member",
            )?,
            lag_entries: gauge(
                "rstmdb_replication_lag_entries",
                "Entries this node is behind: committed but not applied here (on the leader, \
                 the most any member is behind)",
            )?,
            lag_seconds: Gauge::new(
                "rstmdb_replication_lag_seconds",
                "0 when caught up; NaN when behind by an unknown time",
            )?,
            connected_replicas: gauge(
                "rstmdb_replication_connected_replicas",
                "On the leader: members that acknowledged entries",
            )?,
            replica_lag_entries: by_replica(
                "rstmdb_replication_replica_lag_entries",
                "On the leader: entries each member is behind",
            )?,
            replica_last_acked_sequence: by_replica(
                "rstmdb_replication_replica_last_acked_sequence",
                "On the leader: the last Raft index each member holds",
            )?,
        };
        let m = metrics.clone();
        registry.register(Box::new(m.term))?;
        registry.register(Box::new(m.is_leader))?;
        registry.register(Box::new(m.commit_index))?;
        registry.register(Box::new(m.applied_index))?;
        registry.register(Box::new(m.elections_total))?;
        registry.register(Box::new(m.entries_sent_total))?;
        registry.register(Box::new(m.sync_timeouts_total))?;
        registry.register(Box::new(m.slow_replica_disconnects_total))?;
        registry.register(Box::new(m.lag_entries))?;
        registry.register(Box::new(m.lag_seconds))?;
        registry.register(Box::new(m.connected_replicas))?;
        registry.register(Box::new(m.replica_lag_entries))?;
        registry.register(Box::new(m.replica_last_acked_sequence))?;
        Ok(metrics)
    }

    pub(super) fn refresh(&self) {
        let status = self.observer.status();
        let applied = self.observer.applied_index();
        let committed = status.commit_index.unwrap_or(0).max(applied);
        let leader = status.role == "leader";
        self.term.set(saturating_i64(status.term));
        self.is_leader.set(i64::from(leader));
        self.commit_index.set(saturating_i64(committed));
        self.applied_index.set(saturating_i64(applied));
        catch_up(&self.elections_total, self.observer.elections());
        catch_up(&self.entries_sent_total, self.observer.entries_sent());
        catch_up(&self.sync_timeouts_total, self.observer.sync_timeouts());
        catch_up(
            &self.slow_replica_disconnects_total,
            self.observer.dropped_replication_connections(),
        );
        self.replica_lag_entries.reset();
        self.replica_last_acked_sequence.reset();
        let mut worst = committed - applied;
        let mut connected = 0;
        for member in status
            .members
            .iter()
            .filter(|m| m.node_id != status.node_id)
        {
            let (Some(lag), Some(matched)) = (member.lag_entries, member.matched_index) else {
                continue;
            };
            connected += 1;
            worst = worst.max(lag);
            let replica = format!("node-{}", member.node_id);
            self.replica_lag_entries
                .with_label_values(&[replica.as_str()])
                .set(saturating_i64(lag));
            self.replica_last_acked_sequence
                .with_label_values(&[replica.as_str()])
                .set(saturating_i64(matched));
        }
        self.lag_entries.set(saturating_i64(worst));
        self.lag_seconds
            .set(if worst == 0 { 0.0 } else { f64::NAN });
        self.connected_replicas
            .set(if leader { connected } else { 0 });
    }

    /// `/ready` (spec §12.5): `Ok` when a leader is known and this node has applied all but
    /// at most `cluster.max_lag_entries` of what it knows committed; else why not.
    pub(super) fn readiness(&self) -> Result<(), String> {
        let status = self.observer.status();
        if status.leader.is_none() {
            return Err(
                "no leader is known (an election is under way, or this node is cut off)".to_owned(),
            );
        }
        let applied = self.observer.applied_index();
        let lag = status.commit_index.unwrap_or(0).saturating_sub(applied);
        if lag > self.max_lag_entries {
            return Err(format!(
                "{lag} committed entries are not applied here yet (cluster.max_lag_entries = {})",
                self.max_lag_entries
            ));
        }
        Ok(())
    }
}
