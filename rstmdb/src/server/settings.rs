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
            auth,
            tls,
        }
    }
}
