//! The request envelope (§3.1) and the request-level error table of §2.8.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::RcpError;
use crate::message::Response;
use crate::ops::Op;
use crate::params::OpParams;

/// A request whose envelope is valid. `params` is `{}` when it was missing or null; the op's
/// own params are checked later ([`crate::params::OpParams::parse`]). Serialises as
/// `{"type":"request","id":…,"op":…,"params":{…}}`; it is parsed by [`Request::parse`], which
/// applies the error table of §2.8.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename = "request")]
pub struct Request {
    pub id: String,
    pub op: Op,
    pub params: Map<String, Value>,
}

/// A request-level error (§2.8): the connection stays open and this is answered with a
/// `BAD_REQUEST` response carrying `id` (`""` when the id could not be read).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("request {id:?}: {error}")]
pub struct RequestError {
    pub id: String,
    pub error: RcpError,
}

impl RequestError {
    fn new(id: &str, error: RcpError) -> Self {
        Self {
            id: id.to_owned(),
            error,
        }
    }

    /// The error response to send.
    pub fn into_response(self) -> Response {
        Response::error(self.id, self.error)
    }
}

impl Request {
    /// A request to send (client side).
    pub fn new(id: impl Into<String>, op: Op, params: Map<String, Value>) -> Self {
        Self {
            id: id.into(),
            op,
            params,
        }
    }

    /// A request built from typed params (client side).
    pub fn from_op_params(id: impl Into<String>, params: &OpParams) -> Result<Self, RcpError> {
        Ok(Self::new(id, params.op(), params.to_object()?))
    }

    /// Parses an inbound payload, applying the checks of the §2.8 table in order; the first
    /// failure decides the error. Unknown top-level fields are ignored.
    ///
    /// Nesting deeper than serde_json's recursion limit (128) is an `invalid_json` error, so no
    /// payload can overflow the stack.
    pub fn parse(payload: &str) -> Result<Self, RequestError> {
        if payload
            .bytes()
            .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            let error = RcpError::invalid_json("empty payload", None);
            return Err(RequestError::new("", error));
        }
        let value: Value = serde_json::from_str(payload).map_err(|e| {
            let error =
                RcpError::invalid_json(format!("invalid JSON: {e}"), Some((e.line(), e.column())));
            RequestError::new("", error)
        })?;
        let Value::Object(mut envelope) = value else {
            let error = RcpError::invalid_envelope(None, "request must be a JSON object");
            return Err(RequestError::new("", error));
        };

        let Some(Value::String(id)) = envelope.remove("id") else {
            let error = RcpError::invalid_envelope(Some("id"), "id must be a string");
            return Err(RequestError::new("", error));
        };
        if envelope.get("type").and_then(Value::as_str) != Some("request") {
            let error = RcpError::invalid_envelope(Some("type"), "type must be \"request\"");
            return Err(RequestError::new(&id, error));
        }
        let Some(Value::String(op_name)) = envelope.remove("op") else {
            let error = RcpError::invalid_envelope(Some("op"), "op must be a string");
            return Err(RequestError::new(&id, error));
        };
        let Ok(op) = op_name.parse::<Op>() else {
            return Err(RequestError::new(&id, RcpError::unknown_op(&op_name)));
        };
        let params = match envelope.remove("params") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(params)) => params,
            Some(_) => return Err(RequestError::new(&id, RcpError::invalid_params())),
        };
        Ok(Self { id, op, params })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reject(payload: &str) -> RequestError {
        Request::parse(payload).expect_err("payload should be rejected")
    }

    fn details(error: &RequestError) -> Value {
        Value::Object(error.error.details.clone().unwrap_or_default())
    }

    #[test]
    fn a_request_serialises_as_the_spec_example_with_its_type_first() {
        let mut params = Map::new();
        params.insert("instance_id".to_owned(), json!("order-1"));
        let request = Request::new("7", Op::GetInstance, params);
        assert_eq!(
            serde_json::to_string(&request).unwrap(),
            r#"{"type":"request","id":"7","op":"GET_INSTANCE","params":{"instance_id":"order-1"}}"#
        );
    }

    #[test]
    fn parses_the_spec_example_request() {
        let request = Request::parse(
            r#"{"type":"request","id":"7","op":"GET_INSTANCE","params":{"instance_id":"order-1"}}"#,
        )
        .unwrap();
        assert_eq!(request.id, "7");
        assert_eq!(request.op, Op::GetInstance);
        assert_eq!(
            Value::Object(request.params),
            json!({"instance_id":"order-1"})
        );
    }

    #[test]
    fn missing_or_null_params_mean_an_empty_object() {
        for payload in [
            r#"{"type":"request","id":"1","op":"PING"}"#,
            r#"{"type":"request","id":"1","op":"PING","params":null}"#,
        ] {
            assert!(Request::parse(payload).unwrap().params.is_empty());
        }
    }

    #[test]
    fn empty_id_and_unknown_fields_are_accepted() {
        let request = Request::parse(r#"{"type":"request","id":"","op":"PING","x":[1]}"#).unwrap();
        assert_eq!(request.id, "");
    }

    #[test]
    fn empty_or_whitespace_payload_is_invalid_json_without_position() {
        for payload in ["", " \t\r\n "] {
            let error = reject(payload);
            assert_eq!(error.id, "");
            assert_eq!(details(&error), json!({"reason":"invalid_json"}));
        }
    }

    #[test]
    fn malformed_json_reports_serde_json_line_and_column() {
        let error = reject("{\"type\":\"request\",\n \"id\": x}");
        assert_eq!(error.id, "");
        assert_eq!(error.error.reason(), Some("invalid_json"));
        assert_eq!(error.error.detail("line"), Some(&json!(2)));
        assert_eq!(error.error.detail("column"), Some(&json!(8)));
    }

    #[test]
    fn ten_thousand_nested_arrays_are_invalid_json_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(reject(&deep).error.reason(), Some("invalid_json"));
        let deep_params = format!(
            r#"{{"type":"request","id":"1","op":"PING","params":{{"a":{}1{}}}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_eq!(reject(&deep_params).error.reason(), Some("invalid_json"));
    }

    #[test]
    fn non_object_json_is_invalid_envelope_without_field() {
        for payload in ["[]", "\"request\"", "42", "null"] {
            let error = reject(payload);
            assert_eq!(error.id, "");
            assert_eq!(details(&error), json!({"reason":"invalid_envelope"}));
        }
    }

    #[test]
    fn missing_or_non_string_id_is_reported_with_an_empty_id() {
        for payload in [
            r#"{"type":"request","op":"PING"}"#,
            r#"{"type":"request","id":7,"op":"PING"}"#,
            r#"{"type":"nope","id":null}"#,
        ] {
            let error = reject(payload);
            assert_eq!(error.id, "");
            assert_eq!(
                details(&error),
                json!({"reason":"invalid_envelope","field":"id"})
            );
        }
    }

    #[test]
    fn wrong_or_missing_type_is_reported_with_the_id() {
        for payload in [
            r#"{"id":"5","op":"PING"}"#,
            r#"{"type":"response","id":"5","op":"PING"}"#,
            r#"{"type":1,"id":"5","op":"NOPE"}"#,
        ] {
            let error = reject(payload);
            assert_eq!(error.id, "5");
            assert_eq!(
                details(&error),
                json!({"reason":"invalid_envelope","field":"type"})
            );
        }
    }

    #[test]
    fn missing_or_non_string_op_is_reported_with_the_id() {
        for payload in [
            r#"{"type":"request","id":"5"}"#,
            r#"{"type":"request","id":"5","op":["PING"],"params":7}"#,
        ] {
            let error = reject(payload);
            assert_eq!(error.id, "5");
            assert_eq!(
                details(&error),
                json!({"reason":"invalid_envelope","field":"op"})
            );
        }
    }

    #[test]
    fn unknown_op_names_the_op() {
        let error = reject(r#"{"type":"request","id":"5","op":"ping","params":[]}"#);
        assert_eq!(error.id, "5");
        assert_eq!(details(&error), json!({"reason":"unknown_op","op":"ping"}));
    }

    #[test]
    fn params_that_are_not_an_object_or_null_are_invalid_params() {
        for params in ["[]", "\"x\"", "0", "true"] {
            let payload = format!(r#"{{"type":"request","id":"5","op":"PING","params":{params}}}"#);
            let error = reject(&payload);
            assert_eq!(error.id, "5");
            assert_eq!(details(&error), json!({"reason":"invalid_params"}));
        }
    }

    #[test]
    fn error_converts_to_a_response_with_the_same_id() {
        let response = reject(r#"{"type":"request","id":"9","op":"X"}"#).into_response();
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(json["id"], json!("9"));
        assert_eq!(json["status"], json!("error"));
        assert_eq!(json["error"]["code"], json!("BAD_REQUEST"));
    }

    #[test]
    fn typed_params_build_a_request_that_parses_back() {
        let params = OpParams::GetInstance(crate::params::GetInstanceParams {
            instance_id: "order-1".into(),
        });
        let request = Request::from_op_params("3", &params).unwrap();
        let text = serde_json::to_string(&request).unwrap();
        let parsed = Request::parse(&text).unwrap();
        assert_eq!(OpParams::parse(parsed.op, &parsed.params).unwrap(), params);
    }

    #[test]
    fn serialises_with_the_request_type() {
        let request = Request::new("1", Op::Ping, Map::new());
        assert_eq!(
            serde_json::to_string(&request).unwrap(),
            r#"{"type":"request","id":"1","op":"PING","params":{}}"#
        );
    }
}
