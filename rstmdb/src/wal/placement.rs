//! Where records land in the WAL: the rotation rule of spec §6.10, in one place.
//!
//! The writer places every record it appends with [`Placement::place`], and rotates when the
//! answer is in the next segment. The database's sequencer needs a record's offset before the
//! record is written (it becomes the instance's `last_wal_offset` and the op result's
//! `wal_offset`), so it asks the WAL for a [`Placement`] ([`Wal::placement`]) and places the
//! records of a group with the same rule, then checks the WAL's answer after every append.
//!
//! [`Wal::placement`]: super::Wal::placement

use super::record::HEADER_LEN;
use super::segment::{offset_of, position_of, segment_of};

/// The append position: the newest segment, its logical length and the rotation limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    segment_id: u64,
    logical_len: u64,
    segment_size_bytes: u64,
}

impl Placement {
    /// Starts at the WAL's `latest_offset` (the end of the last record written).
    pub fn at(latest_offset: u64, segment_size_bytes: u64) -> Placement {
        Placement {
            segment_id: segment_of(latest_offset),
            logical_len: position_of(latest_offset),
            segment_size_bytes,
        }
    }

    /// Places a record with `payload_len` payload bytes and returns its offset. A record goes
    /// to the next segment when the current one already holds a record and this one would take
    /// it past the size limit.
    pub fn place(&mut self, payload_len: usize) -> u64 {
        let size = (HEADER_LEN + payload_len) as u64;
        if self.logical_len > 0 && self.logical_len + size > self.segment_size_bytes {
            self.segment_id += 1;
            self.logical_len = 0;
        }
        let offset = offset_of(self.segment_id, self.logical_len);
        self.logical_len += size;
        offset
    }

    /// The end of the last placed record: the `latest_offset` after the group is written.
    pub fn end(&self) -> u64 {
        offset_of(self.segment_id, self.logical_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_back_to_back_until_the_limit_then_the_next_segment_starts_at_zero() {
        let limit = (HEADER_LEN as u64 + 100) * 2;
        let mut p = Placement::at(1 << 40, limit);
        assert_eq!(p.place(100), 1 << 40);
        assert_eq!(p.place(100), (1 << 40) + HEADER_LEN as u64 + 100);
        assert_eq!(p.place(100), 2 << 40);
        assert_eq!(p.end(), (2 << 40) + HEADER_LEN as u64 + 100);
    }

    #[test]
    fn a_record_larger_than_the_limit_still_goes_into_an_empty_segment() {
        let mut p = Placement::at(1 << 40, 10);
        assert_eq!(p.place(1000), 1 << 40);
        assert_eq!(p.place(1), 2 << 40);
    }
}
