//! The composition root's library half: turns a [`Config`] into the plain options each layer
//! takes, so that no layer imports the configuration. `rstmdb serve` (`cli/serve.rs`) and the
//! embedded `rstmdb bench` call these; so do tests that start a server from a configuration.
//!
//! The configuration model owns every default (spec §9.2). The layers' option types get their
//! `Default` here, from `Config::default()`, so a default is written down exactly once and an
//! embedded database or a test server behaves as an unconfigured `rstmdb serve`.

use crate::config::{
    CompactionConfig, Config, FsyncPolicySetting, ResolvedAuth, StorageConfig, WatchConfig,
};
use crate::database::{AutoCompaction, DatabaseOptions, RingLimits};
use crate::engine::EngineConfig;
use crate::server::{AuthSettings, ServerSettings, TlsSettings};
use crate::service::watch::WatchLimits;
use crate::wal::{FsyncPolicy, WalConfig};
use std::time::Duration;

/// The database options of `[storage]` (spec §9.2).
pub fn database_options(config: &Config) -> DatabaseOptions {
    DatabaseOptions {
        data_dir: config.storage.data_dir.clone(),
        wal: wal_config(&config.storage),
        engine: engine_config(&config.storage),
        wal_storage: None,
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

/// The watch hub's limits, `[watch]`.
pub fn watch_limits(watch: &WatchConfig) -> WatchLimits {
    WatchLimits {
        max_subscriptions_per_connection: size(watch.max_subscriptions_per_connection),
        max_subscriptions: size(watch.max_subscriptions),
        ring: ring_limits(watch),
        batch_events: size(watch.batch_events),
        delivery_interval_ms: watch.delivery_interval_ms,
        delivery_cpu_percent: u32::try_from(watch.delivery_cpu_percent).unwrap_or(100),
    }
}

/// The recent-transitions ring's bounds, `watch.ring_events` and `watch.ring_size_mb`.
pub fn ring_limits(watch: &WatchConfig) -> RingLimits {
    RingLimits {
        events: size(watch.ring_events),
        bytes: size(watch.ring_size_mb.saturating_mul(1 << 20)),
    }
}

/// The network layer's settings: `[network]`, `[tls]` and the auth hashes `Config::resolve`
/// loaded. Call it on a configuration `resolve` accepted: that is what guarantees TLS has both
/// paths when enabled (missing ones leave TLS off here).
pub fn server_settings(config: &Config, auth: ResolvedAuth) -> ServerSettings {
    let network = &config.network;
    let tls = &config.tls;
    let tls = match (tls.enabled, &tls.cert_path, &tls.key_path) {
        (true, Some(cert_path), Some(key_path)) => Some(TlsSettings {
            cert_path: cert_path.clone(),
            key_path: key_path.clone(),
            client_ca_path: tls
                .require_client_cert
                .then(|| tls.client_ca_path.clone())
                .flatten(),
        }),
        _ => None,
    };
    ServerSettings {
        bind_addr: network.bind_addr,
        idle_timeout: seconds_or_off(network.idle_timeout_secs),
        max_connections: size(network.max_connections),
        max_frame_bytes: size(network.max_frame_bytes),
        write_timeout: seconds_or_off(network.write_timeout_secs),
        auth: AuthSettings {
            required: auth.required,
            token_hashes: auth.token_hashes,
        },
        tls,
    }
}

/// A count or size from the configuration as a `usize`; saturates on 32-bit targets.
fn size(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// `0` turns a timeout off.
fn seconds_or_off(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
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

impl Default for WatchLimits {
    /// `[watch]`'s defaults.
    fn default() -> Self {
        watch_limits(&WatchConfig::default())
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
    use crate::config::apply_env;

    fn settings(config: &Config) -> ServerSettings {
        server_settings(config, config.resolve().expect("resolves"))
    }

    #[test]
    fn the_watch_table_and_its_env_vars_become_the_hub_limits() {
        let mut config = Config::from_toml(
            "[watch]\nmax_subscriptions = 7\nring_size_mb = 2\nbatch_events = 9\n",
            "test",
        )
        .expect("parses");
        apply_env(&mut config, |name| {
            (name == "RSTMDB_WATCH_MAX_SUBSCRIPTIONS_PER_CONNECTION").then(|| "3".to_owned())
        })
        .expect("env applies");
        let limits = watch_limits(&config.watch);
        assert_eq!(limits.max_subscriptions, 7);
        assert_eq!(limits.max_subscriptions_per_connection, 3);
        assert_eq!(limits.ring.bytes, 2 << 20);
        assert_eq!(limits.ring.events, 65_536, "default kept");
        assert_eq!(limits.batch_events, 9);
    }

    #[test]
    fn a_zero_subscription_limit_or_batch_is_refused() {
        for table in ["max_subscriptions = 0", "batch_events = 0"] {
            let text = format!("[watch]\n{table}\n");
            assert!(Config::from_toml(&text, "test").is_err(), "{table}");
        }
    }

    #[test]
    fn the_write_timeout_defaults_to_60_s_and_zero_disables_it() {
        let mut config = Config::default();
        assert_eq!(
            settings(&config).write_timeout,
            Some(Duration::from_secs(60))
        );
        apply_env(&mut config, |name| {
            (name == "RSTMDB_WRITE_TIMEOUT").then(|| "0".to_owned())
        })
        .expect("a number");
        assert_eq!(settings(&config).write_timeout, None);
        let refused = apply_env(&mut config, |name| {
            (name == "RSTMDB_WRITE_TIMEOUT").then(|| "soon".to_owned())
        });
        assert!(refused.is_err(), "an unparsable value is an error");
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
