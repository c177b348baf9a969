//! Checksum repair for mutated storage bytes. Random mutations almost never keep a CRC32C
//! right, so without this the fuzzer would only ever exercise the checksum comparisons; each
//! target lets one control bit choose between the raw bytes and the repaired ones.

use rstmdb::wal::record::{HEADER_LEN as RECORD_HEADER_LEN, MAGIC as RECORD_MAGIC};

/// Walks `segment` record by record from the start and rewrites each record's payload CRC and
/// header CRC (`docs/wal-format.md` §2). Stops at the first position that does not start with
/// the record magic or has no room for a header; a header whose payload runs past the end gets
/// only its header CRC fixed (a torn record with a valid header).
pub fn fix_wal_segment(segment: &mut [u8]) {
    let mut at = 0usize;
    while let Some(header) = segment.get(at..at + RECORD_HEADER_LEN) {
        if header[..2] != RECORD_MAGIC {
            return;
        }
        // The low 24 bits; byte 7 is `unsynced_before`.
        let payload_len = u32::from_le_bytes([header[4], header[5], header[6], 0]) as usize;
        let payload_start = at + RECORD_HEADER_LEN;
        let payload_end = payload_start.saturating_add(payload_len);
        let whole = payload_end <= segment.len();
        if whole {
            let payload_crc = crc32c::crc32c(&segment[payload_start..payload_end]);
            segment[at + 32..at + 36].copy_from_slice(&payload_crc.to_le_bytes());
        }
        let header_crc = crc32c::crc32c(&segment[at..at + 36]);
        segment[at + 36..at + 40].copy_from_slice(&header_crc.to_le_bytes());
        if !whole {
            return;
        }
        at = payload_end;
    }
}

/// Checkpoint header layout (`docs/checkpoint-format.md` §1.2): payload length at 48, payload
/// CRC at 56, header CRC at 60 covering bytes 0..60, payload from 64.
const CHECKPOINT_PAYLOAD_LEN_AT: usize = 48;
const CHECKPOINT_PAYLOAD_CRC_AT: usize = 56;
const CHECKPOINT_HEADER_CRC_AT: usize = 60;

/// Rewrites a checkpoint file's payload CRC and header CRC; with `fix_len`, also its payload
/// length, so the file passes every check unless its magic, version or name is wrong.
pub fn fix_checkpoint(file: &mut [u8], fix_len: bool) {
    let header_len = rstmdb::checkpoint::HEADER_LEN;
    if file.len() < header_len {
        return;
    }
    if fix_len {
        let payload_len = (file.len() - header_len) as u64;
        file[CHECKPOINT_PAYLOAD_LEN_AT..CHECKPOINT_PAYLOAD_LEN_AT + 8]
            .copy_from_slice(&payload_len.to_le_bytes());
    }
    let payload_crc = crc32c::crc32c(&file[header_len..]);
    file[CHECKPOINT_PAYLOAD_CRC_AT..CHECKPOINT_PAYLOAD_CRC_AT + 4]
        .copy_from_slice(&payload_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&file[..CHECKPOINT_HEADER_CRC_AT]);
    file[CHECKPOINT_HEADER_CRC_AT..CHECKPOINT_HEADER_CRC_AT + 4]
        .copy_from_slice(&header_crc.to_le_bytes());
}
