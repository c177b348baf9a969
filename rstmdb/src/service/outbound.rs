//! Messages the database pushes onto a connection outside the request/response flow (events
//! and stream errors, spec §3.5, §3.6), and the bounded queue that carries them to the
//! connection's writer.
//!
//! Watch events travel pre-serialised: a transition's event JSON after the subscription id is
//! built once and shared by every subscription ([`CommittedEvent::event_tail`]), and the writer
//! splices each subscription's own head in front of it. The bytes on the wire are exactly
//! those of the plain `serde_json` output of [`Event`] in a frame (tests below).
//!
//! [`CommittedEvent::event_tail`]: crate::database::CommittedEvent::event_tail

use crate::database::CommittedEvent;
use crate::service::watch::budget::DeliveryBudget;
use bytes::{Bytes, BytesMut};
use rstmdb_protocol::message::{Event, StreamError};
use rstmdb_protocol::{WireError, WireMode};
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc};

/// A message pushed by the database outside the request/response flow (§3.5, §3.6).
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// One event, serialised by the writer (for handlers that build events themselves).
    Event(Event),
    /// Pre-serialised events of one subscription, in order.
    Events(EventBatch),
    StreamError(StreamError),
}

impl Outbound {
    pub(crate) fn subscription_id(&self) -> &str {
        match self {
            Outbound::Event(event) => &event.subscription_id,
            Outbound::Events(batch) => &batch.head.subscription_id,
            Outbound::StreamError(error) => &error.subscription_id,
        }
    }

    /// Places it takes in the outbound queue: one per event, one for a stream error.
    fn weight(&self) -> usize {
        match self {
            Outbound::Events(batch) => batch.tails.len().max(1),
            Outbound::Event(_) | Outbound::StreamError(_) => 1,
        }
    }
}

/// Events of one subscription, each a shared tail of [`CommittedEvent::event_tail`].
#[derive(Debug, Clone, PartialEq)]
pub struct EventBatch {
    pub head: Arc<EventHead>,
    pub tails: Vec<Bytes>,
}

/// A subscription's own part of its events' JSON: [`CommittedEvent::EVENT_JSON_HEAD`] and the id
/// as a JSON string, with its CRC32C so that a frame's CRC costs one pass over the tail only.
#[derive(Debug, Clone)]
pub struct EventHead {
    subscription_id: String,
    json: Vec<u8>,
    crc: u32,
    /// Where the writer charges the time it spends sending these events.
    budget: Option<Arc<DeliveryBudget>>,
}

impl PartialEq for EventHead {
    fn eq(&self, other: &EventHead) -> bool {
        self.subscription_id == other.subscription_id
    }
}

impl EventHead {
    pub fn new(subscription_id: &str) -> EventHead {
        let mut json = CommittedEvent::EVENT_JSON_HEAD.as_bytes().to_vec();
        // A string always serialises; the fallback keeps this infallible without a panic.
        let quoted = serde_json::to_string(subscription_id)
            .unwrap_or_else(|_| format!("{subscription_id:?}"));
        json.extend_from_slice(quoted.as_bytes());
        let crc = crc32c::crc32c(&json);
        EventHead {
            subscription_id: subscription_id.to_owned(),
            json,
            crc,
            budget: None,
        }
    }

    /// The writer charges the time it spends on these events to `budget`.
    pub fn with_budget(mut self, budget: Arc<DeliveryBudget>) -> EventHead {
        self.budget = Some(budget);
        self
    }

    pub(crate) fn budget(&self) -> Option<&Arc<DeliveryBudget>> {
        self.budget.as_ref()
    }

    pub fn subscription_id(&self) -> &str {
        &self.subscription_id
    }

    /// Appends one event (this head, then `tail`) as a frame or JSON line of `mode`, exactly
    /// as the wire codec would encode the whole JSON text (§2.1, §2.6).
    pub fn encode(&self, mode: WireMode, tail: &[u8], dst: &mut BytesMut) -> Result<(), WireError> {
        mode.encode_split(&self.json, self.crc, tail, dst)
    }
}

/// Events (or stream errors) that may wait for one connection's writer; an `Events` batch
/// counts one per event. A subscription waits for room, so a slow reader costs a bounded
/// amount of memory and its subscription falls behind onto the WAL instead.
pub const OUTBOUND_QUEUE_MESSAGES: usize = 1024;

/// Why a pushed message was not queued; the message is handed back (boxed: events are big).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PushError {
    #[error("the connection's outbound queue is full")]
    Full(Box<Outbound>),
    #[error("the connection is closed")]
    Closed(Box<Outbound>),
}

/// The queue's sending side, held by the connection's context.
#[derive(Debug)]
pub(crate) struct OutboundSender {
    messages: mpsc::UnboundedSender<Outbound>,
    /// Free places; a sender takes a message's weight, the writer gives it back.
    room: Arc<Semaphore>,
}

/// The queue's receiving side, held by the connection's writer.
#[derive(Debug)]
pub(crate) struct OutboundReceiver {
    messages: mpsc::UnboundedReceiver<Outbound>,
    room: Arc<Semaphore>,
}

pub(crate) fn outbound_queue(places: usize) -> (OutboundSender, OutboundReceiver) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let room = Arc::new(Semaphore::new(places));
    (
        OutboundSender {
            messages: sender,
            room: Arc::clone(&room),
        },
        OutboundReceiver {
            messages: receiver,
            room,
        },
    )
}

impl OutboundSender {
    /// A batch larger than the whole queue takes the whole queue (it cannot wait for more).
    fn places(message: &Outbound) -> u32 {
        let weight = message.weight().min(OUTBOUND_QUEUE_MESSAGES);
        u32::try_from(weight).unwrap_or(u32::MAX)
    }

    pub(crate) fn try_send(&self, message: Outbound) -> Result<(), PushError> {
        match self.room.try_acquire_many(Self::places(&message)) {
            Ok(permit) => permit.forget(),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                return Err(PushError::Full(Box::new(message)));
            }
            Err(tokio::sync::TryAcquireError::Closed) => {
                return Err(PushError::Closed(Box::new(message)));
            }
        }
        self.messages
            .send(message)
            .map_err(|err| PushError::Closed(Box::new(err.0)))
    }

    pub(crate) async fn send(&self, message: Outbound) -> Result<(), PushError> {
        match self.room.acquire_many(Self::places(&message)).await {
            Ok(permit) => permit.forget(),
            Err(_) => return Err(PushError::Closed(Box::new(message))),
        }
        self.messages
            .send(message)
            .map_err(|err| PushError::Closed(Box::new(err.0)))
    }
}

impl OutboundReceiver {
    pub(crate) async fn recv(&mut self) -> Option<Outbound> {
        let message = self.messages.recv().await?;
        self.release(&message);
        Some(message)
    }

    pub(crate) fn try_recv(&mut self) -> Option<Outbound> {
        let message = self.messages.try_recv().ok()?;
        self.release(&message);
        Some(message)
    }

    /// The writer encodes a message as soon as it takes it, so its places free up then.
    fn release(&self, message: &Outbound) {
        self.room
            .add_permits(OutboundSender::places(message) as usize);
    }
}

impl Drop for OutboundReceiver {
    fn drop(&mut self) {
        // Senders waiting for room learn that the writer is gone.
        self.room.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstmdb_protocol::WireCodec;
    use rstmdb_protocol::limits::MAX_PAYLOAD_BYTES;
    use serde_json::{Map, Value, json};
    use tokio_util::codec::Encoder;

    fn event(subscription_id: &str, ctx: Option<Map<String, Value>>) -> Event {
        let payload = json!({"amount": 42.5, "note": "line\nbreak \"quoted\" é"});
        Event {
            subscription_id: subscription_id.to_owned(),
            instance_id: "order-1".to_owned(),
            machine: "order".to_owned(),
            version: 1,
            wal_offset: 1_099_511_628_333,
            from_state: "created".to_owned(),
            to_state: "paid".to_owned(),
            event: "PAY".to_owned(),
            payload: payload.as_object().cloned(),
            ctx,
        }
    }

    fn committed() -> CommittedEvent {
        let record = json!({"type": "apply_event", "instance_id": "order-1", "machine": "order",
            "version": 1, "event": "PAY", "from_state": "created", "to_state": "paid",
            "payload": {"amount": 42.5, "note": "line\nbreak \"quoted\" é"},
            "ctx": {"customer": "alice", "amount": 42.5}, "timestamp": 1});
        let bytes = serde_json::to_vec(&record).expect("serialises");
        CommittedEvent::from_wal(1_099_511_628_333, &bytes)
            .expect("decodes")
            .expect("an apply_event record")
    }

    #[test]
    fn a_spliced_event_is_byte_for_byte_the_codec_output_of_the_serde_event() {
        let committed = committed();
        let ctx = json!({"customer": "alice", "amount": 42.5});
        for id in ["sub-3f1c9a52-7d4e-4b8a-9c61-2e5f0a8d7b13", "odd \"id\"\\/é"] {
            let head = EventHead::new(id);
            for include_ctx in [false, true] {
                let expected_event =
                    event(id, include_ctx.then(|| ctx.as_object().cloned()).flatten());
                let text = serde_json::to_string(&expected_event).expect("serialises");
                let tail = committed.event_tail(include_ctx).expect("tail");
                for mode in [WireMode::BinaryJson, WireMode::Jsonl] {
                    let mut expected = BytesMut::new();
                    WireCodec::new(mode, MAX_PAYLOAD_BYTES)
                        .encode(text.as_str(), &mut expected)
                        .expect("encodes");
                    let mut spliced = BytesMut::new();
                    head.encode(mode, tail, &mut spliced).expect("encodes");
                    assert_eq!(spliced, expected, "{id} ctx={include_ctx} {mode}");
                }
            }
        }
    }

    #[test]
    fn an_event_over_the_outbound_limit_is_refused_and_nothing_is_written() {
        let head = EventHead::new("sub-1");
        let tail = vec![b' '; MAX_PAYLOAD_BYTES];
        let mut out = BytesMut::new();
        let refused = head.encode(WireMode::BinaryJson, &tail, &mut out);
        assert!(matches!(refused, Err(WireError::OutboundTooLarge { .. })));
        assert!(out.is_empty());
    }

    fn batch(events: usize) -> Outbound {
        Outbound::Events(EventBatch {
            head: Arc::new(EventHead::new("sub-1")),
            tails: vec![Bytes::from_static(b"}"); events],
        })
    }

    #[test]
    fn the_queue_counts_events_not_messages() {
        let (sender, mut receiver) = outbound_queue(OUTBOUND_QUEUE_MESSAGES);
        sender
            .try_send(batch(OUTBOUND_QUEUE_MESSAGES - 1))
            .expect("fits");
        sender.try_send(batch(1)).expect("the last place");
        assert!(matches!(sender.try_send(batch(1)), Err(PushError::Full(_))));
        assert!(receiver.try_recv().is_some());
        sender
            .try_send(batch(OUTBOUND_QUEUE_MESSAGES - 1))
            .expect("room again once the writer took the first batch");
    }

    #[tokio::test]
    async fn a_sender_waiting_for_room_learns_that_the_writer_is_gone() {
        let (sender, receiver) = outbound_queue(OUTBOUND_QUEUE_MESSAGES);
        sender
            .try_send(batch(OUTBOUND_QUEUE_MESSAGES))
            .expect("fits");
        let waiting = tokio::spawn(async move { sender.send(batch(1)).await });
        drop(receiver);
        let sent = waiting.await.expect("joins");
        assert!(matches!(sent, Err(PushError::Closed(_))));
    }
}
