//! One live connection: a writer task fed by a bounded channel, a reader task that routes
//! responses to pending requests by id and events to subscriptions by subscription id.
//!
//! Ids are `"1"`, `"2"`, … per connection, like the public clients (§1.2). When either task
//! stops (EOF, I/O error, framing fault, malformed message), the connection is closed for
//! good: every pending request fails with [`ClientError::ConnectionLost`] and the reconnect
//! supervisor takes over. A connection is never reused after that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use crate::limits::MAX_PAYLOAD_BYTES;
use crate::message::{RawOutcome, RawResponse, ServerMessage};
use crate::ops::Op;
use crate::request::Request;
use crate::wire::{WireCodec, WireMode};

use super::error::ClientError;
use super::subscription::SubEntry;

/// A byte stream the client can speak RCP over: TCP or TLS over TCP.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Transport for T {}

type Reply = oneshot::Sender<Result<RawResponse, ClientError>>;

/// A request waiting for its response. A WATCH request also carries the subscription to
/// route events to, so the reader can register the route before it reads the next message:
/// events may follow the WATCH response immediately (§3.7).
struct Pending {
    reply: Reply,
    watch: Option<Arc<SubEntry>>,
}

/// Pending requests by id; `open` turns false exactly once, when the connection closes, so a
/// request can never be left waiting on a connection whose reader is gone.
#[derive(Default)]
struct PendingTable {
    open: bool,
    by_id: HashMap<String, Pending>,
}

/// State the two tasks and the callers share.
struct Shared {
    pending: Mutex<PendingTable>,
    /// Server subscription id → the client-side subscription it feeds (this connection only:
    /// server ids die with their connection, §8.3).
    routes: Mutex<HashMap<String, Arc<SubEntry>>>,
    closed: CancellationToken,
    close_reason: Mutex<Option<String>>,
}

impl Shared {
    /// Records the first reason only: later ones are consequences of it.
    fn close(&self, reason: impl Into<String>) {
        let mut slot = lock(&self.close_reason);
        if slot.is_none() {
            *slot = Some(reason.into());
        }
        drop(slot);
        self.closed.cancel();
    }

    fn reason(&self) -> String {
        lock(&self.close_reason)
            .clone()
            .unwrap_or_else(|| "connection closed".to_owned())
    }

    /// Fails every pending request; no new one is accepted afterwards.
    fn fail_pending(&self) {
        let drained: Vec<Pending> = {
            let mut table = lock(&self.pending);
            table.open = false;
            table.by_id.drain().map(|(_, pending)| pending).collect()
        };
        let reason = self.reason();
        for pending in drained {
            let _ = pending.reply.send(Err(ClientError::lost(reason.clone())));
        }
    }
}

/// A poisoned lock only means another task panicked while holding it; the maps stay usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes a pending entry when its caller stops waiting (timeout, dropped future), so a late
/// response is discarded instead of accumulating.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: String,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.shared.pending).by_id.remove(&self.id);
    }
}

/// One in-flight slot, shared by the caller (until it has its answer or gives up) and the
/// queued request (until the writer takes it). A slot therefore frees only when both are
/// done, which bounds the writer's queue by the number of slots: queueing never waits.
type Slot = Arc<OwnedSemaphorePermit>;

/// A request on its way to the writer.
struct Outgoing {
    payload: String,
    _slot: Slot,
}

/// A connection after the transport is up; HELLO and AUTH are the caller's business.
pub(crate) struct Connection {
    outbound: mpsc::Sender<Outgoing>,
    shared: Arc<Shared>,
    in_flight: Arc<Semaphore>,
    /// The next request id; its lock also orders queueing (see `enqueue`).
    next_id: Mutex<u64>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Starts the reader and writer tasks on `transport`.
    pub(crate) fn start(
        transport: impl Transport,
        max_in_flight_requests: usize,
        max_frame_bytes: usize,
    ) -> Arc<Self> {
        let (read_half, write_half) = tokio::io::split(transport);
        let shared = Arc::new(Shared {
            pending: Mutex::new(PendingTable {
                open: true,
                by_id: HashMap::new(),
            }),
            routes: Mutex::new(HashMap::new()),
            closed: CancellationToken::new(),
            close_reason: Mutex::new(None),
        });
        let in_flight = max_in_flight_requests.max(1);
        let (outbound, outbound_rx) = mpsc::channel(in_flight);
        let codec = WireCodec::new(WireMode::BinaryJson, max_frame_bytes);
        tokio::spawn(write_loop(
            FramedWrite::new(write_half, codec.clone()),
            outbound_rx,
            shared.clone(),
        ));
        tokio::spawn(read_loop(FramedRead::new(read_half, codec), shared.clone()));
        Arc::new(Self {
            outbound,
            shared,
            in_flight: Arc::new(Semaphore::new(in_flight)),
            next_id: Mutex::new(1),
        })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.is_cancelled()
    }

    /// Resolves when the connection has closed, with the reason.
    pub(crate) async fn closed(&self) -> String {
        self.shared.closed.cancelled().await;
        self.shared.reason()
    }

    /// Closes the connection: pending requests fail, the tasks stop, the socket is dropped.
    pub(crate) fn shut_down(&self, reason: &str) {
        self.shared.close(reason);
    }

    /// Sends one request and waits for its response. Server error responses come back as
    /// `Ok(response)`; the caller decides what they mean. No timeout here: callers wrap the
    /// whole call, and dropping this future withdraws the request.
    pub(crate) async fn request(
        &self,
        op: Op,
        params: Map<String, Value>,
        watch: Option<Arc<SubEntry>>,
    ) -> Result<RawResponse, ClientError> {
        let slot: Slot = Arc::new(
            self.in_flight
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| ClientError::lost(self.shared.reason()))?,
        );
        let (reply, response) = oneshot::channel();
        let id = self.enqueue(op, params, Pending { reply, watch }, slot.clone())?;
        let _guard = PendingGuard {
            shared: &self.shared,
            id,
        };
        response
            .await
            .map_err(|_| ClientError::lost(self.shared.reason()))?
    }

    /// Numbers the request, registers it as pending and queues it for the writer, all under
    /// one lock, so ids go out on the wire in increasing order like the public clients'.
    /// Queueing never waits: the queue has one place per slot (see [`Slot`]).
    fn enqueue(
        &self,
        op: Op,
        params: Map<String, Value>,
        pending: Pending,
        slot: Slot,
    ) -> Result<String, ClientError> {
        let mut next_id = lock(&self.next_id);
        let id = next_id.to_string();
        let payload = serde_json::to_string(&Request::new(id.clone(), op, params))
            .map_err(|e| ClientError::Protocol(format!("cannot serialise {op} request: {e}")))?;
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(ClientError::RequestTooLarge {
                size_bytes: payload.len(),
                limit_bytes: MAX_PAYLOAD_BYTES,
            });
        }
        {
            let mut table = lock(&self.shared.pending);
            if !table.open {
                return Err(ClientError::lost(self.shared.reason()));
            }
            table.by_id.insert(id.clone(), pending);
        }
        let outgoing = Outgoing {
            payload,
            _slot: slot,
        };
        if self.outbound.try_send(outgoing).is_err() {
            lock(&self.shared.pending).by_id.remove(&id);
            return Err(ClientError::lost(self.shared.reason()));
        }
        *next_id += 1;
        Ok(id)
    }

    /// Stops routing a subscription's events (after UNWATCH or when it is dropped).
    pub(crate) fn forget_route(&self, server_id: &str) {
        lock(&self.shared.routes).remove(server_id);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.close("client dropped the connection");
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut sink: FramedWrite<W, WireCodec>,
    mut outbound: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
) {
    loop {
        let payload = tokio::select! {
            _ = shared.closed.cancelled() => break,
            payload = outbound.recv() => payload,
        };
        let Some(outgoing) = payload else { break };
        // Everything already queued goes out in one flush: pipelined requests share syscalls.
        let mut result = sink.feed(outgoing.payload).await;
        while result.is_ok() {
            match outbound.try_recv() {
                Ok(more) => result = sink.feed(more.payload).await,
                Err(_) => break,
            }
        }
        if let Err(error) = result.and(SinkExt::<String>::flush(&mut sink).await) {
            shared.close(format!("write failed: {error}"));
            break;
        }
    }
    shared.fail_pending();
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut source: FramedRead<R, WireCodec>,
    shared: Arc<Shared>,
) {
    loop {
        let frame = tokio::select! {
            _ = shared.closed.cancelled() => break,
            frame = source.next() => frame,
        };
        let payload = match frame {
            Some(Ok(payload)) => payload,
            Some(Err(error)) => {
                shared.close(format!("read failed: {error}"));
                break;
            }
            None => {
                shared.close("server closed the connection");
                break;
            }
        };
        match ServerMessage::parse_raw(&payload) {
            Ok(message) => route(&shared, message).await,
            Err(error) => {
                shared.close(format!("protocol violation: {error}"));
                break;
            }
        }
    }
    shared.fail_pending();
}

async fn route(shared: &Shared, message: ServerMessage<RawResponse>) {
    match message {
        ServerMessage::Response(response) => deliver_response(shared, response),
        ServerMessage::Event(event) => {
            let server_id = event.subscription_id.clone();
            let entry = lock(&shared.routes).get(&server_id).cloned();
            if let Some(entry) = entry {
                // Awaiting here is the backpressure: a full subscription buffer pauses reading
                // rather than dropping an event (the server then catches up from its WAL).
                if !entry.deliver(event).await {
                    lock(&shared.routes).remove(&server_id);
                }
            }
        }
        ServerMessage::StreamError(stream_error) => {
            let entry = lock(&shared.routes).remove(&stream_error.subscription_id);
            if let Some(entry) = entry {
                entry.end(ClientError::Server(stream_error.error)).await;
            }
        }
        // Unknown message types are skipped (§1.3).
        ServerMessage::Unknown { .. } => {}
    }
}

fn deliver_response(shared: &Shared, response: RawResponse) {
    let pending = lock(&shared.pending).by_id.remove(&response.id);
    let Some(pending) = pending else {
        // An error with id "" belongs to no request (§2.8): a framing fault report or the
        // connection-limit rejection. A close normally follows; keep it as the reason.
        if let RawOutcome::Error { error } = &response.outcome {
            let mut reason = lock(&shared.close_reason);
            if reason.is_none() {
                *reason = Some(format!("server error {}: {}", error.code, error.message));
            }
        }
        return;
    };
    if let (Some(entry), RawOutcome::Ok { result, .. }) = (&pending.watch, &response.outcome)
        && let Some(server_id) = entry.on_subscribed(result)
    {
        lock(&shared.routes).insert(server_id, entry.clone());
    }
    let _ = pending.reply.send(Ok(response));
}
