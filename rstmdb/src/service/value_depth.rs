//! A nesting limit for the JSON values the database stores and sends back: `initial_ctx`,
//! `payload` and machine definitions (with their `meta`).
//!
//! Why: a request may nest up to serde_json's parse limit (128 levels), but a stored value is
//! later sent inside deeper envelopes — WAL_READ puts a ctx five levels down
//! (`response.result.records[i].entry.ctx`). Any client whose JSON parser has the common
//! 128-level limit (serde_json's default, our own client included) then fails to read that
//! response and drops the connection, so one accepted write would make WAL_READ unusable for
//! everyone. Capping stored values far below that keeps every response readable.

use rstmdb_protocol::RcpError;
use rstmdb_protocol::params::OpParams;
use serde_json::{Map, Value};

/// Most levels of objects and arrays a stored value may nest (`{"a":1}` is one level).
pub const MAX_VALUE_DEPTH: usize = 64;

/// Refuses an op whose stored values nest deeper than [`MAX_VALUE_DEPTH`], with
/// `BAD_REQUEST`, reason `invalid_param`, naming the param, its type and `max_depth`.
pub(crate) fn check_params(params: &OpParams) -> Result<(), RcpError> {
    match params {
        OpParams::PutMachine(p) => check("definition", "object", &p.definition),
        OpParams::CreateInstance(p) => check_map("initial_ctx", &p.initial_ctx),
        OpParams::ApplyEvent(p) => match &p.payload {
            Some(payload) => check_map("payload", payload),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

fn check_map(param: &str, map: &Map<String, Value>) -> Result<(), RcpError> {
    // The object itself is the first level.
    let deepest = 1 + map.values().map(depth).max().unwrap_or(0);
    refuse_over_limit(param, "object or null", deepest)
}

fn check(param: &str, expected: &str, value: &Value) -> Result<(), RcpError> {
    refuse_over_limit(param, expected, depth(value))
}

fn refuse_over_limit(param: &str, expected: &str, deepest: usize) -> Result<(), RcpError> {
    if deepest <= MAX_VALUE_DEPTH {
        return Ok(());
    }
    Err(RcpError::bad_request(
        "invalid_param",
        format!("invalid param {param}: nested {deepest} levels deep; at most {MAX_VALUE_DEPTH}"),
    )
    .with_detail("param", param)
    .with_detail("expected", expected)
    .with_detail("max_depth", MAX_VALUE_DEPTH))
}

/// Levels of objects and arrays in `value` (0 for a scalar), without recursion.
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(value, 0usize)];
    while let Some((value, above)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Object(map) => Box::new(map.values()),
            Value::Array(items) => Box::new(items.iter()),
            _ => continue,
        };
        let level = above + 1;
        deepest = deepest.max(level);
        pending.extend(children.map(|child| (child, level)));
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> Value {
        (0..levels).fold(json!(1), |inner, _| json!({"a": inner}))
    }

    #[test]
    fn depth_counts_objects_and_arrays_but_not_scalars() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!({})), 1);
        assert_eq!(depth(&json!([[], {"a": [1]}])), 3);
        assert_eq!(depth(&nested(64)), 64);
    }

    #[test]
    fn a_ctx_at_the_limit_passes_and_one_level_more_is_invalid_param() {
        let at_limit = match nested(MAX_VALUE_DEPTH) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        assert!(check_map("initial_ctx", &at_limit).is_ok());
        let over = match nested(MAX_VALUE_DEPTH + 1) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let error = check_map("initial_ctx", &over).expect_err("too deep");
        assert_eq!(error.reason(), Some("invalid_param"));
        let details = error.details.unwrap_or_default();
        assert_eq!(details["param"], json!("initial_ctx"));
        assert_eq!(details["expected"], json!("object or null"));
        assert_eq!(details["max_depth"], json!(MAX_VALUE_DEPTH));
    }
}
