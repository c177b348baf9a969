//! The boundary the network layer calls through: [`OpHandler`] executes data ops, and
//! [`ConnectionContext`] lets it push events onto a connection and learn when it closes. The
//! network layer creates one context per connection and drains its outbound queue; nothing
//! here knows about sockets.

use super::forwarding::ForwardLane;
pub use super::outbound::{OUTBOUND_QUEUE_MESSAGES, Outbound, PushError};
use super::outbound::{OutboundReceiver, OutboundSender, outbound_queue};
use rstmdb_protocol::EncodedResponse;
use rstmdb_protocol::request::Request;
use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Resolves to a request's response once it may be sent (for a write: once it is durable),
/// encoded: the encoding runs where the future is polled, or wherever the handler built a large
/// result.
pub type ResponseFuture = Pin<Box<dyn Future<Output = EncodedResponse> + Send + 'static>>;

/// Executes data operations: everything except HELLO, AUTH, PING, BYE, INFO,
/// REPLICATION_STATUS, REPLICATE and REPLICATE_ACK, which the session answers itself.
///
/// Ordering contract (spec §3.7): for one connection, `start` is called in arrival order, and
/// the session writes the responses in that same order. The session calls `start` for request
/// N+1 before N's future has resolved (up to the server's in-flight limit per connection), so
/// durability waits overlap and one group commit can cover several pipelined writes. The work
/// that orders requests (e.g. handing a command to the sequencer) must therefore happen inside
/// `start` itself, not inside the returned future. All unresolved futures of a connection are
/// polled concurrently.
///
/// A panic in `start` or in the future is caught and answered with `INTERNAL_ERROR`.
pub trait OpHandler: Send + Sync + 'static {
    fn start(&self, conn: &ConnectionContext, request: Request) -> ResponseFuture;

    /// Whether REPLICATION_STATUS goes to this handler (a cluster node) rather than being
    /// answered `standalone` by the session.
    fn answers_replication_status(&self) -> bool {
        false
    }

    /// Called once after the server stopped accepting and every connection finished its
    /// in-flight requests (graceful shutdown); the place to sync the WAL.
    fn shutdown(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

/// One connection, as the handler sees it. Cheap to clone; a clone may outlive the request
/// (a subscription keeps one).
#[derive(Debug, Clone)]
pub struct ConnectionContext {
    inner: Arc<ContextInner>,
}

#[derive(Debug)]
struct ContextInner {
    id: u64,
    peer_addr: SocketAddr,
    outbound: OutboundSender,
    closed: CancellationToken,
    /// Live subscriptions. The writer drops a queued event whose subscription is no longer
    /// here, so none is written after the UNWATCH response that ended it (§3.7); the set is
    /// bounded by the live subscriptions, not by how many ever existed.
    subscriptions: Mutex<HashSet<String>>,
    /// Cluster mode: the connection's writes relayed to the leader, in order.
    forward_lane: std::sync::OnceLock<ForwardLane>,
}

impl ConnectionContext {
    pub(crate) fn new(id: u64, peer_addr: SocketAddr) -> (Self, OutboundReceiver) {
        let (outbound, receiver) = outbound_queue(OUTBOUND_QUEUE_MESSAGES);
        let inner = ContextInner {
            id,
            peer_addr,
            outbound,
            closed: CancellationToken::new(),
            subscriptions: Mutex::new(HashSet::new()),
            forward_lane: std::sync::OnceLock::new(),
        };
        let context = Self {
            inner: Arc::new(inner),
        };
        (context, receiver)
    }

    /// The connection's lane to the leader (cluster mode), made on its first forwarded write.
    pub(crate) fn forward_lane(&self, make: impl FnOnce() -> ForwardLane) -> &ForwardLane {
        self.inner.forward_lane.get_or_init(make)
    }

    /// A number unique among this server's connections, for logs.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer_addr
    }

    /// Queues an event or stream error without waiting. `Full` means the writer is behind.
    pub fn try_push(&self, message: Outbound) -> Result<(), PushError> {
        self.inner.outbound.try_send(message)
    }

    /// Queues an event or stream error, waiting while the queue is full.
    pub async fn push(&self, message: Outbound) -> Result<(), PushError> {
        self.inner.outbound.send(message).await
    }

    /// Resolves when the connection has closed, for whatever reason; its subscriptions end.
    pub async fn closed(&self) {
        self.inner.closed.cancelled().await;
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.is_cancelled()
    }

    /// Records a new subscription, before any of its events is pushed. A connection holding a
    /// subscription is never closed for idleness (§8.4).
    pub fn subscription_started(&self, subscription_id: &str) {
        self.lock_subscriptions().insert(subscription_id.to_owned());
    }

    /// Records that a subscription ended. Call it inside `start` for UNWATCH (so before its
    /// response can be written) and when pushing a stream error; events of the subscription
    /// still queued are then dropped. Unknown ids are ignored.
    pub fn subscription_ended(&self, subscription_id: &str) {
        self.lock_subscriptions().remove(subscription_id);
    }

    pub fn holds_subscription(&self) -> bool {
        !self.lock_subscriptions().is_empty()
    }

    pub fn has_subscription(&self, subscription_id: &str) -> bool {
        self.lock_subscriptions().contains(subscription_id)
    }

    /// Whether a queued message must not be written: an event of a subscription that is not
    /// live. A stream error is the final message of its subscription, so it is always written.
    pub(crate) fn is_stale(&self, message: &Outbound) -> bool {
        !matches!(message, Outbound::StreamError(_))
            && !self
                .lock_subscriptions()
                .contains(message.subscription_id())
    }

    pub(crate) fn mark_closed(&self) {
        self.inner.closed.cancel();
    }

    fn lock_subscriptions(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // The set holds plain strings, so a panic elsewhere cannot leave it inconsistent.
        self.inner
            .subscriptions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
