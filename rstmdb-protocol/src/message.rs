//! Messages the server sends (§3.2–§3.6) and the client-side parser for them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::encoded::EncodedResponse;
use crate::error::RcpError;
use crate::error_code::ErrorCode;

/// `meta` of a successful write (§3.4): the offset of the first WAL record the request wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct ResponseMeta {
    pub wal_offset: u64,
}

/// Whether a request succeeded, with what it carries either way.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// `"status":"ok"` with a `result` object and, for writes that appended, `meta`.
    Ok {
        result: Map<String, Value>,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "lenient_meta"
        )]
        meta: Option<ResponseMeta>,
    },
    /// `"status":"error"` with the error object.
    Error { error: RcpError },
}

/// Reads `meta` without ever failing the response: a `meta` this crate cannot read (say, one
/// carrying only future keys) is dropped, since receivers must tolerate additions (§1.3).
fn lenient_meta<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ResponseMeta>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value.and_then(|value| serde_json::from_value(value).ok()))
}

/// A response (§3.2, §3.3). Serialises with `"type":"response"` first, then `id`, then the
/// outcome's `status` and its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "response")]
pub struct Response {
    pub id: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Response {
    /// A success without `meta`.
    pub fn ok(id: impl Into<String>, result: Map<String, Value>) -> Self {
        Self {
            id: id.into(),
            outcome: Outcome::Ok { result, meta: None },
        }
    }

    /// A success of a request that appended WAL records, the first at `wal_offset`.
    pub fn ok_with_offset(
        id: impl Into<String>,
        result: Map<String, Value>,
        wal_offset: u64,
    ) -> Self {
        Self {
            id: id.into(),
            outcome: Outcome::Ok {
                result,
                meta: Some(ResponseMeta { wal_offset }),
            },
        }
    }

    /// A success whose result is one of the typed results of [`crate::results`].
    pub fn ok_typed<T: serde::Serialize>(
        id: impl Into<String>,
        result: &T,
    ) -> Result<Self, RcpError> {
        Ok(Self::ok(id, to_object(result)?))
    }

    /// An error response.
    pub fn error(id: impl Into<String>, error: RcpError) -> Self {
        Self {
            id: id.into(),
            outcome: Outcome::Error { error },
        }
    }

    /// The error's code, if this is an error.
    pub fn error_code(&self) -> Option<&ErrorCode> {
        match &self.outcome {
            Outcome::Ok { .. } => None,
            Outcome::Error { error } => Some(&error.code),
        }
    }

    /// The result object, if this is a success.
    pub fn result(&self) -> Option<&Map<String, Value>> {
        match &self.outcome {
            Outcome::Ok { result, .. } => Some(result),
            Outcome::Error { .. } => None,
        }
    }

    /// Decodes the result into a typed result, or returns the error the server sent.
    pub fn into_typed<T: serde::de::DeserializeOwned>(self) -> Result<T, ResultError> {
        match self.outcome {
            Outcome::Ok { result, .. } => {
                serde_json::from_value(Value::Object(result)).map_err(ResultError::UnexpectedShape)
            }
            Outcome::Error { error } => Err(ResultError::Server(error)),
        }
    }
}

/// Why [`Response::into_typed`] produced no typed result.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// The server answered with an error.
    #[error(transparent)]
    Server(RcpError),
    /// The server answered ok, but the result lacks a required field or has a wrong type.
    #[error("unexpected result shape: {0}")]
    UnexpectedShape(#[source] serde_json::Error),
}

/// Serialises a typed result into the JSON object a response carries.
pub fn to_object<T: serde::Serialize>(value: &T) -> Result<Map<String, Value>, RcpError> {
    match serde_json::to_value(value) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(RcpError::internal("result is not a JSON object")),
        Err(e) => Err(RcpError::internal(format!("cannot serialise result: {e}"))),
    }
}

/// Serialises a response for the wire; see [`EncodedResponse::new`] for the 16 MiB rule.
pub fn encode_response(response: &Response) -> String {
    EncodedResponse::new(response).into_payload()
}

/// A committed transition delivered to a subscription (§3.5). The field set is exact: the
/// public clients reject events with missing fields, so nothing else is ever added. Serialises
/// with `"type":"event"` first, then the fields in this order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "event")]
pub struct Event {
    pub subscription_id: String,
    pub instance_id: String,
    pub machine: String,
    pub version: u32,
    pub wal_offset: u64,
    pub from_state: String,
    pub to_state: String,
    pub event: String,
    /// The APPLY_EVENT payload; serialised as `null` when there was none.
    pub payload: Option<Map<String, Value>>,
    /// The context after the transition; present only if the subscription includes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Map<String, Value>>,
}

/// The terminal error of a subscription (§3.6, extension). Serialises with
/// `"type":"stream_error"` first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "stream_error")]
pub struct StreamError {
    pub subscription_id: String,
    pub error: RcpError,
}

/// Any message a server sends, as the client reads it. Messages of an unknown `type` are kept
/// as [`ServerMessage::Unknown`] so the caller can skip them (§1.3); unknown fields are ignored.
///
/// A response is a [`Response`] (its result an object) from [`ServerMessage::parse`], or a
/// [`RawResponse`] (its result still text) from [`ServerMessage::parse_raw`].
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage<R = Response> {
    Response(R),
    Event(Event),
    StreamError(StreamError),
    Unknown { message_type: String },
}

/// A server message that could not be understood: the connection should be treated as broken.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("server message is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("server message has no string \"type\"")]
    MissingType,
    #[error("malformed {message_type} message: {source}")]
    Malformed {
        message_type: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// Only the `type` of a message: the other fields are skipped, not built into a tree.
#[derive(Deserialize)]
struct MessageType {
    #[serde(rename = "type", default)]
    message_type: Option<Value>,
}

/// A response envelope as it arrives: `status` decides which of the raw parts is decoded, so
/// a part that does not belong to the status is ignored like any unknown field.
#[derive(Deserialize)]
struct WireResponse<'a> {
    id: String,
    status: Option<String>,
    #[serde(borrow, default)]
    result: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    meta: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a serde_json::value::RawValue>,
}

impl WireResponse<'_> {
    fn into_response(self) -> Result<Response, serde_json::Error> {
        self.into_raw()?.into_response()
    }

    fn into_raw(self) -> Result<RawResponse, serde_json::Error> {
        use serde::de::Error as _;
        let outcome = match self.status.as_deref() {
            Some("ok") => {
                let result = self
                    .result
                    .ok_or_else(|| serde_json::Error::missing_field("result"))?;
                RawOutcome::Ok {
                    result: result.to_owned(),
                    // Lenient like `lenient_meta`: an unreadable meta is dropped.
                    meta: self
                        .meta
                        .and_then(|meta| serde_json::from_str(meta.get()).ok()),
                }
            }
            Some("error") => {
                let error = self
                    .error
                    .ok_or_else(|| serde_json::Error::missing_field("error"))?;
                RawOutcome::Error {
                    error: serde_json::from_str(error.get())?,
                }
            }
            Some(other) => {
                return Err(serde_json::Error::unknown_variant(other, &["ok", "error"]));
            }
            None => return Err(serde_json::Error::missing_field("status")),
        };
        Ok(RawResponse {
            id: self.id,
            outcome,
        })
    }
}

/// A response whose result is still the JSON text the server sent: a caller that wants a typed
/// result decodes it straight from the text ([`RawResponse::into_typed`]), without building a
/// [`Map`] first. For a page of 1,000 instances that tree was most of the client's CPU.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub id: String,
    pub outcome: RawOutcome,
}

/// [`Outcome`] with the result kept as text.
#[derive(Debug, Clone)]
pub enum RawOutcome {
    Ok {
        result: Box<serde_json::value::RawValue>,
        meta: Option<ResponseMeta>,
    },
    Error {
        error: RcpError,
    },
}

/// Text compares as text: enough for tests, and [`ServerMessage`] derives `PartialEq`.
impl PartialEq for RawOutcome {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::Ok { result, meta },
                Self::Ok {
                    result: other_result,
                    meta: other_meta,
                },
            ) => result.get() == other_result.get() && meta == other_meta,
            (Self::Error { error }, Self::Error { error: other }) => error == other,
            _ => false,
        }
    }
}

impl PartialEq for RawResponse {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.outcome == other.outcome
    }
}

impl RawResponse {
    /// Decodes the result text into a typed result, or returns the error the server sent.
    pub fn into_typed<T: serde::de::DeserializeOwned>(self) -> Result<T, ResultError> {
        match self.outcome {
            RawOutcome::Ok { result, .. } => {
                serde_json::from_str(result.get()).map_err(ResultError::UnexpectedShape)
            }
            RawOutcome::Error { error } => Err(ResultError::Server(error)),
        }
    }

    /// The response with its result decoded into an object; fails if the result is not one.
    pub fn into_response(self) -> Result<Response, serde_json::Error> {
        let outcome = match self.outcome {
            RawOutcome::Ok { result, meta } => Outcome::Ok {
                result: serde_json::from_str(result.get())?,
                meta,
            },
            RawOutcome::Error { error } => Outcome::Error { error },
        };
        Ok(Response {
            id: self.id,
            outcome,
        })
    }
}

impl ServerMessage {
    /// Parses one inbound payload on the client side.
    ///
    /// The payload is read straight into the message's own type (a response's `result` into
    /// its map): building a generic JSON tree first and deserialising that again cost the
    /// client more CPU per request than the server spent answering a GET_INSTANCE.
    pub fn parse(payload: &str) -> Result<Self, MessageError> {
        ServerMessage::parse_with(payload, WireResponse::into_response)
    }
}

impl ServerMessage<RawResponse> {
    /// [`ServerMessage::parse`], keeping a response's result as text for a typed decode later.
    /// A result that is not an object is then that request's error, not the connection's.
    pub fn parse_raw(payload: &str) -> Result<Self, MessageError> {
        ServerMessage::parse_with(payload, WireResponse::into_raw)
    }
}

impl<R> ServerMessage<R> {
    fn parse_with<'a>(
        payload: &'a str,
        response: impl FnOnce(WireResponse<'a>) -> Result<R, serde_json::Error>,
    ) -> Result<Self, MessageError> {
        let header: MessageType = serde_json::from_str(payload).map_err(MessageError::Json)?;
        let message_type = match header.message_type {
            Some(Value::String(message_type)) => message_type,
            _ => return Err(MessageError::MissingType),
        };
        let malformed = |message_type| {
            move |source| MessageError::Malformed {
                message_type,
                source,
            }
        };
        match message_type.as_str() {
            "response" => serde_json::from_str::<WireResponse<'a>>(payload)
                .and_then(response)
                .map(Self::Response)
                .map_err(malformed("response")),
            "event" => serde_json::from_str(payload)
                .map(Self::Event)
                .map_err(malformed("event")),
            "stream_error" => serde_json::from_str(payload)
                .map(Self::StreamError)
                .map_err(malformed("stream_error")),
            _ => Ok(Self::Unknown { message_type }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAX_PAYLOAD_BYTES;
    use serde_json::json;

    fn round_trip(text: &str) {
        let message = ServerMessage::parse(text).unwrap();
        let reserialised = match &message {
            ServerMessage::Response(m) => serde_json::to_value(m),
            ServerMessage::Event(m) => serde_json::to_value(m),
            ServerMessage::StreamError(m) => serde_json::to_value(m),
            ServerMessage::Unknown { .. } => panic!("unexpected unknown message"),
        }
        .unwrap();
        assert_eq!(reserialised, serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn spec_responses_events_and_stream_errors_round_trip() {
        round_trip(
            r#"{"type":"response","id":"9","status":"ok","result":{"instance_id":"order-1","state":"created","wal_offset":1099511628107,"applied":true},"meta":{"wal_offset":1099511628107}}"#,
        );
        round_trip(
            r#"{"type":"response","id":"7","status":"error","error":{"code":"INSTANCE_NOT_FOUND","message":"instance not found: order-9","retryable":false,"details":{"reason":"instance_not_found","instance_id":"order-9"}}}"#,
        );
        round_trip(
            r#"{"type":"event","subscription_id":"sub-3f1c9a52-7d4e-4b8a-9c61-2e5f0a8d7b13","instance_id":"order-1","machine":"order","version":1,"wal_offset":1099511628333,"from_state":"created","to_state":"paid","event":"PAY","payload":{"amount":42.5,"ready":true},"ctx":{"customer":"alice","amount":42.5,"ready":true}}"#,
        );
        round_trip(
            r#"{"type":"stream_error","subscription_id":"sub-3f1c9a52-7d4e-4b8a-9c61-2e5f0a8d7b13","error":{"code":"NOT_FOUND","message":"WAL records from offset 1099511628334 were removed by compaction","retryable":false,"details":{"reason":"offset_compacted","next_offset":1099511628334,"oldest_offset":3298534883328}}}"#,
        );
    }

    #[test]
    fn every_message_writes_its_type_first_and_its_fields_in_spec_order() {
        let ok = Response::ok_with_offset("9", Map::new(), 5);
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"type":"response","id":"9","status":"ok","result":{},"meta":{"wal_offset":5}}"#
        );
        let error = Response::error("7", RcpError::new(ErrorCode::Conflict, "m"));
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            r#"{"type":"response","id":"7","status":"error","error":{"code":"CONFLICT","message":"m","retryable":false}}"#
        );
        let event = Event {
            subscription_id: "s".into(),
            instance_id: "i".into(),
            machine: "m".into(),
            version: 1,
            wal_offset: 2,
            from_state: "a".into(),
            to_state: "b".into(),
            event: "E".into(),
            payload: None,
            ctx: Some(Map::new()),
        };
        // The watch fan-out splices per-subscription heads onto this exact prefix.
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"type":"event","subscription_id":"s","instance_id":"i","machine":"m","version":1,"wal_offset":2,"from_state":"a","to_state":"b","event":"E","payload":null,"ctx":{}}"#
        );
        let stream_error = StreamError {
            subscription_id: "s".into(),
            error: RcpError::new(ErrorCode::NotFound, "gone"),
        };
        assert_eq!(
            serde_json::to_string(&stream_error).unwrap(),
            r#"{"type":"stream_error","subscription_id":"s","error":{"code":"NOT_FOUND","message":"gone","retryable":false}}"#
        );
    }

    #[test]
    fn event_without_ctx_and_payload_has_null_payload_and_no_ctx() {
        let event = Event {
            subscription_id: "sub-1".into(),
            instance_id: "i".into(),
            machine: "m".into(),
            version: 0,
            wal_offset: 1,
            from_state: "a".into(),
            to_state: "b".into(),
            event: "E".into(),
            payload: None,
            ctx: None,
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["payload"], Value::Null);
        assert!(json.get("ctx").is_none());
        assert_eq!(json.as_object().map(Map::len), Some(10));
    }

    #[test]
    fn unknown_message_types_and_fields_are_tolerated() {
        assert_eq!(
            ServerMessage::parse(r#"{"type":"heartbeat","n":1}"#).unwrap(),
            ServerMessage::Unknown {
                message_type: "heartbeat".into()
            }
        );
        let parsed = ServerMessage::parse(
            r#"{"type":"response","id":"1","status":"ok","result":{},"extra":1,"meta":{"wal_offset":5,"trace_id":"x"}}"#,
        )
        .unwrap();
        assert_eq!(
            parsed,
            ServerMessage::Response(Response::ok_with_offset("1", Map::new(), 5))
        );
        let parsed = ServerMessage::parse(
            r#"{"type":"response","id":"1","status":"ok","result":{},"meta":{"trace_id":"x"}}"#,
        )
        .unwrap();
        assert_eq!(
            parsed,
            ServerMessage::Response(Response::ok("1", Map::new()))
        );
    }

    #[test]
    fn unknown_error_codes_are_accepted() {
        let parsed = ServerMessage::parse(
            r#"{"type":"response","id":"1","status":"error","error":{"code":"SHINY_NEW","message":"m","retryable":true}}"#,
        )
        .unwrap();
        let ServerMessage::Response(response) = parsed else {
            panic!("not a response")
        };
        let Err(ResultError::Server(error)) = response.into_typed::<Value>() else {
            panic!("an error response yields the server's error");
        };
        assert_eq!(error.code, ErrorCode::Other("SHINY_NEW".into()));
        assert!(
            error.retryable,
            "the flag sent is kept even for unknown codes"
        );
    }

    #[test]
    fn a_result_of_the_wrong_shape_is_reported_as_such() {
        let response = Response::ok("1", Map::new());
        let outcome = response.into_typed::<crate::results::PingResult>();
        assert!(matches!(outcome, Err(ResultError::UnexpectedShape(_))));
    }

    #[test]
    fn only_the_part_the_status_selects_is_decoded() {
        // An ok response ignores an `error` key (even a malformed one), like any unknown field.
        let parsed = ServerMessage::parse(
            r#"{"type":"response","id":"1","status":"ok","result":{"a":1},"error":7}"#,
        )
        .unwrap();
        let ServerMessage::Response(response) = parsed else {
            panic!("not a response")
        };
        assert_eq!(response.result().and_then(|r| r.get("a")), Some(&json!(1)));
        for text in [
            r#"{"type":"response","id":"1","status":"ok"}"#,
            r#"{"type":"response","id":"1","status":"ok","result":[1]}"#,
            r#"{"type":"response","id":"1","status":"error","result":{}}"#,
            r#"{"type":"response","id":"1","status":"maybe","result":{}}"#,
            r#"{"type":"response","status":"ok","result":{}}"#,
        ] {
            let err = ServerMessage::parse(text).unwrap_err();
            assert!(
                matches!(
                    err,
                    MessageError::Malformed {
                        message_type: "response",
                        ..
                    }
                ),
                "{text}: {err:?}"
            );
        }
        assert!(matches!(
            ServerMessage::parse(r#"{"type":7}"#),
            Err(MessageError::MissingType)
        ));
        assert!(matches!(
            ServerMessage::parse(r#"{"type":"response""#),
            Err(MessageError::Json(_))
        ));
    }

    #[test]
    fn event_missing_a_required_field_is_malformed() {
        let err = ServerMessage::parse(r#"{"type":"event","subscription_id":"s"}"#).unwrap_err();
        assert!(matches!(
            err,
            MessageError::Malformed {
                message_type: "event",
                ..
            }
        ));
    }

    #[test]
    fn oversized_response_is_replaced_by_response_too_large() {
        let mut result = Map::new();
        result.insert("blob".into(), json!("x".repeat(MAX_PAYLOAD_BYTES)));
        let payload = encode_response(&Response::ok("42", result));
        let json: Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(json["id"], json!("42"));
        assert_eq!(json["error"]["code"], json!("BAD_REQUEST"));
        assert_eq!(
            json["error"]["details"]["reason"],
            json!("response_too_large")
        );
        assert_eq!(json["error"]["details"]["limit"], json!(MAX_PAYLOAD_BYTES));
        assert!(json["error"]["details"]["size"].as_u64().unwrap() > MAX_PAYLOAD_BYTES as u64);
    }

    #[test]
    fn oversized_response_with_a_huge_id_falls_back_to_an_empty_id() {
        let huge_id = "i".repeat(MAX_PAYLOAD_BYTES - 100);
        let mut result = Map::new();
        result.insert("blob".into(), json!("x".repeat(200)));
        let payload = encode_response(&Response::ok(huge_id, result));
        assert!(payload.len() < 1024);
        let json: Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(json["id"], json!(""));
        assert_eq!(
            json["error"]["details"]["reason"],
            json!("response_too_large")
        );
    }

    #[test]
    fn response_exactly_at_the_limit_is_sent_as_is() {
        let empty = encode_response(&Response::ok("1", {
            let mut m = Map::new();
            m.insert("b".into(), json!(""));
            m
        }));
        let filler = "x".repeat(MAX_PAYLOAD_BYTES - empty.len());
        let mut result = Map::new();
        result.insert("b".into(), json!(filler));
        let payload = encode_response(&Response::ok("1", result));
        assert_eq!(payload.len(), MAX_PAYLOAD_BYTES);
        assert!(payload.contains(r#""status":"ok""#));
    }
}
