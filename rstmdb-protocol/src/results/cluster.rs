//! CLUSTER_STATUS (extension, §12.3): a cluster node's view of its cluster.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatusResult {
    /// The cluster's identity; `null` until the node knows it.
    pub cluster_id: Option<String>,
    pub node_id: u64,
    /// `leader`, `follower`, `candidate` or `learner`.
    pub role: String,
    pub term: u64,
    pub leader: Option<ClusterLeader>,
    /// The Raft index of the last entry this node knows committed.
    pub commit_index: Option<u64>,
    /// The end of the last record this node has applied: what its local reads reflect.
    pub applied_offset: u64,
    pub members: Vec<ClusterMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterLeader {
    pub node_id: u64,
    /// `""` when the node has not learned it yet.
    pub client_addr: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMember {
    pub node_id: u64,
    pub raft_addr: String,
    pub client_addr: String,
    pub voter: bool,
    /// On the leader: the last index this member is known to hold; `null` elsewhere.
    pub matched_index: Option<u64>,
    /// On the leader: entries this member is behind the leader's last one; `null` elsewhere.
    pub lag_entries: Option<u64>,
    /// On the leader: milliseconds since this member last answered; `null` elsewhere.
    pub last_contact_ms: Option<u64>,
    /// The member's `storage.fsync_policy` (extension); `null` until this node has heard from
    /// it.
    #[serde(default)]
    pub fsync_policy: Option<String>,
}

/// CLUSTER_ADD_LEARNER result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterAddLearnerResult {
    pub node_id: u64,
    /// False when the node was already there with the same addresses.
    pub added: bool,
}

/// CLUSTER_TRANSFER_LEADER result: the node that leads now (the one asked for).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterTransferLeaderResult {
    pub leader: u64,
}

/// CLUSTER_PROMOTE and CLUSTER_REMOVE_NODE result: the membership after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMembersResult {
    pub members: Vec<ClusterMember>,
}
