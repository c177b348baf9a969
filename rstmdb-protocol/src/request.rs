//! The request envelope (§3.1) and the request-level error table of §2.8.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::RcpError;
use crate::limits::MAX_REQUEST_ID_BYTES;
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
    /// failure decides the error. Unknown top-level fields are ignored. The same as
    /// [`RequestEnvelope::parse`] followed by [`RequestEnvelope::into_request`].
    pub fn parse(payload: &str) -> Result<Self, RequestError> {
        RequestEnvelope::parse(payload)?.into_request()
    }
}

/// A request whose envelope is valid but whose `params` are still unparsed text: enough to
/// decide whether the request may run at all (the auth gate, §13) before a JSON tree of its
/// params is built. Reading an envelope costs O(payload bytes) and allocates only the id,
/// type and op strings, whatever the params hold.
#[derive(Debug, Clone)]
pub struct RequestEnvelope<'a> {
    pub id: String,
    pub op: Op,
    /// The `params` text when it is an object; `None` when missing or null.
    params: Option<&'a RawValue>,
}

impl<'a> RequestEnvelope<'a> {
    /// Applies the §2.8 table up to and including the type of `params`. The whole payload is
    /// checked to be JSON (nesting of any depth is walked without recursion and without
    /// building values).
    pub fn parse(payload: &'a str) -> Result<Self, RequestError> {
        if payload
            .bytes()
            .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            let error = RcpError::invalid_json("empty payload", None);
            return Err(RequestError::new("", error));
        }
        let shape: Shape<'a> = serde_json::from_str(payload).map_err(|e| {
            let error =
                RcpError::invalid_json(format!("invalid JSON: {e}"), Some((e.line(), e.column())));
            RequestError::new("", error)
        })?;
        let Shape::Object(fields) = shape else {
            let error = RcpError::invalid_envelope(None, "request must be a JSON object");
            return Err(RequestError::new("", error));
        };

        let Some(id) = fields.id.and_then(json_string) else {
            let error = RcpError::invalid_envelope(Some("id"), "id must be a string");
            return Err(RequestError::new("", error));
        };
        if id.len() > MAX_REQUEST_ID_BYTES {
            // The id is not echoed: it is the thing that is too long (§13).
            let error = RcpError::bad_request(
                "invalid_request",
                format!(
                    "request id of {} bytes exceeds the {MAX_REQUEST_ID_BYTES}-byte limit",
                    id.len()
                ),
            )
            .with_detail("field", "id")
            .with_detail("size", id.len())
            .with_detail("limit", MAX_REQUEST_ID_BYTES);
            return Err(RequestError::new("", error));
        }
        if fields.message_type.and_then(json_string).as_deref() != Some("request") {
            let error = RcpError::invalid_envelope(Some("type"), "type must be \"request\"");
            return Err(RequestError::new(&id, error));
        }
        let Some(op_name) = fields.op.and_then(json_string) else {
            let error = RcpError::invalid_envelope(Some("op"), "op must be a string");
            return Err(RequestError::new(&id, error));
        };
        let Ok(op) = op_name.parse::<Op>() else {
            return Err(RequestError::new(&id, RcpError::unknown_op(&op_name)));
        };
        let params = match fields.params {
            None => None,
            Some(raw) if raw.get() == "null" => None,
            Some(raw) if raw.get().starts_with('{') => Some(raw),
            Some(_) => return Err(RequestError::new(&id, RcpError::invalid_params())),
        };
        Ok(Self { id, op, params })
    }

    /// Size in bytes of the unparsed `params` text (0 when there are none).
    pub fn params_bytes(&self) -> usize {
        self.params.map_or(0, |raw| raw.get().len())
    }

    /// Builds the params object. Fails only when the params nest deeper than serde_json's
    /// recursion limit (128), which is an `invalid_json` error like any other unreadable
    /// payload.
    pub fn into_request(self) -> Result<Request, RequestError> {
        let params = match self.params {
            None => Map::new(),
            Some(raw) => serde_json::from_str(raw.get()).map_err(|e| {
                let error = RcpError::invalid_json(format!("invalid JSON in params: {e}"), None);
                RequestError::new("", error)
            })?,
        };
        Ok(Request {
            id: self.id,
            op: self.op,
            params,
        })
    }
}

/// A string value of the envelope, `None` for anything else.
fn json_string(raw: &RawValue) -> Option<String> {
    serde_json::from_str(raw.get()).ok()
}

/// The top level of a payload: an object's envelope fields (unparsed), or "not an object".
enum Shape<'a> {
    Object(EnvelopeFields<'a>),
    NotObject,
}

#[derive(Default)]
struct EnvelopeFields<'a> {
    id: Option<&'a RawValue>,
    message_type: Option<&'a RawValue>,
    op: Option<&'a RawValue>,
    params: Option<&'a RawValue>,
}

impl<'de> Deserialize<'de> for Shape<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = EnvelopeFields::default();
        // A repeated key keeps its last value, as a JSON object parsed into a map would.
        while let Some(key) = map.next_key::<EnvelopeKey>()? {
            let slot = match key {
                EnvelopeKey::Id => &mut fields.id,
                EnvelopeKey::Type => &mut fields.message_type,
                EnvelopeKey::Op => &mut fields.op,
                EnvelopeKey::Params => &mut fields.params,
                EnvelopeKey::Other => {
                    map.next_value::<Skip>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value()?);
        }
        Ok(Shape::Object(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // Walked to the end so that a malformed array is still `invalid_json`.
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Shape::NotObject)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Shape::NotObject)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Shape::NotObject)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Shape::NotObject)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Shape::NotObject)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Shape::NotObject)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Shape::NotObject)
    }
}

/// A value that is checked and dropped without being built. Unlike `IgnoredAny` it goes
/// through serde_json's recursion limit (128 levels), so nesting deeper than any tree we could
/// build is `invalid_json` here as it is everywhere else.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<IgnoredAny, Skip>()?.is_some() {}
        Ok(Skip)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
}

/// A top-level key, compared without allocating (escaped keys take the owned path).
enum EnvelopeKey {
    Id,
    Type,
    Op,
    Params,
    Other,
}

impl<'de> Deserialize<'de> for EnvelopeKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = EnvelopeKey;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }

            fn visit_str<E>(self, key: &str) -> Result<EnvelopeKey, E> {
                Ok(match key {
                    "id" => EnvelopeKey::Id,
                    "type" => EnvelopeKey::Type,
                    "op" => EnvelopeKey::Op,
                    "params" => EnvelopeKey::Params,
                    _ => EnvelopeKey::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
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
    fn an_id_of_256_bytes_is_accepted_and_one_of_257_is_invalid_request_without_the_id() {
        let request = |id: &str| format!(r#"{{"type":"request","id":"{id}","op":"PING"}}"#);
        assert_eq!(
            Request::parse(&request(&"a".repeat(256))).unwrap().id.len(),
            256
        );
        let error = reject(&request(&"a".repeat(257)));
        assert_eq!(error.id, "", "the over-long id is not echoed");
        assert_eq!(
            details(&error),
            json!({"reason":"invalid_request","field":"id","size":257,"limit":256})
        );
        // Bytes, not characters: 86 three-byte characters are 258 bytes.
        assert_eq!(
            reject(&request(&"€".repeat(86))).error.reason(),
            Some("invalid_request")
        );
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_and_escaped_keys_are_recognised() {
        let request =
            Request::parse(r#"{"type":"request","id":"1","id":"2","\u006fp":"PING"}"#).unwrap();
        assert_eq!(request.id, "2");
        assert_eq!(request.op, Op::Ping);
    }

    #[test]
    fn the_envelope_is_read_without_building_the_params() {
        // 100,000 levels of nesting: far past serde_json's recursion limit, so any attempt
        // to build the params tree fails; the envelope alone is fine and names the op.
        let payload = format!(
            r#"{{"type":"request","id":"9","op":"GET_INSTANCE","params":{{"a":{}0{}}}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let envelope = RequestEnvelope::parse(&payload).unwrap();
        assert_eq!((envelope.id.as_str(), envelope.op), ("9", Op::GetInstance));
        assert_eq!(envelope.params_bytes(), 200_007);
        let error = envelope.into_request().unwrap_err();
        assert_eq!(error.error.reason(), Some("invalid_json"));
    }

    #[test]
    fn malformed_json_anywhere_is_still_invalid_json_before_any_envelope_check() {
        for payload in [
            r#"{"type":"request","id":"1","op":"PING","params":{"a":[1,}}"#,
            r#"[1,2"#,
            r#"{"type":"request","id":"1","op":"PING"} trailing"#,
        ] {
            let error = reject(payload);
            assert_eq!(error.id, "");
            assert_eq!(error.error.reason(), Some("invalid_json"), "{payload}");
        }
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
