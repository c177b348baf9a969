//! Where each Raft entry of the retained log starts in the WAL: a dense list from the first
//! retained index to the last (`docs/cluster.md` section 3). Rebuilt at start-up from the
//! header records the recovery scan meets.
//!
//! Eight bytes per entry: the header's offset. An entry's leader id (term and node) is the same
//! for long runs of entries, so it is kept once per run.

use super::types::{LogId, NodeId};
use openraft::CommittedLeaderId;
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

/// Entries `first ..= first + offsets.len() - 1`, in order.
#[derive(Debug, Default, Clone)]
pub struct LogIndex {
    /// The index of `offsets[0]`.
    first: u64,
    offsets: VecDeque<u64>,
    /// Each run of entries with one leader id: the run's first index and the leader id, in
    /// order. The first run starts at or before `first`; empty when `offsets` is.
    leaders: VecDeque<(u64, CommittedLeaderId<NodeId>)>,
}

impl LogIndex {
    /// Adds the next entry; it must follow the last one.
    pub fn push(&mut self, log_id: LogId, offset: u64) -> Result<(), IndexGap> {
        match self.last() {
            Some(last) if log_id.index != last.log_id.index + 1 => {
                return Err(IndexGap {
                    index: log_id.index,
                    offset,
                    last: last.log_id.index,
                });
            }
            Some(_) => {}
            None => self.first = log_id.index,
        }
        if self.leaders.back().map(|(_, leader)| leader) != Some(&log_id.leader_id) {
            self.leaders.push_back((log_id.index, log_id.leader_id));
        }
        self.offsets.push_back(offset);
        Ok(())
    }

    pub fn first(&self) -> Option<IndexedEntry> {
        self.get(self.first)
    }

    pub fn last(&self) -> Option<IndexedEntry> {
        let len = self.offsets.len() as u64;
        self.get((self.first + len).checked_sub(1)?)
    }

    pub fn get(&self, index: u64) -> Option<IndexedEntry> {
        let position = usize::try_from(index.checked_sub(self.first)?).ok()?;
        let offset = *self.offsets.get(position)?;
        // The last run that starts at or before `index`.
        let run = self.leaders.partition_point(|(start, _)| *start <= index);
        let (_, leader_id) = self.leaders.get(run.checked_sub(1)?)?;
        Some(IndexedEntry {
            log_id: LogId::new(*leader_id, index),
            offset,
        })
    }

    /// The retained indexes of `start .. end`.
    pub fn clamp(&self, start: u64, end: u64) -> std::ops::Range<u64> {
        if self.offsets.is_empty() {
            return 0..0;
        }
        let start = start.max(self.first);
        let end = end.min(self.first + self.offsets.len() as u64);
        start..end.max(start)
    }

    /// Forgets `index` and every entry after it; returns the first one forgotten.
    pub fn truncate_from(&mut self, index: u64) -> Option<IndexedEntry> {
        let removed = self.get(index)?;
        self.offsets.truncate((index - self.first) as usize);
        while self
            .leaders
            .back()
            .is_some_and(|(start, _)| *start >= index)
        {
            self.leaders.pop_back();
        }
        if self.offsets.is_empty() {
            // A run that began before the first retained entry (after a purge) goes too.
            self.leaders.clear();
        }
        Some(removed)
    }

    /// Forgets every entry up to and including `index`.
    pub fn purge_through(&mut self, index: u64) {
        while !self.offsets.is_empty() && self.first <= index {
            self.offsets.pop_front();
            self.first += 1;
        }
        if self.offsets.is_empty() {
            self.leaders.clear();
            return;
        }
        // Runs that end before the first retained entry.
        while self
            .leaders
            .get(1)
            .is_some_and(|(start, _)| *start <= self.first)
        {
            self.leaders.pop_front();
        }
    }

    #[cfg(test)]
    fn runs(&self) -> usize {
        self.leaders.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    /// Entries 5..=14: terms 1 (5..=7), 2 (8..=11), 3 (12..=14); offsets 100 × index.
    fn index() -> LogIndex {
        let mut index = LogIndex::default();
        for i in 5..15 {
            let term = match i {
                5..=7 => 1,
                8..=11 => 2,
                _ => 3,
            };
            index.push(id(term, i), 100 * i).expect("dense");
        }
        index
    }

    fn ids(index: &LogIndex) -> Vec<LogId> {
        let range = index.clamp(0, u64::MAX);
        range
            .map(|i| index.get(i).expect("present").log_id)
            .collect()
    }

    #[test]
    fn each_entry_keeps_its_own_leader_and_offset_with_one_leader_kept_per_run() {
        let index = index();
        assert_eq!(index.runs(), 3);
        assert_eq!(
            index.first(),
            Some(IndexedEntry {
                log_id: id(1, 5),
                offset: 500
            })
        );
        assert_eq!(index.get(7).map(|e| e.log_id), Some(id(1, 7)));
        assert_eq!(index.get(8).map(|e| e.log_id), Some(id(2, 8)));
        assert_eq!(index.get(11).map(|e| e.offset), Some(1100));
        assert_eq!(
            index.last(),
            Some(IndexedEntry {
                log_id: id(3, 14),
                offset: 1400
            })
        );
        assert_eq!((index.get(4), index.get(15)), (None, None));
        assert_eq!(index.clamp(0, 100), 5..15);
        assert_eq!(index.clamp(9, 11), 9..11);
        assert_eq!(index.clamp(20, 30), 20..20);
    }

    #[test]
    fn a_gap_is_refused() {
        let mut index = index();
        let err = index.push(id(3, 16), 1600).expect_err("gap");
        assert_eq!((err.index, err.last), (16, 14));
    }

    #[test]
    fn truncating_drops_the_runs_that_start_at_or_after_the_cut() {
        let mut index = index();
        assert_eq!(index.truncate_from(10).map(|e| e.log_id), Some(id(2, 10)));
        assert_eq!(index.runs(), 2);
        index.push(id(4, 10), 1050).expect("the new leader's entry");
        assert_eq!(index.get(9).map(|e| e.log_id), Some(id(2, 9)));
        assert_eq!(
            index.get(10),
            Some(IndexedEntry {
                log_id: id(4, 10),
                offset: 1050
            })
        );

        let mut index = self::index();
        index.purge_through(6);
        index.truncate_from(7);
        assert_eq!(
            (index.first(), index.runs()),
            (None, 0),
            "nothing left, no run left"
        );

        let mut index = self::index();
        index.truncate_from(8);
        assert_eq!(index.runs(), 1, "term 2's run started at the cut");
        assert_eq!(ids(&index), [id(1, 5), id(1, 6), id(1, 7)]);
        assert_eq!(index.truncate_from(20), None);
    }

    #[test]
    fn purging_keeps_the_run_of_the_first_retained_entry() {
        let mut index = index();
        index.purge_through(9);
        assert_eq!(index.runs(), 2);
        assert_eq!(index.first().map(|e| e.log_id), Some(id(2, 10)));
        assert_eq!(ids(&index).len(), 5);
        index.purge_through(11);
        assert_eq!(index.runs(), 1);
        assert_eq!(index.first().map(|e| e.log_id), Some(id(3, 12)));
        index.purge_through(40);
        assert_eq!((index.first(), index.last(), index.runs()), (None, None, 0));
        index
            .push(id(5, 41), 4100)
            .expect("a new start after a purge");
        assert_eq!(index.first().map(|e| e.log_id), Some(id(5, 41)));
    }
}
