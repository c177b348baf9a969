//! Params of SNAPSHOT_INSTANCE (§4.16), WAL_READ (§4.17) and COMPACT (§4.19).

use serde::Serialize;
use serde_json::{Map, Value};

use super::FromParams;
use super::reader::ParamReader;
use crate::error::RcpError;

/// SNAPSHOT_INSTANCE params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotInstanceParams {
    pub instance_id: String,
}

impl FromParams for SnapshotInstanceParams {
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError> {
        Ok(Self {
            instance_id: ParamReader::new(params).string("instance_id")?,
        })
    }
}

/// WAL_READ params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WalReadParams {
    /// Records at or after this offset; 0 means from the oldest retained record.
    pub from_offset: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

impl WalReadParams {
    pub const DEFAULT_LIMIT: u64 = 1000;

    /// The most records to return (default 1,000; 0 returns none).
    pub fn max_records(&self) -> u64 {
        self.limit.unwrap_or(Self::DEFAULT_LIMIT)
    }
}

impl FromParams for WalReadParams {
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError> {
        let p = ParamReader::new(params);
        Ok(Self {
            from_offset: p.u64("from_offset")?,
            limit: p.opt_u64("limit")?,
        })
    }
}

/// COMPACT params.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CompactParams {
    /// Write a checkpoint even if nothing changed since the last one (default false).
    pub force_snapshot: bool,
}

impl FromParams for CompactParams {
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError> {
        Ok(Self {
            force_snapshot: ParamReader::new(params)
                .opt_bool("force_snapshot")?
                .unwrap_or(false),
        })
    }
}
