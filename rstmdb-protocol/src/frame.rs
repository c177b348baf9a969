//! The binary `RCPX` frame codec (spec §2.1–§2.5).
//!
//! ```text
//! magic "RCPX" | version u16 | flags u16 | header_len u16 | payload_len u32 | crc32c u32
//! | header extension (header_len bytes, skipped) | payload (payload_len bytes, UTF-8 JSON)
//! ```
//! All integers are big-endian. Decoding follows the steps of §2.5 in order, so the first failing
//! check names the fault.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::fault::{FrameFault, WireError};
use crate::limits::{FRAME_HEADER_BYTES, FRAME_MAGIC, MAX_PAYLOAD_BYTES, PROTOCOL_VERSION};

/// Flag bit 0: the CRC field holds the payload's CRC32C and must be verified.
pub const FLAG_CRC_PRESENT: u16 = 0x0001;
/// Flag bits whose presence is a `bad_flags` fault: COMPRESSED (bit 1) and the reserved bits
/// 4–15. STREAM and END_STREAM (bits 2 and 3) are accepted and ignored.
pub const FORBIDDEN_FLAGS_MASK: u16 = 0xFFF2;

/// CRC-32C (Castagnoli) of `bytes`, the checksum frames carry (§2.3).
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// Decoder and encoder of binary frames; the decoded item is the payload text.
///
/// The decoder refuses a `payload_len` above `max_frame_bytes` as soon as the 18 header bytes
/// are buffered, so it never reserves room for more than one allowed frame.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_frame_bytes: usize,
}

impl FrameCodec {
    /// A codec accepting inbound payloads of up to `max_frame_bytes` bytes (capped at 16 MiB,
    /// the protocol maximum).
    pub fn new(max_frame_bytes: usize) -> Self {
        Self {
            max_frame_bytes: max_frame_bytes.min(MAX_PAYLOAD_BYTES),
        }
    }

    /// The inbound payload limit in force.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Changes the inbound limit (capped at 16 MiB); the next decode checks against it.
    pub fn set_max_frame_bytes(&mut self, max_frame_bytes: usize) {
        self.max_frame_bytes = max_frame_bytes.min(MAX_PAYLOAD_BYTES);
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new(MAX_PAYLOAD_BYTES)
    }
}

/// The fixed 18-byte header, read before anything else is trusted.
struct FrameHeader {
    magic: [u8; 4],
    version: u16,
    flags: u16,
    header_len: u16,
    payload_len: u32,
    crc: u32,
}

impl FrameHeader {
    fn read(mut bytes: &[u8]) -> Self {
        let mut magic = [0u8; 4];
        bytes.copy_to_slice(&mut magic);
        Self {
            magic,
            version: bytes.get_u16(),
            flags: bytes.get_u16(),
            header_len: bytes.get_u16(),
            payload_len: bytes.get_u32(),
            crc: bytes.get_u32(),
        }
    }

    /// Steps 1–4 of §2.5, in order.
    fn check(&self, max_frame_bytes: usize) -> Result<(), FrameFault> {
        if self.magic != FRAME_MAGIC {
            return Err(FrameFault::BadMagic);
        }
        if self.version != PROTOCOL_VERSION {
            return Err(FrameFault::BadVersion);
        }
        if self.flags & FORBIDDEN_FLAGS_MASK != 0 {
            return Err(FrameFault::BadFlags);
        }
        if self.payload_len as usize > max_frame_bytes {
            return Err(FrameFault::TooLarge);
        }
        Ok(())
    }
}

impl Decoder for FrameCodec {
    type Item = String;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<String>, WireError> {
        if src.len() < FRAME_HEADER_BYTES {
            src.reserve(FRAME_HEADER_BYTES - src.len());
            return Ok(None);
        }
        let header = FrameHeader::read(&src[..FRAME_HEADER_BYTES]);
        header.check(self.max_frame_bytes)?;

        let skip_bytes = FRAME_HEADER_BYTES + usize::from(header.header_len);
        let payload_len = header.payload_len as usize;
        let frame_bytes = skip_bytes + payload_len;
        if src.len() < frame_bytes {
            // Bounded: payload_len was checked against the limit above.
            src.reserve(frame_bytes - src.len());
            return Ok(None);
        }

        src.advance(skip_bytes);
        let payload = src.split_to(payload_len);
        if header.flags & FLAG_CRC_PRESENT != 0 && crc32c(&payload) != header.crc {
            return Err(FrameFault::CrcMismatch.into());
        }
        String::from_utf8(payload.to_vec())
            .map(Some)
            .map_err(|_| FrameFault::InvalidUtf8.into())
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<String>, WireError> {
        match self.decode(src)? {
            Some(payload) => Ok(Some(payload)),
            None if src.is_empty() => Ok(None),
            None => Err(WireError::TruncatedFrame {
                buffered_bytes: src.len(),
            }),
        }
    }
}

/// Writes one frame: version 1, flags `0x0001`, `header_len` 0 and the payload's CRC32C. Refuses
/// payloads over 16 MiB whatever `max_frame_bytes` says (§2.4).
impl<T: AsRef<str>> Encoder<T> for FrameCodec {
    type Error = WireError;

    fn encode(&mut self, payload: T, dst: &mut BytesMut) -> Result<(), WireError> {
        let payload = payload.as_ref().as_bytes();
        let payload_len = u32::try_from(payload.len())
            .ok()
            .filter(|_| payload.len() <= MAX_PAYLOAD_BYTES)
            .ok_or(WireError::OutboundTooLarge {
                size_bytes: payload.len(),
                limit_bytes: MAX_PAYLOAD_BYTES,
            })?;
        dst.reserve(FRAME_HEADER_BYTES + payload.len());
        put_header(dst, payload_len, crc32c(payload));
        dst.put_slice(payload);
        Ok(())
    }
}

/// Writes the 18-byte header of an outbound frame: version 1, flags `0x0001`, `header_len` 0,
/// then `payload_len` and the payload's CRC32C. The one place the outbound header is laid out.
pub(crate) fn put_header(dst: &mut BytesMut, payload_len: u32, crc: u32) {
    dst.put_slice(&FRAME_MAGIC);
    dst.put_u16(PROTOCOL_VERSION);
    dst.put_u16(FLAG_CRC_PRESENT);
    dst.put_u16(0);
    dst.put_u32(payload_len);
    dst.put_u32(crc);
}

#[cfg(test)]
mod tests {
    use super::*;

    const PING: &str = r#"{"type":"request","id":"1","op":"PING","params":{}}"#;

    /// Builds a frame with every header field chosen by the test.
    fn raw_frame(
        magic: &[u8; 4],
        version: u16,
        flags: u16,
        extension: &[u8],
        payload: &[u8],
        crc: u32,
    ) -> BytesMut {
        let mut out = BytesMut::new();
        out.put_slice(magic);
        out.put_u16(version);
        out.put_u16(flags);
        out.put_u16(extension.len() as u16);
        out.put_u32(payload.len() as u32);
        out.put_u32(crc);
        out.put_slice(extension);
        out.put_slice(payload);
        out
    }

    fn good_frame(payload: &[u8]) -> BytesMut {
        raw_frame(b"RCPX", 1, 1, b"", payload, crc32c(payload))
    }

    fn decode_all(
        codec: &mut FrameCodec,
        mut bytes: BytesMut,
    ) -> Result<Option<String>, FrameFault> {
        codec
            .decode(&mut bytes)
            .map_err(|e| e.fault().expect("only faults expected"))
    }

    #[test]
    fn crc32c_check_value_matches_spec() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn decodes_a_well_formed_frame_and_consumes_it() {
        let mut codec = FrameCodec::default();
        let mut buf = good_frame(PING.as_bytes());
        buf.put_slice(b"RC");
        assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some(PING));
        assert_eq!(&buf[..], b"RC", "the next frame's bytes stay buffered");
    }

    #[test]
    fn half_a_frame_is_pending_until_the_rest_arrives() {
        let mut codec = FrameCodec::default();
        let whole = good_frame(PING.as_bytes());
        let mut buf = BytesMut::from(&whole[..10]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.put_slice(&whole[10..30]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.put_slice(&whole[30..]);
        assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some(PING));
    }

    #[test]
    fn faults_follow_the_order_of_section_2_5() {
        let mut codec = FrameCodec::new(100);
        let payload = PING.as_bytes();
        let crc = crc32c(payload);
        let cases: [(BytesMut, FrameFault); 8] = [
            (
                raw_frame(b"RCPY", 1, 1, b"", payload, crc),
                FrameFault::BadMagic,
            ),
            (
                raw_frame(b"RCPY", 2, 0x0100, b"", payload, 0),
                FrameFault::BadMagic,
            ),
            (
                raw_frame(b"RCPX", 2, 1, b"", payload, crc),
                FrameFault::BadVersion,
            ),
            (
                raw_frame(b"RCPX", 0, 0x0002, b"", payload, crc),
                FrameFault::BadVersion,
            ),
            (
                raw_frame(b"RCPX", 1, 0x0003, b"", payload, crc),
                FrameFault::BadFlags,
            ),
            (
                raw_frame(b"RCPX", 1, 0x8001, b"", &[b' '; 101], 0),
                FrameFault::BadFlags,
            ),
            (
                raw_frame(b"RCPX", 1, 1, b"", &[b' '; 101], 0),
                FrameFault::TooLarge,
            ),
            (
                raw_frame(b"RCPX", 1, 1, b"", payload, crc ^ 1),
                FrameFault::CrcMismatch,
            ),
        ];
        for (frame, expected) in cases {
            assert_eq!(decode_all(&mut codec, frame), Err(expected));
        }
    }

    #[test]
    fn crc_is_checked_before_utf8() {
        let bad_utf8 = [0xFFu8, 0xFE];
        let frame = raw_frame(b"RCPX", 1, 1, b"", &bad_utf8, 0);
        assert_eq!(
            decode_all(&mut FrameCodec::default(), frame),
            Err(FrameFault::CrcMismatch)
        );
        let frame = good_frame(&bad_utf8);
        assert_eq!(
            decode_all(&mut FrameCodec::default(), frame),
            Err(FrameFault::InvalidUtf8)
        );
    }

    fn assert_decodes_to_ping(frame: BytesMut) {
        let decoded = decode_all(&mut FrameCodec::default(), frame);
        assert_eq!(decoded.unwrap().as_deref(), Some(PING));
    }

    #[test]
    fn crc_field_is_ignored_when_crc_present_is_clear() {
        let frame = raw_frame(b"RCPX", 1, 0, b"", PING.as_bytes(), 0xDEAD_BEEF);
        assert_decodes_to_ping(frame);
    }

    #[test]
    fn stream_and_end_stream_flags_are_accepted() {
        let payload = PING.as_bytes();
        let frame = raw_frame(b"RCPX", 1, 0x000D, b"", payload, crc32c(payload));
        assert_decodes_to_ping(frame);
    }

    #[test]
    fn header_extension_is_skipped_and_not_covered_by_the_crc() {
        let payload = PING.as_bytes();
        let frame = raw_frame(b"RCPX", 1, 1, b"opaque extension", payload, crc32c(payload));
        assert_decodes_to_ping(frame);
    }

    #[test]
    fn header_extension_does_not_count_towards_the_payload_limit() {
        let payload = [b' '; 10];
        let frame = raw_frame(b"RCPX", 1, 1, &[0u8; 500], &payload, crc32c(&payload));
        assert!(
            decode_all(&mut FrameCodec::new(10), frame)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn payload_exactly_at_the_limit_is_accepted() {
        let payload = vec![b'x'; 64];
        let frame = good_frame(&payload);
        let decoded = decode_all(&mut FrameCodec::new(64), frame).unwrap();
        assert_eq!(decoded.map(|s| s.len()), Some(64));
    }

    #[test]
    fn payload_over_the_limit_is_refused_from_the_header_alone() {
        let mut codec = FrameCodec::new(64);
        let frame = good_frame(&[b'x'; 65]);
        let mut header_only = BytesMut::from(&frame[..FRAME_HEADER_BYTES]);
        let err = codec.decode(&mut header_only).unwrap_err();
        assert_eq!(err.fault(), Some(FrameFault::TooLarge));
    }

    #[test]
    fn a_huge_announced_payload_reserves_no_memory() {
        let mut codec = FrameCodec::new(1024);
        let mut buf = raw_frame(b"RCPX", 1, 1, b"", b"", 0);
        buf[10..14].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(codec.decode(&mut buf).is_err());
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn configured_limit_is_capped_at_16_mib() {
        assert_eq!(
            FrameCodec::new(usize::MAX).max_frame_bytes(),
            MAX_PAYLOAD_BYTES
        );
    }

    #[test]
    fn encoder_writes_version_1_flags_1_no_extension_and_the_crc() {
        let mut out = BytesMut::new();
        FrameCodec::default().encode(PING, &mut out).unwrap();
        assert_eq!(&out[..], &good_frame(PING.as_bytes())[..]);
    }

    #[test]
    fn encoder_refuses_payloads_over_16_mib() {
        let big = "x".repeat(MAX_PAYLOAD_BYTES + 1);
        let mut out = BytesMut::new();
        let err = FrameCodec::new(1024).encode(&big, &mut out).unwrap_err();
        assert!(
            matches!(err, WireError::OutboundTooLarge { size_bytes, .. } if size_bytes == big.len())
        );
        assert!(out.is_empty());
    }

    #[test]
    fn encoder_accepts_exactly_16_mib_even_with_a_lower_inbound_limit() {
        let big = "x".repeat(MAX_PAYLOAD_BYTES);
        let mut out = BytesMut::new();
        FrameCodec::new(1024).encode(&big, &mut out).unwrap();
        assert_eq!(out.len(), FRAME_HEADER_BYTES + MAX_PAYLOAD_BYTES);
    }

    #[test]
    fn eof_inside_a_frame_is_reported() {
        let whole = good_frame(PING.as_bytes());
        let mut buf = BytesMut::from(&whole[..20]);
        let err = FrameCodec::default().decode_eof(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            WireError::TruncatedFrame { buffered_bytes: 20 }
        ));
    }
}
