//! The connection-level codec: binary frames or JSON lines, switchable mid-stream (§2.6, §2.7).

use std::fmt;
use std::str::FromStr;

use bytes::{BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::fault::WireError;
use crate::frame::{self, FrameCodec};
use crate::jsonl::JsonlCodec;
use crate::limits::{FRAME_HEADER_BYTES, MAX_PAYLOAD_BYTES};

/// How messages are delimited on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireMode {
    /// `binary_json`: 18-byte `RCPX` header + JSON payload (§2.1). The default.
    BinaryJson,
    /// `jsonl`: one compact JSON document per line (§2.6).
    Jsonl,
}

impl WireMode {
    /// The name used in HELLO's `wire_modes` and `wire_mode`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BinaryJson => "binary_json",
            Self::Jsonl => "jsonl",
        }
    }

    /// The mode a connection starts in, given its very first byte: `{` selects JSONL, anything
    /// else binary (§2.7).
    pub fn from_first_byte(byte: u8) -> Self {
        if byte == b'{' {
            Self::Jsonl
        } else {
            Self::BinaryJson
        }
    }

    /// HELLO's rule (§4.1): the first supported entry of the client's preferences wins; unknown
    /// names are skipped; `None` means "keep the current mode".
    pub fn choose<S: AsRef<str>>(preferences: &[S]) -> Option<Self> {
        preferences
            .iter()
            .find_map(|name| name.as_ref().parse().ok())
    }
}

impl WireMode {
    /// Encodes the payload `head` + `tail` as one frame or line of this mode, without copying
    /// the two parts together first — the bytes are exactly those the codec writes for the
    /// joined text. The server sends one pre-serialised event `tail` to many subscriptions,
    /// each with its own `head`; `head_crc` is `crc32c(head)`, computed once per head, so a
    /// frame's CRC costs one pass over the tail only.
    ///
    /// Unlike the JSONL encoder this does not scan for a raw newline: compact `serde_json`
    /// output never holds one, and that is the only input it is for.
    pub fn encode_split(
        self,
        head: &[u8],
        head_crc: u32,
        tail: &[u8],
        dst: &mut BytesMut,
    ) -> Result<(), WireError> {
        let payload_bytes = head.len() + tail.len();
        let too_large = WireError::OutboundTooLarge {
            size_bytes: payload_bytes,
            limit_bytes: MAX_PAYLOAD_BYTES,
        };
        if payload_bytes > MAX_PAYLOAD_BYTES {
            return Err(too_large);
        }
        match self {
            Self::BinaryJson => {
                let payload_len = u32::try_from(payload_bytes).map_err(|_| too_large)?;
                dst.reserve(FRAME_HEADER_BYTES + payload_bytes);
                frame::put_header(dst, payload_len, crc32c::crc32c_append(head_crc, tail));
            }
            Self::Jsonl => dst.reserve(payload_bytes + 1),
        }
        dst.put_slice(head);
        dst.put_slice(tail);
        if self == Self::Jsonl {
            dst.put_u8(b'\n');
        }
        Ok(())
    }
}

impl fmt::Display for WireMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A wire mode name that this crate does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown wire mode {0:?}")]
pub struct UnknownWireMode(pub String);

impl FromStr for WireMode {
    type Err = UnknownWireMode;

    fn from_str(name: &str) -> Result<Self, UnknownWireMode> {
        match name {
            "binary_json" => Ok(Self::BinaryJson),
            "jsonl" => Ok(Self::Jsonl),
            other => Err(UnknownWireMode(other.to_owned())),
        }
    }
}

/// Frame or line codec with a current mode, for `tokio_util::codec::Framed` on either side.
///
/// The server builds it with [`WireCodec::detect`]: the mode is fixed by the first inbound byte.
/// After answering a HELLO that picks a mode, it calls [`WireCodec::set_mode`] (through
/// `Framed::codec_mut`) before encoding the HELLO response and before decoding anything else,
/// so the response and every byte already buffered behind the HELLO use the new mode.
#[derive(Debug, Clone)]
pub struct WireCodec {
    /// `None` until the first byte has been seen (server side only).
    mode: Option<WireMode>,
    frame: FrameCodec,
    jsonl: JsonlCodec,
}

impl WireCodec {
    /// A codec in a known mode (what a client uses: it starts in `binary_json`).
    pub fn new(mode: WireMode, max_frame_bytes: usize) -> Self {
        Self {
            mode: Some(mode),
            frame: FrameCodec::new(max_frame_bytes),
            jsonl: JsonlCodec::new(max_frame_bytes),
        }
    }

    /// A codec that picks its mode from the first inbound byte (the server side, §2.7).
    pub fn detect(max_frame_bytes: usize) -> Self {
        Self {
            mode: None,
            ..Self::new(WireMode::BinaryJson, max_frame_bytes)
        }
    }

    /// The current mode. Before the first byte is seen this is `BinaryJson`, which is also what
    /// anything sent that early (the connection-limit rejection, §8.4) must use.
    pub fn mode(&self) -> WireMode {
        self.mode.unwrap_or(WireMode::BinaryJson)
    }

    /// Whether the mode is still waiting for the first inbound byte.
    pub fn is_detecting(&self) -> bool {
        self.mode.is_none()
    }

    /// Switches both directions to `mode`; the next decode reads the buffered bytes in it.
    pub fn set_mode(&mut self, mode: WireMode) {
        self.mode = Some(mode);
        self.jsonl.reset();
    }

    /// The inbound payload limit in force.
    pub fn max_frame_bytes(&self) -> usize {
        self.frame.max_frame_bytes()
    }

    /// Changes the inbound limit of both modes: the server lowers it until a connection has
    /// authenticated (§13) and restores it after. The next decode checks against it, also for
    /// a frame or line already partly buffered.
    pub fn set_max_frame_bytes(&mut self, max_frame_bytes: usize) {
        self.frame.set_max_frame_bytes(max_frame_bytes);
        self.jsonl.set_max_frame_bytes(max_frame_bytes);
    }

    fn settle_mode(&mut self, src: &BytesMut) -> Option<WireMode> {
        if self.mode.is_none() {
            self.mode = src.first().map(|&byte| WireMode::from_first_byte(byte));
        }
        self.mode
    }
}

impl Decoder for WireCodec {
    type Item = String;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<String>, WireError> {
        match self.settle_mode(src) {
            None => Ok(None),
            Some(WireMode::BinaryJson) => self.frame.decode(src),
            Some(WireMode::Jsonl) => self.jsonl.decode(src),
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<String>, WireError> {
        match self.settle_mode(src) {
            None => Ok(None),
            Some(WireMode::BinaryJson) => self.frame.decode_eof(src),
            Some(WireMode::Jsonl) => self.jsonl.decode_eof(src),
        }
    }
}

impl<T: AsRef<str>> Encoder<T> for WireCodec {
    type Error = WireError;

    fn encode(&mut self, payload: T, dst: &mut BytesMut) -> Result<(), WireError> {
        match self.mode() {
            WireMode::BinaryJson => self.frame.encode(payload, dst),
            WireMode::Jsonl => self.jsonl.encode(payload, dst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FrameFault;
    use crate::limits::{FRAME_HEADER_BYTES, MAX_PAYLOAD_BYTES};

    const PING: &str = r#"{"type":"request","id":"1","op":"PING"}"#;

    fn frame(payload: &str) -> BytesMut {
        let mut out = BytesMut::new();
        FrameCodec::default().encode(payload, &mut out).unwrap();
        out
    }

    #[test]
    fn a_connection_starting_with_a_brace_is_jsonl() {
        let mut codec = WireCodec::detect(MAX_PAYLOAD_BYTES);
        let mut buf = BytesMut::from(format!("{PING}\n").as_str());
        assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some(PING));
        assert_eq!(codec.mode(), WireMode::Jsonl);
    }

    #[test]
    fn a_connection_starting_with_anything_else_is_binary() {
        let mut codec = WireCodec::detect(MAX_PAYLOAD_BYTES);
        let mut buf = frame(PING);
        assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some(PING));
        assert_eq!(codec.mode(), WireMode::BinaryJson);
    }

    #[test]
    fn a_json_line_on_a_binary_connection_is_bad_magic() {
        let mut codec = WireCodec::detect(MAX_PAYLOAD_BYTES);
        let mut buf = BytesMut::from(&b" {\"type\":\"request\",\"id\":\"1\"}\n"[..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert_eq!(err.fault(), Some(FrameFault::BadMagic));
    }

    #[test]
    fn mode_stays_undecided_until_a_byte_arrives() {
        let mut codec = WireCodec::detect(MAX_PAYLOAD_BYTES);
        assert_eq!(codec.decode(&mut BytesMut::new()).unwrap(), None);
        assert!(codec.is_detecting());
        assert_eq!(codec.mode(), WireMode::BinaryJson);
    }

    #[test]
    fn switching_mode_reads_already_buffered_bytes_in_the_new_mode() {
        let mut codec = WireCodec::detect(MAX_PAYLOAD_BYTES);
        let hello = r#"{"type":"request","id":"1","op":"HELLO","params":{"protocol_version":1,"wire_modes":["jsonl"]}}"#;
        let mut buf = frame(hello);
        buf.extend_from_slice(format!("{PING}\n").as_bytes());
        assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some(hello));
        codec.set_mode(WireMode::Jsonl);
        assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some(PING));

        let mut out = BytesMut::new();
        codec.encode("{}", &mut out).unwrap();
        assert_eq!(&out[..], b"{}\n", "responses follow the new mode too");
    }

    #[test]
    fn switching_back_to_binary_after_a_partial_line_scan() {
        let mut codec = WireCodec::new(WireMode::Jsonl, MAX_PAYLOAD_BYTES);
        let mut buf = BytesMut::from(&b"{\"type\":\"request\"}\n"[..]);
        assert!(codec.decode(&mut buf).unwrap().is_some());
        codec.set_mode(WireMode::BinaryJson);
        buf.extend_from_slice(&frame(PING));
        assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some(PING));
    }

    #[test]
    fn a_lowered_limit_refuses_from_the_header_and_a_raised_one_accepts() {
        let big = format!(
            r#"{{"type":"request","id":"1","op":"PING","pad":"{}"}}"#,
            "x".repeat(2000)
        );
        let mut codec = WireCodec::detect(MAX_PAYLOAD_BYTES);
        codec.set_max_frame_bytes(1024);
        // Only the 18 header bytes are needed to refuse it.
        let mut header_only = frame(&big);
        header_only.truncate(FRAME_HEADER_BYTES);
        let err = codec.decode(&mut header_only).unwrap_err();
        assert_eq!(err.fault(), Some(FrameFault::TooLarge));

        let mut codec = WireCodec::detect(MAX_PAYLOAD_BYTES);
        codec.set_max_frame_bytes(1024);
        codec.set_max_frame_bytes(4096);
        assert_eq!(codec.decode(&mut frame(&big)).unwrap(), Some(big.clone()));
    }

    #[test]
    fn a_lowered_limit_refuses_a_long_jsonl_line_before_its_newline() {
        let mut codec = WireCodec::detect(MAX_PAYLOAD_BYTES);
        codec.set_max_frame_bytes(1024);
        let mut buf = BytesMut::from(format!("{{\"pad\":\"{}", "x".repeat(1100)).as_str());
        let err = codec.decode(&mut buf).unwrap_err();
        assert_eq!(err.fault(), Some(FrameFault::FrameTooLarge));
    }

    #[test]
    fn hello_preferences_pick_the_first_known_mode() {
        assert_eq!(
            WireMode::choose(&["msgpack", "jsonl", "binary_json"]),
            Some(WireMode::Jsonl)
        );
        assert_eq!(
            WireMode::choose(&["binary_json", "jsonl"]),
            Some(WireMode::BinaryJson)
        );
        assert_eq!(WireMode::choose::<&str>(&[]), None);
        assert_eq!(
            WireMode::choose(&["JSONL"]),
            None,
            "names are case-sensitive"
        );
    }
}
