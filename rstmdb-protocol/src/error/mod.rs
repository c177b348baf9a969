//! The error object of responses and stream errors (§3.3, §5.3).
//!
//! This file holds the struct and the constructors of the protocol layer's own errors (framing,
//! envelope, params, sizes); `semantic.rs` holds the constructors of the server's semantic
//! errors, so that every `details` shape of §5.3 is written down in one place.

mod semantic;

pub use semantic::AuthFailure;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error_code::ErrorCode;
use crate::fault::FrameFault;

/// `{"code", "message", "retryable", "details"?}` as sent in `error` (§3.3).
///
/// `details`, when present, always holds a string `reason` (§5.3). The message is for people;
/// programs look at `code` and `details`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RcpError {
    pub code: ErrorCode,
    pub message: String,
    pub retryable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Map<String, Value>>,
}

impl RcpError {
    /// An error without details; `retryable` follows from the code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            retryable: code.retryable(),
            code,
            message: message.into(),
            details: None,
        }
    }

    /// An error whose details name `reason` (§5.3).
    pub fn with_reason(code: ErrorCode, reason: &str, message: impl Into<String>) -> Self {
        Self::new(code, message).with_detail("reason", reason)
    }

    /// Adds (or replaces) one key of `details`.
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details
            .get_or_insert_with(Map::new)
            .insert(key.to_owned(), value.into());
        self
    }

    /// `details.reason`, when there is one.
    pub fn reason(&self) -> Option<&str> {
        self.details.as_ref()?.get("reason")?.as_str()
    }

    /// One key of `details`.
    pub fn detail(&self, key: &str) -> Option<&Value> {
        self.details.as_ref()?.get(key)
    }

    /// `BAD_REQUEST` with the given reason.
    pub fn bad_request(reason: &str, message: impl Into<String>) -> Self {
        Self::with_reason(ErrorCode::BadRequest, reason, message)
    }

    /// The one error sent before closing on a framing fault (§2.8).
    pub fn frame_error(fault: FrameFault) -> Self {
        Self::bad_request("frame_error", fault.to_string()).with_detail("fault", fault.as_str())
    }

    /// The payload is not JSON. `position` is serde_json's 1-based (line, column); it is `None`
    /// for an empty or whitespace-only binary payload.
    pub fn invalid_json(message: impl Into<String>, position: Option<(usize, usize)>) -> Self {
        let error = Self::bad_request("invalid_json", message);
        match position {
            Some((line, column)) => error
                .with_detail("line", line)
                .with_detail("column", column),
            None => error,
        }
    }

    /// The JSON is not a request envelope; `field` names the faulty field when there is one.
    pub fn invalid_envelope(field: Option<&str>, message: impl Into<String>) -> Self {
        let error = Self::bad_request("invalid_envelope", message);
        match field {
            Some(field) => error.with_detail("field", field),
            None => error,
        }
    }

    /// `op` is not one of the 25 operation names.
    pub fn unknown_op(op: &str) -> Self {
        Self::bad_request("unknown_op", format!("unknown operation: {op}")).with_detail("op", op)
    }

    /// `params` is present but neither an object nor null.
    pub fn invalid_params() -> Self {
        Self::bad_request("invalid_params", "params must be an object or null")
    }

    /// A required param is missing or null (§4.0).
    pub fn missing_param(param: &str) -> Self {
        Self::bad_request("missing_param", format!("missing required param: {param}"))
            .with_detail("param", param)
    }

    /// A param has the wrong JSON type or is out of range; `expected` is its Type column (§4.0).
    pub fn invalid_param(param: &str, expected: &str) -> Self {
        Self::bad_request(
            "invalid_param",
            format!("invalid param {param}: expected {expected}"),
        )
        .with_detail("param", param)
        .with_detail("expected", expected)
    }

    /// A BATCH structure problem (§4.15); callers add `index`, `op` and `limit` as the rules say.
    pub fn batch_invalid(message: impl Into<String>) -> Self {
        Self::bad_request("batch_invalid", message)
    }

    /// A response would exceed the outbound limit (§2.4).
    pub fn response_too_large(size_bytes: usize, limit_bytes: usize) -> Self {
        Self::bad_request(
            "response_too_large",
            format!("response of {size_bytes} bytes exceeds the {limit_bytes}-byte limit"),
        )
        .with_detail("size", size_bytes)
        .with_detail("limit", limit_bytes)
    }

    /// A WAL record would exceed its size cap (§2.4).
    pub fn record_too_large(size_bytes: usize, limit_bytes: usize) -> Self {
        Self::bad_request(
            "record_too_large",
            format!("WAL record of {size_bytes} bytes exceeds the {limit_bytes}-byte limit"),
        )
        .with_detail("size", size_bytes)
        .with_detail("limit", limit_bytes)
    }

    /// HELLO asked for a protocol version other than 1 (§4.1).
    pub fn unsupported_protocol(requested: u16) -> Self {
        Self::with_reason(
            ErrorCode::UnsupportedProtocol,
            "unsupported_protocol",
            format!("unsupported protocol version {requested}"),
        )
        .with_detail("requested", requested)
        .with_detail("supported", vec![crate::limits::PROTOCOL_VERSION])
    }

    /// Authentication is required and the connection has none (§4.0).
    pub fn auth_required() -> Self {
        Self::with_reason(
            ErrorCode::Unauthorized,
            "auth_required",
            "authentication required",
        )
    }

    /// An unexpected fault in the server, reported for one request (§4.0).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frame_error_matches_the_spec_example() {
        let error = RcpError::frame_error(FrameFault::CrcMismatch);
        assert_eq!(
            serde_json::to_value(&error).unwrap(),
            json!({"code":"BAD_REQUEST","message":"frame error: CRC mismatch","retryable":false,
                   "details":{"reason":"frame_error","fault":"crc_mismatch"}})
        );
    }

    #[test]
    fn retryable_follows_the_code() {
        assert!(RcpError::internal("boom").retryable);
        assert!(!RcpError::missing_param("x").retryable);
    }

    #[test]
    fn details_are_omitted_when_empty() {
        let error = RcpError::new(ErrorCode::Conflict, "x");
        assert_eq!(
            serde_json::to_value(&error).unwrap(),
            json!({"code":"CONFLICT","message":"x","retryable":false})
        );
    }

    #[test]
    fn invalid_param_carries_param_and_expected() {
        let error = RcpError::invalid_param("version", "u32");
        assert_eq!(error.reason(), Some("invalid_param"));
        assert_eq!(error.detail("param"), Some(&json!("version")));
        assert_eq!(error.detail("expected"), Some(&json!("u32")));
    }

    #[test]
    fn unsupported_protocol_lists_what_is_supported() {
        let error = RcpError::unsupported_protocol(2);
        assert_eq!(error.code, ErrorCode::UnsupportedProtocol);
        assert_eq!(
            error.details,
            json!({"reason":"unsupported_protocol","requested":2,"supported":[1]})
                .as_object()
                .cloned()
        );
    }

    #[test]
    fn invalid_json_without_position_has_no_line_or_column() {
        let error = RcpError::invalid_json("empty payload", None);
        assert_eq!(error.detail("line"), None);
        let error = RcpError::invalid_json("bad", Some((2, 5)));
        assert_eq!(error.detail("column"), Some(&json!(5)));
    }
}
