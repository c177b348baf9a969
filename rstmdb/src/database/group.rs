//! One group of commands: their encoded records, where each will land, and one append.

use super::errors;
use crate::engine::Record;
use crate::wal::Placement;
use crate::wal::{MAX_RECORD_PAYLOAD_BYTES, NewRecord, SyncBy, UnitMarker, Wal, WalError};
use rstmdb_protocol::RcpError;

/// An encoded record waiting for the group's append.
#[derive(Debug)]
struct PendingRecord {
    kind: u8,
    timestamp_ms: i64,
    payload: Vec<u8>,
    offset: u64,
    /// Records of one atomic BATCH share a unit number; `None` for independent records.
    unit: Option<usize>,
}

/// A record of a group handed to a Raft log (cluster mode): the entry's unit covers the whole
/// group, so an atomic BATCH needs no unit of its own (`docs/cluster.md` section 2).
#[derive(Debug)]
pub struct GroupRecord {
    pub kind: u8,
    pub timestamp_ms: i64,
    /// JSON text, as `serde_json` encoded the engine's record.
    pub payload: Vec<u8>,
}

/// A position in the group to cut back to when an atomic batch fails.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    records: usize,
    placement: Placement,
}

/// The records of one group, in execution order.
#[derive(Debug)]
pub(crate) struct Group {
    records: Vec<PendingRecord>,
    placement: Placement,
    next_unit: usize,
}

impl Group {
    pub(crate) fn new(placement: Placement) -> Group {
        Group {
            records: Vec::new(),
            placement,
            next_unit: 0,
        }
    }

    /// Encodes a record the engine wants to write and returns the offset it will get; refuses
    /// a payload over the WAL's limit (`record_too_large`, and the engine changes nothing).
    pub(crate) fn assign(&mut self, record: &Record) -> Result<u64, RcpError> {
        let payload = serde_json::to_vec(record).map_err(errors::internal)?;
        if payload.len() > MAX_RECORD_PAYLOAD_BYTES {
            return Err(RcpError::record_too_large(
                payload.len(),
                MAX_RECORD_PAYLOAD_BYTES,
            ));
        }
        let offset = self.placement.place(payload.len());
        self.records.push(PendingRecord {
            kind: record.kind_code(),
            timestamp_ms: record.timestamp(),
            payload,
            offset,
            unit: None,
        });
        Ok(offset)
    }

    /// Places the header record a Raft entry starts with (cluster mode), before any record of
    /// the group; returns its offset.
    pub(crate) fn place_header(&mut self, payload_len: usize) -> u64 {
        assert!(self.records.is_empty(), "the header goes first");
        self.placement.place(payload_len)
    }

    /// The records, for a Raft entry.
    pub(crate) fn into_records(self) -> Vec<GroupRecord> {
        self.records
            .into_iter()
            .map(|r| GroupRecord {
                kind: r.kind,
                timestamp_ms: r.timestamp_ms,
                payload: r.payload,
            })
            .collect()
    }

    pub(crate) fn mark(&self) -> Mark {
        Mark {
            records: self.records.len(),
            placement: self.placement,
        }
    }

    /// Drops every record placed after `mark` (a failed atomic batch writes nothing).
    pub(crate) fn cut_back(&mut self, mark: Mark) {
        self.records.truncate(mark.records);
        self.placement = mark.placement;
    }

    /// Makes the records placed since `mark` one atomic unit (spec §6.8).
    pub(crate) fn seal_unit(&mut self, mark: Mark) {
        let unit = self.next_unit;
        self.next_unit += 1;
        for record in &mut self.records[mark.records..] {
            record.unit = Some(unit);
        }
    }

    /// The end of the group's last record (the WAL's `latest_offset` once it is written).
    pub(crate) fn end(&self) -> u64 {
        self.placement.end()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Appends the whole group in ONE WAL append (each atomic BATCH marked as a unit), so an
    /// append that fails leaves none of the group on disk and the sequencer can undo all of it.
    /// Checks that the WAL put every record where the engine was told it would be.
    pub(crate) fn write(&self, wal: &Wal, sync_by: SyncBy) -> Result<(), WalError> {
        let new: Vec<NewRecord<'_>> = self
            .records
            .iter()
            .map(|r| NewRecord {
                kind: r.kind,
                timestamp_ms: r.timestamp_ms,
                payload: &r.payload,
            })
            .collect();
        let appended = wal.append_mixed(&new, &self.unit_markers(), sync_by)?;
        // Invariant: the engine already applied these records at the planned offsets. A
        // disagreement is a bug that must stop the writer before anything is acknowledged.
        let planned: Vec<u64> = self.records.iter().map(|r| r.offset).collect();
        assert_eq!(
            appended.offsets, planned,
            "WAL and sequencer placement disagree"
        );
        Ok(())
    }

    /// Record i's `{index, count}` within its unit, or `None` for an independent record.
    fn unit_markers(&self) -> Vec<Option<UnitMarker>> {
        let mut markers = Vec::with_capacity(self.records.len());
        let mut start = 0;
        while start < self.records.len() {
            let unit = self.records[start].unit;
            let len = self.records[start..]
                .iter()
                .take_while(|r| r.unit == unit)
                .count();
            for index in 0..len {
                markers.push(unit.map(|_| UnitMarker {
                    index: index as u32,
                    count: len as u32,
                }));
            }
            start += len;
        }
        markers
    }
}
