//! The sequencer's job queue, who runs the jobs, and tickets that let a read wait for every job
//! queued before it.
//!
//! Spec §3.7: each request sees the effects of every earlier request on its connection. A
//! connection task queues its writes synchronously, in arrival order; a read that follows
//! notes the number of jobs queued so far (its barrier) and runs once that many have been
//! processed. Tickets are issued under the queue's lock, so ticket order is queue order and
//! "processed >= barrier" really means "every job before the read is done".
//!
//! One runner at a time executes jobs (the sequencer role, docs/commit-pipeline.md): the
//! sequencer thread, or, when that thread is idle and nothing is queued, the submitting thread
//! itself for one small job. One request at a time then costs no thread hand-off at all; under
//! load the thread takes whole groups as before, and submitters only queue.

use super::jobs::Job;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use tokio::sync::watch;

/// The largest BATCH the submitter may run itself: a small one costs about as much as a single
/// write; a large one goes to the sequencer thread rather than hold a runtime worker.
pub(crate) const MAX_INLINE_BATCH_ITEMS: usize = 16;

/// Who holds the sequencer role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runner {
    /// Nobody: the queue is empty and the thread waits.
    Idle,
    /// The sequencer thread: it takes groups until the queue is empty.
    Thread,
    /// A submitter running its own job; it hands the role to the thread when it is done.
    Inline,
}

#[derive(Debug)]
struct State {
    jobs: VecDeque<Job>,
    runner: Runner,
    /// No job is accepted any more (a `Stop` was queued, or a runner panicked).
    closed: bool,
    /// A runner panicked: the thread must stop without running what is left.
    poisoned: bool,
}

#[derive(Debug)]
pub(crate) struct JobQueue {
    state: Mutex<State>,
    /// Wakes the sequencer thread when the role is handed to it.
    wake: Condvar,
    issued: AtomicU64,
    processed: watch::Sender<u64>,
    /// Whether a small job may run on its submitter's thread. Not in cluster mode, where a
    /// group blocks until a quorum has it, and the submitter is a runtime worker.
    inline: bool,
}

/// Why a job could not be queued.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stopped;

/// What [`JobQueue::admit`] decided.
#[derive(Debug)]
pub(crate) enum Admitted {
    /// The caller holds the sequencer role: it must run this job now, then call
    /// [`JobQueue::inline_done`].
    RunHere(Job),
    /// Queued for the sequencer thread.
    Queued,
}

/// Jobs the sequencer thread took as one group.
#[derive(Debug)]
pub(crate) struct Taken {
    pub(crate) jobs: Vec<Job>,
    /// A `Stop` ended the group: the thread stops after it.
    pub(crate) stopping: bool,
}

impl JobQueue {
    /// The queue is unbounded in type but bounded in effect: the server allows each connection a
    /// fixed number of requests in flight and a fixed number of connections.
    #[cfg(test)]
    pub(crate) fn new() -> JobQueue {
        JobQueue::with_inline(true)
    }

    /// A queue whose jobs all run on the sequencer thread (`inline = false`), or may run on
    /// their submitter's when it is idle.
    pub(crate) fn with_inline(inline: bool) -> JobQueue {
        JobQueue {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                runner: Runner::Idle,
                closed: false,
                poisoned: false,
            }),
            wake: Condvar::new(),
            issued: AtomicU64::new(0),
            processed: watch::Sender::new(0),
            inline,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update under the lock is a few assignments: a panic elsewhere leaves it whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Issues the job's ticket and either queues it or, when no one runs jobs and it is small,
    /// gives the caller the sequencer role to run it at once.
    pub(crate) fn admit(&self, job: Job) -> Result<Admitted, Stopped> {
        let mut state = self.lock();
        if state.closed {
            return Err(Stopped);
        }
        self.issued.fetch_add(1, Ordering::AcqRel);
        if self.inline && state.runner == Runner::Idle && runs_inline(&job) {
            // Invariant: the role is released only with an empty queue.
            assert!(state.jobs.is_empty(), "an idle sequencer with queued jobs");
            state.runner = Runner::Inline;
            return Ok(Admitted::RunHere(job));
        }
        state.jobs.push_back(job);
        self.hand_to_thread_if_idle(&mut state);
        Ok(Admitted::Queued)
    }

    /// The inline runner finished its job: hands the role to the thread if jobs queued up
    /// meanwhile, else leaves it free.
    pub(crate) fn inline_done(&self) {
        self.mark_processed(1);
        let mut state = self.lock();
        assert_eq!(state.runner, Runner::Inline, "inline_done without the role");
        state.runner = if state.jobs.is_empty() {
            Runner::Idle
        } else {
            self.wake.notify_one();
            Runner::Thread
        };
    }

    /// Queues the final job and refuses every later one.
    pub(crate) fn close_with(&self, job: Job) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        state.closed = true;
        self.issued.fetch_add(1, Ordering::AcqRel);
        state.jobs.push_back(job);
        self.hand_to_thread_if_idle(&mut state);
    }

    /// A runner panicked half-way through `unfinished` jobs: refuses every later job and stops
    /// the thread. The queued jobs are dropped, so their requesters see the database as
    /// stopped, and all of them count as processed, so no read waits for them forever (it
    /// then finds the engine's lock poisoned and answers an internal error).
    pub(crate) fn poison(&self, unfinished: u64) {
        let dropped = {
            let mut state = self.lock();
            state.closed = true;
            state.poisoned = true;
            state.runner = Runner::Idle;
            std::mem::take(&mut state.jobs)
        };
        self.wake.notify_all();
        self.mark_processed(unfinished + dropped.len() as u64);
        drop(dropped);
    }

    /// For the sequencer thread: waits until it holds the role with jobs to run, then takes up
    /// to `max` of them (up to and including a `Stop`). `None` once poisoned.
    pub(crate) fn take_group(&self, max: usize) -> Option<Taken> {
        let mut state = self.lock();
        loop {
            if state.poisoned {
                return None;
            }
            if state.runner == Runner::Thread {
                if !state.jobs.is_empty() {
                    break;
                }
                state.runner = Runner::Idle;
            }
            state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        let mut jobs = Vec::with_capacity(state.jobs.len().min(max));
        let mut stopping = false;
        while jobs.len() < max {
            match state.jobs.pop_front() {
                Some(Job::Stop) => {
                    stopping = true;
                    break;
                }
                Some(job) => jobs.push(job),
                None => break,
            }
        }
        Some(Taken { jobs, stopping })
    }

    fn hand_to_thread_if_idle(&self, state: &mut State) {
        if state.runner == Runner::Idle {
            state.runner = Runner::Thread;
            self.wake.notify_one();
        }
    }

    /// The barrier for a read issued now.
    pub(crate) fn issued(&self) -> u64 {
        self.issued.load(Ordering::Acquire)
    }

    /// Called by a runner after it processed `count` more jobs.
    pub(crate) fn mark_processed(&self, count: u64) {
        self.processed.send_modify(|processed| *processed += count);
    }

    /// Waits until every job queued before `barrier` was issued has been processed.
    pub(crate) async fn wait_processed(&self, barrier: u64) -> Result<(), Stopped> {
        let mut processed = self.processed.subscribe();
        processed
            .wait_for(|processed| *processed >= barrier)
            .await
            .map(|_| ())
            .map_err(|_| Stopped)
    }
}

/// Whether a job is small enough for the submitting thread to run (never a `Stop`).
fn runs_inline(job: &Job) -> bool {
    match job {
        Job::Write { .. } => true,
        Job::Batch { items, .. } => items.len() <= MAX_INLINE_BATCH_ITEMS,
        Job::Stop | Job::Exclusive(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::jobs::{BatchItem, Completion, WriteOutput};
    use crate::engine::Command;
    use rstmdb_protocol::params::BatchMode;
    use tokio::sync::oneshot;

    type Reply = oneshot::Receiver<Completion<WriteOutput>>;

    fn write() -> (Job, Reply) {
        let (reply, answer) = oneshot::channel();
        let job = Job::Write {
            command: Command::FlushAll,
            reply,
        };
        (job, answer)
    }

    fn batch(items: usize) -> Job {
        let item = BatchItem::GetInstance {
            instance_id: "i".into(),
        };
        Job::Batch {
            mode: BatchMode::BestEffort,
            items: vec![item; items],
            reply: oneshot::channel().0,
        }
    }

    fn is_write(job: &Job) -> bool {
        matches!(job, Job::Write { .. })
    }

    #[test]
    fn an_idle_queue_lets_the_submitter_run_and_queues_what_arrives_meanwhile_for_the_thread() {
        let queue = JobQueue::new();
        assert!(matches!(queue.admit(write().0), Ok(Admitted::RunHere(_))));
        assert!(matches!(queue.admit(write().0), Ok(Admitted::Queued)));
        assert!(matches!(queue.admit(batch(1)), Ok(Admitted::Queued)));
        assert_eq!(queue.issued(), 3);

        // Finishing hands the role to the thread, which finds both jobs in arrival order
        // (take_group would block forever had the role not been handed over).
        queue.inline_done();
        let taken = queue.take_group(512).expect("the thread holds the role");
        assert_eq!(taken.jobs.len(), 2);
        assert!(is_write(&taken.jobs[0]));
        assert!(matches!(taken.jobs[1], Job::Batch { .. }));
        assert!(!taken.stopping);

        // While the thread holds the role, a submitter only queues.
        assert!(matches!(queue.admit(write().0), Ok(Admitted::Queued)));
    }

    #[test]
    fn a_group_is_taken_up_to_its_bound_and_the_rest_stays_queued() {
        let queue = JobQueue::new();
        let Ok(Admitted::RunHere(_)) = queue.admit(write().0) else {
            panic!("an idle queue runs the first job inline");
        };
        for _ in 0..5 {
            queue.admit(write().0).unwrap();
        }
        queue.inline_done();
        assert_eq!(queue.take_group(3).unwrap().jobs.len(), 3);
        assert_eq!(queue.take_group(3).unwrap().jobs.len(), 2);
    }

    #[test]
    fn a_batch_over_the_inline_bound_goes_to_the_thread_even_when_idle() {
        let queue = JobQueue::new();
        assert!(matches!(
            queue.admit(batch(MAX_INLINE_BATCH_ITEMS + 1)),
            Ok(Admitted::Queued)
        ));
        let taken = queue.take_group(512).unwrap();
        assert_eq!(taken.jobs.len(), 1);

        let queue = JobQueue::new();
        assert!(matches!(
            queue.admit(batch(MAX_INLINE_BATCH_ITEMS)),
            Ok(Admitted::RunHere(_))
        ));
    }

    #[test]
    fn a_stop_refuses_later_jobs_and_ends_the_thread_after_the_jobs_before_it() {
        let queue = JobQueue::new();
        let Ok(Admitted::RunHere(_)) = queue.admit(write().0) else {
            panic!("an idle queue runs the first job inline");
        };
        queue.admit(write().0).unwrap();
        queue.close_with(Job::Stop);
        assert!(queue.admit(write().0).is_err(), "refused after the stop");
        queue.inline_done();
        let taken = queue.take_group(512).unwrap();
        assert_eq!(
            taken.jobs.len(),
            1,
            "the job queued before the stop still runs"
        );
        assert!(taken.stopping);
        assert_eq!(queue.issued(), 3, "the stop holds a ticket too");
    }

    #[tokio::test]
    async fn a_panicked_runner_drops_the_queued_jobs_stops_the_thread_and_releases_readers() {
        let queue = JobQueue::new();
        let Ok(Admitted::RunHere(_running)) = queue.admit(write().0) else {
            panic!("an idle queue runs the first job inline");
        };
        let (queued, answer) = write();
        queue.admit(queued).unwrap();
        let barrier = queue.issued();

        queue.poison(1);
        assert!(
            answer.await.is_err(),
            "the queued job's requester sees it dropped"
        );
        assert!(queue.take_group(512).is_none(), "the thread stops");
        assert!(queue.admit(write().0).is_err(), "later jobs are refused");
        assert!(
            queue.wait_processed(barrier).await.is_ok(),
            "readers are not left waiting"
        );
    }
}
