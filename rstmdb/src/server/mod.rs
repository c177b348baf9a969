//! The RCP server's network layer (spec §2, §3.7, §4.0–§4.6, §4.24, §8).
//!
//! - [`listener`]: accept loop, TLS handshake, connection limit, graceful shutdown; start at
//!   [`Server::bind`] and [`Server::run_until`].
//! - `connection`: one connection's reader — wire-mode detection, request parsing, pipelining
//!   with backpressure, framing faults and the Closing procedure.
//! - `writer`: writes responses in request order and pushed events between them.
//! - `outbound`: the pushed messages (events pre-serialised once per transition, spliced per
//!   subscription) and the bounded queue that carries them to the writer.
//! - `session`: the ops the server answers itself (HELLO, AUTH, PING, BYE, INFO,
//!   REPLICATION_STATUS, REPLICATE*) and the auth gate.
//! - [`handler`]: the [`OpHandler`] trait the database implements for data ops, and the
//!   [`ConnectionContext`] it gets (event push, subscriptions, close notification).
//! - [`auth`], [`tls`], [`settings`]: tokens, certificates, configuration.
//! - [`watch`]: watch streams — the subscription hub, one task per subscription, filters
//!   (docs/watch-streams.md).
//! - [`value_depth`]: the nesting limit of stored JSON values (ctx, payload, definitions).
//! - [`echo`]: a stand-in handler for tests and for `serve` until the engine is plugged in.

mod activity;
pub mod auth;
mod connection;
pub mod dispatch;
pub mod echo;
pub mod handler;
pub mod listener;
mod outbound;
mod session;
pub mod settings;
pub mod tls;
pub mod value_depth;
pub mod watch;
mod writer;

pub use connection::{CLOSING_DRAIN, MAX_IN_FLIGHT_PER_CONNECTION};
pub use dispatch::DatabaseHandler;
pub use echo::EchoHandler;
pub use handler::{
    ConnectionContext, OUTBOUND_QUEUE_MESSAGES, OpHandler, Outbound, PushError, ResponseFuture,
};
pub use listener::{MAX_LINGERING_REFUSALS, SHUTDOWN_GRACE, Server, ServerError};
pub use outbound::{EventBatch, EventHead};
pub use session::{SERVER_FEATURES, SERVER_NAME, SERVER_VERSION};
pub use settings::ServerSettings;
pub use tls::{TLS_HANDSHAKE_TIMEOUT, TlsError, TlsSettings};
