//! The database core: the engine, the WAL and the checkpoints tied together by the commit
//! pipeline (docs/commit-pipeline.md). The server's op dispatcher calls this; so do the bench's
//! embedded mode and the offline tools.
//!
//! - [`open`](Database::open): lock, checkpoint, WAL recovery and replay, sequencer thread;
//! - `queue`, `sequencer`, `group`, `batch`: executing writes a group at a time (record offsets
//!   come from the WAL's `Placement`, the one owner of the rotation rule);
//! - `reads`: reads ordered after earlier requests and gated on durability; WAL_READ,
//!   WAL_STATS, SNAPSHOT_INSTANCE; `long_reads`: the low-priority thread long reads run on;
//! - `compact`: checkpoints encoded from the live state a step at a time (a cut, off the write
//!   path), and segment deletion (COMPACT);
//! - `committed_event`, `recent_events`, `feed`: what watch subscriptions read (one committed
//!   event, the ring of recent ones, the subscription point, WAL catch-up).
//!
//! Every request method queues its work when it is CALLED and returns a future for the answer,
//! so calling them in a connection's arrival order keeps that order (spec §3.7) while the
//! answers' durability waits overlap.

mod batch;
mod committed_event;
mod compact;
mod engine_lock;
mod errors;
mod feed;
mod group;
mod jobs;
mod long_reads;
mod open;
mod queue;
mod reads;
mod recent_events;
mod replay;
mod replication;
mod sequencer;
mod shared;

pub use committed_event::{CommittedEvent, ParsedValues};
pub use compact::{AutoCompaction, CheckpointWritten, CompactOutcome};
pub use errors::from_apply as apply_error;
pub use feed::{
    CATCH_UP_SCAN_RECORDS, CatchUp, CatchUpError, CatchUpReader, WatchFeed, WatchPoint,
    WatcherGuard,
};
pub use group::GroupRecord;
pub use jobs::{BatchItem, BatchOpResult, BatchOutput, WriteOutput};
pub use open::{ClusterOpen, DatabaseOptions, OpenError, OpenReport, ReplayFilter, ReplayStep};
pub use recent_events::{RecentRead, RingLimits};
pub use replication::{ApplyCommittedError, CommittedEntry, GroupLog, ReplicateError};

use crate::engine::Command;
use jobs::{Completion, Job};
use rstmdb_protocol::RcpError;
use rstmdb_protocol::params::BatchMode;
use sequencer::InFlightWrite;
use shared::{Gate, Shared};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// An open database. Share it behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Database {
    shared: Arc<Shared>,
    sequencer: Mutex<Option<JoinHandle<()>>>,
}

fn stopped() -> RcpError {
    RcpError::internal("the database is shutting down")
}

impl Database {
    /// Queues a write op now; the future answers once its record is committed under the fsync
    /// policy.
    pub fn write(
        &self,
        command: Command,
    ) -> impl Future<Output = Result<WriteOutput, RcpError>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let in_flight = InFlightWrite::start(&self.shared);
        let queued = sequencer::submit(&self.shared, Job::Write { command, reply });
        async move {
            let shared = in_flight.shared();
            queued.map_err(|_| stopped())?;
            let Completion { outcome, gate } = answered(shared, answer).await?;
            // The outcome waits for the durability gate on the heap: held inline, it made this
            // future (which the server boxes per request) over 1 KiB, and with glibc every
            // allocation of that size consolidates the allocator's fast bins (~5% of server
            // CPU under `rstmdb bench -w apply`, see docs/benchmarks.md).
            let outcome = Box::new(outcome);
            wait_committed(shared, gate).await?;
            *outcome
        }
    }

    /// Queues a BATCH now (params already validated into items).
    pub fn batch(
        &self,
        mode: BatchMode,
        items: Vec<BatchItem>,
    ) -> impl Future<Output = Result<BatchOutput, RcpError>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let in_flight = InFlightWrite::start(&self.shared);
        let queued = sequencer::submit(&self.shared, Job::Batch { mode, items, reply });
        async move {
            queued.map_err(|_| stopped())?;
            let shared = in_flight.shared();
            release(shared, answered(shared, answer).await?).await
        }
    }

    /// Tells `observer` about every completed WAL fsync (latency, records made durable).
    pub fn set_fsync_observer(&self, observer: Arc<dyn crate::wal::sync::FsyncObserver>) {
        self.shared.wal.set_fsync_observer(observer);
    }

    /// The data directory this database uses.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.shared.data_dir
    }

    /// Graceful shutdown (spec §6.1): finishes the jobs already queued, stops the sequencer and
    /// syncs the WAL whatever the policy. Blocking (call it from a blocking thread); idempotent.
    pub fn shutdown(&self) -> Result<(), RcpError> {
        let handle = self.sequencer.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle {
            self.shared.queue.close_with(Job::Stop);
            if handle.join().is_err() {
                return Err(errors::internal("the sequencer thread panicked"));
            }
        }
        self.shared
            .wal
            .shutdown()
            .map_err(|err| errors::from_wal(&err))
    }
}

/// The sequencer's answer. In cluster mode, a group may wait for a quorum that is not there
/// (a leader cut off from the others): after `write_timeout` the write answers
/// `commit_unknown`, since its group may still commit.
async fn answered<T>(
    shared: &Shared,
    answer: oneshot::Receiver<Completion<T>>,
) -> Result<Completion<T>, RcpError> {
    let Some(replication) = shared.replication.as_ref() else {
        return answer.await.map_err(|_| stopped());
    };
    let timeout = replication.write_timeout;
    match tokio::time::timeout(timeout, answer).await {
        Ok(answer) => answer.map_err(|_| stopped()),
        Err(_) => {
            replication
                .sync_timeouts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(RcpError::commit_unknown(format!(
                "the write was not committed within {} ms; it may still commit, and a retry \
                 with its idempotency key resolves it",
                timeout.as_millis()
            )))
        }
    }
}

/// Waits until everything the reply depends on is committed (the durability gate), then
/// hands out the outcome.
async fn release<T>(shared: &Shared, completion: Completion<T>) -> Result<T, RcpError> {
    wait_committed(shared, completion.gate).await?;
    completion.outcome
}

async fn wait_committed(shared: &Shared, gate: Gate) -> Result<(), RcpError> {
    match &shared.replication {
        Some(replication) => replication.wait_committed(gate).await,
        None => shared
            .wal
            .wait_committed(gate.offset)
            .await
            .map_err(|err| errors::from_wal(&err)),
    }
}
