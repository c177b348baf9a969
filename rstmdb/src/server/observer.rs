//! What the network layer reports about itself: connections, requests and errors (spec §10).
//! The metrics implement [`ServerObserver`]; the server never imports them, so the arrow points
//! from `metrics` down to here.

use rstmdb_protocol::{ErrorCode, Op};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Told about every connection, answered request and error the server sends. Called on the
/// request path, so implementations must be cheap and must not block.
pub trait ServerObserver: Send + Sync + fmt::Debug {
    /// A connection was accepted; it counts as open until [`ServerObserver::connection_closed`].
    fn connection_opened(&self);

    /// A connection opened earlier has ended, whichever way (peer gone, BYE, idle, fault,
    /// shutdown, task aborted).
    fn connection_closed(&self);

    /// A request was answered after `elapsed` (for a write: once it was durable); `error` is
    /// the code of an error response.
    fn request_finished(&self, op: Op, elapsed: Duration, error: Option<&ErrorCode>);

    /// An error was sent outside any parsed request: a framing fault, an unparseable envelope,
    /// a connection refused over the limit.
    fn error_sent(&self, code: &ErrorCode);
}

/// The observer of a server run without metrics.
#[derive(Debug, Default)]
pub struct NoObserver;

impl ServerObserver for NoObserver {
    fn connection_opened(&self) {}
    fn connection_closed(&self) {}
    fn request_finished(&self, _: Op, _: Duration, _: Option<&ErrorCode>) {}
    fn error_sent(&self, _: &ErrorCode) {}
}

/// An open connection as the observer counts it: dropping the guard reports the close, so every
/// way a connection task ends is counted exactly once.
#[derive(Debug)]
pub(crate) struct OpenConnection(Arc<dyn ServerObserver>);

impl OpenConnection {
    pub(crate) fn new(observer: &Arc<dyn ServerObserver>) -> OpenConnection {
        observer.connection_opened();
        OpenConnection(Arc::clone(observer))
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connection_closed();
    }
}
