//! The 25 operation names and their properties (§4.0 table), plus this project's extension
//! ops (STATS, docs/stats-op.md).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An RCP operation name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Hello,
    Auth,
    Ping,
    Bye,
    Info,
    ReplicationStatus,
    PutMachine,
    GetMachine,
    ListMachines,
    CreateInstance,
    GetInstance,
    ListInstances,
    DeleteInstance,
    ApplyEvent,
    Batch,
    SnapshotInstance,
    WalRead,
    WalStats,
    Compact,
    WatchInstance,
    WatchAll,
    Unwatch,
    FlushAll,
    Replicate,
    ReplicateAck,
    /// (extension) aggregate statistics for dashboards (docs/stats-op.md).
    Stats,
    /// (extension) a cluster node's view of its cluster (§12.3).
    ClusterStatus,
    /// (extension, §12.3) membership: a new node that receives the log.
    ClusterAddLearner,
    /// (extension, §12.3) membership: a learner becomes a voter.
    ClusterPromote,
    /// (extension, §12.3) membership: a node leaves the cluster.
    ClusterRemoveNode,
    /// (extension, §12.3) another voter becomes the leader.
    ClusterTransferLeader,
}

impl Op {
    /// Every operation, in the order of the §4.0 table.
    pub const ALL: [Op; 25] = [
        Self::Hello,
        Self::Auth,
        Self::Ping,
        Self::Bye,
        Self::Info,
        Self::ReplicationStatus,
        Self::PutMachine,
        Self::GetMachine,
        Self::ListMachines,
        Self::CreateInstance,
        Self::GetInstance,
        Self::ListInstances,
        Self::DeleteInstance,
        Self::ApplyEvent,
        Self::Batch,
        Self::SnapshotInstance,
        Self::WalRead,
        Self::WalStats,
        Self::Compact,
        Self::WatchInstance,
        Self::WatchAll,
        Self::Unwatch,
        Self::FlushAll,
        Self::Replicate,
        Self::ReplicateAck,
    ];

    /// Ops this project adds to the spec's 25 (not in [`Op::ALL`], which is the §4.0 table).
    pub const EXTENSIONS: [Op; 6] = [
        Self::Stats,
        Self::ClusterStatus,
        Self::ClusterAddLearner,
        Self::ClusterPromote,
        Self::ClusterRemoveNode,
        Self::ClusterTransferLeader,
    ];

    /// The upper-case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hello => "HELLO",
            Self::Auth => "AUTH",
            Self::Ping => "PING",
            Self::Bye => "BYE",
            Self::Info => "INFO",
            Self::ReplicationStatus => "REPLICATION_STATUS",
            Self::PutMachine => "PUT_MACHINE",
            Self::GetMachine => "GET_MACHINE",
            Self::ListMachines => "LIST_MACHINES",
            Self::CreateInstance => "CREATE_INSTANCE",
            Self::GetInstance => "GET_INSTANCE",
            Self::ListInstances => "LIST_INSTANCES",
            Self::DeleteInstance => "DELETE_INSTANCE",
            Self::ApplyEvent => "APPLY_EVENT",
            Self::Batch => "BATCH",
            Self::SnapshotInstance => "SNAPSHOT_INSTANCE",
            Self::WalRead => "WAL_READ",
            Self::WalStats => "WAL_STATS",
            Self::Compact => "COMPACT",
            Self::WatchInstance => "WATCH_INSTANCE",
            Self::WatchAll => "WATCH_ALL",
            Self::Unwatch => "UNWATCH",
            Self::FlushAll => "FLUSH_ALL",
            Self::Replicate => "REPLICATE",
            Self::ReplicateAck => "REPLICATE_ACK",
            Self::Stats => "STATS",
            Self::ClusterStatus => "CLUSTER_STATUS",
            Self::ClusterAddLearner => "CLUSTER_ADD_LEARNER",
            Self::ClusterPromote => "CLUSTER_PROMOTE",
            Self::ClusterRemoveNode => "CLUSTER_REMOVE_NODE",
            Self::ClusterTransferLeader => "CLUSTER_TRANSFER_LEADER",
        }
    }

    /// Whether the op fails with `UNAUTHORIZED` on an unauthenticated connection when
    /// `auth.required` is true. HELLO, AUTH, PING and BYE never need auth.
    pub fn needs_auth(self) -> bool {
        !matches!(self, Self::Hello | Self::Auth | Self::Ping | Self::Bye)
    }

    /// Whether the op is a write op ("W" in §4.0): refused by a read-only server. All but
    /// COMPACT may append WAL records.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Self::PutMachine
                | Self::CreateInstance
                | Self::DeleteInstance
                | Self::ApplyEvent
                | Self::Batch
                | Self::Compact
                | Self::FlushAll
        )
    }

    /// Whether the op changes the cluster's membership (§12.3): it runs on the
    /// leader, relayed there like a write.
    pub fn is_membership(self) -> bool {
        matches!(
            self,
            Self::ClusterAddLearner
                | Self::ClusterPromote
                | Self::ClusterRemoveNode
                | Self::ClusterTransferLeader
        )
    }

    /// Whether the op may appear as a BATCH sub-op (§4.15).
    pub fn allowed_in_batch(self) -> bool {
        matches!(
            self,
            Self::PutMachine
                | Self::GetMachine
                | Self::CreateInstance
                | Self::GetInstance
                | Self::DeleteInstance
                | Self::ApplyEvent
        )
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the 25 operation names nor an extension op.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown operation: {0}")]
pub struct UnknownOp(pub String);

impl FromStr for Op {
    type Err = UnknownOp;

    /// Exact, case-sensitive match on the upper-case name.
    fn from_str(name: &str) -> Result<Self, UnknownOp> {
        Self::ALL
            .into_iter()
            .chain(Self::EXTENSIONS)
            .find(|op| op.as_str() == name)
            .ok_or_else(|| UnknownOp(name.to_owned()))
    }
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_op() {
        for op in Op::ALL {
            assert_eq!(op.as_str().parse::<Op>(), Ok(op));
        }
    }

    #[test]
    fn stats_is_an_authenticated_read_outside_batches() {
        assert_eq!("STATS".parse::<Op>(), Ok(Op::Stats));
        assert!(Op::Stats.needs_auth());
        assert!(!Op::Stats.is_write());
        assert!(!Op::Stats.allowed_in_batch());
        assert!(!Op::ALL.contains(&Op::Stats));
    }

    #[test]
    fn names_are_case_sensitive() {
        assert_eq!("ping".parse::<Op>(), Err(UnknownOp("ping".to_owned())));
        assert!("PING ".parse::<Op>().is_err());
    }

    #[test]
    fn flags_match_the_section_4_0_table() {
        let no_auth: Vec<Op> = Op::ALL.into_iter().filter(|op| !op.needs_auth()).collect();
        assert_eq!(no_auth, [Op::Hello, Op::Auth, Op::Ping, Op::Bye]);

        let writes: Vec<&str> = Op::ALL
            .into_iter()
            .filter(|op| op.is_write())
            .map(Op::as_str)
            .collect();
        assert_eq!(
            writes,
            [
                "PUT_MACHINE",
                "CREATE_INSTANCE",
                "DELETE_INSTANCE",
                "APPLY_EVENT",
                "BATCH",
                "COMPACT",
                "FLUSH_ALL"
            ]
        );

        let in_batch: Vec<&str> = Op::ALL
            .into_iter()
            .filter(|op| op.allowed_in_batch())
            .map(Op::as_str)
            .collect();
        assert_eq!(
            in_batch,
            [
                "PUT_MACHINE",
                "GET_MACHINE",
                "CREATE_INSTANCE",
                "GET_INSTANCE",
                "DELETE_INSTANCE",
                "APPLY_EVENT"
            ]
        );
    }
}
