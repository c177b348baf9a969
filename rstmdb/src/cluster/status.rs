//! CLUSTER_STATUS (spec §12.3): a node's view of its cluster, from openraft's metrics, the
//! log's committed entry and the database's applied offset.

use super::client_addrs::{ClientAddrs, FsyncPolicies, PeerContacts, ReplicationCounters};
use super::identity::NodeIdentity;
use super::log_store::EntryOffsets;
use super::types::{NodeId, RaftTypes};
use crate::database::Database;
use openraft::{Raft, ServerState};
use rstmdb_protocol::results::{
    ClusterLeader, ClusterMember, ClusterStatusResult, ReplicationStatusResult,
};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Reads a node's status; cheap to clone.
#[derive(Clone)]
pub struct ClusterObserver {
    pub(crate) raft: Raft<RaftTypes>,
    pub(crate) me: NodeId,
    pub(crate) client_addrs: ClientAddrs,
    pub(crate) contacts: PeerContacts,
    pub(crate) log: EntryOffsets,
    pub(crate) database: Arc<Database>,
    /// Times this node became a candidate (counted by the node's metrics watcher).
    pub(crate) elections: Arc<AtomicU64>,
    /// What the replication calls did.
    pub(crate) counters: ReplicationCounters,
    /// This node's cluster id.
    pub(crate) identity: NodeIdentity,
    /// Each node's fsync policy, as it said it.
    pub(crate) fsync_policies: FsyncPolicies,
}

impl std::fmt::Debug for ClusterObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterObserver")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl ClusterObserver {
    /// Times this node became a candidate since it started.
    pub fn elections(&self) -> u64 {
        self.elections.load(Ordering::Relaxed)
    }

    /// Entries this node's replication calls delivered since it started.
    pub fn entries_sent(&self) -> u64 {
        self.counters.entries_sent()
    }

    /// Writes that answered `commit_unknown` because their group did not commit in time.
    pub fn sync_timeouts(&self) -> u64 {
        self.database.sync_timeouts()
    }

    /// Replication calls that failed or were abandoned at their deadline, each dropping its
    /// connection to the member.
    pub fn dropped_replication_connections(&self) -> u64 {
        self.counters.dropped_connections()
    }

    /// The Raft index of the last entry applied here.
    pub fn applied_index(&self) -> u64 {
        self.raft
            .metrics()
            .borrow()
            .last_applied
            .map_or(0, |log_id| log_id.index)
    }

    /// Counts this node's elections until Raft stops (spawned once by the node).
    pub(crate) async fn count_elections(self) {
        let mut metrics = self.raft.metrics();
        let mut was_candidate = false;
        loop {
            let candidate = metrics.borrow_and_update().state == ServerState::Candidate;
            if candidate && !was_candidate {
                self.elections.fetch_add(1, Ordering::Relaxed);
            }
            was_candidate = candidate;
            if metrics.changed().await.is_err() {
                return;
            }
        }
    }

    /// Where clients reach `node`: the membership's address, else what its hello said.
    fn client_addr(&self, node: NodeId, in_membership: Option<&str>) -> String {
        in_membership
            .filter(|addr| !addr.is_empty())
            .map(str::to_owned)
            .or_else(|| self.client_addrs.get(node))
            .unwrap_or_default()
    }

    pub fn status(&self) -> ClusterStatusResult {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
        let role = match metrics.state {
            ServerState::Leader => "leader",
            ServerState::Candidate => "candidate",
            ServerState::Follower if voters.contains(&self.me) => "follower",
            ServerState::Follower | ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        let leader = metrics.current_leader.map(|leader| ClusterLeader {
            node_id: leader,
            client_addr: self.client_addr(
                leader,
                membership
                    .get_node(&leader)
                    .map(|node| node.client_addr.as_str()),
            ),
        });
        let last_index = metrics.last_log_index;
        let members = membership
            .nodes()
            .map(|(id, node)| {
                let matched = metrics
                    .replication
                    .as_ref()
                    .map(|replication| replication.get(id).copied().flatten());
                let matched_index = match matched {
                    Some(matched) => matched.map(|log_id| log_id.index),
                    // Only the leader tracks the others.
                    None => None,
                };
                let lag_entries = matched.map(|matched| {
                    let next = matched.map_or(0, |log_id| log_id.index + 1);
                    last_index.map_or(0, |last| (last + 1).saturating_sub(next))
                });
                ClusterMember {
                    node_id: *id,
                    raft_addr: node.raft_addr.clone(),
                    client_addr: self.client_addr(*id, Some(&node.client_addr)),
                    voter: voters.contains(id),
                    matched_index,
                    lag_entries,
                    last_contact_ms: (*id != self.me)
                        .then(|| self.contacts.millis_since(*id))
                        .flatten(),
                    fsync_policy: self.fsync_policies.get(*id),
                }
            })
            .collect();
        ClusterStatusResult {
            cluster_id: self.identity.cluster_id(),
            node_id: self.me,
            role: role.to_owned(),
            term: metrics.current_term,
            leader,
            commit_index: self.log.committed().map(|log_id| log_id.index),
            applied_offset: self.database.applied_offset(),
            members,
        }
    }

    /// REPLICATION_STATUS in the public 0.3.0 shape (spec §12.2): the leader is the
    /// `primary` and every other node a `replica`, with Raft indexes as sequences; both add
    /// the CLUSTER_STATUS result under `cluster`.
    pub fn replication_status(&self) -> ReplicationStatusResult {
        let status = self.status();
        let last_index = self.raft.metrics().borrow().last_log_index.unwrap_or(0);
        let mut other = Map::new();
        let role = if status.role == "leader" {
            let replicas: Vec<Value> = status
                .members
                .iter()
                .filter(|member| member.node_id != self.me)
                .map(|member| {
                    json!({
                        "replica_id": format!("node-{}", member.node_id),
                        "last_acked_sequence": member.matched_index.unwrap_or(0),
                        "lag_entries": member.lag_entries.unwrap_or(0),
                    })
                })
                .collect();
            let connected = status
                .members
                .iter()
                .filter(|member| member.node_id != self.me && member.matched_index.is_some())
                .count();
            other.insert("mode".to_owned(), json!("sync"));
            other.insert("primary_sequence".to_owned(), json!(last_index));
            other.insert("connected_replicas".to_owned(), json!(connected));
            other.insert("replicas".to_owned(), Value::Array(replicas));
            "primary"
        } else {
            let applied = self
                .raft
                .metrics()
                .borrow()
                .last_applied
                .map_or(0, |log_id| log_id.index);
            let committed = status.commit_index.unwrap_or(0).max(applied);
            let lag = committed - applied;
            other.insert(
                "upstream".to_owned(),
                status
                    .leader
                    .as_ref()
                    .map(|leader| leader.client_addr.clone())
                    .filter(|addr| !addr.is_empty())
                    .map_or(Value::Null, Value::from),
            );
            other.insert("last_applied_sequence".to_owned(), json!(applied));
            other.insert("primary_sequence".to_owned(), json!(committed));
            other.insert("lag_entries".to_owned(), json!(lag));
            // Caught up is 0 s; a lagging node cannot tell how old its backlog is.
            other.insert(
                "lag_seconds".to_owned(),
                if lag == 0 { json!(0) } else { Value::Null },
            );
            "replica"
        };
        other.insert(
            "cluster".to_owned(),
            serde_json::to_value(&status).unwrap_or(Value::Null),
        );
        ReplicationStatusResult {
            role: role.to_owned(),
            other,
        }
    }
}
