//! One connection: reads requests in arrival order, answers session ops, starts data ops on the
//! handler (pipelined, bounded), and ends through the Closing procedure of spec §2.8.

use super::activity::ActivityReader;
use super::auth::BeforeAuthLimits;
use super::budget::{ByteBudget, Charge};
use super::log_limit::LogLimit;
use super::observer::ServerObserver;
use super::request_timer::RequestTimer;
use super::session::{Session, SessionShared, Step};
use super::writer::{DetectedMode, Pending, Writer, WriterEnd};
use crate::service::{ConnectionContext, OpHandler, OutboundReceiver, ResponseFuture};
use futures::{FutureExt, StreamExt};
use rstmdb_protocol::error::RcpError;
use rstmdb_protocol::fault::{FrameFault, WireError};
use rstmdb_protocol::message::{Outcome, Response};
use rstmdb_protocol::request::{Request, RequestEnvelope};
use rstmdb_protocol::wire::WireCodec;
use rstmdb_protocol::{EncodedResponse, ErrorCode, Op};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

/// Requests of one connection that may be started but not yet answered. When it is reached
/// the connection stops reading until a response is written (backpressure, §3.7).
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 128;

/// How long the Closing procedure keeps reading and discarding after shutting down its
/// sending side (§2.8).
pub const CLOSING_DRAIN: Duration = Duration::from_secs(1);

/// How often an idle check that found a subscription or a request in flight looks again.
const IDLE_RECHECK: Duration = Duration::from_secs(1);

/// What every connection of one server shares.
#[derive(Clone)]
pub(crate) struct ConnectionEnv {
    pub session: Arc<SessionShared>,
    pub handler: Arc<dyn OpHandler>,
    pub idle_timeout: Option<Duration>,
    /// How long one pending write may take in total; `None`: forever.
    pub write_timeout: Option<Duration>,
    /// Spec §13, when auth is required.
    pub before_auth: Option<BeforeAuthLimits>,
    /// Bytes of requests and unwritten responses one connection may hold.
    pub max_pending_bytes: usize,
    /// Request bytes all connections together may hold; `None`: no such bound.
    pub inflight: Option<Arc<ByteBudget>>,
    /// Cancelled on graceful shutdown: stop reading, answer what is in flight, close.
    pub shutdown: CancellationToken,
    /// Told about every request and error (the metrics count them).
    pub observer: Arc<dyn ServerObserver>,
    /// Failed AUTHs are logged (the audit trail), at most this often.
    pub auth_failure_log: Arc<LogLimit>,
}

/// Why the reader stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadEnd {
    /// The peer finished sending: answer everything, then close.
    PeerClosed,
    /// A final message is queued (BYE, framing fault, third AUTH failure): Closing procedure.
    CloseAfterFinal,
    /// Server shutdown: answer what is in flight, then Closing procedure.
    Shutdown,
    /// Idle timeout: close silently.
    Idle,
    /// No successful AUTH within the deadline (§13): close silently.
    AuthTimeout,
    /// The writer stopped (the peer is gone) or the transport failed.
    Broken,
}

type Reader<R> = FramedRead<ActivityReader<R>, WireCodec>;

/// A connection that has not authenticated yet, while auth is required (§13).
struct Unauthenticated {
    /// One of `auth.max_unauthenticated_connections`, given back when AUTH succeeds.
    _slot: OwnedSemaphorePermit,
    deadline: Option<Instant>,
    max_frame_bytes: usize,
}

/// Serves one connection until it closes. Marks `context` closed at the end, which ends its
/// subscriptions. `unauthenticated_slot` is present when auth is required.
pub(crate) async fn serve<S>(
    stream: S,
    context: ConnectionContext,
    outbound: OutboundReceiver,
    env: Arc<ConnectionEnv>,
    unauthenticated_slot: Option<OwnedSemaphorePermit>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (read_half, write_half) = tokio::io::split(stream);
    let max_frame_bytes = env.session.max_frame_bytes;
    let unauthenticated = match (unauthenticated_slot, &env.before_auth) {
        (Some(slot), Some(limits)) => Some(Unauthenticated {
            _slot: slot,
            deadline: limits.timeout.map(|timeout| Instant::now() + timeout),
            max_frame_bytes: limits.max_frame_bytes.min(max_frame_bytes),
        }),
        _ => None,
    };
    let mut codec = WireCodec::detect(max_frame_bytes);
    if let Some(unauthenticated) = &unauthenticated {
        // Decided from the header or line length, before the payload is buffered (§13).
        codec.set_max_frame_bytes(unauthenticated.max_frame_bytes);
    }
    let mut reader = FramedRead::new(ActivityReader::new(read_half), codec);
    let budget = ByteBudget::new(env.max_pending_bytes);
    let (queue, queue_rx) = mpsc::unbounded_channel();
    let detected_mode = Arc::new(DetectedMode::default());
    let mut writer = WriterTask(tokio::spawn(
        Writer {
            sink: write_half,
            queue: queue_rx,
            outbound,
            context: context.clone(),
            detected_mode: detected_mode.clone(),
            max_frame_bytes,
            write_timeout: env.write_timeout,
            budget: budget.clone(),
        }
        .run(),
    ));

    let mut requests = RequestLoop {
        env: &env,
        context: &context,
        session: Session::new(env.session.clone()),
        queue,
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_CONNECTION)),
        detected_mode,
        budget,
        unauthenticated,
    };
    let end = requests.run(&mut reader, &mut writer.0).await;
    drop(requests);
    tracing::debug!(conn = context.id(), ?end, "connection reader stopped");

    // The connection counts as closed (its subscriptions end) as soon as nothing more will be
    // written, before the Closing drain.
    match end {
        ReadEnd::Idle | ReadEnd::AuthTimeout | ReadEnd::Broken => {
            writer.0.abort();
            context.mark_closed();
        }
        ReadEnd::PeerClosed => {
            let _ = (&mut writer.0).await;
            context.mark_closed();
        }
        ReadEnd::CloseAfterFinal | ReadEnd::Shutdown => {
            let finished = discard_until(&mut reader, &mut writer.0).await;
            context.mark_closed();
            if finished != Some(WriterEnd::Failed) {
                let deadline = Instant::now() + CLOSING_DRAIN;
                let _ = tokio::time::timeout_at(deadline, discard_to_eof(&mut reader)).await;
            }
        }
    }
}

/// The writer task of a connection, aborted if the connection task is dropped (e.g. when the
/// shutdown grace period runs out) so that it cannot outlive its connection.
struct WriterTask(JoinHandle<WriterEnd>);

impl Drop for WriterTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads and discards while waiting for the writer, so a client that writes without reading
/// cannot block the final messages.
async fn discard_until<R: AsyncRead + Unpin>(
    reader: &mut Reader<R>,
    writer: &mut JoinHandle<WriterEnd>,
) -> Option<WriterEnd> {
    let mut scratch = [0u8; 8192];
    let mut peer_open = true;
    loop {
        tokio::select! {
            finished = &mut *writer => return finished.ok(),
            read = reader.get_mut().read(&mut scratch), if peer_open => {
                peer_open = matches!(read, Ok(n) if n > 0);
            }
        }
    }
}

async fn discard_to_eof<R: AsyncRead + Unpin>(reader: &mut Reader<R>) {
    let mut scratch = [0u8; 8192];
    while let Ok(n) = reader.get_mut().read(&mut scratch).await {
        if n == 0 {
            return;
        }
    }
}

struct RequestLoop<'a> {
    env: &'a ConnectionEnv,
    context: &'a ConnectionContext,
    session: Session,
    queue: mpsc::UnboundedSender<Pending>,
    in_flight: Arc<Semaphore>,
    detected_mode: Arc<DetectedMode>,
    budget: Arc<ByteBudget>,
    unauthenticated: Option<Unauthenticated>,
}

impl RequestLoop<'_> {
    async fn run<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut Reader<R>,
        writer: &mut JoinHandle<WriterEnd>,
    ) -> ReadEnd {
        // Created once, not per request: registering with the cancellation token or the
        // timer takes a lock each time.
        let env = self.env;
        let shutdown = env.shutdown.cancelled();
        tokio::pin!(shutdown);
        let idle_check = self.next_idle_check(reader);
        let idle = tokio::time::sleep_until(idle_check.unwrap_or_else(Instant::now));
        tokio::pin!(idle);
        loop {
            let auth_deadline = self.auth_deadline();
            // The waits below are skipped when there is room, which is nearly always: each
            // costs a registration with the shutdown token and the budgets' wakers. The
            // select on the next frame still watches shutdown, the writer and the deadline.
            let permit = match Arc::clone(&self.in_flight).try_acquire_owned() {
                Ok(permit) => permit,
                Err(TryAcquireError::Closed) => return ReadEnd::Broken,
                Err(TryAcquireError::NoPermits) => tokio::select! {
                    biased;
                    _ = &mut shutdown => return ReadEnd::Shutdown,
                    _ = &mut *writer => return ReadEnd::Broken,
                    _ = sleep_until(auth_deadline) => return ReadEnd::AuthTimeout,
                    permit = self.in_flight.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => return ReadEnd::Broken,
                    },
                },
            };
            // Not a byte more is read while the connection (or the server) holds its budget
            // of requests and unwritten responses: the client has to read first.
            if self.a_budget_is_exhausted() {
                tokio::select! {
                    biased;
                    _ = &mut shutdown => return ReadEnd::Shutdown,
                    _ = &mut *writer => return ReadEnd::Broken,
                    _ = sleep_until(auth_deadline) => return ReadEnd::AuthTimeout,
                    _ = self.budgets_below_limit() => {}
                }
            }
            let item = tokio::select! {
                biased;
                _ = &mut shutdown => return ReadEnd::Shutdown,
                _ = &mut *writer => return ReadEnd::Broken,
                _ = sleep_until(auth_deadline) => return ReadEnd::AuthTimeout,
                item = reader.next() => item,
                // Bytes since the timer was set move the deadline only when it fires.
                _ = &mut idle, if idle_check.is_some() => {
                    if self.is_idle(reader) {
                        return ReadEnd::Idle;
                    }
                    if let Some(next) = self.next_idle_check(reader) {
                        idle.as_mut().reset(next);
                    }
                    continue;
                }
            };
            // Known once the first byte is in; events pushed before any response use it.
            self.detected_mode.set(reader.decoder().mode());
            // The request's bytes count against the budgets until its response is written.
            let (response, close, request_bytes) = match item {
                None => return ReadEnd::PeerClosed,
                Some(Ok(payload)) => {
                    let (response, close) = self.handle_payload(&payload, reader);
                    (response, close, payload.len())
                }
                Some(Err(error)) => match frame_error_response(&error, self.pre_auth_limit()) {
                    Some(response) => {
                        tracing::debug!(conn = self.context.id(), %error, "framing fault");
                        self.count_error(&response);
                        (ready(response), true, 0)
                    }
                    None => {
                        tracing::debug!(conn = self.context.id(), %error, "read failed");
                        return ReadEnd::Broken;
                    }
                },
            };
            let charge = Charge::request(&self.budget, self.env.inflight.as_ref(), request_bytes);
            // Read after handling: a HELLO's answer is already in the mode it chose.
            let mode = reader.decoder().mode();
            // A send fails only if the writer stopped, which the next select notices.
            let _ = self.queue.send(Pending {
                response,
                mode,
                close,
                permit,
                charge,
            });
            if close {
                return ReadEnd::CloseAfterFinal;
            }
        }
    }

    /// Parses and answers (or starts) one request; returns its response and whether the
    /// connection closes after it.
    fn handle_payload<R>(
        &mut self,
        payload: &str,
        reader: &mut Reader<R>,
    ) -> (ResponseFuture, bool) {
        let envelope = match RequestEnvelope::parse(payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                let response = error.into_response();
                self.count_error(&response);
                return (ready(response), false);
            }
        };
        let timer = RequestTimer::start(
            &self.env.observer,
            self.context.id(),
            envelope.op,
            &envelope.id,
        );
        // Refused before its params become a JSON tree: an unauthenticated request costs
        // the server O(its bytes), whatever it holds (§13).
        if !self.session.admits(envelope.op) {
            let response = Response::error(envelope.id, RcpError::auth_required());
            timer.finish(response.error_code());
            return (ready(response), false);
        }
        let op = envelope.op;
        let request = match envelope.into_request() {
            Ok(request) => request,
            Err(error) => {
                let response = error.into_response();
                self.count_error(&response);
                return (ready(response), false);
            }
        };
        let step = timer
            .span()
            .in_scope(|| self.session.handle(request, reader.decoder().mode()));
        if self.unauthenticated.is_some() && self.session.is_authenticated() {
            self.authenticated(reader);
        }
        match step {
            Step::Answer {
                response,
                switch_mode,
                close,
            } => {
                if op == Op::Auth {
                    self.log_auth_failure(&response);
                }
                if let Some(mode) = switch_mode {
                    // Bytes already buffered behind the HELLO are decoded in the new mode.
                    reader.decoder_mut().set_mode(mode);
                }
                timer.finish(response.error_code());
                (ready(response), close)
            }
            Step::Delegate(request) => {
                let started = timer.span().in_scope(|| self.start(request));
                (Box::pin(timer.finish_with(started)), false)
            }
        }
    }

    /// A failed AUTH, with the peer's address and never the token: who is knocking, for the
    /// operator. Rate-limited, since a client can fail as often as it likes.
    fn log_auth_failure(&self, response: &Response) {
        let Outcome::Error { error } = &response.outcome else {
            return;
        };
        if error.code != ErrorCode::AuthFailed {
            return;
        }
        if let Some(suppressed) = self.env.auth_failure_log.admit() {
            tracing::warn!(
                conn = self.context.id(),
                peer = %self.context.peer_addr(),
                reason = error.reason(),
                suppressed,
                "authentication failed"
            );
        }
    }

    /// AUTH succeeded: the frame limit, the deadline and the slot of §13 no longer apply.
    fn authenticated<R>(&mut self, reader: &mut Reader<R>) {
        self.unauthenticated = None;
        reader
            .decoder_mut()
            .set_max_frame_bytes(self.env.session.max_frame_bytes);
    }

    fn auth_deadline(&self) -> Option<Instant> {
        self.unauthenticated.as_ref()?.deadline
    }

    /// The frame limit before AUTH, while it applies.
    fn pre_auth_limit(&self) -> Option<usize> {
        Some(self.unauthenticated.as_ref()?.max_frame_bytes)
    }

    fn a_budget_is_exhausted(&self) -> bool {
        self.budget.is_exhausted()
            || self
                .env
                .inflight
                .as_ref()
                .is_some_and(|inflight| inflight.is_exhausted())
    }

    async fn budgets_below_limit(&self) {
        loop {
            self.budget.below_limit().await;
            if let Some(inflight) = &self.env.inflight {
                inflight.below_limit().await;
            }
            if !self.budget.is_exhausted() {
                return;
            }
        }
    }

    /// Counts an error answered outside any parsed request.
    fn count_error(&self, response: &Response) {
        if let Outcome::Error { error } = &response.outcome {
            self.env.observer.error_sent(&error.code);
        }
    }

    /// Starts a data op; a panic in the handler becomes `INTERNAL_ERROR` for this request.
    fn start(&self, request: Request) -> ResponseFuture {
        let id = request.id.clone();
        let op = request.op;
        let handler = &self.env.handler;
        let started =
            std::panic::catch_unwind(AssertUnwindSafe(|| handler.start(self.context, request)));
        let conn = self.context.id();
        match started {
            Ok(future) => Box::pin(AssertUnwindSafe(future).catch_unwind().map(move |done| {
                done.unwrap_or_else(|_| {
                    EncodedResponse::new(&handler_panicked(conn, id, op.as_str()))
                })
            })),
            Err(_) => ready(handler_panicked(conn, id, op.as_str())),
        }
    }

    fn next_idle_check<R>(&self, reader: &Reader<R>) -> Option<Instant> {
        let idle = self.env.idle_timeout?;
        let due = reader.get_ref().last_byte_at() + idle;
        let now = Instant::now();
        // Past due but not idle (a subscription or a request in flight): look again soon.
        Some(if due > now {
            due
        } else {
            now + IDLE_RECHECK.min(idle)
        })
    }

    /// Idle means: no byte for the whole timeout, no subscription, nothing in flight (§8.4).
    fn is_idle<R>(&self, reader: &Reader<R>) -> bool {
        let Some(idle) = self.env.idle_timeout else {
            return false;
        };
        reader.get_ref().last_byte_at().elapsed() >= idle
            && !self.context.holds_subscription()
            // One permit is held by the read in progress.
            && self.in_flight.available_permits() + 1 >= MAX_IN_FLIGHT_PER_CONNECTION
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn ready(response: Response) -> ResponseFuture {
    Box::pin(std::future::ready(EncodedResponse::new(&response)))
}

/// The one error sent before closing on a framing fault (§2.8); `None` for transport errors,
/// after which nothing can be sent. `pre_auth_limit` is the frame limit before AUTH while it
/// applies: a frame over it is `frame_too_large` with that `limit` in either wire mode (§13).
fn frame_error_response(error: &WireError, pre_auth_limit: Option<usize>) -> Option<Response> {
    let error = match (error, pre_auth_limit) {
        (WireError::Fault(FrameFault::TooLarge | FrameFault::FrameTooLarge), Some(limit)) => {
            let mut error =
                RcpError::frame_error(FrameFault::FrameTooLarge).with_detail("limit", limit);
            error.message =
                format!("frame error: larger than the {limit}-byte limit before authentication");
            error
        }
        (WireError::Fault(fault), _) => RcpError::frame_error(*fault),
        // The peer stopped sending in the middle of a frame. It may still read, so it is told
        // why nothing was answered; the fault name is ours, the spec lists none for it.
        (WireError::TruncatedFrame { .. }, _) => RcpError::bad_request(
            "frame_error",
            "frame error: connection closed in the middle of a frame",
        )
        .with_detail("fault", "truncated_frame"),
        _ => return None,
    };
    Some(Response::error("", error))
}

fn handler_panicked(conn: u64, id: String, op: &str) -> Response {
    tracing::error!(conn, op, "handler panicked; answered INTERNAL_ERROR");
    Response::error(
        id,
        RcpError::internal("internal error while executing the request"),
    )
}
