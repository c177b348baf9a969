//! What a Raft entry carries in rstmdb (`docs/cluster.md` section 2), and openraft's type
//! configuration built from it.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::path::PathBuf;

/// A node's id: `cluster.node_id`, at least 1.
pub type NodeId = u64;

/// One data record of a group, as a standalone server writes it (`engine/record.rs`). Its
/// payload is JSON text, carried as it is: across the network and into the WAL.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandRecord {
    /// The record's kind, 1 to 5 (kind 6 is the entry header, never a command's).
    pub kind: u8,
    pub timestamp_ms: i64,
    pub payload: Box<RawValue>,
}

impl PartialEq for CommandRecord {
    fn eq(&self, other: &Self) -> bool {
        (self.kind, self.timestamp_ms, self.payload.get())
            == (other.kind, other.timestamp_ms, other.payload.get())
    }
}

/// A normal entry's payload: the records of one sequencer group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RaftCommand {
    /// Chosen by the leader's sequencer for its group; it identifies the group after a
    /// leadership change (`docs/cluster.md` section 6).
    pub origin: u64,
    pub records: Vec<CommandRecord>,
}

/// What applying an entry answers: the end of the entry in the WAL, which the replies of its
/// group wait for (the committed offset once it is applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RaftReply {
    pub end_offset: u64,
}

/// Where a node is reached: by the other nodes, and by clients it redirects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NodeAddr {
    pub raft_addr: String,
    pub client_addr: String,
    /// The data directory the cluster knows this node by (`raft/identity`'s incarnation), once
    /// the leader has bound it (`super::incarnation`). A node that presents another one was
    /// wiped or replaced, and is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<String>,
}

/// A snapshot is a checkpoint file (`docs/cluster.md` section 7), never a buffer in memory.
#[derive(Debug)]
pub struct SnapshotFile {
    pub path: PathBuf,
}

openraft::declare_raft_types!(
    /// openraft's types for rstmdb.
    pub RaftTypes:
        D = RaftCommand,
        R = RaftReply,
        NodeId = NodeId,
        Node = NodeAddr,
        Entry = openraft::Entry<RaftTypes>,
        SnapshotData = SnapshotFile,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type LogId = openraft::LogId<NodeId>;
pub type Entry = openraft::Entry<RaftTypes>;
pub type Vote = openraft::Vote<NodeId>;
pub type Membership = openraft::Membership<NodeId, NodeAddr>;
pub type StorageError = openraft::StorageError<NodeId>;
