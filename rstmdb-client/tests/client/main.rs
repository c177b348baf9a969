//! The client's tests against an in-process fake server (`client_support`), in one binary: ops,
//! pipelining, reconnect, subscription backpressure and TLS.

mod client_ops;
mod client_pipelining;
mod client_reconnect;
mod client_subscription_backpressure;
mod client_tls;

mod client_support;
