//! Params of the cluster membership ops (extension, §12.3).

use serde::Serialize;
use serde_json::{Map, Value};

use super::FromParams;
use super::reader::ParamReader;
use crate::error::RcpError;

/// CLUSTER_ADD_LEARNER params: the new node and where it is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterAddLearnerParams {
    pub node_id: u64,
    pub raft_addr: String,
    pub client_addr: String,
}

impl FromParams for ClusterAddLearnerParams {
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError> {
        let p = ParamReader::new(params);
        Ok(Self {
            node_id: p.u64("node_id")?,
            raft_addr: p.string("raft_addr")?,
            client_addr: p.string("client_addr")?,
        })
    }
}

/// CLUSTER_PROMOTE, CLUSTER_REMOVE_NODE and CLUSTER_TRANSFER_LEADER params: one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterNodeParams {
    pub node_id: u64,
}

impl FromParams for ClusterNodeParams {
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError> {
        Ok(Self {
            node_id: ParamReader::new(params).u64("node_id")?,
        })
    }
}
