//! rstmdb-protocol: RCP v1, the wire protocol of rstmdb (`docs/protocol.md`), as plain data and
//! codecs — no sockets, no tasks. The server, the client, the dashboard and the fuzz targets all
//! speak it through this crate.
//!
//! Module map, bottom up:
//! - [`limits`]: the protocol's sizes and counts (frame header, 16 MiB payload, batch size, …);
//!   every other crate names these constants instead of repeating the numbers.
//! - [`frame`]: the binary `RCPX` frame codec (§2.1–§2.5); [`jsonl`]: JSON lines (§2.6);
//!   [`wire`]: [`WireCodec`], one of the two, chosen by the first byte or by HELLO (§2.7).
//!   Their faults are [`FrameFault`] inside [`WireError`].
//! - [`request`]: [`Request::parse`] applies the request-level error table of §2.8.
//! - [`message`]: what the server sends ([`Response`], [`Event`], [`StreamError`]) and
//!   [`ServerMessage::parse`] for the client side; [`encoded`]: [`EncodedResponse`], the
//!   payload a server sends, never over 16 MiB.
//! - [`ops`]: the [`Op`] names and their auth/write/batch flags (§4.0).
//! - [`params`]: [`OpParams::parse`] turns an op's `params` into typed params (§4.0 rules).
//! - [`results`]: the typed result of every op — the one set of types the server builds and
//!   the client reads.
//! - [`error_code`] and [`error`]: [`ErrorCode`] (§5.1) and [`RcpError`] with detail builders.
//!
//! A server connection reads: `WireCodec` → `Request::parse` → `OpParams::parse` → (dispatch)
//! → `Response::ok_typed` / `Response::error` → `EncodedResponse` → `WireCodec`.
#![forbid(unsafe_code)]

pub mod encoded;
pub mod error;
pub mod error_code;
pub mod fault;
pub mod frame;
pub mod jsonl;
pub mod limits;
pub mod message;
pub mod ops;
pub mod params;
pub mod request;
pub mod results;
pub mod wire;

pub use encoded::EncodedResponse;
pub use error::{AuthFailure, RcpError};
pub use error_code::ErrorCode;
pub use fault::{FrameFault, WireError};
pub use frame::FrameCodec;
pub use jsonl::JsonlCodec;
pub use message::{
    Event, MessageError, Outcome, RawOutcome, RawResponse, Response, ResponseMeta, ResultError,
    ServerMessage, StreamError, encode_response,
};
pub use ops::Op;
pub use params::OpParams;
pub use request::{Request, RequestEnvelope, RequestError};
pub use wire::{WireCodec, WireMode};
