//! Errors of the byte layer: framing faults (§2.8) and the codec error that wraps them.

use std::io;

use thiserror::Error;

/// A framing fault (§2.8). After one of these the byte stream can no longer be trusted: the
/// server answers with one `BAD_REQUEST` (reason `frame_error`) and closes the connection, and a
/// client treats the connection as broken.
///
/// `Display` gives the human message that goes into the error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum FrameFault {
    /// The first 4 bytes of a frame are not `RCPX`.
    #[error("frame error: bad magic")]
    BadMagic,
    /// The frame's version field is not 1.
    #[error("frame error: unsupported frame version")]
    BadVersion,
    /// COMPRESSED or a reserved flag bit is set (`flags & 0xFFF2 != 0`).
    #[error("frame error: compressed or reserved flag set")]
    BadFlags,
    /// `payload_len` is above `max_frame_bytes`.
    #[error("frame error: payload larger than max_frame_bytes")]
    TooLarge,
    /// CRC_PRESENT is set and the CRC32C of the payload does not match.
    #[error("frame error: CRC mismatch")]
    CrcMismatch,
    /// The payload (or the JSONL line) is not valid UTF-8.
    #[error("frame error: invalid UTF-8")]
    InvalidUtf8,
    /// More than `max_frame_bytes` bytes of a JSONL line were buffered without a `\n`.
    #[error("frame error: JSONL line longer than max_frame_bytes")]
    FrameTooLarge,
}

impl FrameFault {
    /// The fault name used on the wire in `details.fault`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadMagic => "bad_magic",
            Self::BadVersion => "bad_version",
            Self::BadFlags => "bad_flags",
            Self::TooLarge => "too_large",
            Self::CrcMismatch => "crc_mismatch",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::FrameTooLarge => "frame_too_large",
        }
    }
}

/// Error of the frame, JSONL and wire codecs.
#[derive(Debug, Error)]
pub enum WireError {
    /// The inbound byte stream is malformed; the connection must close.
    #[error(transparent)]
    Fault(#[from] FrameFault),
    /// An outbound payload is over the 16 MiB ceiling (§2.4). Nothing was written; callers
    /// should have replaced such a response with `response_too_large` (see
    /// [`crate::message::encode_response`]).
    #[error("outbound payload of {size_bytes} bytes exceeds the {limit_bytes}-byte limit")]
    OutboundTooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    /// A JSONL payload contained a raw newline, which would split it into two lines. Compact
    /// JSON never does; this catches pretty-printed input.
    #[error("outbound JSONL payload contains a raw newline")]
    NewlineInJsonlPayload,
    /// The stream ended in the middle of a binary frame.
    #[error("connection closed in the middle of a frame ({buffered_bytes} bytes buffered)")]
    TruncatedFrame { buffered_bytes: usize },
    /// The underlying transport failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

impl WireError {
    /// The framing fault, if this error is one (and so deserves the §2.8 error response).
    pub fn fault(&self) -> Option<FrameFault> {
        match self {
            Self::Fault(fault) => Some(*fault),
            _ => None,
        }
    }
}
