//! The writing half of a connection: writes responses strictly in request order, and events
//! or stream errors pushed by the handler between them (spec §3.7).

use super::budget::{ByteBudget, Charge};
use crate::service::watch::budget::DeliveryBudget;
use crate::service::{ConnectionContext, Outbound, OutboundReceiver, ResponseFuture};
use bytes::BytesMut;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use rstmdb_protocol::limits::MAX_PAYLOAD_BYTES;
use rstmdb_protocol::wire::{WireCodec, WireMode};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::codec::Encoder;

/// One request's place in the response order.
pub(crate) struct Pending {
    pub response: ResponseFuture,
    /// The mode the response is written in (HELLO's answer already uses the chosen mode).
    pub mode: WireMode,
    /// Run the Closing procedure once this response is written.
    pub close: bool,
    /// Held until the response is written: bounds the requests in flight (backpressure).
    pub permit: OwnedSemaphorePermit,
    /// The request's bytes, then its response's too, against the byte budgets; released
    /// once the response is written.
    pub charge: Charge,
}

/// Why the writer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriterEnd {
    /// Every queued response was written, then the sending side was shut down.
    Drained,
    /// A final message (BYE, framing fault, third AUTH failure) was written and the sending
    /// side shut down; the reader now drains and closes.
    ClosedAfterFinal,
    /// Writing failed: the peer is gone.
    Failed,
}

/// The wire mode the reader detected from the first byte, for messages written before any
/// response (an event may overtake the response to the WATCH that caused it).
#[derive(Debug, Default)]
pub(crate) struct DetectedMode(AtomicU8);

impl DetectedMode {
    pub fn set(&self, mode: WireMode) {
        let code = match mode {
            WireMode::BinaryJson => 0,
            WireMode::Jsonl => 1,
        };
        self.0.store(code, Ordering::Release);
    }

    fn get(&self) -> WireMode {
        match self.0.load(Ordering::Acquire) {
            1 => WireMode::Jsonl,
            _ => WireMode::BinaryJson,
        }
    }
}

/// A response ready to write: its encoded payload, and what is released once it is written.
struct Done {
    payload: String,
    mode: WireMode,
    close: bool,
    permit: OwnedSemaphorePermit,
    charge: Charge,
}

type Finished = Pin<Box<dyn Future<Output = Done> + Send>>;

/// Messages already available are gathered into one write up to this size, so a burst of
/// pipelined responses (e.g. released by one group commit) costs one syscall, not one each.
const COALESCE_BYTES: usize = 256 * 1024;

pub(crate) struct Writer<W> {
    pub sink: W,
    pub queue: mpsc::UnboundedReceiver<Pending>,
    pub outbound: OutboundReceiver,
    pub context: ConnectionContext,
    pub detected_mode: Arc<DetectedMode>,
    pub max_frame_bytes: usize,
    /// A pending write that takes longer than this in total means the peer is gone or
    /// trickling (a client that sends requests but never reads would otherwise hold its
    /// connection and buffers forever).
    pub write_timeout: Option<Duration>,
    /// The connection's byte budget: responses are only started while it has room.
    pub budget: Arc<ByteBudget>,
}

/// What one step of the writer produced.
enum Step {
    /// Nothing to write (a request was queued, or a stale event dropped).
    Nothing,
    /// Bytes were encoded into the buffer.
    Encoded,
    /// The final message was encoded: write it, then close.
    Final,
}

/// The writer's state between steps.
struct Output {
    codec: WireCodec,
    /// The mode of the last response encoded; `None` before the first.
    response_mode: Option<WireMode>,
    buf: BytesMut,
    /// Permits and charges of encoded responses, released once the bytes are written.
    permits: Vec<(OwnedSemaphorePermit, Charge)>,
    /// Bytes of watch events in `buf`, and the budget their sending time is charged to.
    event_bytes: usize,
    budget: Option<Arc<DeliveryBudget>>,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    pub async fn run(mut self) -> WriterEnd {
        let mut out = Output {
            codec: WireCodec::new(WireMode::BinaryJson, self.max_frame_bytes),
            response_mode: None,
            buf: BytesMut::new(),
            permits: Vec::new(),
            event_bytes: 0,
            budget: None,
        };
        let mut requests = Requests {
            waiting: VecDeque::new(),
            in_order: FuturesOrdered::new(),
            budget: self.budget.clone(),
        };
        let mut queue_open = true;
        loop {
            requests.admit();
            if !queue_open && requests.is_empty() {
                return match self.shutdown_sink().await {
                    Ok(()) => WriterEnd::Drained,
                    Err(_) => WriterEnd::Failed,
                };
            }
            let mut step = tokio::select! {
                biased;
                queued = self.queue.recv(), if queue_open => match queued {
                    Some(pending) => {
                        requests.push_back(pending);
                        Step::Nothing
                    }
                    None => {
                        queue_open = false;
                        Step::Nothing
                    }
                },
                Some(done) = requests.in_order.next() => out.response(done),
                Some(message) = self.outbound.recv() => self.pushed(&mut out, message),
            };
            // Gather whatever else is ready into the same write.
            while matches!(step, Step::Encoded) && out.buf.len() < COALESCE_BYTES {
                step = self.next_ready(&mut out, &mut requests, &mut queue_open);
            }
            if out.buf.is_empty() && !matches!(step, Step::Final) {
                continue;
            }
            if let Err(err) = out.flush(&mut self.sink, self.write_timeout).await {
                tracing::debug!(conn = self.context.id(), %err, "write failed; closing");
                return WriterEnd::Failed;
            }
            if matches!(step, Step::Final) {
                return match self.shutdown_sink().await {
                    Ok(()) => WriterEnd::ClosedAfterFinal,
                    Err(_) => WriterEnd::Failed,
                };
            }
        }
    }

    /// One more message that is available without waiting, or `Nothing`.
    fn next_ready(
        &mut self,
        out: &mut Output,
        requests: &mut Requests,
        queue_open: &mut bool,
    ) -> Step {
        loop {
            match self.queue.try_recv() {
                Ok(pending) => requests.push_back(pending),
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    *queue_open = false;
                    break;
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
            }
        }
        requests.admit();
        if let Some(Some(done)) = requests.in_order.next().now_or_never() {
            return out.response(done);
        }
        match self.outbound.try_recv() {
            Some(message) => match self.pushed(out, message) {
                // A dropped stale event is not the end of what is ready.
                Step::Nothing => Step::Encoded,
                step => step,
            },
            None => Step::Nothing,
        }
    }

    /// Shuts down the sending side (TLS close_notify, then FIN), within the write timeout.
    async fn shutdown_sink(&mut self) -> std::io::Result<()> {
        within(self.write_timeout, self.sink.shutdown()).await
    }

    fn pushed(&self, out: &mut Output, message: Outbound) -> Step {
        if self.context.is_stale(&message) {
            return Step::Nothing;
        }
        let mode = out
            .response_mode
            .unwrap_or_else(|| self.detected_mode.get());
        out.codec.set_mode(mode);
        let payload = match &message {
            Outbound::Events(batch) => {
                let started = Instant::now();
                let before = out.buf.len();
                for tail in &batch.tails {
                    if let Err(err) = batch.head.encode(mode, tail, &mut out.buf) {
                        // Events fit by construction (§2.4): only a bug gets here.
                        tracing::error!(conn = self.context.id(), %err, "cannot encode an event");
                    }
                }
                if let Some(budget) = batch.head.budget() {
                    budget.charge(started.elapsed());
                    out.event_bytes += out.buf.len() - before;
                    out.budget = Some(Arc::clone(budget));
                }
                return Step::Encoded;
            }
            Outbound::Event(event) => serde_json::to_string(event),
            Outbound::StreamError(error) => serde_json::to_string(error),
        };
        match payload {
            Ok(payload) => {
                encode(&mut out.codec, &payload, &mut out.buf);
                Step::Encoded
            }
            Err(err) => {
                tracing::error!(conn = self.context.id(), %err, "cannot serialise a pushed message");
                Step::Nothing
            }
        }
    }
}

impl Output {
    fn response(&mut self, done: Done) -> Step {
        let Done {
            payload,
            mode,
            close,
            permit,
            charge,
        } = done;
        self.codec.set_mode(mode);
        self.response_mode = Some(mode);
        encode(&mut self.codec, &payload, &mut self.buf);
        self.permits.push((permit, charge));
        if close { Step::Final } else { Step::Encoded }
    }

    /// Writes the buffer. The timeout bounds the whole buffer, not each write call: a client
    /// that takes one byte now and then cannot keep a connection and its buffers forever.
    /// A buffer is at most one message or [`COALESCE_BYTES`], so the timeout asks for a rate
    /// of at least 16 MiB per `write_timeout_secs`.
    async fn flush<W: AsyncWrite + Unpin>(
        &mut self,
        sink: &mut W,
        write_timeout: Option<Duration>,
    ) -> std::io::Result<()> {
        let mut timed = TimedWrite {
            inner: sink,
            spent: Duration::ZERO,
        };
        let buf = &self.buf;
        within(write_timeout, async {
            let mut written = 0;
            while written < buf.len() {
                let n = timed.write(&buf[written..]).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::WriteZero.into());
                }
                written += n;
            }
            timed.flush().await
        })
        .await?;
        if let Some(budget) = &self.budget
            && self.event_bytes > 0
        {
            // The events' part of the write (kernel time included).
            let share = self.event_bytes as f64 / self.buf.len().max(1) as f64;
            budget.charge(timed.spent.mul_f64(share.min(1.0)));
        }
        self.event_bytes = 0;
        self.buf.clear();
        // Written: these requests no longer count against the in-flight bound.
        self.permits.clear();
        Ok(())
    }
}

/// Runs one write-side operation, failing with `TimedOut` if it does not finish in `limit`.
async fn within<T>(
    limit: Option<Duration>,
    operation: impl Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    let Some(limit) = limit else {
        return operation.await;
    };
    match tokio::time::timeout(limit, operation).await {
        Ok(done) => done,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "the peer did not take a pending write within {} s",
                limit.as_secs_f64()
            ),
        )),
    }
}

/// Adds up the time spent inside the sink's write calls: the work of writing, not the time a
/// slow reader makes us wait for room (which must not count against the delivery budget).
struct TimedWrite<'a, W> {
    inner: &'a mut W,
    spent: Duration,
}

impl<W: AsyncWrite + Unpin> TimedWrite<'_, W> {
    fn timed<T>(
        &mut self,
        call: impl FnOnce(Pin<&mut W>) -> Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        let started = Instant::now();
        let polled = call(Pin::new(&mut *self.inner));
        self.spent += started.elapsed();
        polled
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for TimedWrite<'_, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().timed(|inner| inner.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().timed(|inner| inner.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().timed(|inner| inner.poll_shutdown(cx))
    }
}

/// Requests in response order: those whose responses are being produced (`in_order`, polled
/// together) and those not started yet (`waiting`).
///
/// Most responses are produced only when their future is polled (reads run then), so what is
/// started is what can land in memory at once. A request is started while the started ones
/// could all produce the largest response and stay within the byte budget; the first is
/// always started, so a connection always makes progress.
struct Requests {
    waiting: VecDeque<Pending>,
    in_order: FuturesOrdered<Finished>,
    budget: Arc<ByteBudget>,
}

impl Requests {
    fn push_back(&mut self, pending: Pending) {
        self.waiting.push_back(pending);
        self.admit();
    }

    fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.in_order.is_empty()
    }

    fn admit(&mut self) {
        while !self.waiting.is_empty() {
            let started = self.in_order.len();
            let worst_case = (started + 1).saturating_mul(MAX_PAYLOAD_BYTES);
            if started > 0
                && self.budget.used_bytes().saturating_add(worst_case) > self.budget.limit_bytes()
            {
                return;
            }
            if let Some(pending) = self.waiting.pop_front() {
                self.in_order.push_back(finish(pending));
            }
        }
    }
}

/// Produces the response and encodes it at once, so what waits to be written is counted in
/// bytes (the JSON tree is gone by then).
fn finish(pending: Pending) -> Finished {
    let Pending {
        response,
        mode,
        close,
        permit,
        mut charge,
    } = pending;
    Box::pin(async move {
        let payload = response.await.into_payload();
        charge.add_response(payload.len());
        Done {
            payload,
            mode,
            close,
            permit,
            charge,
        }
    })
}

fn encode(codec: &mut WireCodec, payload: &str, buf: &mut BytesMut) {
    // Responses are capped by `EncodedResponse` and events fit by construction (§2.4), and
    // serde_json output is compact, so this only fails on a bug; it is logged, never sent.
    if let Err(err) = codec.encode(payload, buf) {
        tracing::error!(%err, "cannot encode an outbound message");
    }
}
