//! Segment naming. Offset arithmetic (spec §6.10) is the protocol's: an offset means the same
//! to the WAL, to clients and to the dashboard, so it is defined once, in
//! `rstmdb_protocol::limits`, and re-exported here for the WAL's own use.

pub use rstmdb_protocol::limits::{offset_of, position_of, segment_of};

/// A segment never grows beyond what an offset's position bits can address (2^40 bytes).
pub const MAX_SEGMENT_BYTES: u64 = rstmdb_protocol::limits::OFFSET_POSITION_MASK + 1;
/// The last segment id an offset can address: the 24 bits above the position. One more and the
/// id bits would be lost, so offsets would go backwards.
pub const MAX_SEGMENT_ID: u64 = u64::MAX >> rstmdb_protocol::limits::OFFSET_POSITION_BITS;
pub const SEGMENT_SUFFIX: &str = ".wal";

/// `0000000000000001.wal`.
pub fn segment_file_name(id: u64) -> String {
    format!("{id:016x}{SEGMENT_SUFFIX}")
}

/// The id of a segment file name, or `None` for any other file.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(SEGMENT_SUFFIX)?;
    if hex.len() != 16
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().filter(|id| *id >= 1)
}

/// Segment ids present in a directory listing, ascending.
pub fn segment_ids(names: &[String]) -> Vec<u64> {
    let mut ids: Vec<u64> = names
        .iter()
        .filter_map(|n| parse_segment_file_name(n))
        .collect();
    ids.sort_unstable();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sixteen_lowercase_hex_digits() {
        assert_eq!(segment_file_name(1), "0000000000000001.wal");
        assert_eq!(segment_file_name(0xab), "00000000000000ab.wal");
        assert_eq!(parse_segment_file_name("00000000000000ab.wal"), Some(0xab));
        assert_eq!(parse_segment_file_name("00000000000000AB.wal"), None);
        assert_eq!(
            parse_segment_file_name("0000000000000001.wal.corrupt"),
            None
        );
        assert_eq!(parse_segment_file_name("0000000000000000.wal"), None);
    }

    #[test]
    fn first_offset_of_a_fresh_database_is_two_to_the_forty() {
        assert_eq!(offset_of(1, 0), 1_099_511_627_776);
        assert_eq!(segment_of(offset_of(3, 774)), 3);
        assert_eq!(position_of(offset_of(3, 774)), 774);
    }
}
