//! The writing half of a connection: writes responses strictly in request order, and events
//! or stream errors pushed by the handler between them (spec §3.7).

use crate::service::watch::budget::DeliveryBudget;
use crate::service::{ConnectionContext, Outbound, OutboundReceiver, ResponseFuture};
use bytes::BytesMut;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use rstmdb_protocol::message::{Response, encode_response};
use rstmdb_protocol::wire::{WireCodec, WireMode};
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

type Finished =
    Pin<Box<dyn Future<Output = (Response, WireMode, bool, OwnedSemaphorePermit)> + Send>>;

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
    /// A peer that accepts no byte for this long is treated as gone (a client that sends
    /// requests but never reads would otherwise hold its connection and buffers forever).
    pub write_timeout: Option<Duration>,
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
    /// Permits of encoded responses, released once the bytes are written.
    permits: Vec<OwnedSemaphorePermit>,
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
        let mut in_order: FuturesOrdered<Finished> = FuturesOrdered::new();
        let mut queue_open = true;
        loop {
            if !queue_open && in_order.is_empty() {
                return match self.shutdown_sink().await {
                    Ok(()) => WriterEnd::Drained,
                    Err(_) => WriterEnd::Failed,
                };
            }
            let mut step = tokio::select! {
                biased;
                queued = self.queue.recv(), if queue_open => match queued {
                    Some(pending) => {
                        in_order.push_back(finish(pending));
                        Step::Nothing
                    }
                    None => {
                        queue_open = false;
                        Step::Nothing
                    }
                },
                Some(done) = in_order.next() => out.response(done),
                Some(message) = self.outbound.recv() => self.pushed(&mut out, message),
            };
            // Gather whatever else is ready into the same write.
            while matches!(step, Step::Encoded) && out.buf.len() < COALESCE_BYTES {
                step = self.next_ready(&mut out, &mut in_order, &mut queue_open);
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
        in_order: &mut FuturesOrdered<Finished>,
        queue_open: &mut bool,
    ) -> Step {
        loop {
            match self.queue.try_recv() {
                Ok(pending) => in_order.push_back(finish(pending)),
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    *queue_open = false;
                    break;
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
            }
        }
        if let Some(Some(done)) = in_order.next().now_or_never() {
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
    fn response(&mut self, done: (Response, WireMode, bool, OwnedSemaphorePermit)) -> Step {
        let (response, mode, close, permit) = done;
        self.codec.set_mode(mode);
        self.response_mode = Some(mode);
        encode(&mut self.codec, &encode_response(&response), &mut self.buf);
        self.permits.push(permit);
        if close { Step::Final } else { Step::Encoded }
    }

    /// Writes the buffer. The timeout applies to each write call, not to the whole buffer: a
    /// slow reader that keeps accepting bytes is served, one that accepts none is dropped.
    async fn flush<W: AsyncWrite + Unpin>(
        &mut self,
        sink: &mut W,
        stall_timeout: Option<Duration>,
    ) -> std::io::Result<()> {
        let mut timed = TimedWrite {
            inner: sink,
            spent: Duration::ZERO,
        };
        let mut written = 0;
        while written < self.buf.len() {
            let n = within(stall_timeout, timed.write(&self.buf[written..])).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            written += n;
        }
        within(stall_timeout, timed.flush()).await?;
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
            format!("the peer accepted no byte for {} s", limit.as_secs_f64()),
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

fn finish(pending: Pending) -> Finished {
    let Pending {
        response,
        mode,
        close,
        permit,
    } = pending;
    Box::pin(async move { (response.await, mode, close, permit) })
}

fn encode(codec: &mut WireCodec, payload: &str, buf: &mut BytesMut) {
    // Responses are capped by `encode_response` and events fit by construction (§2.4), and
    // serde_json output is compact, so this only fails on a bug; it is logged, never sent.
    if let Err(err) = codec.encode(payload, buf) {
        tracing::error!(%err, "cannot encode an outbound message");
    }
}
