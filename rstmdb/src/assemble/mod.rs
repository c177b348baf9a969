//! The composition root's library half: turns a [`Config`] into the plain options each layer
//! takes, so that no layer imports the configuration. `rstmdb serve` (`cli/serve.rs`) and the
//! embedded `rstmdb bench` call these; so do tests that start a server from a configuration.
//!
//! The configuration model owns every default (spec §9.2). The layers' option types get their
//! `Default` here, from `Config::default()`, so a default is written down exactly once and an
//! embedded database or a test server behaves as an unconfigured `rstmdb serve`.
//!
//! This file assembles the storage core; `server.rs` (feature `server`) the watch hub and the
//! network layer.

#[cfg(feature = "server")]
mod cluster;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub use cluster::{NodeSettingsError, node_settings};
#[cfg(feature = "server")]
pub use server::{server_settings, watch_limits};

use crate::checkpoint::SnapshotRetention;
use crate::config::{CompactionConfig, Config, FsyncPolicySetting, StorageConfig, WatchConfig};
use crate::database::{AutoCompaction, DatabaseOptions, RingLimits};
use crate::engine::EngineConfig;
use crate::wal::{FsyncPolicy, WalConfig};
use std::time::Duration;

/// The database options of `[storage]` (spec §9.2).
pub fn database_options(config: &Config) -> DatabaseOptions {
    DatabaseOptions {
        data_dir: config.storage.data_dir.clone(),
        wal: wal_config(&config.storage),
        engine: engine_config(&config.storage),
        wal_storage: None,
        snapshot_retention: snapshot_retention(&config.storage),
    }
}

/// `storage.max_snapshots_per_instance`; 0 keeps every snapshot.
pub fn snapshot_retention(storage: &StorageConfig) -> SnapshotRetention {
    SnapshotRetention {
        max_per_instance: (storage.max_snapshots_per_instance > 0)
            .then(|| size(storage.max_snapshots_per_instance)),
    }
}

impl Default for SnapshotRetention {
    /// `[storage]`'s default.
    fn default() -> Self {
        snapshot_retention(&StorageConfig::default())
    }
}

/// The WAL writer settings of `[storage]`.
pub fn wal_config(storage: &StorageConfig) -> WalConfig {
    WalConfig {
        segment_size_bytes: storage.wal_segment_size_mb << 20,
        fsync_policy: fsync_policy(storage.fsync_policy),
    }
}

/// The WAL's policy for a configured one; the WAL type documents what each guarantees.
pub fn fsync_policy(setting: FsyncPolicySetting) -> FsyncPolicy {
    match setting {
        FsyncPolicySetting::EveryWrite => FsyncPolicy::EveryWrite,
        FsyncPolicySetting::EveryN(n) => FsyncPolicy::EveryN(n),
        FsyncPolicySetting::EveryMs(ms) => FsyncPolicy::EveryMs(ms),
        FsyncPolicySetting::Never => FsyncPolicy::Never,
    }
}

/// The engine rules of `[storage]`.
pub fn engine_config(storage: &StorageConfig) -> EngineConfig {
    EngineConfig {
        allow_instance_recreate: storage.allow_instance_recreate,
        allow_flush_all: storage.allow_flush_all,
        max_machine_versions: storage.max_machine_versions,
        idempotency_ttl_ms: i64::try_from(storage.idempotency_ttl_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX),
        idempotency_max_entries: size(storage.idempotency_max_entries),
        idempotency_max_bytes: size(storage.idempotency_max_bytes),
    }
}

/// The automatic compactor's triggers, `[compaction]`.
pub fn auto_compaction(compaction: &CompactionConfig) -> AutoCompaction {
    AutoCompaction {
        enabled: compaction.enabled,
        records_threshold: compaction.events_threshold,
        size_threshold_bytes: compaction.size_threshold_mb.saturating_mul(1 << 20),
        min_interval: Duration::from_secs(compaction.min_interval_secs),
    }
}

/// The recent-events ring's bounds, `watch.ring_events` and `watch.ring_size_mb`.
pub fn ring_limits(watch: &WatchConfig) -> RingLimits {
    RingLimits {
        events: size(watch.ring_events),
        bytes: size(watch.ring_size_mb.saturating_mul(1 << 20)),
    }
}

/// A count or size from the configuration as a `usize`; saturates on 32-bit targets.
pub(super) fn size(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

impl Default for EngineConfig {
    /// `[storage]`'s defaults.
    fn default() -> Self {
        engine_config(&StorageConfig::default())
    }
}

impl Default for WalConfig {
    /// `[storage]`'s defaults: 64 MiB segments, `every_write`.
    fn default() -> Self {
        wal_config(&StorageConfig::default())
    }
}

impl Default for RingLimits {
    /// `[watch]`'s defaults.
    fn default() -> Self {
        ring_limits(&WatchConfig::default())
    }
}

impl Default for AutoCompaction {
    /// `[compaction]`'s defaults.
    fn default() -> Self {
        auto_compaction(&CompactionConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_subscription_limit_or_batch_is_refused() {
        for table in ["max_subscriptions = 0", "batch_events = 0"] {
            let text = format!("[watch]\n{table}\n");
            assert!(Config::from_toml(&text, "test").is_err(), "{table}");
        }
    }

    #[test]
    fn storage_settings_become_wal_and_engine_options() {
        let config = Config::from_toml(
            "[storage]\nwal_segment_size_mb = 2\nfsync_policy = { every_ms = 5 }\n\
             idempotency_ttl_secs = 3\nmax_machine_versions = 4\n",
            "test",
        )
        .expect("parses");
        let options = database_options(&config);
        assert_eq!(options.wal.segment_size_bytes, 2 << 20);
        assert_eq!(options.wal.fsync_policy, FsyncPolicy::EveryMs(5));
        assert_eq!(options.engine.idempotency_ttl_ms, 3_000);
        assert_eq!(options.engine.max_machine_versions, 4);
        assert_eq!(WalConfig::default().segment_size_bytes, 64 << 20);
        assert_eq!(WalConfig::default().fsync_policy, FsyncPolicy::EveryWrite);
    }
}
