//! Cluster mode on the client port (spec §12.2): a write that reaches a node that does not
//! lead is relayed to the leader, and the leader's answer goes back unchanged. A connection's
//! relayed writes go in arrival order through its lane (§3.7: a later write may depend on an
//! earlier one): what queued while one message travelled goes in the next, whole, and the
//! leader queues them in that order. Different connections' writes travel side by side.

use super::dispatch::DatabaseHandler;
use crate::cluster::forward::{ForwardTarget, Forwarder, MAX_FORWARD_BATCH, Route};
use crate::cluster::rpc::{ForwardedRequest, ForwardedResponse};
use rstmdb_protocol::{EncodedResponse, RcpError, Request};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Writes one connection may have waiting for its lane; a client pipelining more gets
/// `RATE_LIMITED` for the excess.
pub const MAX_QUEUED_FORWARDS: usize = 1024;

struct Queued {
    request: ForwardedRequest,
    started: Instant,
    reply: oneshot::Sender<Result<Route, RcpError>>,
}

/// A connection's writes on their way to the leader; the task behind it ends with the
/// connection (when the last clone is dropped).
#[derive(Debug, Clone)]
pub struct ForwardLane {
    queue: mpsc::Sender<Queued>,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued")
            .field("id", &self.request.id)
            .finish()
    }
}

impl ForwardLane {
    pub(crate) fn start(forwarder: Forwarder) -> ForwardLane {
        let (queue, mut queued) = mpsc::channel::<Queued>(MAX_QUEUED_FORWARDS);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_FORWARD_BATCH);
            // Whatever queued while the last batch travelled goes in the next one, in order.
            while queued.recv_many(&mut batch, MAX_FORWARD_BATCH).await > 0 {
                let started = batch
                    .iter()
                    .map(|q| q.started)
                    .min()
                    .unwrap_or_else(Instant::now);
                let (requests, replies): (Vec<_>, Vec<_>) =
                    batch.drain(..).map(|q| (q.request, q.reply)).unzip();
                let answers = forwarder.forward(requests, started).await;
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
        });
        ForwardLane { queue }
    }

    /// Queues `request` now (so the lane keeps the arrival order); the answer comes later,
    /// within `write_timeout` from `started`.
    pub(crate) fn send(
        &self,
        request: &Request,
        started: Instant,
    ) -> impl Future<Output = Result<Route, RcpError>> + Send + 'static + use<> {
        let (reply, answer) = oneshot::channel();
        let queued = self.queue.try_send(Queued {
            request: ForwardedRequest {
                id: request.id.clone(),
                op: request.op,
                params: request.params.clone(),
            },
            started,
            reply,
        });
        async move {
            match queued {
                Ok(()) => answer
                    .await
                    .map_err(|_| RcpError::internal("the forwarding lane stopped"))?,
                Err(mpsc::error::TrySendError::Full(_)) => Err(RcpError::with_reason(
                    rstmdb_protocol::ErrorCode::RateLimited,
                    "forward_queue_full",
                    format!(
                        "more than {MAX_QUEUED_FORWARDS} writes of this connection wait for \
                         the leader"
                    ),
                )),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    Err(RcpError::internal("the forwarding lane stopped"))
                }
            }
        }
    }
}

/// The leader's side: runs what followers relay as if a client of this node sent it.
pub(crate) struct ForwardedWrites {
    pub(crate) handler: Arc<DatabaseHandler>,
}

impl ForwardTarget for ForwardedWrites {
    fn run(
        &self,
        requests: Vec<ForwardedRequest>,
    ) -> Pin<Box<dyn Future<Output = Vec<ForwardedResponse>> + Send>> {
        // Each is queued here, in order, before any is awaited: they keep the follower
        // connection's order and share the leader's next group.
        let answers: Vec<_> = requests
            .into_iter()
            .map(|request| {
                self.handler.run_forwarded(Request {
                    id: request.id,
                    op: request.op,
                    params: request.params,
                })
            })
            .collect();
        Box::pin(async move {
            futures::future::join_all(answers)
                .await
                .into_iter()
                .map(|answer| {
                    let (payload, error) = answer.into_parts();
                    ForwardedResponse { payload, error }
                })
                .collect()
        })
    }
}

/// What a relayed answer becomes on the follower's connection.
pub(crate) fn relayed(id: &str, response: ForwardedResponse) -> EncodedResponse {
    EncodedResponse::from_parts(id, response.payload, response.error)
}
