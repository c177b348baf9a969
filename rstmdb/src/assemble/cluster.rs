//! A cluster node's settings from `[cluster]` (spec §12.4): the shared secret read from its
//! file, and the node-to-node TLS built from the `[tls]` files, the client CA being the
//! cluster's CA.

use crate::cluster::node::NodeSettings;
use crate::cluster::peer_tls::{PeerTls, PeerTlsError};
use crate::cluster::secret::{ClusterSecret, SecretError};
use crate::config::{Config, ReadConsistency};
use crate::server::TlsError;
use crate::server::tls::{load_certs, load_first_key};

/// Why a node's settings cannot be built (start-up stops on it).
#[derive(Debug, thiserror::Error)]
pub enum NodeSettingsError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("node-to-node TLS: {0}")]
    TlsFiles(#[from] TlsError),
    #[error("node-to-node TLS: {0}")]
    Tls(#[from] PeerTlsError),
}

/// The node's settings, or `None` standalone. Call it on a configuration `resolve` accepted:
/// the members are valid and TLS, when on, has its three files.
pub fn node_settings(config: &Config) -> Result<Option<NodeSettings>, NodeSettingsError> {
    let Some(cluster) = &config.cluster else {
        return Ok(None);
    };
    let secret = cluster
        .secret_file
        .as_deref()
        .map(ClusterSecret::from_file)
        .transpose()?;
    let tls = &config.tls;
    let tls = match (
        tls.enabled,
        &tls.cert_path,
        &tls.key_path,
        &tls.client_ca_path,
    ) {
        (true, Some(cert), Some(key), Some(ca)) => Some(PeerTls::new(
            load_certs(cert, "certificate")?,
            load_first_key(key)?,
            load_certs(ca, "cluster CA certificate")?,
        )?),
        _ => None,
    };
    Ok(Some(NodeSettings {
        node_id: cluster.node_id,
        raft_addr: cluster.raft_addr.clone(),
        client_addr: cluster
            .client_addr
            .clone()
            .unwrap_or_else(|| config.network.bind_addr.to_string()),
        // `resolve` checked them: a failure here is an unchecked configuration.
        members: cluster.voters().unwrap_or_default(),
        election_timeout_min_ms: cluster.election_timeout_min_ms,
        election_timeout_max_ms: cluster.election_timeout_max_ms,
        heartbeat_interval_ms: cluster.heartbeat_interval_ms,
        write_timeout_ms: cluster.write_timeout_ms,
        forward_writes: cluster.forward_writes,
        linearizable_reads: cluster.read_consistency == ReadConsistency::Linearizable,
        secret,
        tls,
    }))
}
