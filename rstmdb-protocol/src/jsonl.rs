//! The JSONL wire mode (spec §2.6): one compact JSON document per line.
//!
//! Inbound rules: a line is the bytes before a `\n`; a `\r` in front of the `\n` counts towards
//! its length and is then removed; lines holding only space, tab or `\r` are skipped without an
//! answer; a line may be up to `max_frame_bytes` long, and buffering MORE than that without a
//! `\n` is the `frame_too_large` fault, raised as soon as it happens.

use bytes::{BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::fault::{FrameFault, WireError};
use crate::limits::MAX_PAYLOAD_BYTES;

/// Decoder and encoder of JSON lines; the decoded item is the line's text without its ending.
#[derive(Debug, Clone)]
pub struct JsonlCodec {
    max_frame_bytes: usize,
    /// How many buffered bytes are already known to hold no `\n`, so that a line arriving in
    /// many small reads is scanned once, not once per read.
    scanned_bytes: usize,
}

impl JsonlCodec {
    /// A codec accepting lines of up to `max_frame_bytes` bytes (capped at 16 MiB).
    pub fn new(max_frame_bytes: usize) -> Self {
        Self {
            max_frame_bytes: max_frame_bytes.min(MAX_PAYLOAD_BYTES),
            scanned_bytes: 0,
        }
    }

    /// The inbound line limit in force.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Changes the line limit (capped at 16 MiB). The scan progress stays valid: it only
    /// records where no newline was found.
    pub fn set_max_frame_bytes(&mut self, max_frame_bytes: usize) {
        self.max_frame_bytes = max_frame_bytes.min(MAX_PAYLOAD_BYTES);
    }

    /// Forgets scan progress; needed when the buffer was filled while another codec was active.
    pub(crate) fn reset(&mut self) {
        self.scanned_bytes = 0;
    }

    /// Turns one complete line (its ending removed) into an item, or `None` for a blank line.
    fn take_line(line: &[u8]) -> Result<Option<String>, FrameFault> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            return Ok(None);
        }
        std::str::from_utf8(line)
            .map(|text| Some(text.to_owned()))
            .map_err(|_| FrameFault::InvalidUtf8)
    }
}

impl Default for JsonlCodec {
    fn default() -> Self {
        Self::new(MAX_PAYLOAD_BYTES)
    }
}

impl Decoder for JsonlCodec {
    type Item = String;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<String>, WireError> {
        loop {
            // A newline further than max_frame_bytes in would end an over-long line anyway, so
            // never look past it.
            let scan_end = src.len().min(self.max_frame_bytes + 1);
            let start = self.scanned_bytes.min(scan_end);
            let Some(found) = src[start..scan_end].iter().position(|&b| b == b'\n') else {
                if src.len() > self.max_frame_bytes {
                    return Err(FrameFault::FrameTooLarge.into());
                }
                self.scanned_bytes = src.len();
                return Ok(None);
            };
            let line_len = start + found;
            let line = src.split_to(line_len + 1);
            self.scanned_bytes = 0;
            if let Some(text) = Self::take_line(&line[..line_len])? {
                return Ok(Some(text));
            }
        }
    }

    /// A last line without a `\n` before the peer closed is still a line (people using `nc`
    /// end input with Ctrl-D).
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<String>, WireError> {
        if let Some(text) = self.decode(src)? {
            return Ok(Some(text));
        }
        let rest = src.split();
        self.scanned_bytes = 0;
        Ok(Self::take_line(&rest)?)
    }
}

/// Writes the payload followed by `\n`. The payload must be compact JSON (no raw newline) and at
/// most 16 MiB.
impl<T: AsRef<str>> Encoder<T> for JsonlCodec {
    type Error = WireError;

    fn encode(&mut self, payload: T, dst: &mut BytesMut) -> Result<(), WireError> {
        let payload = payload.as_ref().as_bytes();
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(WireError::OutboundTooLarge {
                size_bytes: payload.len(),
                limit_bytes: MAX_PAYLOAD_BYTES,
            });
        }
        if payload.contains(&b'\n') {
            return Err(WireError::NewlineInJsonlPayload);
        }
        dst.reserve(payload.len() + 1);
        dst.put_slice(payload);
        dst.put_u8(b'\n');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_each(codec: &mut JsonlCodec, buf: &mut BytesMut) -> Result<Vec<String>, WireError> {
        let mut lines = Vec::new();
        while let Some(line) = codec.decode(buf)? {
            lines.push(line);
        }
        Ok(lines)
    }

    #[test]
    fn splits_lines_and_strips_a_trailing_carriage_return() {
        let mut buf = BytesMut::from(&b"{\"a\":1}\r\n{\"b\":2}\n{\"c\""[..]);
        let lines = decode_each(&mut JsonlCodec::default(), &mut buf).unwrap();
        assert_eq!(lines, vec![r#"{"a":1}"#, r#"{"b":2}"#]);
        assert_eq!(&buf[..], br#"{"c""#);
    }

    #[test]
    fn blank_and_whitespace_only_lines_are_skipped() {
        let mut buf = BytesMut::from(&b"\n\r\n \t \r\n\t\n{}\n"[..]);
        let lines = decode_each(&mut JsonlCodec::default(), &mut buf).unwrap();
        assert_eq!(lines, vec!["{}"]);
        assert!(buf.is_empty());
    }

    #[test]
    fn only_one_carriage_return_is_stripped() {
        let mut buf = BytesMut::from(&b"{}\r\r\n"[..]);
        assert_eq!(
            JsonlCodec::default().decode(&mut buf).unwrap().as_deref(),
            Some("{}\r")
        );
    }

    #[test]
    fn line_exactly_at_the_limit_is_accepted_and_the_cr_counts() {
        let mut codec = JsonlCodec::new(8);
        let mut buf = BytesMut::from(&b"12345678\n1234567\r\n"[..]);
        let lines = decode_each(&mut codec, &mut buf).unwrap();
        assert_eq!(lines, vec!["12345678", "1234567"]);
        let mut buf = BytesMut::from(&b"12345678\r\n"[..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert_eq!(err.fault(), Some(FrameFault::FrameTooLarge));
    }

    #[test]
    fn exactly_the_limit_buffered_without_newline_is_still_pending() {
        let mut codec = JsonlCodec::new(8);
        let mut buf = BytesMut::from(&b"12345678"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.put_u8(b'\n');
        assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some("12345678"));
    }

    #[test]
    fn more_than_the_limit_without_newline_is_frame_too_large_at_once() {
        let mut codec = JsonlCodec::new(8);
        let mut buf = BytesMut::from(&b"1234"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.put_slice(b"56789");
        let err = codec.decode(&mut buf).unwrap_err();
        assert_eq!(err.fault(), Some(FrameFault::FrameTooLarge));
    }

    #[test]
    fn an_over_long_line_arriving_with_its_newline_is_refused() {
        let mut buf = BytesMut::from(&b"123456789\n"[..]);
        let err = JsonlCodec::new(8).decode(&mut buf).unwrap_err();
        assert_eq!(err.fault(), Some(FrameFault::FrameTooLarge));
    }

    #[test]
    fn invalid_utf8_line_is_a_fault() {
        let mut buf = BytesMut::from(&b"{\"a\":\"\xff\"}\n"[..]);
        let err = JsonlCodec::default().decode(&mut buf).unwrap_err();
        assert_eq!(err.fault(), Some(FrameFault::InvalidUtf8));
    }

    #[test]
    fn lines_arriving_byte_by_byte_are_assembled() {
        let mut codec = JsonlCodec::default();
        let mut buf = BytesMut::new();
        let mut lines = Vec::new();
        for &byte in b"{\"x\":1}\r\n\n{}\n" {
            buf.put_u8(byte);
            lines.extend(decode_each(&mut codec, &mut buf).unwrap());
        }
        assert_eq!(lines, vec![r#"{"x":1}"#, "{}"]);
    }

    #[test]
    fn unterminated_last_line_is_delivered_at_eof() {
        let mut buf = BytesMut::from(&b"{}\n{\"last\":true}"[..]);
        let mut codec = JsonlCodec::default();
        assert_eq!(codec.decode_eof(&mut buf).unwrap().as_deref(), Some("{}"));
        assert_eq!(
            codec.decode_eof(&mut buf).unwrap().as_deref(),
            Some(r#"{"last":true}"#)
        );
        assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
    }

    #[test]
    fn encoder_appends_a_newline() {
        let mut out = BytesMut::new();
        JsonlCodec::default()
            .encode(r#"{"pong":true}"#, &mut out)
            .unwrap();
        assert_eq!(&out[..], b"{\"pong\":true}\n");
    }

    #[test]
    fn encoder_refuses_a_payload_with_a_raw_newline() {
        let mut out = BytesMut::new();
        let err = JsonlCodec::default().encode("{\n}", &mut out).unwrap_err();
        assert!(matches!(err, WireError::NewlineInJsonlPayload));
        assert!(out.is_empty());
    }
}
