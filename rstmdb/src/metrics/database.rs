//! Gauges and counters read from the database (spec §10, §4.18): WAL stats, instances,
//! machines, checkpoint age, recovery. Refreshed at scrape time, so a scrape always sees the
//! values of that moment (e.g. `rstmdb_wal_size_bytes` = `total_size_bytes`).

use super::MetricsError;
use crate::checkpoint::CheckpointStore;
use crate::database::{Database, OpenReport};
use prometheus::{Gauge, GaugeVec, IntCounter, IntGauge, IntGaugeVec, Opts, Registry};
use rstmdb_protocol::results::StateCountEntry;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub(super) struct DatabaseMetrics {
    instances_total: IntGauge,
    machines_total: IntGauge,
    instances_by_state: IntGaugeVec,
    wal_entries: IntGauge,
    wal_segments: IntGauge,
    wal_size_bytes: IntGauge,
    wal_bytes_written_total: IntCounter,
    wal_bytes_read_total: IntCounter,
    wal_writes_total: IntCounter,
    wal_reads_total: IntCounter,
    wal_fsyncs_total: IntCounter,
    wal_durable_offset: IntGauge,
    wal_latest_offset: IntGauge,
    /// No labels: its one series exists only while there is a checkpoint.
    checkpoint_age_seconds: GaugeVec,
    recovery_duration_seconds: Gauge,
    recovery_records_replayed: IntGauge,
    /// Series of `instances_by_state` at most, `_other` included: machine and state names
    /// come from clients, and every series costs every scrape and the Prometheus server.
    max_state_series: usize,
}

/// The `state` label of the series that sums the (machine, version) pairs' states beyond
/// `max_state_series`.
pub const OTHER_STATES: &str = "_other";

/// What one refresh reads from the engine.
struct EngineCounts {
    instances: u64,
    machines: u64,
    by_state: Vec<StateCountEntry>,
}

impl DatabaseMetrics {
    pub fn register(registry: &Registry, max_state_series: usize) -> Result<Self, MetricsError> {
        let gauge = |name: &str, help: &str| IntGauge::new(name, help);
        let counter = |name: &str, help: &str| IntCounter::new(name, help);
        let metrics = Self {
            instances_total: gauge("rstmdb_instances_total", "Non-deleted instances")?,
            machines_total: gauge("rstmdb_machines_total", "(machine, version) pairs")?,
            instances_by_state: IntGaugeVec::new(
                Opts::new(
                    "rstmdb_instances_by_state",
                    "Non-deleted instances by machine, version and current state",
                ),
                &["machine", "version", "state"],
            )?,
            wal_entries: gauge(
                "rstmdb_wal_entries",
                "Sequence number of the newest WAL record (entry_count)",
            )?,
            wal_segments: gauge("rstmdb_wal_segments", "WAL segment files")?,
            wal_size_bytes: gauge(
                "rstmdb_wal_size_bytes",
                "Bytes of the records held by the retained WAL segments (total_size_bytes)",
            )?,
            wal_bytes_written_total: counter(
                "rstmdb_wal_bytes_written_total",
                "Bytes of WAL records appended",
            )?,
            wal_bytes_read_total: counter(
                "rstmdb_wal_bytes_read_total",
                "Bytes of WAL records read back from segment files",
            )?,
            wal_writes_total: counter("rstmdb_wal_writes_total", "WAL records appended")?,
            wal_reads_total: counter(
                "rstmdb_wal_reads_total",
                "WAL records read back from segment files",
            )?,
            wal_fsyncs_total: counter("rstmdb_wal_fsyncs_total", "fsyncs of WAL segment files")?,
            wal_durable_offset: gauge(
                "rstmdb_wal_durable_offset",
                "End of the last WAL record known to be durable",
            )?,
            wal_latest_offset: gauge(
                "rstmdb_wal_latest_offset",
                "End of the last WAL record written",
            )?,
            checkpoint_age_seconds: GaugeVec::new(
                Opts::new(
                    "rstmdb_checkpoint_age_seconds",
                    "Seconds since the newest checkpoint was taken (absent without one)",
                ),
                &[],
            )?,
            recovery_duration_seconds: Gauge::new(
                "rstmdb_recovery_duration_seconds",
                "How long opening the data directory (checkpoint load and WAL replay) took",
            )?,
            recovery_records_replayed: gauge(
                "rstmdb_recovery_records_replayed",
                "WAL records replayed at start-up",
            )?,
            max_state_series: max_state_series.max(1),
        };
        let m = metrics.clone();
        registry.register(Box::new(m.instances_total))?;
        registry.register(Box::new(m.machines_total))?;
        registry.register(Box::new(m.instances_by_state))?;
        registry.register(Box::new(m.wal_entries))?;
        registry.register(Box::new(m.wal_segments))?;
        registry.register(Box::new(m.wal_size_bytes))?;
        registry.register(Box::new(m.wal_bytes_written_total))?;
        registry.register(Box::new(m.wal_bytes_read_total))?;
        registry.register(Box::new(m.wal_writes_total))?;
        registry.register(Box::new(m.wal_reads_total))?;
        registry.register(Box::new(m.wal_fsyncs_total))?;
        registry.register(Box::new(m.wal_durable_offset))?;
        registry.register(Box::new(m.wal_latest_offset))?;
        registry.register(Box::new(m.checkpoint_age_seconds))?;
        registry.register(Box::new(m.recovery_duration_seconds))?;
        registry.register(Box::new(m.recovery_records_replayed))?;
        Ok(metrics)
    }

    pub fn record_recovery(&self, report: &OpenReport) {
        self.recovery_duration_seconds
            .set(report.duration.as_secs_f64());
        self.recovery_records_replayed
            .set(saturating_i64(report.records_replayed));
    }

    /// Reads the database's current numbers. A database that is shutting down answers
    /// nothing; the values of the last refresh stay.
    pub async fn refresh(&self, db: &Database) {
        if let Ok(stats) = db.wal_stats().await {
            self.wal_entries.set(saturating_i64(stats.entry_count));
            self.wal_segments.set(saturating_i64(stats.segment_count));
            self.wal_size_bytes
                .set(saturating_i64(stats.total_size_bytes));
            self.wal_durable_offset
                .set(saturating_i64(stats.durable_offset));
            self.wal_latest_offset
                .set(saturating_i64(stats.latest_offset));
            let io = &stats.io_stats;
            catch_up(&self.wal_bytes_written_total, io.bytes_written);
            catch_up(&self.wal_bytes_read_total, io.bytes_read);
            catch_up(&self.wal_writes_total, io.writes);
            catch_up(&self.wal_reads_total, io.reads);
            catch_up(&self.wal_fsyncs_total, io.fsyncs);
        }
        let counts = db
            .read(|engine| EngineCounts {
                instances: engine.live_instance_count(),
                machines: engine.machine_version_count(),
                by_state: engine.state_counts(),
            })
            .await;
        if let Ok(counts) = counts {
            self.instances_total.set(saturating_i64(counts.instances));
            self.machines_total.set(saturating_i64(counts.machines));
            // Reset first: a state whose last instance left must disappear, not stay stale.
            self.instances_by_state.reset();
            for (machine, version, state, count) in
                capped_state_series(counts.by_state, self.max_state_series)
            {
                self.instances_by_state
                    .with_label_values(&[&machine, &version, &state])
                    .set(saturating_i64(count));
            }
        }
        self.refresh_checkpoint_age(db.data_dir().to_path_buf())
            .await;
    }

    async fn refresh_checkpoint_age(&self, data_dir: PathBuf) {
        // Reads 64 header bytes per checkpoint file: blocking, but small.
        let newest = tokio::task::spawn_blocking(move || newest_checkpoint_ms(data_dir)).await;
        match newest {
            Ok(Some(created_at_ms)) => {
                let age_ms = now_ms().saturating_sub(created_at_ms).max(0);
                self.checkpoint_age_seconds
                    .with_label_values(&[] as &[&str])
                    .set(age_ms as f64 / 1000.0);
            }
            Ok(None) => self.checkpoint_age_seconds.reset(),
            Err(_) => {}
        }
    }
}

/// The `(machine, version, state, count)` series to export: the first `max_series - 1` in
/// the engine's order (machine, version, state), and one `machine="_other", version="",
/// state="_other"` series summing the rest, so the total stays exact. Without overflow every
/// entry is its own series.
fn capped_state_series(
    by_state: Vec<StateCountEntry>,
    max_series: usize,
) -> Vec<(String, String, String, u64)> {
    let overflow = by_state.len() > max_series;
    let kept = if overflow {
        max_series.saturating_sub(1)
    } else {
        by_state.len()
    };
    let mut entries = by_state.into_iter();
    let mut series: Vec<_> = entries
        .by_ref()
        .take(kept)
        .map(|e| (e.machine, e.version.to_string(), e.state, e.count))
        .collect();
    if overflow {
        let rest = entries.map(|e| e.count).fold(0u64, u64::saturating_add);
        series.push((
            OTHER_STATES.to_owned(),
            String::new(),
            OTHER_STATES.to_owned(),
            rest,
        ));
    }
    series
}

/// When the newest valid checkpoint was taken (Unix ms); `None` without one.
fn newest_checkpoint_ms(data_dir: PathBuf) -> Option<i64> {
    let entries = CheckpointStore::open_read_only(data_dir).list().ok()?;
    entries
        .into_iter()
        .filter_map(|entry| entry.header.ok())
        .max_by_key(|info| (info.meta.checkpoint_offset, info.generation))
        .map(|info| info.meta.created_at_ms)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Mirrors a monotonic counter kept elsewhere. Refreshes are serialised by the caller, so the
/// read-then-add cannot double count.
fn catch_up(counter: &IntCounter, total: u64) {
    let delta = total.saturating_sub(counter.get());
    if delta > 0 {
        counter.inc_by(delta);
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(machine: &str, state: &str, count: u64) -> StateCountEntry {
        StateCountEntry {
            machine: machine.to_owned(),
            version: 1,
            state: state.to_owned(),
            count,
        }
    }

    #[test]
    fn states_beyond_the_cap_are_summed_under_other_and_the_total_stays_exact() {
        let by_state: Vec<_> = (0..10)
            .map(|n| entry("m", &format!("s{n}"), n + 1))
            .collect();
        let series = capped_state_series(by_state.clone(), 4);
        assert_eq!(series.len(), 4);
        assert_eq!(series[2], ("m".into(), "1".into(), "s2".into(), 3));
        assert_eq!(
            series[3],
            (
                "_other".into(),
                String::new(),
                "_other".into(),
                4 + 5 + 6 + 7 + 8 + 9 + 10
            )
        );
        let total: u64 = series.iter().map(|s| s.3).sum();
        assert_eq!(total, 55);
        // At the cap nothing is folded.
        assert_eq!(capped_state_series(by_state, 10).len(), 10);
    }
}
