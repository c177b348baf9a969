//! Watch counters, plain atomics read by the metrics export (spec §10:
//! `rstmdb_subscriptions_active{type}`, `rstmdb_events_forwarded_total{type}`,
//! `rstmdb_watch_stream_errors_total{reason}`).

use super::filter::SubscriptionKind;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct WatchCounters {
    active_instance: AtomicU64,
    active_all: AtomicU64,
    forwarded_instance: AtomicU64,
    forwarded_all: AtomicU64,
    errors_offset_compacted: AtomicU64,
    errors_wal_read_failed: AtomicU64,
    /// The most transitions one subscription held at once outside the connection's queue.
    held_events_max: AtomicU64,
    catch_up_reads: AtomicU64,
    delivery_pauses: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchStats {
    pub subscriptions_active_instance: u64,
    pub subscriptions_active_all: u64,
    pub events_forwarded_instance: u64,
    pub events_forwarded_all: u64,
    pub stream_errors_offset_compacted: u64,
    pub stream_errors_wal_read_failed: u64,
    /// High-water mark of transitions a subscription held outside its connection's outbound
    /// queue (bounded by `watch.batch_events`).
    pub held_events_max: u64,
    /// Reads of the WAL by subscriptions that were behind the recent-events ring.
    pub catch_up_reads: u64,
    /// Times a subscription paused because delivery was over its CPU share.
    pub delivery_pauses: u64,
}

/// Why a stream ended with an error (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamErrorReason {
    OffsetCompacted,
    WalReadFailed,
}

impl WatchCounters {
    fn active(&self, kind: SubscriptionKind) -> &AtomicU64 {
        match kind {
            SubscriptionKind::Instance => &self.active_instance,
            SubscriptionKind::All => &self.active_all,
        }
    }

    pub(crate) fn started(&self, kind: SubscriptionKind) {
        self.active(kind).fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn ended(&self, kind: SubscriptionKind) {
        self.active(kind).fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn forwarded(&self, kind: SubscriptionKind, events: usize) {
        let counter = match kind {
            SubscriptionKind::Instance => &self.forwarded_instance,
            SubscriptionKind::All => &self.forwarded_all,
        };
        counter.fetch_add(events as u64, Ordering::Relaxed);
    }

    pub(crate) fn stream_error(&self, reason: StreamErrorReason) {
        let counter = match reason {
            StreamErrorReason::OffsetCompacted => &self.errors_offset_compacted,
            StreamErrorReason::WalReadFailed => &self.errors_wal_read_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn held(&self, events: usize) {
        self.held_events_max
            .fetch_max(events as u64, Ordering::Relaxed);
    }

    pub(crate) fn catch_up_read(&self) {
        self.catch_up_reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn delivery_paused(&self) {
        self.delivery_pauses.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> WatchStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        WatchStats {
            subscriptions_active_instance: get(&self.active_instance),
            subscriptions_active_all: get(&self.active_all),
            events_forwarded_instance: get(&self.forwarded_instance),
            events_forwarded_all: get(&self.forwarded_all),
            stream_errors_offset_compacted: get(&self.errors_offset_compacted),
            stream_errors_wal_read_failed: get(&self.errors_wal_read_failed),
            held_events_max: get(&self.held_events_max),
            catch_up_reads: get(&self.catch_up_reads),
            delivery_pauses: get(&self.delivery_pauses),
        }
    }
}
