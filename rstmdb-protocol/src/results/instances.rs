//! Results of the instance ops and BATCH (§4.10–§4.15).
//!
//! The results that carry an instance's `ctx` are generic over how it is held: a client reads
//! it as a JSON object (the default), the server hands out the text it keeps (`Box<RawValue>`)
//! without parsing it again. The JSON on the wire is the same.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::RcpError;

/// CREATE_INSTANCE result (§4.10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateInstanceResult {
    pub instance_id: String,
    pub state: String,
    pub wal_offset: u64,
    /// False for an idempotent replay (extension).
    pub applied: bool,
}

/// GET_INSTANCE result (§4.11).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetInstanceResult<Ctx = Map<String, Value>> {
    pub instance_id: String,
    pub machine: String,
    pub version: u32,
    pub state: String,
    pub ctx: Ctx,
    /// Omitted if the latest apply carried no `event_id`, or there was no apply yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_id: Option<String>,
    pub last_wal_offset: u64,
    /// Epoch milliseconds.
    pub created_at: i64,
    /// Epoch milliseconds.
    pub updated_at: i64,
}

/// LIST_INSTANCES result (§4.12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListInstancesResult {
    pub instances: Vec<InstanceSummary>,
    /// Instances matching `machine` and `state`, ignoring paging.
    pub total: u64,
    pub has_more: bool,
}

/// One LIST_INSTANCES entry; no ctx.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSummary {
    pub id: String,
    pub machine: String,
    pub version: u32,
    pub state: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_wal_offset: u64,
}

/// DELETE_INSTANCE result (§4.13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteInstanceResult {
    pub instance_id: String,
    /// Always true.
    pub deleted: bool,
    pub wal_offset: u64,
    /// True if this call wrote the delete record (extension).
    pub applied: bool,
}

/// APPLY_EVENT result (§4.14).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyEventResult<Ctx = Map<String, Value>> {
    pub from_state: String,
    pub to_state: String,
    /// The context after the merge.
    pub ctx: Ctx,
    pub wal_offset: u64,
    /// False for an idempotent replay.
    pub applied: bool,
    /// Present only if the applied request carried an `event_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// BATCH result (§4.15): one entry per sub-op, in order. Generic over how a sub-op's result is
/// held, like [`ApplyEventResult`]: a client reads JSON objects, the server writes its typed
/// results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchResult<R = Map<String, Value>> {
    pub results: Vec<BatchItemResult<R>>,
}

/// Whether one BATCH sub-op succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchItemStatus {
    Ok,
    Error,
}

/// One BATCH sub-op outcome. Both `result` and `error` are always sent; one is null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchItemResult<R = Map<String, Value>> {
    pub status: BatchItemStatus,
    pub result: Option<R>,
    pub error: Option<RcpError>,
}

impl<R> BatchItemResult<R> {
    pub fn ok(result: R) -> Self {
        Self {
            status: BatchItemStatus::Ok,
            result: Some(result),
            error: None,
        }
    }

    /// A failed sub-op: `error` is exactly what the op alone would get (no `index`/`op`).
    pub fn error(error: RcpError) -> Self {
        Self {
            status: BatchItemStatus::Error,
            result: None,
            error: Some(error),
        }
    }
}
