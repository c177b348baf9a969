//! COMPACT (spec §4.19) and the state rebuild behind it.
//!
//! The checkpoint is built OFF the write path: a background thread loads the newest checkpoint
//! and replays the committed records below the new bound C into a private engine (`rebuild`,
//! which refuses when that would miss a record), then writes that engine's state. The
//! sequencer never waits for it; the live engine is touched only to drop the instances deleted
//! below C (spec §6.4), so live state and a restart agree.

use super::rebuild::{RebuildError, rebuild};
use super::shared::Shared;
use super::{Database, errors};
use crate::checkpoint::CheckpointMeta;
use crate::wal::segment::segment_of;
use rstmdb_protocol::RcpError;
use rstmdb_protocol::results::CompactResult;
use std::sync::Arc;

/// What a compaction did, for logs and metrics as well as the COMPACT result.
pub type CompactOutcome = CompactResult;

impl Database {
    /// COMPACT: writes a checkpoint when anything was committed since the newest one (or when
    /// forced), then deletes the segments it makes unnecessary and the older checkpoints.
    pub async fn compact(&self, force_snapshot: bool) -> Result<CompactOutcome, RcpError> {
        let _one_at_a_time = self.shared.compaction.lock().await;
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || compact_blocking(&shared, force_snapshot))
            .await
            .map_err(errors::internal)?
    }

    /// Records committed since the newest checkpoint, and the WAL's total logical size: the
    /// two automatic-compaction triggers (spec §9.2).
    pub fn compaction_pressure(&self) -> (u64, u64) {
        let stats = self.shared.wal.stats();
        let covered = self
            .shared
            .newest_checkpoint()
            .map_or(0, |c| c.meta.last_sequence);
        (
            stats.entry_count.saturating_sub(covered),
            stats.total_size_bytes,
        )
    }
}

fn compact_blocking(shared: &Shared, force_snapshot: bool) -> Result<CompactOutcome, RcpError> {
    let written = write_checkpoint(shared, force_snapshot)?;
    let checkpoint_offset = written.checkpoint_offset;
    let deleted = shared
        .wal
        .delete_segments_below(segment_of(checkpoint_offset))
        .map_err(|err| errors::from_wal(&err))?;
    shared
        .checkpoints
        .remove_older_than_newest(true)
        .map_err(checkpoint_error)?;
    Ok(CompactResult {
        snapshots_created: u64::from(written.created),
        segments_deleted: deleted.segments,
        bytes_reclaimed: deleted.bytes_reclaimed,
        total_snapshots: shared.checkpoints.count().map_err(checkpoint_error)? as u64,
        wal_segments: shared.wal.stats().segment_count,
        checkpoint_offset,
    })
}

/// What [`write_checkpoint`] did.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointWritten {
    /// The newest checkpoint's offset afterwards.
    pub checkpoint_offset: u64,
    /// Whether this call wrote one (nothing is written when nothing changed, unless forced).
    pub created: bool,
}

impl Database {
    /// Writes a checkpoint of everything committed so far (COMPACT's step 1 alone, for
    /// `rstmdb snapshot create`): no segment or older checkpoint is deleted. Blocking.
    pub fn checkpoint_now(&self, force: bool) -> Result<CheckpointWritten, RcpError> {
        write_checkpoint(&self.shared, force)
    }
}

/// COMPACT step 1 (spec §4.19): when something was committed since the newest checkpoint (or
/// when forced), syncs the WAL up to the commit position C whatever the policy, so the
/// checkpoint never covers a record a crash could lose, and writes the state as of C.
fn write_checkpoint(shared: &Shared, force: bool) -> Result<CheckpointWritten, RcpError> {
    let bound = shared.wal.request_sync();
    shared
        .wal
        .wait_durable_blocking(bound)
        .map_err(|err| errors::from_wal(&err))?;
    let newest = shared.newest_checkpoint();
    let needed = force
        || newest
            .as_ref()
            .is_none_or(|c| bound > c.meta.checkpoint_offset);
    if !needed {
        return Ok(CheckpointWritten {
            checkpoint_offset: newest.map_or(bound, |c| c.meta.checkpoint_offset),
            created: false,
        });
    }
    let config = shared.read_engine()?.config().clone();
    let (engine, last_sequence) = rebuild(shared, config, bound).map_err(rebuild_error)?;
    let payload = engine.encode_image();
    let meta = CheckpointMeta {
        checkpoint_offset: bound,
        last_sequence,
        created_at_ms: shared.clock.now_ms(),
    };
    let info = shared
        .checkpoints
        .write(meta, &payload)
        .map_err(|err| errors::internal(format!("cannot write the checkpoint: {err}")))?;
    if let Ok(mut newest) = shared.newest_checkpoint.lock() {
        *newest = Some(info);
    }
    // Every writer waits while this holds the engine: it costs O(dropped), not a scan of every
    // instance.
    let mut engine = shared.write_engine();
    let locked = std::time::Instant::now();
    let dropped = engine.drop_deleted_before(bound);
    let lock_held_us = locked.elapsed().as_micros() as u64;
    drop(engine);
    tracing::debug!(
        dropped,
        lock_held_us,
        "dropped deleted instances from the live state"
    );
    Ok(CheckpointWritten {
        checkpoint_offset: bound,
        created: true,
    })
}

fn rebuild_error(err: RebuildError) -> RcpError {
    match err {
        RebuildError::Wal(err) => errors::from_wal(&err),
        other => errors::internal(format!("compaction: {other}")),
    }
}

fn checkpoint_error(err: crate::checkpoint::CheckpointError) -> RcpError {
    errors::internal(format!("checkpoints: {err}"))
}

/// How often the automatic compactor looks at the thresholds (spec §9.2: every 10 s).
pub const AUTO_COMPACTION_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// When the automatic compactor runs COMPACT (the `[compaction]` table, spec §9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoCompaction {
    pub enabled: bool,
    /// Records since the newest checkpoint; 0 turns this trigger off.
    pub records_threshold: u64,
    /// Compared with the WAL's total size; 0 turns this trigger off.
    pub size_threshold_bytes: u64,
    /// The least time between two automatic runs (and after start-up).
    pub min_interval: std::time::Duration,
}

impl Database {
    /// The automatic compactor (spec §9.2): every 10 s, if enabled, at least `min_interval`
    /// after the previous automatic run (or start-up), and a non-zero threshold is reached,
    /// runs COMPACT. Runs until the database is dropped by every other owner.
    pub async fn run_auto_compaction(db: Arc<Database>, settings: AutoCompaction) {
        if !settings.enabled {
            return;
        }
        let mut last_run = tokio::time::Instant::now();
        let mut ticker = tokio::time::interval(AUTO_COMPACTION_CHECK_EVERY);
        loop {
            ticker.tick().await;
            if Arc::strong_count(&db) == 1 {
                return;
            }
            if last_run.elapsed() < settings.min_interval {
                continue;
            }
            let (records, bytes) = db.compaction_pressure();
            let by_records =
                settings.records_threshold > 0 && records >= settings.records_threshold;
            let by_size =
                settings.size_threshold_bytes > 0 && bytes >= settings.size_threshold_bytes;
            if !(by_records || by_size) {
                continue;
            }
            last_run = tokio::time::Instant::now();
            match db.compact(false).await {
                Ok(done) => tracing::info!(
                    checkpoint_offset = done.checkpoint_offset,
                    segments_deleted = done.segments_deleted,
                    bytes_reclaimed = done.bytes_reclaimed,
                    "automatic compaction"
                ),
                Err(err) => tracing::error!(%err, "automatic compaction failed"),
            }
        }
    }
}
