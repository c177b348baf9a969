//! One request's observation: a debug-level span (op, connection id) for its lifetime, and, at
//! the end, its duration in the log and a report to the [`ServerObserver`] (the metrics count
//! it). Params are never recorded: AUTH carries a token.

use super::observer::ServerObserver;
use futures::FutureExt;
use rstmdb_protocol::Op;
use rstmdb_protocol::{EncodedResponse, ErrorCode};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Started when a request's envelope has been parsed; finished with its response.
#[derive(Debug)]
pub(crate) struct RequestTimer {
    op: Op,
    started: Instant,
    span: tracing::Span,
    observer: Arc<dyn ServerObserver>,
}

impl RequestTimer {
    /// `request_id` is logged escaped (`Debug`): it is client text and must not be able to
    /// forge log lines or drive a terminal.
    pub fn start(observer: &Arc<dyn ServerObserver>, conn: u64, op: Op, request_id: &str) -> Self {
        let span =
            tracing::debug_span!("request", op = op.as_str(), conn, request_id = ?request_id);
        Self {
            op,
            started: Instant::now(),
            span,
            observer: Arc::clone(observer),
        }
    }

    /// The span to run the request's work in.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Records a response that is already there (ops the session answers itself); `code` is
    /// its error's, `None` for a success.
    pub fn finish(self, code: Option<&ErrorCode>) {
        let elapsed = self.started.elapsed();
        let _entered = self.span.enter();
        let status = if code.is_some() { "error" } else { "ok" };
        tracing::debug!(
            duration_us = elapsed.as_micros() as u64,
            status,
            code = code.map(|code| code.as_str()),
            "request finished"
        );
        self.observer.request_finished(self.op, elapsed, code);
    }

    /// Wraps a pending response: the work runs inside the span, and the request is recorded
    /// when the response is ready (for a write: once it is durable).
    pub fn finish_with<F>(
        self,
        response: F,
    ) -> impl Future<Output = EncodedResponse> + Send + 'static
    where
        F: Future<Output = EncodedResponse> + Send + 'static,
    {
        let span = self.span.clone();
        response
            .map(move |response| {
                self.finish(response.error_code());
                response
            })
            .instrument(span)
    }
}
