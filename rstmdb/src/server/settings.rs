//! What the server takes from the configuration (spec §9.2): the listener, limits, auth, TLS.

use super::tls::TlsSettings;
use crate::config::{Config, ResolvedAuth};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    pub bind_addr: SocketAddr,
    /// `None` disables the idle timeout (`idle_timeout_secs = 0`).
    pub idle_timeout: Option<Duration>,
    pub max_connections: usize,
    /// Inbound payload / JSONL line limit (§2.4).
    pub max_frame_bytes: usize,
    /// How long a pending write may wait without the peer accepting a byte before the
    /// connection is closed; `None` disables it (`write_timeout_secs = 0`).
    pub write_timeout: Option<Duration>,
    pub auth: ResolvedAuth,
    pub tls: Option<TlsSettings>,
}

impl ServerSettings {
    /// Builds the settings from a configuration that `Config::resolve` accepted (which is what
    /// guarantees that TLS has both paths when enabled; missing ones leave TLS off here).
    pub fn from_config(config: &Config, auth: ResolvedAuth) -> Self {
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
        Self {
            bind_addr: network.bind_addr,
            idle_timeout: (network.idle_timeout_secs > 0)
                .then(|| Duration::from_secs(network.idle_timeout_secs)),
            max_connections: usize::try_from(network.max_connections).unwrap_or(usize::MAX),
            max_frame_bytes: usize::try_from(network.max_frame_bytes).unwrap_or(usize::MAX),
            write_timeout: (network.write_timeout_secs > 0)
                .then(|| Duration::from_secs(network.write_timeout_secs)),
            auth,
            tls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::apply_env;

    fn resolved(config: &Config) -> ServerSettings {
        ServerSettings::from_config(config, config.resolve().expect("resolves"))
    }

    #[test]
    fn the_write_timeout_defaults_to_60_s_and_zero_disables_it() {
        let mut config = Config::default();
        assert_eq!(
            resolved(&config).write_timeout,
            Some(Duration::from_secs(60))
        );
        apply_env(&mut config, |name| {
            (name == "RSTMDB_WRITE_TIMEOUT").then(|| "0".to_owned())
        })
        .expect("a number");
        assert_eq!(resolved(&config).write_timeout, None);
        let refused = apply_env(&mut config, |name| {
            (name == "RSTMDB_WRITE_TIMEOUT").then(|| "soon".to_owned())
        });
        assert!(refused.is_err(), "an unparsable value is an error");
    }
}
