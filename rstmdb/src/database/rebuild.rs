//! The state a new checkpoint holds, rebuilt off the write path: a checkpoint plus the committed
//! records after it, checked to be every record below the bound.
//!
//! The rebuild starts from the newest VALID checkpoint, which is not always the one the live
//! state came from (that file may have become unreadable since), and the WAL reader passes over
//! missing segments (watch catch-up needs that). Either could make a checkpoint that silently
//! lacks records; once written, compaction would delete the segments that still hold them. So
//! the replay must start right after its checkpoint's last sequence, continue without a gap,
//! and leave no retained byte unread below the bound; otherwise nothing is written.

use super::shared::Shared;
use crate::checkpoint::{CheckpointError, CheckpointInfo, SkippedCheckpoint};
use crate::engine::{Engine, EngineConfig, ImageError, Record, ReplayError};
use crate::wal::segment::offset_of;
use crate::wal::{SegmentInfo, WalError};

/// Why no checkpoint could be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RebuildError {
    #[error("cannot load the checkpoint: {0}")]
    LoadCheckpoint(#[from] CheckpointError),
    #[error("checkpoint {file} holds an undecodable state: {source}")]
    CheckpointState {
        file: String,
        #[source]
        source: ImageError,
    },
    #[error("checkpoint {file} covers offset {checkpoint_offset}, beyond the bound {bound}")]
    CheckpointBeyondBound {
        file: String,
        checkpoint_offset: u64,
        bound: u64,
    },
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("record at offset {offset}: {message}")]
    Record { offset: u64, message: String },
    /// The replay does not hold every record below the bound.
    #[error(
        "refusing to write a checkpoint that would miss records: replaying from {start} {gap}; \
         {live}"
    )]
    MissingRecords {
        start: String,
        gap: String,
        live: String,
    },
}

/// Where a replay starts: after a checkpoint, or from the beginning of the log.
struct Start {
    /// The checkpoint's file name, `None` for an empty state.
    file: Option<String>,
    offset: u64,
    last_sequence: u64,
}

impl Start {
    fn describe(&self) -> String {
        match &self.file {
            Some(file) => format!(
                "{file} (offset {}, last sequence {})",
                self.offset, self.last_sequence
            ),
            None => "an empty state (no valid checkpoint)".to_owned(),
        }
    }
}

/// The state as of `bound`: the newest valid checkpoint plus the committed records below
/// `bound`, with the instances deleted below it dropped (what a checkpoint holds, spec §6.4).
/// Returns the engine and the sequence of the last record it covers.
pub(crate) fn rebuild(
    shared: &Shared,
    config: EngineConfig,
    bound: u64,
) -> Result<(Engine, u64), RebuildError> {
    let live = shared.newest_checkpoint();
    let loaded = shared.checkpoints.load_newest_valid()?;
    let (mut engine, start) = match loaded.loaded {
        Some(found) => {
            let info = found.info;
            if info.meta.checkpoint_offset > bound {
                return Err(RebuildError::CheckpointBeyondBound {
                    file: info.file_name,
                    checkpoint_offset: info.meta.checkpoint_offset,
                    bound,
                });
            }
            let engine = Engine::decode_image(config, &found.payload).map_err(|source| {
                RebuildError::CheckpointState {
                    file: info.file_name.clone(),
                    source,
                }
            })?;
            let start = Start {
                offset: info.meta.checkpoint_offset,
                last_sequence: info.meta.last_sequence,
                file: Some(info.file_name),
            };
            (engine, start)
        }
        None => (
            Engine::new(config),
            Start {
                file: None,
                offset: 0,
                last_sequence: 0,
            },
        ),
    };
    let live_description = describe_live(live.as_ref(), &start, &loaded.skipped);
    if live.as_ref().map(|c| &c.file_name) != start.file.as_ref() {
        tracing::warn!(
            start = %start.describe(),
            live = %live_description,
            "the compaction rebuild does not start from the checkpoint the live state came from"
        );
    }
    let missing = |gap: String| RebuildError::MissingRecords {
        start: start.describe(),
        gap,
        live: live_description.clone(),
    };

    let mut next_sequence = start.last_sequence + 1;
    let mut replayed_end = start.offset;
    for record in shared.wal.reader(start.offset) {
        let record = record?;
        if record.offset >= bound {
            break;
        }
        if record.sequence != next_sequence {
            return Err(missing(format!(
                "expects sequence {next_sequence} next, but the WAL holds sequence {} at offset {}",
                record.sequence, record.offset
            )));
        }
        let entry: Record =
            serde_json::from_slice(&record.payload).map_err(|err| RebuildError::Record {
                offset: record.offset,
                message: err.to_string(),
            })?;
        engine
            .apply_record(&entry, record.offset)
            .map_err(|err: ReplayError| RebuildError::Record {
                offset: record.offset,
                message: err.to_string(),
            })?;
        next_sequence += 1;
        replayed_end = record.end();
    }
    let unread = retained_bytes_between(&shared.wal.segments(), replayed_end, bound);
    if unread > 0 {
        return Err(missing(format!(
            "stops at offset {replayed_end}, but the WAL retains {unread} more bytes below the \
             bound {bound}"
        )));
    }
    engine.drop_deleted();
    Ok((engine, next_sequence - 1))
}

/// The checkpoint the live state came from, for messages: its name, and why the rebuild
/// could not use it when it did not.
fn describe_live(
    live: Option<&CheckpointInfo>,
    start: &Start,
    skipped: &[SkippedCheckpoint],
) -> String {
    let Some(live) = live else {
        return "the live state came from no checkpoint".to_owned();
    };
    if start.file.as_ref() == Some(&live.file_name) {
        return format!("the live state came from {} too", live.file_name);
    }
    match skipped.iter().find(|s| s.file_name == live.file_name) {
        Some(skipped) => format!(
            "the live state came from {}, which was passed over: {}",
            live.file_name, skipped.fault
        ),
        None => format!(
            "the live state came from {}, which is no longer in the directory",
            live.file_name
        ),
    }
}

/// Bytes of records the WAL retains in `[from, to)`, from its segment list (segments only
/// grow at the newest end, and compaction, which alone deletes them, runs one at a time).
fn retained_bytes_between(segments: &[SegmentInfo], from: u64, to: u64) -> u64 {
    segments
        .iter()
        .map(|s| {
            let begin = offset_of(s.id, 0).max(from);
            let end = offset_of(s.id, s.logical_len).min(to);
            end.saturating_sub(begin)
        })
        .sum()
}
