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
    /// How long one pending write may take in total before the connection is closed; `None`
    /// disables it (`write_timeout_secs = 0`).
    pub write_timeout: Option<Duration>,
    /// Bytes one connection may hold in requests being answered and responses not yet
    /// written; at the limit the server stops reading its requests.
    pub max_pending_bytes: usize,
    /// The same for the requests of all connections together; `None`: no global bound.
    pub max_inflight_bytes: Option<usize>,
    pub auth: AuthSettings,
    pub tls: Option<TlsSettings>,
}
