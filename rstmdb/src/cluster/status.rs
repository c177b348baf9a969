//! CLUSTER_STATUS (spec §12.3): a node's view of its cluster, from openraft's metrics, the
//! log's committed entry and the database's applied offset.

use super::client_addrs::ClientAddrs;
use super::log_store::EntryOffsets;
use super::types::{NodeId, RaftTypes};
use crate::database::Database;
use openraft::{Raft, ServerState};
use rstmdb_protocol::results::{ClusterLeader, ClusterMember, ClusterStatusResult};
use std::sync::Arc;

/// Reads a node's status; cheap to clone.
#[derive(Clone)]
pub struct ClusterObserver {
    pub(crate) raft: Raft<RaftTypes>,
    pub(crate) me: NodeId,
    pub(crate) client_addrs: ClientAddrs,
    pub(crate) log: EntryOffsets,
    pub(crate) database: Arc<Database>,
}

impl std::fmt::Debug for ClusterObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterObserver")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl ClusterObserver {
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
                    last_contact_ms: None,
                }
            })
            .collect();
        ClusterStatusResult {
            cluster_id: None,
            node_id: self.me,
            role: role.to_owned(),
            term: metrics.current_term,
            leader,
            commit_index: self.log.committed().map(|log_id| log_id.index),
            applied_offset: self.database.applied_offset(),
            members,
        }
    }
}
