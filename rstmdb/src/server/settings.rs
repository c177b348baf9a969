//! What the server takes from the configuration (spec §9.2): the listener, limits, auth, TLS.
//! Plain values; `crate::assemble` builds them from the configuration.

use super::auth::AuthSettings;
use super::tls::TlsSettings;
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
    pub auth: AuthSettings,
    pub tls: Option<TlsSettings>,
}
