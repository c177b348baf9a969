//! `raft/identity` (`docs/cluster.md` section 10): which node a data directory is, its
//! incarnation (`super::incarnation`), and which cluster it belongs to.
//!
//! The cluster id is drawn by the node that initialises the cluster. A node without one takes
//! it from the first peer it accepts that shows one in a hello or a welcome, and keeps it for
//! life; from then on a peer of another cluster is refused on both sides, naming both ids. That is what
//! catches a data directory from another cluster started in this one's place.

use super::incarnation;
use super::raft_files::{RaftFile, RaftFiles, RaftFilesError};
use super::types::NodeId;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, PoisonError};

/// The file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    node_id: NodeId,
    /// Drawn when the directory first became a node; a directory written before incarnations
    /// existed gets one at its next start.
    #[serde(default)]
    incarnation: Option<String>,
    /// The cluster's id, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cluster_id: Option<String>,
}

/// Why a node could not take up its identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Files(#[from] RaftFilesError),
    #[error(
        "this data directory belongs to cluster node {stored}, but cluster.node_id is {configured}; \
         a node keeps its id for life (use the data directory of node {configured}, or an empty one)"
    )]
    OtherNode { stored: NodeId, configured: NodeId },
}

/// This node's identity, shared by everything that talks to peers.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    files: RaftFiles,
    node_id: NodeId,
    incarnation: String,
    cluster_id: Arc<Mutex<Option<String>>>,
}

impl NodeIdentity {
    /// Reads `raft/identity`, writing it on a directory's first start (and completing one
    /// from before incarnations). A directory of another node is refused.
    pub fn load(files: RaftFiles, node_id: NodeId) -> Result<Self, IdentityError> {
        let stored = files.load::<IdentityFile>(RaftFile::Identity)?;
        if let Some(stored) = &stored
            && stored.node_id != node_id
        {
            return Err(IdentityError::OtherNode {
                stored: stored.node_id,
                configured: node_id,
            });
        }
        let (incarnation, cluster_id) = match stored {
            Some(IdentityFile {
                incarnation: Some(incarnation),
                cluster_id,
                ..
            }) => (incarnation, cluster_id),
            other => {
                let file = IdentityFile {
                    node_id,
                    incarnation: Some(incarnation::new_incarnation()),
                    cluster_id: other.and_then(|stored| stored.cluster_id),
                };
                files.save(RaftFile::Identity, &file)?;
                (file.incarnation.unwrap_or_default(), file.cluster_id)
            }
        };
        Ok(Self {
            files,
            node_id,
            incarnation,
            cluster_id: Arc::new(Mutex::new(cluster_id)),
        })
    }

    pub fn incarnation(&self) -> &str {
        &self.incarnation
    }

    pub fn cluster_id(&self) -> Option<String> {
        self.cluster_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The id of a cluster this node starts: drawn and saved unless it has one already.
    pub fn found_cluster(&self) -> Result<String, RaftFilesError> {
        let mut current = self
            .cluster_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = current.as_ref() {
            return Ok(id.clone());
        }
        let id = incarnation::new_incarnation();
        self.save(Some(id.clone()))?;
        *current = Some(id.clone());
        Ok(id)
    }

    /// Why `peer`, presenting cluster id `presented`, must be refused: it belongs to another
    /// cluster. A peer that presents none, or a node that has none yet, is no reason.
    pub fn refusal(&self, peer: NodeId, presented: Option<&str>) -> Option<String> {
        let presented = presented?;
        let current = self
            .cluster_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mine = current.as_deref()?;
        (mine != presented).then(|| {
            format!(
                "node {peer} belongs to cluster {presented}, and node {} to cluster {mine}: a \
                 data directory from another cluster (start the node on its own cluster's \
                 directory, or on an empty one and add it with CLUSTER_ADD_LEARNER)",
                self.node_id
            )
        })
    }

    /// Takes the cluster id an accepted `peer` presented, durably, if this node has none.
    pub fn adopt(&self, peer: NodeId, presented: Option<&str>) -> Result<(), RaftFilesError> {
        let Some(presented) = presented else {
            return Ok(());
        };
        let mut current = self
            .cluster_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if current.is_none() {
            self.save(Some(presented.to_owned()))?;
            tracing::info!(cluster_id = presented, from = peer, "joined the cluster");
            *current = Some(presented.to_owned());
        }
        Ok(())
    }

    fn save(&self, cluster_id: Option<String>) -> Result<(), RaftFilesError> {
        self.files.save(
            RaftFile::Identity,
            &IdentityFile {
                node_id: self.node_id,
                incarnation: Some(self.incarnation.clone()),
                cluster_id,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(dir: &std::path::Path, id: NodeId) -> NodeIdentity {
        NodeIdentity::load(RaftFiles::open(dir).expect("raft files"), id).expect("identity")
    }

    #[test]
    fn a_node_joins_the_first_cluster_it_meets_and_refuses_any_other_for_life() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = node(dir.path(), 2);
        assert_eq!(first.cluster_id(), None);
        assert_eq!(first.refusal(1, None), None);
        assert_eq!(
            first.refusal(1, Some("aaaa")),
            None,
            "no id yet: no refusal"
        );
        first.adopt(1, Some("aaaa")).expect("joins");
        first.adopt(3, Some("cccc")).expect("keeps the first");
        assert_eq!(first.refusal(3, Some("aaaa")), None);
        let refused = first.refusal(7, Some("bbbb")).expect("another cluster");
        assert!(
            refused.contains("node 7 belongs to cluster bbbb, and node 2 to cluster aaaa"),
            "{refused}"
        );

        // After a restart: the same incarnation, and still cluster aaaa.
        let again = node(dir.path(), 2);
        assert_eq!(again.incarnation(), first.incarnation());
        assert_eq!(again.cluster_id().as_deref(), Some("aaaa"));
        assert!(again.refusal(7, Some("bbbb")).is_some());
        assert_eq!(again.found_cluster().expect("kept"), "aaaa");
    }

    #[test]
    fn another_nodes_directory_is_refused_and_an_old_identity_is_completed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = RaftFiles::open(dir.path()).expect("raft files");
        files
            .save(RaftFile::Identity, &serde_json::json!({"node_id": 4}))
            .expect("an identity from before incarnations");
        let completed = node(dir.path(), 4);
        assert_eq!(completed.incarnation().len(), 32);
        assert_eq!(node(dir.path(), 4).incarnation(), completed.incarnation());
        let err = NodeIdentity::load(files, 5).expect_err("node 4's directory");
        assert!(
            err.to_string()
                .contains("belongs to cluster node 4, but cluster.node_id is 5"),
            "{err}"
        );
    }
}
