//! Read-only positions, statistics, readers and segment deletion of a [`Wal`] (spec §4.18,
//! §4.19, §6.10).

use super::error::WalError;
use super::placement::Placement;
use super::policy::FsyncPolicy;
use super::reader::WalReader;
use super::segment::{offset_of, position_of, segment_file_name, segment_of};
use super::stats::{IoCounters, WalStats};
use super::sync::lock;
use super::writer::{DeletedSegments, SegmentInfo, Wal};
use std::collections::VecDeque;
use std::sync::Arc;

impl Wal {
    pub fn fsync_policy(&self) -> FsyncPolicy {
        self.config.fsync_policy
    }

    /// The end of the last committed record (spec §6.10 "commit position").
    pub fn committed_offset(&self) -> u64 {
        let st = lock(&self.durability.state);
        match self.config.fsync_policy {
            FsyncPolicy::EveryWrite => st.durable_offset,
            _ => st.written_offset,
        }
    }

    pub fn durable_offset(&self) -> u64 {
        lock(&self.durability.state).durable_offset
    }

    /// The end of the last record written (2^40 on a fresh database).
    pub fn latest_offset(&self) -> u64 {
        let n = lock(&self.append).newest();
        offset_of(n.id, n.logical_len)
    }

    /// Where the next record will land: at [`Wal::latest_offset`], with this WAL's segment
    /// size, placed by the same rule the writer uses.
    pub fn placement(&self) -> Placement {
        Placement::at(self.latest_offset(), self.config.segment_size_bytes)
    }

    /// [`Wal::latest_offset`] and [`Wal::last_sequence`] read together: the end of the log and
    /// the sequence of the record that ends there.
    pub fn end_position(&self) -> (u64, u64) {
        let a = lock(&self.append);
        let n = a.newest();
        (offset_of(n.id, n.logical_len), a.next_sequence - 1)
    }

    /// The sequence of the newest record (0 when none).
    pub fn last_sequence(&self) -> u64 {
        lock(&self.append).next_sequence - 1
    }

    pub fn segments(&self) -> Vec<SegmentInfo> {
        lock(&self.append).segments.iter().copied().collect()
    }

    /// 0 while no segment was ever deleted, else (oldest retained id) << 40.
    pub fn oldest_offset(&self) -> u64 {
        oldest_offset_of(&lock(&self.append).segments)
    }

    /// The sum of the sizes of retained records whose offset is at or above `offset`.
    pub fn bytes_since(&self, offset: u64) -> u64 {
        let a = lock(&self.append);
        a.segments
            .iter()
            .map(|s| match s.id.cmp(&segment_of(offset)) {
                std::cmp::Ordering::Greater => s.logical_len,
                std::cmp::Ordering::Equal => s.logical_len.saturating_sub(position_of(offset)),
                std::cmp::Ordering::Less => 0,
            })
            .sum()
    }

    pub fn counters(&self) -> &Arc<IoCounters> {
        &self.counters
    }

    pub fn stats(&self) -> WalStats {
        // Lock order: append, then sync state, then the fsync window; never the window first.
        // Both positions are read under the append lock so `durable <= latest` holds.
        let (
            entry_count,
            segment_count,
            total_size_bytes,
            latest_offset,
            oldest_offset,
            durable_offset,
        ) = {
            let a = lock(&self.append);
            let n = a.newest();
            (
                a.next_sequence - 1,
                a.segments.len() as u64,
                a.segments.iter().map(|s| s.logical_len).sum(),
                offset_of(n.id, n.logical_len),
                oldest_offset_of(&a.segments),
                self.durable_offset(),
            )
        };
        let window = lock(&self.durability.window);
        let (p50, p99) = window.latency_percentiles_us();
        WalStats {
            entry_count,
            segment_count,
            total_size_bytes,
            latest_offset,
            durable_offset,
            oldest_offset,
            io: self.counters.snapshot(),
            fsync_policy: self.config.fsync_policy.to_string(),
            fsync_latency_us_p50: p50,
            fsync_latency_us_p99: p99,
            records_per_fsync: window.records_per_fsync(),
        }
    }

    /// Reads committed records with offset >= `from_offset` (from the oldest retained record
    /// when `from_offset` is below it).
    pub fn reader(&self, from_offset: u64) -> WalReader {
        WalReader::new(
            Arc::clone(&self.storage),
            Arc::clone(&self.counters),
            from_offset,
            self.committed_offset(),
        )
    }

    /// Reads the records with `from_offset <= offset < end_offset` (cluster mode, where
    /// commit is Raft's: the caller knows the end).
    pub fn reader_to(&self, from_offset: u64, end_offset: u64) -> WalReader {
        WalReader::new(
            Arc::clone(&self.storage),
            Arc::clone(&self.counters),
            from_offset,
            end_offset.min(self.latest_offset()),
        )
    }

    /// Reads every record written with offset >= `from_offset`, committed or not: the Raft
    /// log reads its own tail before it is durable (cluster mode, `docs/cluster.md` section 5).
    /// `from_offset` must be where a record starts (an entry's header, from the log's index):
    /// the read begins there.
    pub fn reader_written(&self, from_offset: u64) -> WalReader {
        WalReader::from_record(
            Arc::clone(&self.storage),
            Arc::clone(&self.counters),
            from_offset,
            self.latest_offset(),
        )
    }

    /// Compaction (spec §4.19 step 2): deletes every segment with an id below `id`, never the
    /// newest, and makes the deletions durable.
    ///
    /// The segments leave the list under the append lock, so the oldest offset moves up before
    /// any file disappears (catch-up readers check it after reading); their files are removed
    /// after the lock is released, so appends do not wait for the file system (about 4 ms per
    /// 64 MiB segment on this machine's ext4: a stall writers saw during every COMPACT).
    pub fn delete_segments_below(&self, id: u64) -> Result<DeletedSegments, WalError> {
        let doomed: Vec<SegmentInfo> = {
            let mut a = lock(&self.append);
            let mut doomed = Vec::new();
            while a.segments.len() > 1 && a.segments.front().is_some_and(|s| s.id < id) {
                doomed.extend(a.segments.pop_front());
            }
            doomed
        };
        let mut deleted = DeletedSegments::default();
        for (at, segment) in doomed.iter().enumerate() {
            let name = segment_file_name(segment.id);
            if let Err(source) = self.storage.remove(&name) {
                // What is still on disk goes back to the front of the list, oldest first:
                // only segments newer than these were added meanwhile.
                let mut a = lock(&self.append);
                for kept in doomed[at..].iter().rev() {
                    a.segments.push_front(*kept);
                }
                return Err(WalError::Io {
                    action: format!("delete {name}"),
                    source,
                });
            }
            deleted.segments += 1;
            deleted.bytes_reclaimed += segment.logical_len;
        }
        if deleted.segments > 0 {
            self.storage
                .sync_dir()
                .map_err(WalError::io("sync the WAL directory"))?;
        }
        Ok(deleted)
    }
}

fn oldest_offset_of(segments: &VecDeque<SegmentInfo>) -> u64 {
    match segments.front() {
        Some(s) if s.id > 1 => offset_of(s.id, 0),
        _ => 0,
    }
}
