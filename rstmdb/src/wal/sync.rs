//! Durability tracking and the sync thread (group commit; docs/wal-format.md §5).
//!
//! The appender writes and then bumps `written` here; the sync thread loops
//! `target = written; fdatasync; durable = target; notify`. While one fdatasync runs, later
//! appends queue up behind it and the next fdatasync covers all of them.

use super::error::WalError;
use super::policy::FsyncPolicy;
use super::stats::{FsyncWindow, IoCounters};
use super::storage::SegmentFile;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Told about every successful segment fsync (the sync thread's and rotation's). Lets the
/// metrics layer keep latency and group-commit histograms without the WAL depending on it.
/// Called on the syncing thread right after the fsync: implementations must be cheap and must
/// not block.
pub trait FsyncObserver: Send + Sync + std::fmt::Debug {
    /// `records` is how many records this fsync made durable (0 when it covered none new).
    fn fsync_completed(&self, latency: Duration, records: u64);
}

/// Who syncs what an append wrote, under `every_write`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncBy {
    /// The sync thread, woken by the append.
    Thread,
    /// The appender, right after the append ([`crate::wal::Wal::sync_here`]).
    Caller,
}

/// What one append wrote, for the sync thread's triggers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unsynced {
    pub records: u64,
    pub bytes: u64,
}

/// Under every policy, the sync thread syncs once this many bytes are unsynced. A rotation
/// syncs the full segment while the appender (and so every writer) waits; without this, under
/// `never` that was up to 64 MiB of dirty pages, 40–48 ms on the benchmark machine, every
/// 64 MiB. Synced in the background as they accumulate, the same bytes reach the disk (the
/// kernel would write them back anyway) and a rotation finds at most about this much left.
pub const WRITEBACK_BYTES: u64 = 8 * 1024 * 1024;

/// What async waiters see: the durable offset, or the failure that stopped the WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    pub durable_offset: u64,
    /// Set once an fdatasync failed; every wait then fails.
    pub failure: Option<String>,
}

#[derive(Debug)]
pub(crate) struct SyncState {
    /// End (offset) and sequence of the last record written to its file.
    pub written_offset: u64,
    pub written_sequence: u64,
    pub durable_offset: u64,
    pub durable_sequence: u64,
    /// The segment that holds `written_offset`; older segments were synced at rotation.
    pub file: Arc<dyn SegmentFile>,
    /// Records written since the sync thread last took a target (for `EveryN`).
    pub unsynced_records: u64,
    /// Bytes written since the sync thread last took a target ([`WRITEBACK_BYTES`]).
    pub unsynced_bytes: u64,
    /// An explicit `sync()` wants durability up to here.
    pub requested_offset: u64,
    /// An fdatasync is running (the sync thread's, or an appender's own: [`Durability::sync_here`]).
    /// One at a time: the other waits for it rather than sync the same file twice.
    pub syncing: bool,
    pub failure: Option<String>,
    pub shutdown: bool,
    /// Bumped by every cut of the tail ([`crate::wal::Wal::truncate_to`]). An fdatasync taken
    /// before a cut covered bytes that are gone: its result must not move the durable offset,
    /// or records appended at the same offsets after the cut would read as durable.
    pub epoch: u64,
}

/// State shared by the appender, the sync thread and waiters.
#[derive(Debug)]
pub(crate) struct Durability {
    pub policy: FsyncPolicy,
    pub state: Mutex<SyncState>,
    /// Wakes the sync thread.
    pub work: Condvar,
    /// Wakes blocking waiters.
    pub advanced: Condvar,
    pub watch: watch::Sender<SyncStatus>,
    pub window: Mutex<FsyncWindow>,
    pub counters: Arc<IoCounters>,
    /// Told about each completed fsync (metrics); set once the WAL is open.
    pub observer: RwLock<Option<Arc<dyn FsyncObserver>>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent across a panic elsewhere (every update is a few
    // assignments), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Durability {
    pub fn new(policy: FsyncPolicy, counters: Arc<IoCounters>, state: SyncState) -> Self {
        let (watch, _) = watch::channel(SyncStatus {
            durable_offset: state.durable_offset,
            failure: None,
        });
        Self {
            policy,
            state: Mutex::new(state),
            work: Condvar::new(),
            advanced: Condvar::new(),
            watch,
            window: Mutex::new(FsyncWindow::default()),
            counters,
            observer: RwLock::new(None),
        }
    }

    /// Called by the appender after a successful write. `SyncBy::Caller`: under `every_write`
    /// the appender syncs itself next ([`Durability::sync_here`]), so the sync thread is not
    /// woken for it.
    pub fn written(
        &self,
        file: &Arc<dyn SegmentFile>,
        end_offset: u64,
        last_sequence: u64,
        unsynced: Unsynced,
        sync_by: SyncBy,
    ) {
        let mut st = lock(&self.state);
        st.written_offset = end_offset;
        st.written_sequence = last_sequence;
        st.file = Arc::clone(file);
        st.unsynced_records += unsynced.records;
        st.unsynced_bytes += unsynced.bytes;
        let writeback = st.unsynced_bytes >= WRITEBACK_BYTES
            && st.unsynced_bytes - unsynced.bytes < WRITEBACK_BYTES;
        let wake = writeback
            || match self.policy {
                FsyncPolicy::EveryWrite => sync_by == SyncBy::Thread,
                FsyncPolicy::EveryN(n) => st.unsynced_records >= u64::from(n),
                FsyncPolicy::EveryMs(_) => st.unsynced_records == unsynced.records,
                FsyncPolicy::Never => false,
            };
        drop(st);
        if wake {
            self.work.notify_one();
        }
    }

    /// Under `every_write`, makes everything written so far durable on the calling thread when
    /// no fdatasync is running: one request at a time then needs no hand-off to the sync
    /// thread and back. When one is running, wakes the sync thread to follow it up instead.
    /// Returns once this thread's fdatasync (if any) is done; waiters are told as usual.
    pub fn sync_here(&self) {
        if self.policy != FsyncPolicy::EveryWrite {
            return;
        }
        let mut st = lock(&self.state);
        if st.failure.is_some() || st.written_offset <= st.durable_offset {
            return;
        }
        if st.syncing {
            drop(st);
            self.work.notify_one();
            return;
        }
        st.syncing = true;
        st.unsynced_records = 0;
        st.unsynced_bytes = 0;
        let target = SyncTarget::of(&st);
        drop(st);
        let started = Instant::now();
        let result = target.file.sync_data();
        self.synced(result, &target, started);
        let mut st = lock(&self.state);
        st.syncing = false;
        // The thread waits while this ran: it must look again if there is more to sync, or
        // if it is shutting down.
        let wake = st.written_offset > st.durable_offset || st.shutdown;
        drop(st);
        if wake {
            self.work.notify_one();
        }
    }

    /// Accounts for a finished fdatasync: advances the durable offset, or stops the WAL.
    /// Returns whether it succeeded.
    fn synced(&self, result: std::io::Result<()>, target: &SyncTarget, started: Instant) -> bool {
        let latency_us = started.elapsed().as_micros() as u64;
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(()) => {
                self.advance_from(target.epoch, target.offset, target.sequence, latency_us);
                true
            }
            Err(e) => {
                let offset = target.offset;
                self.fail(format!("fdatasync up to offset {offset} failed: {e}"));
                false
            }
        }
    }

    /// Records a completed fdatasync covering everything up to `(offset, sequence)`. For the
    /// appender, whose lock keeps the tail from being cut meanwhile.
    pub fn advance(&self, offset: u64, sequence: u64, latency_us: u64) {
        let epoch = lock(&self.state).epoch;
        self.advance_from(epoch, offset, sequence, latency_us);
    }

    /// [`Durability::advance`] for an fdatasync that started in `epoch`: ignored when the tail
    /// was cut since.
    fn advance_from(&self, epoch: u64, offset: u64, sequence: u64, latency_us: u64) {
        let mut st = lock(&self.state);
        let records = if epoch == st.epoch && offset > st.durable_offset {
            let records = sequence.saturating_sub(st.durable_sequence);
            st.durable_offset = offset;
            st.durable_sequence = sequence;
            if offset >= st.written_offset {
                // A rotation's sync: nothing written is left for the writeback to cover.
                st.unsynced_bytes = 0;
            }
            records
        } else {
            0
        };
        lock(&self.window).record(latency_us, records);
        let durable = st.durable_offset;
        drop(st);
        self.watch.send_modify(|s| s.durable_offset = durable);
        self.advanced.notify_all();
        // After the waiters are woken: measuring must not delay an acknowledgement.
        let observer = self.observer.read().unwrap_or_else(|e| e.into_inner());
        if let Some(observer) = observer.as_ref() {
            observer.fsync_completed(Duration::from_micros(latency_us), records);
        }
    }

    /// The tail was cut back to `offset` (the end of the record of `sequence`) and the cut
    /// synced: everything written is durable again, and fdatasyncs in flight no longer count.
    /// The durable offset may go down here, and only here.
    pub fn cut_back(&self, file: &Arc<dyn SegmentFile>, offset: u64, sequence: u64) {
        let mut st = lock(&self.state);
        st.epoch += 1;
        st.written_offset = offset;
        st.written_sequence = sequence;
        st.durable_offset = offset;
        st.durable_sequence = sequence;
        st.file = Arc::clone(file);
        st.unsynced_records = 0;
        st.unsynced_bytes = 0;
        st.requested_offset = st.requested_offset.min(offset);
        drop(st);
        self.watch.send_modify(|s| s.durable_offset = offset);
        self.advanced.notify_all();
    }

    /// Stops the WAL after a failed fdatasync: every waiter gets the error.
    pub fn fail(&self, message: String) {
        let mut st = lock(&self.state);
        st.failure.get_or_insert(message.clone());
        drop(st);
        self.watch.send_modify(|s| {
            s.failure.get_or_insert(message);
        });
        self.advanced.notify_all();
        self.work.notify_all();
    }

    /// The sequence of the last record a completed fdatasync covered.
    pub fn durable_sequence(&self) -> u64 {
        lock(&self.state).durable_sequence
    }

    pub fn check_failure(&self) -> Result<(), WalError> {
        match &lock(&self.state).failure {
            Some(reason) => Err(WalError::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Blocks until every record ending at or below `offset` is durable.
    pub fn wait_blocking(&self, offset: u64) -> Result<(), WalError> {
        let mut st = lock(&self.state);
        loop {
            if st.durable_offset >= offset {
                return Ok(());
            }
            if let Some(message) = &st.failure {
                return Err(WalError::SyncFailed {
                    message: message.clone(),
                });
            }
            if st.shutdown && st.written_offset <= st.durable_offset {
                return Err(WalError::ShutDown);
            }
            st = self.advanced.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Asks the sync thread to make everything written so far durable; returns the target.
    pub fn request_sync(&self) -> u64 {
        let mut st = lock(&self.state);
        st.requested_offset = st.requested_offset.max(st.written_offset);
        let target = st.written_offset;
        drop(st);
        self.work.notify_one();
        target
    }
}

/// What one fdatasync covers, taken under the state lock before it starts.
struct SyncTarget {
    offset: u64,
    sequence: u64,
    file: Arc<dyn SegmentFile>,
    epoch: u64,
}

impl SyncTarget {
    fn of(st: &SyncState) -> Self {
        Self {
            offset: st.written_offset,
            sequence: st.written_sequence,
            file: Arc::clone(&st.file),
            epoch: st.epoch,
        }
    }
}

/// The sync thread's loop; returns at shutdown (after a final sync) or after a failure.
pub(crate) fn run_sync_thread(d: Arc<Durability>) {
    let mut next_tick = Instant::now();
    loop {
        let mut st = lock(&d.state);
        let target = loop {
            if st.failure.is_some() {
                return;
            }
            let dirty = st.written_offset > st.durable_offset;
            let requested = st.requested_offset > st.durable_offset;
            let now = Instant::now();
            let writeback = dirty && st.unsynced_bytes >= WRITEBACK_BYTES;
            let due = writeback
                || match d.policy {
                    FsyncPolicy::EveryWrite => dirty,
                    FsyncPolicy::EveryN(n) => {
                        dirty && (requested || st.unsynced_records >= u64::from(n))
                    }
                    FsyncPolicy::EveryMs(_) => dirty && (requested || now >= next_tick),
                    FsyncPolicy::Never => dirty && requested,
                };
            // An appender's own fdatasync is running: it wakes this thread when it is done
            // if anything is left.
            if !st.syncing && (due || (st.shutdown && dirty)) {
                break SyncTarget::of(&st);
            }
            if st.shutdown && !st.syncing {
                return;
            }
            st = match d.policy {
                FsyncPolicy::EveryMs(_) if dirty => {
                    let wait = next_tick.saturating_duration_since(now);
                    d.work
                        .wait_timeout(st, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                _ => d.work.wait(st).unwrap_or_else(|e| e.into_inner()),
            };
        };
        st.unsynced_records = 0;
        st.unsynced_bytes = 0;
        st.syncing = true;
        drop(st);
        let started = Instant::now();
        let result = target.file.sync_data();
        if let FsyncPolicy::EveryMs(ms) = d.policy {
            next_tick = started + Duration::from_millis(u64::from(ms));
        }
        let ok = d.synced(result, &target, started);
        lock(&d.state).syncing = false;
        if !ok {
            return;
        }
    }
}
