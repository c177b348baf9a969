//! Typed errors: [`CheckpointError`] / [`SnapshotError`] stop an operation; [`CheckpointFault`] /
//! [`SnapshotFault`] describe why one file is not valid (loading skips it, `verify` reports it).

use super::format::CheckpointName;
use std::io;
use std::path::PathBuf;

/// Why a checkpoint file is not a valid checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointFault {
    #[error("file is {file_len} bytes, shorter than the 64-byte header")]
    TooShort { file_len: u64 },
    #[error("bad magic (not a checkpoint file)")]
    BadMagic,
    #[error("header CRC mismatch: stored {stored:08x}, computed {computed:08x}")]
    HeaderCrcMismatch { stored: u32, computed: u32 },
    #[error("unsupported format version {version} (header length {header_len})")]
    UnsupportedVersion { version: u16, header_len: u16 },
    #[error(
        "header says offset {:#x} generation {}, the file name says offset {:#x} generation {}",
        in_header.checkpoint_offset, in_header.generation,
        in_name.checkpoint_offset, in_name.generation
    )]
    NameMismatch {
        in_name: CheckpointName,
        in_header: CheckpointName,
    },
    #[error("file is {file_len} bytes but the header announces a {payload_len}-byte payload")]
    LengthMismatch { payload_len: u64, file_len: u64 },
    #[error("the file ended before its {payload_len}-byte payload (it shrank while being read)")]
    Truncated { payload_len: u64 },
    #[error("payload CRC mismatch: stored {stored:08x}, computed {computed:08x}")]
    PayloadCrcMismatch { stored: u32, computed: u32 },
}

/// A checkpoint operation that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "checkpoint_offset {new} is below {newest}, the offset of {newest_file}; \
         offsets only grow, so the WAL and the checkpoints disagree"
    )]
    OffsetWentBackwards {
        new: u64,
        newest: u64,
        newest_file: String,
    },
    #[error("no generation number is left after {0}; remove or rename that file")]
    GenerationExhausted(String),
    #[error("the checkpoint store was opened read-only")]
    ReadOnly,
    #[error("no checkpoint file named {0}")]
    NotFound(String),
}

impl CheckpointError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// Why a stored instance snapshot, or its index entry, is not right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotFault {
    #[error("{snapshot_id}: indexed, but its file is missing")]
    MissingFile { snapshot_id: String },
    #[error("{snapshot_id}: checksum mismatch: index says {indexed}, file has {actual}")]
    ChecksumMismatch {
        snapshot_id: String,
        indexed: String,
        actual: String,
    },
    #[error("{snapshot_id}: size mismatch: index says {indexed} bytes, file has {actual}")]
    SizeMismatch {
        snapshot_id: String,
        indexed: u64,
        actual: u64,
    },
    #[error("{snapshot_id}: the file is not a snapshot JSON object: {reason}")]
    BadContent { snapshot_id: String, reason: String },
    #[error("index.jsonl line {line_number}: cannot be parsed: {reason}")]
    BadIndexLine { line_number: usize, reason: String },
}

/// An instance-snapshot operation that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid snapshot id {0:?}: use 1 to 128 characters from A-Z, a-z, 0-9, '-' and '_'")]
    InvalidId(String),
    #[error("snapshot {0} already exists")]
    AlreadyExists(String),
    #[error("no snapshot with id {0}")]
    NotFound(String),
    #[error("snapshot {snapshot_id} is not a valid snapshot JSON object: {source}")]
    BadContent {
        snapshot_id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot encode snapshot {snapshot_id}: {source}")]
    Encode {
        snapshot_id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the snapshot store was opened read-only")]
    ReadOnly,
}

impl SnapshotError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
