//! The WAL's fsync latency and group-commit size, fed by the sync thread's observer hook.

use super::MetricsError;
use crate::wal::sync::FsyncObserver;
use prometheus::{Histogram, HistogramOpts, Registry};
use std::time::Duration;

/// Spec §10: `rstmdb_wal_fsync_duration_seconds` buckets.
const FSYNC_SECONDS_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Spec §10: `rstmdb_wal_group_commit_records` buckets.
const GROUP_COMMIT_BUCKETS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

#[derive(Debug, Clone)]
pub struct FsyncMetrics {
    duration: Histogram,
    records: Histogram,
}

impl FsyncMetrics {
    pub(super) fn register(registry: &Registry) -> Result<Self, MetricsError> {
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "rstmdb_wal_fsync_duration_seconds",
                "Latency of each WAL fsync (fdatasync)",
            )
            .buckets(FSYNC_SECONDS_BUCKETS.to_vec()),
        )?;
        let records = Histogram::with_opts(
            HistogramOpts::new(
                "rstmdb_wal_group_commit_records",
                "Records made durable by one fsync (group-commit batch size)",
            )
            .buckets(GROUP_COMMIT_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(records.clone()))?;
        Ok(Self { duration, records })
    }
}

impl FsyncObserver for FsyncMetrics {
    fn fsync_completed(&self, latency: Duration, records: u64) {
        self.duration.observe(latency.as_secs_f64());
        self.records.observe(records as f64);
    }
}
