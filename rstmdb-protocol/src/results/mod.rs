//! Typed results of every operation (§4.1–§4.23), for the server to answer with
//! ([`crate::Response::ok_typed`]) and for the client to read ([`crate::Response::into_typed`]).
//!
//! Field names are the spec's. Optional fields are omitted when absent, except where the spec
//! says a field is always present and may be `null` (`next_offset`, `checkpoint_offset`,
//! BATCH's `result`/`error`). Unknown fields are ignored when parsing.

mod cluster;
mod instances;
mod session;
mod stats;
mod wal;
mod watch;

pub use cluster::{
    ClusterAddLearnerResult, ClusterLeader, ClusterMember, ClusterMembersResult,
    ClusterStatusResult, ClusterTransferLeaderResult,
};
pub use instances::{
    ApplyEventResult, BatchItemResult, BatchItemStatus, BatchResult, CreateInstanceResult,
    DeleteInstanceResult, GetInstanceResult, InstanceSummary, ListInstancesResult,
};
pub use session::{
    AuthResult, ByeResult, GetMachineResult, HelloResult, InfoResult, ListMachinesResult,
    MachineVersions, PingResult, PutMachineResult, ReplicationStatusResult,
};
pub use stats::{StateCountEntry, StatsResult};
pub use wal::{
    CompactResult, FsyncLatency, IoStats, SnapshotInstanceResult, WalReadResult, WalRecord,
    WalStatsResult,
};
pub use watch::{FlushAllResult, UnwatchResult, WatchAllResult, WatchInstanceResult};
