//! Where clients reach each node. A node's own `client_addr` travels in its [`Hello`] to every
//! peer it calls, so a follower learns the leader's from the leader's replication connection
//! and can name it to a client (`READ_ONLY_MODE` `details.leader`, spec §12.2). The membership
//! knows it too for a node that initialised the cluster; other nodes are learned this way.
//!
//! [`Hello`]: super::rpc::Hello

use super::types::NodeId;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Node ids to client addresses, as the peers said them.
#[derive(Debug, Clone, Default)]
pub struct ClientAddrs(Arc<Mutex<BTreeMap<NodeId, String>>>);

impl ClientAddrs {
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
