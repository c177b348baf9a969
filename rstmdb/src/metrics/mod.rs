//! Prometheus metrics (spec §10) and their HTTP endpoint.
//!
//! - [`Metrics`]: the registry and every handle; the server, the watch streams and `serve` call
//!   its methods. Start here.
//! - `server`: connections, requests, errors, subscriptions (upstream names and labels).
//! - `request`: [`RequestTimer`], the per-request span and measurements.
//! - `database`: WAL, instance, machine, checkpoint and recovery numbers, read at scrape time.
//! - `fsync`: fsync latency and group-commit histograms, fed by the WAL's observer hook.
//! - [`http`]: `/metrics`, `/health`; [`health`]: what `/health` answers.

mod database;
mod error;
mod fsync;
pub mod health;
pub mod http;
mod request;
mod server;

pub use error::MetricsError;
pub use health::{Health, HealthState};
pub use http::MetricsServer;
pub use request::RequestTimer;
pub use server::{STREAM_ERROR_REASONS, SubscriptionKind};

use crate::database::{Database, OpenReport};
use crate::wal::sync::FsyncObserver;
use database::DatabaseMetrics;
use fsync::FsyncMetrics;
use prometheus::{IntGauge, Registry, TextEncoder};
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
    /// One scrape at a time: refreshing mirrors counters by difference and resets the
    /// per-state gauges, which two interleaved refreshes would get wrong.
    scrape: tokio::sync::Mutex<()>,
}

impl Metrics {
    /// Registers every metric (zero-valued until something happens), the process collector,
    /// and the fsync histograms (fed once a database is attached).
    pub fn new() -> Result<Arc<Metrics>, MetricsError> {
        let registry = Registry::new();
        let server = ServerMetrics::register(&registry)?;
        let database = DatabaseMetrics::register(&registry)?;
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

    /// Counts an accepted connection; the returned guard marks it closed when dropped, so every
    /// way a connection ends (peer gone, BYE, idle, fault, shutdown, task aborted) decrements.
    pub fn connection_opened(&self) -> ConnectionGuard {
        self.server.connections_total.inc();
        self.server.connections_active.inc();
        ConnectionGuard(self.server.connections_active.clone())
    }

    /// Counts an error response sent outside any request (framing fault, connection refused
    /// over the limit, unparseable envelope).
    pub fn error_sent(&self, code: &str) {
        self.server.error(code);
    }

    /// Counts a new watch subscription; the guard decrements `rstmdb_subscriptions_active`
    /// when dropped (UNWATCH, stream error, disconnect).
    pub fn subscription_opened(&self, kind: SubscriptionKind) -> SubscriptionGuard {
        let gauge = self
            .server
            .subscriptions_active
            .with_label_values(&[kind.as_str()]);
        gauge.inc();
        SubscriptionGuard(gauge)
    }

    /// One event sent to a subscriber.
    pub fn event_forwarded(&self, kind: SubscriptionKind) {
        self.server
            .events_forwarded_total
            .with_label_values(&[kind.as_str()])
            .inc();
    }

    /// A subscription ended by a `stream_error` (§3.6) with this `reason`.
    pub fn watch_stream_error(&self, reason: &str) {
        self.server
            .watch_stream_errors_total
            .with_label_values(&[reason])
            .inc();
    }

    /// Connection, subscription, request and error totals, for the STATS op.
    pub fn server_totals(&self) -> ServerTotals {
        let server = &self.server;
        ServerTotals {
            connections: u64::try_from(server.connections_active.get()).unwrap_or(0),
            subscriptions: server::sum_by_label(&server.subscriptions_active)
                .values()
                .sum(),
            requests_total: server::sum_by_label(&server.requests_total).values().sum(),
            errors_total: server::sum_by_label(&server.errors_total),
        }
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
        // Encoding our own registry's families into a String cannot fail on valid metrics;
        // if it ever did, an empty page is better than a crashed endpoint.
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

/// What [`Metrics::server_totals`] reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerTotals {
    pub connections: u64,
    pub subscriptions: u64,
    pub requests_total: u64,
    /// Error responses by code; codes never sent are absent.
    pub errors_total: std::collections::BTreeMap<String, u64>,
}

/// An open connection, counted in `rstmdb_connections_active` until dropped.
#[derive(Debug)]
pub struct ConnectionGuard(IntGauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A live subscription, counted in `rstmdb_subscriptions_active{type}` until dropped.
#[derive(Debug)]
pub struct SubscriptionGuard(IntGauge);

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
