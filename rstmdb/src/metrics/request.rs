//! One request's observation: a debug-level span (op, connection id) for its lifetime, and, at
//! the end, its duration in the log, the request counter, the latency histogram and, for an
//! error response, the error counter. Params are never recorded: AUTH carries a token.

use super::Metrics;
use futures::FutureExt;
use rstmdb_client::message::{Outcome, Response};
use rstmdb_client::{Op, Request};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Started when a request's envelope has been parsed; finished with its response.
#[derive(Debug)]
pub struct RequestTimer {
    op: Op,
    started: Instant,
    span: tracing::Span,
    metrics: Option<Arc<Metrics>>,
}

impl RequestTimer {
    pub fn start(metrics: Option<&Arc<Metrics>>, conn: u64, request: &Request) -> Self {
        let span = tracing::debug_span!(
            "request",
            op = request.op.as_str(),
            conn,
            request_id = %request.id,
        );
        Self {
            op: request.op,
            started: Instant::now(),
            span,
            metrics: metrics.cloned(),
        }
    }

    /// The span to run the request's work in.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Records a response that is already there (ops the session answers itself).
    pub fn finish(self, response: &Response) {
        let elapsed = self.started.elapsed();
        let _entered = self.span.enter();
        let (status, code) = match &response.outcome {
            Outcome::Ok { .. } => ("ok", None),
            Outcome::Error { error } => ("error", Some(error.code.as_str())),
        };
        tracing::debug!(
            duration_us = elapsed.as_micros() as u64,
            status,
            code,
            "request finished"
        );
        if let Some(metrics) = &self.metrics {
            metrics.server.request_finished(self.op, elapsed);
            if let Some(code) = code {
                metrics.server.error(code);
            }
        }
    }

    /// Wraps a pending response: the work runs inside the span, and the request is recorded
    /// when the response is ready (for a write: once it is durable).
    pub fn finish_with<F>(self, response: F) -> impl Future<Output = Response> + Send + 'static
    where
        F: Future<Output = Response> + Send + 'static,
    {
        let span = self.span.clone();
        response
            .map(move |response| {
                self.finish(&response);
                response
            })
            .instrument(span)
    }
}
