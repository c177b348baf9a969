//! Protocol-wide constants and limits (spec §2.1, §2.4, §4.15, §6.2).

/// The only protocol version this crate speaks (§4.1).
pub const PROTOCOL_VERSION: u16 = 1;

/// Length of the fixed binary frame header: `>4sHHHII` (§2.1).
pub const FRAME_HEADER_BYTES: usize = 18;

/// Frame magic, ASCII `RCPX` (§2.1).
pub const FRAME_MAGIC: [u8; 4] = *b"RCPX";

/// Hard ceiling on any payload, inbound or outbound: 16 MiB (§2.4). It is also the default and
/// the maximum of the configurable inbound `max_frame_bytes`.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;

/// The smallest `max_frame_bytes` a server may be configured with (§2.4). The codecs accept any
/// value; configuration loading is where this floor is enforced.
pub const MIN_MAX_FRAME_BYTES: usize = 64 * 1024;

/// Most sub-operations one BATCH may carry (§4.15).
pub const MAX_BATCH_OPS: usize = 100;

/// Idempotency keys are 1 to this many UTF-8 bytes long (§4.10, §6.2).
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 1024;
