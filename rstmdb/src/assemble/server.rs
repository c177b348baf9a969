//! The server's part of the assembly (feature `server`): the watch hub's limits and the
//! network layer's settings.

use super::{ring_limits, size};
use crate::config::{AuthConfig, Config, ResolvedAuth, WatchConfig};
use crate::server::{AuthSettings, BeforeAuthLimits, ServerSettings, TlsSettings};
use crate::service::watch::WatchLimits;
use std::time::Duration;

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
        max_pending_bytes: size(network.max_pending_response_bytes),
        max_inflight_bytes: (network.max_inflight_bytes > 0)
            .then(|| size(network.max_inflight_bytes)),
        auth: AuthSettings {
            required: auth.required,
            token_hashes: auth.token_hashes,
            before_auth: before_auth_limits(&config.auth),
        },
        tls,
    }
}

/// Spec §13's limits, `auth.*`.
pub fn before_auth_limits(auth: &AuthConfig) -> BeforeAuthLimits {
    BeforeAuthLimits {
        max_frame_bytes: size(auth.max_unauthenticated_frame_bytes),
        timeout: seconds_or_off(auth.unauthenticated_timeout_secs),
        max_connections: size(auth.max_unauthenticated_connections),
    }
}

impl Default for BeforeAuthLimits {
    /// `[auth]`'s defaults.
    fn default() -> Self {
        before_auth_limits(&AuthConfig::default())
    }
}

/// `0` turns a timeout off.
fn seconds_or_off(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

impl Default for WatchLimits {
    /// `[watch]`'s defaults.
    fn default() -> Self {
        watch_limits(&WatchConfig::default())
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
}
