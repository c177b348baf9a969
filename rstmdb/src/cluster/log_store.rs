//! openraft's log storage on the WAL (`docs/cluster.md` section 5): each entry is one atomic
//! unit of WAL records, the vote and the purge point are `raft/` files.
//!
//! - `append` writes the entries' units with one write call; they are readable when it
//!   returns, and its callback fires once the WAL has them committed under the local
//!   `fsync_policy` (after the fdatasync under `every_write`).
//! - `truncate` cuts the WAL back to the entry's header record ([`Wal::truncate_to`]).
//! - `purge` waits until the state machine can rebuild the purged entries without the log
//!   (the purge gate), records the purge point durably, then deletes the segments that hold
//!   only purged entries. openraft may call it while a snapshot install is still running.

use super::entry_cache::EntryCache;
use super::entry_record::{ENTRY_KIND, EntryHeader, EntryRecordError, encode_header};
use super::log_index::{IndexGap, LogIndex};
use super::raft_files::{RaftFile, RaftFiles, RaftFilesError};
use super::types::{Entry, LogId, RaftTypes, StorageError, Vote};
use crate::wal::segment::segment_of;
use crate::wal::{NewRecord, RecordView, SyncBy, UnitMarker, Wal, WalError};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, EntryPayload, OptionalSend, RaftLogReader, StorageIOError};
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What went wrong in the log; openraft gets it as a `StorageError`, which stops the node.
#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    #[error(transparent)]
    Files(#[from] RaftFilesError),
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    Entry(#[from] EntryRecordError),
    #[error(transparent)]
    Gap(#[from] IndexGap),
    #[error("entry {index} was appended where entry {expected} belongs (the log must be dense)")]
    OutOfOrder { index: u64, expected: u64 },
    #[error("the Raft log in the WAL is damaged: {0}")]
    Damaged(String),
}

/// `raft/state`: the purge point, which must survive an empty log, and a hint of the
/// committed entry, from which start-up replays no further.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct LogStateFile {
    last_purged: Option<LogId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    committed: Option<LogId>,
}

/// How often the committed hint is written at most. It is a hint: a stale one only means that
/// start-up replays fewer entries, and Raft applies the others once a leader confirms them.
const COMMITTED_HINT_EVERY: Duration = Duration::from_secs(1);

/// Rebuilds the entry index from the records the WAL's recovery replays.
#[derive(Debug, Default)]
pub struct IndexBuilder {
    index: LogIndex,
    /// `raft/state`, read once for recovery and for the store.
    state: LogStateFile,
}

impl IndexBuilder {
    /// Entries up to `last_purged` are skipped: the WAL may still hold them.
    pub fn new(files: &RaftFiles) -> Result<Self, RaftFilesError> {
        let state: LogStateFile = files.load(RaftFile::State)?.unwrap_or_default();
        Ok(Self {
            index: LogIndex::default(),
            state,
        })
    }

    /// The committed entry `raft/state` last recorded: start-up replays up to it.
    pub fn committed_hint(&self) -> Option<LogId> {
        self.state.committed
    }

    /// Call for every record recovery replays; records that are not entry headers are
    /// ignored.
    pub fn observe(&mut self, record: &RecordView<'_>) -> Result<(), LogStoreError> {
        if record.header.kind != ENTRY_KIND {
            return Ok(());
        }
        let log_id = EntryHeader::decode(record.offset, record.payload)?.log_id();
        if self
            .state
            .last_purged
            .is_some_and(|purged| log_id.index <= purged.index)
        {
            return Ok(());
        }
        Ok(self.index.push(log_id, record.offset)?)
    }
}

/// `raft/state` in memory, and when the committed hint was last written.
#[derive(Debug)]
struct StateFileCopy {
    file: LogStateFile,
    hint_written: Instant,
}

#[derive(Debug)]
struct Shared {
    wal: Arc<Wal>,
    files: RaftFiles,
    index: Mutex<LogIndex>,
    state: Mutex<StateFileCopy>,
    /// Held to read entries, taken exclusively to remove them (truncate, purge): a replication
    /// stream of a leader that is stepping down may still read while the node truncates.
    removal: RwLock<()>,
    /// The newest entries as appended, for the replication streams' reads.
    recent: Mutex<EntryCache>,
}

impl Shared {
    fn index(&self) -> MutexGuard<'_, LogIndex> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, StateFileCopy> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn last_purged(&self) -> Option<LogId> {
        self.state().file.last_purged
    }

    fn recent(&self) -> MutexGuard<'_, EntryCache> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Entries `range` (indexes present in the index): from the recent entries when they are
    /// all there, else read back from the WAL.
    fn read_entries(&self, start: u64, end: u64) -> Result<Vec<Entry>, LogStoreError> {
        let _no_removal = self.removal.read().unwrap_or_else(|e| e.into_inner());
        let (range, from) = {
            let index = self.index();
            let range = index.clamp(start, end);
            let from = index.get(range.start).map(|e| e.offset);
            (range, from)
        };
        if let Some(entries) = self.recent().get(range.start, range.end) {
            return Ok(entries);
        }
        let Some(from) = from else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::with_capacity((range.end - range.start) as usize);
        let mut records = self.wal.reader_written(from);
        for expected in range {
            let Some(first) = records.next() else {
                return Err(LogStoreError::Damaged(format!(
                    "the WAL ends before entry {expected}"
                )));
            };
            let first = first?;
            if first.kind != ENTRY_KIND {
                return Err(EntryRecordError::UnexpectedKind {
                    offset: first.offset,
                    kind: first.kind,
                    expected: "an entry header was expected",
                }
                .into());
            }
            let header = EntryHeader::decode(first.offset, &first.payload)?;
            if header.log_id().index != expected {
                return Err(LogStoreError::Damaged(format!(
                    "the entry at offset {} is {}, not {expected}",
                    first.offset,
                    header.log_id().index
                )));
            }
            let mut data = Vec::with_capacity(header.data_records() as usize);
            for _ in 0..header.data_records() {
                let record = records.next().ok_or_else(|| {
                    LogStoreError::Damaged(format!("the WAL ends inside entry {expected}"))
                })??;
                data.push(record);
            }
            entries.push(header.into_entry(data)?);
        }
        Ok(entries)
    }
}

/// The Raft log of one node.
#[derive(Debug)]
pub struct WalLogStore {
    shared: Arc<Shared>,
    /// The newest log id the state machine can rebuild without the log (a durable
    /// checkpoint covers it): a purge waits for it.
    purge_gate: watch::Receiver<Option<LogId>>,
    /// The last entry start-up applied: what `read_committed` answers.
    replayed_to: Option<LogId>,
}

/// Where each retained entry starts in the WAL, for the state machine.
#[derive(Debug, Clone)]
pub struct EntryOffsets {
    shared: Arc<Shared>,
}

impl EntryOffsets {
    /// The offset of entry `index`'s header record, if the log holds it.
    pub fn header_offset(&self, index: u64) -> Option<u64> {
        self.shared.index().get(index).map(|entry| entry.offset)
    }

    /// Where the last entry of the log starts, if the log holds any.
    pub fn last_header_offset(&self) -> Option<u64> {
        self.shared.index().last().map(|entry| entry.offset)
    }

    /// The last entry this node knows committed (what openraft last saved).
    pub fn committed(&self) -> Option<LogId> {
        self.shared.state().file.committed
    }
}

/// Reads entries for openraft's replication streams.
#[derive(Debug, Clone)]
pub struct WalLogReader {
    shared: Arc<Shared>,
}

impl WalLogStore {
    /// The log over `wal`, whose recovery fed `index` (which read the purge point from
    /// `files`); `files` also holds the vote. `replayed_to` is the last entry start-up
    /// applied to the state machine (none when it applied nothing).
    pub fn open(
        wal: Arc<Wal>,
        files: RaftFiles,
        index: IndexBuilder,
        purge_gate: watch::Receiver<Option<LogId>>,
        replayed_to: Option<LogId>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                wal,
                files,
                index: Mutex::new(index.index),
                state: Mutex::new(StateFileCopy {
                    file: index.state,
                    hint_written: Instant::now(),
                }),
                removal: RwLock::new(()),
                recent: Mutex::new(EntryCache::default()),
            }),
            purge_gate,
            replayed_to,
        }
    }

    /// For the state machine: where the entries are.
    pub fn entry_offsets(&self) -> EntryOffsets {
        EntryOffsets {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The index the next appended entry must have.
    fn next_index(&self) -> u64 {
        match (self.shared.index().last(), self.shared.last_purged()) {
            (Some(last), _) => last.log_id.index + 1,
            (None, Some(purged)) => purged.index + 1,
            (None, None) => 0,
        }
    }
}

fn write_error(e: impl Into<LogStoreError>) -> StorageError {
    StorageIOError::write_logs(AnyError::new(&e.into())).into()
}

fn read_error(e: LogStoreError) -> StorageError {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

fn index_range<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&n) => n,
        Bound::Excluded(&n) => n.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&n) => n.saturating_add(1),
        Bound::Excluded(&n) => n,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<RaftTypes> for WalLogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = index_range(&range);
        self.shared.read_entries(start, end).map_err(read_error)
    }
}

impl RaftLogReader<RaftTypes> for WalLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = index_range(&range);
        self.shared.read_entries(start, end).map_err(read_error)
    }
}

impl RaftLogStorage<RaftTypes> for WalLogStore {
    type LogReader = WalLogReader;

    async fn get_log_state(&mut self) -> Result<LogState<RaftTypes>, StorageError> {
        let last_purged_log_id = self.shared.last_purged();
        let last_log_id = self
            .shared
            .index()
            .last()
            .map(|entry| entry.log_id)
            .or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        WalLogReader {
            shared: Arc::clone(&self.shared),
        }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.shared
            .files
            .save(RaftFile::Vote, vote)
            .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.shared
            .files
            .load(RaftFile::Vote)
            .map_err(|e| StorageIOError::read_vote(AnyError::new(&e)).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let mut state = self.shared.state();
        state.file.committed = committed;
        if state.hint_written.elapsed() < COMMITTED_HINT_EVERY {
            return Ok(());
        }
        state.hint_written = Instant::now();
        self.shared
            .files
            .save(RaftFile::State, &state.file)
            .map_err(write_error)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.replayed_to)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<RaftTypes>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let mut headers = Vec::with_capacity(entries.len());
        for (expected, entry) in (self.next_index()..).zip(&entries) {
            if entry.log_id.index != expected {
                return Err(write_error(LogStoreError::OutOfOrder {
                    index: entry.log_id.index,
                    expected,
                }));
            }
            headers.push(encode_header(entry).map_err(write_error)?);
        }
        let mut records = Vec::new();
        let mut units = Vec::new();
        let mut header_positions = Vec::with_capacity(entries.len());
        for (entry, header) in entries.iter().zip(&headers) {
            let data: &[_] = match &entry.payload {
                EntryPayload::Normal(command) => &command.records,
                _ => &[],
            };
            let count = data.len() as u32 + 1;
            header_positions.push(records.len());
            records.push(NewRecord {
                kind: ENTRY_KIND,
                timestamp_ms: header.timestamp_ms,
                payload: &header.header,
            });
            units.push(Some(UnitMarker { index: 0, count }));
            for (i, record) in data.iter().enumerate() {
                records.push(NewRecord {
                    kind: record.kind,
                    timestamp_ms: record.timestamp_ms,
                    payload: record.payload.get().as_bytes(),
                });
                units.push(Some(UnitMarker {
                    index: i as u32 + 1,
                    count,
                }));
            }
        }
        let appended = self
            .shared
            .wal
            .append_mixed(&records, &units, SyncBy::Thread)
            .map_err(write_error)?;
        {
            let mut index = self.shared.index();
            for (header, position) in headers.iter().zip(header_positions) {
                index
                    .push(header.log_id, appended.offsets[position])
                    .map_err(write_error)?;
            }
        }
        self.shared.recent().appended(&entries);
        let wal = Arc::clone(&self.shared.wal);
        let end = appended.end_offset;
        tokio::spawn(async move {
            let committed = wal.wait_committed(end).await;
            callback.log_io_completed(committed.map_err(std::io::Error::other));
        });
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let _removing = self
            .shared
            .removal
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let Some(first) = self.shared.index().get(log_id.index) else {
            return Ok(());
        };
        self.shared
            .wal
            .truncate_to(first.offset)
            .map_err(write_error)?;
        self.shared.index().truncate_from(log_id.index);
        self.shared.recent().truncate_from(log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Not before the state machine can do without these entries (`docs/cluster.md`
        // section 7: openraft may purge while a snapshot install still runs).
        self.purge_gate
            .wait_for(|covered| covered.is_some_and(|covered| covered >= log_id))
            .await
            .map_err(|_| {
                write_error(LogStoreError::Damaged(
                    "the state machine stopped before the purge".to_owned(),
                ))
            })?;
        let state = {
            let mut state = self.shared.state();
            state.file.last_purged = Some(log_id);
            state.file
        };
        self.shared
            .files
            .save(RaftFile::State, &state)
            .map_err(write_error)?;
        let _removing = self
            .shared
            .removal
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let keep_from = {
            let mut index = self.shared.index();
            index.purge_through(log_id.index);
            self.shared.recent().purge_through(log_id.index);
            index.first().map(|entry| segment_of(entry.offset))
        };
        let newest = segment_of(self.shared.wal.latest_offset());
        self.shared
            .wal
            .delete_segments_below(keep_from.unwrap_or(newest))
            .map_err(write_error)?;
        Ok(())
    }
}
