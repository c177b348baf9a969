//! The newest entries of the log, kept in memory as they were appended: openraft reads each
//! new entry back once per replication stream right after appending it, and reading it from
//! the WAL would check and parse every record again for every follower. Bounded by bytes; the
//! WAL stays the truth (a miss reads it).

use super::types::{Entry, RaftCommand};
use openraft::EntryPayload;
use std::collections::VecDeque;

/// Payload bytes of the entries kept at most.
pub const MAX_CACHED_ENTRY_BYTES: usize = 32 << 20;

/// A contiguous run of the log's newest entries.
#[derive(Debug, Default)]
pub struct EntryCache {
    entries: VecDeque<(Entry, usize)>,
    bytes: usize,
}

fn entry_bytes(entry: &Entry) -> usize {
    match &entry.payload {
        EntryPayload::Normal(RaftCommand { records, .. }) => records
            .iter()
            .map(|record| record.payload.get().len() + 32)
            .sum::<usize>(),
        _ => 256,
    }
}

impl EntryCache {
    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|(entry, _)| entry.log_id.index)
    }

    fn next_index(&self) -> Option<u64> {
        self.entries.back().map(|(entry, _)| entry.log_id.index + 1)
    }

    /// Keeps `entries`, appended just now after the ones kept (anything else starts over).
    pub fn appended(&mut self, entries: &[Entry]) {
        for entry in entries {
            if self
                .next_index()
                .is_some_and(|next| next != entry.log_id.index)
            {
                self.clear();
            }
            let bytes = entry_bytes(entry);
            self.bytes += bytes;
            self.entries.push_back((entry.clone(), bytes));
        }
        while self.bytes > MAX_CACHED_ENTRY_BYTES {
            let Some((_, bytes)) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= bytes;
        }
    }

    /// Entries `start..end`, if every one of them is kept.
    pub fn get(&self, start: u64, end: u64) -> Option<Vec<Entry>> {
        let (first, next) = (self.first_index()?, self.next_index()?);
        if start < first || end > next || start >= end {
            return None;
        }
        let skip = usize::try_from(start - first).ok()?;
        let take = usize::try_from(end - start).ok()?;
        Some(
            self.entries
                .iter()
                .skip(skip)
                .take(take)
                .map(|(entry, _)| entry.clone())
                .collect(),
        )
    }

    /// Forgets entries `index..` (the log was cut there).
    pub fn truncate_from(&mut self, index: u64) {
        while self
            .entries
            .back()
            .is_some_and(|(entry, _)| entry.log_id.index >= index)
        {
            if let Some((_, bytes)) = self.entries.pop_back() {
                self.bytes -= bytes;
            }
        }
    }

    /// Forgets entries `..=index` (purged).
    pub fn purge_through(&mut self, index: u64) {
        while self
            .entries
            .front()
            .is_some_and(|(entry, _)| entry.log_id.index <= index)
        {
            if let Some((_, bytes)) = self.entries.pop_front() {
                self.bytes -= bytes;
            }
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::types::{CommandRecord, LogId};
    use openraft::CommittedLeaderId;

    fn entry(index: u64, payload_bytes: usize) -> Entry {
        let text = format!("\"{}\"", "x".repeat(payload_bytes));
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(RaftCommand {
                origin: index,
                records: vec![CommandRecord {
                    kind: 2,
                    timestamp_ms: 0,
                    payload: serde_json::value::RawValue::from_string(text).expect("json"),
                }],
            }),
        }
    }

    #[test]
    fn a_range_is_served_only_when_every_entry_of_it_is_kept() {
        let mut cache = EntryCache::default();
        cache.appended(&[entry(5, 10), entry(6, 10), entry(7, 10)]);
        let got = cache.get(6, 8).expect("kept");
        assert_eq!(
            got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
            [6, 7]
        );
        assert!(cache.get(4, 6).is_none(), "entry 4 was never kept");
        assert!(cache.get(7, 9).is_none(), "entry 8 does not exist yet");
        cache.truncate_from(7);
        assert!(cache.get(7, 8).is_none(), "entry 7 was cut");
        cache.appended(&[entry(7, 10)]);
        assert!(cache.get(5, 8).is_some(), "entry 7 again, after the cut");
        cache.purge_through(5);
        assert!(cache.get(5, 6).is_none(), "entry 5 was purged");
    }

    #[test]
    fn the_oldest_entries_go_first_past_the_byte_limit_and_a_gap_starts_over() {
        let mut cache = EntryCache::default();
        let big = MAX_CACHED_ENTRY_BYTES / 4;
        cache.appended(&[entry(1, big), entry(2, big), entry(3, big), entry(4, big)]);
        assert!(
            cache.get(1, 2).is_none(),
            "entry 1 was dropped for the limit"
        );
        assert!(cache.get(2, 5).is_some());
        cache.appended(&[entry(9, 1)]);
        assert!(
            cache.get(4, 5).is_none(),
            "a gap forgets what came before it"
        );
        assert!(cache.get(9, 10).is_some());
    }
}
