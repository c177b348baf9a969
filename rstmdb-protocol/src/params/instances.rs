//! Params of the instance ops: CREATE_INSTANCE (§4.10), GET_INSTANCE (§4.11), LIST_INSTANCES
//! (§4.12), DELETE_INSTANCE (§4.13) and APPLY_EVENT (§4.14).

use serde::Serialize;
use serde_json::{Map, Value};

use super::FromParams;
use super::reader::ParamReader;
use crate::error::RcpError;

/// CREATE_INSTANCE params.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreateInstanceParams {
    pub machine: String,
    pub version: u32,
    /// `None`: the server generates a UUID v4.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Missing or null on the wire means `{}`.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub initial_ctx: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl FromParams for CreateInstanceParams {
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError> {
        let p = ParamReader::new(params);
        Ok(Self {
            machine: p.string("machine")?,
            version: p.u32("version")?,
            instance_id: p.opt_string("instance_id")?,
            initial_ctx: p.opt_object("initial_ctx")?.unwrap_or_default(),
            idempotency_key: p.opt_idempotency_key("idempotency_key")?,
        })
    }
}

/// GET_INSTANCE params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GetInstanceParams {
    pub instance_id: String,
}

impl FromParams for GetInstanceParams {
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError> {
        Ok(Self {
            instance_id: ParamReader::new(params).string("instance_id")?,
        })
    }
}

/// LIST_INSTANCES params.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ListInstancesParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// As sent; see [`ListInstancesParams::page_size`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
    /// Cursor: only ids greater than this, in byte order (extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl ListInstancesParams {
    pub const DEFAULT_LIMIT: u32 = 100;
    pub const MAX_LIMIT: u32 = 1000;

    /// The page size to use: `limit` (default 100), values above 1,000 treated as 1,000.
    pub fn page_size(&self) -> u32 {
        self.limit
            .unwrap_or(Self::DEFAULT_LIMIT)
            .min(Self::MAX_LIMIT)
    }

    /// How many matching instances to skip after `after` is applied (default 0).
    pub fn skip(&self) -> u32 {
        self.offset.unwrap_or(0)
    }
}

impl FromParams for ListInstancesParams {
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError> {
        let p = ParamReader::new(params);
        Ok(Self {
            machine: p.opt_string("machine")?,
            state: p.opt_string("state")?,
            limit: p.opt_u32("limit")?,
            offset: p.opt_u32("offset")?,
            after: p.opt_string("after")?,
        })
    }
}

/// DELETE_INSTANCE params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeleteInstanceParams {
    pub instance_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl FromParams for DeleteInstanceParams {
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError> {
        let p = ParamReader::new(params);
        Ok(Self {
            instance_id: p.string("instance_id")?,
            idempotency_key: p.opt_idempotency_key("idempotency_key")?,
        })
    }
}

/// APPLY_EVENT params.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApplyEventParams {
    pub instance_id: String,
    pub event: String,
    /// `None` when absent or null; the record and events then carry `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_wal_offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl FromParams for ApplyEventParams {
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError> {
        let p = ParamReader::new(params);
        Ok(Self {
            instance_id: p.string("instance_id")?,
            event: p.string("event")?,
            payload: p.opt_object("payload")?,
            expected_state: p.opt_string("expected_state")?,
            expected_wal_offset: p.opt_u64("expected_wal_offset")?,
            event_id: p.opt_string("event_id")?,
            idempotency_key: p.opt_idempotency_key("idempotency_key")?,
        })
    }
}
