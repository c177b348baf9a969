//! The WAL writer: appends records in sequence order, rotates segments, exposes positions and
//! counters, deletes segments for compaction. Durability is tracked in [`super::sync`].

use super::analyze::{CheckpointPosition, ReplayFn};
use super::error::WalError;
use super::placement::Placement;
use super::policy::{FsyncPolicy, WalConfig};
use super::record::{self, HEADER_LEN, UnitMarker};
use super::recovery::{self, RecoveryReport};
use super::segment::{MAX_SEGMENT_ID, offset_of, segment_file_name, segment_of};
use super::stats::IoCounters;
use super::storage::{SegmentFile, Storage};
use super::sync::{self, Durability, SyncBy, SyncState, SyncStatus, Unsynced, lock};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::watch;

/// A record to append; the writer assigns its sequence and offset.
#[derive(Debug, Clone, Copy)]
pub struct NewRecord<'a> {
    /// Non-zero; its meaning belongs to the caller.
    pub kind: u8,
    pub timestamp_ms: i64,
    pub payload: &'a [u8],
}

/// Where an append put its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The sequence of the first record; the others follow densely.
    pub first_sequence: u64,
    /// The offset of each record, in order.
    pub offsets: Vec<u64>,
    /// The end of the last record: wait for this offset to become durable.
    pub end_offset: u64,
}

/// A retained segment and its logical length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    pub id: u64,
    pub logical_len: u64,
}

/// What `delete_segments_below` removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeletedSegments {
    pub segments: u64,
    pub bytes_reclaimed: u64,
}

/// The state recovery hands to the writer.
#[derive(Debug)]
pub(crate) struct RecoveredState {
    pub segments: VecDeque<SegmentInfo>,
    pub newest_file: Arc<dyn SegmentFile>,
    pub last_sequence: u64,
}

#[derive(Debug)]
pub(super) struct AppendState {
    /// Retained segments, oldest first; never empty, the last is the one appended to.
    pub(super) segments: VecDeque<SegmentInfo>,
    pub(super) file: Arc<dyn SegmentFile>,
    pub(super) next_sequence: u64,
    /// Reused encode buffer: one write call per segment touched by an append.
    pub(super) buf: Vec<u8>,
    /// A segment was created but the directory could not be opened to make its entry
    /// durable (out of file descriptors): the next append syncs the directory first, and no
    /// record in that segment is acknowledged before it has.
    pub(super) dir_sync_pending: bool,
}

impl AppendState {
    pub(super) fn newest(&self) -> SegmentInfo {
        // `segments` is never empty: recovery always leaves at least one segment.
        self.segments.back().copied().unwrap_or(SegmentInfo {
            id: 1,
            logical_len: 0,
        })
    }

    fn newest_mut(&mut self) -> Option<&mut SegmentInfo> {
        self.segments.back_mut()
    }
}

/// The write-ahead log of one data directory. Appends are blocking calls (a `pwrite` into the
/// page cache); waiting for durability works from threads and from async code.
#[derive(Debug)]
pub struct Wal {
    pub(super) storage: Arc<dyn Storage>,
    pub(super) config: WalConfig,
    pub(super) counters: Arc<IoCounters>,
    pub(super) append: Mutex<AppendState>,
    pub(super) durability: Arc<Durability>,
    pub(super) sync_thread: Mutex<Option<JoinHandle<()>>>,
}

impl Wal {
    /// Recovers the WAL in `storage` (spec §6.1), calling `replay` for every record at or above
    /// the checkpoint, and starts the writer. On error the caller must discard whatever
    /// `replay` built.
    pub fn open(
        storage: Arc<dyn Storage>,
        config: WalConfig,
        checkpoint: Option<CheckpointPosition>,
        replay: &mut ReplayFn<'_>,
    ) -> Result<(Wal, RecoveryReport), WalError> {
        Wal::open_then(storage, config, checkpoint, replay, &mut || Ok(()))
    }

    /// [`Wal::open`] for a caller that finishes its replay elsewhere (on another thread):
    /// `replayed` is called once every record was handed to `replay` and before recovery cuts
    /// anything, so a record that fails there still leaves the WAL as it found it.
    pub fn open_then(
        storage: Arc<dyn Storage>,
        config: WalConfig,
        checkpoint: Option<CheckpointPosition>,
        replay: &mut ReplayFn<'_>,
        replayed: &mut dyn FnMut() -> Result<(), WalError>,
    ) -> Result<(Wal, RecoveryReport), WalError> {
        config.validate()?;
        let counters = Arc::new(IoCounters::default());
        let (state, report) =
            recovery::recover(storage.as_ref(), &counters, checkpoint, replay, replayed)?;
        Ok((Wal::start(storage, config, counters, state)?, report))
    }

    fn start(
        storage: Arc<dyn Storage>,
        config: WalConfig,
        counters: Arc<IoCounters>,
        state: RecoveredState,
    ) -> Result<Wal, WalError> {
        let newest = state.segments.back().copied().unwrap_or(SegmentInfo {
            id: 1,
            logical_len: 0,
        });
        let latest = offset_of(newest.id, newest.logical_len);
        let sync_state = SyncState {
            written_offset: latest,
            written_sequence: state.last_sequence,
            durable_offset: latest,
            durable_sequence: state.last_sequence,
            file: Arc::clone(&state.newest_file),
            unsynced_records: 0,
            unsynced_bytes: 0,
            syncing: false,
            requested_offset: 0,
            failure: None,
            shutdown: false,
            epoch: 0,
        };
        let durability = Arc::new(Durability::new(
            config.fsync_policy,
            Arc::clone(&counters),
            sync_state,
        ));
        let thread_durability = Arc::clone(&durability);
        let handle = std::thread::Builder::new()
            .name("wal-sync".to_owned())
            .spawn(move || sync::run_sync_thread(thread_durability))
            .map_err(WalError::io("start the WAL sync thread"))?;
        Ok(Wal {
            storage,
            config,
            counters,
            append: Mutex::new(AppendState {
                segments: state.segments,
                file: state.newest_file,
                next_sequence: state.last_sequence + 1,
                buf: Vec::new(),
                dir_sync_pending: false,
            }),
            durability,
            sync_thread: Mutex::new(Some(handle)),
        })
    }

    /// Appends independent records with one write call (per segment touched).
    pub fn append(&self, records: &[NewRecord<'_>]) -> Result<Appended, WalError> {
        self.append_records(records, |_| None, SyncBy::Thread)
    }

    /// Appends an atomic unit (spec §6.8): record i carries `{index: i, count: n}` and no other
    /// record comes between them.
    pub fn append_unit(&self, records: &[NewRecord<'_>]) -> Result<Appended, WalError> {
        let count = u32::try_from(records.len())
            .map_err(|_| WalError::Config("too many records in one unit".to_owned()))?;
        self.append_records(
            records,
            |i| {
                Some(UnitMarker {
                    index: i as u32,
                    count,
                })
            },
            SyncBy::Thread,
        )
    }

    /// Appends records some of which belong to atomic units, all in ONE append: if it fails,
    /// none of them stays, so a caller that applied them all can undo them all. `units[i]` is
    /// record i's marker; a unit's records must be consecutive and complete. `sync_by` says who
    /// makes the records durable under `every_write`: with `SyncBy::Caller` the caller must call
    /// [`Wal::sync_here`] next.
    pub fn append_mixed(
        &self,
        records: &[NewRecord<'_>],
        units: &[Option<UnitMarker>],
        sync_by: SyncBy,
    ) -> Result<Appended, WalError> {
        if units.len() != records.len() {
            return Err(WalError::Config(format!(
                "{} unit markers for {} records",
                units.len(),
                records.len()
            )));
        }
        self.append_records(records, |i| units[i], sync_by)
    }

    /// Under `every_write`, syncs what was written so far on this thread unless an fdatasync
    /// is already running (then the sync thread follows it up). A no-op under other policies.
    pub fn sync_here(&self) {
        self.durability.sync_here();
    }

    fn append_records(
        &self,
        records: &[NewRecord<'_>],
        unit: impl Fn(usize) -> Option<UnitMarker>,
        sync_by: SyncBy,
    ) -> Result<Appended, WalError> {
        for r in records {
            record::check_payload_size(r.payload.len())?;
            if r.kind == 0 {
                return Err(WalError::Config("record kind 0 is reserved".to_owned()));
            }
        }
        self.durability.check_failure()?;
        let mut a = lock(&self.append);
        if records.is_empty() {
            let n = a.newest();
            let end_offset = offset_of(n.id, n.logical_len);
            return Ok(Appended {
                first_sequence: a.next_sequence,
                offsets: Vec::new(),
                end_offset,
            });
        }
        if a.dir_sync_pending {
            self.sync_new_dir_entry(&mut a, "a new segment")?;
        }
        let start = a.newest();
        let start_file = Arc::clone(&a.file);
        let mut created = Vec::new();
        match self.write_records(&mut a, records, unit, &mut created) {
            Ok(appended) => {
                let bytes: u64 = records
                    .iter()
                    .map(|r| (HEADER_LEN + r.payload.len()) as u64)
                    .sum();
                self.counters
                    .writes
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
                self.counters
                    .bytes_written
                    .fetch_add(bytes, Ordering::Relaxed);
                let last_sequence = appended.first_sequence + records.len() as u64 - 1;
                a.next_sequence = last_sequence + 1;
                self.durability.written(
                    &a.file,
                    appended.end_offset,
                    last_sequence,
                    Unsynced {
                        records: records.len() as u64,
                        bytes,
                    },
                    sync_by,
                );
                Ok(appended)
            }
            Err(e) => {
                self.roll_back(&mut a, start, start_file, created);
                Err(e)
            }
        }
    }

    fn write_records(
        &self,
        a: &mut AppendState,
        records: &[NewRecord<'_>],
        unit: impl Fn(usize) -> Option<UnitMarker>,
        created: &mut Vec<(u64, Arc<dyn SegmentFile>)>,
    ) -> Result<Appended, WalError> {
        a.buf.clear();
        // The records before this append: all a rotation may call durable, since this append's
        // own records are cut again if it fails after the rotation.
        let kept = (
            offset_of(a.newest().id, a.newest().logical_len),
            a.next_sequence - 1,
        );
        // Read before the write, so it can only be lower than what was durable when the bytes
        // reach the file: recovery may then take a hole for a torn tail, never the reverse.
        let durable_sequence = self.durability.durable_sequence();
        let mut buf_position = a.newest().logical_len;
        let mut placement = Placement::at(
            offset_of(a.newest().id, a.newest().logical_len),
            self.config.segment_size_bytes,
        );
        let mut offsets = Vec::with_capacity(records.len());
        for (sequence, (i, r)) in (a.next_sequence..).zip(records.iter().enumerate()) {
            let size = (HEADER_LEN + r.payload.len()) as u64;
            let offset = placement.place(r.payload.len());
            if segment_of(offset) != a.newest().id {
                self.flush(a, buf_position)?;
                self.rotate(a, kept, created)?;
                buf_position = 0;
            }
            let newest = a.newest();
            debug_assert_eq!(
                offset,
                offset_of(newest.id, newest.logical_len),
                "the writer's position and its placement disagree"
            );
            offsets.push(offset);
            record::encode_into(
                &mut a.buf,
                r.kind,
                sequence,
                r.timestamp_ms,
                unit(i),
                record::unsynced_before(sequence, durable_sequence),
                r.payload,
            );
            if let Some(n) = a.newest_mut() {
                n.logical_len += size;
            }
        }
        self.flush(a, buf_position)?;
        let n = a.newest();
        Ok(Appended {
            first_sequence: a.next_sequence,
            offsets,
            end_offset: offset_of(n.id, n.logical_len),
        })
    }

    fn flush(&self, a: &mut AppendState, position: u64) -> Result<(), WalError> {
        if a.buf.is_empty() {
            return Ok(());
        }
        self.counters.write_calls.fetch_add(1, Ordering::Relaxed);
        let result = a.file.write_at(position, &a.buf);
        a.buf.clear();
        result.map_err(WalError::io("append to the WAL"))
    }

    /// Syncs the full segment (so only the newest segment can ever be torn), then creates the
    /// next one and makes its directory entry durable.
    ///
    /// The sync also covers records of the append in progress, but durability advances only to
    /// `kept` (offset, sequence), the end of the records before it: if the create or anything
    /// later fails, the append is cut back to there, and a durable mark above the cut would let
    /// the next record written below it be acknowledged without an fdatasync. The append's
    /// records become durable with its own sync, which covers them.
    fn rotate(
        &self,
        a: &mut AppendState,
        kept: (u64, u64),
        created: &mut Vec<(u64, Arc<dyn SegmentFile>)>,
    ) -> Result<(), WalError> {
        let old = a.newest();
        let started = Instant::now();
        let synced = a.file.sync_data();
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = synced {
            let message = format!("fdatasync of {} failed: {e}", segment_file_name(old.id));
            self.durability.fail(message.clone());
            return Err(WalError::SyncFailed { message });
        }
        let latency_us = started.elapsed().as_micros() as u64;
        let (kept_offset, kept_sequence) = kept;
        debug_assert!(kept_offset <= offset_of(old.id, old.logical_len));
        self.durability
            .advance(kept_offset, kept_sequence, latency_us);
        if old.id >= MAX_SEGMENT_ID {
            // The next id's offsets would lose their id bits and go backwards. Permanent: no
            // later append can rotate either, so the WAL stops with the remedy in its reason.
            // (After the sync above, so the records before this append are still acknowledged.)
            let exhausted = WalError::SegmentIdsExhausted { last_id: old.id };
            let remedy = exhausted.hint().unwrap_or_default();
            self.durability.fail(format!("{exhausted} ({remedy})"));
            return Err(exhausted);
        }
        let id = old.id + 1;
        let name = segment_file_name(id);
        let file = self
            .storage
            .create(&name)
            .map_err(WalError::io(format!("create {name}")))?;
        created.push((id, Arc::clone(&file)));
        a.segments.push_back(SegmentInfo { id, logical_len: 0 });
        a.file = file;
        self.sync_new_dir_entry(a, &name)
    }

    /// Makes a new segment's directory entry durable. Records in a segment whose entry may
    /// vanish must never be acknowledged, and a failed fsync leaves the directory in doubt,
    /// which stops the WAL. But a directory that could not even be opened (out of file
    /// descriptors, EMFILE/ENFILE) was never touched: the append fails with a retryable error
    /// and the next append tries again, so descriptor exhaustion never stops the WAL.
    fn sync_new_dir_entry(&self, a: &mut AppendState, name: &str) -> Result<(), WalError> {
        match self.storage.sync_dir() {
            Ok(()) => {
                a.dir_sync_pending = false;
                Ok(())
            }
            Err(e) if is_out_of_descriptors(&e) => {
                a.dir_sync_pending = true;
                Err(WalError::io(format!(
                    "open the WAL directory to sync the entry of {name}"
                ))(e))
            }
            Err(e) => {
                let message =
                    format!("fsync of the WAL directory after creating {name} failed: {e}");
                self.durability.fail(message.clone());
                Err(WalError::SyncFailed { message })
            }
        }
    }

    /// Undoes a failed append: nothing half-written stays. Segments created by the append stay,
    /// empty (their ids must not be reused by a file that might linger).
    fn roll_back(
        &self,
        a: &mut AppendState,
        start: SegmentInfo,
        start_file: Arc<dyn SegmentFile>,
        created: Vec<(u64, Arc<dyn SegmentFile>)>,
    ) {
        a.buf.clear();
        // The cut is synced: the sync thread (or a rotation) may already have made the failed
        // records durable, and a crash must not bring back records whose append reported an
        // error.
        let mut failures = Vec::new();
        let touched = std::iter::once((start.id, &start_file, start.logical_len))
            .chain(created.iter().map(|(id, file)| (*id, file, 0)));
        for (id, file, len) in touched {
            let cut = file.set_len(len).and_then(|()| file.sync_data());
            self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = cut {
                failures.push(format!("{}: {e}", segment_file_name(id)));
            }
        }
        for s in a.segments.iter_mut() {
            if s.id == start.id {
                s.logical_len = start.logical_len;
            } else if created.iter().any(|(id, _)| *id == s.id) {
                s.logical_len = 0;
            }
        }
        if !failures.is_empty() {
            self.durability.fail(format!(
                "cannot truncate after a failed append: {}",
                failures.join(", ")
            ));
        }
    }

    /// Waits (async) until every record ending at or below `offset` is durable.
    pub async fn wait_durable(&self, offset: u64) -> Result<(), WalError> {
        let mut rx = self.durability.watch.subscribe();
        loop {
            {
                let status = rx.borrow_and_update();
                if status.durable_offset >= offset {
                    return Ok(());
                }
                if let Some(message) = &status.failure {
                    return Err(WalError::SyncFailed {
                        message: message.clone(),
                    });
                }
            }
            if rx.changed().await.is_err() {
                return Err(WalError::ShutDown);
            }
        }
    }

    /// Waits until a record ending at `end_offset` is committed under the fsync policy: durable
    /// for `EveryWrite`, already true for the others (spec §6.1).
    pub async fn wait_committed(&self, end_offset: u64) -> Result<(), WalError> {
        match self.config.fsync_policy {
            FsyncPolicy::EveryWrite => self.wait_durable(end_offset).await,
            _ => self.durability.check_failure(),
        }
    }

    /// Blocking form of [`Wal::wait_durable`].
    pub fn wait_durable_blocking(&self, offset: u64) -> Result<(), WalError> {
        self.durability.wait_blocking(offset)
    }

    /// Tells `observer` about every completed fsync of this WAL (metrics), replacing any
    /// earlier one.
    pub fn set_fsync_observer(&self, observer: Arc<dyn crate::wal::sync::FsyncObserver>) {
        let mut slot = self
            .durability
            .observer
            .write()
            .unwrap_or_else(|e| e.into_inner());
        *slot = Some(observer);
    }

    /// A receiver of the durable offset (and of the failure that stopped the WAL, if any).
    pub fn durable_watch(&self) -> watch::Receiver<SyncStatus> {
        self.durability.watch.subscribe()
    }

    /// Asks for everything written so far to be synced; returns the offset to wait for.
    pub fn request_sync(&self) -> u64 {
        self.durability.request_sync()
    }

    /// Syncs everything written so far, whatever the policy, and waits for it.
    pub fn sync(&self) -> Result<(), WalError> {
        let target = self.request_sync();
        self.wait_durable_blocking(target)
    }

    /// Syncs and stops the sync thread. Appends after this fail.
    pub fn shutdown(&self) -> Result<(), WalError> {
        let synced = self.sync();
        self.stop_sync_thread();
        synced
    }

    fn stop_sync_thread(&self) {
        lock(&self.durability.state).shutdown = true;
        self.durability.work.notify_all();
        if let Some(handle) = lock(&self.sync_thread).take() {
            // A panicking sync thread has already stopped durability; nothing more to do.
            let _ = handle.join();
        }
        self.durability.fail("the WAL was shut down".to_owned());
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        // The sync thread performs a final sync of dirty data before it exits.
        self.stop_sync_thread();
    }
}

/// EMFILE or ENFILE: the process or the system has no file descriptor to spare right now.
fn is_out_of_descriptors(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}
