//! Offline repair of a corrupt WAL (`rstmdb wal-inspect repair`): cut at the first invalid
//! byte, keeping every cut byte in a `<segment>.corrupt` file beside the segment (or
//! `<segment>.corrupt.N` when an earlier repair's file is there: none is ever replaced).

use super::analyze::{self, Analysis, ReplayFn, StartRule};
use super::error::{Corruption, WalError};
use super::segment::{position_of, segment_file_name, segment_ids, segment_of};
use super::stats::IoCounters;
use super::storage::{Storage, read_exact_at};

/// Most `.corrupt` files kept per segment (`<segment>.corrupt`, then `.corrupt.1` ...).
pub const MAX_CORRUPT_FILES_PER_SEGMENT: u32 = 1000;

/// One change a repair makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairAction {
    /// Copy bytes `position..` of the segment to the new file `aside`, then truncate it there.
    Truncate {
        segment: String,
        position: u64,
        bytes_cut: u64,
        aside: String,
    },
    /// Rename a later segment to `aside`.
    SetAside {
        segment: String,
        bytes: u64,
        aside: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairPlan {
    pub corruption: Corruption,
    pub actions: Vec<RepairAction>,
}

/// Validates the WAL as an offline tool does: without a checkpoint, and accepting any first
/// sequence once segment 1 has been compacted away.
pub fn verify(storage: &dyn Storage, counters: &IoCounters) -> Result<Analysis, WalError> {
    verify_with(storage, counters, &mut |_| Ok(()))
}

/// [`verify`], showing every valid record to `visit` (for progress reporting).
pub fn verify_with(
    storage: &dyn Storage,
    counters: &IoCounters,
    visit: &mut ReplayFn<'_>,
) -> Result<Analysis, WalError> {
    let names = storage
        .list()
        .map_err(WalError::io("list the WAL directory"))?;
    let rule = match segment_ids(&names).first() {
        Some(1) | None => StartRule::FromOne,
        Some(_) => StartRule::Any,
    };
    analyze::analyze(storage, counters, None, rule, visit)
}

/// The cut that removes the first corruption, or `None` when the WAL is valid (a torn tail is
/// not corruption: recovery truncates it by itself).
pub fn plan(storage: &dyn Storage, counters: &IoCounters) -> Result<Option<RepairPlan>, WalError> {
    let corruption = match verify(storage, counters) {
        Ok(_) => return Ok(None),
        Err(WalError::Corrupt(c)) => c,
        Err(e) => return Err(e),
    };
    let names = storage
        .list()
        .map_err(WalError::io("list the WAL directory"))?;
    let cut_segment = segment_of(corruption.offset);
    let mut actions = Vec::new();
    // Later segments first, newest first, and the cut last: a crash part-way leaves the corrupt
    // segment whole, followed by a gap-free run of segments, so running repair again finds the
    // same corruption and plans the same cut (cutting first left a clean-looking segment
    // followed by the rest: a different "corruption" at the next segment).
    for id in segment_ids(&names)
        .into_iter()
        .rev()
        .filter(|id| *id >= cut_segment)
    {
        let segment = segment_file_name(id);
        let file = storage
            .open(&segment)
            .map_err(WalError::io(format!("open {segment}")))?;
        let len = file
            .len()
            .map_err(WalError::io(format!("stat {segment}")))?;
        if id == cut_segment {
            let position = position_of(corruption.offset);
            if position < len {
                let aside = free_aside_name(&names, &segment)?;
                actions.push(RepairAction::Truncate {
                    segment,
                    position,
                    bytes_cut: len - position,
                    aside,
                });
            }
        } else {
            let aside = free_aside_name(&names, &segment)?;
            actions.push(RepairAction::SetAside {
                segment,
                bytes: len,
                aside,
            });
        }
    }
    Ok(Some(RepairPlan {
        corruption,
        actions,
    }))
}

/// `<segment>.corrupt`, or the first `<segment>.corrupt.N` not in `names`: the bytes an earlier
/// repair set aside are kept, never replaced.
fn free_aside_name(names: &[String], segment: &str) -> Result<String, WalError> {
    (0..MAX_CORRUPT_FILES_PER_SEGMENT)
        .map(|n| match n {
            0 => format!("{segment}.corrupt"),
            n => format!("{segment}.corrupt.{n}"),
        })
        .find(|name| !names.contains(name))
        .ok_or_else(|| {
            WalError::Config(format!(
                "{segment} already has {MAX_CORRUPT_FILES_PER_SEGMENT} .corrupt files; move them \
                 out of the WAL directory"
            ))
        })
}

/// Carries out a plan, in its order. The cut bytes are written and synced to the `.corrupt`
/// file before the segment is truncated, so a crash during repair loses nothing; every rename is
/// made durable before the next step, so a crash leaves a WAL the next repair plans the same
/// cut for.
pub fn apply(storage: &dyn Storage, plan: &RepairPlan) -> Result<(), WalError> {
    for action in &plan.actions {
        match action {
            RepairAction::Truncate {
                segment,
                position,
                bytes_cut,
                aside,
            } => {
                let file = storage
                    .open(segment)
                    .map_err(WalError::io(format!("open {segment}")))?;
                let mut cut = vec![0u8; *bytes_cut as usize];
                read_exact_at(file.as_ref(), *position, &mut cut)
                    .map_err(WalError::io(format!("read {segment}")))?;
                // A new file (create fails if it exists): an earlier repair's is never replaced.
                let copy = storage
                    .create(aside)
                    .map_err(WalError::io(format!("create {aside}")))?;
                copy.write_at(0, &cut)
                    .map_err(WalError::io(format!("write {aside}")))?;
                copy.sync_data()
                    .map_err(WalError::io(format!("sync {aside}")))?;
                storage
                    .sync_dir()
                    .map_err(WalError::io("sync the WAL directory"))?;
                file.set_len(*position)
                    .map_err(WalError::io(format!("truncate {segment}")))?;
                file.sync_data()
                    .map_err(WalError::io(format!("sync {segment}")))?;
            }
            RepairAction::SetAside { segment, aside, .. } => {
                // `aside` was free when the plan was made, under the data directory's lock.
                storage
                    .rename(segment, aside)
                    .map_err(WalError::io(format!("rename {segment}")))?;
                storage
                    .sync_dir()
                    .map_err(WalError::io("sync the WAL directory"))?;
            }
        }
    }
    Ok(())
}
