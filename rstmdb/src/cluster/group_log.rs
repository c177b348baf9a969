//! The sequencer's groups as Raft entries (`docs/cluster.md` section 4): the database's
//! [`GroupLog`] on openraft's `client_write`.

use super::client_addrs::ClientAddrs;
use super::entry_record::NORMAL_HEADER_BYTES;
use super::log_store::EntryOffsets;
use super::types::{CommandRecord, NodeId, RaftCommand, RaftTypes};
use crate::database::{GroupLog, GroupRecord, ReplicateError};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{Raft, ServerState};
use rstmdb_protocol::RcpError;
use serde_json::value::RawValue;
use std::time::Duration;

/// A leader's sequencer hands its groups to openraft through this.
pub struct RaftGroupLog {
    raft: Raft<RaftTypes>,
    me: NodeId,
    /// The runtime openraft runs on: the sequencer thread blocks on it.
    runtime: tokio::runtime::Handle,
    client_addrs: ClientAddrs,
    /// How long a write waits for this node's term to be ready.
    write_timeout: Duration,
    /// Where the log's entries start: the engine must hold the last one.
    offsets: EntryOffsets,
}

impl RaftGroupLog {
    pub fn new(
        raft: Raft<RaftTypes>,
        me: NodeId,
        runtime: tokio::runtime::Handle,
        client_addrs: ClientAddrs,
        write_timeout: Duration,
        offsets: EntryOffsets,
    ) -> Self {
        Self {
            raft,
            me,
            runtime,
            client_addrs,
            write_timeout,
            offsets,
        }
    }

    fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// The client address of the leader, if one is known.
    fn leader_client_addr(&self) -> Option<String> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let leader = metrics.current_leader?;
        metrics
            .membership_config
            .membership()
            .get_node(&leader)
            .map(|node| node.client_addr.clone())
            .filter(|addr| !addr.is_empty())
            .or_else(|| self.client_addrs.get(leader))
    }
}

impl std::fmt::Debug for RaftGroupLog {
    // openraft's handle has no Debug of its own.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftGroupLog")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

fn command_record(record: GroupRecord) -> Result<CommandRecord, RcpError> {
    let text = String::from_utf8(record.payload)
        .map_err(|err| RcpError::internal(format!("a record is not UTF-8: {err}")))?;
    let payload = RawValue::from_string(text)
        .map_err(|err| RcpError::internal(format!("a record is not JSON: {err}")))?;
    Ok(CommandRecord {
        kind: record.kind,
        timestamp_ms: record.timestamp_ms,
        payload,
    })
}

impl GroupLog for RaftGroupLog {
    fn header_bytes(&self) -> usize {
        NORMAL_HEADER_BYTES
    }

    fn may_write(&self, applied_end: &dyn Fn() -> u64) -> Result<(), RcpError> {
        let mut metrics = self.raft.metrics();
        // Every entry of the log applied: the engine ends where the WAL does. The last entry
        // is applied once what the engine applied ends after its header.
        let holds_log = || {
            self.offsets
                .last_header_offset()
                .is_none_or(|header| applied_end() > header)
        };
        // A new leader first applies its term's blank entry, and a leader restored after a
        // restart the entries start-up did not replay; a write waits for that, rather than
        // fail in the first moments of a term. Applying publishes metrics, which wakes this.
        let ready = self.runtime.block_on(async {
            let leading = |m: &openraft::RaftMetrics<NodeId, super::types::NodeAddr>| {
                m.state == ServerState::Leader && m.current_leader == Some(self.me)
            };
            let waited = tokio::time::timeout(
                self.write_timeout,
                metrics.wait_for(|m| {
                    !leading(m)
                        || (m.last_applied.map(|applied| applied.leader_id.term)
                            == Some(m.current_term)
                            && holds_log())
                }),
            )
            .await;
            matches!(waited, Ok(Ok(m)) if leading(&m))
        });
        if ready {
            return Ok(());
        }
        if self.leader() == Some(self.me) {
            return Err(RcpError::no_leader(
                "this node leads but its term did not start in time; retry",
            ));
        }
        // Not the leader: with forwarding off the write is refused here, naming the leader
        // when this node knows it (spec §12.2).
        Err(RcpError::not_leader(self.leader_client_addr().as_deref()))
    }

    fn new_origin(&self) -> u64 {
        uuid::Uuid::new_v4().as_u64_pair().0
    }

    fn replicate(&self, origin: u64, records: Vec<GroupRecord>) -> Result<(), ReplicateError> {
        let records = records
            .into_iter()
            .map(command_record)
            .collect::<Result<Vec<_>, _>>()
            .map_err(ReplicateError::NotApplied)?;
        let command = RaftCommand { origin, records };
        match self.runtime.block_on(self.raft.client_write(command)) {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                Err(ReplicateError::NotApplied(RcpError::no_leader(
                    "the leadership changed before the write committed; it was not applied",
                )))
            }
            Err(RaftError::APIError(err)) => Err(ReplicateError::NotApplied(RcpError::internal(
                format!("the Raft log refused the write: {err}"),
            ))),
            Err(RaftError::Fatal(err)) => Err(ReplicateError::Unknown(RcpError::commit_unknown(
                format!("Raft stopped while the write was in flight: {err}"),
            ))),
        }
    }
}
