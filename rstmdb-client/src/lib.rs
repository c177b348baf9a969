//! rstmdb-client: the async Rust client of rstmdb.
//!
//! [`Client`] pipelines requests over one TCP/TLS connection, has a typed method per op, turns
//! watch streams into [`Subscription`]s and reconnects with backoff; start at [`client`]. The
//! wire protocol itself lives in the `rstmdb-protocol` crate, re-exported here whole, so a
//! client user needs one dependency:
//! [`frame`], [`jsonl`] and [`wire`] (framing), [`request`] and [`message`] (envelopes),
//! [`ops`], [`params`] and [`results`] (typed ops), [`error_code`] and [`error`] (errors).
//! [`terminal_text`] makes database strings safe to print, for the tools built on the client.
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
pub mod terminal_text;

pub use client::{
    ApplyEventOptions, Client, ClientError, ClientOptions, CreateInstanceOptions, PemSource,
    RawResult, ReconnectPolicy, Subscription, TlsOptions, WatchStart,
};
pub use rstmdb_protocol::{
    AuthFailure, ErrorCode, Event, FrameCodec, FrameFault, JsonlCodec, MessageError, Op, OpParams,
    Outcome, RawOutcome, RawResponse, RcpError, Request, RequestError, Response, ResponseMeta,
    ResultError, ServerMessage, StreamError, WireCodec, WireError, WireMode, encode_response,
};
pub use rstmdb_protocol::{
    error, error_code, fault, frame, jsonl, limits, message, ops, params, request, results, wire,
};
