//! Results of the connection, server and machine ops (§4.1–§4.9).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// HELLO result (§4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloResult {
    pub protocol_version: u16,
    pub wire_mode: String,
    pub server_name: String,
    pub server_version: String,
    pub features: Vec<String>,
}

/// AUTH result (§4.2): `{"authenticated": true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResult {
    pub authenticated: bool,
}

/// PING result (§4.3): `{"pong": true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingResult {
    pub pong: bool,
}

/// BYE result (§4.4): `{"goodbye": true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByeResult {
    pub goodbye: bool,
}

/// INFO result (§4.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoResult {
    pub server_name: String,
    pub server_version: String,
    pub protocol_version: u16,
    pub features: Vec<String>,
    pub max_frame_bytes: u64,
    pub max_batch_ops: u32,
}

/// REPLICATION_STATUS result (§4.6). A standalone server sends only `role`; the fields of
/// other roles are reserved and kept in `other` when a server sends them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicationStatusResult {
    pub role: String,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// PUT_MACHINE result (§4.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutMachineResult {
    pub machine: String,
    pub version: u32,
    /// 8 lowercase hex digits (§6.7).
    pub stored_checksum: String,
    /// True if this call stored the definition.
    pub created: bool,
}

/// GET_MACHINE result (§4.8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetMachineResult {
    /// The normalised definition (§7.2).
    pub definition: Map<String, Value>,
    pub checksum: String,
}

/// LIST_MACHINES result (§4.9): names in byte order, versions ascending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMachinesResult {
    pub items: Vec<MachineVersions>,
}

/// One machine name and its versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineVersions {
    pub machine: String,
    pub versions: Vec<u32>,
}
