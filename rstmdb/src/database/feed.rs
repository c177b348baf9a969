//! What a watch subscription needs from the database (docs/watch-streams.md): its starting
//! point in a connection's request order, the commit position and its changes, the recent
//! events ring, and catch-up reads of the committed WAL.

use super::committed_event::CommittedEvent;
use super::recent_events::{RecentRead, RingLimits};
use super::shared::Shared;
use super::{Database, errors, wait_committed};
use crate::engine::RAFT_ENTRY_KIND;
use crate::wal::segment::{offset_of, position_of, segment_of};
use crate::wal::sync::SyncStatus;
use crate::wal::{FsyncPolicy, WalReader};
use rstmdb_protocol::RcpError;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::watch;

/// Where a new subscription starts (spec §6.9).
#[derive(Debug, Clone)]
pub struct WatchPoint {
    /// S: `latest_offset` at the subscription point; every record below it is committed.
    pub start_offset: u64,
    /// For WATCH_INSTANCE: the instance's state and `last_wal_offset` at that point.
    pub instance: Option<(String, u64)>,
}

/// Why a catch-up read of the WAL could not continue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatchUpError {
    #[error("WAL records from offset {next_offset} were removed by compaction")]
    Compacted {
        next_offset: u64,
        oldest_offset: u64,
    },
    #[error("{0}")]
    ReadFailed(String),
}

/// Most records one catch-up read scans, events or not.
pub const CATCH_UP_SCAN_RECORDS: usize = 4_096;

/// Records read from the WAL in one go: the committed events among them and where to go on.
#[derive(Debug)]
pub struct CatchUp {
    pub events: Vec<Arc<CommittedEvent>>,
    pub next_cursor: u64,
    /// The reader, if it may hold more records: pass it to the next call.
    pub reader: Option<CatchUpReader>,
}

/// A WAL reader kept between catch-up reads, positioned at `next`.
#[derive(Debug)]
pub struct CatchUpReader {
    reader: WalReader,
    next: u64,
}

/// A subscription's handle on the database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct WatchFeed {
    shared: Arc<Shared>,
}

/// Marks a live subscription for as long as it is held (the ring keeps copies only then).
#[derive(Debug)]
pub struct WatcherGuard {
    shared: Arc<Shared>,
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.shared.recent_events.watcher_ended();
    }
}

impl Database {
    /// The watch feed of this database.
    pub fn watch_feed(&self) -> WatchFeed {
        WatchFeed {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The subscription point of a WATCH queued now: after every job queued before this call,
    /// S is the end of everything applied, answered once all of it is committed. With an
    /// instance id, the instance must be live (`INSTANCE_NOT_FOUND` otherwise). A `from_offset`
    /// below the WAL's oldest retained offset is refused with `offset_compacted`.
    pub fn watch_point(
        &self,
        instance_id: Option<String>,
        from_offset: Option<u64>,
    ) -> impl Future<Output = Result<WatchPoint, RcpError>> + Send + 'static {
        let barrier = self.shared.queue.issued();
        let shared = Arc::clone(&self.shared);
        async move {
            shared
                .queue
                .wait_processed(barrier)
                .await
                .map_err(|_| RcpError::internal("the database is shutting down"))?;
            let (instance, start_offset) = {
                let engine = shared.read_engine()?;
                let instance = match &instance_id {
                    Some(id) => {
                        let view = engine
                            .get_instance(id)
                            .map_err(|err| errors::from_apply(&err))?;
                        Some((view.state, view.last_wal_offset))
                    }
                    None => None,
                };
                // Read under the engine lock, so S is the position of the state just read.
                (instance, shared.gate_now())
            };
            wait_committed(&shared, start_offset).await?;
            let start_offset = start_offset.offset;
            if let Some(from_offset) = from_offset {
                let oldest_offset = shared.wal.oldest_offset();
                if from_offset < oldest_offset {
                    return Err(RcpError::offset_compacted_from(from_offset, oldest_offset));
                }
            }
            Ok(WatchPoint {
                start_offset,
                instance,
            })
        }
    }
}

impl WatchFeed {
    /// Sets how much the recent-events ring may hold.
    pub fn set_ring_limits(&self, limits: RingLimits) {
        self.shared.recent_events.set_limits(limits);
    }

    /// Registers a live subscription until the guard is dropped.
    pub fn watcher(&self) -> WatcherGuard {
        self.shared.recent_events.watcher_started();
        WatcherGuard {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The end of the last committed record: nothing at or above it may be delivered.
    pub fn committed_offset(&self) -> u64 {
        self.shared.committed_offset()
    }

    /// Changes when the sequencer publishes a group.
    pub fn published(&self) -> watch::Receiver<u64> {
        self.shared.recent_events.subscribe()
    }

    /// Changes when the durable offset moves; only needed under `every_write`, where the
    /// commit position follows the syncs rather than the writes.
    pub fn durable(&self) -> Option<watch::Receiver<SyncStatus>> {
        // In cluster mode the commit position moves with Raft's applies, which publish.
        let local_commit = self.shared.replication.is_none();
        (local_commit && matches!(self.shared.wal.fsync_policy(), FsyncPolicy::EveryWrite))
            .then(|| self.shared.wal.durable_watch())
    }

    /// Transitions from the ring, below `commit_end`.
    pub fn recent(&self, cursor: u64, commit_end: u64, max: usize) -> RecentRead {
        self.shared.recent_events.read(cursor, commit_end, max)
    }

    /// Reads committed WAL records from `cursor` (blocking: run it on a blocking thread) until
    /// `max_events` events or [`CATCH_UP_SCAN_RECORDS`] records. Pass back the reader
    /// of the previous call: a reader continues where it stopped, while a new one has to scan
    /// its first segment from the start. Refuses a position whose records compaction removed,
    /// also when the removal happens during the read (the reader would silently skip them).
    pub fn catch_up(
        &self,
        cursor: u64,
        max_events: usize,
        previous: Option<CatchUpReader>,
    ) -> Result<CatchUp, CatchUpError> {
        let wal = &self.shared.wal;
        let cursor = self.past_sealed_segment(cursor);
        let compacted = |cursor: u64| {
            let oldest_offset = wal.oldest_offset();
            (cursor < oldest_offset).then_some(CatchUpError::Compacted {
                next_offset: cursor,
                oldest_offset,
            })
        };
        if let Some(err) = compacted(cursor) {
            return Err(err);
        }
        let mut reader = match previous {
            Some(previous) if previous.next == cursor => previous.reader,
            _ => self.shared.committed_reader(cursor),
        };
        let mut events = Vec::new();
        let mut next_cursor = cursor;
        let mut exhausted = true;
        for scanned in 1..=CATCH_UP_SCAN_RECORDS {
            let Some(record) = reader.next() else { break };
            let record = record.map_err(|err| {
                compacted(cursor).unwrap_or(CatchUpError::ReadFailed(format!(
                    "cannot read the WAL from offset {cursor}: {err}"
                )))
            })?;
            next_cursor = record.end();
            // A Raft entry's header (cluster mode) is log bookkeeping: no event.
            let event = if record.kind == RAFT_ENTRY_KIND {
                None
            } else {
                CommittedEvent::from_wal(record.offset, &record.payload)
                    .map_err(CatchUpError::ReadFailed)?
            };
            if let Some(event) = event {
                events.push(Arc::new(event));
            }
            if events.len() >= max_events || scanned == CATCH_UP_SCAN_RECORDS {
                exhausted = false;
                break;
            }
        }
        // Deletion only moves the oldest offset up: if the cursor's records are still there
        // now, they were there during the whole read, so nothing was skipped.
        if let Some(err) = compacted(cursor) {
            return Err(err);
        }
        // A reader that stopped at its bound would yield nothing more, even once later records
        // are committed: only one with records left below its bound is worth keeping.
        let more_below_bound = !exhausted && next_cursor < reader.until_offset();
        Ok(CatchUp {
            events,
            next_cursor,
            reader: more_below_bound.then_some(CatchUpReader {
                reader,
                next: next_cursor,
            }),
        })
    }

    /// A cursor at the logical end of a sealed segment (one with a newer segment after it)
    /// moves to the start of the next segment: no record of the old one is still to come, so
    /// deleting it must not count as a gap.
    fn past_sealed_segment(&self, cursor: u64) -> u64 {
        let segments = self.shared.wal.segments();
        let mut ids = segments.iter().peekable();
        while let Some(segment) = ids.next() {
            if segment.id == segment_of(cursor)
                && let Some(next) = ids.peek()
                && position_of(cursor) >= segment.logical_len
            {
                return offset_of(next.id, 0);
            }
        }
        cursor
    }
}
