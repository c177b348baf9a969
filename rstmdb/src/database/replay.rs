//! Replaying the WAL at start-up on two threads: the recovering thread reads, checks and parses
//! each record while a second thread applies the ones before it, in order (parsing was a fifth
//! of a replay, see docs/benchmarks.md).
//!
//! A record that fails still fails the start-up before recovery cuts anything: the WAL waits
//! for the applying thread ([`Wal::open_then`]) before it trims a torn tail.

use super::open::{ReplayFilter, ReplayProgress, ReplayStep};
use crate::engine::{Engine, RAFT_ENTRY_KIND, Record};
use crate::wal::{
    CheckpointPosition, RecordView, RecoveryReport, Storage, Wal, WalConfig, WalError,
};
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::ScopedJoinHandle;

/// Records parsed before they are handed over together: one channel operation per batch.
const BATCH_RECORDS: usize = 1_024;

/// Batches parsed ahead of the applying thread: bounds the memory a replay holds in flight.
const BATCHES_AHEAD: usize = 4;

type Batch = Vec<(u64, Record)>;
type ApplyFailure = (u64, Box<dyn std::error::Error + Send + Sync>);

/// What a replay applied.
#[derive(Debug, Clone, Copy)]
pub(super) struct Replayed {
    pub(super) applied: u64,
    /// Cluster mode: where the first record left to Raft starts, if there is one. The engine
    /// holds the records below it.
    pub(super) applied_end: Option<u64>,
}

/// Recovers the WAL into `engine`; returns the WAL, its report and what was applied. With a
/// `filter` (cluster mode), only the records it lets through reach the engine.
pub(super) fn open_replaying<'f, 'g>(
    engine: &mut Engine,
    storage: Arc<dyn Storage>,
    config: WalConfig,
    checkpoint: Option<CheckpointPosition>,
    filter: Option<&'f mut ReplayFilter<'g>>,
) -> Result<(Wal, RecoveryReport, Replayed), WalError> {
    std::thread::scope(|scope| {
        let (sender, batches) = sync_channel::<Batch>(BATCHES_AHEAD);
        let applier = std::thread::Builder::new()
            .name("replay".to_owned())
            .spawn_scoped(scope, move || apply_batches(engine, batches))
            .map_err(|err| WalError::Config(format!("cannot start the replay thread: {err}")))?;
        let feed = RefCell::new(Feed {
            pending: Vec::with_capacity(BATCH_RECORDS),
            sender: Some(sender),
            applier: Some(applier),
            applied: 0,
            filter,
            beyond_from: None,
        });
        let mut replay = |view: RecordView<'_>| feed.borrow_mut().parse(view);
        let mut replayed = || feed.borrow_mut().finish();
        let opened = Wal::open_then(storage, config, checkpoint, &mut replay, &mut replayed);
        // When recovery stopped early, its error may only say that the applying thread
        // stopped: that thread's own error is the one to report.
        let finished = feed.borrow_mut().finish();
        let (wal, report) = match (opened, finished) {
            (_, Err(applying)) => return Err(applying),
            (opened, Ok(())) => opened?,
        };
        let feed = feed.borrow();
        let replayed = Replayed {
            applied: feed.applied,
            applied_end: feed.beyond_from,
        };
        Ok((wal, report, replayed))
    })
}

/// The recovering thread's end of the pipeline.
struct Feed<'scope, 'f, 'g> {
    pending: Batch,
    /// `None` once finished: the applying thread then ends when it has applied everything.
    sender: Option<SyncSender<Batch>>,
    applier: Option<ScopedJoinHandle<'scope, Result<u64, ApplyFailure>>>,
    applied: u64,
    filter: Option<&'f mut ReplayFilter<'g>>,
    beyond_from: Option<u64>,
}

impl Feed<'_, '_, '_> {
    fn parse(
        &mut self,
        view: RecordView<'_>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(filter) = self.filter.as_mut() {
            match filter(&view)? {
                ReplayStep::Apply => {}
                ReplayStep::Pass => return Ok(()),
                ReplayStep::Beyond => {
                    self.beyond_from.get_or_insert(view.offset);
                    return Ok(());
                }
            }
        } else if view.header.kind == RAFT_ENTRY_KIND {
            return Err(format!(
                "a Raft log entry (record kind {RAFT_ENTRY_KIND}): this data directory belongs \
                 to a cluster node, which a standalone server does not open"
            )
            .into());
        }
        let record: Record = serde_json::from_slice(view.payload)?;
        self.pending.push((view.offset, record));
        if self.pending.len() >= BATCH_RECORDS {
            let batch = std::mem::replace(&mut self.pending, Vec::with_capacity(BATCH_RECORDS));
            let sent = self.sender.as_ref().map(|sender| sender.send(batch));
            if !matches!(sent, Some(Ok(()))) {
                return Err("the replay stopped at an earlier record".into());
            }
        }
        Ok(())
    }

    /// Hands over the last records and waits for the applying thread; its failure, once.
    /// Safe to call again: later calls have nothing left to do.
    fn finish(&mut self) -> Result<(), WalError> {
        if let Some(sender) = self.sender.take()
            && !self.pending.is_empty()
        {
            // A closed channel means the applying thread failed: joining says how.
            let _ = sender.send(std::mem::take(&mut self.pending));
        }
        let Some(applier) = self.applier.take() else {
            return Ok(());
        };
        match applier.join() {
            Ok(Ok(applied)) => {
                self.applied = applied;
                Ok(())
            }
            Ok(Err((offset, source))) => Err(WalError::Replay { offset, source }),
            // A panic while applying ends the start-up as it would have on this thread.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// The applying thread: every record of every batch, in order, until the channel closes or a
/// record fails.
fn apply_batches(engine: &mut Engine, batches: Receiver<Batch>) -> Result<u64, ApplyFailure> {
    let mut applied = 0u64;
    let mut progress = ReplayProgress::new();
    for batch in batches {
        for (offset, record) in batch {
            engine
                .apply_record(&record, offset)
                .map_err(|err| (offset, Box::new(err) as _))?;
            applied += 1;
            progress.tick(applied, offset);
        }
    }
    Ok(applied)
}
