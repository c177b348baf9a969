//! BATCH params and their structural validation (§4.15).
//!
//! The whole structure is checked before anything runs, in this order, first failure wins:
//! 1. `ops` missing, null or not an array;
//! 2. more than 100 entries (`limit`);
//! 3. per entry, in index order: not an object; `op` missing, not a string or not an allowed
//!    sub-op; `params` neither object nor null (`index`, plus `op` when it is a string);
//! 4. `mode` present, not null and not `"best_effort"`/`"atomic"`.
//!
//! Sub-op params are NOT parsed here: a bad sub-op param is that sub-op's own error, so the
//! executor parses each entry with [`crate::params::OpParams::parse`] when its turn comes.

use serde::Serialize;
use serde_json::{Map, Value};

use super::FromParams;
use crate::error::RcpError;
use crate::limits::MAX_BATCH_OPS;
use crate::ops::Op;

/// How a batch runs (§4.15, §6.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchMode {
    /// Each sub-op runs and commits on its own; failures do not stop the rest.
    #[default]
    BestEffort,
    /// All sub-ops or none, committed as one WAL unit.
    Atomic,
}

impl BatchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BestEffort => "best_effort",
            Self::Atomic => "atomic",
        }
    }
}

/// One structurally valid entry: an allowed sub-op and its still unchecked params.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchOp {
    pub op: Op,
    /// `{}` when the entry's params were missing or null.
    pub params: Map<String, Value>,
}

/// BATCH params.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct BatchParams {
    pub mode: BatchMode,
    pub ops: Vec<BatchOp>,
}

impl FromParams for BatchParams {
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError> {
        let Some(Value::Array(entries)) = params.get("ops") else {
            return Err(RcpError::batch_invalid("ops must be an array"));
        };
        if entries.len() > MAX_BATCH_OPS {
            return Err(RcpError::batch_invalid(format!(
                "a batch holds at most {MAX_BATCH_OPS} ops, got {}",
                entries.len()
            ))
            .with_detail("limit", MAX_BATCH_OPS));
        }
        let ops = entries
            .iter()
            .enumerate()
            .map(|(index, entry)| check_entry(index, entry))
            .collect::<Result<Vec<_>, _>>()?;
        let mode = match params.get("mode") {
            None | Some(Value::Null) => BatchMode::BestEffort,
            Some(Value::String(mode)) if mode == "best_effort" => BatchMode::BestEffort,
            Some(Value::String(mode)) if mode == "atomic" => BatchMode::Atomic,
            Some(_) => {
                return Err(RcpError::batch_invalid(
                    "mode must be \"best_effort\" or \"atomic\"",
                ));
            }
        };
        Ok(Self { mode, ops })
    }
}

fn check_entry(index: usize, entry: &Value) -> Result<BatchOp, RcpError> {
    let invalid = |message: &str| {
        RcpError::batch_invalid(format!("batch op {index}: {message}")).with_detail("index", index)
    };
    let Some(entry) = entry.as_object() else {
        return Err(invalid("must be an object"));
    };
    let Some(name) = entry.get("op").and_then(Value::as_str) else {
        return Err(invalid("op must be a string"));
    };
    let invalid = |message: &str| invalid(message).with_detail("op", name);
    let op = match name.parse::<Op>() {
        Ok(op) if op.allowed_in_batch() => op,
        _ => return Err(invalid("op is not allowed in a batch")),
    };
    let params = match entry.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(params)) => params.clone(),
        Some(_) => return Err(invalid("params must be an object or null")),
    };
    Ok(BatchOp { op, params })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(params: Value) -> Result<BatchParams, RcpError> {
        BatchParams::from_params(params.as_object().expect("test params are objects"))
    }

    fn details(params: Value) -> Value {
        let error = parse(params).expect_err("batch should be invalid");
        Value::Object(error.details.unwrap_or_default())
    }

    fn get(i: u32) -> Value {
        json!({"op": "GET_INSTANCE", "params": {"instance_id": format!("i-{i}")}})
    }

    #[test]
    fn a_valid_batch_keeps_entries_in_order_with_unchecked_params() {
        let batch = parse(json!({"mode": "atomic", "ops": [
            {"op": "GET_MACHINE", "params": {"machine": 5}},
            {"op": "APPLY_EVENT"},
            {"op": "PUT_MACHINE", "params": null},
        ]}))
        .unwrap();
        assert_eq!(batch.mode, BatchMode::Atomic);
        let ops: Vec<Op> = batch.ops.iter().map(|entry| entry.op).collect();
        assert_eq!(ops, [Op::GetMachine, Op::ApplyEvent, Op::PutMachine]);
        assert_eq!(batch.ops[0].params.get("machine"), Some(&json!(5)));
        assert!(batch.ops[1].params.is_empty());
    }

    #[test]
    fn mode_defaults_to_best_effort_and_may_be_null() {
        assert_eq!(
            parse(json!({"ops": []})).unwrap().mode,
            BatchMode::BestEffort
        );
        assert_eq!(
            parse(json!({"ops": [], "mode": null})).unwrap().mode,
            BatchMode::BestEffort
        );
    }

    #[test]
    fn ops_missing_null_or_not_an_array_is_batch_invalid_without_index() {
        for params in [
            json!({}),
            json!({"ops": null}),
            json!({"ops": {"op": "PING"}}),
        ] {
            assert_eq!(details(params), json!({"reason": "batch_invalid"}));
        }
    }

    #[test]
    fn more_than_100_entries_reports_the_limit_before_looking_at_entries() {
        let ops: Vec<Value> = (0..101).map(|_| json!(7)).collect();
        assert_eq!(
            details(json!({"ops": ops, "mode": "bogus"})),
            json!({"reason": "batch_invalid", "limit": 100})
        );
        let ops: Vec<Value> = (0..100).map(get).collect();
        assert_eq!(parse(json!({"ops": ops})).unwrap().ops.len(), 100);
    }

    #[test]
    fn entry_problems_carry_index_and_op_when_readable() {
        let cases = [
            (
                json!([get(0), 5]),
                json!({"reason": "batch_invalid", "index": 1}),
            ),
            (
                json!([{"params": {}}]),
                json!({"reason": "batch_invalid", "index": 0}),
            ),
            (
                json!([{"op": 3}]),
                json!({"reason": "batch_invalid", "index": 0}),
            ),
            (
                json!([get(0), get(1), {"op": "BATCH", "params": {}}]),
                json!({"reason": "batch_invalid", "index": 2, "op": "BATCH"}),
            ),
            (
                json!([{"op": "NO_SUCH_OP"}]),
                json!({"reason": "batch_invalid", "index": 0, "op": "NO_SUCH_OP"}),
            ),
            (
                json!([{"op": "GET_INSTANCE", "params": []}]),
                json!({"reason": "batch_invalid", "index": 0, "op": "GET_INSTANCE"}),
            ),
        ];
        for (ops, expected) in cases {
            assert_eq!(details(json!({"ops": ops})), expected);
        }
    }

    #[test]
    fn the_first_bad_entry_wins_and_entries_are_checked_before_mode() {
        let ops = json!([get(0), {"op": "PING"}, 5]);
        assert_eq!(
            details(json!({"ops": ops, "mode": "bogus"})),
            json!({"reason": "batch_invalid", "index": 1, "op": "PING"})
        );
    }

    #[test]
    fn unknown_or_non_string_mode_is_batch_invalid_without_index() {
        for mode in [json!("parallel"), json!("ATOMIC"), json!(1), json!(true)] {
            assert_eq!(
                details(json!({"ops": [get(0)], "mode": mode})),
                json!({"reason": "batch_invalid"})
            );
        }
    }
}
