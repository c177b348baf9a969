//! State shared by the sequencer, the connection tasks and the compactor.

use super::engine_lock::{EngineLock, EngineWriteGuard};
use super::long_reads::LongReadThread;
use super::queue::JobQueue;
use super::recent_events::RecentEvents;
use super::replication::Replication;
use crate::checkpoint::{CheckpointInfo, CheckpointStore, SnapshotStore};
use crate::engine::Engine;
use crate::wal::{DataDirLock, Wal, WalReader};
use rstmdb_protocol::RcpError;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock the records are stamped with (spec §6.5; the engine keeps stamps monotonic).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Clock;

impl Clock {
    pub(crate) fn now_ms(self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// What a reply or a read waits for before it is handed out: the end of the records it may
/// reflect, in the commit epoch it was read in (cluster mode, `replication`; always 0
/// standalone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gate {
    pub(crate) offset: u64,
    pub(crate) epoch: u64,
}

impl Gate {
    /// Waits for nothing (an error decided before anything was written).
    pub(crate) const NOTHING: Gate = Gate {
        offset: 0,
        epoch: 0,
    };
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) data_dir: PathBuf,
    /// Written only by the sequencer (one group at a time) and the compactor; read by requests.
    pub(crate) engine: EngineLock,
    /// Shared with the Raft log in cluster mode.
    pub(crate) wal: Arc<Wal>,
    /// The end of the last record applied to the engine. Stored while the engine's write lock is
    /// held, so a reader holding the read lock sees the position of the state it reads.
    pub(crate) applied_end: AtomicU64,
    pub(crate) queue: JobQueue,
    /// Writes submitted and not yet answered (`sequencer::InFlightWrite`).
    pub(crate) writes_in_flight: AtomicUsize,
    /// The last groups' transitions, for watch subscriptions (docs/watch-streams.md).
    pub(crate) recent_events: RecentEvents,
    pub(crate) clock: Clock,
    pub(crate) checkpoints: CheckpointStore,
    /// The newest checkpoint written or loaded.
    pub(crate) newest_checkpoint: Mutex<Option<CheckpointInfo>>,
    pub(crate) snapshots: SnapshotStore,
    /// One long read ([`super::Database::read_long`]) at a time, held through its pause.
    pub(crate) long_reads: std::sync::Arc<tokio::sync::Semaphore>,
    /// Where long reads run.
    pub(crate) long_read_thread: LongReadThread,
    /// One compaction at a time.
    pub(crate) compaction: tokio::sync::Mutex<()>,
    /// Cluster mode: groups go to a Raft log, and commit means committed by Raft.
    pub(crate) replication: Option<Replication>,
    /// Held for the life of the database: no second process may open the directory.
    pub(crate) _lock: DataDirLock,
}

impl Shared {
    /// The engine for the sequencer. A poisoned lock means a write panicked half-way: the
    /// state can no longer be trusted, so the process must restart and recover from disk.
    pub(crate) fn write_engine(&self) -> EngineWriteGuard<'_> {
        self.engine.write()
    }

    pub(crate) fn read_engine(&self) -> Result<parking_lot::RwLockReadGuard<'_, Engine>, RcpError> {
        self.engine.read()
    }

    /// The gate of the state the engine holds now. Call it with the engine locked, so the
    /// gate is the position of the state read.
    pub(crate) fn gate_now(&self) -> Gate {
        Gate {
            offset: self.applied_end.load(Ordering::Acquire),
            epoch: self.replication.as_ref().map_or(0, Replication::epoch),
        }
    }

    /// The end of the last committed record: nothing at or above it may be shown.
    pub(crate) fn committed_offset(&self) -> u64 {
        match &self.replication {
            Some(replication) => replication.committed_offset(),
            None => self.wal.committed_offset(),
        }
    }

    /// Reads the committed records from `from_offset` on.
    pub(crate) fn committed_reader(&self, from_offset: u64) -> WalReader {
        match &self.replication {
            Some(replication) => self
                .wal
                .reader_to(from_offset, replication.committed_offset()),
            None => self.wal.reader(from_offset),
        }
    }

    pub(crate) fn newest_checkpoint(&self) -> Option<CheckpointInfo> {
        self.newest_checkpoint
            .lock()
            .map_or(None, |guard| guard.clone())
    }
}
