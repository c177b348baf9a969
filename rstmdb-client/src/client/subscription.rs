//! Watch subscriptions as `Stream`s that survive reconnects without a gap or a duplicate.
//!
//! A [`Subscription`] is the application's end; a `SubEntry` is the client's record of it:
//! the WATCH it was made with, the highest `wal_offset` routed to it, and its server id on the
//! current connection. After a reconnect the supervisor re-sends the WATCH with
//! `from_offset = last + 1` (or the original start when nothing arrived yet), and the server
//! replays what was missed (§6.9). Because one subscription's events arrive in increasing
//! offset order, an event at or below the last routed offset is a duplicate and is skipped.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::Stream;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::message::Event;
use crate::ops::Op;
use crate::params::{WatchAllParams, WatchInstanceParams};
use crate::results::{WatchAllResult, WatchInstanceResult};

use super::Client;
use super::error::ClientError;

/// The WATCH a subscription was made with.
#[derive(Debug, Clone)]
pub(crate) enum WatchRequest {
    All(WatchAllParams),
    Instance(WatchInstanceParams),
}

impl WatchRequest {
    fn op(&self) -> Op {
        match self {
            Self::All(_) => Op::WatchAll,
            Self::Instance(_) => Op::WatchInstance,
        }
    }

    fn requested_from_offset(&self) -> Option<u64> {
        match self {
            Self::All(params) => params.from_offset,
            Self::Instance(params) => params.from_offset,
        }
    }
}

/// What the reader hands to the application's end.
#[derive(Debug)]
pub(crate) enum SubItem {
    Event(Event),
    /// The subscription is over; nothing follows.
    End(ClientError),
}

#[derive(Debug, Default)]
struct SubState {
    /// Where delivery began: the requested `from_offset`, else the subscription point.
    start_offset: Option<u64>,
    /// Highest `wal_offset` routed to the application's buffer.
    last_offset: Option<u64>,
    /// The id on the current connection, once the server confirmed the WATCH.
    server_id: Option<String>,
    ended: bool,
}

/// The fields of a WATCH result that routing needs; the rest of the result is skipped. The
/// offsets stay lenient: one of an unexpected type only loses its subscription point.
#[derive(serde::Deserialize)]
struct Subscribed {
    subscription_id: String,
    #[serde(default)]
    wal_offset: Option<Value>,
    #[serde(default)]
    current_wal_offset: Option<Value>,
}

/// The client-side record of one subscription.
#[derive(Debug)]
pub(crate) struct SubEntry {
    pub(crate) key: u64,
    request: WatchRequest,
    state: Mutex<SubState>,
    sender: mpsc::Sender<SubItem>,
}

impl SubEntry {
    pub(crate) fn new(
        key: u64,
        request: WatchRequest,
        buffer_events: usize,
    ) -> (Arc<Self>, mpsc::Receiver<SubItem>) {
        let (sender, receiver) = mpsc::channel(buffer_events.max(1));
        let entry = Self {
            key,
            request,
            state: Mutex::new(SubState::default()),
            sender,
        };
        (Arc::new(entry), receiver)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SubState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn op(&self) -> Op {
        self.request.op()
    }

    /// The params of the first WATCH.
    pub(crate) fn initial_params(&self) -> Result<Map<String, Value>, ClientError> {
        self.params_from(self.request.requested_from_offset())
    }

    /// The params that continue the subscription on a new connection (§8.3).
    pub(crate) fn resume_params(&self) -> Result<Map<String, Value>, ClientError> {
        let from_offset = {
            let state = self.state();
            match state.last_offset {
                Some(last) => Some(last.saturating_add(1)),
                None => state.start_offset,
            }
        };
        self.params_from(from_offset)
    }

    fn params_from(&self, from_offset: Option<u64>) -> Result<Map<String, Value>, ClientError> {
        let object = match &self.request {
            WatchRequest::All(params) => crate::message::to_object(&WatchAllParams {
                from_offset,
                ..params.clone()
            }),
            WatchRequest::Instance(params) => crate::message::to_object(&WatchInstanceParams {
                from_offset,
                ..params.clone()
            }),
        };
        object.map_err(|e| ClientError::Protocol(format!("cannot serialise WATCH params: {e}")))
    }

    /// Whether the server has confirmed this subscription at least once and it has not ended:
    /// only such subscriptions are re-created after a reconnect.
    pub(crate) fn is_resumable(&self) -> bool {
        let state = self.state();
        state.start_offset.is_some() && !state.ended
    }

    pub(crate) fn server_id(&self) -> Option<String> {
        self.state().server_id.clone()
    }

    pub(crate) fn last_offset(&self) -> Option<u64> {
        self.state().last_offset
    }

    /// Called by the reader on the WATCH's ok response, before it reads anything else.
    /// Returns the server's subscription id to route by.
    pub(crate) fn on_subscribed(&self, result: &RawValue) -> Option<String> {
        let result: Subscribed = serde_json::from_str(result.get()).ok()?;
        let server_id = result.subscription_id;
        let subscription_point = match self.request {
            WatchRequest::All(_) => result.wal_offset.as_ref().and_then(Value::as_u64),
            // The instance's last offset is already delivered state; the next transition
            // comes after it.
            WatchRequest::Instance(_) => result
                .current_wal_offset
                .as_ref()
                .and_then(Value::as_u64)
                .map(|offset| offset.saturating_add(1)),
        };
        let mut state = self.state();
        if state.start_offset.is_none() {
            state.start_offset = self
                .request
                .requested_from_offset()
                .or(subscription_point)
                .or(Some(0));
        }
        state.server_id = Some(server_id.clone());
        Some(server_id)
    }

    /// Routes one event to the application, skipping duplicates. Returns false when the
    /// subscription has ended or the application's end is gone: the caller stops routing to
    /// it.
    pub(crate) async fn deliver(&self, event: Event) -> bool {
        {
            let mut state = self.state();
            if state.ended {
                return false;
            }
            if state
                .last_offset
                .is_some_and(|last| event.wal_offset <= last)
            {
                return true;
            }
            state.last_offset = Some(event.wal_offset);
        }
        let delivered = self.sender.send(SubItem::Event(event)).await.is_ok();
        if !delivered {
            // Nobody will read it again: never re-create it after a reconnect.
            self.mark_ended();
        }
        delivered
    }

    /// Ends the subscription with `error` as its last item; later calls do nothing.
    pub(crate) async fn end(&self, error: ClientError) {
        if self.mark_ended() {
            let _ = self.sender.send(SubItem::End(error)).await;
        }
    }

    /// Ends the subscription now; its terminal item is queued behind the events already
    /// buffered without making the caller wait for the application to read them.
    pub(crate) fn end_in_background(self: &Arc<Self>, error: ClientError) {
        if !self.mark_ended() {
            return;
        }
        let entry = self.clone();
        tokio::spawn(async move {
            let _ = entry.sender.send(SubItem::End(error)).await;
        });
    }

    /// Returns true if this call ended it.
    fn mark_ended(&self) -> bool {
        let mut state = self.state();
        let first = !state.ended;
        state.ended = true;
        state.server_id = None;
        first
    }
}

/// How the server answered the subscription's first WATCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchStart {
    All(WatchAllResult),
    Instance(WatchInstanceResult),
}

/// A live subscription: a `Stream` of the events it matches, in increasing `wal_offset`.
///
/// It follows the client across reconnects: events are neither skipped nor repeated. It ends
/// with one `Err` item when the server ends it with a stream error (§3.6), when re-creating it
/// after a reconnect fails (for example `NOT_FOUND` / `offset_compacted`), or when the client
/// closes; after that item the stream yields `None`.
///
/// Keep polling it: when its buffer (`ClientOptions::subscription_buffer_events`) is full,
/// the connection's reader waits for it rather than drop an event, and responses to other
/// calls wait too.
///
/// Dropping it sends UNWATCH in the background; [`Subscription::unwatch`] does so and waits.
#[derive(Debug)]
pub struct Subscription {
    entry: Arc<SubEntry>,
    receiver: mpsc::Receiver<SubItem>,
    client: Client,
    start: WatchStart,
    finished: bool,
}

impl Subscription {
    pub(crate) fn new(
        entry: Arc<SubEntry>,
        receiver: mpsc::Receiver<SubItem>,
        client: Client,
        start: WatchStart,
    ) -> Self {
        Self {
            entry,
            receiver,
            client,
            start,
            finished: false,
        }
    }

    /// The server's answer to the first WATCH (subscription point, current state).
    pub fn start(&self) -> &WatchStart {
        &self.start
    }

    /// The subscription's id on the current connection; it changes after a reconnect and is
    /// `None` while reconnecting or after the end.
    pub fn server_subscription_id(&self) -> Option<String> {
        self.entry.server_id()
    }

    /// The highest `wal_offset` received so far (delivered or buffered). A new WATCH with
    /// `from_offset` = this + 1 continues without a gap.
    pub fn last_offset(&self) -> Option<u64> {
        self.entry.last_offset()
    }

    /// Cancels the subscription on the server and waits for the answer.
    pub async fn unwatch(self) -> Result<(), ClientError> {
        self.client.forget_subscription(self.entry.key);
        let server_id = self.entry.server_id();
        self.entry.mark_ended();
        match server_id {
            Some(id) => self.client.unwatch(&id).await.map(|_| ()),
            None => Ok(()),
        }
    }
}

impl Stream for Subscription {
    type Item = Result<Event, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match self.receiver.poll_recv(cx) {
            Poll::Ready(Some(SubItem::Event(event))) => Poll::Ready(Some(Ok(event))),
            Poll::Ready(Some(SubItem::End(error))) => {
                self.finished = true;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => {
                self.finished = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        abandon(&self.client, &self.entry);
    }
}

/// Stops a subscription from the client's side: it is no longer re-created after a reconnect,
/// and if the server knows it, UNWATCH goes out in the background (best effort: if the
/// connection is gone, the server already dropped it).
pub(crate) fn abandon(client: &Client, entry: &SubEntry) {
    client.forget_subscription(entry.key);
    let server_id = entry.server_id();
    if !entry.mark_ended() {
        return;
    }
    let (Some(server_id), Ok(runtime)) = (server_id, tokio::runtime::Handle::try_current()) else {
        return;
    };
    let client = client.clone();
    runtime.spawn(async move {
        let _ = client.unwatch(&server_id).await;
    });
}
