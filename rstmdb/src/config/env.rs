//! `RSTMDB_*` environment-variable overrides (spec §9.2, §9.3). A value that does not parse is an
//! error naming the variable; it is never silently ignored.

use super::cluster::ClusterConfig;
use super::error::ConfigError;
use super::fsync::FsyncPolicySetting;
use super::model::{
    Config, MAX_BATCH_EVENTS, MAX_DELIVERY_INTERVAL_MS, MAX_FRAME_BYTES, MAX_SEGMENT_MB,
    MIN_BATCH_EVENTS, MIN_FRAME_BYTES, MIN_IDEMPOTENCY_BYTES, MIN_PENDING_RESPONSE_BYTES,
    MIN_SEGMENT_MB, MIN_UNAUTHENTICATED_FRAME_BYTES,
};
use super::resolve::checked_token_hash;
use std::path::PathBuf;
use std::str::FromStr;

/// Applies every `RSTMDB_*` variable that `lookup` returns. Tests pass a map; the binary passes
/// `|name| std::env::var(name).ok()`.
pub fn apply_env(
    config: &mut Config,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let env = Env { lookup: &lookup };
    env.parse("RSTMDB_BIND", &mut config.network.bind_addr)?;
    env.parse("RSTMDB_IDLE_TIMEOUT", &mut config.network.idle_timeout_secs)?;
    env.parse(
        "RSTMDB_WRITE_TIMEOUT",
        &mut config.network.write_timeout_secs,
    )?;
    env.parse(
        "RSTMDB_MAX_CONNECTIONS",
        &mut config.network.max_connections,
    )?;
    env.ranged(
        "RSTMDB_MAX_FRAME_BYTES",
        &mut config.network.max_frame_bytes,
        MIN_FRAME_BYTES,
        MAX_FRAME_BYTES,
    )?;
    env.ranged(
        "RSTMDB_MAX_PENDING_RESPONSE_BYTES",
        &mut config.network.max_pending_response_bytes,
        MIN_PENDING_RESPONSE_BYTES,
        u64::MAX,
    )?;
    env.parse(
        "RSTMDB_MAX_INFLIGHT_BYTES",
        &mut config.network.max_inflight_bytes,
    )?;
    env.path("RSTMDB_DATA", &mut config.storage.data_dir);
    env.ranged(
        "RSTMDB_WAL_SEGMENT_SIZE_MB",
        &mut config.storage.wal_segment_size_mb,
        MIN_SEGMENT_MB,
        MAX_SEGMENT_MB,
    )?;
    if let Some(value) = env.get("RSTMDB_FSYNC_POLICY") {
        config.storage.fsync_policy =
            FsyncPolicySetting::parse_flag(&value).map_err(|message| ConfigError::Env {
                var: "RSTMDB_FSYNC_POLICY",
                value,
                message,
            })?;
    }
    env.parse(
        "RSTMDB_MAX_MACHINE_VERSIONS",
        &mut config.storage.max_machine_versions,
    )?;
    env.boolean(
        "RSTMDB_ALLOW_INSTANCE_RECREATE",
        &mut config.storage.allow_instance_recreate,
    )?;
    env.boolean(
        "RSTMDB_ALLOW_FLUSH_ALL",
        &mut config.storage.allow_flush_all,
    )?;
    env.parse(
        "RSTMDB_IDEMPOTENCY_TTL_SECS",
        &mut config.storage.idempotency_ttl_secs,
    )?;
    env.parse(
        "RSTMDB_IDEMPOTENCY_MAX_ENTRIES",
        &mut config.storage.idempotency_max_entries,
    )?;
    env.ranged(
        "RSTMDB_IDEMPOTENCY_MAX_BYTES",
        &mut config.storage.idempotency_max_bytes,
        MIN_IDEMPOTENCY_BYTES,
        u64::MAX,
    )?;
    env.parse(
        "RSTMDB_MAX_SNAPSHOTS_PER_INSTANCE",
        &mut config.storage.max_snapshots_per_instance,
    )?;
    env.boolean("RSTMDB_COMPACT_ENABLED", &mut config.compaction.enabled)?;
    env.parse(
        "RSTMDB_COMPACT_EVENTS",
        &mut config.compaction.events_threshold,
    )?;
    env.parse(
        "RSTMDB_COMPACT_SIZE_MB",
        &mut config.compaction.size_threshold_mb,
    )?;
    env.parse(
        "RSTMDB_COMPACT_INTERVAL",
        &mut config.compaction.min_interval_secs,
    )?;
    env.boolean("RSTMDB_AUTH_REQUIRED", &mut config.auth.required)?;
    if let Some(hash) = env.get("RSTMDB_AUTH_TOKEN_HASH").filter(|h| !h.is_empty()) {
        // Checked here, so the error names the variable rather than a list position.
        checked_token_hash(&hash, || "RSTMDB_AUTH_TOKEN_HASH".to_owned())?;
        config.auth.token_hashes.push(hash);
    }
    if let Some(path) = env.get("RSTMDB_AUTH_SECRETS_FILE") {
        config.auth.secrets_file = Some(PathBuf::from(path));
    }
    env.ranged(
        "RSTMDB_AUTH_MAX_UNAUTHENTICATED_FRAME_BYTES",
        &mut config.auth.max_unauthenticated_frame_bytes,
        MIN_UNAUTHENTICATED_FRAME_BYTES,
        MAX_FRAME_BYTES,
    )?;
    env.parse(
        "RSTMDB_AUTH_UNAUTHENTICATED_TIMEOUT",
        &mut config.auth.unauthenticated_timeout_secs,
    )?;
    env.ranged(
        "RSTMDB_AUTH_MAX_UNAUTHENTICATED_CONNECTIONS",
        &mut config.auth.max_unauthenticated_connections,
        1,
        u64::MAX,
    )?;
    env.boolean("RSTMDB_TLS_ENABLED", &mut config.tls.enabled)?;
    env.optional_path("RSTMDB_TLS_CERT", &mut config.tls.cert_path);
    env.optional_path("RSTMDB_TLS_KEY", &mut config.tls.key_path);
    env.boolean(
        "RSTMDB_TLS_REQUIRE_CLIENT_CERT",
        &mut config.tls.require_client_cert,
    )?;
    env.optional_path("RSTMDB_TLS_CLIENT_CA", &mut config.tls.client_ca_path);
    env.boolean("RSTMDB_METRICS_ENABLED", &mut config.metrics.enabled)?;
    env.parse("RSTMDB_METRICS_BIND", &mut config.metrics.bind_addr)?;
    env.ranged(
        "RSTMDB_METRICS_MAX_STATE_SERIES",
        &mut config.metrics.max_state_series,
        1,
        u64::MAX,
    )?;
    let watch = &mut config.watch;
    env.ranged(
        "RSTMDB_WATCH_MAX_SUBSCRIPTIONS_PER_CONNECTION",
        &mut watch.max_subscriptions_per_connection,
        1,
        u64::MAX,
    )?;
    env.ranged(
        "RSTMDB_WATCH_MAX_SUBSCRIPTIONS",
        &mut watch.max_subscriptions,
        1,
        u64::MAX,
    )?;
    env.parse("RSTMDB_WATCH_RING_EVENTS", &mut watch.ring_events)?;
    env.parse("RSTMDB_WATCH_RING_SIZE_MB", &mut watch.ring_size_mb)?;
    env.ranged(
        "RSTMDB_WATCH_BATCH_EVENTS",
        &mut watch.batch_events,
        MIN_BATCH_EVENTS,
        MAX_BATCH_EVENTS,
    )?;
    env.ranged(
        "RSTMDB_WATCH_DELIVERY_INTERVAL_MS",
        &mut watch.delivery_interval_ms,
        0,
        MAX_DELIVERY_INTERVAL_MS,
    )?;
    env.ranged(
        "RSTMDB_WATCH_DELIVERY_CPU_PERCENT",
        &mut watch.delivery_cpu_percent,
        0,
        100,
    )?;
    apply_cluster_env(config, &env)
}

/// `RSTMDB_CLUSTER_*` (spec §12.4). Any of them makes the server a cluster node, as a
/// `[cluster]` table does; the rules of `Config::resolve` then say what is missing.
fn apply_cluster_env(config: &mut Config, env: &Env<'_>) -> Result<(), ConfigError> {
    const VARS: [&str; 5] = [
        "RSTMDB_CLUSTER_NODE_ID",
        "RSTMDB_CLUSTER_RAFT_ADDR",
        "RSTMDB_CLUSTER_CLIENT_ADDR",
        "RSTMDB_CLUSTER_MEMBERS",
        "RSTMDB_CLUSTER_SECRET_FILE",
    ];
    if VARS.iter().all(|var| env.get(var).is_none()) {
        return Ok(());
    }
    let cluster = config.cluster.get_or_insert_with(ClusterConfig::default);
    env.parse("RSTMDB_CLUSTER_NODE_ID", &mut cluster.node_id)?;
    if let Some(addr) = env.get("RSTMDB_CLUSTER_RAFT_ADDR") {
        cluster.raft_addr = addr;
    }
    if let Some(addr) = env.get("RSTMDB_CLUSTER_CLIENT_ADDR") {
        cluster.client_addr = Some(addr);
    }
    if let Some(members) = env.get("RSTMDB_CLUSTER_MEMBERS") {
        cluster.members = members
            .split(',')
            .map(str::trim)
            .filter(|member| !member.is_empty())
            .map(str::to_owned)
            .collect();
    }
    env.optional_path("RSTMDB_CLUSTER_SECRET_FILE", &mut cluster.secret_file);
    Ok(())
}

/// Parses the boolean forms of spec §9.3 (case-insensitive).
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    fn get(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
    }

    fn parse<T: FromStr>(&self, var: &'static str, slot: &mut T) -> Result<(), ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        if let Some(value) = self.get(var) {
            *slot = value.parse().map_err(|err: T::Err| ConfigError::Env {
                var,
                message: err.to_string(),
                value,
            })?;
        }
        Ok(())
    }

    fn ranged(
        &self,
        var: &'static str,
        slot: &mut u64,
        min: u64,
        max: u64,
    ) -> Result<(), ConfigError> {
        let mut value = *slot;
        self.parse(var, &mut value)?;
        if !(min..=max).contains(&value) {
            return Err(ConfigError::Env {
                var,
                value: value.to_string(),
                message: format!("out of range; accepted: {min} to {max}"),
            });
        }
        *slot = value;
        Ok(())
    }

    fn boolean(&self, var: &'static str, slot: &mut bool) -> Result<(), ConfigError> {
        if let Some(value) = self.get(var) {
            *slot = parse_bool(&value).ok_or_else(|| ConfigError::Env {
                var,
                value,
                message: "accepted: 1, true, yes, on, 0, false, no, off".to_owned(),
            })?;
        }
        Ok(())
    }

    fn path(&self, var: &str, slot: &mut PathBuf) {
        if let Some(value) = self.get(var) {
            *slot = PathBuf::from(value);
        }
    }

    fn optional_path(&self, var: &str, slot: &mut Option<PathBuf>) {
        if let Some(value) = self.get(var) {
            *slot = Some(PathBuf::from(value));
        }
    }
}
