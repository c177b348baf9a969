//! The fsync policy and the writer's configuration.

use super::error::WalError;
use super::record::{HEADER_LEN, MAX_PAYLOAD_BYTES};
use super::segment::MAX_SEGMENT_BYTES;
use std::fmt;
use std::str::FromStr;

/// When appended records are made durable (spec §6.1). Displayed as in WAL_STATS:
/// `every_write`, `every_n:100`, `every_ms:10`, `never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// A write is committed once an fdatasync covering it has returned (group commit: one sync
    /// covers every record appended while the previous one ran). Power loss loses nothing that
    /// was acknowledged.
    #[default]
    EveryWrite,
    /// Committed once written to the file; a sync runs after every N records. Power loss can lose
    /// up to the last N − 1 acknowledged records (plus those of a sync in flight).
    EveryN(u32),
    /// Committed once written; a timer syncs every N ms while unsynced records exist. Power loss
    /// can lose the acknowledged records of roughly the last N ms.
    EveryMs(u32),
    /// Committed once written; synced only at rotation, on an explicit `sync()` and at shutdown.
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

impl FromStr for FsyncPolicy {
    type Err = WalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || WalError::Config(format!("unknown fsync policy {s:?}"));
        let number = |v: &str| match v.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(bad()),
        };
        match s.split_once(':') {
            None if s == "every_write" => Ok(FsyncPolicy::EveryWrite),
            None if s == "never" => Ok(FsyncPolicy::Never),
            Some(("every_n", n)) => Ok(FsyncPolicy::EveryN(number(n)?)),
            Some(("every_ms", n)) => Ok(FsyncPolicy::EveryMs(number(n)?)),
            _ => Err(bad()),
        }
    }
}

pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 64 << 20;

/// Writer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalConfig {
    /// A record starts a new segment when it would take the current (non-empty) segment past
    /// this many bytes.
    pub segment_size_bytes: u64,
    pub fsync_policy: FsyncPolicy,
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            fsync_policy: FsyncPolicy::default(),
        }
    }
}

impl WalConfig {
    /// Refuses sizes that could let a segment pass 2^40 bytes, and zero counts.
    pub fn validate(&self) -> Result<(), WalError> {
        let max = MAX_SEGMENT_BYTES - (HEADER_LEN + MAX_PAYLOAD_BYTES) as u64;
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
    fn policies_display_as_in_wal_stats_and_parse_back() {
        for (p, s) in [
            (FsyncPolicy::EveryWrite, "every_write"),
            (FsyncPolicy::EveryN(100), "every_n:100"),
            (FsyncPolicy::EveryMs(10), "every_ms:10"),
            (FsyncPolicy::Never, "never"),
        ] {
            assert_eq!(p.to_string(), s);
            assert_eq!(s.parse::<FsyncPolicy>().ok(), Some(p));
        }
        assert!("every_n:0".parse::<FsyncPolicy>().is_err());
        assert!("sometimes".parse::<FsyncPolicy>().is_err());
    }
}
