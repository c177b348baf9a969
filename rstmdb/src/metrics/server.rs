//! Connection, request, error and subscription metrics (spec §10, upstream names and labels).

use super::MetricsError;
use crate::service::watch::{SubscriptionKind, WatchStats};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};
use rstmdb_protocol::Op;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Spec §10: `rstmdb_request_duration_seconds` buckets.
const REQUEST_SECONDS_BUCKETS: [f64; 9] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// The `reason`s a stream error carries (spec §3.6), present at zero from the start.
pub const STREAM_ERROR_REASONS: [&str; 2] = ["offset_compacted", "wal_read_failed"];

#[derive(Debug, Clone)]
pub(super) struct ServerMetrics {
    pub connections_total: IntCounter,
    pub connections_active: IntGauge,
    pub requests_total: IntCounterVec,
    pub errors_total: IntCounterVec,
    pub request_duration: HistogramVec,
    pub subscriptions_active: IntGaugeVec,
    pub events_forwarded_total: IntCounterVec,
    pub watch_stream_errors_total: IntCounterVec,
    /// One op's series of `requests_total` and `request_duration`, looked up on its first
    /// request only: `with_label_values` hashes the label and locks the family every call.
    per_op: Arc<[OnceLock<OpSeries>; OP_COUNT]>,
}

/// Ops of the §4.0 table and this project's extensions.
const OP_COUNT: usize = Op::ALL.len() + Op::EXTENSIONS.len();

#[derive(Debug)]
struct OpSeries {
    requests: IntCounter,
    duration: Histogram,
}

impl ServerMetrics {
    /// Mirrors the watch hub's counters (read at scrape time, so the gauges are exact also
    /// right after disconnects).
    pub fn refresh_watch(&self, stats: &WatchStats) {
        let active = |kind: SubscriptionKind, value: u64| {
            self.subscriptions_active
                .with_label_values(&[kind.label()])
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        };
        active(
            SubscriptionKind::Instance,
            stats.subscriptions_active_instance,
        );
        active(SubscriptionKind::All, stats.subscriptions_active_all);
        let forwarded = |kind: SubscriptionKind, total: u64| {
            catch_up(
                &self
                    .events_forwarded_total
                    .with_label_values(&[kind.label()]),
                total,
            );
        };
        forwarded(SubscriptionKind::Instance, stats.events_forwarded_instance);
        forwarded(SubscriptionKind::All, stats.events_forwarded_all);
        let errors = |reason: &str, total: u64| {
            catch_up(
                &self.watch_stream_errors_total.with_label_values(&[reason]),
                total,
            );
        };
        errors("offset_compacted", stats.stream_errors_offset_compacted);
        errors("wal_read_failed", stats.stream_errors_wal_read_failed);
    }

    pub fn register(registry: &Registry) -> Result<Self, MetricsError> {
        let metrics = Self {
            connections_total: IntCounter::new("rstmdb_connections_total", "Connections accepted")?,
            connections_active: IntGauge::new("rstmdb_connections_active", "Open connections")?,
            requests_total: IntCounterVec::new(
                Opts::new("rstmdb_requests_total", "Requests processed, by op"),
                &["operation"],
            )?,
            errors_total: IntCounterVec::new(
                Opts::new("rstmdb_errors_total", "Error responses, by error code"),
                &["code"],
            )?,
            request_duration: HistogramVec::new(
                HistogramOpts::new("rstmdb_request_duration_seconds", "Request latency, by op")
                    .buckets(REQUEST_SECONDS_BUCKETS.to_vec()),
                &["operation"],
            )?,
            subscriptions_active: IntGaugeVec::new(
                Opts::new("rstmdb_subscriptions_active", "Live watch subscriptions"),
                &["type"],
            )?,
            events_forwarded_total: IntCounterVec::new(
                Opts::new("rstmdb_events_forwarded_total", "Watch events sent"),
                &["type"],
            )?,
            watch_stream_errors_total: IntCounterVec::new(
                Opts::new(
                    "rstmdb_watch_stream_errors_total",
                    "Subscriptions ended by a stream_error, by reason",
                ),
                &["reason"],
            )?,
            per_op: Arc::new(std::array::from_fn(|_| OnceLock::new())),
        };
        registry.register(Box::new(metrics.connections_total.clone()))?;
        registry.register(Box::new(metrics.connections_active.clone()))?;
        registry.register(Box::new(metrics.requests_total.clone()))?;
        registry.register(Box::new(metrics.errors_total.clone()))?;
        registry.register(Box::new(metrics.request_duration.clone()))?;
        registry.register(Box::new(metrics.subscriptions_active.clone()))?;
        registry.register(Box::new(metrics.events_forwarded_total.clone()))?;
        registry.register(Box::new(metrics.watch_stream_errors_total.clone()))?;
        // Series that exist from the start, at zero, so dashboards and rate() see them before
        // the first event rather than a gap.
        for kind in [SubscriptionKind::Instance, SubscriptionKind::All] {
            metrics
                .subscriptions_active
                .with_label_values(&[kind.label()]);
            metrics
                .events_forwarded_total
                .with_label_values(&[kind.label()]);
        }
        for reason in STREAM_ERROR_REASONS {
            metrics
                .watch_stream_errors_total
                .with_label_values(&[reason]);
        }
        Ok(metrics)
    }

    pub fn request_finished(&self, op: Op, elapsed: Duration) {
        let uncached;
        let series = match self.per_op.get(op as usize) {
            // A series appears with its op's first request, as before the cache.
            Some(slot) => slot.get_or_init(|| self.series_of(op)),
            // An op added to the enum but not to `Op::ALL` or `Op::EXTENSIONS` has no slot: it
            // is still counted, the slow way, rather than panic.
            None => {
                uncached = self.series_of(op);
                &uncached
            }
        };
        series.requests.inc();
        series.duration.observe(elapsed.as_secs_f64());
    }

    /// `op`'s series, looked up by label.
    fn series_of(&self, op: Op) -> OpSeries {
        let label = [op.as_str()];
        OpSeries {
            requests: self.requests_total.with_label_values(&label),
            duration: self.request_duration.with_label_values(&label),
        }
    }

    pub fn error(&self, code: &str) {
        self.errors_total.with_label_values(&[code]).inc();
    }
}

/// The current values of a one-label counter or gauge family, by label value (series created
/// with no value yet count as zero). Reads the collector instead of keeping parallel atomics.
pub(super) fn sum_by_label<C: prometheus::core::Collector>(
    family: &C,
) -> std::collections::BTreeMap<String, u64> {
    let mut totals = std::collections::BTreeMap::new();
    for metrics in family.collect() {
        for metric in metrics.get_metric() {
            let label = metric
                .get_label()
                .first()
                .map(|pair| pair.value().to_owned())
                .unwrap_or_default();
            let value = metric.get_counter().get_value() + metric.get_gauge().get_value();
            *totals.entry(label).or_insert(0) += value.max(0.0) as u64;
        }
    }
    totals
}

/// Mirrors a monotonic counter kept elsewhere; refreshes are serialised by the scrape lock.
fn catch_up(counter: &prometheus::IntCounter, total: u64) {
    let delta = total.saturating_sub(counter.get());
    if delta > 0 {
        counter.inc_by(delta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_is_counted_under_its_own_label() {
        let metrics = ServerMetrics::register(&Registry::new()).unwrap();
        let ops = Op::ALL.into_iter().chain(Op::EXTENSIONS);
        for (times, op) in ops.clone().enumerate() {
            for _ in 0..=times {
                metrics.request_finished(op, Duration::from_millis(2));
            }
        }
        for (times, op) in ops.enumerate() {
            let label = [op.as_str()];
            let expected = times as u64 + 1;
            assert_eq!(
                metrics.requests_total.with_label_values(&label).get(),
                expected,
                "{op}"
            );
            let duration = metrics.request_duration.with_label_values(&label);
            assert_eq!(duration.get_sample_count(), expected, "{op}");
        }
    }
}
