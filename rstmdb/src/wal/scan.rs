//! Scanning one segment file record by record, in large chunks, and classifying whatever
//! follows its last valid record (spec §6.1: torn tail, zeros, or corruption).

use super::error::WalError;
use super::record::{self, DecodeError, HEADER_LEN, MAGIC, RecordHeader};
use super::segment::offset_of;
use super::stats::IoCounters;
use super::storage::SegmentFile;

/// Bytes read per system call while scanning: large, so replay costs no per-record syscalls.
const CHUNK_BYTES: usize = 4 << 20;

/// A record as the scanner sees it, borrowing the payload from the read buffer.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    pub offset: u64,
    pub header: RecordHeader,
    pub payload: &'a [u8],
}

impl RecordView<'_> {
    /// The record's end (exclusive offset).
    pub fn end(&self) -> u64 {
        self.offset + self.header.record_len()
    }
}

/// What follows the last valid record of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// The file ends exactly there.
    Clean,
    /// Only zero bytes follow (e.g. preallocated space).
    Zeros,
    /// Invalid bytes follow and no valid record comes after them: a torn tail if this is the
    /// newest segment.
    Invalid(DecodeError),
    /// Invalid bytes followed, later in the file, by a valid record at byte `valid_at`:
    /// corruption, unless this is the newest segment and every valid record after the invalid
    /// bytes was written before they were durable (a hole a power loss left in unsynced writes).
    InvalidThenValid {
        reason: DecodeError,
        valid_at: u64,
        /// The highest [`RecordHeader::durable_when_written`] of the valid records after the
        /// invalid bytes.
        durable_when_written: u64,
    },
}

/// The result of scanning one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    pub id: u64,
    pub file_len: u64,
    /// End of the last valid record reached by the sequential read.
    pub logical_len: u64,
    pub records: u64,
    /// `(offset, sequence)` of the first and last valid records.
    pub first: Option<(u64, u64)>,
    pub last: Option<(u64, u64)>,
    pub tail: Tail,
}

/// A forward-only buffered window over a file.
pub(crate) struct Window<'f> {
    pub(crate) file: &'f dyn SegmentFile,
    pub(crate) file_len: u64,
    pub(crate) buf: Vec<u8>,
    /// File position of `buf[0]`.
    pub(crate) start: u64,
}

impl<'f> Window<'f> {
    pub(crate) fn new(file: &'f dyn SegmentFile, file_len: u64) -> Self {
        Self {
            file,
            file_len,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// The bytes from `pos` on, at least `want` of them unless the file ends first.
    pub(crate) fn at(&mut self, pos: u64, want: usize) -> Result<&[u8], WalError> {
        let have_end = self.start + self.buf.len() as u64;
        let want_end = (pos + want as u64).min(self.file_len);
        if pos < self.start || want_end > have_end {
            let keep_from = pos.saturating_sub(self.start).min(self.buf.len() as u64) as usize;
            if pos >= self.start && pos <= have_end {
                self.buf.drain(..keep_from);
            } else {
                self.buf.clear();
            }
            self.start = pos;
            let target = (want.max(CHUNK_BYTES) as u64).min(self.file_len - pos) as usize;
            let mut filled = self.buf.len();
            self.buf.resize(target.max(filled), 0);
            while filled < target {
                let n = self
                    .file
                    .read_at(pos + filled as u64, &mut self.buf[filled..target])
                    .map_err(WalError::io("read a WAL segment"))?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            self.buf.truncate(filled);
        }
        Ok(&self.buf[(pos - self.start) as usize..])
    }
}

/// Reads the segment `id` from byte 0 and calls `on_record` for every valid record of the
/// sequential read, then classifies the tail. Counts `reads`/`bytes_read`.
pub fn scan_segment(
    file: &dyn SegmentFile,
    id: u64,
    counters: &IoCounters,
    on_record: &mut dyn FnMut(RecordView<'_>) -> Result<(), WalError>,
) -> Result<SegmentScan, WalError> {
    let file_len = file.len().map_err(WalError::io("stat a WAL segment"))?;
    let mut window = Window::new(file, file_len);
    let mut scan = SegmentScan {
        id,
        file_len,
        logical_len: 0,
        records: 0,
        first: None,
        last: None,
        tail: Tail::Clean,
    };
    let (mut batch_records, mut batch_bytes) = (0u64, 0u64);
    let mut pos = 0u64;
    let failure = loop {
        if pos == file_len {
            break None;
        }
        let bytes = window.at(pos, HEADER_LEN)?;
        let header = match record::decode_header(bytes) {
            Ok(h) => h,
            Err(e) => break Some(e),
        };
        let bytes = window.at(pos, header.record_len() as usize)?;
        let (header, payload) = match record::decode(bytes) {
            Ok(ok) => ok,
            Err(e) => break Some(e),
        };
        let view = RecordView {
            offset: offset_of(id, pos),
            header,
            payload,
        };
        on_record(view)?;
        scan.first.get_or_insert((view.offset, header.sequence));
        scan.last = Some((view.offset, header.sequence));
        scan.records += 1;
        batch_records += 1;
        batch_bytes += header.record_len();
        pos += header.record_len();
    };
    counters.add_read(batch_records, batch_bytes);
    scan.logical_len = pos;
    if let Some(reason) = failure {
        scan.tail = classify_tail(&mut window, pos, reason)?;
    }
    Ok(scan)
}

fn classify_tail(
    window: &mut Window<'_>,
    from: u64,
    reason: DecodeError,
) -> Result<Tail, WalError> {
    if all_zero(window, from)? {
        return Ok(Tail::Zeros);
    }
    if reason.is_incomplete() {
        return Ok(Tail::Invalid(reason));
    }
    let Some(valid_at) = find_valid_record(window, from + 1)? else {
        return Ok(Tail::Invalid(reason));
    };
    Ok(Tail::InvalidThenValid {
        reason,
        valid_at,
        durable_when_written: durable_when_written_after(window, valid_at)?,
    })
}

/// The highest `durable_when_written` of every valid record from `first_valid` to the end of
/// the file, walking record to record and searching again past anything invalid.
fn durable_when_written_after(window: &mut Window<'_>, first_valid: u64) -> Result<u64, WalError> {
    let (file, file_len) = (window.file, window.file_len);
    let mut highest = 0;
    let mut pos = first_valid;
    while pos < file_len {
        match valid_header_at(file, file_len, pos)? {
            Some(header) => {
                highest = highest.max(header.durable_when_written());
                pos += header.record_len();
            }
            None => match find_valid_record(window, pos + 1)? {
                Some(next) => pos = next,
                None => break,
            },
        }
    }
    Ok(highest)
}

fn all_zero(window: &mut Window<'_>, mut pos: u64) -> Result<bool, WalError> {
    while pos < window.file_len {
        let bytes = window.at(pos, CHUNK_BYTES)?;
        if bytes.is_empty() {
            break; // the file shrank under us: nothing more to look at
        }
        if bytes.iter().any(|b| *b != 0) {
            return Ok(false);
        }
        pos += bytes.len() as u64;
    }
    Ok(true)
}

/// The first position at or after `from` where a valid record starts ("searches the rest of
/// the file", spec §6.1).
fn find_valid_record(window_src: &mut Window<'_>, from: u64) -> Result<Option<u64>, WalError> {
    let file = window_src.file;
    let file_len = window_src.file_len;
    let mut pos = from;
    while pos < file_len {
        let chunk = window_src.at(pos, CHUNK_BYTES)?;
        let chunk_len = chunk.len() as u64;
        if chunk_len == 0 {
            break; // the file shrank under us
        }
        let candidates: Vec<u64> = chunk
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == MAGIC[0])
            .map(|(i, _)| pos + i as u64)
            .collect();
        for candidate in candidates {
            if is_valid_record_at(file, file_len, candidate)? {
                return Ok(Some(candidate));
            }
        }
        pos += chunk_len;
    }
    Ok(None)
}

fn is_valid_record_at(file: &dyn SegmentFile, file_len: u64, pos: u64) -> Result<bool, WalError> {
    Ok(valid_header_at(file, file_len, pos)?.is_some())
}

/// The header of the valid record at `pos`, if one starts there.
fn valid_header_at(
    file: &dyn SegmentFile,
    file_len: u64,
    pos: u64,
) -> Result<Option<RecordHeader>, WalError> {
    if file_len - pos < HEADER_LEN as u64 {
        return Ok(None);
    }
    let mut header = [0u8; HEADER_LEN];
    super::storage::read_exact_at(file, pos, &mut header)
        .map_err(WalError::io("read a WAL segment"))?;
    let Ok(h) = record::decode_header(&header) else {
        return Ok(None);
    };
    if file_len - pos < h.record_len() {
        return Ok(None);
    }
    let mut bytes = vec![0u8; h.record_len() as usize];
    super::storage::read_exact_at(file, pos, &mut bytes)
        .map_err(WalError::io("read a WAL segment"))?;
    Ok(record::decode(&bytes).is_ok().then_some(h))
}
