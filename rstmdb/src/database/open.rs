//! Opening a data directory: lock it, load the newest valid checkpoint, recover and replay the
//! WAL (spec §6.1), then start the sequencer.

use super::engine_lock::EngineLock;
use super::long_reads::LongReadThread;
use super::queue::JobQueue;
use super::recent_events::RecentEvents;
use super::replication::Replication;
use super::shared::{Clock, Shared};
use super::{Database, replay, sequencer};
use crate::checkpoint::{
    CheckpointError, CheckpointInfo, CheckpointStore, SkippedCheckpoint, SnapshotError,
    SnapshotRetention, SnapshotStore,
};
use crate::engine::{Engine, EngineConfig};
use crate::wal::{
    CheckpointPosition, DataDirLock, DirStorage, RecordView, RecoveryReport, Storage, WalConfig,
    WalError, wal_dir,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a database needs to open.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    pub data_dir: PathBuf,
    pub wal: WalConfig,
    pub engine: EngineConfig,
    /// Where the WAL's segments live; `None` means real files in `<data_dir>/wal`. Fault tests
    /// pass a crashing in-memory storage here.
    pub wal_storage: Option<Arc<dyn Storage>>,
    /// SNAPSHOT_INSTANCE files kept per instance.
    pub snapshot_retention: SnapshotRetention,
}

impl DatabaseOptions {
    /// Real files in `data_dir` with the given WAL settings and default engine rules.
    pub fn new(data_dir: impl Into<PathBuf>, wal: WalConfig) -> DatabaseOptions {
        DatabaseOptions {
            data_dir: data_dir.into(),
            wal,
            engine: EngineConfig::default(),
            wal_storage: None,
            snapshot_retention: SnapshotRetention::default(),
        }
    }
}

/// What opening found and did, for the start-up log.
#[derive(Debug)]
pub struct OpenReport {
    pub checkpoint: Option<CheckpointInfo>,
    /// Checkpoint files that failed validation and were passed over (newest first).
    pub skipped_checkpoints: Vec<SkippedCheckpoint>,
    pub recovery: RecoveryReport,
    pub records_replayed: u64,
    pub instances: u64,
    pub machines: u64,
    pub duration: Duration,
}

/// Why a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("checkpoint store: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("snapshot store: {0}")]
    Snapshots(#[from] SnapshotError),
    #[error("checkpoint {file} holds an undecodable state: {message}")]
    CheckpointState { file: String, message: String },
    #[error(
        "checkpoint {file} is in the data directory, but a cluster node keeps its state in the \
         Raft log only (checkpoints in cluster mode are not built yet)"
    )]
    ClusterCheckpoint { file: String },
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What start-up does with a record in cluster mode (`docs/cluster.md` section 5: the engine
/// starts from committed entries only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayStep {
    /// A data record of a committed entry: into the engine.
    Apply,
    /// A record of a committed entry that is not engine state (an entry header).
    Pass,
    /// A record past the last entry known to be committed: left to Raft, which applies it
    /// once it is committed.
    Beyond,
}

/// Decides each recovered record's [`ReplayStep`], in WAL order.
pub type ReplayFilter<'a> =
    dyn FnMut(&RecordView<'_>) -> Result<ReplayStep, Box<dyn std::error::Error + Send + Sync>> + 'a;

/// Cluster mode's part of opening a database.
pub struct ClusterOpen<'a> {
    pub filter: &'a mut ReplayFilter<'a>,
    /// How long a write waits for its group to commit (`cluster.write_timeout_ms`).
    pub write_timeout: Duration,
}

impl std::fmt::Debug for ClusterOpen<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterOpen")
            .field("write_timeout", &self.write_timeout)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Opens (creating if needed) the data directory and recovers its state. Blocking: call it
    /// before the runtime serves requests, or from a blocking thread. Must be called within a
    /// tokio runtime context only for the async methods; the sequencer is an OS thread.
    pub fn open(options: DatabaseOptions) -> Result<(Database, OpenReport), OpenError> {
        Database::open_with(options, None)
    }

    /// Opens a cluster node's data directory: replays the records `cluster.filter` lets
    /// through, and sends every write to the group log attached later
    /// (`attach_group_log`). A checkpoint is refused: cluster mode does not write them yet.
    pub fn open_for_cluster(
        options: DatabaseOptions,
        cluster: ClusterOpen<'_>,
    ) -> Result<(Database, OpenReport), OpenError> {
        Database::open_with(options, Some(cluster))
    }

    fn open_with(
        options: DatabaseOptions,
        mut cluster: Option<ClusterOpen<'_>>,
    ) -> Result<(Database, OpenReport), OpenError> {
        let started = Instant::now();
        let lock = DataDirLock::acquire(&options.data_dir)?;
        let checkpoints = CheckpointStore::open(&options.data_dir)?;
        let snapshots =
            SnapshotStore::open(&options.data_dir)?.with_retention(options.snapshot_retention);
        let loaded = checkpoints.load_newest_valid()?;
        let (mut engine, checkpoint, position) = match loaded.loaded {
            Some(found) => {
                let engine = Engine::decode_image(options.engine.clone(), &found.payload).map_err(
                    |err| OpenError::CheckpointState {
                        file: found.info.file_name.clone(),
                        message: err.to_string(),
                    },
                )?;
                let position = CheckpointPosition {
                    checkpoint_offset: found.info.meta.checkpoint_offset,
                    last_sequence: found.info.meta.last_sequence,
                };
                (engine, Some(found.info), Some(position))
            }
            None => (Engine::new(options.engine.clone()), None, None),
        };

        let storage: Arc<dyn Storage> = match options.wal_storage.clone() {
            Some(storage) => storage,
            None => {
                let wal_path = wal_dir(&options.data_dir);
                Arc::new(
                    DirStorage::open(&wal_path).map_err(|source| OpenError::CreateDir {
                        path: wal_path.clone(),
                        source,
                    })?,
                )
            }
        };
        if cluster.is_some()
            && let Some(found) = &checkpoint
        {
            return Err(OpenError::ClusterCheckpoint {
                file: found.file_name.clone(),
            });
        }
        let filter = cluster.as_mut().map(|c| &mut *c.filter);
        let (wal, recovery, replayed) =
            replay::open_replaying(&mut engine, storage, options.wal, position, filter)?;
        let records_replayed = replayed.applied;
        engine.build_list_index();
        let instances = engine.live_instance_count();
        let machines = engine.machine_version_count();

        let latest = replayed.applied_end.unwrap_or_else(|| wal.latest_offset());
        let queue = JobQueue::with_inline(cluster.is_none());
        let replication = cluster.map(|c| Replication::new(latest, c.write_timeout));
        let shared = Arc::new(Shared {
            data_dir: options.data_dir.clone(),
            engine: EngineLock::new(engine),
            wal: Arc::new(wal),
            applied_end: AtomicU64::new(latest),
            queue,
            writes_in_flight: AtomicUsize::new(0),
            recent_events: RecentEvents::new(latest),
            clock: Clock,
            checkpoints,
            newest_checkpoint: Mutex::new(checkpoint.clone()),
            snapshots,
            long_reads: Arc::new(tokio::sync::Semaphore::new(1)),
            long_read_thread: LongReadThread::start().map_err(|err| {
                WalError::Config(format!("cannot start the long-read thread: {err}"))
            })?,
            compaction: tokio::sync::Mutex::new(()),
            replication,
            _lock: lock,
        });
        let for_thread = Arc::clone(&shared);
        let sequencer = std::thread::Builder::new()
            .name("sequencer".to_owned())
            .spawn(move || sequencer::run(for_thread))
            .map_err(|err| WalError::Config(format!("cannot start the sequencer thread: {err}")))?;
        Ok((
            Database {
                shared,
                sequencer: Mutex::new(Some(sequencer)),
            },
            OpenReport {
                checkpoint,
                skipped_checkpoints: loaded.skipped,
                recovery,
                records_replayed,
                instances,
                machines,
                duration: started.elapsed(),
            },
        ))
    }
}

/// Start-up progress for long replays: a log line every few seconds (terminal or not, so a
/// service manager's journal shows it too).
pub(super) struct ReplayProgress {
    started: Instant,
    last_report: Instant,
}

impl ReplayProgress {
    const EVERY: Duration = Duration::from_secs(2);

    pub(super) fn new() -> ReplayProgress {
        let now = Instant::now();
        ReplayProgress {
            started: now,
            last_report: now,
        }
    }

    pub(super) fn tick(&mut self, records: u64, offset: u64) {
        // Checking the clock on every record would cost more than applying many of them.
        if !records.is_multiple_of(16_384) || self.last_report.elapsed() < Self::EVERY {
            return;
        }
        self.last_report = Instant::now();
        let rate = records as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        tracing::info!(
            records,
            segment = crate::wal::segment::segment_of(offset),
            records_per_sec = rate as u64,
            "replaying the WAL"
        );
    }
}
