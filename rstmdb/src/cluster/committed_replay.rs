//! What a cluster node replays into its engine at start-up (`docs/cluster.md` section 5): the
//! entries up to the committed hint of `raft/state`, and nothing after them, since an entry
//! past it may still be cut by a newer leader. Raft applies the rest once a leader confirms
//! it. Every entry header also goes to the log's index.

use super::entry_record::{ENTRY_KIND, EntryHeader};
use super::log_store::IndexBuilder;
use super::types::{LogId, NodeAddr, NodeId};
use crate::database::ReplayStep;
use crate::wal::RecordView;
use openraft::StoredMembership;

/// Why a record cannot be part of a cluster node's log.
#[derive(Debug, thiserror::Error)]
pub enum CommittedReplayError {
    #[error(
        "record at offset {offset} (kind {kind}) is not inside a Raft entry: this data \
         directory was written by a standalone server, which a cluster node does not open"
    )]
    OutsideEntry { offset: u64, kind: u8 },
    #[error("entry header at offset {offset} is inside another entry's records")]
    NestedHeader { offset: u64 },
}

/// The replay filter's state, then what it found.
#[derive(Debug)]
pub struct CommittedReplay {
    index: IndexBuilder,
    committed_hint: Option<LogId>,
    /// Data records still to come in the current entry, and whether they are applied.
    remaining: u32,
    applying: bool,
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, NodeAddr>,
}

impl CommittedReplay {
    pub fn new(index: IndexBuilder) -> Self {
        Self {
            committed_hint: index.committed_hint(),
            index,
            remaining: 0,
            applying: false,
            last_applied: None,
            membership: StoredMembership::default(),
        }
    }

    /// Decides one record's step (call in WAL order).
    pub fn step(
        &mut self,
        view: &RecordView<'_>,
    ) -> Result<ReplayStep, Box<dyn std::error::Error + Send + Sync>> {
        let kind = view.header.kind;
        if self.remaining > 0 {
            if kind == ENTRY_KIND {
                return Err(CommittedReplayError::NestedHeader {
                    offset: view.offset,
                }
                .into());
            }
            self.remaining -= 1;
            return Ok(if self.applying {
                ReplayStep::Apply
            } else {
                ReplayStep::Beyond
            });
        }
        if kind != ENTRY_KIND {
            return Err(CommittedReplayError::OutsideEntry {
                offset: view.offset,
                kind,
            }
            .into());
        }
        self.index.observe(view)?;
        let header = EntryHeader::decode(view.offset, view.payload)?;
        let log_id = header.log_id();
        self.remaining = header.data_records();
        // Indexes grow along the WAL: once one entry is past the hint, every later one is.
        self.applying = self
            .committed_hint
            .is_some_and(|hint| log_id.index <= hint.index);
        if !self.applying {
            return Ok(ReplayStep::Beyond);
        }
        self.last_applied = Some(log_id);
        if let Some(membership) = header.membership() {
            self.membership = StoredMembership::new(Some(log_id), membership.clone());
        }
        Ok(ReplayStep::Pass)
    }

    /// The log's index, the last entry applied and the membership as of it.
    pub fn finish(
        self,
    ) -> (
        IndexBuilder,
        Option<LogId>,
        StoredMembership<NodeId, NodeAddr>,
    ) {
        (self.index, self.last_applied, self.membership)
    }
}
