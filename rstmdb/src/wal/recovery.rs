//! Start-up recovery (spec §6.1): validate with [`super::analyze`], make the planned cuts, and
//! leave the kept WAL synced, directory entries included, so that `durable_offset ==
//! latest_offset`.

use super::analyze::{self, Analysis, CheckpointPosition, PlannedCut, ReplayFn, StartRule};
use super::error::WalError;
use super::segment::{offset_of, segment_file_name};
use super::stats::IoCounters;
use super::storage::Storage;
use super::writer::{RecoveredState, SegmentInfo};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;

/// One cut recovery made; the binary logs each as a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    pub segment: String,
    /// Bytes removed (for a deleted segment, its file size).
    pub bytes_cut: u64,
    /// The segment file was deleted as a whole.
    pub deleted: bool,
    pub reason: String,
}

/// What recovery found and did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    pub cuts: Vec<Cut>,
    /// Records handed to the replay callback (those at or above the checkpoint).
    pub records_replayed: u64,
    /// Sequence of the last record kept.
    pub last_sequence: u64,
    /// `latest_offset` after recovery.
    pub latest_offset: u64,
    /// The WAL directory was empty: segment 1 was created.
    pub created: bool,
}

pub(crate) fn recover(
    storage: &dyn Storage,
    counters: &IoCounters,
    checkpoint: Option<CheckpointPosition>,
    replay: &mut ReplayFn<'_>,
    replayed: &mut dyn FnMut() -> Result<(), WalError>,
) -> Result<(RecoveredState, RecoveryReport), WalError> {
    let analysis = analyze::analyze(storage, counters, checkpoint, StartRule::FromOne, replay)?;
    replayed()?;
    let mut report = RecoveryReport {
        records_replayed: analysis.records_delivered,
        last_sequence: analysis.last_sequence,
        ..RecoveryReport::default()
    };
    let mut segments = apply_cuts(storage, counters, &analysis, &mut report)?;
    if segments.is_empty() {
        let name = segment_file_name(1);
        storage
            .create(&name)
            .map_err(WalError::io(format!("create {name}")))?;
        segments.push_back(SegmentInfo {
            id: 1,
            logical_len: 0,
        });
        report.created = true;
    }
    let newest = segments.back().copied().unwrap_or(SegmentInfo {
        id: 1,
        logical_len: 0,
    });
    let name = segment_file_name(newest.id);
    let newest_file = storage
        .open(&name)
        .map_err(WalError::io(format!("open {name}")))?;
    if newest.logical_len > 0 {
        // Records the previous process wrote may still be only in the page cache.
        newest_file
            .sync_data()
            .map_err(WalError::io(format!("sync {name}")))?;
        counters.fsyncs.fetch_add(1, Ordering::Relaxed);
    }
    // Unconditionally: the newest segment may be an empty one a kill left between its create
    // and the directory fsync, and the `wal/` directory itself may be as new as this start-up.
    // Records written from here on are acknowledged, so every entry leading to them must be
    // durable first.
    sync_dir(storage)?;
    storage.sync_parent_dir().map_err(WalError::io(
        "sync the data directory (the WAL directory's entry)",
    ))?;
    report.latest_offset = offset_of(newest.id, newest.logical_len);
    let state = RecoveredState {
        segments,
        newest_file,
        last_sequence: analysis.last_sequence,
    };
    Ok((state, report))
}

/// Makes the cuts durable in plan order (deletions, newest first; then a directory fsync; then
/// truncate + fdatasync) and returns the kept segments with their logical lengths. A crash at
/// any step leaves a WAL the next recovery cuts the same way.
fn apply_cuts(
    storage: &dyn Storage,
    counters: &IoCounters,
    analysis: &Analysis,
    report: &mut RecoveryReport,
) -> Result<VecDeque<SegmentInfo>, WalError> {
    let mut segments: VecDeque<SegmentInfo> = analysis
        .segments
        .iter()
        .map(|s| SegmentInfo {
            id: s.id,
            logical_len: s.logical_len,
        })
        .collect();
    let mut directory_changed = false;
    for cut in &analysis.cuts {
        match cut {
            PlannedCut::Truncate {
                id,
                position,
                file_len,
                reason,
            } => {
                if directory_changed {
                    // The deletions must be durable before the cut: a truncated unit segment
                    // followed by a resurrected later segment would read as corruption.
                    sync_dir(storage)?;
                    directory_changed = false;
                }
                let name = segment_file_name(*id);
                let file = storage
                    .open(&name)
                    .map_err(WalError::io(format!("open {name}")))?;
                file.set_len(*position)
                    .map_err(WalError::io(format!("truncate {name}")))?;
                file.sync_data()
                    .map_err(WalError::io(format!("sync {name}")))?;
                counters.fsyncs.fetch_add(1, Ordering::Relaxed);
                if let Some(s) = segments.iter_mut().find(|s| s.id == *id) {
                    s.logical_len = *position;
                }
                report.cuts.push(Cut {
                    segment: name,
                    bytes_cut: file_len - position,
                    deleted: false,
                    reason: reason.clone(),
                });
            }
            PlannedCut::Delete { id, file_len } => {
                let name = segment_file_name(*id);
                storage
                    .remove(&name)
                    .map_err(WalError::io(format!("delete {name}")))?;
                segments.retain(|s| s.id != *id);
                directory_changed = true;
                report.cuts.push(Cut {
                    segment: name,
                    bytes_cut: *file_len,
                    deleted: true,
                    reason: "holds the rest of an incomplete atomic unit".to_owned(),
                });
            }
        }
    }
    // Deletions not yet synced here are synced by `recover` before the WAL is used.
    Ok(segments)
}

fn sync_dir(storage: &dyn Storage) -> Result<(), WalError> {
    storage
        .sync_dir()
        .map_err(WalError::io("sync the WAL directory"))
}
