//! Responses encoded for the wire: the payload text a server sends, never over 16 MiB (§2.4),
//! with the one fact about it the server's bookkeeping needs afterwards (the error code).
//!
//! A response is usually built as a [`Response`] and encoded here. A large typed result (a
//! LIST_INSTANCES page of 1,000 instances) can instead be encoded straight from its type with
//! [`EncodedResponse::ok_typed`]: the same bytes, without building a JSON tree to serialise
//! and drop (measured at a fifth of the CPU for such a page), and on whatever thread the
//! caller picks.

use serde::Serialize;

use crate::error::RcpError;
use crate::error_code::ErrorCode;
use crate::limits::MAX_PAYLOAD_BYTES;
use crate::message::{Response, ResponseMeta};

/// The payload of one response, ready to frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedResponse {
    payload: String,
    /// `None` for a success.
    error: Option<ErrorCode>,
}

impl EncodedResponse {
    /// Encodes `response`. One whose payload would exceed 16 MiB is never sent (§2.4): it is
    /// replaced by a `BAD_REQUEST` `response_too_large` error with the same id. If even that
    /// error is too large (the request's id alone is close to 16 MiB), it goes out with id `""`,
    /// like any error that belongs to no request.
    pub fn new(response: &Response) -> EncodedResponse {
        let payload = serialise(response);
        if payload.len() > MAX_PAYLOAD_BYTES {
            return EncodedResponse::too_large(&response.id, payload.len());
        }
        EncodedResponse {
            payload,
            error: response.error_code().cloned(),
        }
    }

    /// The success `Response::ok_typed(id, result)` (with `meta` when `wal_offset` is given)
    /// would encode to, byte for byte, serialised from `result` directly. `result` must
    /// serialise as a JSON object, as every type of [`crate::results`] does.
    pub fn ok_typed<T: Serialize>(
        id: &str,
        result: &T,
        wal_offset: Option<u64>,
    ) -> EncodedResponse {
        let body = OkResponse {
            id,
            status: "ok",
            result,
            meta: wal_offset.map(|wal_offset| ResponseMeta { wal_offset }),
        };
        let payload = match serde_json::to_string(&body) {
            Ok(payload) => payload,
            Err(err) => {
                let error = RcpError::internal(format!("cannot serialise result: {err}"));
                return EncodedResponse::new(&Response::error(id, error));
            }
        };
        // An id is a JSON string, so its `"` are escaped: this finds the real `result` key.
        debug_assert!(
            payload.contains(r#""status":"ok","result":{"#),
            "a result must serialise as an object"
        );
        if payload.len() > MAX_PAYLOAD_BYTES {
            return EncodedResponse::too_large(id, payload.len());
        }
        EncodedResponse {
            payload,
            error: None,
        }
    }

    fn too_large(id: &str, size_bytes: usize) -> EncodedResponse {
        let error = RcpError::response_too_large(size_bytes, MAX_PAYLOAD_BYTES);
        let code = Some(error.code.clone());
        let replacement = serialise(&Response::error(id, error.clone()));
        let payload = if replacement.len() <= MAX_PAYLOAD_BYTES {
            replacement
        } else {
            serialise(&Response::error("", error))
        };
        EncodedResponse {
            payload,
            error: code,
        }
    }

    /// The JSON text, at most [`MAX_PAYLOAD_BYTES`].
    pub fn payload(&self) -> &str {
        &self.payload
    }

    pub fn into_payload(self) -> String {
        self.payload
    }

    /// The code of the error this response carries; `None` for a success.
    pub fn error_code(&self) -> Option<&ErrorCode> {
        self.error.as_ref()
    }

    /// The payload and its error code, to carry the response elsewhere whole (a cluster node
    /// relays the leader's answer to a forwarded write).
    pub fn into_parts(self) -> (String, Option<ErrorCode>) {
        (self.payload, self.error)
    }

    /// A response carried from elsewhere by [`EncodedResponse::into_parts`]. One whose payload
    /// is over 16 MiB is replaced as [`EncodedResponse::new`] does, with `id`.
    pub fn from_parts(id: &str, payload: String, error: Option<ErrorCode>) -> EncodedResponse {
        if payload.len() > MAX_PAYLOAD_BYTES {
            return EncodedResponse::too_large(id, payload.len());
        }
        EncodedResponse { payload, error }
    }
}

/// A success as [`Response`] serialises it: `"type":"response"`, `id`, `status`, `result`,
/// then `meta` if any.
#[derive(Serialize)]
#[serde(tag = "type", rename = "response")]
struct OkResponse<'a, T> {
    id: &'a str,
    status: &'static str,
    result: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<ResponseMeta>,
}

/// serde_json cannot fail on these types (string keys, no non-finite floats are representable
/// in `Value`); should that ever change, the peer still gets an answer.
fn serialise(response: &Response) -> String {
    serde_json::to_string(response).unwrap_or_else(|e| {
        let error = RcpError::internal(format!("cannot serialise response: {e}"));
        let fallback = Response::error("", error);
        serde_json::to_string(&fallback).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{InstanceSummary, ListInstancesResult};
    use serde_json::{Value, json};

    fn page(instances: usize, id_bytes: usize) -> ListInstancesResult {
        ListInstancesResult {
            instances: (0..instances)
                .map(|index| InstanceSummary {
                    id: format!("{index}-{}", "x".repeat(id_bytes)),
                    machine: "order \"quoted\" \u{1F600}".into(),
                    version: 3,
                    state: "paid".into(),
                    created_at: 1_765_000_000_000,
                    updated_at: 1_765_000_000_123,
                    last_wal_offset: (7 << 40) | 4096,
                })
                .collect(),
            total: 12_345,
            has_more: true,
        }
    }

    /// The same JSON (key order is unspecified, §3.8) with `type` first, as every response.
    fn assert_same_response(typed: &EncodedResponse, built: &EncodedResponse) {
        let parse = |encoded: &EncodedResponse| -> Value {
            serde_json::from_str(encoded.payload()).unwrap()
        };
        assert_eq!(parse(typed), parse(built));
        assert!(typed.payload().starts_with(r#"{"type":"response","id":"#));
        assert_eq!(typed.error_code(), built.error_code());
    }

    #[test]
    fn a_typed_success_encodes_to_the_response_built_from_a_tree() {
        let result = page(3, 8);
        for id in ["1", "", "with \"quotes\" and \\ and \n"] {
            let built = Response::ok_typed(id, &result).unwrap();
            assert_same_response(
                &EncodedResponse::ok_typed(id, &result, None),
                &EncodedResponse::new(&built),
            );
            let object = crate::message::to_object(&result).unwrap();
            let written = Response::ok_with_offset(id, object, 99);
            assert_same_response(
                &EncodedResponse::ok_typed(id, &result, Some(99)),
                &EncodedResponse::new(&written),
            );
        }
    }

    #[test]
    fn an_oversized_typed_success_becomes_response_too_large_with_its_id() {
        // 200 instances with 100 KiB ids: some 20 MB of page.
        let encoded = EncodedResponse::ok_typed("7", &page(200, 100 * 1024), None);
        assert_eq!(encoded.error_code(), Some(&ErrorCode::BadRequest));
        let json: Value = serde_json::from_str(encoded.payload()).unwrap();
        assert_eq!(json["id"], json!("7"));
        assert_eq!(
            json["error"]["details"]["reason"],
            json!("response_too_large")
        );
        assert!(json["error"]["details"]["size"].as_u64().unwrap() > MAX_PAYLOAD_BYTES as u64);
    }

    #[test]
    fn an_error_keeps_its_code_for_the_server_bookkeeping() {
        let response = Response::error("9", RcpError::auth_required());
        let encoded = EncodedResponse::new(&response);
        assert_eq!(encoded.error_code(), Some(&ErrorCode::Unauthorized));
        assert_eq!(
            EncodedResponse::ok_typed("9", &page(1, 1), None).error_code(),
            None
        );
    }
}
