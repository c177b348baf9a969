//! The watch hub: every live subscription of the server, the limits on them, and their
//! counters. WATCH_* and UNWATCH go through here (docs/watch-streams.md).

use super::budget::DeliveryBudget;
use super::filter::Filter;
use super::stats::{WatchCounters, WatchStats};
use super::subscription::{Registration, Subscription};
use crate::database::{Database, RingLimits, WatchFeed, WatchPoint};
use crate::service::handler::ConnectionContext;
use rstmdb_protocol::RcpError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

/// The `[watch]` limits (spec §9 extension). `Default` is `[watch]`'s defaults
/// (`crate::assemble`: the configuration model owns every default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchLimits {
    pub max_subscriptions_per_connection: usize,
    pub max_subscriptions: usize,
    /// Recent transitions kept in memory for subscriptions that keep up.
    pub ring: RingLimits,
    /// The most transitions one subscription takes at once from the ring or the WAL; with the
    /// connection's outbound queue, this bounds the memory a lagging subscriber costs.
    pub batch_events: usize,
    /// After a read of 8 or more transitions that caught up with the commit position (a
    /// steady stream), a subscription waits this long before it looks again, so that each
    /// wake-up, frame batch and write syscall carries many events instead of a few. A trickle
    /// is sent at once; 0 sends every group as soon as it is published.
    pub delivery_interval_ms: u64,
    /// The CPU share (percent of all cores) that watch delivery may take; beyond it
    /// subscriptions take turns, pause, fall behind and catch up later (never skip). 0 or 100:
    /// unbounded.
    pub delivery_cpu_percent: u32,
}

/// A new subscription's parameters.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    pub filter: Filter,
    pub include_ctx: bool,
    pub from_offset: Option<u64>,
}

#[derive(Debug)]
struct Entry {
    connection_id: u64,
    cancel: CancellationToken,
}

/// Live subscriptions by id, and how many each connection holds: the per-connection limit is
/// checked in O(1), not by scanning every subscription of the server under the lock (a client
/// retrying WATCH over its limit would otherwise make each attempt cost the whole registry).
#[derive(Debug, Default)]
struct Registry {
    by_id: HashMap<String, Entry>,
    per_connection: HashMap<u64, usize>,
}

impl Registry {
    fn len(&self) -> usize {
        self.by_id.len()
    }

    fn held_by(&self, connection_id: u64) -> usize {
        self.per_connection
            .get(&connection_id)
            .copied()
            .unwrap_or(0)
    }

    fn get(&self, subscription_id: &str) -> Option<&Entry> {
        self.by_id.get(subscription_id)
    }

    fn insert(&mut self, subscription_id: String, entry: Entry) {
        *self.per_connection.entry(entry.connection_id).or_insert(0) += 1;
        if let Some(replaced) = self.by_id.insert(subscription_id, entry) {
            // Ids are fresh UUIDs, so this does not happen; the counts stay right if it does.
            self.forget_one(replaced.connection_id);
        }
    }

    fn remove(&mut self, subscription_id: &str) -> Option<Entry> {
        let entry = self.by_id.remove(subscription_id)?;
        self.forget_one(entry.connection_id);
        Some(entry)
    }

    fn forget_one(&mut self, connection_id: u64) {
        if let Some(count) = self.per_connection.get_mut(&connection_id) {
            *count -= 1;
            if *count == 0 {
                self.per_connection.remove(&connection_id);
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct HubInner {
    registry: Mutex<Registry>,
    pub(crate) counters: WatchCounters,
    pub(crate) limits: WatchLimits,
    pub(crate) budget: Arc<DeliveryBudget>,
}

/// Every live subscription of a server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct WatchHub {
    inner: Arc<HubInner>,
    feed: WatchFeed,
}

impl WatchHub {
    pub fn new(db: &Database, limits: WatchLimits) -> WatchHub {
        let feed = db.watch_feed();
        feed.set_ring_limits(limits.ring);
        WatchHub {
            inner: Arc::new(HubInner {
                registry: Mutex::new(Registry::default()),
                counters: WatchCounters::default(),
                limits,
                budget: Arc::new(DeliveryBudget::for_this_machine(
                    limits.delivery_cpu_percent,
                )),
            }),
            feed,
        }
    }

    pub fn stats(&self) -> WatchStats {
        self.inner.counters.snapshot()
    }

    pub fn limits(&self) -> WatchLimits {
        self.inner.limits
    }

    /// Starts a subscription at `point` for the connection and returns its id. Refuses one over
    /// a limit with `BAD_REQUEST`, reason `subscription_limit` (extension: the public clients
    /// accept only the codes of §5.2, so not `RATE_LIMITED`).
    pub fn start(
        &self,
        conn: &ConnectionContext,
        request: WatchRequest,
        point: &WatchPoint,
    ) -> Result<String, RcpError> {
        let subscription_id = format!("sub-{}", uuid::Uuid::new_v4());
        let cancel = CancellationToken::new();
        {
            let mut registry = self.inner.lock_registry();
            let limits = &self.inner.limits;
            if registry.len() >= limits.max_subscriptions {
                return Err(limit_error("the server", limits.max_subscriptions));
            }
            let on_connection = registry.held_by(conn.id());
            if on_connection >= limits.max_subscriptions_per_connection {
                return Err(limit_error(
                    "this connection",
                    limits.max_subscriptions_per_connection,
                ));
            }
            registry.insert(
                subscription_id.clone(),
                Entry {
                    connection_id: conn.id(),
                    cancel: cancel.clone(),
                },
            );
        }
        // Before any of its events can be queued.
        conn.subscription_started(&subscription_id);
        let start = request.from_offset.unwrap_or(point.start_offset);
        let registration = Registration::new(
            subscription_id.clone(),
            request.filter.kind(),
            Arc::clone(&self.inner),
            self.feed.watcher(),
        );
        let subscription = Subscription::new(
            subscription_id.clone(),
            request,
            start,
            conn.clone(),
            self.feed.clone(),
            registration,
            cancel,
        );
        tokio::spawn(subscription.run());
        Ok(subscription_id)
    }

    /// UNWATCH: ends the connection's subscription; false when the id is unknown, belongs to
    /// another connection or already ended. Synchronous, so no event of it is written after
    /// the response (the writer drops queued events of ended subscriptions).
    pub fn unwatch(&self, conn: &ConnectionContext, subscription_id: &str) -> bool {
        let removed = {
            let mut registry = self.inner.lock_registry();
            match registry.get(subscription_id) {
                Some(entry) if entry.connection_id == conn.id() => registry.remove(subscription_id),
                _ => None,
            }
        };
        if let Some(entry) = &removed {
            entry.cancel.cancel();
        }
        // Also for an id a stream error ended: the connection still lists it (see
        // `Subscription::fail`); after UNWATCH it no longer counts as held.
        conn.subscription_ended(subscription_id);
        removed.is_some()
    }
}

impl HubInner {
    /// Removes a subscription that ended by itself; false if UNWATCH removed it first.
    pub(crate) fn remove(&self, subscription_id: &str) -> bool {
        self.lock_registry().remove(subscription_id).is_some()
    }

    fn lock_registry(&self) -> MutexGuard<'_, Registry> {
        // Plain inserts and removes: a panic elsewhere cannot leave the map inconsistent.
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn limit_error(scope: &str, limit: usize) -> RcpError {
    RcpError::bad_request(
        "subscription_limit",
        format!("{scope} already holds the maximum of {limit} subscriptions"),
    )
    .with_detail("limit", limit)
}
