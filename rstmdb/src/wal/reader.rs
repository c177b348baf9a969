//! Reading records back (WAL_READ, watch catch-up, tools): records with offset >= X across
//! segments in order, up to a bound, counting `reads` and `bytes_read`.

use super::error::{Corruption, WalError};
use super::record::{self, HEADER_LEN, RecordHeader, UnitMarker};
use super::scan::Window;
use super::segment::{offset_of, position_of, segment_file_name, segment_ids, segment_of};
use super::stats::IoCounters;
use super::storage::{SegmentFile, Storage};
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

/// A record read back from a segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    pub offset: u64,
    pub sequence: u64,
    pub kind: u8,
    pub timestamp_ms: i64,
    pub unit: Option<UnitMarker>,
    pub payload: Vec<u8>,
}

impl WalRecord {
    /// The record's end (exclusive): its offset plus its size.
    pub fn end(&self) -> u64 {
        self.offset + HEADER_LEN as u64 + self.payload.len() as u64
    }
}

/// An iterator over `Result<WalRecord, WalError>`; it stops after the first error.
#[derive(Debug)]
pub struct WalReader {
    storage: Arc<dyn Storage>,
    counters: Arc<IoCounters>,
    from_offset: u64,
    until_offset: u64,
    pending_segments: Option<VecDeque<u64>>,
    current: Option<OpenSegment>,
    done: bool,
    /// `from_offset` is known to be where a record starts: the first segment is read from
    /// there instead of from its start.
    from_record: bool,
}

#[derive(Debug)]
struct OpenSegment {
    id: u64,
    file: Arc<dyn SegmentFile>,
    file_len: u64,
    position: u64,
    /// Reused read buffer, refilled in large chunks.
    buf: Vec<u8>,
    buf_start: u64,
}

impl WalReader {
    /// Records with `from_offset <= offset` and `end <= until_offset` (pass the commit position
    /// so uncommitted records stay invisible, or `u64::MAX` for offline tools).
    pub fn new(
        storage: Arc<dyn Storage>,
        counters: Arc<IoCounters>,
        from_offset: u64,
        until_offset: u64,
    ) -> Self {
        Self {
            storage,
            counters,
            from_offset,
            until_offset,
            pending_segments: None,
            current: None,
            done: false,
            from_record: false,
        }
    }

    /// [`WalReader::new`] for a `from_offset` where a record starts (the caller wrote it
    /// there, or read it from an index): reading begins at it, not at the start of its
    /// segment, so the cost does not grow with the segment. An offset that is not a record's
    /// start reads as a corrupt record there.
    pub fn from_record(
        storage: Arc<dyn Storage>,
        counters: Arc<IoCounters>,
        from_offset: u64,
        until_offset: u64,
    ) -> Self {
        Self {
            from_record: true,
            ..Self::new(storage, counters, from_offset, until_offset)
        }
    }

    /// The bound it was created with: it yields nothing at or past it, even once later
    /// records are committed.
    pub fn until_offset(&self) -> u64 {
        self.until_offset
    }

    fn next_segment(&mut self) -> Result<bool, WalError> {
        let pending = match &mut self.pending_segments {
            Some(p) => p,
            None => {
                let names = self
                    .storage
                    .list()
                    .map_err(WalError::io("list the WAL directory"))?;
                let (from, until) = (segment_of(self.from_offset), segment_of(self.until_offset));
                let ids = segment_ids(&names)
                    .into_iter()
                    .filter(|id| *id >= from && *id <= until);
                self.pending_segments.insert(ids.collect())
            }
        };
        while let Some(id) = pending.pop_front() {
            let name = segment_file_name(id);
            let file = match self.storage.open(&name) {
                Ok(f) => f,
                // Deleted by compaction since the listing: its records are gone, move on.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(WalError::Io {
                        action: format!("open {name}"),
                        source: e,
                    });
                }
            };
            let file_len = file.len().map_err(WalError::io(format!("stat {name}")))?;
            let position = if self.from_record && id == segment_of(self.from_offset) {
                position_of(self.from_offset)
            } else {
                0
            };
            self.current = Some(OpenSegment {
                id,
                file,
                file_len,
                position,
                buf: Vec::new(),
                buf_start: position,
            });
            return Ok(true);
        }
        Ok(false)
    }

    fn read_next(&mut self) -> Result<Option<WalRecord>, WalError> {
        loop {
            if self.current.is_none() && !self.next_segment()? {
                return Ok(None);
            }
            let Some(seg) = self.current.as_mut() else {
                return Ok(None);
            };
            let offset = offset_of(seg.id, seg.position);
            if offset >= self.until_offset {
                return Ok(None);
            }
            match seg.decode_next()? {
                None => self.current = None,
                Some((header, payload_range)) => {
                    let end = offset + header.record_len();
                    seg.position += header.record_len();
                    if end > self.until_offset {
                        return Ok(None);
                    }
                    if offset < self.from_offset {
                        continue;
                    }
                    self.counters.add_read(1, header.record_len());
                    return Ok(Some(WalRecord {
                        offset,
                        sequence: header.sequence,
                        kind: header.kind,
                        timestamp_ms: header.timestamp_ms,
                        unit: header.unit,
                        payload: seg.buf[payload_range].to_vec(),
                    }));
                }
            }
        }
    }
}

impl OpenSegment {
    /// The record at `position`, or `None` at the segment's logical end (end of file or zero
    /// fill; recovery has already checked that nothing valid follows).
    fn decode_next(&mut self) -> Result<Option<(RecordHeader, std::ops::Range<usize>)>, WalError> {
        if self.position >= self.file_len {
            return Ok(None);
        }
        let mut window = Window {
            file: self.file.as_ref(),
            file_len: self.file_len,
            buf: std::mem::take(&mut self.buf),
            start: self.buf_start,
        };
        // `None`: a zero byte where a record would start, i.e. the segment's logical end.
        let decoded = window
            .at(self.position, HEADER_LEN)
            .map(|bytes| (bytes.first() != Some(&0)).then(|| record::decode_header(bytes)));
        let result = match decoded {
            Ok(None) => Ok(None),
            Ok(Some(Ok(header))) => match window.at(self.position, header.record_len() as usize) {
                Ok(bytes) => match record::decode(bytes) {
                    Ok(_) => {
                        let start = (self.position - window.start) as usize + HEADER_LEN;
                        Ok(Some((header, start..start + header.payload_len as usize)))
                    }
                    Err(e) => Err(self.corrupt(e)),
                },
                Err(e) => Err(e),
            },
            Ok(Some(Err(e))) => Err(self.corrupt(e)),
            Err(e) => Err(e),
        };
        self.buf = window.buf;
        self.buf_start = window.start;
        result
    }

    fn corrupt(&self, e: record::DecodeError) -> WalError {
        let offset = offset_of(self.id, self.position);
        WalError::Corrupt(Corruption {
            segment: segment_file_name(self.id),
            offset,
            expected_sequence: 0,
            reason: format!("unreadable record at byte {}: {e}", position_of(offset)),
        })
    }
}

impl Iterator for WalReader {
    type Item = Result<WalRecord, WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read_next() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
