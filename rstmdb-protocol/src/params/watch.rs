//! Params of WATCH_INSTANCE (§4.20), WATCH_ALL (§4.21) and UNWATCH (§4.22).

use serde::Serialize;
use serde_json::{Map, Value};

use super::FromParams;
use super::reader::ParamReader;
use crate::error::RcpError;
use crate::limits::{MAX_WATCH_FILTER_ENTRIES, MAX_WATCH_NAME_BYTES};

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
        let instance_id = p.string("instance_id")?;
        if instance_id.len() > MAX_WATCH_NAME_BYTES {
            return Err(too_long("instance_id", instance_id.len(), None));
        }
        Ok(Self {
            instance_id,
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
            machines: filter_list(&p, "machines")?,
            from_states: filter_list(&p, "from_states")?,
            to_states: filter_list(&p, "to_states")?,
            events: filter_list(&p, "events")?,
        })
    }
}

/// A WATCH_ALL filter list within its bounds: what a subscription keeps for its lifetime and
/// checks against every transition.
fn filter_list(p: &ParamReader<'_>, name: &str) -> Result<Vec<String>, RcpError> {
    let list = p.opt_string_list(name)?;
    if list.len() > MAX_WATCH_FILTER_ENTRIES {
        return Err(RcpError::invalid_param(
            name,
            &format!("a list of at most {MAX_WATCH_FILTER_ENTRIES} strings"),
        )
        .with_detail("size", list.len())
        .with_detail("limit", MAX_WATCH_FILTER_ENTRIES));
    }
    if let Some(index) = list.iter().position(|s| s.len() > MAX_WATCH_NAME_BYTES) {
        return Err(too_long(name, list[index].len(), Some(index)));
    }
    Ok(list)
}

fn too_long(param: &str, size_bytes: usize, index: Option<usize>) -> RcpError {
    let error = RcpError::invalid_param(
        param,
        &format!("strings of at most {MAX_WATCH_NAME_BYTES} bytes"),
    )
    .with_detail("size", size_bytes)
    .with_detail("limit", MAX_WATCH_NAME_BYTES);
    match index {
        Some(index) => error.with_detail("index", index),
        None => error,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_all(params: Value) -> Result<WatchAllParams, RcpError> {
        WatchAllParams::from_params(params.as_object().expect("an object"))
    }

    fn details(error: RcpError) -> Value {
        Value::Object(error.details.unwrap_or_default())
    }

    #[test]
    fn filter_lists_hold_at_most_256_entries_of_at_most_1_kib() {
        let most: Vec<String> = (0..256).map(|n| format!("m{n}")).collect();
        let longest = "s".repeat(1024);
        let ok = parse_all(json!({"machines": most, "events": [longest]})).unwrap();
        assert_eq!((ok.machines.len(), ok.events[0].len()), (256, 1024));

        let too_many: Vec<String> = (0..257).map(|n| format!("m{n}")).collect();
        let error = parse_all(json!({"machines": too_many})).unwrap_err();
        assert_eq!(
            details(error),
            json!({"reason": "invalid_param", "param": "machines",
                   "expected": "a list of at most 256 strings", "size": 257, "limit": 256})
        );
        let error = parse_all(json!({"to_states": ["ok", "s".repeat(1025)]})).unwrap_err();
        assert_eq!(
            details(error),
            json!({"reason": "invalid_param", "param": "to_states",
                   "expected": "strings of at most 1024 bytes", "size": 1025, "limit": 1024,
                   "index": 1})
        );
    }

    #[test]
    fn a_watched_instance_id_is_at_most_1_kib() {
        let parse = |id: String| {
            WatchInstanceParams::from_params(json!({"instance_id": id}).as_object().unwrap())
        };
        assert!(parse("i".repeat(1024)).is_ok());
        let error = parse("i".repeat(1025)).unwrap_err();
        assert_eq!(error.detail("limit"), Some(&json!(1024)));
        assert_eq!(error.detail("param"), Some(&json!("instance_id")));
    }
}
