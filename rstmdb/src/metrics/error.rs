//! What can go wrong setting up metrics or their endpoint.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Two metrics with one name, or an invalid name or label: a programming error, reported
    /// at start-up rather than panicking.
    #[error("cannot register metric: {0}")]
    Register(#[from] prometheus::Error),
    #[error("cannot listen for metrics on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}
