//! The fsync policy and the writer's configuration.

use super::error::WalError;
use super::record::{HEADER_LEN, MAX_RECORD_PAYLOAD_BYTES};
use super::segment::MAX_SEGMENT_BYTES;
use std::fmt;

/// When appended records are made durable (spec §6.1). Displayed as in WAL_STATS:
/// `every_write`, `every_n:100`, `every_ms:10`, `never`. The configuration's value forms and
/// default are `config::FsyncPolicySetting`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// A write is committed once an fdatasync covering it has returned (group commit: one sync
    /// covers every record appended while the previous one ran). Power loss loses nothing that
    /// was acknowledged.
    EveryWrite,
    /// Committed once written to the file; a sync runs after every N records. Power loss can lose
    /// up to the last N − 1 acknowledged records (plus those of a sync in flight).
    EveryN(u32),
    /// Committed once written; a timer syncs every N ms while unsynced records exist. Power loss
    /// can lose the acknowledged records of roughly the last N ms.
    EveryMs(u32),
    /// Committed once written; synced at rotation, on an explicit `sync()`, at shutdown and by
    /// the writeback (`WRITEBACK_BYTES`) that every policy has.
    /// A process crash loses nothing (the page cache survives); power loss can lose everything
    /// written since the last sync.
    Never,
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsyncPolicy::EveryWrite => f.write_str("every_write"),
            FsyncPolicy::EveryN(n) => write!(f, "every_n:{n}"),
            FsyncPolicy::EveryMs(ms) => write!(f, "every_ms:{ms}"),
            FsyncPolicy::Never => f.write_str("never"),
        }
    }
}

/// Writer settings. `Default` is `[storage]`'s defaults (64 MiB segments, `every_write`),
/// implemented in `crate::assemble`: the configuration model owns every default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalConfig {
    /// A record starts a new segment when it would take the current (non-empty) segment past
    /// this many bytes.
    pub segment_size_bytes: u64,
    pub fsync_policy: FsyncPolicy,
}

impl WalConfig {
    /// Refuses sizes that could let a segment pass 2^40 bytes, and zero counts.
    pub fn validate(&self) -> Result<(), WalError> {
        let max = MAX_SEGMENT_BYTES - (HEADER_LEN + MAX_RECORD_PAYLOAD_BYTES) as u64;
        if self.segment_size_bytes == 0 || self.segment_size_bytes > max {
            return Err(WalError::Config(format!(
                "segment_size_bytes must be between 1 and {max}, not {}",
                self.segment_size_bytes
            )));
        }
        if matches!(
            self.fsync_policy,
            FsyncPolicy::EveryN(0) | FsyncPolicy::EveryMs(0)
        ) {
            return Err(WalError::Config(
                "fsync policy counts must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_display_as_in_wal_stats() {
        for (p, s) in [
            (FsyncPolicy::EveryWrite, "every_write"),
            (FsyncPolicy::EveryN(100), "every_n:100"),
            (FsyncPolicy::EveryMs(10), "every_ms:10"),
            (FsyncPolicy::Never, "never"),
        ] {
            assert_eq!(p.to_string(), s);
        }
    }
}
