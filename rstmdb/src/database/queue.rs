//! The sequencer's job queue, with tickets that let a read wait for every job queued before it.
//!
//! Spec §3.7: each request sees the effects of every earlier request on its connection. A
//! connection task queues its writes synchronously, in arrival order; a read that follows
//! notes the number of jobs queued so far (its barrier) and runs once the sequencer has
//! processed that many. Tickets are issued under the same lock as the send, so ticket order is
//! queue order and "processed >= barrier" really means "every job before the read is done".

use super::jobs::Job;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, watch};

#[derive(Debug)]
pub(crate) struct JobQueue {
    sender: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    issued: AtomicU64,
    processed: watch::Sender<u64>,
}

/// Why a job could not be queued.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stopped;

impl JobQueue {
    /// The queue is unbounded in type but bounded in effect: the server allows each connection a
    /// fixed number of requests in flight and a fixed number of connections.
    pub(crate) fn new() -> (JobQueue, mpsc::UnboundedReceiver<Job>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let queue = JobQueue {
            sender: Mutex::new(Some(sender)),
            issued: AtomicU64::new(0),
            processed: watch::Sender::new(0),
        };
        (queue, receiver)
    }

    pub(crate) fn submit(&self, job: Job) -> Result<(), Stopped> {
        let guard = self.sender.lock().map_err(|_| Stopped)?;
        let sender = guard.as_ref().ok_or(Stopped)?;
        sender.send(job).map_err(|_| Stopped)?;
        self.issued.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Queues the final job and refuses every later one.
    pub(crate) fn close_with(&self, job: Job) {
        if let Ok(mut guard) = self.sender.lock()
            && let Some(sender) = guard.take()
            && sender.send(job).is_ok()
        {
            self.issued.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The barrier for a read issued now.
    pub(crate) fn issued(&self) -> u64 {
        self.issued.load(Ordering::Acquire)
    }

    /// Called by the sequencer after it processed `count` more jobs.
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
