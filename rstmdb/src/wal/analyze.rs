//! Validation of a whole WAL (spec §6.1 recovery steps 2–5) without changing anything: it
//! returns the cuts recovery must make, or the first corruption. Recovery, `verify` and
//! `repair` share it, so they can never disagree about what is valid.

use super::error::{Corruption, WalError};
use super::record::{RecordHeader, UnitMarker};
use super::scan::{self, RecordView, SegmentScan, Tail};
use super::segment::{
    MAX_SEGMENT_ID, offset_of, position_of, segment_file_name, segment_ids, segment_of,
};
use super::stats::IoCounters;
use super::storage::Storage;

/// What a checkpoint tells recovery (written by the checkpoint module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPosition {
    /// Exclusive bound: the checkpoint covers every record below this offset.
    pub checkpoint_offset: u64,
    /// The sequence of the last record the checkpoint covers.
    pub last_sequence: u64,
}

/// Which sequence the first record must carry when there is no checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartRule {
    /// Spec §6.1: without a checkpoint, the oldest record's sequence is 1.
    FromOne,
    /// Offline tools after compaction: the checkpoint is unknown, accept any start.
    Any,
}

/// The sequences a record may carry: they start at 1 (spec §6.1) and every record has a successor.
const SEQUENCE_RANGE: std::ops::RangeInclusive<u64> = 1..=u64::MAX - 1;

/// A change recovery must make before appending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedCut {
    /// Truncate segment `id` to `position` bytes (from `file_len`).
    Truncate {
        id: u64,
        position: u64,
        file_len: u64,
        reason: String,
    },
    /// Delete segment `id` (its records belong to an incomplete unit at the end).
    Delete { id: u64, file_len: u64 },
}

/// The outcome of a successful analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// Every segment as scanned (before cuts).
    pub segments: Vec<SegmentScan>,
    pub cuts: Vec<PlannedCut>,
    /// The sequence of the last record kept (after cuts), or the checkpoint's when none is kept.
    pub last_sequence: u64,
    /// Records handed to the caller.
    pub records_delivered: u64,
}

pub type ReplayFn<'a> =
    dyn FnMut(RecordView<'_>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> + 'a;

/// An atomic unit whose records are still being read; its records are delivered only once all
/// of them have been seen.
struct OpenUnit {
    start_offset: u64,
    start_sequence: u64,
    count: u32,
    next_index: u32,
    buffered: Vec<(u64, RecordHeader, Vec<u8>)>,
}

struct Validator<'r, 'f> {
    checkpoint: Option<CheckpointPosition>,
    start_rule: StartRule,
    prev_sequence: Option<u64>,
    crossed_checkpoint: bool,
    unit: Option<OpenUnit>,
    /// The first record read (a unit's tail there may belong to a compacted segment).
    first_record: bool,
    delivered: u64,
    deliver: &'r mut ReplayFn<'f>,
}

impl Validator<'_, '_> {
    fn expected_sequence(&self) -> u64 {
        match (self.prev_sequence, self.checkpoint) {
            (Some(p), _) => p + 1,
            (None, Some(c)) => c.last_sequence + 1,
            (None, None) => 1,
        }
    }

    fn wanted(&self, offset: u64) -> bool {
        self.checkpoint
            .is_none_or(|c| offset >= c.checkpoint_offset)
    }

    fn corrupt(&self, offset: u64, expected_sequence: u64, reason: String) -> WalError {
        WalError::Corrupt(Corruption {
            segment: segment_file_name(segment_of(offset)),
            offset,
            expected_sequence,
            reason,
        })
    }

    fn hand_over(
        &mut self,
        offset: u64,
        header: RecordHeader,
        payload: &[u8],
    ) -> Result<(), WalError> {
        self.delivered += 1;
        (self.deliver)(RecordView {
            offset,
            header,
            payload,
        })
        .map_err(|source| WalError::Replay { offset, source })
    }

    fn on_record(&mut self, r: RecordView<'_>) -> Result<(), WalError> {
        let seq = r.header.sequence;
        let expected = self.expected_sequence();
        // Sequences start at 1 and each record's successor is one more, so 0 and u64::MAX
        // (which has no successor) are never written; refusing them here keeps every `± 1`
        // on sequences below in range, whatever a damaged or crafted segment holds.
        if !SEQUENCE_RANGE.contains(&seq) {
            let reason = format!("record carries sequence {seq}, outside {SEQUENCE_RANGE:?}");
            return Err(self.corrupt(r.offset, expected, reason));
        }
        let first = std::mem::replace(&mut self.first_record, false);
        let sequence_ok = match self.prev_sequence {
            Some(_) => seq == expected,
            None => self.start_rule == StartRule::Any || self.checkpoint.is_some() || seq == 1,
        };
        if !sequence_ok {
            return Err(self.corrupt(r.offset, expected, format!("record carries sequence {seq}")));
        }
        if !self.crossed_checkpoint && self.wanted(r.offset) {
            self.crossed_checkpoint = true;
            if let Some(c) = self.checkpoint
                && seq != c.last_sequence + 1
            {
                let reason = format!(
                    "first record after the checkpoint carries sequence {seq}, not {}",
                    c.last_sequence + 1
                );
                return Err(self.corrupt(r.offset, c.last_sequence + 1, reason));
            }
        }
        self.prev_sequence = Some(seq);
        self.track_unit(r, first)
    }

    fn track_unit(&mut self, r: RecordView<'_>, first: bool) -> Result<(), WalError> {
        let seq = r.header.sequence;
        match (&mut self.unit, r.header.unit) {
            (None, None) => {
                if self.wanted(r.offset) {
                    self.hand_over(r.offset, r.header, r.payload)?;
                }
            }
            (None, Some(UnitMarker { index: 0, count })) => {
                self.unit = Some(OpenUnit {
                    start_offset: r.offset,
                    start_sequence: seq,
                    count,
                    next_index: 0,
                    buffered: Vec::new(),
                });
                return self.track_unit(r, first);
            }
            (None, Some(u)) => {
                // The rest of a unit whose first records were in a compacted segment: the
                // checkpoint covers the whole unit, so nothing is delivered.
                let compacted_leftover =
                    first && (self.start_rule == StartRule::Any || !self.wanted(r.offset));
                let leftover_continues = u.index + 1 < u.count;
                if !compacted_leftover {
                    let reason = format!(
                        "unit record {} of {} without its first record",
                        u.index, u.count
                    );
                    return Err(self.corrupt(r.offset, seq, reason));
                }
                self.first_record = leftover_continues;
            }
            (Some(open), Some(u)) if u.index == open.next_index && u.count == open.count => {
                if self
                    .checkpoint
                    .is_none_or(|c| r.offset >= c.checkpoint_offset)
                {
                    open.buffered.push((r.offset, r.header, r.payload.to_vec()));
                }
                open.next_index += 1;
                if open.next_index == open.count
                    && let Some(done) = self.unit.take()
                {
                    for (offset, header, payload) in done.buffered {
                        self.hand_over(offset, header, &payload)?;
                    }
                }
            }
            (Some(open), _) => {
                let reason = format!(
                    "atomic unit at offset {} lacks records ({} of {}) and is followed by a record \
                     that does not belong to it",
                    open.start_offset, open.next_index, open.count
                );
                return Err(self.corrupt(r.offset, seq, reason));
            }
        }
        Ok(())
    }
}

/// Scans every segment in id order, validating and delivering records at or above the
/// checkpoint. Returns the cuts recovery must make, or the first corruption.
pub fn analyze(
    storage: &dyn Storage,
    counters: &IoCounters,
    checkpoint: Option<CheckpointPosition>,
    start_rule: StartRule,
    deliver: &mut ReplayFn<'_>,
) -> Result<Analysis, WalError> {
    if let Some(c) = checkpoint
        && c.last_sequence == u64::MAX
    {
        // Not a record sequence (see `SEQUENCE_RANGE`): no record can follow this checkpoint.
        let reason = format!(
            "the checkpoint's last sequence {} has no successor",
            c.last_sequence
        );
        return Err(WalError::Corrupt(Corruption {
            segment: segment_file_name(segment_of(c.checkpoint_offset)),
            offset: c.checkpoint_offset,
            expected_sequence: c.last_sequence,
            reason,
        }));
    }
    let names = storage
        .list()
        .map_err(WalError::io("list the WAL directory"))?;
    let ids = segment_ids(&names);
    if let Some(&id) = ids.last()
        && id > MAX_SEGMENT_ID
    {
        // Its offsets would lose the id bits and alias those of a low segment.
        return Err(WalError::UnaddressableSegment {
            name: segment_file_name(id),
            last_id: MAX_SEGMENT_ID,
        });
    }
    let mut v = Validator {
        checkpoint,
        start_rule,
        prev_sequence: None,
        crossed_checkpoint: false,
        unit: None,
        first_record: true,
        delivered: 0,
        deliver,
    };
    let mut segments = Vec::with_capacity(ids.len());
    let mut cuts = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        if i > 0 && id != ids[i - 1] + 1 {
            let missing = ids[i - 1] + 1;
            let reason = format!("segment {} is missing", segment_file_name(missing));
            return Err(v.corrupt(offset_of(missing, 0), v.expected_sequence(), reason));
        }
        let name = segment_file_name(id);
        let file = storage
            .open(&name)
            .map_err(WalError::io(format!("open {name}")))?;
        let s = scan::scan_segment(file.as_ref(), id, counters, &mut |r| v.on_record(r))?;
        let newest = i + 1 == ids.len();
        let tail_at = offset_of(id, s.logical_len);
        // The sequence the invalid bytes at the end of the sequential read should have held.
        let missing_sequence = v.expected_sequence();
        match (s.tail, newest) {
            (Tail::Clean, _) | (Tail::Zeros, false) => {}
            (Tail::Zeros, true) | (Tail::Invalid(_), true) => cuts.push(PlannedCut::Truncate {
                id,
                position: s.logical_len,
                file_len: s.file_len,
                reason: match s.tail {
                    Tail::Invalid(e) => format!("torn tail: {e}"),
                    _ => "zero-filled tail".to_owned(),
                },
            }),
            // A hole in unsynced writes (a power loss wrote a later page back and not an
            // earlier one): every record after it was written while the missing one was not yet
            // durable, so none of them can have been acknowledged under `every_write`.
            (
                Tail::InvalidThenValid {
                    reason,
                    valid_at,
                    durable_when_written,
                },
                true,
            ) if durable_when_written < missing_sequence => cuts.push(PlannedCut::Truncate {
                id,
                position: s.logical_len,
                file_len: s.file_len,
                reason: format!(
                    "torn tail: {reason} where sequence {missing_sequence} should start, and the \
                     records from byte {valid_at} on were written before it was durable"
                ),
            }),
            (Tail::Invalid(e), false) => {
                let reason =
                    format!("non-zero bytes after the last record of an older segment ({e})");
                return Err(v.corrupt(tail_at, v.expected_sequence(), reason));
            }
            (
                Tail::InvalidThenValid {
                    reason, valid_at, ..
                },
                _,
            ) => {
                let reason = format!(
                    "invalid record ({reason}) followed by a valid record at byte {valid_at}"
                );
                return Err(v.corrupt(tail_at, missing_sequence, reason));
            }
        }
        segments.push(s);
    }
    let mut last_sequence = v
        .prev_sequence
        .or(checkpoint.map(|c| c.last_sequence))
        .unwrap_or(0);
    let mut kept_end = segments
        .last()
        .map_or(offset_of(1, 0), |s| offset_of(s.id, s.logical_len));
    if let Some(open) = v.unit.take() {
        cut_incomplete_unit(&segments, &mut cuts, &open);
        last_sequence = open.start_sequence - 1;
        kept_end = open.start_offset;
    }
    // A WAL that ends below the checkpoint lost records the checkpoint covers (they were synced
    // before it was written): appending there would give new records offsets the next replay
    // skips, and sequences the checkpoint already used.
    if let Some(c) = checkpoint
        && kept_end < c.checkpoint_offset
    {
        let reason = format!(
            "the WAL ends at offset {kept_end}, below the checkpoint offset {}",
            c.checkpoint_offset
        );
        return Err(v.corrupt(kept_end, last_sequence + 1, reason));
    }
    // Records the checkpoint covers, with none after it: the last of them must be the
    // checkpoint's last record. Otherwise appending would continue from the WAL's sequence while
    // the next recovery expects the checkpoint's, and that WAL would never open again. (When a
    // record follows the checkpoint, `on_record` already checks both sequences meet.)
    if let Some(c) = checkpoint
        && !v.crossed_checkpoint
        && v.prev_sequence.is_some()
        && last_sequence != c.last_sequence
    {
        let reason = format!(
            "the last record below the checkpoint carries sequence {last_sequence}, not the \
             checkpoint's last sequence {}",
            c.last_sequence
        );
        return Err(v.corrupt(kept_end, c.last_sequence + 1, reason));
    }
    Ok(Analysis {
        segments,
        cuts,
        last_sequence,
        records_delivered: v.delivered,
    })
}

/// Spec §6.1 step 4: the unit is cut as a whole, later segments are deleted. The deletions come
/// first, newest first, and the truncation last: a crash part-way then leaves the unit's start
/// and a gap-free run of its later segments, which the next recovery cuts the same way (the
/// other order left a truncated segment followed by the unit's remainder: corruption).
fn cut_incomplete_unit(segments: &[SegmentScan], cuts: &mut Vec<PlannedCut>, open: &OpenUnit) {
    let unit_segment = segment_of(open.start_offset);
    cuts.retain(|c| !matches!(c, PlannedCut::Truncate { id, .. } if *id > unit_segment));
    let position = position_of(open.start_offset);
    let reason = format!(
        "atomic unit of {} records ends the WAL with only {} of them",
        open.count, open.next_index
    );
    let file_len = match cuts
        .iter()
        .position(|c| matches!(c, PlannedCut::Truncate { id, .. } if *id == unit_segment))
    {
        Some(i) => match cuts.remove(i) {
            PlannedCut::Truncate { file_len, .. } => file_len,
            PlannedCut::Delete { file_len, .. } => file_len,
        },
        None => segments
            .iter()
            .find(|s| s.id == unit_segment)
            .map_or(0, |s| s.file_len),
    };
    for s in segments.iter().rev().filter(|s| s.id > unit_segment) {
        cuts.push(PlannedCut::Delete {
            id: s.id,
            file_len: s.file_len,
        });
    }
    cuts.push(PlannedCut::Truncate {
        id: unit_segment,
        position,
        file_len,
        reason,
    });
}
