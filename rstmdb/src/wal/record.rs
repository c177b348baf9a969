//! The record codec: a 40-byte little-endian header and the payload (docs/wal-format.md §2).
//!
//! The encoder asserts every header rule before bytes reach a file; the decoder validates every
//! rule after reading and never panics on arbitrary input.

use super::error::WalError;

pub const MAGIC: [u8; 2] = [0xA7, 0x57];
pub const HEADER_LEN: usize = 40;
/// The protocol's record cap (16 MiB − 64 KiB, spec §2.4): a record always fits in a frame.
pub use rstmdb_protocol::limits::MAX_RECORD_PAYLOAD_BYTES;
const FLAG_UNIT: u8 = 0b0000_0001;
/// Bytes 4..8 hold the payload length in their low 24 bits and the low 8 bits of
/// `unsynced_before` in the high 8; flag bits 1..7 hold its high 7 bits.
const PAYLOAD_LEN_MASK: u32 = 0x00FF_FFFF;
const _: () = assert!(MAX_RECORD_PAYLOAD_BYTES as u32 <= PAYLOAD_LEN_MASK);
/// The largest `unsynced_before`: 15 bits.
pub const MAX_UNSYNCED_BEFORE: u16 = 0x7FFF;

/// Membership of a record in an atomic unit (spec §6.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitMarker {
    /// 0-based position among the unit's records.
    pub index: u32,
    /// Number of records in the unit (>= 1).
    pub count: u32,
}

/// The fixed-size part of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub kind: u8,
    pub payload_len: u32,
    pub sequence: u64,
    pub timestamp_ms: i64,
    pub unit: Option<UnitMarker>,
    pub payload_crc: u32,
    /// How many of the records before this one were not known durable when it was written
    /// (saturating at [`MAX_UNSYNCED_BEFORE`]; 0 in WALs written before this field existed). Recovery uses it to
    /// tell a hole left by a power loss in unsynced writes from damage (docs/wal-format.md §2).
    pub unsynced_before: u16,
}

impl RecordHeader {
    /// Bytes the record occupies in its segment.
    pub fn record_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.payload_len)
    }

    /// The highest sequence that may have been durable when this record was written: no record
    /// after it was. A saturated `unsynced_before` only makes this higher than the truth, never
    /// lower, so it can only make recovery call a hole corruption, never hide damage.
    pub fn durable_when_written(&self) -> u64 {
        self.sequence
            .saturating_sub(1)
            .saturating_sub(u64::from(self.unsynced_before))
    }
}

/// `unsynced_before` for a record of `sequence` written while records up to `durable_sequence`
/// were durable.
pub fn unsynced_before(sequence: u64, durable_sequence: u64) -> u16 {
    let unsynced = sequence.saturating_sub(1).saturating_sub(durable_sequence);
    unsynced.min(u64::from(MAX_UNSYNCED_BEFORE)) as u16
}

/// Why bytes are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("fewer bytes than a record header")]
    ShortHeader,
    #[error("bytes that cannot start a record (bad magic)")]
    BadMagic,
    #[error("header checksum mismatch")]
    HeaderCrc,
    #[error("malformed header (kind, flags, unit or length out of range)")]
    MalformedHeader,
    #[error("payload runs past the end of the file")]
    ShortPayload,
    #[error("payload checksum mismatch")]
    PayloadCrc,
}

impl DecodeError {
    /// The record is cut off by the end of the file (a torn write), not damaged.
    pub fn is_incomplete(self) -> bool {
        matches!(self, DecodeError::ShortHeader | DecodeError::ShortPayload)
    }
}

/// Checks that a payload may be appended at all.
pub fn check_payload_size(len: usize) -> Result<(), WalError> {
    if len > MAX_RECORD_PAYLOAD_BYTES {
        return Err(WalError::RecordTooLarge {
            size: len,
            limit: MAX_RECORD_PAYLOAD_BYTES,
        });
    }
    Ok(())
}

/// Appends one encoded record to `out`. The caller has checked the payload size; the other
/// rules are invariants of the writer, hence assertions.
pub fn encode_into(
    out: &mut Vec<u8>,
    kind: u8,
    sequence: u64,
    timestamp_ms: i64,
    unit: Option<UnitMarker>,
    unsynced_before: u16,
    payload: &[u8],
) {
    assert!(kind != 0, "record kind 0 is reserved");
    assert!(
        payload.len() <= MAX_RECORD_PAYLOAD_BYTES,
        "payload over the limit"
    );
    assert!(sequence >= 1, "sequences start at 1");
    if let Some(u) = unit {
        assert!(
            u.count >= 1 && u.index < u.count,
            "unit marker out of range"
        );
    }
    assert!(
        unsynced_before <= MAX_UNSYNCED_BEFORE,
        "unsynced_before over 15 bits"
    );
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.push(kind);
    let unsynced_high = (unsynced_before >> 8) as u8;
    out.push(unsynced_high << 1 | if unit.is_some() { FLAG_UNIT } else { 0 });
    let len_and_unsynced = payload.len() as u32 | u32::from(unsynced_before & 0xFF) << 24;
    out.extend_from_slice(&len_and_unsynced.to_le_bytes());
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(&timestamp_ms.to_le_bytes());
    let (index, count) = unit.map_or((0, 0), |u| (u.index, u.count));
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    let header_crc = crc32c::crc32c(&out[start..start + 36]);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(payload);
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Validates and decodes a header from the start of `bytes`.
pub fn decode_header(bytes: &[u8]) -> Result<RecordHeader, DecodeError> {
    if bytes.len() < HEADER_LEN {
        // A short prefix that already fails the magic is junk, not a torn record.
        let magic_prefix = &MAGIC[..bytes.len().min(2)];
        if bytes[..magic_prefix.len()] != *magic_prefix {
            return Err(DecodeError::BadMagic);
        }
        return Err(DecodeError::ShortHeader);
    }
    let h = &bytes[..HEADER_LEN];
    if h[..2] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if crc32c::crc32c(&h[..36]) != u32_at(h, 36) {
        return Err(DecodeError::HeaderCrc);
    }
    let kind = h[2];
    let flags = h[3];
    let payload_len = u32_at(h, 4) & PAYLOAD_LEN_MASK;
    let unsynced_before = u16::from(flags >> 1) << 8 | u16::from(h[7]);
    let (index, count) = (u32_at(h, 24), u32_at(h, 28));
    let unit = match flags & FLAG_UNIT {
        0 if index == 0 && count == 0 => None,
        FLAG_UNIT if count >= 1 && index < count => Some(UnitMarker { index, count }),
        _ => return Err(DecodeError::MalformedHeader),
    };
    let sequence = u64_at(h, 8);
    if kind == 0 || payload_len as usize > MAX_RECORD_PAYLOAD_BYTES || sequence == 0 {
        return Err(DecodeError::MalformedHeader);
    }
    Ok(RecordHeader {
        kind,
        payload_len,
        sequence,
        timestamp_ms: u64_at(h, 16) as i64,
        unit,
        payload_crc: u32_at(h, 32),
        unsynced_before,
    })
}

/// Validates and decodes a whole record from the start of `bytes`; returns the header and
/// the payload slice.
pub fn decode(bytes: &[u8]) -> Result<(RecordHeader, &[u8]), DecodeError> {
    let header = decode_header(bytes)?;
    let end = HEADER_LEN + header.payload_len as usize;
    let payload = bytes
        .get(HEADER_LEN..end)
        .ok_or(DecodeError::ShortPayload)?;
    if crc32c::crc32c(payload) != header.payload_crc {
        return Err(DecodeError::PayloadCrc);
    }
    Ok((header, payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(kind: u8, seq: u64, unit: Option<UnitMarker>, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_into(&mut out, kind, seq, -5, unit, 3, payload);
        out
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let unit = Some(UnitMarker { index: 1, count: 3 });
        let bytes = encode(7, 42, unit, b"{\"type\":\"x\"}");
        assert_eq!(bytes.len(), HEADER_LEN + 12);
        let (h, payload) = decode(&bytes).expect("valid");
        assert_eq!(
            (
                h.kind,
                h.sequence,
                h.timestamp_ms,
                h.unit,
                h.unsynced_before
            ),
            (7, 42, -5, unit, 3)
        );
        assert_eq!(h.durable_when_written(), 38);
        assert_eq!(payload, b"{\"type\":\"x\"}");
    }

    #[test]
    fn unsynced_before_counts_the_records_not_yet_durable_and_saturates() {
        assert_eq!(unsynced_before(1, 0), 0);
        assert_eq!(unsynced_before(5, 4), 0);
        assert_eq!(unsynced_before(5, 1), 3);
        assert_eq!(unsynced_before(1_000, 1), 998);
        assert_eq!(unsynced_before(100_000, 1), MAX_UNSYNCED_BEFORE);
        // Recovery's reading of a saturated value errs high: "maybe durable", never lower.
        let bytes = encode(1, 1_000, None, b"x");
        let mut saturated = Vec::new();
        encode_into(
            &mut saturated,
            1,
            100_000,
            0,
            None,
            unsynced_before(100_000, 1),
            b"x",
        );
        let (h, _) = decode(&saturated).expect("valid");
        assert_eq!(
            h.durable_when_written(),
            100_000 - 1 - 32_767,
            "at least the true 1"
        );
        assert_eq!(decode(&bytes).expect("valid").0.durable_when_written(), 996);
    }

    #[test]
    fn a_zero_byte_never_starts_a_record() {
        assert_eq!(decode(&[0u8; 64]).unwrap_err(), DecodeError::BadMagic);
        assert_eq!(decode(&[0u8; 3]).unwrap_err(), DecodeError::BadMagic);
    }

    #[test]
    fn truncated_records_are_incomplete_not_damaged() {
        let bytes = encode(1, 1, None, b"hello world");
        assert_eq!(decode(&bytes[..10]).unwrap_err(), DecodeError::ShortHeader);
        assert_eq!(
            decode(&bytes[..bytes.len() - 1]).unwrap_err(),
            DecodeError::ShortPayload
        );
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let bytes = encode(1, 9, None, b"payload bytes");
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&damaged).is_err(), "bit {bit} flip went unnoticed");
        }
    }

    #[test]
    fn oversized_payload_is_refused_with_size_and_limit() {
        let err = check_payload_size(MAX_RECORD_PAYLOAD_BYTES + 1).unwrap_err();
        assert!(matches!(
            err,
            WalError::RecordTooLarge { size, limit } if size == MAX_RECORD_PAYLOAD_BYTES + 1 && limit == MAX_RECORD_PAYLOAD_BYTES
        ));
        assert!(check_payload_size(MAX_RECORD_PAYLOAD_BYTES).is_ok());
    }

    proptest! {
        #[test]
        fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn round_trip_any_record(kind in 1u8.., seq in 1u64.., ts: i64, unsynced in 0..=MAX_UNSYNCED_BEFORE, payload in proptest::collection::vec(any::<u8>(), 0..300), unit in proptest::option::of((1u32..100).prop_flat_map(|c| (0..c, Just(c))))) {
            let unit = unit.map(|(index, count)| UnitMarker { index, count });
            let mut out = Vec::new();
            encode_into(&mut out, kind, seq, ts, unit, unsynced, &payload);
            let (h, p) = decode(&out).expect("valid");
            prop_assert_eq!((h.kind, h.sequence, h.timestamp_ms, h.unit, h.unsynced_before), (kind, seq, ts, unit, unsynced));
            prop_assert_eq!(p, &payload[..]);
        }
    }
}
