//! Counters and positions the WAL exposes for WAL_STATS (spec §4.18).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

/// `io_stats` counters since process start; shared by the writer and every reader.
#[derive(Debug, Default)]
pub struct IoCounters {
    pub bytes_written: AtomicU64,
    /// Records appended.
    pub writes: AtomicU64,
    /// Write system calls on segment files.
    pub write_calls: AtomicU64,
    /// fdatasync calls on segment files (directory syncs are not counted).
    pub fsyncs: AtomicU64,
    pub bytes_read: AtomicU64,
    /// Records read back from segment files.
    pub reads: AtomicU64,
}

impl IoCounters {
    pub fn snapshot(&self) -> IoStats {
        IoStats {
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            write_calls: self.write_calls.load(Ordering::Relaxed),
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn add_read(&self, records: u64, bytes: u64) {
        self.reads.fetch_add(records, Ordering::Relaxed);
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// A copy of [`IoCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoStats {
    pub bytes_written: u64,
    pub writes: u64,
    pub write_calls: u64,
    pub fsyncs: u64,
    pub bytes_read: u64,
    pub reads: u64,
}

/// Number of recent fsyncs the latency percentiles and records-per-fsync cover.
pub const FSYNC_WINDOW: usize = 1024;

/// The last [`FSYNC_WINDOW`] fsyncs: latency and how many records each made durable.
#[derive(Debug, Default)]
pub struct FsyncWindow {
    samples: VecDeque<(u64, u64)>,
}

impl FsyncWindow {
    pub fn record(&mut self, latency_us: u64, records: u64) {
        if self.samples.len() == FSYNC_WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back((latency_us, records));
    }

    /// `(p50, p99)` latency in µs; zeros when there were no fsyncs.
    pub fn latency_percentiles_us(&self) -> (u64, u64) {
        if self.samples.is_empty() {
            return (0, 0);
        }
        let mut lat: Vec<u64> = self.samples.iter().map(|s| s.0).collect();
        lat.sort_unstable();
        let at = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize];
        (at(0.50), at(0.99))
    }

    /// Mean records made durable per fsync; 0 when there were none.
    pub fn records_per_fsync(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let total: u64 = self.samples.iter().map(|s| s.1).sum();
        total as f64 / self.samples.len() as f64
    }
}

/// Everything WAL_STATS needs from the WAL (the server adds the checkpoint fields).
#[derive(Debug, Clone, PartialEq)]
pub struct WalStats {
    /// The newest record's sequence (0 when none was ever written).
    pub entry_count: u64,
    pub segment_count: u64,
    pub total_size_bytes: u64,
    pub latest_offset: u64,
    pub durable_offset: u64,
    pub oldest_offset: u64,
    pub io: IoStats,
    pub fsync_policy: String,
    pub fsync_latency_us_p50: u64,
    pub fsync_latency_us_p99: u64,
    pub records_per_fsync: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_only_the_last_1024_fsyncs() {
        let mut w = FsyncWindow::default();
        for i in 0..(1000 + FSYNC_WINDOW) {
            w.record(if i < 1000 { 1_000_000 } else { 10 }, 2);
        }
        assert_eq!(w.latency_percentiles_us(), (10, 10));
        assert_eq!(w.records_per_fsync(), 2.0);
    }

    #[test]
    fn empty_window_reports_zeros() {
        let w = FsyncWindow::default();
        assert_eq!(w.latency_percentiles_us(), (0, 0));
        assert_eq!(w.records_per_fsync(), 0.0);
    }
}
