//! The typed configuration tree. Its `Default` impls are the one place where every default of
//! spec §9.2 (and of the extension tables) is written down; the layers' own option types take
//! their defaults from here (`crate::assemble`). Unknown keys are errors
//! (`deny_unknown_fields`): a typo must never be silently ignored.

use super::fsync::FsyncPolicySetting;
use rstmdb_protocol::limits::{MAX_PAYLOAD_BYTES, MIN_MAX_FRAME_BYTES};
use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Smallest and largest accepted `network.max_frame_bytes`: the protocol's bounds (spec §2.4).
pub const MIN_FRAME_BYTES: u64 = MIN_MAX_FRAME_BYTES as u64;
pub const MAX_FRAME_BYTES: u64 = MAX_PAYLOAD_BYTES as u64;
/// Accepted `storage.wal_segment_size_mb` (spec §9.2; keeps segments below 2^40 bytes).
pub const MIN_SEGMENT_MB: u64 = 1;
pub const MAX_SEGMENT_MB: u64 = 65_536;
/// Smallest accepted `storage.idempotency_max_bytes`: below it, entries of ordinary writes
/// would not fit at all (and 0 must not read as "unlimited", as it does for other keys).
pub const MIN_IDEMPOTENCY_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub network: NetworkConfig,
    pub storage: StorageConfig,
    pub compaction: CompactionConfig,
    pub auth: AuthConfig,
    pub tls: TlsConfig,
    pub metrics: MetricsConfig,
    pub replication: ReplicationConfig,
    pub watch: WatchConfig,
    /// Present: cluster mode (spec §12); absent: standalone.
    pub cluster: Option<super::cluster::ClusterConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    pub bind_addr: SocketAddr,
    /// 0 disables the idle timeout (spec §8.4).
    pub idle_timeout_secs: u64,
    pub max_connections: u64,
    #[serde(deserialize_with = "frame_bytes")]
    pub max_frame_bytes: u64,
    /// A connection whose peer has not taken a pending write within this long, in total, is
    /// closed (extension); 0 disables it. Bounds what a client that never reads can hold.
    pub write_timeout_secs: u64,
    /// Bytes one connection may hold in requests being answered and responses not yet written
    /// (extension); beyond it the server stops reading that connection's requests until the
    /// client has read enough.
    #[serde(deserialize_with = "pending_bytes")]
    pub max_pending_response_bytes: u64,
    /// The same bound for the requests of all connections together (extension); 0 = none.
    pub max_inflight_bytes: u64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 7401)),
            idle_timeout_secs: 300,
            max_connections: 1000,
            max_frame_bytes: MAX_FRAME_BYTES,
            write_timeout_secs: 60,
            max_pending_response_bytes: 64 * 1024 * 1024,
            max_inflight_bytes: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    #[serde(deserialize_with = "segment_mb")]
    pub wal_segment_size_mb: u64,
    pub fsync_policy: FsyncPolicySetting,
    /// 0 means unlimited.
    pub max_machine_versions: u32,
    pub allow_instance_recreate: bool,
    pub allow_flush_all: bool,
    pub idempotency_ttl_secs: u64,
    pub idempotency_max_entries: u64,
    /// Bytes the idempotency entries may take, counted as they are written in a checkpoint;
    /// the oldest are evicted beyond it (extension, §6.2).
    #[serde(deserialize_with = "idempotency_bytes")]
    pub idempotency_max_bytes: u64,
    /// SNAPSHOT_INSTANCE files kept per instance; the oldest beyond it are removed
    /// (extension). 0 keeps them all.
    pub max_snapshots_per_instance: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            wal_segment_size_mb: 64,
            fsync_policy: FsyncPolicySetting::EveryWrite,
            max_machine_versions: 0,
            allow_instance_recreate: true,
            allow_flush_all: false,
            idempotency_ttl_secs: 86_400,
            idempotency_max_entries: 100_000,
            idempotency_max_bytes: 64 << 20,
            max_snapshots_per_instance: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CompactionConfig {
    pub enabled: bool,
    /// Records since the newest checkpoint; 0 turns this trigger off.
    pub events_threshold: u64,
    /// Compared with the WAL's total size; 0 turns this trigger off.
    pub size_threshold_mb: u64,
    pub min_interval_secs: u64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            events_threshold: 10_000,
            size_threshold_mb: 100,
            min_interval_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub required: bool,
    /// SHA-256 hex hashes of accepted bearer tokens (spec §8.1).
    pub token_hashes: Vec<String>,
    pub secrets_file: Option<PathBuf>,
    /// Largest frame or JSONL line a connection may send before AUTH succeeds (spec §13).
    #[serde(deserialize_with = "unauthenticated_frame_bytes")]
    pub max_unauthenticated_frame_bytes: u64,
    /// A connection that has not authenticated within this long is closed (§13); 0 = never.
    pub unauthenticated_timeout_secs: u64,
    /// Connections that have not authenticated yet, at most (§13).
    #[serde(deserialize_with = "at_least_one")]
    pub max_unauthenticated_connections: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            required: false,
            token_hashes: Vec::new(),
            secrets_file: None,
            max_unauthenticated_frame_bytes: 65_536,
            unauthenticated_timeout_secs: 10,
            max_unauthenticated_connections: 256,
        }
    }
}

/// Accepted `auth.max_unauthenticated_frame_bytes`: enough for any HELLO or AUTH a client
/// sends, and no more than a frame may ever be.
pub const MIN_UNAUTHENTICATED_FRAME_BYTES: u64 = 1024;

/// Smallest accepted `network.max_pending_response_bytes`: one response of the largest size
/// must fit, or a connection could never be answered.
pub const MIN_PENDING_RESPONSE_BYTES: u64 = MAX_FRAME_BYTES;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    pub enabled: bool,
    pub cert_path: Option<PathBuf>,
    pub key_path: Option<PathBuf>,
    pub require_client_cert: bool,
    pub client_ca_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// Loopback by default: the endpoint has no authentication (spec §10).
    pub bind_addr: SocketAddr,
    /// Series of `rstmdb_instances_by_state` at most; the rest are summed under
    /// `state="_other"` (machine and state names come from clients).
    #[serde(deserialize_with = "at_least_one")]
    pub max_state_series: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 9090)),
            max_state_series: 1_000,
        }
    }
}

/// Watch streams (extension; docs/watch-streams.md).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WatchConfig {
    /// WATCH_* beyond this on one connection is refused (`BAD_REQUEST`, `subscription_limit`).
    #[serde(deserialize_with = "at_least_one")]
    pub max_subscriptions_per_connection: u64,
    /// The same for the whole server.
    #[serde(deserialize_with = "at_least_one")]
    pub max_subscriptions: u64,
    /// Recent transitions kept in memory for subscribers that keep up; 0 serves all from the WAL.
    pub ring_events: u64,
    /// The same bound in MiB (of the transitions' JSON, roughly).
    pub ring_size_mb: u64,
    /// Most transitions one subscription holds at once besides its connection's outbound queue.
    #[serde(deserialize_with = "batch_events")]
    pub batch_events: u64,
    /// Pause of a subscription in a steady stream before it looks for more (batching).
    #[serde(deserialize_with = "delivery_interval_ms")]
    pub delivery_interval_ms: u64,
    /// CPU share (percent of all cores) watch delivery may take; 0 or 100: unbounded.
    #[serde(deserialize_with = "delivery_cpu_percent")]
    pub delivery_cpu_percent: u64,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            max_subscriptions_per_connection: 1_000,
            max_subscriptions: 10_000,
            ring_events: 65_536,
            ring_size_mb: 64,
            batch_events: 256,
            delivery_interval_ms: DEFAULT_DELIVERY_INTERVAL_MS,
            delivery_cpu_percent: DEFAULT_DELIVERY_CPU_PERCENT,
        }
    }
}

/// Accepted `watch.batch_events`.
pub const MIN_BATCH_EVENTS: u64 = 1;
pub const MAX_BATCH_EVENTS: u64 = 65_536;

/// `watch.delivery_interval_ms` default; chosen by measurement (docs/benchmarks.md, watch).
pub const DEFAULT_DELIVERY_INTERVAL_MS: u64 = 2;

/// `watch.delivery_cpu_percent` default; chosen by measurement (docs/benchmarks.md, watch).
pub const DEFAULT_DELIVERY_CPU_PERCENT: u64 = 10;

/// Accepted `watch.delivery_interval_ms`: beyond a second, pacing would be an outage.
pub const MAX_DELIVERY_INTERVAL_MS: u64 = 1_000;

/// Accepted for forward compatibility (spec §9.2); only `role = "standalone"` can start.
/// Other keys in this table are reserved for replication and ignored.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct ReplicationConfig {
    pub role: String,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            role: "standalone".to_owned(),
        }
    }
}

fn ranged<'de, D: Deserializer<'de>>(
    deserializer: D,
    min: u64,
    max: u64,
    unit: &str,
) -> Result<u64, D::Error> {
    let value = u64::deserialize(deserializer)?;
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(serde::de::Error::custom(format!(
            "{value} is out of range; accepted: {min} to {max} {unit}"
        )))
    }
}

fn frame_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    ranged(deserializer, MIN_FRAME_BYTES, MAX_FRAME_BYTES, "bytes")
}

fn unauthenticated_frame_bytes<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<u64, D::Error> {
    ranged(
        deserializer,
        MIN_UNAUTHENTICATED_FRAME_BYTES,
        MAX_FRAME_BYTES,
        "bytes",
    )
}

fn pending_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    ranged(deserializer, MIN_PENDING_RESPONSE_BYTES, u64::MAX, "bytes")
}

fn idempotency_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    ranged(deserializer, MIN_IDEMPOTENCY_BYTES, u64::MAX, "bytes")
}

fn segment_mb<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    ranged(deserializer, MIN_SEGMENT_MB, MAX_SEGMENT_MB, "MiB")
}

fn at_least_one<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let value = u64::deserialize(deserializer)?;
    if value == 0 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(value)
}

fn batch_events<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    ranged(deserializer, MIN_BATCH_EVENTS, MAX_BATCH_EVENTS, "events")
}

fn delivery_interval_ms<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    ranged(deserializer, 0, MAX_DELIVERY_INTERVAL_MS, "ms")
}

fn delivery_cpu_percent<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    ranged(deserializer, 0, 100, "percent")
}
