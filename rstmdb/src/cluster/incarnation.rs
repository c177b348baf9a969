//! Which data directory each node is (`docs/cluster.md` section 10, "Identity").
//!
//! A node's data directory gets a random *incarnation* when its `raft/identity` is first
//! written. Every hello and welcome carries it, and the leader writes each member's into the
//! membership (`NodeAddr::incarnation`) the first time it hears from it. From then on a
//! node that presents another incarnation under that id was wiped or replaced: it has lost
//! entries it acknowledged and a vote it cast, so counting its votes or acknowledgements
//! could lose a committed write. Nodes refuse it at the hello, on both sides of a connection,
//! until an operator removes it and adds it back as a learner.
//!
//! Without it, a wiped member looks to itself exactly like an initial member that never
//! started, and openraft 0.9 notices a follower log that went backwards only in a
//! `debug_assert`.

use super::client_addrs::ClientAddrs;
use super::identity::NodeIdentity;
use super::membership::ClusterAdmin;
use super::types::{NodeAddr, NodeId, RaftTypes};
use openraft::{Raft, ServerState};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// How often the leader looks for members it has not bound yet, besides each time a peer
/// presents an incarnation: a node that becomes leader binds the members its predecessor did
/// not.
const BIND_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// A new data directory's incarnation: 128 random bits in hex.
pub fn new_incarnation() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Why a peer presenting `presented` as node `node` must be refused when the membership knows
/// that node as `bound`; `None` when it may talk (it matches, or is not bound yet).
pub fn mismatch(node: NodeId, bound: Option<&str>, presented: Option<&str>) -> Option<String> {
    let bound = bound?;
    if presented == Some(bound) {
        return None;
    }
    Some(format!(
        "node {node}'s data directory is not the one the cluster knows (incarnation {bound}, \
         this one {}): it was wiped or replaced, and lost entries it had acknowledged; remove \
         node {node} (`rstmdb cluster remove {node}`) and add it back as a learner",
        presented.unwrap_or("none")
    ))
}

/// The incarnations this node's peers presented (its own is in [`NodeIdentity`]).
#[derive(Debug, Clone, Default)]
pub struct Incarnations {
    peers: Arc<Mutex<BTreeMap<NodeId, String>>>,
    /// Woken when a peer presents an incarnation not seen before: the leader binds it.
    learned: Arc<Notify>,
    /// Refusals already logged, by peer and reason.
    warned: Arc<Mutex<BTreeSet<(NodeId, String)>>>,
}

impl Incarnations {
    /// `node` presented `incarnation` in a hello or welcome this node accepted.
    pub fn record(&self, node: NodeId, incarnation: &str) {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        if peers.get(&node).map(String::as_str) != Some(incarnation) {
            peers.insert(node, incarnation.to_owned());
            self.learned.notify_one();
        }
    }

    pub fn get(&self, node: NodeId) -> Option<String> {
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&node)
            .cloned()
    }

    /// Logs why a connection with `node` was refused, at WARN the first time for that reason
    /// and at DEBUG after: a refused peer is retried every few hundred milliseconds.
    pub fn log_refusal(&self, node: NodeId, reason: &str) {
        let first = self
            .warned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((node, reason.to_owned()));
        if first {
            tracing::warn!(node, %reason, "refused a node connection");
        } else {
            tracing::debug!(node, %reason, "refused a node connection");
        }
    }
}

/// What binds incarnations into the membership, on whichever node leads.
pub struct Binder {
    pub raft: Raft<RaftTypes>,
    pub me: NodeId,
    pub admin: ClusterAdmin,
    pub incarnations: Incarnations,
    pub client_addrs: ClientAddrs,
    /// A leader of a cluster from before cluster ids gives it one.
    pub identity: NodeIdentity,
}

impl std::fmt::Debug for Binder {
    // openraft's handle has no Debug of its own.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binder")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl Binder {
    /// Runs until dropped: while this node leads, each member that has no incarnation in the
    /// membership and has presented one gets it (with its client address, so every node can
    /// name it to clients).
    pub async fn run(self) {
        loop {
            tokio::select! {
                () = self.incarnations.learned.notified() => {}
                () = tokio::time::sleep(BIND_CHECK_INTERVAL) => {}
            }
            if self.identity.cluster_id().is_none() && self.leads() {
                match self.identity.found_cluster() {
                    Ok(id) => tracing::info!(cluster_id = %id, "gave the cluster an id"),
                    Err(err) => tracing::warn!(%err, "cannot record a cluster id"),
                }
            }
            let unbound = self.unbound();
            if unbound.is_empty() {
                continue;
            }
            let incarnations = self.incarnations.clone();
            let client_addrs = self.client_addrs.clone();
            let me = self.me;
            let own = self.identity.incarnation().to_owned();
            let presented = move |node: NodeId| {
                let incarnation = if node == me {
                    Some(own.clone())
                } else {
                    incarnations.get(node)
                };
                incarnation.map(|incarnation| (incarnation, client_addrs.get(node)))
            };
            match self.admin.bind_incarnations(presented).await {
                Ok(bound) => {
                    for node in bound {
                        tracing::info!(node, "bound a member's data directory");
                    }
                }
                // Not leading any more, or another change is committing: the next round retries.
                Err(err) => tracing::debug!(%err, "could not bind incarnations yet"),
            }
        }
    }

    fn leads(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// The members this leader could bind now.
    fn unbound(&self) -> Vec<NodeId> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        if metrics.state != ServerState::Leader {
            return Vec::new();
        }
        metrics
            .membership_config
            .membership()
            .nodes()
            .filter(|(_, node)| node.incarnation.is_none())
            .map(|(id, _)| *id)
            .filter(|id| *id == self.me || self.incarnations.get(*id).is_some())
            .collect()
    }
}

/// `node` with `incarnation` written in, and its client address if the membership lacks one.
pub fn bound(node: &NodeAddr, incarnation: String, client_addr: Option<String>) -> NodeAddr {
    NodeAddr {
        raft_addr: node.raft_addr.clone(),
        client_addr: match client_addr {
            Some(addr) if node.client_addr.is_empty() => addr,
            _ => node.client_addr.clone(),
        },
        incarnation: Some(incarnation),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unbound_member_is_let_in_and_a_bound_one_only_with_its_own_directory() {
        assert_eq!(mismatch(2, None, Some("a")), None);
        assert_eq!(mismatch(2, None, None), None);
        assert_eq!(mismatch(2, Some("a"), Some("a")), None);
        let wiped = mismatch(2, Some("a"), Some("b")).expect("another directory is refused");
        assert!(wiped.contains("incarnation a, this one b"), "{wiped}");
        assert!(wiped.contains("rstmdb cluster remove 2"), "{wiped}");
        let silent = mismatch(2, Some("a"), None).expect("no incarnation is refused");
        assert!(silent.contains("this one none"), "{silent}");
    }

    #[test]
    fn binding_keeps_a_known_client_address_and_fills_a_missing_one() {
        let known = NodeAddr {
            raft_addr: "r:1".to_owned(),
            client_addr: "c:1".to_owned(),
            incarnation: None,
        };
        let with = bound(&known, "i".to_owned(), Some("c:9".to_owned()));
        assert_eq!(with.client_addr, "c:1");
        assert_eq!(with.incarnation.as_deref(), Some("i"));
        let missing = NodeAddr {
            client_addr: String::new(),
            ..known
        };
        assert_eq!(
            bound(&missing, "i".to_owned(), Some("c:9".to_owned())).client_addr,
            "c:9"
        );
        assert_eq!(bound(&missing, "i".to_owned(), None).client_addr, "");
    }
}
