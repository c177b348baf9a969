//! The writing half of a connection: writes responses strictly in request order, and events
//! or stream errors pushed by the handler between them (spec §3.7).

use super::handler::{ConnectionContext, Outbound, ResponseFuture};
use bytes::BytesMut;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use rstmdb_client::message::{Response, encode_response};
use rstmdb_client::wire::{WireCodec, WireMode};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
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

pub(crate) struct Writer<W> {
    pub sink: W,
    pub queue: mpsc::UnboundedReceiver<Pending>,
    pub outbound: mpsc::Receiver<Outbound>,
    pub context: ConnectionContext,
    pub detected_mode: Arc<DetectedMode>,
    pub max_frame_bytes: usize,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    pub async fn run(mut self) -> WriterEnd {
        let mut codec = WireCodec::new(WireMode::BinaryJson, self.max_frame_bytes);
        let mut written_mode: Option<WireMode> = None;
        let mut in_order: FuturesOrdered<Finished> = FuturesOrdered::new();
        let mut queue_open = true;
        let mut buf = BytesMut::new();
        loop {
            if !queue_open && in_order.is_empty() {
                return match shutdown(&mut self.sink).await {
                    Ok(()) => WriterEnd::Drained,
                    Err(_) => WriterEnd::Failed,
                };
            }
            tokio::select! {
                biased;
                queued = self.queue.recv(), if queue_open => match queued {
                    Some(pending) => in_order.push_back(finish(pending)),
                    None => queue_open = false,
                },
                Some((response, mode, close, permit)) = in_order.next() => {
                    codec.set_mode(mode);
                    written_mode = Some(mode);
                    encode(&mut codec, &encode_response(&response), &mut buf);
                    let written = write(&mut self.sink, &mut buf).await;
                    drop(permit);
                    if written.is_err() {
                        return WriterEnd::Failed;
                    }
                    if close {
                        return match shutdown(&mut self.sink).await {
                            Ok(()) => WriterEnd::ClosedAfterFinal,
                            Err(_) => WriterEnd::Failed,
                        };
                    }
                }
                Some(message) = self.outbound.recv() => {
                    if self.context.is_stale(&message) {
                        continue;
                    }
                    codec.set_mode(written_mode.unwrap_or_else(|| self.detected_mode.get()));
                    let payload = match &message {
                        Outbound::Event(event) => serde_json::to_string(event),
                        Outbound::StreamError(error) => serde_json::to_string(error),
                    };
                    match payload {
                        Ok(payload) => encode(&mut codec, &payload, &mut buf),
                        Err(err) => tracing::error!(conn = self.context.id(), %err, "cannot serialise a pushed message"),
                    }
                    if write(&mut self.sink, &mut buf).await.is_err() {
                        return WriterEnd::Failed;
                    }
                }
            }
        }
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

async fn write<W: AsyncWrite + Unpin>(sink: &mut W, buf: &mut BytesMut) -> std::io::Result<()> {
    sink.write_all(buf).await?;
    buf.clear();
    sink.flush().await
}

/// TCP FIN, or TLS close_notify then FIN.
async fn shutdown<W: AsyncWrite + Unpin>(sink: &mut W) -> std::io::Result<()> {
    sink.shutdown().await
}
