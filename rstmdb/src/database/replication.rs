//! Cluster mode's side of the database (`docs/cluster.md` sections 4 to 6). The sequencer
//! hands each group to a Raft log ([`GroupLog`]) instead of appending it to the WAL, and waits
//! until it is committed; the state machine hands every committed entry back through
//! [`Database::apply_committed`].
//!
//! One group at a time is in flight. It is *pending* from its execution until an applied entry
//! settles it:
//!
//! - the entry with its origin, at its planned offset: it committed, and the engine already
//!   holds it;
//! - any other entry: it will never commit where it was planned (entries apply in log order,
//!   and nothing else is appended on a leader while a group is pending), so its changes are
//!   undone and the entry is applied from its records, as on a follower;
//! - the log refusing or dropping it: undone by the sequencer.
//!
//! An undo starts a new commit *epoch*. Reads are gated on the committed offset within the
//! epoch they read in, so a read that saw an undone group fails (retryable) instead of being
//! released when other entries later commit at the same offsets.

use super::Database;
use super::group::{Group, GroupRecord};
use super::jobs::{Completion, Job};
use super::sequencer::{Finished, execute_jobs};
use super::shared::{Gate, Shared};
use crate::engine::{Engine, Record, Undo};
use rstmdb_protocol::RcpError;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

/// Where the sequencer's groups go in cluster mode: a Raft log that commits them on a quorum
/// of voters. Implemented by `cluster`, which the database does not depend on.
pub trait GroupLog: Send + Sync + std::fmt::Debug {
    /// Payload bytes of the header record the log writes before a group's records: fixed, so
    /// the sequencer can plan the records' offsets before the entry exists.
    fn header_bytes(&self) -> usize;

    /// `Ok` when this node leads and every entry of its log is applied, so the engine holds
    /// exactly the log and a group planned on it lands where planned; otherwise the error
    /// its writes get. `applied_end` reads the end of what the engine has applied.
    ///
    /// A new term's blank entry is one such entry. So are the entries a leader restored
    /// after a restart still has to apply: openraft restores a node that led before the
    /// restart as the leader of the same term, with no new entry, while the engine holds only
    /// what start-up replayed.
    fn may_write(&self, applied_end: &dyn Fn() -> u64) -> Result<(), RcpError>;

    /// A value no other group in flight in the cluster has, to recognise the group's entry.
    fn new_origin(&self) -> u64;

    /// Hands the group to the log and blocks until its entry is committed and applied here,
    /// or until it is known not to be. Called on the sequencer thread.
    fn replicate(&self, origin: u64, records: Vec<GroupRecord>) -> Result<(), ReplicateError>;
}

/// Why a group was not acknowledged. Either way the sequencer undoes it if it is still
/// pending; the error is what its writes answer.
#[derive(Debug)]
pub enum ReplicateError {
    /// Not applied anywhere (refused, or cut from the log by a newer leader).
    NotApplied(RcpError),
    /// The log did not say (it stopped, say): the entry may still commit.
    Unknown(RcpError),
}

/// One committed entry, as the state machine hands it over.
#[derive(Debug)]
pub struct CommittedEntry<'a> {
    /// The origin of a normal entry; `None` for the entries Raft writes itself.
    pub origin: Option<u64>,
    /// Where the entry's header record is.
    pub header_offset: u64,
    /// The data records with their offsets, as raw JSON text.
    pub records: Vec<(u64, &'a str)>,
    /// The end of the entry's last record.
    pub end: u64,
}

/// Why a committed entry could not be applied: the node must stop (the log and the engine
/// disagree, or a record is damaged).
#[derive(Debug, thiserror::Error)]
pub enum ApplyCommittedError {
    #[error("record at offset {offset} of a committed entry is not a record: {source}")]
    Decode {
        offset: u64,
        source: serde_json::Error,
    },
    #[error("record at offset {offset} of a committed entry does not apply: {message}")]
    Replay { offset: u64, message: String },
}

/// Epochs whose end is remembered: a read from an older one fails (retryably) whatever it
/// read. Epochs end on lost leaderships, a handful in a node's life.
const REMEMBERED_EPOCHS: usize = 64;

/// The committed offset, the epoch, and where recent epochs ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitPoint {
    pub(crate) epoch: u64,
    pub(crate) offset: u64,
    /// The committed offset when each of the last epochs ended, newest last: epoch
    /// `epoch - ended.len() + i` ended at `ended[i]`.
    ended: VecDeque<u64>,
}

impl CommitPoint {
    /// Whether `gate` is committed: reached in its own epoch, or before its epoch ended. What
    /// an epoch held past its end was undone.
    fn settles(&self, gate: Gate) -> Option<bool> {
        if gate.epoch == self.epoch {
            return (self.offset >= gate.offset).then_some(true);
        }
        // A gate is taken in the current epoch, so its epoch is never ahead.
        let back = self
            .epoch
            .checked_sub(gate.epoch)
            .and_then(|back| usize::try_from(back).ok())
            .unwrap_or(usize::MAX);
        let end = self
            .ended
            .len()
            .checked_sub(back)
            .and_then(|i| self.ended.get(i));
        Some(end.is_some_and(|end| *end >= gate.offset))
    }
}

/// What became of the last group the sequencer handed to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    Committed,
    /// Committed, but not where it was planned (a leadership lost and regained between the
    /// plan and the hand-over): its replies' offsets would be wrong.
    Misplaced,
    Undone,
}

#[derive(Debug)]
struct PendingGroup {
    origin: u64,
    header_offset: u64,
    end: u64,
    undos: Vec<Undo>,
    /// The group's records, for watchers, once it commits.
    records: Vec<(u64, Record)>,
}

#[derive(Debug, Default)]
struct Pending {
    group: Option<PendingGroup>,
    /// How the last group was settled, with its origin.
    settled: Option<(u64, Settled)>,
}

/// Cluster mode's state in [`Shared`].
#[derive(Debug)]
pub(crate) struct Replication {
    /// Set once openraft is running; until then writes answer `no_leader`.
    log: OnceLock<Arc<dyn GroupLog>>,
    pending: Mutex<Pending>,
    commit: watch::Sender<CommitPoint>,
    /// How long a write waits for its group, and a read for the group it may reflect.
    pub(crate) write_timeout: Duration,
    /// Writes answered `commit_unknown` because their group did not commit in
    /// `write_timeout` (`rstmdb_replication_sync_timeouts_total`).
    pub(crate) sync_timeouts: AtomicU64,
}

impl Replication {
    /// Everything up to `applied_end` is committed: start-up replays nothing more.
    pub(crate) fn new(applied_end: u64, write_timeout: Duration) -> Replication {
        Replication {
            log: OnceLock::new(),
            pending: Mutex::new(Pending::default()),
            commit: watch::Sender::new(CommitPoint {
                epoch: 0,
                offset: applied_end,
                ended: VecDeque::new(),
            }),
            write_timeout,
            sync_timeouts: AtomicU64::new(0),
        }
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.commit.borrow().epoch
    }

    pub(crate) fn committed_offset(&self) -> u64 {
        self.commit.borrow().offset
    }

    /// Waits until `gate` is committed in its epoch. If its epoch ended first, what the
    /// waiter read was undone: it fails, retryably.
    pub(crate) async fn wait_committed(&self, gate: Gate) -> Result<(), RcpError> {
        if gate == Gate::NOTHING {
            return Ok(());
        }
        let mut points = self.commit.subscribe();
        let reached = tokio::time::timeout(
            self.write_timeout,
            points.wait_for(|p| p.settles(gate).is_some()),
        )
        .await;
        match reached {
            Ok(Ok(point)) if point.settles(gate) == Some(true) => Ok(()),
            Ok(Ok(_)) => Err(RcpError::no_leader(
                "the leader lost its term while this request waited; retry it",
            )),
            Ok(Err(_)) => Err(RcpError::internal("the database is shutting down")),
            Err(_) => Err(RcpError::no_leader(format!(
                "what this request depends on was not committed within {} ms",
                self.write_timeout.as_millis()
            ))),
        }
    }

    /// Everything below `end` is committed. Called before the entry's events are published:
    /// a watcher woken by the publication then finds them committed.
    fn advance(&self, end: u64) {
        self.commit.send_modify(|point| point.offset = end);
    }

    /// Undoes the pending group (the engine's write lock held), newest change first, and
    /// starts a new epoch.
    fn undo(&self, shared: &Shared, engine: &mut Engine, group: PendingGroup) {
        for undo in group.undos.into_iter().rev() {
            engine.undo(undo);
        }
        self.commit.send_modify(|point| {
            if point.ended.len() == REMEMBERED_EPOCHS {
                point.ended.pop_front();
            }
            point.ended.push_back(point.offset);
            point.epoch += 1;
            shared.applied_end.store(point.offset, Ordering::Release);
        });
    }
}

impl Database {
    /// The WAL, for the Raft log that cluster mode keeps in it.
    pub fn wal(&self) -> Arc<crate::wal::Wal> {
        Arc::clone(&self.shared.wal)
    }

    /// The end of the last record applied to the engine: what local reads reflect.
    pub fn applied_offset(&self) -> u64 {
        self.shared.applied_end.load(Ordering::Acquire)
    }

    /// Writes that timed out waiting for their group's commit since start (cluster mode; 0
    /// standalone).
    pub fn sync_timeouts(&self) -> u64 {
        self.shared
            .replication
            .as_ref()
            .map_or(0, |r| r.sync_timeouts.load(Ordering::Relaxed))
    }

    /// Runs `work` on the sequencer thread between two groups, after every job queued before
    /// this call (cluster mode: a membership change, which appends entries of its own).
    pub fn run_exclusive<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T, RcpError>> + Send + 'static {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let queued = super::sequencer::submit(
            &self.shared,
            Job::Exclusive(Box::new(move || {
                let _ = reply.send(work());
            })),
        );
        async move {
            queued.map_err(|_| RcpError::internal("the database is shutting down"))?;
            answer
                .await
                .map_err(|_| RcpError::internal("the database is shutting down"))
        }
    }

    /// Cluster mode: connects the sequencer to the Raft log. Once only.
    pub fn attach_group_log(&self, log: Arc<dyn GroupLog>) {
        let replication = self
            .shared
            .replication
            .as_ref()
            .expect("a group log is attached only to a database opened for a cluster");
        assert!(
            replication.log.set(log).is_ok(),
            "the group log is attached once"
        );
    }

    /// Applies one committed entry (the state machine calls this for every entry, in log
    /// order) and advances the committed offset past it.
    pub fn apply_committed(&self, entry: CommittedEntry<'_>) -> Result<(), ApplyCommittedError> {
        let shared = &self.shared;
        let replication = shared
            .replication
            .as_ref()
            .expect("committed entries are applied only in cluster mode");
        let mut pending = replication.pending();
        if let Some(group) = pending.group.take() {
            if entry.origin == Some(group.origin) && entry.header_offset == group.header_offset {
                assert_eq!(
                    group.end, entry.end,
                    "the leader's group and its committed entry end at different offsets"
                );
                pending.settled = Some((group.origin, Settled::Committed));
                replication.advance(entry.end);
                shared
                    .recent_events
                    .publish(group.records.into_iter(), group.end);
                return Ok(());
            }
            let mut engine = shared.write_engine();
            let settled = if entry.origin == Some(group.origin) {
                Settled::Misplaced
            } else {
                Settled::Undone
            };
            pending.settled = Some((group.origin, settled));
            replication.undo(shared, &mut engine, group);
        }
        drop(pending);
        let records = entry
            .records
            .iter()
            .map(|&(offset, text)| {
                serde_json::from_str::<Record>(text)
                    .map(|record| (offset, record))
                    .map_err(|source| ApplyCommittedError::Decode { offset, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        {
            let mut engine = shared.write_engine();
            for (offset, record) in &records {
                engine.apply_record(record, *offset).map_err(|err| {
                    ApplyCommittedError::Replay {
                        offset: *offset,
                        message: err.to_string(),
                    }
                })?;
            }
            shared.applied_end.store(entry.end, Ordering::Release);
        }
        replication.advance(entry.end);
        if !records.is_empty() {
            shared.recent_events.publish(records.into_iter(), entry.end);
        }
        Ok(())
    }
}

/// The sequencer's jobs in cluster mode, in queue order: the writes between two exclusive
/// jobs form a group, and an exclusive job runs with no group in flight.
pub(super) fn run_jobs(shared: &Shared, replication: &Replication, jobs: Vec<Job>) {
    let mut group = Vec::with_capacity(jobs.len());
    for job in jobs {
        match job {
            Job::Exclusive(work) => {
                if !group.is_empty() {
                    run_group(shared, replication, std::mem::take(&mut group));
                }
                work();
            }
            job => group.push(job),
        }
    }
    if !group.is_empty() {
        run_group(shared, replication, group);
    }
}

/// The sequencer's group in cluster mode: plan after a header record, execute, hand the
/// records to the log, and answer once the log has settled the group.
fn run_group(shared: &Shared, replication: &Replication, jobs: Vec<Job>) {
    let log = match replication.log.get() {
        Some(log) => log,
        None => return refuse_all(jobs, &RcpError::no_leader("the cluster is starting")),
    };
    if let Err(err) = log.may_write(&|| shared.applied_end.load(Ordering::Acquire)) {
        return refuse_all(jobs, &err);
    }
    let now_ms = shared.clock.now_ms();
    let mut engine = shared.write_engine();
    let mut group = Group::new(shared.wal.placement());
    let header_offset = group.place_header(log.header_bytes());
    let mut undos = Vec::new();
    // `run_jobs` took the exclusive jobs out: none is left here.
    let (finished, _) = execute_jobs(&mut engine, &mut group, jobs, now_ms, &mut undos);
    if group.is_empty() {
        // Every job was refused by the engine, on committed state (nothing is pending between
        // groups): nothing to replicate, nothing to wait for.
        drop(engine);
        return answer_all(finished, Ok(Gate::NOTHING));
    }
    let origin = log.new_origin();
    let end = group.end();
    // Registered before the engine's lock is let go: from then on the state machine undoes
    // the group if another entry comes first. Lock order everywhere: engine, then pending,
    // except that the state machine takes pending first only when a group is registered,
    // which is never while the sequencer holds the engine.
    {
        let mut pending = replication.pending();
        pending.settled = None;
        pending.group = Some(PendingGroup {
            origin,
            header_offset,
            end,
            undos,
            records: finished.iter().flat_map(Finished::records).collect(),
        });
    }
    shared.applied_end.store(end, Ordering::Release);
    drop(engine);

    let replicated = log.replicate(origin, group.into_records());
    let settled = {
        let mut pending = replication.pending();
        match pending.group.take() {
            Some(group) => {
                let mut engine = shared.write_engine();
                replication.undo(shared, &mut engine, group);
                Settled::Undone
            }
            None => match pending.settled {
                Some((settled_origin, settled)) if settled_origin == origin => settled,
                other => panic!("group {origin} was settled as {other:?}"),
            },
        }
    };
    // A committed group's replies wait for nothing more: a later epoch must not fail them.
    let answer = match (settled, replicated) {
        (Settled::Committed, Ok(())) => Ok(Gate::NOTHING),
        (Settled::Committed, Err(err)) => {
            // Applied here, so committed, whatever the log said on the way.
            tracing::warn!(?err, "a group committed although its hand-over failed");
            Ok(Gate::NOTHING)
        }
        (Settled::Misplaced, _) => Err(RcpError::commit_unknown(
            "the write committed while the leadership changed, at another offset than \
             planned; retry it with its idempotency key to read its result",
        )),
        (Settled::Undone, Err(ReplicateError::NotApplied(err) | ReplicateError::Unknown(err))) => {
            Err(err)
        }
        (Settled::Undone, Ok(())) => {
            // The group was undone for an entry that came first, then its own entry applied
            // through the replay path: it committed, but its replies were planned on a state
            // that was not the log's. Never expected (`may_write`); said, not trusted.
            tracing::error!(
                origin,
                "a group was acknowledged by the log after it was undone here; its writes \
                 answer commit_unknown"
            );
            Err(RcpError::commit_unknown(
                "the write committed while this node's state was catching up with its log; \
                 retry it with its idempotency key to read its result",
            ))
        }
    };
    answer_all(finished, answer);
}

fn refuse_all(jobs: Vec<Job>, err: &RcpError) {
    for job in jobs {
        match job {
            Job::Write { reply, .. } => send(reply, Err(err.clone())),
            Job::Batch { reply, .. } => send(reply, Err(err.clone())),
            Job::Stop | Job::Exclusive(_) => {}
        }
    }
}

/// Each job gets its own outcome once its group committed, or else the group's error (a
/// refusal too: it may have been decided on the undone state).
fn answer_all(finished: Vec<Finished>, group: Result<Gate, RcpError>) {
    for job in finished {
        match (job, &group) {
            (Finished::Write(reply, outcome), Ok(gate)) => {
                let _ = reply.send(Completion {
                    outcome,
                    gate: *gate,
                });
            }
            (Finished::Batch(reply, outcome), Ok(gate)) => {
                let _ = reply.send(Completion {
                    outcome,
                    gate: *gate,
                });
            }
            (Finished::Write(reply, _), Err(err)) => send(reply, Err(err.clone())),
            (Finished::Batch(reply, _), Err(err)) => send(reply, Err(err.clone())),
        }
    }
}

fn send<T>(reply: tokio::sync::oneshot::Sender<Completion<T>>, outcome: Result<T, RcpError>) {
    let _ = reply.send(Completion {
        outcome,
        gate: Gate::NOTHING,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(epoch: u64, offset: u64, ended: &[u64]) -> CommitPoint {
        CommitPoint {
            epoch,
            offset,
            ended: ended.iter().copied().collect(),
        }
    }

    fn gate(epoch: u64, offset: u64) -> Gate {
        Gate { offset, epoch }
    }

    #[test]
    fn a_gate_of_the_current_epoch_waits_until_the_commit_reaches_it() {
        let now = point(2, 100, &[40, 70]);
        assert_eq!(now.settles(gate(2, 100)), Some(true));
        assert_eq!(now.settles(gate(2, 101)), None, "still pending");
    }

    #[test]
    fn a_gate_of_an_ended_epoch_holds_only_if_it_was_committed_before_the_end() {
        // Epoch 0 ended at 40, epoch 1 at 70; offsets up to 100 are committed now.
        let now = point(2, 100, &[40, 70]);
        assert_eq!(now.settles(gate(1, 70)), Some(true), "committed in epoch 1");
        assert_eq!(
            now.settles(gate(1, 90)),
            Some(false),
            "read state that was undone when epoch 1 ended, though offset 90 is committed now"
        );
        assert_eq!(now.settles(gate(0, 40)), Some(true));
        assert_eq!(now.settles(gate(0, 41)), Some(false));
    }

    #[test]
    fn a_gate_older_than_the_remembered_epochs_fails() {
        let now = point(5, 100, &[90]);
        assert_eq!(now.settles(gate(3, 10)), Some(false));
    }
}
