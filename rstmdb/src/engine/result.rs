//! Op results, typed. Each serialises to its spec result object (§4.7–§4.14, §4.23).

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// PUT_MACHINE (§4.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PutMachineResult {
    pub machine: String,
    pub version: u32,
    pub stored_checksum: String,
    pub created: bool,
}

/// CREATE_INSTANCE (§4.10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateInstanceResult {
    pub instance_id: String,
    pub state: String,
    pub wal_offset: u64,
    pub applied: bool,
}

/// APPLY_EVENT (§4.14).
#[derive(Debug, Clone, Serialize)]
pub struct ApplyEventResult {
    pub from_state: String,
    pub to_state: String,
    /// The context after the merge.
    pub ctx: Box<RawValue>,
    pub wal_offset: u64,
    pub applied: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// DELETE_INSTANCE (§4.13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeleteInstanceResult {
    pub instance_id: String,
    /// Always true.
    pub deleted: bool,
    pub wal_offset: u64,
    pub applied: bool,
}

/// FLUSH_ALL (§4.23).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlushAllResult {
    /// Always true.
    pub flushed: bool,
    /// Live (non-deleted) instances removed.
    pub instances_removed: u64,
    /// (machine, version) pairs removed.
    pub machines_removed: u64,
}

/// The result of any write command.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum OpResult {
    PutMachine(PutMachineResult),
    CreateInstance(CreateInstanceResult),
    ApplyEvent(ApplyEventResult),
    DeleteInstance(DeleteInstanceResult),
    FlushAll(FlushAllResult),
}

/// GET_MACHINE (§4.8).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GetMachineResult {
    /// The normalised definition (§7.2).
    pub definition: Value,
    pub checksum: String,
}

/// LIST_MACHINES (§4.9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListMachinesResult {
    pub items: Vec<MachineVersions>,
}

/// One LIST_MACHINES item: a name and its versions in ascending order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineVersions {
    pub machine: String,
    pub versions: Vec<u32>,
}

/// GET_INSTANCE (§4.11).
#[derive(Debug, Clone, Serialize)]
pub struct InstanceView {
    pub instance_id: String,
    pub machine: String,
    pub version: u32,
    pub state: String,
    pub ctx: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event_id: Option<String>,
    pub last_wal_offset: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One LIST_INSTANCES entry (§4.12): GET_INSTANCE's values without ctx.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceSummary {
    pub id: String,
    pub machine: String,
    pub version: u32,
    pub state: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_wal_offset: u64,
}

/// LIST_INSTANCES (§4.12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListInstancesResult {
    pub instances: Vec<InstanceSummary>,
    /// Matching instances, ignoring `after`, `offset` and `limit`.
    pub total: u64,
    pub has_more: bool,
}

/// The LIST_INSTANCES params (§4.12), already type-checked by the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListInstancesQuery {
    pub machine: Option<String>,
    pub state: Option<String>,
    /// Above [`MAX_LIST_LIMIT`] counts as [`MAX_LIST_LIMIT`]; 0 gives an empty page.
    pub limit: u32,
    pub offset: u32,
    pub after: Option<String>,
}

/// The largest LIST_INSTANCES page (§4.12).
pub const MAX_LIST_LIMIT: u32 = 1_000;

impl Default for ListInstancesQuery {
    fn default() -> Self {
        ListInstancesQuery {
            machine: None,
            state: None,
            limit: 100,
            offset: 0,
            after: None,
        }
    }
}

/// The live instance count of one (machine, version, state), for LIST totals and STATS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateCount {
    pub machine: String,
    pub version: u32,
    pub state: String,
    pub count: u64,
}
