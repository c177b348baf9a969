//! Protocol-wide constants and limits (spec §2.1, §2.4, §4.12, §4.15, §4.17, §6.2, §6.8,
//! §6.10). Each limit has exactly one constant, here; the server, the client, the dashboard and
//! the tools name it instead of repeating the number.

/// The only protocol version this crate speaks (§4.1).
pub const PROTOCOL_VERSION: u16 = 1;

/// Length of the fixed binary frame header: `>4sHHHII` (§2.1).
pub const FRAME_HEADER_BYTES: usize = 18;

/// Frame magic, ASCII `RCPX` (§2.1).
pub const FRAME_MAGIC: [u8; 4] = *b"RCPX";

/// Hard ceiling on any payload, inbound or outbound: 16 MiB (§2.4). It is also the default and
/// the maximum of the configurable inbound `max_frame_bytes`.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;

/// Room kept free for a response's envelope (`type`, `id`, `status`, `meta`, field names) when
/// its items are sized: what the result items of one response may take is
/// [`MAX_RESULT_ITEMS_BYTES`], and a WAL record's payload at most [`MAX_RECORD_PAYLOAD_BYTES`].
pub const ENVELOPE_HEADROOM_BYTES: usize = 64 * 1024;

/// The most bytes the items of one response (BATCH results, a LIST_INSTANCES page, WAL_READ
/// records) may take together: 16 MiB − 64 KiB (§6.8). Beyond it a page is cut short, or a
/// BATCH is refused before it commits.
pub const MAX_RESULT_ITEMS_BYTES: usize = MAX_PAYLOAD_BYTES - ENVELOPE_HEADROOM_BYTES;

/// The largest WAL record payload: 16,711,680 bytes, 16 MiB − 64 KiB (§2.4). It is what
/// guarantees that every event and at least one WAL record always fit in an outbound frame;
/// a larger record is refused with `record_too_large`.
pub const MAX_RECORD_PAYLOAD_BYTES: usize = MAX_PAYLOAD_BYTES - ENVELOPE_HEADROOM_BYTES;

/// The smallest `max_frame_bytes` a server may be configured with (§2.4). The codecs accept any
/// value; configuration loading is where this floor is enforced.
pub const MIN_MAX_FRAME_BYTES: usize = 64 * 1024;

/// Most sub-operations one BATCH may carry (§4.15).
pub const MAX_BATCH_OPS: usize = 100;

/// A request's `id` is at most this many bytes on any connection (§13): a longer one is
/// `BAD_REQUEST` `invalid_request`, answered with `"id":""`.
pub const MAX_REQUEST_ID_BYTES: usize = 256;

/// WATCH_ALL filter lists hold at most this many entries (§4.21)...
pub const MAX_WATCH_FILTER_ENTRIES: usize = 256;

/// ...of at most this many bytes each; WATCH_INSTANCE's `instance_id` has the same bound
/// (§4.20). Longer is `BAD_REQUEST` `invalid_param` with `limit`.
pub const MAX_WATCH_NAME_BYTES: usize = 1024;

/// Idempotency keys are 1 to this many UTF-8 bytes long (§4.10, §6.2).
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 1024;

/// LIST_INSTANCES page size when `limit` is absent (§4.12).
pub const LIST_INSTANCES_DEFAULT_LIMIT: u32 = 100;

/// The largest LIST_INSTANCES page; a larger `limit` counts as this (§4.12).
pub const LIST_INSTANCES_MAX_LIMIT: u32 = 1_000;

/// WAL_READ records when `limit` is absent (§4.17).
pub const WAL_READ_DEFAULT_LIMIT: u64 = 1_000;

/// WAL offsets are `(segment_id << OFFSET_POSITION_BITS) | byte position` (§6.10): the low 40
/// bits are the byte position inside the segment, so a segment holds at most 1 TiB.
pub const OFFSET_POSITION_BITS: u32 = 40;

/// The byte-position part of an offset.
pub const OFFSET_POSITION_MASK: u64 = (1 << OFFSET_POSITION_BITS) - 1;

/// The offset of byte `position` of segment `segment_id` (§6.10).
pub const fn offset_of(segment_id: u64, position: u64) -> u64 {
    debug_assert!(position <= OFFSET_POSITION_MASK);
    (segment_id << OFFSET_POSITION_BITS) | position
}

/// The segment id an offset points into.
pub const fn segment_of(offset: u64) -> u64 {
    offset >> OFFSET_POSITION_BITS
}

/// The byte position inside its segment an offset points at.
pub const fn position_of(offset: u64) -> u64 {
    offset & OFFSET_POSITION_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derived_limits_have_the_values_of_section_2_4() {
        assert_eq!(MAX_PAYLOAD_BYTES, 16_777_216);
        assert_eq!(MAX_RECORD_PAYLOAD_BYTES, 16_711_680);
        assert_eq!(MAX_RESULT_ITEMS_BYTES, 16_711_680);
        assert_eq!(MIN_MAX_FRAME_BYTES, 65_536);
    }

    #[test]
    fn offsets_split_into_segment_and_position_as_in_section_6_10() {
        // The worked example's first record: segment 1, byte 0.
        assert_eq!(offset_of(1, 0), 1_099_511_627_776);
        assert_eq!(segment_of(1_099_511_628_333), 1);
        assert_eq!(position_of(1_099_511_628_333), 557);
        assert_eq!(offset_of(3, 0), 3_298_534_883_328);
    }
}
