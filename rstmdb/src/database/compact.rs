//! COMPACT (spec §4.19).
//!
//! The checkpoint is the live state as of the new bound C, encoded by a background thread a
//! step at a time from a cut (`engine/cut.rs`): writers go on between steps and wait at most
//! one step, and nothing is read back from disk, so a damaged older checkpoint or a deleted
//! segment cannot make it miss a record. Afterwards the live engine drops the instances
//! deleted below C (spec §6.4), so live state and a restart agree.

use super::shared::Shared;
use super::{Database, errors};
use crate::checkpoint::{CheckpointMeta, CheckpointWriter};
use crate::engine::{CutImage, CutStep};
use crate::wal::segment::segment_of;
use rstmdb_protocol::RcpError;
use rstmdb_protocol::results::CompactResult;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What a compaction did, for logs and metrics as well as the COMPACT result.
pub type CompactOutcome = CompactResult;

impl Database {
    /// COMPACT: writes a checkpoint when anything was committed since the newest one (or when
    /// forced), then deletes the segments it makes unnecessary and the older checkpoints.
    pub async fn compact(&self, force_snapshot: bool) -> Result<CompactOutcome, RcpError> {
        if self.shared.replication.is_some() {
            // Segments hold the Raft log there: they go with Raft snapshots, not built yet
            // (docs/cluster.md section 7).
            return Err(RcpError::bad_request(
                "not_available_in_cluster",
                "COMPACT is not available in cluster mode yet: a node keeps its whole log \
                 until checkpoints become Raft snapshots",
            ));
        }
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
/// when forced), writes the state as of the commit position C, after syncing the WAL up to C
/// whatever the policy, so the checkpoint never covers a record a crash could lose.
///
/// The state is encoded from the live engine, a step at a time, as it was at C (a cut:
/// `engine/cut.rs`); writers wait at most one step for the engine's lock. A FLUSH_ALL during
/// the walk cancels the cut, and a new one starts after it.
fn write_checkpoint(shared: &Shared, force: bool) -> Result<CheckpointWritten, RcpError> {
    let mut cancelled = 0;
    let (bound, last_sequence, writer, first_part) = loop {
        let (bound, last_sequence, image) = match start_cut(shared, force)? {
            Start::NotNeeded(newest) => {
                return Ok(CheckpointWritten {
                    checkpoint_offset: newest,
                    created: false,
                });
            }
            Start::Cut {
                bound,
                last_sequence,
                image,
            } => (bound, last_sequence, image),
        };
        let mut writer = match sync_through(shared, bound).and_then(|()| {
            shared
                .checkpoints
                .begin_streamed(bound, image.first_part_len())
                .map_err(write_error)
        }) {
            Ok(writer) => writer,
            Err(err) => {
                // Writers must not go on saving before-images for a cut nobody walks.
                shared.write_engine().end_cut(&image);
                return Err(err);
            }
        };
        // A cancelled walk drops its writer, and with it the temp file.
        if let Some(first_part) = walk_cut(shared, image, &mut writer)? {
            break (bound, last_sequence, writer, first_part);
        }
        cancelled += 1;
        if cancelled == MAX_CANCELLED_CUTS {
            return Err(errors::internal(format!(
                "no checkpoint written: a FLUSH_ALL ran during each of {MAX_CANCELLED_CUTS} \
                 attempts; run COMPACT again"
            )));
        }
        tracing::info!(
            bound,
            "a FLUSH_ALL ran during the checkpoint's cut: starting again"
        );
    };
    let meta = CheckpointMeta {
        checkpoint_offset: bound,
        last_sequence,
        created_at_ms: shared.clock.now_ms(),
    };
    let info = writer.finish(meta, &first_part).map_err(write_error)?;
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

/// A FLUSH_ALL cancels a cut; after this many in one COMPACT it gives up rather than loop.
const MAX_CANCELLED_CUTS: u32 = 3;

/// What [`start_cut`] found.
enum Start {
    /// Nothing was committed since the newest checkpoint, at this offset.
    NotNeeded(u64),
    /// A cut of everything applied, which ends at `bound` with record `last_sequence`.
    Cut {
        bound: u64,
        last_sequence: u64,
        image: CutImage,
    },
}

/// Starts a cut of the state as of the end of the log, if a checkpoint is needed.
fn start_cut(shared: &Shared, force: bool) -> Result<Start, RcpError> {
    let mut engine = shared.write_engine();
    // The sequencer appends under this lock: the end of the log is what the engine holds.
    // Checked rather than asserted: a panic here would poison the engine for every request.
    let (bound, last_sequence) = shared.wal.end_position();
    let applied = shared.applied_end.load(Ordering::Acquire);
    if bound != applied {
        return Err(errors::internal(format!(
            "no checkpoint written: the WAL ends at {bound} but the engine holds the records up \
             to {applied}"
        )));
    }
    let newest = shared.newest_checkpoint();
    let needed = force
        || newest
            .as_ref()
            .is_none_or(|c| bound > c.meta.checkpoint_offset);
    if !needed {
        return Ok(Start::NotNeeded(
            newest.map_or(bound, |c| c.meta.checkpoint_offset),
        ));
    }
    Ok(Start::Cut {
        bound,
        last_sequence,
        image: engine.begin_cut(),
    })
}

/// Makes every record below `bound` durable, whatever the fsync policy.
fn sync_through(shared: &Shared, bound: u64) -> Result<(), RcpError> {
    shared.wal.request_sync();
    shared
        .wal
        .wait_durable_blocking(bound)
        .map_err(|err| errors::from_wal(&err))
}

/// Instances encoded per hold of the engine's lock: a writer waits at most one step. 256 of
/// ~200 bytes take 0.1 to 0.2 ms on the benchmark machine; writers' p99 during a cut of a
/// million instances stayed under 0.6 ms (512: 0.65 ms, 1,024 without pre-touched buffers:
/// 5 ms; docs/benchmarks.md).
const CUT_STEP_INSTANCES: usize = 256;

fn write_error(err: crate::checkpoint::CheckpointError) -> RcpError {
    errors::internal(format!("cannot write the checkpoint: {err}"))
}

/// Encodes the cut's instances step by step, writing each step to `writer` between steps, and
/// ends the cut. Returns the image's first part, which the writer takes last, or `None` if a
/// FLUSH_ALL cancelled the cut (which ended it).
fn walk_cut(
    shared: &Shared,
    mut image: CutImage,
    writer: &mut CheckpointWriter<'_>,
) -> Result<Option<Vec<u8>>, RcpError> {
    let started = std::time::Instant::now();
    let mut steps = 0u64;
    let mut most_saved = 0;
    loop {
        image.prepare_step();
        let mut engine = shared.write_engine();
        let step = engine.cut_step(&mut image, CUT_STEP_INSTANCES);
        most_saved = most_saved.max(engine.cut_saved());
        steps += 1;
        match step {
            CutStep::More => {}
            CutStep::Done => {
                engine.end_cut(&image);
                drop(engine);
                tracing::debug!(
                    instances = image.instances(),
                    steps,
                    most_saved,
                    walk_ms = started.elapsed().as_millis() as u64,
                    "checkpoint encoded from a cut"
                );
                let (first_part, rest) = image.into_first_and_rest();
                for part in rest {
                    writer.append(&part).map_err(write_error)?;
                }
                return Ok(Some(first_part));
            }
            CutStep::Cancelled => return Ok(None),
        }
        // Whoever waited during the step (the sequencer, readers) runs before the next one.
        engine.unlock_fair();
        for chunk in image.take_chunks() {
            if let Err(err) = writer.append(&chunk) {
                shared.write_engine().end_cut(&image);
                return Err(write_error(err));
            }
            image.recycle(chunk);
        }
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
