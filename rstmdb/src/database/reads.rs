//! Reads. They come from the in-memory engine, which may hold changes whose records are not yet
//! durable, so every read is gated: it is answered only once the records it may reflect are
//! committed (docs/commit-pipeline.md, "The durability gate").

use super::long_reads::thread_cpu_time;
use super::shared::Shared;
use super::{Database, errors, wait_committed};
use crate::checkpoint::InstanceSnapshot;
use crate::engine::{Engine, RAFT_ENTRY_KIND, RawCtx};
use crate::wal::{WalReader, WalRecord};
use rstmdb_protocol::RcpError;
use rstmdb_protocol::limits::MAX_RESULT_ITEMS_BYTES;
use rstmdb_protocol::results::GetInstanceResult;
use rstmdb_protocol::results::{
    FsyncLatency, IoStats, SnapshotInstanceResult, WalReadResult, WalRecord as WireRecord,
    WalStatsResult,
};
use serde_json::{Map, Value};
use std::future::Future;
use std::sync::Arc;

/// The share of one core that long reads ([`Database::read_long`]) may take together.
pub const LONG_READ_CPU_PERCENT: u32 = 25;

impl Database {
    /// Runs `read` against the engine once every job queued before this call is done, and
    /// answers once every record the read could reflect is committed.
    pub fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> impl Future<Output = Result<T, RcpError>> + Send + 'static {
        let barrier = self.shared.queue.issued();
        let shared = Arc::clone(&self.shared);
        async move {
            after(&shared, barrier).await?;
            let (value, gate) = {
                let engine = shared.read_engine()?;
                (read(&engine), shared.gate_now())
            };
            wait_committed(&shared, gate).await?;
            Ok(value)
        }
    }

    /// [`Database::read`] for a read that may take long (a LIST_INSTANCES page after a large
    /// offset walks what it skips), done in steps: `step` runs under the engine lock until it
    /// answers, and the lock is let go between steps, so a step's length, not the whole read's,
    /// is what a write may wait for. Before the next step, every job queued meanwhile is
    /// processed: the sequencer gets the engine first, instead of racing the reader for it.
    /// The read is gated on the records applied when its last step ran.
    ///
    /// The steps run on a thread of their own at a lower CPU priority (`long_reads`), not on a
    /// runtime worker that other connections' requests (a writer's among them) wait for, one
    /// such read at a time, and paced to [`LONG_READ_CPU_PERCENT`] of one core's CPU time
    /// (the thread's own clock, not the wall clock): on a server with few cores, a flood of long reads
    /// must not take the CPU the writers need (measured in docs/benchmarks.md, "LIST_INSTANCES
    /// under write load"). So does `finish`, with the lock let go: what the answer costs past
    /// the engine (encoding a page of 1,000 instances, some 0.5 ms) stays off the workers too.
    pub fn read_long<T, U: Send + 'static>(
        &self,
        mut step: impl FnMut(&Engine) -> Option<T> + Send + 'static,
        finish: impl FnOnce(T) -> U + Send + 'static,
    ) -> impl Future<Output = Result<U, RcpError>> + Send + 'static {
        let barrier = self.shared.queue.issued();
        let shared = Arc::clone(&self.shared);
        async move {
            after(&shared, barrier).await?;
            let turn = Arc::clone(&shared.long_reads)
                .acquire_owned()
                .await
                .map_err(|_| RcpError::internal("the database is shutting down"))?;
            let reader = Arc::clone(&shared);
            let runtime = tokio::runtime::Handle::current();
            let (value, gate, worked) = shared
                .long_read_thread
                .run(move || {
                    // CPU time: waiting for the lock or the sequencer costs no share.
                    let started = thread_cpu_time();
                    let (value, gate) = loop {
                        {
                            let engine = reader.read_engine()?;
                            if let Some(value) = step(&engine) {
                                break (value, reader.gate_now());
                            }
                        }
                        runtime.block_on(after(&reader, reader.queue.issued()))?;
                    };
                    let value = finish(value);
                    let worked = thread_cpu_time().saturating_sub(started);
                    Ok::<_, RcpError>((value, gate, worked))
                })
                .await??;
            // This answer goes out now; the next long read waits out the pause, so long reads
            // together take at most LONG_READ_CPU_PERCENT of one core, whatever their number.
            let pause =
                worked.mul_f64(f64::from(100 - LONG_READ_CPU_PERCENT)) / LONG_READ_CPU_PERCENT;
            tokio::spawn(async move {
                tokio::time::sleep(pause).await;
                drop(turn);
            });
            wait_committed(&shared, gate).await?;
            Ok(value)
        }
    }

    /// GET_INSTANCE, gated only on the instance's own latest record: under write load a read
    /// of an instance nobody is writing does not wait for the group commit in flight.
    /// Like [`Database::read`], with the end of the last record applied when `read` ran: the
    /// value reflects exactly the records below that offset (STATS pairs its counts with it).
    pub fn read_at<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> impl Future<Output = Result<(T, u64), RcpError>> + Send + 'static {
        let barrier = self.shared.queue.issued();
        let shared = Arc::clone(&self.shared);
        async move {
            after(&shared, barrier).await?;
            let (value, gate) = {
                let engine = shared.read_engine()?;
                (read(&engine), shared.gate_now())
            };
            wait_committed(&shared, gate).await?;
            Ok((value, gate.offset))
        }
    }

    pub fn get_instance(
        &self,
        instance_id: String,
    ) -> impl Future<Output = Result<GetInstanceResult<RawCtx>, RcpError>> + Send + 'static {
        let barrier = self.shared.queue.issued();
        let shared = Arc::clone(&self.shared);
        async move {
            after(&shared, barrier).await?;
            get_instance_now(&shared, &instance_id).await
        }
    }

    /// WAL_READ (spec §4.17): committed records with offset >= `from_offset`, at most `limit`,
    /// stopping early before the response would pass 16 MiB.
    pub fn wal_read(
        &self,
        from_offset: u64,
        limit: u64,
    ) -> impl Future<Output = Result<WalReadResult, RcpError>> + Send + 'static {
        let barrier = self.shared.queue.issued();
        let shared = Arc::clone(&self.shared);
        async move {
            after(&shared, barrier).await?;
            let gate = shared.read_engine().map(|_engine| shared.gate_now())?;
            wait_committed(&shared, gate).await?;
            let reader = shared.committed_reader(from_offset);
            tokio::task::spawn_blocking(move || read_records(reader, limit))
                .await
                .map_err(errors::internal)?
        }
    }

    /// WAL_STATS (spec §4.18), after every job queued before this call.
    pub fn wal_stats(
        &self,
    ) -> impl Future<Output = Result<WalStatsResult, RcpError>> + Send + 'static {
        let barrier = self.shared.queue.issued();
        let shared = Arc::clone(&self.shared);
        async move {
            after(&shared, barrier).await?;
            Ok(wal_stats_now(&shared))
        }
    }

    /// SNAPSHOT_INSTANCE (spec §4.16): a durable point-in-time copy of one instance.
    pub fn snapshot_instance(
        &self,
        instance_id: String,
        snapshot_id: String,
    ) -> impl Future<Output = Result<SnapshotInstanceResult, RcpError>> + Send + 'static {
        let barrier = self.shared.queue.issued();
        let shared = Arc::clone(&self.shared);
        async move {
            after(&shared, barrier).await?;
            let view = get_instance_now(&shared, &instance_id).await?;
            let snapshot = InstanceSnapshot {
                snapshot_id,
                instance_id: view.instance_id,
                machine: view.machine,
                version: view.version,
                state: view.state,
                ctx: serde_json::from_str(view.ctx.get()).map_err(errors::internal)?,
                wal_offset: view.last_wal_offset,
                created_at: shared.clock.now_ms(),
            };
            let store = Arc::clone(&shared);
            let stored = tokio::task::spawn_blocking(move || store.snapshots.write(&snapshot))
                .await
                .map_err(errors::internal)?
                .map_err(|err| errors::internal(format!("cannot store the snapshot: {err}")))?;
            Ok(SnapshotInstanceResult {
                instance_id: stored.instance_id,
                snapshot_id: stored.snapshot_id,
                wal_offset: stored.wal_offset,
                size_bytes: stored.size_bytes,
                checksum: stored.checksum,
            })
        }
    }
}

/// Waits until the sequencer has processed every job queued before the request.
async fn after(shared: &Shared, barrier: u64) -> Result<(), RcpError> {
    shared
        .queue
        .wait_processed(barrier)
        .await
        .map_err(|_| RcpError::internal("the database is shutting down"))
}

async fn get_instance_now(
    shared: &Shared,
    instance_id: &str,
) -> Result<GetInstanceResult<RawCtx>, RcpError> {
    let (found, gate) = {
        let engine = shared.read_engine()?;
        let found = engine.get_instance(instance_id);
        let mut gate = shared.gate_now();
        if let Ok(view) = &found {
            // Durable positions are record ends, so "durable >= offset + 1" means the record
            // starting at `offset` is durable.
            gate.offset = view.last_wal_offset + 1;
        }
        (found, gate)
    };
    wait_committed(shared, gate).await?;
    found.map_err(|err| errors::from_apply(&err))
}

fn read_records(mut reader: WalReader, limit: u64) -> Result<WalReadResult, RcpError> {
    let mut records = Vec::new();
    let mut used_bytes = 0usize;
    // The limit is checked before the next record is pulled: pulling reads it from its segment
    // file, and io_stats counts every record read (spec §4.18: a 2-record page reads 2).
    while (records.len() as u64) < limit {
        let Some(record) = reader.next() else {
            break;
        };
        // The same situation as a record that does not decode (spec §5.3, `wal_read_failed`).
        let record = record.map_err(|err| RcpError::wal_read_failed(format!("WAL read: {err}")))?;
        if record.kind == RAFT_ENTRY_KIND {
            // A Raft entry's header (cluster mode): log bookkeeping, not a database record.
            continue;
        }
        let entry = entry_of(&record)?;
        // Serialised once more to keep the response bounded; WAL reads are rare next to
        // writes, so simplicity wins over speed here.
        let size = serde_json::to_string(&entry).map_or(0, |s| s.len()) + 64;
        if !records.is_empty() && used_bytes + size > MAX_RESULT_ITEMS_BYTES {
            break;
        }
        used_bytes += size;
        records.push(WireRecord {
            sequence: record.sequence,
            offset: record.offset,
            entry,
        });
    }
    let next_offset = records.last().map(|r| r.offset + 1);
    Ok(WalReadResult {
        records,
        next_offset,
    })
}

fn wal_stats_now(shared: &Shared) -> WalStatsResult {
    let stats = shared.wal.stats();
    let checkpoint_offset = shared.newest_checkpoint().map(|c| c.meta.checkpoint_offset);
    let bytes_since_checkpoint = match checkpoint_offset {
        Some(offset) => shared.wal.bytes_since(offset),
        None => stats.total_size_bytes,
    };
    WalStatsResult {
        entry_count: stats.entry_count,
        segment_count: stats.segment_count,
        total_size_bytes: stats.total_size_bytes,
        latest_offset: stats.latest_offset,
        io_stats: IoStats {
            bytes_written: stats.io.bytes_written,
            bytes_read: stats.io.bytes_read,
            writes: stats.io.writes,
            reads: stats.io.reads,
            fsyncs: stats.io.fsyncs,
            write_calls: stats.io.write_calls,
        },
        durable_offset: stats.durable_offset,
        oldest_offset: stats.oldest_offset,
        checkpoint_offset,
        bytes_since_checkpoint,
        fsync_policy: stats.fsync_policy,
        fsync_latency_us: FsyncLatency {
            p50: stats.fsync_latency_us_p50,
            p99: stats.fsync_latency_us_p99,
        },
        records_per_fsync: stats.records_per_fsync,
    }
}

/// A record as WAL_READ shows it: the engine's entry plus the atomic-unit marker.
fn entry_of(record: &WalRecord) -> Result<Map<String, Value>, RcpError> {
    let mut entry: Map<String, Value> = serde_json::from_slice(&record.payload).map_err(|err| {
        RcpError::wal_read_failed(format!(
            "record at offset {} is not a JSON entry: {err}",
            record.offset
        ))
    })?;
    if let Some(unit) = record.unit {
        entry.insert(
            "unit".to_owned(),
            serde_json::json!({"index": unit.index, "count": unit.count}),
        );
    }
    Ok(entry)
}
