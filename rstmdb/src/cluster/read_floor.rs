//! The read index a leader hands out (`docs/cluster.md` section 8).
//!
//! openraft's read index is the leader's committed index, or its term's first entry if that is
//! later. A node restored as leader after a restart keeps its term, with no new entry, and
//! knows only the committed index it saved before (a hint, up to a second old): reads it
//! confirmed would miss writes acknowledged before the restart. So the first read of each
//! term on a leader fixes a floor, the leader's last log index at that moment, which holds
//! every committed entry; no read of that term is confirmed below it.

use super::types::RaftTypes;
use openraft::Raft;
use std::sync::{Arc, Mutex, PoisonError};

/// A leader's floor for the read index, per term.
#[derive(Debug, Clone, Default)]
pub struct ReadFloor(Arc<Mutex<Option<Floor>>>);

#[derive(Debug, Clone, Copy)]
struct Floor {
    term: u64,
    index: Option<u64>,
}

impl ReadFloor {
    /// The index a read confirmed by this node (the leader) now must wait for: openraft's
    /// read index (leadership confirmed by a quorum), raised to this term's floor.
    pub async fn leader_read_index(&self, raft: &Raft<RaftTypes>) -> Result<Option<u64>, String> {
        let (read, _applied) = raft
            .get_read_log_id()
            .await
            .map_err(|err| err.to_string())?;
        let (term, last) = {
            let metrics = raft.metrics();
            let metrics = metrics.borrow();
            (metrics.current_term, metrics.last_log_index)
        };
        let floor = {
            let mut floor = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            match *floor {
                Some(Floor { term: t, index }) if t == term => index,
                _ => {
                    *floor = Some(Floor { term, index: last });
                    last
                }
            }
        };
        Ok(read.map(|read| read.index).max(floor))
    }
}
