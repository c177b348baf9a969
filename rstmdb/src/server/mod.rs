//! The RCP server's network layer (spec §2, §3.7, §4.1–§4.6, §4.24, §8): sockets in, frames
//! and sessions, requests handed to an [`OpHandler`](crate::service::OpHandler), responses and
//! pushed events out. What a request does is `crate::service`'s business.
//!
//! - [`listener`]: accept loop, TLS handshake, connection limit, graceful shutdown; start at
//!   [`Server::bind`] and [`Server::run_until`].
//! - `connection`: one connection's reader — wire-mode detection, request parsing, pipelining
//!   with backpressure, framing faults and the Closing procedure.
//! - `writer`: writes responses in request order and pushed events between them.
//! - `session`: the ops the server answers itself (HELLO, AUTH, PING, BYE, INFO,
//!   REPLICATION_STATUS, REPLICATE*) and the auth gate.
//! - [`observer`]: [`ServerObserver`], how the layer reports connections, requests and errors
//!   (the metrics implement it); `request_timer`: one request's span and timing.
//! - [`auth`], [`tls`], [`settings`]: tokens, certificates, the layer's plain settings.

mod activity;
pub mod auth;
mod budget;
mod connection;
pub mod listener;
mod log_limit;
pub mod observer;
mod request_timer;
mod session;
pub mod settings;
pub mod tls;
mod writer;

pub use auth::{AuthSettings, BeforeAuthLimits};
pub use connection::{CLOSING_DRAIN, MAX_IN_FLIGHT_PER_CONNECTION};
pub use listener::{MAX_LINGERING_REFUSALS, SHUTDOWN_GRACE, Server, ServerError};
pub use observer::{NoObserver, ServerObserver};
pub use settings::ServerSettings;
pub use tls::{TLS_HANDSHAKE_TIMEOUT, TlsError, TlsSettings};
