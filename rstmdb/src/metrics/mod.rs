//! Prometheus metrics (spec §10) and their HTTP endpoint.
//!
//! The layers below never import this module: they report through observer traits that
//! [`Metrics`] implements — the server's [`ServerObserver`], the WAL's [`FsyncObserver`] — and
//! STATS reads the totals through the service's [`ServerCounters`]. The database and the watch
//! hub are read at scrape time.
//!
//! - [`Metrics`]: the registry and every handle. Start here.
//! - `server`: connections, requests, errors, subscriptions (upstream names and labels).
//! - `database`: WAL, instance, machine, checkpoint and recovery numbers, read at scrape time.
//! - `fsync`: fsync latency and group-commit histograms, fed by the WAL's observer hook.
//! - [`http`]: `/metrics`, `/health`; [`health`]: what `/health` answers.

mod cluster;
mod database;
mod error;
mod fsync;
pub mod health;
pub mod http;
mod server;

pub use error::MetricsError;
pub use health::{Health, HealthState};
pub use http::MetricsServer;
pub use server::STREAM_ERROR_REASONS;

use crate::cluster::status::ClusterObserver;
use crate::database::{Database, OpenReport};
use crate::server::ServerObserver;
use crate::service::watch::WatchHub;
use crate::service::{ServerCounters, ServerTotals};
use crate::wal::sync::FsyncObserver;
use database::DatabaseMetrics;
use fsync::FsyncMetrics;
use prometheus::{Registry, TextEncoder};
use rstmdb_protocol::{ErrorCode, Op};
use server::ServerMetrics;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long a scrape waits for the database's numbers before it answers with the previous
/// ones (a database busy with a long job must not hang the scraper).
const REFRESH_TIMEOUT: Duration = Duration::from_secs(2);

/// Every metric of one server, in its own registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    server: ServerMetrics,
    database: DatabaseMetrics,
    /// Handed to the database's WAL as its fsync observer.
    fsync: Arc<FsyncMetrics>,
    /// Read at scrape time; set once the data directory is open.
    source: OnceLock<Arc<Database>>,
    /// Subscription counters, read at scrape time; set once the server runs.
    watch: OnceLock<WatchHub>,
    /// Cluster mode: the Raft and replication gauges, and `/ready`.
    cluster: OnceLock<cluster::ClusterMetrics>,
    /// One scrape at a time: refreshing mirrors counters by difference and resets the
    /// per-state gauges, which two interleaved refreshes would get wrong.
    scrape: tokio::sync::Mutex<()>,
}

impl Metrics {
    /// Registers every metric (zero-valued until something happens), the process collector,
    /// and the fsync histograms (fed once a database is attached). `max_state_series` bounds
    /// `rstmdb_instances_by_state` (`metrics.max_state_series`).
    pub fn new(max_state_series: usize) -> Result<Arc<Metrics>, MetricsError> {
        let registry = Registry::new();
        let server = ServerMetrics::register(&registry)?;
        let database = DatabaseMetrics::register(&registry, max_state_series)?;
        let fsync = Arc::new(FsyncMetrics::register(&registry)?);
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Arc::new(Metrics {
            registry,
            server,
            database,
            fsync,
            source: OnceLock::new(),
            watch: OnceLock::new(),
            cluster: OnceLock::new(),
            scrape: tokio::sync::Mutex::new(()),
        }))
    }

    /// From now on scrapes read this database's numbers, and its WAL reports each fsync here.
    /// A second call is ignored.
    pub fn attach_database(&self, db: Arc<Database>) {
        let observer: Arc<dyn FsyncObserver> = self.fsync.clone();
        if self.source.set(Arc::clone(&db)).is_ok() {
            db.set_fsync_observer(observer);
        }
    }

    /// Start-up figures: recovery duration and records replayed.
    pub fn record_recovery(&self, report: &OpenReport) {
        self.database.record_recovery(report);
    }

    /// From now on scrapes read this hub's subscription counters. A second call is ignored.
    pub fn attach_watch(&self, hub: WatchHub) {
        let _ = self.watch.set(hub);
    }

    /// Cluster mode: exports the Raft and replication metrics of spec §12.5 and lets `/ready`
    /// judge the node's lag against `max_lag_entries`. A second call is ignored.
    pub fn attach_cluster(
        &self,
        observer: ClusterObserver,
        max_lag_entries: u64,
    ) -> Result<(), MetricsError> {
        if self.cluster.get().is_some() {
            return Ok(());
        }
        let metrics = cluster::ClusterMetrics::register(&self.registry, observer, max_lag_entries)?;
        let _ = self.cluster.set(metrics);
        Ok(())
    }

    /// What `/ready` answers beyond liveness: `Ok` on a standalone server; on a cluster node,
    /// whether it has a leader and is caught up (spec §12.5).
    pub fn readiness(&self) -> Result<(), String> {
        self.cluster
            .get()
            .map_or(Ok(()), cluster::ClusterMetrics::readiness)
    }

    /// The registry, for registering more collectors.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Refreshes the database numbers, then renders every metric in the text exposition
    /// format 0.0.4.
    pub async fn scrape(&self) -> String {
        let _one_at_a_time = self.scrape.lock().await;
        if let Some(db) = self.source.get() {
            let refreshed = tokio::time::timeout(REFRESH_TIMEOUT, self.database.refresh(db)).await;
            if refreshed.is_err() {
                tracing::warn!("metrics scrape: the database did not answer in time; stale values");
            }
        }
        if let Some(hub) = self.watch.get() {
            self.server.refresh_watch(&hub.stats());
        }
        if let Some(cluster) = self.cluster.get() {
            cluster.refresh();
        }
        // Encoding our own registry's families into a String cannot fail on valid metrics;
        // if it ever did, an empty page is better than a crashed endpoint.
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

impl ServerObserver for Metrics {
    fn connection_opened(&self) {
        self.server.connections_total.inc();
        self.server.connections_active.inc();
    }

    fn connection_closed(&self) {
        self.server.connections_active.dec();
    }

    fn request_finished(&self, op: Op, elapsed: Duration, error: Option<&ErrorCode>) {
        self.server.request_finished(op, elapsed);
        if let Some(code) = error {
            self.server.error(code.as_str());
        }
    }

    fn error_sent(&self, code: &ErrorCode) {
        self.server.error(code.as_str());
    }
}

impl ServerCounters for Metrics {
    fn server_totals(&self) -> ServerTotals {
        let server = &self.server;
        ServerTotals {
            connections: u64::try_from(server.connections_active.get()).unwrap_or(0),
            requests_total: server::sum_by_label(&server.requests_total).values().sum(),
            errors_total: server::sum_by_label(&server.errors_total),
        }
    }
}
