//! The membership ops (spec §12.3, `docs/cluster.md` section 10), run on the leader. Each
//! change goes through openraft's joint consensus, on the sequencer thread between two
//! groups ([`Database::run_exclusive`]): its entries would otherwise land where the next
//! group of writes was planned.

use super::incarnation;
use super::status::ClusterObserver;
use super::transfer::LeaderTransfer;
use super::types::{NodeAddr, NodeId, RaftTypes};
use crate::database::Database;
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, Raft};
use rstmdb_protocol::results::{
    ClusterAddLearnerResult, ClusterMembersResult, ClusterTransferLeaderResult,
};
use rstmdb_protocol::{ErrorCode, RcpError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Runs the membership ops of one node.
#[derive(Clone)]
pub struct ClusterAdmin {
    raft: Raft<RaftTypes>,
    database: Arc<Database>,
    observer: ClusterObserver,
    runtime: tokio::runtime::Handle,
    transfer: LeaderTransfer,
}

impl std::fmt::Debug for ClusterAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterAdmin").finish_non_exhaustive()
    }
}

fn bad_request(reason: &str, message: String, node_id: NodeId) -> RcpError {
    RcpError::bad_request(reason, message).with_detail("node_id", node_id)
}

/// openraft's refusal of a change, as a client sees it.
fn change_refused(err: RaftError<NodeId, ClientWriteError<NodeId, NodeAddr>>) -> RcpError {
    match err {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => RcpError::no_leader(
            "this node lost its lead before the change committed; it was not applied",
        ),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(_),
        )) => RcpError::with_reason(
            ErrorCode::Conflict,
            "membership_change_in_progress",
            "another membership change is still being committed; retry",
        ),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(err)) => {
            RcpError::bad_request("membership_refused", err.to_string())
        }
        RaftError::Fatal(err) => {
            RcpError::commit_unknown(format!("Raft stopped during the change: {err}"))
        }
    }
}

impl ClusterAdmin {
    pub(crate) fn new(
        raft: Raft<RaftTypes>,
        database: Arc<Database>,
        observer: ClusterObserver,
        runtime: tokio::runtime::Handle,
        transfer: LeaderTransfer,
    ) -> Self {
        Self {
            raft,
            database,
            observer,
            runtime,
            transfer,
        }
    }

    /// Whether `node_id` is a member, and the voters, as the committed-or-latest membership
    /// this node knows says.
    fn membership_of(&self, node_id: NodeId) -> (bool, BTreeSet<NodeId>) {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        (
            membership.get_node(&node_id).is_some(),
            membership.voter_ids().collect(),
        )
    }

    /// The voters, if `node_id` is a member; else the refusal, with `hint` appended.
    fn voters_with(&self, node_id: NodeId, hint: &str) -> Result<BTreeSet<NodeId>, RcpError> {
        match self.membership_of(node_id) {
            (true, voters) => Ok(voters),
            (false, _) => Err(bad_request(
                "unknown_node",
                format!("node {node_id} is not a member{hint}"),
                node_id,
            )),
        }
    }

    fn members(&self) -> ClusterMembersResult {
        ClusterMembersResult {
            members: self.observer.status().members,
        }
    }

    /// Runs one change on the sequencer thread, with no group in flight.
    async fn change(&self, change: ChangeMembers<NodeId, NodeAddr>) -> Result<(), RcpError> {
        let raft = self.raft.clone();
        let runtime = self.runtime.clone();
        self.database
            .run_exclusive(move || {
                runtime
                    .block_on(raft.change_membership(change, false))
                    .map(|_| ())
                    .map_err(change_refused)
            })
            .await?
    }

    /// CLUSTER_ADD_LEARNER: the node receives the log and applies it, without a vote.
    /// Idempotent for the same addresses; other addresses for a known id are refused.
    pub async fn add_learner(
        &self,
        node_id: NodeId,
        raft_addr: String,
        client_addr: String,
    ) -> Result<ClusterAddLearnerResult, RcpError> {
        if node_id == 0 {
            return Err(bad_request(
                "bad_node_id",
                "node ids start at 1".to_owned(),
                node_id,
            ));
        }
        let node = NodeAddr {
            raft_addr,
            client_addr,
            incarnation: None,
        };
        let known = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&node_id)
            .cloned();
        if let Some(known) = known {
            if known.raft_addr == node.raft_addr {
                return Ok(ClusterAddLearnerResult {
                    node_id,
                    added: false,
                });
            }
            return Err(bad_request(
                "node_exists",
                format!(
                    "node {node_id} is already a member at {}; remove it first to move it to {}",
                    known.raft_addr, node.raft_addr
                ),
                node_id,
            ));
        }
        let raft = self.raft.clone();
        let runtime = self.runtime.clone();
        self.database
            .run_exclusive(move || {
                runtime
                    .block_on(raft.add_learner(node_id, node, false))
                    .map(|_| ())
                    .map_err(change_refused)
            })
            .await??;
        Ok(ClusterAddLearnerResult {
            node_id,
            added: true,
        })
    }

    /// CLUSTER_PROMOTE: a learner becomes a voter. Promoting a voter changes nothing.
    pub async fn promote(&self, node_id: NodeId) -> Result<ClusterMembersResult, RcpError> {
        let voters = self.voters_with(node_id, "; add it as a learner first")?;
        if !voters.contains(&node_id) {
            self.change(ChangeMembers::AddVoterIds(BTreeSet::from([node_id])))
                .await?;
        }
        Ok(self.members())
    }

    /// CLUSTER_REMOVE_NODE: the node leaves (a voter stops voting first). The last voter
    /// stays.
    pub async fn remove(&self, node_id: NodeId) -> Result<ClusterMembersResult, RcpError> {
        let voters = self.voters_with(node_id, "")?;
        if voters.contains(&node_id) {
            if voters.len() == 1 {
                return Err(bad_request(
                    "last_voter",
                    format!("node {node_id} is the last voter: a cluster needs one"),
                    node_id,
                ));
            }
            self.change(ChangeMembers::RemoveVoters(BTreeSet::from([node_id])))
                .await?;
        }
        if self.membership_of(node_id).0 {
            self.change(ChangeMembers::RemoveNodes(BTreeSet::from([node_id])))
                .await?;
        }
        Ok(self.members())
    }

    /// CLUSTER_TRANSFER_LEADER: voter `node_id` becomes the leader (`super::transfer`).
    /// Asking for the node that leads already changes nothing.
    pub async fn transfer_leader(
        &self,
        node_id: NodeId,
    ) -> Result<ClusterTransferLeaderResult, RcpError> {
        let voters = self.voters_with(node_id, "")?;
        if !voters.contains(&node_id) {
            return Err(bad_request(
                "not_voter",
                format!("node {node_id} is a learner and cannot lead; promote it first"),
                node_id,
            ));
        }
        if node_id == self.transfer.me {
            return Ok(ClusterTransferLeaderResult { leader: node_id });
        }
        let transfer = self.transfer.clone();
        let runtime = self.runtime.clone();
        self.database
            .run_exclusive(move || runtime.block_on(transfer.run(node_id)))
            .await?
    }

    /// Writes into the membership the incarnation (and client address) `presented` gives for
    /// each member that has none yet (`super::incarnation`); returns the members bound.
    /// Decided on the sequencer thread, between two groups and after any other membership op,
    /// so that a member removed meanwhile is not added back.
    pub(crate) async fn bind_incarnations(
        &self,
        presented: impl Fn(NodeId) -> Option<(String, Option<String>)> + Send + 'static,
    ) -> Result<Vec<NodeId>, RcpError> {
        let raft = self.raft.clone();
        let runtime = self.runtime.clone();
        self.database
            .run_exclusive(move || {
                let nodes: BTreeMap<NodeId, NodeAddr> = {
                    let metrics = raft.metrics();
                    let metrics = metrics.borrow();
                    metrics
                        .membership_config
                        .membership()
                        .nodes()
                        .filter(|(_, node)| node.incarnation.is_none())
                        .filter_map(|(id, node)| {
                            let (found, client_addr) = presented(*id)?;
                            Some((*id, incarnation::bound(node, found, client_addr)))
                        })
                        .collect()
                };
                if nodes.is_empty() {
                    return Ok(Vec::new());
                }
                let ids = nodes.keys().copied().collect();
                runtime
                    .block_on(raft.change_membership(ChangeMembers::SetNodes(nodes), false))
                    .map(|_| ids)
                    .map_err(change_refused)
            })
            .await?
    }
}
