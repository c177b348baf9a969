//! The sequencer: the one runner at a time that executes write commands against the engine and
//! appends their records to the WAL, a group at a time (docs/commit-pipeline.md). It is a
//! thread of its own, or for one small job while that thread is idle, the submitting thread
//! (`queue` decides which).

use super::batch;
use super::errors;
use super::group::Group;
use super::jobs::{BatchOutput, Completion, Job, WriteOutput};
use super::queue::{Admitted, JobQueue, Stopped};
use super::replication;
use super::shared::{Gate, Shared};
use crate::engine::{Command, Engine, ExecuteError, Record, Undo};
use crate::wal::SyncBy;
use rstmdb_protocol::RcpError;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::oneshot;

/// Most jobs taken into one group. Bounds the time the engine's write lock is held and the
/// memory of one group; a burst larger than this becomes several groups back to back.
pub(crate) const MAX_GROUP_JOBS: usize = 512;

/// A job that finished executing and waits for its group's append. Short-lived, one per job
/// of a group, so the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum Finished {
    Write(
        oneshot::Sender<Completion<WriteOutput>>,
        Result<WriteOutput, RcpError>,
    ),
    Batch(
        oneshot::Sender<Completion<BatchOutput>>,
        Result<BatchOutput, RcpError>,
    ),
}

impl Finished {
    /// Copies of the records the job wrote, with their offsets, in WAL order.
    pub(super) fn records(&self) -> Vec<(u64, Record)> {
        match self {
            Finished::Write(_, Ok(output)) => match (output.wal_offset, &output.record) {
                (Some(offset), Some(record)) => vec![(offset, record.clone())],
                _ => Vec::new(),
            },
            Finished::Batch(_, Ok(output)) => output.records.clone(),
            Finished::Write(_, Err(_)) | Finished::Batch(_, Err(_)) => Vec::new(),
        }
    }
}

/// The sequencer thread: runs the groups handed to it until a `Stop` job (or until a runner
/// panicked).
pub(crate) fn run(shared: Arc<Shared>) {
    while let Some(taken) = shared.queue.take_group(MAX_GROUP_JOBS) {
        let count = taken.jobs.len() as u64 + u64::from(taken.stopping);
        let _poison = PoisonOnPanic {
            queue: &shared.queue,
            unfinished: count,
        };
        if !taken.jobs.is_empty() {
            run_group(&shared, taken.jobs, SyncBy::Thread);
        }
        shared.queue.mark_processed(count);
        if taken.stopping {
            // Jobs queued after the stop were refused: the queue closed with it.
            break;
        }
    }
}

/// Queues a job for the sequencer, or, when it is idle and the job is small, runs it right here
/// as a group of one (the caller's thread holds the sequencer role meanwhile, so there is still
/// one writer). Either way the job's reply is sent by the time its group is done.
///
/// Under `every_write`, an inline job that is the only write in flight is also synced here when
/// no fdatasync is running, after the role is released: one request at a time then never waits
/// for another thread. This blocks the caller for one fdatasync, as a synchronous database call
/// would. With other writes in flight the sync thread syncs it, so they share the fdatasync
/// and no runtime worker waits for the disk (measured: syncing here then cost 12 % of the
/// throughput at 4 connections, docs/benchmarks.md).
pub(crate) fn submit(shared: &Shared, job: Job) -> Result<(), Stopped> {
    match shared.queue.admit(job)? {
        Admitted::Queued => {}
        Admitted::RunHere(job) => {
            let alone = shared.writes_in_flight.load(Ordering::Acquire) == 1;
            let sync_by = if alone {
                SyncBy::Caller
            } else {
                SyncBy::Thread
            };
            {
                let _poison = PoisonOnPanic {
                    queue: &shared.queue,
                    unfinished: 1,
                };
                run_group(shared, std::iter::once(job), sync_by);
                shared.queue.inline_done();
            }
            if sync_by == SyncBy::Caller {
                shared.wal.sync_here();
            }
        }
    }
    Ok(())
}

/// A write from its submission until its answer is handed out or dropped. How many there are
/// tells an inline runner whether anyone could share its fdatasync.
pub(crate) struct InFlightWrite {
    shared: Arc<Shared>,
}

impl InFlightWrite {
    pub(crate) fn start(shared: &Arc<Shared>) -> InFlightWrite {
        shared.writes_in_flight.fetch_add(1, Ordering::AcqRel);
        InFlightWrite {
            shared: Arc::clone(shared),
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}

impl Drop for InFlightWrite {
    fn drop(&mut self) {
        self.shared.writes_in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Poisons the queue if a runner unwinds through a group: the engine may hold half of it, so
/// no later job may run (the engine's lock is poisoned too; a restart recovers from disk).
struct PoisonOnPanic<'a> {
    queue: &'a JobQueue,
    unfinished: u64,
}

impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.queue.poison(self.unfinished);
        }
    }
}

fn run_group(shared: &Shared, jobs: impl IntoIterator<Item = Job>, sync_by: SyncBy) {
    if let Some(replication) = &shared.replication {
        return replication::run_jobs(shared, replication, jobs.into_iter().collect());
    }
    let now_ms = shared.clock.now_ms();
    let mut engine = shared.write_engine();
    let placement = shared.wal.placement();
    let mut group = Group::new(placement);
    let mut undos = Vec::new();
    // Exclusive jobs are cluster mode's; a standalone group runs them after its append.
    let (finished, exclusive) = execute_jobs(&mut engine, &mut group, jobs, now_ms, &mut undos);

    let written = if group.is_empty() {
        Ok(())
    } else {
        group.write(&shared.wal, sync_by)
    };
    let gate = match written {
        Ok(()) => {
            let end = group.end().max(shared.applied_end.load(Ordering::Acquire));
            shared.applied_end.store(end, Ordering::Release);
            Ok(Gate {
                offset: end,
                epoch: 0,
            })
        }
        Err(err) => {
            // Nothing of the group is on disk (the WAL cut back to its last complete record):
            // make memory agree, newest change first, and fail every job of the group.
            for undo in undos.into_iter().rev() {
                engine.undo(undo);
            }
            Err(errors::from_wal(&err))
        }
    };
    drop(engine);
    if gate.is_ok() && !group.is_empty() {
        // Before the replies: an APPLY_EVENT's event is ready for watchers by the time its
        // response can be sent. The records are copied only while someone watches.
        let records = finished.iter().flat_map(Finished::records);
        shared.recent_events.publish(records, group.end());
    }
    for job in finished {
        match (job, &gate) {
            (Finished::Write(reply, outcome), Ok(gate)) => send(reply, outcome, *gate),
            (Finished::Batch(reply, outcome), Ok(gate)) => send(reply, outcome, *gate),
            (Finished::Write(reply, _), Err(err)) => send(reply, Err(err.clone()), Gate::NOTHING),
            (Finished::Batch(reply, _), Err(err)) => send(reply, Err(err.clone()), Gate::NOTHING),
        }
    }
    for work in exclusive {
        work();
    }
}

/// Work that runs on the sequencer thread between two groups ([`Job::Exclusive`]).
pub(super) type ExclusiveWork = Box<dyn FnOnce() + Send>;

/// Executes a group's write and batch jobs in order into `group`, keeping their undo tokens;
/// returns what each produced, and the exclusive jobs met on the way (to run after the group).
pub(super) fn execute_jobs(
    engine: &mut Engine,
    group: &mut Group,
    jobs: impl IntoIterator<Item = Job>,
    now_ms: i64,
    undos: &mut Vec<Undo>,
) -> (Vec<Finished>, Vec<ExclusiveWork>) {
    let jobs = jobs.into_iter();
    let mut finished = Vec::with_capacity(jobs.size_hint().0);
    let mut exclusive = Vec::new();
    for job in jobs {
        match job {
            Job::Write { command, reply } => {
                let outcome = execute(engine, group, &command, now_ms).map(|(output, undo)| {
                    undos.push(undo);
                    output
                });
                finished.push(Finished::Write(reply, outcome));
            }
            Job::Batch { mode, items, reply } => {
                let outcome = batch::run(engine, group, mode, &items, now_ms, undos);
                finished.push(Finished::Batch(reply, outcome));
            }
            // `take_group` never puts a stop into a group.
            Job::Stop => {}
            Job::Exclusive(work) => exclusive.push(work),
        }
    }
    (finished, exclusive)
}

fn send<T>(reply: oneshot::Sender<Completion<T>>, outcome: Result<T, RcpError>, gate: Gate) {
    // The requester may have gone (connection closed); its write stands regardless.
    let _ = reply.send(Completion { outcome, gate });
}

/// Executes one write command into the group. On any refusal nothing changed in the engine
/// and nothing stays in the group.
pub(super) fn execute(
    engine: &mut Engine,
    group: &mut Group,
    command: &Command,
    now_ms: i64,
) -> Result<(WriteOutput, Undo), RcpError> {
    let mark = group.mark();
    match engine.execute(command, now_ms, |record| group.assign(record)) {
        Ok(executed) => Ok((
            WriteOutput {
                result: executed.result,
                wal_offset: executed.wal_offset,
                record: executed.record,
            },
            executed.undo,
        )),
        Err(err) => {
            group.cut_back(mark);
            Err(match err {
                ExecuteError::Rejected(err) => errors::from_apply(&err),
                ExecuteError::Assign(err) => err,
                ExecuteError::Internal(err) => errors::internal(err),
            })
        }
    }
}
