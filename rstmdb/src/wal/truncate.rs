//! Cutting the tail of a running WAL back to a record (`docs/wal-format.md` §9). Cluster mode
//! needs it: Raft replaces a follower's uncommitted entries that conflict with the leader's
//! (`docs/cluster.md` section 3). A standalone server never cuts its tail while it runs.
//!
//! After a cut the WAL is exactly as if the removed records had never been appended: the next
//! record gets the removed first record's offset and sequence. That is what keeps offsets the
//! same on every node.

use super::error::WalError;
use super::record::{self, HEADER_LEN};
use super::segment::{offset_of, position_of, segment_file_name, segment_of};
use super::storage::{SegmentFile, read_exact_at};
use super::sync::lock;
use super::writer::{AppendState, Wal};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What a cut removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CutTail {
    /// Records removed (0 when the offset was already the end).
    pub records: u64,
    /// Bytes removed, over every segment.
    pub bytes: u64,
}

impl Wal {
    /// Removes every record at or after `offset`, which must be the offset of a record that is
    /// not inside an atomic unit (or the WAL's end, which removes nothing). The cut is durable when this returns: segments after
    /// `offset`'s are deleted, newest first, then `offset`'s segment is truncated and synced,
    /// so a crash at any point leaves a prefix of the records, never a hole.
    ///
    /// Appends wait meanwhile. An fdatasync that started before the cut no longer counts once
    /// it ends (its bytes are gone). A failure half-way stops the WAL, as a failed fdatasync
    /// does: what is on disk is no longer known.
    ///
    /// Nobody may still wait for the durability of a record being cut: such a wait would end
    /// once new records pass its offset, as if the cut record had been made durable. The Raft
    /// log cuts only entries whose flush openraft has already seen (`docs/cluster.md` section 5).
    pub fn truncate_to(&self, offset: u64) -> Result<CutTail, WalError> {
        self.durability.check_failure()?;
        let mut a = lock(&self.append);
        let end = offset_of(a.newest().id, a.newest().logical_len);
        if offset == end {
            return Ok(CutTail::default());
        }
        let cut = self.plan_cut(&a, offset, end)?;
        let removed = CutTail {
            records: a.next_sequence - cut.first_sequence,
            bytes: a
                .segments
                .iter()
                .filter(|s| s.id >= cut.segment)
                .map(|s| s.logical_len)
                .sum::<u64>()
                - cut.position,
        };
        if let Err(message) = self.cut_files(&a, &cut) {
            let message = format!("cutting the WAL back to offset {offset} failed: {message}");
            self.durability.fail(message.clone());
            return Err(WalError::SyncFailed { message });
        }
        while a.newest().id > cut.segment {
            a.segments.pop_back();
        }
        if let Some(newest) = a.segments.back_mut() {
            newest.logical_len = cut.position;
        }
        a.file = Arc::clone(&cut.file);
        a.next_sequence = cut.first_sequence;
        self.durability
            .cut_back(&cut.file, offset, cut.first_sequence - 1);
        Ok(removed)
    }

    /// Checks that `offset` starts a record of a retained segment, and finds what the cut
    /// needs.
    fn plan_cut(&self, a: &AppendState, offset: u64, end: u64) -> Result<Cut, WalError> {
        let not_a_record = |why: &str| {
            WalError::Config(format!(
                "cannot cut the WAL back to offset {offset}: {why} (its records span {}..{end})",
                offset_of(a.segments[0].id, 0)
            ))
        };
        if offset > end {
            return Err(not_a_record("past the end"));
        }
        let (segment, position) = (segment_of(offset), position_of(offset));
        let Some(info) = a.segments.iter().find(|s| s.id == segment) else {
            return Err(not_a_record("not in a retained segment"));
        };
        if position >= info.logical_len {
            return Err(not_a_record("not the start of a record"));
        }
        let file = if segment == a.newest().id {
            Arc::clone(&a.file)
        } else {
            let name = segment_file_name(segment);
            self.storage
                .open(&name)
                .map_err(WalError::io(format!("open {name}")))?
        };
        let mut header = [0u8; HEADER_LEN];
        read_exact_at(file.as_ref(), position, &mut header)
            .map_err(WalError::io(format!("read the record at offset {offset}")))?;
        let first = record::decode_header(&header)
            .map_err(|e| not_a_record(&format!("no record starts there ({e})")))?;
        if first.unit.is_some_and(|unit| unit.index != 0) {
            // Recovery would cut the rest of the unit at the next start-up.
            return Err(not_a_record("inside an atomic unit"));
        }
        let first_sequence = first.sequence;
        if first_sequence >= a.next_sequence {
            return Err(not_a_record("its sequence is past the last record"));
        }
        Ok(Cut {
            segment,
            position,
            file,
            first_sequence,
        })
    }

    /// Deletes the segments after the cut, newest first, then truncates and syncs the cut one.
    fn cut_files(&self, a: &AppendState, cut: &Cut) -> Result<(), String> {
        let later = a.segments.iter().rev().filter(|s| s.id > cut.segment);
        for segment in later {
            let name = segment_file_name(segment.id);
            self.storage
                .remove(&name)
                .map_err(|e| format!("remove {name}: {e}"))?;
        }
        self.storage
            .sync_dir()
            .map_err(|e| format!("fsync of the WAL directory: {e}"))?;
        self.counters.fsyncs.fetch_add(2, Ordering::Relaxed);
        let name = segment_file_name(cut.segment);
        cut.file
            .set_len(cut.position)
            .and_then(|()| cut.file.sync_data())
            .map_err(|e| format!("truncate {name} to {} bytes: {e}", cut.position))
    }
}

/// Where a cut lands.
struct Cut {
    segment: u64,
    position: u64,
    file: Arc<dyn SegmentFile>,
    /// The sequence of the first record removed: the next append's.
    first_sequence: u64,
}
