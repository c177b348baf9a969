//! The `[cluster]` table (`docs/protocol.md` §12.4): which node this is, where the others are,
//! and the Raft timings. Present means cluster mode; absent, the server runs standalone.

use super::error::ConfigError;
use super::model::Config;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// At least 1, unique, never reused for another node; 0 means unset.
    pub node_id: u64,
    /// The node-to-node listener, `host:port`; empty means unset.
    pub raft_addr: String,
    /// The address told to clients and other nodes; `None`: `network.bind_addr`.
    pub client_addr: Option<String>,
    /// The initial voters, `"ID=HOST:PORT"` (their raft addresses); read at bootstrap only.
    pub members: Vec<String>,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub write_timeout_ms: u64,
    pub forward_writes: bool,
    pub read_consistency: ReadConsistency,
    pub max_lag_entries: u64,
    /// The shared secret the nodes prove to each other; required when `auth.required`.
    pub secret_file: Option<PathBuf>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_id: 0,
            raft_addr: String::new(),
            client_addr: None,
            members: Vec::new(),
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            heartbeat_interval_ms: 100,
            write_timeout_ms: 5_000,
            forward_writes: true,
            read_consistency: ReadConsistency::Linearizable,
            max_lag_entries: 10_000,
            secret_file: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadConsistency {
    /// A read reflects every write acknowledged before it began, on any node.
    Linearizable,
    /// A node answers from its own applied state, which may lag.
    Local,
}

impl ClusterConfig {
    /// The initial voters by id, each with its raft address; every rule of §12.4 checked.
    pub fn voters(&self) -> Result<BTreeMap<u64, String>, ConfigError> {
        let mut voters = BTreeMap::new();
        for (position, member) in self.members.iter().enumerate() {
            let bad = |why: String| {
                ConfigError::rule(
                    "cluster.members",
                    format!("member {position} (`{member}`): {why}"),
                    "write each member as \"ID=HOST:PORT\", its node id and raft address, \
                     e.g. \"2=10.0.0.2:7411\"",
                )
            };
            let Some((id, addr)) = member.split_once('=') else {
                return Err(bad("no `=` between the node id and its address".to_owned()));
            };
            let id: u64 = id
                .trim()
                .parse()
                .ok()
                .filter(|id| *id >= 1)
                .ok_or_else(|| bad(format!("`{}` is not a node id (1 or more)", id.trim())))?;
            let addr = addr.trim();
            check_address(addr).map_err(bad)?;
            if voters.insert(id, addr.to_owned()).is_some() {
                return Err(bad(format!("node id {id} is listed twice")));
            }
        }
        Ok(voters)
    }
}

/// `host:port` with a non-empty host and a port from 1 to 65535; the host is resolved when the
/// node connects, so names (a container's, say) are accepted.
fn check_address(addr: &str) -> Result<(), String> {
    let parsed = addr.rsplit_once(':').and_then(|(host, port)| {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().ok().filter(|port| *port != 0)?;
        (!host.is_empty() && !host.contains(char::is_whitespace)).then_some(port)
    });
    match parsed {
        Some(_) => Ok(()),
        None => Err(format!("`{addr}` is not HOST:PORT")),
    }
}

impl Config {
    /// The rules of §12.4 that span keys, and the CA a TLS cluster's nodes need.
    pub(super) fn check_cluster(&self) -> Result<(), ConfigError> {
        let Some(cluster) = &self.cluster else {
            return Ok(());
        };
        if cluster.node_id == 0 {
            return Err(ConfigError::rule(
                "cluster.node_id",
                "a cluster node needs an id of 1 or more",
                "set cluster.node_id (RSTMDB_CLUSTER_NODE_ID), unique in the cluster and never \
                 reused for another node",
            ));
        }
        check_address(&cluster.raft_addr).map_err(|why| {
            ConfigError::rule(
                "cluster.raft_addr",
                why,
                "set cluster.raft_addr (RSTMDB_CLUSTER_RAFT_ADDR) to the node-to-node listener, \
                 e.g. \"0.0.0.0:7411\"",
            )
        })?;
        if let Some(client_addr) = &cluster.client_addr {
            check_address(client_addr).map_err(|why| {
                ConfigError::rule(
                    "cluster.client_addr",
                    why,
                    "set cluster.client_addr (RSTMDB_CLUSTER_CLIENT_ADDR) to the address clients \
                     reach this node at, or leave it out to use network.bind_addr",
                )
            })?;
        }
        cluster.voters()?;
        if cluster.election_timeout_min_ms >= cluster.election_timeout_max_ms {
            return Err(ConfigError::rule(
                "cluster.election_timeout_min_ms",
                format!(
                    "{} ms is not below cluster.election_timeout_max_ms ({} ms)",
                    cluster.election_timeout_min_ms, cluster.election_timeout_max_ms
                ),
                "elections pick a random timeout between the two: the minimum must be below \
                 the maximum (defaults 300 and 600)",
            ));
        }
        if cluster.heartbeat_interval_ms == 0
            || cluster.heartbeat_interval_ms >= cluster.election_timeout_min_ms
        {
            return Err(ConfigError::rule(
                "cluster.heartbeat_interval_ms",
                format!(
                    "{} ms is not between 1 and cluster.election_timeout_min_ms ({} ms)",
                    cluster.heartbeat_interval_ms, cluster.election_timeout_min_ms
                ),
                "a leader must be heard from several times within an election timeout \
                 (default 100 ms against 300)",
            ));
        }
        if cluster.write_timeout_ms == 0 {
            return Err(ConfigError::rule(
                "cluster.write_timeout_ms",
                "must be at least 1",
                "how long a write may wait for a leader and its commit (default 5000)",
            ));
        }
        if self.storage.allow_flush_all {
            return Err(ConfigError::rule(
                "storage.allow_flush_all",
                "FLUSH_ALL cannot be allowed in cluster mode",
                "drop storage.allow_flush_all (RSTMDB_ALLOW_FLUSH_ALL): a cluster's data is \
                 removed node by node, never by one request",
            ));
        }
        if self.auth.required && cluster.secret_file.is_none() {
            return Err(ConfigError::rule(
                "cluster.secret_file",
                "auth is required but the nodes share no secret",
                "set cluster.secret_file (RSTMDB_CLUSTER_SECRET_FILE) to a file holding the \
                 secret every node of the cluster has",
            ));
        }
        if self.tls.enabled && self.tls.client_ca_path.is_none() {
            return Err(ConfigError::rule(
                "tls.client_ca_path",
                "nodes of a TLS cluster check each other's certificates against a CA",
                "set tls.client_ca_path to the CA that signed every node's certificate",
            ));
        }
        Ok(())
    }
}
