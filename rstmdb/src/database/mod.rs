//! The database core: the engine, the WAL and the checkpoints tied together by the commit
//! pipeline (docs/commit-pipeline.md). The server's op dispatcher calls this; so do the bench's
//! embedded mode and the offline tools.
//!
//! - [`open`]: lock, checkpoint, WAL recovery and replay, then the sequencer thread;
//! - `sequencer`, `group`, `placement`, `batch`: executing writes a group at a time;
//! - `reads`: reads gated on durability, WAL_READ, WAL_STATS, SNAPSHOT_INSTANCE;
//! - `compact`: checkpoints built in the background and segment deletion (COMPACT).

mod batch;
mod compact;
mod errors;
mod group;
mod jobs;
mod open;
mod placement;
mod reads;
mod sequencer;
mod shared;

pub use batch::RESULTS_BUDGET_BYTES;
pub use compact::CompactOutcome;
pub use jobs::{BatchItem, BatchOutput, WriteOutput};
pub use open::{DatabaseOptions, OpenError, OpenReport};

use crate::engine::Command;
use jobs::{Completion, Job};
use rstmdb_client::RcpError;
use rstmdb_client::params::BatchMode;
use shared::Shared;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// An open database. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Database {
    shared: Arc<Shared>,
    sequencer: Mutex<Option<JoinHandle<()>>>,
}

fn stopped() -> RcpError {
    RcpError::internal("the database is shutting down")
}

impl Database {
    /// Executes a write op; answers once its record is committed under the fsync policy.
    pub async fn write(&self, command: Command) -> Result<WriteOutput, RcpError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Write { command, reply }).await?;
        self.release(answer.await.map_err(|_| stopped())?).await
    }

    /// Executes a BATCH (params already validated into items).
    pub async fn batch(
        &self,
        mode: BatchMode,
        items: Vec<BatchItem>,
    ) -> Result<BatchOutput, RcpError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Batch { mode, items, reply }).await?;
        self.release(answer.await.map_err(|_| stopped())?).await
    }

    async fn submit(&self, job: Job) -> Result<(), RcpError> {
        self.shared.jobs.send(job).await.map_err(|_| stopped())
    }

    /// Waits until everything the reply depends on is committed (the durability gate).
    async fn release<T>(&self, completion: Completion<T>) -> Result<T, RcpError> {
        self.wait_committed(completion.gate).await?;
        completion.outcome
    }

    async fn wait_committed(&self, gate: u64) -> Result<(), RcpError> {
        self.shared
            .wal
            .wait_committed(gate)
            .await
            .map_err(|err| errors::from_wal(&err))
    }

    /// The data directory this database uses.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.shared.data_dir
    }

    /// Graceful shutdown (spec §6.1): finishes the writes already queued, stops the sequencer
    /// and syncs the WAL whatever the policy. Blocking; idempotent.
    pub fn shutdown(&self) -> Result<(), RcpError> {
        let handle = self.sequencer.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle {
            // A full queue means the sequencer is busy; block until the stop fits.
            let _ = self.shared.jobs.blocking_send(Job::Stop);
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
