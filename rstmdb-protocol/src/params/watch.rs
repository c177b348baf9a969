//! Params of WATCH_INSTANCE (§4.20), WATCH_ALL (§4.21) and UNWATCH (§4.22).

use serde::Serialize;
use serde_json::{Map, Value};

use super::FromParams;
use super::reader::ParamReader;
use crate::error::RcpError;

/// WATCH_INSTANCE params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchInstanceParams {
    pub instance_id: String,
    /// When false, events carry no `ctx` (default true).
    pub include_ctx: bool,
    /// Replay the instance's transitions from this offset first (extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_offset: Option<u64>,
}

impl FromParams for WatchInstanceParams {
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError> {
        let p = ParamReader::new(params);
        Ok(Self {
            instance_id: p.string("instance_id")?,
            include_ctx: p.opt_bool("include_ctx")?.unwrap_or(true),
            from_offset: p.opt_u64("from_offset")?,
        })
    }
}

/// WATCH_ALL params. An empty filter list means "no constraint"; the lists combine with AND.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchAllParams {
    pub include_ctx: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_offset: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub machines: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_states: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to_states: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
}

impl Default for WatchAllParams {
    fn default() -> Self {
        Self {
            include_ctx: true,
            from_offset: None,
            machines: Vec::new(),
            from_states: Vec::new(),
            to_states: Vec::new(),
            events: Vec::new(),
        }
    }
}

impl FromParams for WatchAllParams {
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError> {
        let p = ParamReader::new(params);
        Ok(Self {
            include_ctx: p.opt_bool("include_ctx")?.unwrap_or(true),
            from_offset: p.opt_u64("from_offset")?,
            machines: p.opt_string_list("machines")?,
            from_states: p.opt_string_list("from_states")?,
            to_states: p.opt_string_list("to_states")?,
            events: p.opt_string_list("events")?,
        })
    }
}

/// UNWATCH params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnwatchParams {
    pub subscription_id: String,
}

impl FromParams for UnwatchParams {
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError> {
        Ok(Self {
            subscription_id: ParamReader::new(params).string("subscription_id")?,
        })
    }
}
