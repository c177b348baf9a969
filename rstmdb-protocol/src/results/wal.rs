//! Results of SNAPSHOT_INSTANCE, WAL_READ, WAL_STATS and COMPACT (§4.16–§4.19).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// SNAPSHOT_INSTANCE result (§4.16).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInstanceResult {
    pub instance_id: String,
    pub snapshot_id: String,
    pub wal_offset: u64,
    pub size_bytes: u64,
    /// CRC32C of the stored snapshot, 8 lowercase hex digits.
    pub checksum: String,
}

/// WAL_READ result (§4.17).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalReadResult {
    pub records: Vec<WalRecord>,
    /// The last returned record's offset + 1; `null` (always sent) when none was returned.
    pub next_offset: Option<u64>,
}

/// One WAL record as WAL_READ shows it. `entry` always has a string `type`; readers skip
/// types they do not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalRecord {
    pub sequence: u64,
    pub offset: u64,
    pub entry: Map<String, Value>,
}

/// WAL_STATS result (§4.18).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalStatsResult {
    pub entry_count: u64,
    pub segment_count: u64,
    pub total_size_bytes: u64,
    pub latest_offset: u64,
    pub io_stats: IoStats,
    pub durable_offset: u64,
    pub oldest_offset: u64,
    /// `null` (always sent) when there is no checkpoint.
    pub checkpoint_offset: Option<u64>,
    pub bytes_since_checkpoint: u64,
    /// `"every_write"`, `"never"`, `"every_n:N"` or `"every_ms:N"`.
    pub fsync_policy: String,
    pub fsync_latency_us: FsyncLatency,
    pub records_per_fsync: f64,
}

/// WAL I/O counters since process start (§4.18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoStats {
    pub bytes_written: u64,
    pub bytes_read: u64,
    pub writes: u64,
    pub reads: u64,
    pub fsyncs: u64,
    pub write_calls: u64,
}

/// Fsync latency percentiles over the last 1,024 fsyncs, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsyncLatency {
    pub p50: u64,
    pub p99: u64,
}

/// COMPACT result (§4.19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactResult {
    pub snapshots_created: u64,
    pub segments_deleted: u64,
    pub bytes_reclaimed: u64,
    pub total_snapshots: u64,
    pub wal_segments: u64,
    pub checkpoint_offset: u64,
}
