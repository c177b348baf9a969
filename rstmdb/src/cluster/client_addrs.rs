//! Where clients reach each node. A node's own `client_addr` travels in its [`Hello`] to every
//! peer it calls, so a follower learns the leader's from the leader's replication connection
//! and can name it to a client (`READ_ONLY_MODE` `details.leader`, spec §12.2). The membership
//! knows it too for a node that initialised the cluster; other nodes are learned this way.
//!
//! [`Hello`]: super::rpc::Hello
//!
//! [`PeerContacts`] keeps when each peer was last heard from, the same way, and
//! [`ReplicationCounters`] what the replication calls did (the `rstmdb_replication_*` counters).

use super::types::NodeId;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// One string per node, as the peers said it in their hellos and welcomes.
#[derive(Debug, Clone, Default)]
pub struct ByNode(Arc<Mutex<BTreeMap<NodeId, String>>>);

/// Where clients reach each node.
pub type ClientAddrs = ByNode;

/// Each node's `storage.fsync_policy` (CLUSTER_STATUS's `fsync_policy`): under a lax policy
/// on a majority, an acknowledged write survives the loss of processes, not of power.
pub type FsyncPolicies = ByNode;

impl ByNode {
    pub fn record(&self, node: NodeId, client_addr: &str) {
        let mut addrs = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if addrs.get(&node).map(String::as_str) != Some(client_addr) {
            addrs.insert(node, client_addr.to_owned());
        }
    }

    pub fn get(&self, node: NodeId) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&node)
            .cloned()
    }
}

/// When each peer last answered this node or sent it a request (CLUSTER_STATUS's
/// `last_contact_ms`).
#[derive(Debug, Clone, Default)]
pub struct PeerContacts(Arc<Mutex<BTreeMap<NodeId, std::time::Instant>>>);

impl PeerContacts {
    pub fn touch(&self, node: NodeId) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(node, std::time::Instant::now());
    }

    /// Milliseconds since `node` was last heard from; `None` if never.
    pub fn millis_since(&self, node: NodeId) -> Option<u64> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&node)
            .map(|at| u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX))
    }
}

/// What this node's replication calls did since start.
#[derive(Debug, Clone, Default)]
pub struct ReplicationCounters(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    entries_sent: AtomicU64,
    dropped_connections: AtomicU64,
}

impl ReplicationCounters {
    /// A peer acknowledged an AppendEntries call carrying `entries` entries.
    pub fn sent(&self, entries: usize) {
        let entries = u64::try_from(entries).unwrap_or(u64::MAX);
        self.0.entries_sent.fetch_add(entries, Ordering::Relaxed);
    }

    /// An AppendEntries call failed or timed out on an open connection, which was dropped.
    pub fn dropped(&self) {
        self.0.dropped_connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn entries_sent(&self) -> u64 {
        self.0.entries_sent.load(Ordering::Relaxed)
    }

    pub fn dropped_connections(&self) -> u64 {
        self.0.dropped_connections.load(Ordering::Relaxed)
    }
}
