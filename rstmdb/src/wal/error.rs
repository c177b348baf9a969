//! `WalError`: every way the WAL can fail, typed so the server can map each to one RCP code.

use std::io;
use std::path::PathBuf;

/// Where recovery or verification found invalid content (spec §6.1 "Corruption").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// The segment file name, e.g. `0000000000000001.wal`.
    pub segment: String,
    /// The WAL offset of the first invalid byte.
    pub offset: u64,
    /// The sequence the record there should carry (the previous record's + 1).
    pub expected_sequence: u64,
    /// What is wrong, for humans.
    pub reason: String,
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WAL corruption in segment {} at offset {} (expected sequence {}): {}",
            self.segment, self.offset, self.expected_sequence, self.reason
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("WAL I/O error while trying to {action}: {source}")]
    Io {
        action: String,
        #[source]
        source: io::Error,
    },
    #[error("record of {size} bytes exceeds the limit of {limit} bytes")]
    RecordTooLarge { size: usize, limit: usize },
    #[error("{0}")]
    Corrupt(Corruption),
    #[error("fdatasync of the WAL failed: {message}")]
    SyncFailed { message: String },
    #[error("the WAL writer stopped after an unrecoverable error ({reason}); restart to recover")]
    Poisoned { reason: String },
    #[error(
        "the WAL has used segment id {last_id}, the last one a WAL offset can address; \
         this data directory cannot take another record"
    )]
    SegmentIdsExhausted { last_id: u64 },
    #[error(
        "WAL segment {name} has an id past {last_id}, the last one a WAL offset can address \
         (rstmdb never creates one)"
    )]
    UnaddressableSegment { name: String, last_id: u64 },
    #[error("the WAL writer has been shut down")]
    ShutDown,
    #[error(
        "data directory {} is locked by another process (is a server running on it?)",
        dir.display()
    )]
    Locked { dir: PathBuf },
    #[error("replaying the record at offset {offset} failed: {source}")]
    Replay {
        offset: u64,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("invalid WAL configuration: {0}")]
    Config(String),
}

impl WalError {
    /// Advice for the operator, for the binary to show beside the error (miette `help`).
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            WalError::Corrupt(_) => Some(
                "run `rstmdb wal-inspect repair` to see the cut that removes it, then `repair --yes` \
                 (the cut bytes are kept in a .corrupt file)",
            ),
            WalError::Locked { .. } => {
                Some("stop the process that uses the data directory, or pick another --data-dir")
            }
            WalError::SegmentIdsExhausted { .. } => Some(
                "move the state into a new data directory (export the instances, import them \
                 into a fresh server) and give it a larger storage.wal_segment_size_mb",
            ),
            WalError::UnaddressableSegment { .. } => {
                Some("move the file out of the WAL directory; it is not part of this WAL")
            }
            WalError::Poisoned { .. } | WalError::SyncFailed { .. } => {
                Some("restart the server: recovery re-reads the WAL from disk")
            }
            _ => None,
        }
    }

    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(io::Error) -> WalError {
        let action = action.into();
        move |source| WalError::Io { action, source }
    }
}
