//! openraft's state machine on the engine (`docs/cluster.md` sections 4, 5 and 7): every
//! committed entry goes to [`Database::apply_committed`], which finds the leader's own group
//! already applied, or applies the entry's records through the replay path.
//!
//! Each record's offset is not in the entry: it follows from the entry's header offset (from
//! the log's index) and the records' sizes, by the WAL's own placement rule, so it is the
//! offset the record has in this node's WAL, which is the same on every node.
//!
//! Snapshots are not built yet: the node runs with openraft's snapshot policy `Never` and
//! never purges its log, so a lagging node always catches up from the log, and openraft never
//! asks for a snapshot. The snapshot methods refuse, naming what is missing.

use super::entry_record::{NORMAL_HEADER_BYTES, encode_header};
use super::log_store::EntryOffsets;
use super::types::{
    Entry, LogId, NodeAddr, NodeId, RaftReply, RaftTypes, SnapshotFile, StorageError,
};
use crate::database::{CommittedEntry, Database};
use crate::wal::Placement;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, EntryPayload, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageIOError,
    StoredMembership,
};
use std::sync::Arc;

/// Why an entry could not be applied; openraft stops the node on it.
#[derive(Debug, thiserror::Error)]
pub enum StateMachineError {
    #[error("entry {index} is committed but not in the log")]
    NotInLog { index: u64 },
    #[error(
        "entry {index}'s header is at offset {found}, but the WAL's placement puts it at {planned}"
    )]
    Misplaced {
        index: u64,
        found: u64,
        planned: u64,
    },
    #[error("entry {index}: {message}")]
    Entry { index: u64, message: String },
    #[error("snapshots are not built yet in cluster mode (docs/cluster.md section 7)")]
    NoSnapshots,
}

/// The engine as openraft's state machine.
#[derive(Debug)]
pub struct EngineStateMachine {
    database: Arc<Database>,
    offsets: EntryOffsets,
    segment_size_bytes: u64,
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, NodeAddr>,
}

impl EngineStateMachine {
    /// `last_applied` and `membership` are what start-up replayed into `database`.
    pub fn new(
        database: Arc<Database>,
        offsets: EntryOffsets,
        segment_size_bytes: u64,
        last_applied: Option<LogId>,
        membership: StoredMembership<NodeId, NodeAddr>,
    ) -> Self {
        Self {
            database,
            offsets,
            segment_size_bytes,
            last_applied,
            membership,
        }
    }

    fn apply_entry(&mut self, entry: &Entry) -> Result<RaftReply, StateMachineError> {
        let index = entry.log_id.index;
        let found = self
            .offsets
            .header_offset(index)
            .ok_or(StateMachineError::NotInLog { index })?;
        // A normal entry's header has a fixed size; the others are encoded to learn theirs.
        let header_len = match &entry.payload {
            EntryPayload::Normal(_) => NORMAL_HEADER_BYTES,
            _ => encode_header(entry)
                .map_err(|err| StateMachineError::Entry {
                    index,
                    message: err.to_string(),
                })?
                .header
                .len(),
        };
        // The WAL placed the header at `found` from that very position, so placing it again
        // from there must land on it.
        let mut placement = Placement::at(found, self.segment_size_bytes);
        let planned = placement.place(header_len);
        if planned != found {
            return Err(StateMachineError::Misplaced {
                index,
                found,
                planned,
            });
        }
        let (origin, records) = match &entry.payload {
            EntryPayload::Normal(command) => (
                Some(command.origin),
                command
                    .records
                    .iter()
                    .map(|r| (placement.place(r.payload.get().len()), r.payload.get()))
                    .collect(),
            ),
            EntryPayload::Membership(membership) => {
                self.membership = StoredMembership::new(Some(entry.log_id), membership.clone());
                (None, Vec::new())
            }
            EntryPayload::Blank => (None, Vec::new()),
        };
        let end = placement.end();
        self.database
            .apply_committed(CommittedEntry {
                origin,
                header_offset: found,
                records,
                end,
            })
            .map_err(|err| StateMachineError::Entry {
                index,
                message: err.to_string(),
            })?;
        self.last_applied = Some(entry.log_id);
        Ok(RaftReply { end_offset: end })
    }
}

fn refuse(err: StateMachineError) -> StorageError {
    StorageIOError::write_state_machine(AnyError::new(&err)).into()
}

impl RaftStateMachine<RaftTypes> for EngineStateMachine {
    type SnapshotBuilder = NoSnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<NodeId, NodeAddr>), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<RaftReply>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut replies = Vec::new();
        for entry in entries {
            let reply = self.apply_entry(&entry).map_err(|err| {
                StorageError::from(StorageIOError::apply(entry.log_id, AnyError::new(&err)))
            })?;
            replies.push(reply);
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        NoSnapshotBuilder
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotFile>, StorageError> {
        Err(refuse(StateMachineError::NoSnapshots))
    }

    async fn install_snapshot(
        &mut self,
        _meta: &SnapshotMeta<NodeId, NodeAddr>,
        _snapshot: Box<SnapshotFile>,
    ) -> Result<(), StorageError> {
        Err(refuse(StateMachineError::NoSnapshots))
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<RaftTypes>>, StorageError> {
        Ok(None)
    }
}

/// Refuses to build: the node runs with the snapshot policy `Never` until checkpoints are
/// snapshots.
#[derive(Debug)]
pub struct NoSnapshotBuilder;

impl RaftSnapshotBuilder<RaftTypes> for NoSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<RaftTypes>, StorageError> {
        Err(refuse(StateMachineError::NoSnapshots))
    }
}
