//! The checkpoint file format: names and the 64-byte header (`docs/checkpoint-format.md` §1.1–1.2).
//! Pure functions over bytes; the store does the I/O.

use super::error::CheckpointFault;

/// The first eight bytes of every checkpoint file.
pub const MAGIC: [u8; 8] = *b"RSTMCKPT";
/// The only format version this code writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 64;
/// The header CRC covers the bytes before it.
const HEADER_CRC_AT: usize = 60;

const NAME_PREFIX: &str = "checkpoint-";
const NAME_SUFFIX: &str = ".ckpt";
/// Suffix of a checkpoint being written; such a file is never loaded.
pub const TEMP_SUFFIX: &str = ".tmp";

/// What the caller knows about the state it checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointMeta {
    /// Exclusive bound: the checkpoint covers every WAL record whose offset is below it (§6.10).
    pub checkpoint_offset: u64,
    /// Sequence of the last record covered; 0 if the checkpoint covers no record.
    pub last_sequence: u64,
    /// When the checkpoint was taken, Unix epoch milliseconds (the caller owns the clock).
    pub created_at_ms: i64,
}

/// The identity of a checkpoint file, as encoded in its name. Orders oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CheckpointName {
    pub checkpoint_offset: u64,
    pub generation: u64,
}

impl CheckpointName {
    /// `checkpoint-<offset:016x>-<generation:016x>.ckpt`
    pub fn file_name(&self) -> String {
        format!(
            "{NAME_PREFIX}{:016x}-{:016x}{NAME_SUFFIX}",
            self.checkpoint_offset, self.generation
        )
    }

    /// Parses a final checkpoint file name; `None` for anything else (temp files included).
    pub fn parse(file_name: &str) -> Option<Self> {
        let middle = file_name
            .strip_prefix(NAME_PREFIX)?
            .strip_suffix(NAME_SUFFIX)?;
        let (offset_hex, generation_hex) = middle.split_once('-')?;
        Some(Self {
            checkpoint_offset: parse_hex16(offset_hex)?,
            generation: parse_hex16(generation_hex)?,
        })
    }

    /// Parses the name of a temp file left by an unfinished write.
    pub fn parse_temp(file_name: &str) -> Option<Self> {
        Self::parse(file_name.strip_suffix(TEMP_SUFFIX)?)
    }
}

/// Exactly 16 lowercase hex digits, so that names sort in numeric order and each value has one
/// spelling.
fn parse_hex16(text: &str) -> Option<u64> {
    let well_formed = text.len() == 16
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

/// A decoded, self-consistent header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub name: CheckpointName,
    pub last_sequence: u64,
    pub created_at_ms: i64,
    pub payload_len: u64,
    pub payload_crc32c: u32,
}

impl Header {
    /// The header of a payload given as consecutive parts (one part or many: the same bytes
    /// give the same header).
    pub fn for_parts(name: CheckpointName, meta: &CheckpointMeta, payload: &[&[u8]]) -> Self {
        Self::new(
            name,
            meta,
            payload.iter().map(|part| part.len() as u64).sum(),
            payload
                .iter()
                .fold(0, |crc, part| crc32c::crc32c_append(crc, part)),
        )
    }

    /// The header of a payload of `payload_len` bytes whose CRC-32C is `payload_crc32c`.
    pub fn new(
        name: CheckpointName,
        meta: &CheckpointMeta,
        payload_len: u64,
        payload_crc32c: u32,
    ) -> Self {
        Self {
            name,
            last_sequence: meta.last_sequence,
            created_at_ms: meta.created_at_ms,
            payload_len,
            payload_crc32c,
        }
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[0..8].copy_from_slice(&MAGIC);
        bytes[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes[10..12].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        // bytes 12..16 are reserved and stay zero
        bytes[16..24].copy_from_slice(&self.name.checkpoint_offset.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.last_sequence.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.name.generation.to_le_bytes());
        bytes[40..48].copy_from_slice(&self.created_at_ms.to_le_bytes());
        bytes[48..56].copy_from_slice(&self.payload_len.to_le_bytes());
        bytes[56..60].copy_from_slice(&self.payload_crc32c.to_le_bytes());
        let header_crc = crc32c::crc32c(&bytes[..HEADER_CRC_AT]);
        bytes[HEADER_CRC_AT..].copy_from_slice(&header_crc.to_le_bytes());
        bytes
    }

    /// Checks 1–5 of the format document: everything except the payload CRC, which needs the
    /// payload. `file_len` is the length of the whole file; `expected` comes from its name.
    pub fn decode(
        bytes: &[u8],
        file_len: u64,
        expected: CheckpointName,
    ) -> Result<Self, CheckpointFault> {
        let Some(bytes) = bytes.get(..HEADER_LEN) else {
            return Err(CheckpointFault::TooShort { file_len });
        };
        if bytes[0..8] != MAGIC {
            return Err(CheckpointFault::BadMagic);
        }
        let stored_crc = u32_at(bytes, HEADER_CRC_AT);
        let computed_crc = crc32c::crc32c(&bytes[..HEADER_CRC_AT]);
        if stored_crc != computed_crc {
            return Err(CheckpointFault::HeaderCrcMismatch {
                stored: stored_crc,
                computed: computed_crc,
            });
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        let header_len = u16::from_le_bytes([bytes[10], bytes[11]]);
        if version != FORMAT_VERSION || usize::from(header_len) != HEADER_LEN {
            return Err(CheckpointFault::UnsupportedVersion {
                version,
                header_len,
            });
        }
        let header = Self {
            name: CheckpointName {
                checkpoint_offset: u64_at(bytes, 16),
                generation: u64_at(bytes, 32),
            },
            last_sequence: u64_at(bytes, 24),
            created_at_ms: i64::from_le_bytes(array_at(bytes, 40)),
            payload_len: u64_at(bytes, 48),
            payload_crc32c: u32_at(bytes, 56),
        };
        if header.name != expected {
            return Err(CheckpointFault::NameMismatch {
                in_name: expected,
                in_header: header.name,
            });
        }
        let expected_len = (HEADER_LEN as u64).checked_add(header.payload_len);
        if expected_len != Some(file_len) {
            return Err(CheckpointFault::LengthMismatch {
                payload_len: header.payload_len,
                file_len,
            });
        }
        Ok(header)
    }

    pub fn meta(&self) -> CheckpointMeta {
        CheckpointMeta {
            checkpoint_offset: self.name.checkpoint_offset,
            last_sequence: self.last_sequence,
            created_at_ms: self.created_at_ms,
        }
    }
}

fn array_at<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(array_at(bytes, at))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(array_at(bytes, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: CheckpointName = CheckpointName {
        checkpoint_offset: (3 << 40) + 774,
        generation: 2,
    };

    fn header_for(payload: &[u8]) -> [u8; HEADER_LEN] {
        let meta = CheckpointMeta {
            checkpoint_offset: NAME.checkpoint_offset,
            last_sequence: 41,
            created_at_ms: 1_767_225_600_000,
        };
        Header::for_parts(NAME, &meta, &[payload]).encode()
    }

    #[test]
    fn a_payload_written_in_parts_gets_the_header_of_the_whole() {
        let meta = CheckpointMeta {
            checkpoint_offset: NAME.checkpoint_offset,
            last_sequence: 41,
            created_at_ms: 1_767_225_600_000,
        };
        let whole = b"an engine image, encoded a step at a time".as_slice();
        for at in [0, 1, 17, whole.len()] {
            let (first, second) = whole.split_at(at);
            let parts = Header::for_parts(NAME, &meta, &[first, &[], second]);
            assert_eq!(parts.encode(), header_for(whole), "split at {at}");
        }
    }

    #[test]
    fn names_are_fixed_width_hex_and_round_trip() {
        assert_eq!(
            NAME.file_name(),
            "checkpoint-0000030000000306-0000000000000002.ckpt"
        );
        assert_eq!(CheckpointName::parse(&NAME.file_name()), Some(NAME));
        let temp = format!("{}{TEMP_SUFFIX}", NAME.file_name());
        assert_eq!(CheckpointName::parse(&temp), None);
        assert_eq!(CheckpointName::parse_temp(&temp), Some(NAME));
    }

    #[test]
    fn names_with_other_spellings_are_not_checkpoints() {
        for name in [
            "checkpoint-0000030000000306-2.ckpt",
            "checkpoint-0000030000000306-000000000000000A.ckpt",
            "checkpoint-0000030000000306-0000000000000002.json",
            "index.jsonl",
        ] {
            assert_eq!(CheckpointName::parse(name), None, "{name}");
        }
    }

    #[test]
    fn name_order_is_creation_order() {
        let older = CheckpointName {
            checkpoint_offset: 1 << 40,
            generation: 9,
        };
        let same_offset_forced = CheckpointName {
            checkpoint_offset: 1 << 40,
            generation: 10,
        };
        assert!(older < same_offset_forced);
        assert!(older.file_name() < same_offset_forced.file_name());
        assert!(same_offset_forced < NAME);
        assert!(same_offset_forced.file_name() < NAME.file_name());
    }

    #[test]
    fn header_round_trips() {
        let payload = b"state";
        let bytes = header_for(payload);
        let header = Header::decode(&bytes, (HEADER_LEN + payload.len()) as u64, NAME)
            .expect("valid header");
        assert_eq!(header.last_sequence, 41);
        assert_eq!(header.created_at_ms, 1_767_225_600_000);
        assert_eq!(header.payload_len, 5);
        assert_eq!(header.payload_crc32c, crc32c::crc32c(payload));
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
            file_len in proptest::num::u64::ANY,
        ) {
            let _ = Header::decode(&bytes, file_len, NAME);
        }

        #[test]
        fn parsing_arbitrary_names_never_panics(name in "\\PC{0,60}") {
            let _ = CheckpointName::parse(&name);
            let _ = CheckpointName::parse_temp(&name);
        }
    }

    #[test]
    fn header_faults_are_named() {
        let bytes = header_for(b"state");
        let len = (HEADER_LEN + 5) as u64;

        let mut flipped = bytes;
        flipped[20] ^= 1;
        assert!(matches!(
            Header::decode(&flipped, len, NAME),
            Err(CheckpointFault::HeaderCrcMismatch { .. })
        ));
        let mut bad_magic = bytes;
        bad_magic[0] = b'X';
        assert_eq!(
            Header::decode(&bad_magic, len, NAME),
            Err(CheckpointFault::BadMagic)
        );
        assert_eq!(
            Header::decode(&bytes[..10], 10, NAME),
            Err(CheckpointFault::TooShort { file_len: 10 })
        );
        assert!(matches!(
            Header::decode(&bytes, len + 1, NAME),
            Err(CheckpointFault::LengthMismatch { .. })
        ));
        let renamed = CheckpointName {
            generation: 3,
            ..NAME
        };
        assert!(matches!(
            Header::decode(&bytes, len, renamed),
            Err(CheckpointFault::NameMismatch { .. })
        ));
    }
}
