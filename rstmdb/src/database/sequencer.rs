//! The sequencer: the one thread that executes write commands against the engine and appends
//! their records to the WAL, a group at a time (docs/commit-pipeline.md).

use super::batch;
use super::errors;
use super::group::Group;
use super::jobs::{BatchOutput, Completion, Job, WriteOutput};
use super::shared::Shared;
use crate::engine::{Command, Engine, ExecuteError, Record, Undo};
use rstmdb_protocol::RcpError;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{mpsc, oneshot};

/// Most jobs taken into one group. Bounds the time the engine's write lock is held and the
/// memory of one group; a burst larger than this becomes several groups back to back.
pub(crate) const MAX_GROUP_JOBS: usize = 512;

/// A job that finished executing and waits for its group's append. Short-lived, one per job
/// of a group, so the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Finished {
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
    fn records(&self) -> Vec<(u64, Record)> {
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

/// Runs until every job sender is gone.
/// Runs until a `Stop` job (or until every job sender is gone).
pub(crate) fn run(shared: Arc<Shared>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut stopping = false;
    while !stopping {
        let Some(first) = jobs.blocking_recv() else {
            break;
        };
        let mut group = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next {
            if matches!(job, Job::Stop) {
                stopping = true;
                break;
            }
            group.push(job);
            next = if group.len() < MAX_GROUP_JOBS {
                jobs.try_recv().ok()
            } else {
                None
            };
        }
        let count = group.len() as u64 + u64::from(stopping);
        if !group.is_empty() {
            run_group(&shared, group);
        }
        shared.queue.mark_processed(count);
    }
    // Jobs queued after the stop are dropped with the receiver: their senders see the
    // database as stopped.
}

fn run_group(shared: &Shared, jobs: Vec<Job>) {
    let now_ms = shared.clock.now_ms();
    let mut engine = shared.write_engine();
    let placement = shared.wal.placement();
    let mut group = Group::new(placement);
    let mut undos = Vec::new();
    let mut finished = Vec::with_capacity(jobs.len());
    for job in jobs {
        match job {
            Job::Write { command, reply } => {
                let outcome =
                    execute(&mut engine, &mut group, &command, now_ms).map(|(output, undo)| {
                        undos.push(undo);
                        output
                    });
                finished.push(Finished::Write(reply, outcome));
            }
            Job::Batch { mode, items, reply } => {
                let outcome = batch::run(&mut engine, &mut group, mode, &items, now_ms, &mut undos);
                finished.push(Finished::Batch(reply, outcome));
            }
            // `run` never puts a stop into a group.
            Job::Stop => {}
        }
    }

    let written = if group.is_empty() {
        Ok(())
    } else {
        group.write(&shared.wal)
    };
    let gate = match written {
        Ok(()) => {
            let end = group.end().max(shared.applied_end.load(Ordering::Acquire));
            shared.applied_end.store(end, Ordering::Release);
            Ok(end)
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
            (Finished::Write(reply, _), Err(err)) => send(reply, Err(err.clone()), 0),
            (Finished::Batch(reply, _), Err(err)) => send(reply, Err(err.clone()), 0),
        }
    }
}

fn send<T>(reply: oneshot::Sender<Completion<T>>, outcome: Result<T, RcpError>, gate: u64) {
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
