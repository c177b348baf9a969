//! What connection tasks send to the sequencer, and what comes back.

use super::shared::Gate;
use crate::engine::{Command, OpResult, RawCtx, Record};
use rstmdb_protocol::params::BatchMode;
use rstmdb_protocol::results::{BatchItemResult, GetInstanceResult, GetMachineResult};
use rstmdb_protocol::{Op, RcpError};
use serde::Serialize;
use tokio::sync::oneshot;

/// A reply and the WAL position that must be committed before it may be sent: the end of the
/// group it was computed in (it may depend on any record of that group).
#[derive(Debug)]
pub(crate) struct Completion<T> {
    pub(crate) outcome: Result<T, RcpError>,
    pub(crate) gate: Gate,
}

/// A write op's answer.
#[derive(Debug, Clone)]
pub struct WriteOutput {
    pub result: OpResult,
    /// The offset of the record written (`meta.wal_offset`); `None` when nothing was written.
    pub wal_offset: Option<u64>,
    /// The record written, for watch events.
    pub record: Option<Record>,
}

/// One BATCH sub-op, with its params already parsed by the dispatcher.
#[derive(Debug, Clone)]
pub enum BatchItem {
    Write {
        op: Op,
        command: Command,
    },
    GetInstance {
        instance_id: String,
    },
    GetMachine {
        machine: String,
        version: u32,
    },
    /// The sub-op's params were refused; it fails with this error at its position.
    Refused {
        op: Op,
        error: RcpError,
    },
}

impl BatchItem {
    pub(crate) fn op(&self) -> Op {
        match self {
            BatchItem::Write { op, .. } | BatchItem::Refused { op, .. } => *op,
            BatchItem::GetInstance { .. } => Op::GetInstance,
            BatchItem::GetMachine { .. } => Op::GetMachine,
        }
    }
}

/// What one BATCH sub-op returns: the result of the op it is (§4.15).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum BatchOpResult {
    Write(OpResult),
    GetInstance(GetInstanceResult<RawCtx>),
    GetMachine(GetMachineResult),
}

/// A BATCH's answer: one entry per sub-op (best_effort), or all ok (atomic).
#[derive(Debug, Clone)]
pub struct BatchOutput {
    pub results: Vec<BatchItemResult<BatchOpResult>>,
    /// The offset of the first record the batch wrote (`meta.wal_offset`).
    pub first_wal_offset: Option<u64>,
    /// The records written, in order, for watch events.
    pub records: Vec<(u64, Record)>,
}

pub(crate) enum Job {
    Write {
        command: Command,
        reply: oneshot::Sender<Completion<WriteOutput>>,
    },
    Batch {
        mode: BatchMode,
        items: Vec<BatchItem>,
        reply: oneshot::Sender<Completion<BatchOutput>>,
    },
    /// Finish every job queued before this one, then stop (graceful shutdown).
    Stop,
    /// Cluster mode: work that must not overlap a group in flight (a membership change,
    /// whose entries would land where the next group was planned). Runs on the sequencer
    /// thread between groups, in queue order.
    Exclusive(Box<dyn FnOnce() + Send>),
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Write { command, .. } => {
                f.debug_struct("Write").field("command", command).finish()
            }
            Job::Batch { mode, items, .. } => f
                .debug_struct("Batch")
                .field("mode", mode)
                .field("items", &items.len())
                .finish(),
            Job::Stop => f.write_str("Stop"),
            Job::Exclusive(_) => f.write_str("Exclusive"),
        }
    }
}
