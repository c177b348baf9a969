//! What nodes say to each other (`docs/cluster.md` section 9): JSON messages in RCP frames
//! (`docs/protocol.md` §2, CRC-checked, size-limited), on a connection that opens with a
//! [`Hello`] each way.

use super::types::{NodeId, RaftTypes};
use openraft::error::RaftError;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, VoteRequest, VoteResponse};
use rstmdb_protocol::{ErrorCode, Op};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The version of these messages; a node refuses a peer that speaks another.
pub const PROTOCOL_VERSION: u32 = 1;

/// The first frame on every node-to-node connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    pub protocol: u32,
    /// Who is calling.
    pub from: NodeId,
    /// Whom the caller means to reach: a node reached at another node's address refuses.
    pub to: NodeId,
    /// Offsets are only the same on every node when segments are the same size (section 3).
    pub segment_size_bytes: u64,
    /// The caller's challenge, when it holds the cluster's shared secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Where clients reach the caller (`cluster.client_addr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    /// The caller's data directory (`super::incarnation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<String>,
    /// The callee's data directory as the caller's membership knows it, if bound: a callee
    /// with another one was wiped, and says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_incarnation: Option<String>,
    /// The caller's cluster, once it knows it (`super::identity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// The caller's `storage.fsync_policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsync_policy: Option<String>,
}

/// The caller's answer to a [`HelloReply::Challenge`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    pub proof: String,
}

/// The answer to a [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HelloReply {
    /// Requests may follow.
    Welcome {
        node_id: NodeId,
        /// Where clients reach the callee (`cluster.client_addr`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_addr: Option<String>,
        /// The callee's data directory (`super::incarnation`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incarnation: Option<String>,
        /// The callee's cluster, once it knows it (`super::identity`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster_id: Option<String>,
        /// The callee's `storage.fsync_policy`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fsync_policy: Option<String>,
    },
    /// The callee holds the shared secret: its answer to the caller's nonce, and its own
    /// nonce for the caller to answer with a [`Proof`]; `Welcome` or `Refused` follows.
    Challenge {
        node_id: NodeId,
        proof: String,
        nonce: String,
    },
    Refused {
        reason: String,
    },
}

impl Hello {
    /// Why `self`, received by node `me` with `segment_size_bytes` (and a shared secret or
    /// not), must be refused.
    pub fn refusal(&self, me: NodeId, segment_size_bytes: u64, has_secret: bool) -> Option<String> {
        if self.protocol != PROTOCOL_VERSION {
            return Some(format!(
                "node {} speaks node protocol {}, this node {PROTOCOL_VERSION}",
                self.from, self.protocol
            ));
        }
        if self.to != me {
            return Some(format!(
                "node {} meant to reach node {}, but this address is node {me}'s",
                self.from, self.to
            ));
        }
        if self.segment_size_bytes != segment_size_bytes {
            return Some(format!(
                "node {} writes WAL segments of {} bytes, this node {segment_size_bytes}: \
                 offsets would differ between them (set the same storage.wal_segment_size_mb \
                 on every node)",
                self.from, self.segment_size_bytes
            ));
        }
        match (has_secret, self.nonce.is_some()) {
            (true, false) => Some(format!(
                "node {} offers no proof of the shared secret this node requires \
                 (set the same cluster.secret_file on every node)",
                self.from
            )),
            (false, true) => Some(format!(
                "node {} uses a shared secret and this node has none \
                 (set the same cluster.secret_file on every node)",
                self.from
            )),
            _ => None,
        }
    }
}

/// A request after the hello.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RaftRequest {
    AppendEntries(AppendEntriesRequest<RaftTypes>),
    Vote(VoteRequest<NodeId>),
    /// A client connection's writes, in order, relayed by a node that does not lead (section
    /// 9, "Forward"); at most `forward::MAX_FORWARD_BATCH` of them.
    Forward(Vec<ForwardedRequest>),
    /// The entry a linearizable read on another node must wait for (section 8).
    ReadIndex,
    /// From the leader handing its lead over: campaign now (`super::transfer`).
    TransferLeader,
}

/// A client request a follower relays to the leader: the client's own id, op and params. The
/// follower has authenticated the client; the leader runs it as a local request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardedRequest {
    pub id: String,
    pub op: Op,
    pub params: Map<String, Value>,
}

/// The leader's answer to a forwarded request: its response, as it would have sent it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardedResponse {
    pub payload: String,
    pub error: Option<ErrorCode>,
}

/// Its answer: openraft's result, passed back whole.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RaftResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// One response per forwarded request, in order.
    Forward(Vec<ForwardedResponse>),
    /// The read index, or why this node cannot give one (it does not lead, or has no quorum).
    ReadIndex(Result<Option<u64>, String>),
    /// The campaign began, or why it could not.
    TransferLeader(Result<(), String>),
    /// The request could not be read or is not one this node serves.
    Refused {
        reason: String,
    },
}
