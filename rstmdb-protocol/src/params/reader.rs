//! Typed access to a `params` object under the rules of §4.0.
//!
//! Missing and `null` are the same thing. A required param that is absent gives
//! `missing_param`; a present value of the wrong JSON type or out of range gives
//! `invalid_param` whose `expected` is the Type column of the op's table. Integers must be
//! written without fraction or exponent: serde_json stores `1.0` and `1e3` as floats, and
//! `Value::as_u64` refuses those.

use serde_json::{Map, Value};

use crate::error::RcpError;
use crate::limits::MAX_IDEMPOTENCY_KEY_BYTES;

/// `expected` texts, exactly as the spec's Type columns spell them.
pub(crate) mod expected {
    pub const U16: &str = "u16";
    pub const U32: &str = "u32";
    pub const U64: &str = "u64";
    pub const STRING: &str = "string";
    pub const STRING_LIST: &str = "string[]";
    pub const OBJECT_OR_NULL: &str = "object or null";
    pub const BOOL: &str = "bool";
    pub const IDEMPOTENCY_KEY_LENGTH: &str = "string of 1 to 1024 bytes";
}

/// A borrowed `params` object. Callers read params in table order so that the first problem
/// reported is the first in the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParamReader<'a> {
    params: &'a Map<String, Value>,
}

impl<'a> ParamReader<'a> {
    pub(crate) fn new(params: &'a Map<String, Value>) -> Self {
        Self { params }
    }

    /// The value, with `null` treated as absent.
    pub(crate) fn present(&self, name: &str) -> Option<&'a Value> {
        self.params.get(name).filter(|value| !value.is_null())
    }

    /// The value of a required param of any type.
    pub(crate) fn required(&self, name: &str) -> Result<&'a Value, RcpError> {
        self.present(name)
            .ok_or_else(|| RcpError::missing_param(name))
    }

    pub(crate) fn string(&self, name: &str) -> Result<String, RcpError> {
        as_string(name, self.required(name)?)
    }

    pub(crate) fn opt_string(&self, name: &str) -> Result<Option<String>, RcpError> {
        self.present(name).map(|v| as_string(name, v)).transpose()
    }

    pub(crate) fn u16(&self, name: &str) -> Result<u16, RcpError> {
        as_uint(name, self.required(name)?, expected::U16)
    }

    pub(crate) fn u32(&self, name: &str) -> Result<u32, RcpError> {
        as_uint(name, self.required(name)?, expected::U32)
    }

    pub(crate) fn opt_u32(&self, name: &str) -> Result<Option<u32>, RcpError> {
        self.present(name)
            .map(|v| as_uint(name, v, expected::U32))
            .transpose()
    }

    pub(crate) fn u64(&self, name: &str) -> Result<u64, RcpError> {
        as_uint(name, self.required(name)?, expected::U64)
    }

    pub(crate) fn opt_u64(&self, name: &str) -> Result<Option<u64>, RcpError> {
        self.present(name)
            .map(|v| as_uint(name, v, expected::U64))
            .transpose()
    }

    pub(crate) fn opt_bool(&self, name: &str) -> Result<Option<bool>, RcpError> {
        self.present(name)
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| RcpError::invalid_param(name, expected::BOOL))
            })
            .transpose()
    }

    /// An optional `string[]`; absent means empty.
    pub(crate) fn opt_string_list(&self, name: &str) -> Result<Vec<String>, RcpError> {
        let Some(value) = self.present(name) else {
            return Ok(Vec::new());
        };
        let invalid = || RcpError::invalid_param(name, expected::STRING_LIST);
        value
            .as_array()
            .ok_or_else(invalid)?
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect()
    }

    /// An optional `object or null`; `None` when absent or null.
    pub(crate) fn opt_object(&self, name: &str) -> Result<Option<Map<String, Value>>, RcpError> {
        self.present(name)
            .map(|v| {
                v.as_object()
                    .cloned()
                    .ok_or_else(|| RcpError::invalid_param(name, expected::OBJECT_OR_NULL))
            })
            .transpose()
    }

    /// An optional idempotency key: a string of 1 to 1,024 UTF-8 bytes (§6.2).
    pub(crate) fn opt_idempotency_key(&self, name: &str) -> Result<Option<String>, RcpError> {
        let Some(key) = self.opt_string(name)? else {
            return Ok(None);
        };
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
            return Err(RcpError::invalid_param(
                name,
                expected::IDEMPOTENCY_KEY_LENGTH,
            ));
        }
        Ok(Some(key))
    }
}

fn as_string(name: &str, value: &Value) -> Result<String, RcpError> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| RcpError::invalid_param(name, expected::STRING))
}

fn as_uint<T: TryFrom<u64>>(name: &str, value: &Value, expected: &str) -> Result<T, RcpError> {
    value
        .as_u64()
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| RcpError::invalid_param(name, expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn reason(result: Result<impl std::fmt::Debug, RcpError>) -> (String, Value) {
        let error = result.expect_err("should fail");
        (
            error.reason().unwrap_or_default().to_owned(),
            error.detail("expected").cloned().unwrap_or(Value::Null),
        )
    }

    #[test]
    fn null_counts_as_missing() {
        let p = params(json!({"a": null}));
        let reader = ParamReader::new(&p);
        assert_eq!(reason(reader.string("a")).0, "missing_param");
        assert_eq!(reader.opt_string("a").unwrap(), None);
    }

    #[test]
    fn integers_with_fraction_or_exponent_are_refused() {
        let p = params(json!({"one": 1, "float": 1.0, "exp": 1e3, "neg": -1}));
        let p_exp: Map<String, Value> = serde_json::from_str(r#"{"exp":1e3,"float":1.0}"#).unwrap();
        let reader = ParamReader::new(&p);
        assert_eq!(reader.u32("one").unwrap(), 1);
        for name in ["float", "exp", "neg"] {
            assert_eq!(
                reason(reader.u32(name)),
                ("invalid_param".into(), json!("u32"))
            );
        }
        let reader = ParamReader::new(&p_exp);
        assert_eq!(reason(reader.u64("exp")).1, json!("u64"));
        assert_eq!(reason(reader.u64("float")).1, json!("u64"));
    }

    #[test]
    fn ranges_are_enforced_per_type() {
        let p =
            params(json!({"a": 65_535, "b": 65_536, "c": 4_294_967_295u64, "d": 4_294_967_296u64}));
        let reader = ParamReader::new(&p);
        assert_eq!(reader.u16("a").unwrap(), u16::MAX);
        assert_eq!(reason(reader.u16("b")).1, json!("u16"));
        assert_eq!(reader.u32("c").unwrap(), u32::MAX);
        assert_eq!(reason(reader.u32("d")).1, json!("u32"));
        assert_eq!(reader.u64("d").unwrap(), 4_294_967_296);
    }

    #[test]
    fn u64_above_its_range_is_invalid() {
        let p: Map<String, Value> = serde_json::from_str(r#"{"a":18446744073709551616}"#).unwrap();
        assert_eq!(reason(ParamReader::new(&p).u64("a")).1, json!("u64"));
    }

    #[test]
    fn string_lists_must_hold_only_strings() {
        let p = params(json!({"ok": ["a", "b"], "mixed": ["a", 1], "scalar": "a"}));
        let reader = ParamReader::new(&p);
        assert_eq!(reader.opt_string_list("ok").unwrap(), ["a", "b"]);
        assert_eq!(
            reader.opt_string_list("absent").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(reason(reader.opt_string_list("mixed")).1, json!("string[]"));
        assert_eq!(
            reason(reader.opt_string_list("scalar")).1,
            json!("string[]")
        );
    }

    #[test]
    fn idempotency_key_length_is_1_to_1024_bytes() {
        let p = params(json!({
            "empty": "", "one": "k", "max": "é".repeat(512), "over": "x".repeat(1025), "num": 5
        }));
        let reader = ParamReader::new(&p);
        assert_eq!(
            reader.opt_idempotency_key("one").unwrap().as_deref(),
            Some("k")
        );
        assert!(reader.opt_idempotency_key("max").unwrap().is_some());
        for name in ["empty", "over"] {
            assert_eq!(
                reason(reader.opt_idempotency_key(name)).1,
                json!("string of 1 to 1024 bytes")
            );
        }
        assert_eq!(reason(reader.opt_idempotency_key("num")).1, json!("string"));
    }
}
