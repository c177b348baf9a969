//! rstmdb-client: the RCP wire protocol (`docs/protocol.md`) shared by the server, the CLI and
//! the dashboard.
//!
//! Module map, bottom up:
//! - [`frame`]: the binary `RCPX` frame codec (§2.1–§2.5); [`jsonl`]: JSON lines (§2.6);
//!   [`wire`]: [`WireCodec`], one of the two, chosen by the first byte or by HELLO (§2.7).
//!   Their faults are [`FrameFault`] inside [`WireError`].
//! - [`request`]: [`Request::parse`] applies the request-level error table of §2.8.
//! - [`message`]: what the server sends ([`Response`], [`Event`], [`StreamError`]) and
//!   [`ServerMessage::parse`] for the client side; [`encode_response`] enforces 16 MiB.
//! - [`ops`]: the 25 [`Op`] names and their auth/write/batch flags (§4.0).
//! - [`params`]: [`OpParams::parse`] turns an op's `params` into typed params (§4.0 rules).
//! - [`results`]: typed results of every op.
//! - [`error_code`] and [`error`]: [`ErrorCode`] (§5.1) and [`RcpError`] with detail builders.
//!
//! - [`client`]: the async [`Client`] built on all of the above: pipelined requests over one
//!   TCP/TLS connection, typed methods per op, watch [`Subscription`]s as streams, reconnect
//!   with backoff. Start there to use rstmdb from Rust.
//!
//! A server connection task reads: `WireCodec` → `Request::parse` → `OpParams::parse` →
//! (dispatch) → `Response::ok_typed` / `Response::error` → `encode_response` → `WireCodec`.
//!
//! # Using the client
//!
//! ```no_run
//! use futures::StreamExt;
//! use rstmdb_client::params::WatchAllParams;
//! use rstmdb_client::{ApplyEventOptions, Client, ClientOptions, CreateInstanceOptions};
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), rstmdb_client::ClientError> {
//! let client = Client::connect(ClientOptions::new("127.0.0.1:7401").token("my-secret-token"))
//!     .await?;
//! let definition = json!({
//!     "states": ["created", "paid"],
//!     "initial": "created",
//!     "transitions": [{"from": "created", "event": "PAY", "to": "paid"}]
//! });
//! client.put_machine("order", 1, definition).await?;
//!
//! // Watch first, so the transition below is seen.
//! let mut paid = client
//!     .watch_all(WatchAllParams { machines: vec!["order".into()], ..Default::default() })
//!     .await?;
//!
//! let created = client
//!     .create_instance("order", 1, CreateInstanceOptions::default().instance_id("order-1"))
//!     .await?;
//! // An idempotency key makes a retry after a lost connection safe.
//! let options = ApplyEventOptions::default()
//!     .expected_state(created.state)
//!     .idempotency_key("pay-order-1");
//! client.apply_event("order-1", "PAY", options).await?;
//!
//! if let Some(event) = paid.next().await {
//!     let event = event?;
//!     println!("{} went {} -> {}", event.instance_id, event.from_state, event.to_state);
//! }
//! client.close().await
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod client;
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

pub use client::{
    ApplyEventOptions, Client, ClientError, ClientOptions, CreateInstanceOptions, PemSource,
    RawResult, ReconnectPolicy, Subscription, TlsOptions, WatchStart,
};
pub use error::{AuthFailure, RcpError};
pub use error_code::ErrorCode;
pub use fault::{FrameFault, WireError};
pub use frame::FrameCodec;
pub use jsonl::JsonlCodec;
pub use message::{
    Event, MessageError, Outcome, Response, ResponseMeta, ResultError, ServerMessage, StreamError,
    encode_response,
};
pub use ops::Op;
pub use params::OpParams;
pub use request::{Request, RequestError};
pub use wire::{WireCodec, WireMode};
