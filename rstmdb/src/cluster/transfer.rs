//! CLUSTER_TRANSFER_LEADER (spec §12.3, `docs/cluster.md` section 10). openraft 0.9 has no
//! leader transfer (0.10 adds one), and a follower refuses to vote while its leader lease
//! runs, so the handover is arranged around that:
//!
//! 1. the leader waits until the target holds its whole log (no write starts meanwhile: the
//!    transfer runs on the sequencer thread, between two groups);
//! 2. it stops sending heartbeats, and waits one lease (`election_timeout_max_ms`) so that
//!    every follower's lapses;
//! 3. it asks the target to campaign now (`RaftRequest::TransferLeader`). The target is the
//!    only node whose lease lapsed *and* that campaigns before its own election timer: the
//!    others would wait a whole election timeout more. Its log is the leader's, so it wins;
//! 4. the answer comes once this node sees another leader; heartbeats are restored whatever
//!    happened.
//!
//! Writes pause for about one lease plus one election. A transfer that does not complete in
//! `write_timeout_ms` answers REPLICATION_TIMEOUT; one that another node won names it.

use super::peer_client::PeerNetwork;
use super::rpc::{RaftRequest, RaftResponse};
use super::types::{NodeAddr, NodeId, RaftTypes};
use openraft::network::RaftNetworkFactory;
use openraft::{Raft, RaftMetrics};
use rstmdb_protocol::results::ClusterTransferLeaderResult;
use rstmdb_protocol::{ErrorCode, RcpError};
use std::time::Duration;
use tokio::time::Instant;

/// Waited beyond the lease before the target campaigns: the followers' leases were last
/// renewed a little before the heartbeats stopped, never after.
const LEASE_MARGIN: Duration = Duration::from_millis(50);

/// Hands the leadership of one node over to another voter.
#[derive(Clone)]
pub struct LeaderTransfer {
    pub raft: Raft<RaftTypes>,
    pub me: NodeId,
    pub network: PeerNetwork,
    /// `cluster.election_timeout_max_ms`: openraft's leader lease.
    pub lease: Duration,
    /// `cluster.write_timeout_ms`: the longest a transfer may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for LeaderTransfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderTransfer")
            .field("me", &self.me)
            .field("lease", &self.lease)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn timed_out(message: String, target: NodeId) -> RcpError {
    RcpError::with_reason(ErrorCode::ReplicationTimeout, "transfer_timeout", message)
        .with_detail("node_id", target)
}

impl LeaderTransfer {
    /// Makes voter `target` (not this node) the leader. Runs on the leader, with no write
    /// in flight and none starting until it returns.
    pub async fn run(&self, target: NodeId) -> Result<ClusterTransferLeaderResult, RcpError> {
        let deadline = Instant::now() + self.timeout;
        self.wait_caught_up(target, deadline).await?;
        self.raft.runtime_config().heartbeat(false);
        let outcome = self.hand_over(target, deadline).await;
        self.raft.runtime_config().heartbeat(true);
        outcome
    }

    /// Follows openraft's metrics until `decide` answers; `late` is the answer at `deadline`.
    async fn follow<T>(
        &self,
        deadline: Instant,
        late: impl FnOnce() -> RcpError,
        mut decide: impl FnMut(&RaftMetrics<NodeId, NodeAddr>) -> Option<Result<T, RcpError>>,
    ) -> Result<T, RcpError> {
        let mut metrics = self.raft.metrics();
        loop {
            let answer = decide(&metrics.borrow_and_update());
            if let Some(answer) = answer {
                return answer;
            }
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(RcpError::no_leader("Raft stopped")),
                Err(_) => return Err(late()),
            }
        }
    }

    /// Waits until `target` holds every entry of this leader's log.
    async fn wait_caught_up(&self, target: NodeId, deadline: Instant) -> Result<(), RcpError> {
        let late = || {
            timed_out(
                format!(
                    "node {target} did not catch up with the leader's log within {} ms; the \
                     leader did not change",
                    self.timeout.as_millis()
                ),
                target,
            )
        };
        self.follow(deadline, late, |m| {
            if m.current_leader != Some(self.me) {
                return Some(Err(RcpError::no_leader(
                    "this node lost its lead before the transfer began; nothing changed",
                )));
            }
            let matched = m
                .replication
                .as_ref()
                .and_then(|replication| replication.get(&target).copied().flatten())
                .map(|log_id| log_id.index);
            (matched.is_some() && matched >= m.last_log_index).then_some(Ok(()))
        })
        .await
    }

    /// With heartbeats stopped: lets the leases lapse, has `target` campaign, and waits for
    /// a new leader.
    async fn hand_over(
        &self,
        target: NodeId,
        deadline: Instant,
    ) -> Result<ClusterTransferLeaderResult, RcpError> {
        tokio::time::sleep(self.lease + LEASE_MARGIN).await;
        let node = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&target)
            .cloned()
            .ok_or_else(|| {
                RcpError::bad_request("unknown_node", format!("node {target} left meanwhile"))
                    .with_detail("node_id", target)
            })?;
        let mut client = self.network.clone().new_client(target, &node).await;
        match tokio::time::timeout_at(deadline, client.exchange(RaftRequest::TransferLeader)).await
        {
            Ok(Ok(RaftResponse::TransferLeader(Ok(())))) => {}
            Ok(Ok(RaftResponse::TransferLeader(Err(why)))) => {
                return Err(timed_out(
                    format!("node {target} could not campaign: {why}"),
                    target,
                ));
            }
            Ok(Ok(other)) => {
                return Err(timed_out(
                    format!("node {target} answered the transfer with {other:?}"),
                    target,
                ));
            }
            Ok(Err(err)) => {
                return Err(timed_out(
                    format!("node {target} could not be asked to campaign: {err:?}"),
                    target,
                ));
            }
            Err(_) => return Err(timed_out(format!("node {target} did not answer"), target)),
        }
        self.wait_for_new_leader(target, deadline).await
    }

    async fn wait_for_new_leader(
        &self,
        target: NodeId,
        deadline: Instant,
    ) -> Result<ClusterTransferLeaderResult, RcpError> {
        let late = || {
            timed_out(
                format!(
                    "node {target} did not become the leader within {} ms",
                    self.timeout.as_millis()
                ),
                target,
            )
        };
        self.follow(deadline, late, |m| match m.current_leader {
            Some(leader) if leader == target => Some(Ok(ClusterTransferLeaderResult { leader })),
            Some(leader) if leader != self.me => Some(Err(RcpError::with_reason(
                ErrorCode::Conflict,
                "other_leader",
                format!("node {leader} won the election instead of node {target}"),
            )
            .with_detail("node_id", target)
            .with_detail("leader", leader))),
            _ => None,
        })
        .await
    }
}
