//! Where each Raft entry of the retained log starts in the WAL: a dense list from the first
//! retained index to the last (`docs/cluster.md` section 3). Rebuilt at start-up from the
//! header records the recovery scan meets.

use super::types::LogId;
use std::collections::VecDeque;

/// One entry's id and the offset of its header record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexedEntry {
    pub log_id: LogId,
    pub offset: u64,
}

/// Why an entry cannot be indexed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {index} at offset {offset} does not follow entry {last} (the log must be dense)")]
pub struct IndexGap {
    pub index: u64,
    pub offset: u64,
    pub last: u64,
}

/// Entries `first ..= first + len - 1`, in order.
#[derive(Debug, Default, Clone)]
pub struct LogIndex {
    entries: VecDeque<IndexedEntry>,
}

impl LogIndex {
    /// Adds the next entry; it must follow the last one.
    pub fn push(&mut self, log_id: LogId, offset: u64) -> Result<(), IndexGap> {
        if let Some(last) = self.entries.back()
            && log_id.index != last.log_id.index + 1
        {
            return Err(IndexGap {
                index: log_id.index,
                offset,
                last: last.log_id.index,
            });
        }
        self.entries.push_back(IndexedEntry { log_id, offset });
        Ok(())
    }

    pub fn first(&self) -> Option<IndexedEntry> {
        self.entries.front().copied()
    }

    pub fn last(&self) -> Option<IndexedEntry> {
        self.entries.back().copied()
    }

    pub fn get(&self, index: u64) -> Option<IndexedEntry> {
        let first = self.entries.front()?.log_id.index;
        let position = usize::try_from(index.checked_sub(first)?).ok()?;
        self.entries.get(position).copied()
    }

    /// The retained indexes of `start .. end`, as a range of indexes present.
    pub fn clamp(&self, start: u64, end: u64) -> std::ops::Range<u64> {
        match (self.first(), self.last()) {
            (Some(first), Some(last)) => {
                let start = start.max(first.log_id.index);
                let end = end.min(last.log_id.index + 1);
                start..end.max(start)
            }
            _ => 0..0,
        }
    }

    /// Forgets `index` and every entry after it; returns the first one forgotten.
    pub fn truncate_from(&mut self, index: u64) -> Option<IndexedEntry> {
        let first = self.get(index)?;
        let keep = (index - self.entries.front()?.log_id.index) as usize;
        self.entries.truncate(keep);
        Some(first)
    }

    /// Forgets every entry up to and including `index`.
    pub fn purge_through(&mut self, index: u64) {
        while self
            .entries
            .front()
            .is_some_and(|entry| entry.log_id.index <= index)
        {
            self.entries.pop_front();
        }
    }
}
