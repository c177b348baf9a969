//! Typed params of every operation (§4.1–§4.24), parsed under the rules of §4.0.
//!
//! Start with [`OpParams::parse`]: given an [`Op`] and its `params` object it returns the typed
//! params or the `BAD_REQUEST` error (`missing_param` / `invalid_param`, or `batch_invalid` for
//! BATCH) to send. The param structs also serialise, so a client can build requests from them.

mod batch;
mod cluster;
mod instances;
mod machines;
pub(crate) mod reader;
mod session;
mod wal;
mod watch;

use serde_json::{Map, Value};

pub use batch::{BatchMode, BatchOp, BatchParams};
pub use cluster::{ClusterAddLearnerParams, ClusterNodeParams};
pub use instances::{
    ApplyEventParams, CreateInstanceParams, DeleteInstanceParams, GetInstanceParams,
    ListInstancesParams,
};
pub use machines::{GetMachineParams, PutMachineParams};
pub use session::{AuthParams, HelloParams};
pub use wal::{CompactParams, SnapshotInstanceParams, WalReadParams};
pub use watch::{UnwatchParams, WatchAllParams, WatchInstanceParams};

use crate::error::RcpError;
use crate::ops::Op;

/// Parsing of one op's `params` object (already defaulted to `{}` when missing or null).
pub trait FromParams: Sized {
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError>;
}

/// The typed params of a request. Ops whose params are ignored have no payload.
#[derive(Debug, Clone, PartialEq)]
pub enum OpParams {
    Hello(HelloParams),
    Auth(AuthParams),
    Ping,
    Bye,
    Info,
    ReplicationStatus,
    PutMachine(PutMachineParams),
    GetMachine(GetMachineParams),
    ListMachines,
    CreateInstance(CreateInstanceParams),
    GetInstance(GetInstanceParams),
    ListInstances(ListInstancesParams),
    DeleteInstance(DeleteInstanceParams),
    ApplyEvent(ApplyEventParams),
    Batch(BatchParams),
    SnapshotInstance(SnapshotInstanceParams),
    WalRead(WalReadParams),
    WalStats,
    Compact(CompactParams),
    WatchInstance(WatchInstanceParams),
    WatchAll(WatchAllParams),
    Unwatch(UnwatchParams),
    FlushAll,
    Replicate,
    ReplicateAck,
    /// (extension) params are ignored.
    Stats,
    /// (extension, §12.3) params are ignored.
    ClusterStatus,
    ClusterAddLearner(ClusterAddLearnerParams),
    ClusterPromote(ClusterNodeParams),
    ClusterRemoveNode(ClusterNodeParams),
    ClusterTransferLeader(ClusterNodeParams),
}

impl OpParams {
    /// Parses `params` for `op`. The params of BATCH sub-ops are left unchecked; parse each
    /// [`BatchOp`] with this function when it runs.
    pub fn parse(op: Op, params: &Map<String, Value>) -> Result<Self, RcpError> {
        Ok(match op {
            Op::Hello => Self::Hello(HelloParams::from_params(params)?),
            Op::Auth => Self::Auth(AuthParams::from_params(params)?),
            Op::Ping => Self::Ping,
            Op::Bye => Self::Bye,
            Op::Info => Self::Info,
            Op::ReplicationStatus => Self::ReplicationStatus,
            Op::PutMachine => Self::PutMachine(PutMachineParams::from_params(params)?),
            Op::GetMachine => Self::GetMachine(GetMachineParams::from_params(params)?),
            Op::ListMachines => Self::ListMachines,
            Op::CreateInstance => Self::CreateInstance(CreateInstanceParams::from_params(params)?),
            Op::GetInstance => Self::GetInstance(GetInstanceParams::from_params(params)?),
            Op::ListInstances => Self::ListInstances(ListInstancesParams::from_params(params)?),
            Op::DeleteInstance => Self::DeleteInstance(DeleteInstanceParams::from_params(params)?),
            Op::ApplyEvent => Self::ApplyEvent(ApplyEventParams::from_params(params)?),
            Op::Batch => Self::Batch(BatchParams::from_params(params)?),
            Op::SnapshotInstance => {
                Self::SnapshotInstance(SnapshotInstanceParams::from_params(params)?)
            }
            Op::WalRead => Self::WalRead(WalReadParams::from_params(params)?),
            Op::WalStats => Self::WalStats,
            Op::Compact => Self::Compact(CompactParams::from_params(params)?),
            Op::WatchInstance => Self::WatchInstance(WatchInstanceParams::from_params(params)?),
            Op::WatchAll => Self::WatchAll(WatchAllParams::from_params(params)?),
            Op::Unwatch => Self::Unwatch(UnwatchParams::from_params(params)?),
            Op::FlushAll => Self::FlushAll,
            Op::Replicate => Self::Replicate,
            Op::ReplicateAck => Self::ReplicateAck,
            Op::Stats => Self::Stats,
            Op::ClusterStatus => Self::ClusterStatus,
            Op::ClusterAddLearner => {
                Self::ClusterAddLearner(ClusterAddLearnerParams::from_params(params)?)
            }
            Op::ClusterPromote => Self::ClusterPromote(ClusterNodeParams::from_params(params)?),
            Op::ClusterRemoveNode => {
                Self::ClusterRemoveNode(ClusterNodeParams::from_params(params)?)
            }
            Op::ClusterTransferLeader => {
                Self::ClusterTransferLeader(ClusterNodeParams::from_params(params)?)
            }
        })
    }

    /// The op these params belong to.
    pub fn op(&self) -> Op {
        match self {
            Self::Hello(_) => Op::Hello,
            Self::Auth(_) => Op::Auth,
            Self::Ping => Op::Ping,
            Self::Bye => Op::Bye,
            Self::Info => Op::Info,
            Self::ReplicationStatus => Op::ReplicationStatus,
            Self::PutMachine(_) => Op::PutMachine,
            Self::GetMachine(_) => Op::GetMachine,
            Self::ListMachines => Op::ListMachines,
            Self::CreateInstance(_) => Op::CreateInstance,
            Self::GetInstance(_) => Op::GetInstance,
            Self::ListInstances(_) => Op::ListInstances,
            Self::DeleteInstance(_) => Op::DeleteInstance,
            Self::ApplyEvent(_) => Op::ApplyEvent,
            Self::Batch(_) => Op::Batch,
            Self::SnapshotInstance(_) => Op::SnapshotInstance,
            Self::WalRead(_) => Op::WalRead,
            Self::WalStats => Op::WalStats,
            Self::Compact(_) => Op::Compact,
            Self::WatchInstance(_) => Op::WatchInstance,
            Self::WatchAll(_) => Op::WatchAll,
            Self::Unwatch(_) => Op::Unwatch,
            Self::FlushAll => Op::FlushAll,
            Self::Replicate => Op::Replicate,
            Self::ReplicateAck => Op::ReplicateAck,
            Self::Stats => Op::Stats,
            Self::ClusterStatus => Op::ClusterStatus,
            Self::ClusterAddLearner(_) => Op::ClusterAddLearner,
            Self::ClusterPromote(_) => Op::ClusterPromote,
            Self::ClusterRemoveNode(_) => Op::ClusterRemoveNode,
            Self::ClusterTransferLeader(_) => Op::ClusterTransferLeader,
        }
    }

    /// The params as the JSON object to put in a request (client side).
    pub fn to_object(&self) -> Result<Map<String, Value>, RcpError> {
        use crate::message::to_object;
        match self {
            Self::Hello(p) => to_object(p),
            Self::Auth(p) => to_object(p),
            Self::PutMachine(p) => to_object(p),
            Self::GetMachine(p) => to_object(p),
            Self::CreateInstance(p) => to_object(p),
            Self::GetInstance(p) => to_object(p),
            Self::ListInstances(p) => to_object(p),
            Self::DeleteInstance(p) => to_object(p),
            Self::ApplyEvent(p) => to_object(p),
            Self::Batch(p) => to_object(p),
            Self::SnapshotInstance(p) => to_object(p),
            Self::WalRead(p) => to_object(p),
            Self::Compact(p) => to_object(p),
            Self::WatchInstance(p) => to_object(p),
            Self::WatchAll(p) => to_object(p),
            Self::Unwatch(p) => to_object(p),
            Self::ClusterAddLearner(p) => to_object(p),
            Self::ClusterPromote(p)
            | Self::ClusterRemoveNode(p)
            | Self::ClusterTransferLeader(p) => to_object(p),
            Self::Ping
            | Self::Bye
            | Self::Info
            | Self::ReplicationStatus
            | Self::ListMachines
            | Self::WalStats
            | Self::FlushAll
            | Self::Replicate
            | Self::ReplicateAck
            | Self::Stats
            | Self::ClusterStatus => Ok(Map::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_parses_back_to_itself_or_needs_params() {
        for op in Op::ALL {
            match OpParams::parse(op, &Map::new()) {
                Ok(params) => assert_eq!(params.op(), op),
                Err(error) => {
                    let reason = error.reason().unwrap_or_default();
                    assert!(
                        reason == "missing_param" || reason == "batch_invalid",
                        "{op}: {reason}"
                    );
                }
            }
        }
    }
}
