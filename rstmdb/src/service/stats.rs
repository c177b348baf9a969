//! STATS (docs/stats-op.md): the engine's incrementally kept counts (no instance scan),
//! WAL_STATS, the watch hub's subscription count and the server totals.
//!
//! The server totals (connections, requests, errors by code) are counted by whatever observes
//! the network layer — the metrics — and read here through [`ServerCounters`], so this module
//! imports neither the server nor the metrics.

use super::identity::SERVER_VERSION;
use super::watch::WatchHub;
use crate::database::Database;
use rstmdb_protocol::RcpError;
use rstmdb_protocol::results::StatsResult;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// Connection, request and error totals since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerTotals {
    /// Open connections.
    pub connections: u64,
    pub requests_total: u64,
    /// Error responses by code; codes never sent are absent.
    pub errors_total: BTreeMap<String, u64>,
}

/// Where STATS reads the server totals; the metrics implement it.
pub trait ServerCounters: Send + Sync + fmt::Debug {
    fn server_totals(&self) -> ServerTotals;
}

/// Gathers a STATS answer. The counts are read in request order (they reflect exactly the
/// records below `counts_offset`); without `counters` the totals are null.
pub(super) fn stats(
    db: &Database,
    watch: &WatchHub,
    counters: Option<&Arc<dyn ServerCounters>>,
    started: Instant,
) -> impl Future<Output = Result<StatsResult, RcpError>> + Send + 'static {
    let counts = db.read_at(|engine| {
        (
            engine.list_machines().items.len() as u64,
            engine.machine_version_count(),
            engine.live_instance_count(),
            engine.state_counts(),
        )
    });
    let wal = db.wal_stats();
    let totals = counters.map(|counters| counters.server_totals());
    let uptime_secs = started.elapsed().as_secs();
    let watch = watch.stats();
    let subscriptions = watch.subscriptions_active_instance + watch.subscriptions_active_all;
    async move {
        let ((machine_count, machine_version_count, instance_count, instances), counts_offset) =
            counts.await?;
        Ok(StatsResult {
            server_version: SERVER_VERSION.to_owned(),
            uptime_secs,
            machine_count,
            machine_version_count,
            instance_count,
            instances,
            counts_offset,
            connections: totals.as_ref().map(|t| t.connections),
            subscriptions,
            requests_total: totals.as_ref().map(|t| t.requests_total),
            errors_total: totals.map(|t| t.errors_total),
            wal: wal.await?,
        })
    }
}
