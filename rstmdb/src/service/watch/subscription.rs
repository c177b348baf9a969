//! One subscription's task: a cursor over the committed WAL, fed from the recent-events
//! ring while it keeps up and from the WAL itself while it lags (docs/watch-streams.md).
//!
//! Invariants: the cursor only moves forward, over positions whose transitions were all
//! looked at, so every matching transition is pushed exactly once and in WAL order; nothing at
//! or above the commit position is looked at, so nothing is pushed before it is committed.

use super::budget::{DeliveryBudget, Turn};
use super::filter::{Filter, SubscriptionKind};
use super::hub::{HubInner, WatchRequest};
use super::stats::StreamErrorReason;
use crate::database::{
    CatchUpError, CatchUpReader, CommittedEvent, RecentRead, WatchFeed, WatcherGuard,
};
use crate::service::handler::{ConnectionContext, Outbound};
use crate::service::outbound::{EventBatch, EventHead};
use rstmdb_protocol::RcpError;
use rstmdb_protocol::message::StreamError;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A read of at least this many transitions means writes arrive faster than delivery wakes
/// up: only then is the delivery interval worth its latency.
const STEADY_STREAM_EVENTS: usize = 8;

/// Holds a subscription's place in the hub and the gauges; releases both exactly once, when
/// the subscription ends for whatever reason (also if its task is dropped).
#[derive(Debug)]
pub(crate) struct Registration {
    id: String,
    kind: SubscriptionKind,
    hub: Arc<HubInner>,
    watcher: Option<WatcherGuard>,
}

impl Registration {
    pub(crate) fn new(
        id: String,
        kind: SubscriptionKind,
        hub: Arc<HubInner>,
        watcher: WatcherGuard,
    ) -> Registration {
        hub.counters.started(kind);
        Registration {
            id,
            kind,
            hub,
            watcher: Some(watcher),
        }
    }

    /// Ends the registration; true if it was still in the hub (UNWATCH had not removed it).
    fn end(&mut self) -> bool {
        match self.watcher.take() {
            Some(watcher) => {
                drop(watcher);
                self.hub.counters.ended(self.kind);
                self.hub.remove(&self.id)
            }
            None => false,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.end();
    }
}

/// How a subscription ended.
enum Ended {
    /// UNWATCH, connection close, BYE, server shutdown: no final message.
    Quietly,
    /// It can no longer be served without a gap: a stream error is its final message.
    Failed(RcpError, StreamErrorReason),
}

#[derive(Debug)]
pub(crate) struct Subscription {
    id: String,
    /// This subscription's part of every event's JSON, spliced in front of the shared tails.
    head: Arc<EventHead>,
    filter: Filter,
    include_ctx: bool,
    /// The next WAL position to look at: every transition below it was looked at.
    cursor: u64,
    /// Where a new WATCH would continue without gap or duplicate: the last pushed event's
    /// offset + 1, or the starting point (the stream error's `next_offset`, spec §6.9).
    next_offset: u64,
    conn: ConnectionContext,
    feed: WatchFeed,
    registration: Registration,
    cancel: CancellationToken,
    batch_events: usize,
    delivery_interval: Duration,
    budget: Arc<DeliveryBudget>,
    /// The WAL reader of the last catch-up read, while it may hold more records.
    reader: Option<CatchUpReader>,
}

impl Subscription {
    pub(crate) fn new(
        id: String,
        request: WatchRequest,
        start: u64,
        conn: ConnectionContext,
        feed: WatchFeed,
        registration: Registration,
        cancel: CancellationToken,
    ) -> Subscription {
        let batch_events = registration.hub.limits.batch_events.max(1);
        let budget = Arc::clone(&registration.hub.budget);
        let delivery_interval = Duration::from_millis(registration.hub.limits.delivery_interval_ms);
        Subscription {
            head: Arc::new(EventHead::new(&id).with_budget(Arc::clone(&registration.hub.budget))),
            id,
            filter: request.filter,
            include_ctx: request.include_ctx,
            cursor: start,
            next_offset: start,
            conn,
            feed,
            registration,
            cancel,
            batch_events,
            delivery_interval,
            budget,
            reader: None,
        }
    }

    pub(crate) async fn run(mut self) {
        let ended = self.serve().await;
        if let Ended::Failed(error, reason) = ended
            && self.registration.end()
        {
            // Only a subscription UNWATCH did not remove gets its final message. The
            // connection keeps listing the id so the events queued before the error are still
            // written; UNWATCH or the connection's end clears it.
            self.registration.hub.counters.stream_error(reason);
            let message = Outbound::StreamError(StreamError {
                subscription_id: self.id.clone(),
                error,
            });
            tokio::select! {
                _ = self.conn.push(message) => {}
                () = self.conn.closed() => {}
            }
        }
    }

    async fn serve(&mut self) -> Ended {
        let mut published = self.feed.published();
        let mut durable = self.feed.durable();
        loop {
            if self.cancel.is_cancelled() || self.conn.is_closed() {
                return Ended::Quietly;
            }
            // Mark the current values seen before reading the commit position, so a change
            // after the read wakes the wait below.
            published.borrow_and_update();
            if let Some(durable) = durable.as_mut() {
                durable.borrow_and_update();
            }
            let committed = self.feed.committed_offset();
            if self.cursor < committed {
                // Over the budget, delivery falls behind rather than starve the writes.
                let turn = tokio::select! {
                    () = self.cancel.cancelled() => return Ended::Quietly,
                    () = self.conn.closed() => return Ended::Quietly,
                    turn = self.budget.turn() => turn,
                };
                if turn.paused {
                    self.registration.hub.counters.delivery_paused();
                }
                let mut started = Instant::now();
                let (events, next_cursor) =
                    match self.feed.recent(self.cursor, committed, self.batch_events) {
                        RecentRead::Covered {
                            events,
                            next_cursor,
                        } => {
                            // Served by the ring now: the WAL reader's file is not needed.
                            self.reader = None;
                            (events, next_cursor)
                        }
                        RecentRead::NotCovered => match self.catch_up().await {
                            Ok(read) => {
                                // `catch_up` charged its read; not the wait for a thread.
                                started = Instant::now();
                                read
                            }
                            Err(ended) => return ended,
                        },
                    };
                if next_cursor > self.cursor {
                    if let Some(ended) = self.deliver(&events, started, turn).await {
                        return ended;
                    }
                    self.cursor = next_cursor;
                    if next_cursor >= committed
                        && events.len() >= STEADY_STREAM_EVENTS
                        && !self.delivery_interval.is_zero()
                    {
                        // Caught up with a steady stream: let the next events gather (see
                        // `delivery_interval_ms`). A trickle is still sent event by event.
                        tokio::select! {
                            () = self.cancel.cancelled() => return Ended::Quietly,
                            () = self.conn.closed() => return Ended::Quietly,
                            () = tokio::time::sleep(self.delivery_interval) => {}
                        }
                    }
                    continue;
                }
            }
            tokio::select! {
                () = self.cancel.cancelled() => return Ended::Quietly,
                () = self.conn.closed() => return Ended::Quietly,
                changed = published.changed() => if changed.is_err() {
                    return Ended::Quietly;
                },
                stopped = durable_changed(&mut durable) => if stopped {
                    return Ended::Quietly;
                },
            }
        }
    }

    /// Reads the next transitions from the WAL on a blocking thread.
    async fn catch_up(&mut self) -> Result<(Vec<Arc<CommittedEvent>>, u64), Ended> {
        let feed = self.feed.clone();
        let (cursor, max, reader) = (self.cursor, self.batch_events, self.reader.take());
        self.registration.hub.counters.catch_up_read();
        let read = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            (feed.catch_up(cursor, max, reader), started.elapsed())
        })
        .await
        .map(|(read, spent)| {
            self.budget.charge(spent);
            read
        });
        match read {
            Ok(Ok(read)) => {
                self.reader = read.reader;
                Ok((read.events, read.next_cursor))
            }
            Ok(Err(CatchUpError::Compacted { oldest_offset, .. })) => Err(Ended::Failed(
                RcpError::offset_compacted_next(self.next_offset, oldest_offset),
                StreamErrorReason::OffsetCompacted,
            )),
            Ok(Err(CatchUpError::ReadFailed(message))) => Err(read_failed(message)),
            Err(join) => Err(read_failed(format!("the WAL read stopped: {join}"))),
        }
    }

    /// Pushes the matching transitions as one batch, waiting for room in the connection's
    /// queue. Per transition this costs a filter check on borrowed fields and a reference
    /// count: the event's bytes are shared by every subscription.
    async fn deliver(
        &mut self,
        events: &[Arc<CommittedEvent>],
        started: Instant,
        turn: Turn,
    ) -> Option<Ended> {
        let counters = &self.registration.hub.counters;
        counters.held(events.len());
        let mut tails = Vec::new();
        let mut last_offset = None;
        let mut failed = None;
        for event in events {
            if !self.filter.matches(event) {
                continue;
            }
            match event.event_tail(self.include_ctx) {
                Ok(tail) => tails.push(tail.clone()),
                Err(message) => {
                    // The events before it are still delivered, then the stream error.
                    failed = Some(read_failed(message.to_owned()));
                    break;
                }
            }
            last_offset = Some(event.offset);
        }
        // Reading and filtering, not the wait for room below, which is not our turn's to hold.
        self.budget.charge(started.elapsed());
        drop(turn);
        if let Some(last_offset) = last_offset {
            let sent = tails.len();
            let batch = Outbound::Events(EventBatch {
                head: Arc::clone(&self.head),
                tails,
            });
            tokio::select! {
                pushed = self.conn.push(batch) => if pushed.is_err() {
                    return Some(Ended::Quietly);
                },
                () = self.cancel.cancelled() => return Some(Ended::Quietly),
                () = self.conn.closed() => return Some(Ended::Quietly),
            }
            self.registration
                .hub
                .counters
                .forwarded(self.registration.kind, sent);
            self.next_offset = last_offset + 1;
        }
        failed
    }
}

fn read_failed(message: String) -> Ended {
    Ended::Failed(
        RcpError::wal_read_failed(message),
        StreamErrorReason::WalReadFailed,
    )
}

/// Resolves when the durable offset moves (true: the WAL stopped); never without a receiver.
async fn durable_changed<T>(durable: &mut Option<watch::Receiver<T>>) -> bool {
    match durable {
        Some(receiver) => receiver.changed().await.is_err(),
        None => std::future::pending().await,
    }
}
