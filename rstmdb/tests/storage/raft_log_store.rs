//! The Raft log on the WAL (cluster mode): openraft's own conformance tests for log storage,
//! entries read back after a restart, the same entries at the same offsets on two nodes even
//! when one of them had a conflicting tail cut, and a purge that waits for the state machine.

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, EntryPayload, LogId, Membership, RaftLogReader, RaftSnapshotBuilder,
    Snapshot, SnapshotMeta, StoredMembership,
};
use rstmdb::cluster::log_store::{IndexBuilder, WalLogStore};
use rstmdb::cluster::types::{
    CommandRecord, Entry, NodeAddr, NodeId, RaftCommand, RaftReply, RaftTypes, SnapshotFile,
    StorageError, Vote,
};
use rstmdb::cluster::{RaftFile, RaftFiles};
use rstmdb::wal::fault::{CrashPlan, FaultStorage};
use rstmdb::wal::{DirStorage, FsyncPolicy, Storage, Wal, WalConfig};
use serde_json::value::RawValue;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

type Opened = (WalLogStore, Arc<Wal>, watch::Sender<Option<LogId<NodeId>>>);

/// Opens the log of `data_dir` as a node does: WAL recovery feeds the entry index.
fn open_log(data_dir: &Path, segment_size_bytes: u64) -> Opened {
    let storage: Arc<dyn Storage> =
        Arc::new(DirStorage::open(data_dir.join("wal")).expect("wal dir"));
    let config = WalConfig {
        segment_size_bytes,
        fsync_policy: FsyncPolicy::EveryWrite,
    };
    open_log_on(data_dir, storage, config)
}

/// [`open_log`] with the WAL's segments in `storage`.
fn open_log_on(data_dir: &Path, storage: Arc<dyn Storage>, config: WalConfig) -> Opened {
    let files = RaftFiles::open(data_dir).expect("raft files");
    let mut index = IndexBuilder::new(&files).expect("index");
    let (wal, _) = Wal::open(storage, config, None, &mut |record| {
        Ok(index.observe(&record)?)
    })
    .expect("recovery");
    let wal = Arc::new(wal);
    let (gate, gate_rx) = watch::channel(None);
    let store = WalLogStore::open(Arc::clone(&wal), files, index, gate_rx, None);
    (store, wal, gate)
}

fn log_id(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn command(term: u64, index: u64, records: &[&str]) -> Entry {
    let records = records
        .iter()
        .enumerate()
        .map(|(i, json)| CommandRecord {
            kind: 2,
            timestamp_ms: 1_767_225_600_000 + i as i64,
            payload: RawValue::from_string((*json).to_owned()).expect("json"),
        })
        .collect();
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(RaftCommand {
            origin: 7 * index,
            records,
        }),
    }
}

fn blank(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Blank,
    }
}

/// Appends and waits for the flush, as openraft's core does.
async fn append(store: &mut WalLogStore, entries: Vec<Entry>) {
    store
        .blocking_append(entries)
        .await
        .expect("append and flush");
}

/// The offset at which each of `entries` starts, read from a second log reader.
async fn all_entries(store: &mut WalLogStore) -> Vec<Entry> {
    let mut reader = store.get_log_reader().await;
    reader.try_get_log_entries(0..).await.expect("read")
}

use openraft::storage::RaftLogStorageExt;

#[tokio::test]
async fn entries_survive_a_restart_with_their_records_vote_and_purge_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let membership = Entry {
        log_id: log_id(1, 2),
        payload: EntryPayload::Membership(Membership::new(vec![BTreeSet::from([1, 2, 3])], None)),
    };
    let written = vec![
        blank(1, 0),
        command(1, 1, &[r#"{"instance":"a","ctx":{"n":1}}"#, r#"[1,2,3]"#]),
        membership,
        command(1, 3, &[r#""just a string""#]),
    ];
    {
        let (mut store, _wal, _gate) = open_log(dir.path(), 64 << 20);
        append(&mut store, written.clone()).await;
        store
            .save_vote(&Vote::new_committed(1, 1))
            .await
            .expect("vote");
    }

    let (mut store, _wal, _gate) = open_log(dir.path(), 64 << 20);

    assert_eq!(all_entries(&mut store).await, written);
    let state = store.get_log_state().await.expect("state");
    assert_eq!(state.last_log_id, Some(log_id(1, 3)));
    assert_eq!(state.last_purged_log_id, None);
    assert_eq!(
        store.read_vote().await.expect("vote"),
        Some(Vote::new_committed(1, 1))
    );
    let mut reader = store.get_log_reader().await;
    assert_eq!(
        reader.try_get_log_entries(1..3).await.expect("read"),
        written[1..3],
        "a range in the middle"
    );
}

#[tokio::test]
async fn a_cut_tail_makes_the_log_identical_to_a_node_that_never_had_it() {
    // Small segments so the entries span several and the cut crosses segment boundaries.
    let segment = 600;
    let records = [r#"{"instance":"some-instance","event":"go","payload":{"x":1}}"#; 3];
    let follower_dir = tempfile::tempdir().expect("tempdir");
    let leader_dir = tempfile::tempdir().expect("tempdir");
    let (mut follower, follower_wal, _g1) = open_log(follower_dir.path(), segment);
    let (mut leader, leader_wal, _g2) = open_log(leader_dir.path(), segment);

    // The follower got entries 3..=8 of term 1 from an old leader; they never committed.
    let common: Vec<Entry> = (0..3).map(|i| command(1, i, &records)).collect();
    append(&mut follower, common.clone()).await;
    append(
        &mut follower,
        (3..9).map(|i| command(1, i, &records[..1])).collect(),
    )
    .await;
    // The new leader of term 2 has other entries from 3 on.
    let term_two: Vec<Entry> = (3..7).map(|i| command(2, i, &records)).collect();
    append(&mut leader, common.clone()).await;
    append(&mut leader, term_two.clone()).await;

    follower.truncate(log_id(1, 3)).await.expect("truncate");
    append(&mut follower, term_two.clone()).await;

    assert_eq!(
        all_entries(&mut follower).await,
        all_entries(&mut leader).await
    );
    assert_eq!(follower_wal.latest_offset(), leader_wal.latest_offset());
    assert_eq!(follower_wal.last_sequence(), leader_wal.last_sequence());
    let offsets = |wal: &Wal| {
        wal.reader_written(0)
            .map(|record| {
                let record = record.expect("record");
                (record.offset, record.sequence, record.kind)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        offsets(&follower_wal),
        offsets(&leader_wal),
        "every record at the same offset with the same sequence"
    );
}

#[tokio::test]
async fn a_purge_waits_until_the_state_machine_can_do_without_the_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut store, _wal, gate) = open_log(dir.path(), 64 << 20);
    append(&mut store, (0..5).map(|i| blank(1, i)).collect()).await;

    let purge = tokio::spawn(async move {
        store.purge(log_id(1, 2)).await.expect("purge");
        store
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !purge.is_finished(),
        "purged before the state machine had it"
    );
    let files = RaftFiles::open(dir.path()).expect("files");
    assert_eq!(
        files
            .load::<serde_json::Value>(RaftFile::State)
            .expect("state"),
        None,
        "nothing recorded yet"
    );

    gate.send_replace(Some(log_id(1, 1)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !purge.is_finished(),
        "a checkpoint below the purge point is not enough"
    );
    gate.send_replace(Some(log_id(1, 3)));
    let mut store = purge.await.expect("purge task");

    assert_eq!(
        store
            .get_log_state()
            .await
            .expect("state")
            .last_purged_log_id,
        Some(log_id(1, 2))
    );
    assert_eq!(
        all_entries(&mut store).await,
        [blank(1, 3), blank(1, 4)],
        "the purged entries are gone"
    );
    drop(store);
    let (mut reopened, _wal, _gate) = open_log(dir.path(), 64 << 20);
    assert_eq!(
        all_entries(&mut reopened).await,
        [blank(1, 3), blank(1, 4)],
        "and stay gone after a restart, though the WAL still holds them"
    );
}

#[tokio::test]
async fn an_entry_that_does_not_follow_the_last_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut store, wal, _gate) = open_log(dir.path(), 64 << 20);
    append(&mut store, vec![blank(1, 0), blank(1, 1)]).await;
    let end = wal.latest_offset();

    let err = store
        .blocking_append(vec![blank(1, 3)])
        .await
        .expect_err("a gap");

    assert!(err.to_string().contains("entry 3"), "{err}");
    assert_eq!(wal.latest_offset(), end, "nothing was written");
}

#[tokio::test]
async fn a_crash_in_the_middle_of_appends_leaves_whole_entries_only() {
    let records = [
        r#"{"n":1}"#,
        r#"{"n":2,"pad":"................................"}"#,
        r#"[3]"#,
    ];
    let written: Vec<Entry> = (0..4).map(|i| command(1, i, &records)).collect();
    let config = WalConfig {
        segment_size_bytes: 64 << 20,
        fsync_policy: FsyncPolicy::Never,
    };
    for kept_ops in 0..=4 {
        for torn_bytes in [0, 30, 100, 200] {
            let dir = tempfile::tempdir().expect("tempdir");
            let storage = FaultStorage::new();
            let (mut store, _wal, _gate) =
                open_log_on(dir.path(), Arc::new(storage.clone()), config);
            // One append, one write call, per entry; under `never` nothing is synced.
            for entry in &written {
                append(&mut store, vec![entry.clone()]).await;
            }
            // The power fails now: dropping the WAL would sync it.
            let crashed = storage.crash(CrashPlan {
                kept_ops,
                torn_bytes,
            });
            drop(store);
            let (mut store, _wal, _gate) = open_log_on(dir.path(), Arc::new(crashed), config);

            let recovered = all_entries(&mut store).await;
            let case = format!("{kept_ops} writes kept, the next torn at {torn_bytes} bytes");
            assert_eq!(recovered, written[..kept_ops], "{case}");
            let state = store.get_log_state().await.expect("state");
            assert_eq!(
                state.last_log_id,
                recovered.last().map(|e| e.log_id),
                "{case}"
            );
            // The log goes on from there.
            append(&mut store, vec![command(2, kept_ops as u64, &records)]).await;
        }
    }
}

// openraft's own conformance tests of a log storage. The state machine half of its suite needs
// the engine's state machine, which is not built yet (docs/cluster.md section 5); these tests
// never touch it.

struct Builder;

struct Node {
    _dir: tempfile::TempDir,
    _gate: watch::Sender<Option<LogId<NodeId>>>,
}

impl StoreBuilder<RaftTypes, WalLogStore, NoStateMachine, Node> for Builder {
    async fn build(&self) -> Result<(Node, WalLogStore, NoStateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _wal, gate) = open_log(dir.path(), 64 << 20);
        // No state machine: every purge point is covered at once.
        gate.send_replace(Some(LogId::new(
            CommittedLeaderId::new(u64::MAX, 0),
            u64::MAX,
        )));
        Ok((
            Node {
                _dir: dir,
                _gate: gate,
            },
            store,
            NoStateMachine,
        ))
    }
}

type LogSuite = Suite<RaftTypes, WalLogStore, NoStateMachine, Builder, Node>;

macro_rules! log_suite {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_node, store, sm) = Builder.build().await.expect("build");
                LogSuite::$name(store, sm).await.expect(stringify!($name));
            }
        )*
    };
}

mod openraft_log_suite {
    use super::*;

    log_suite!(
        save_vote,
        get_log_entries,
        limited_get_log_entries,
        try_get_log_entry,
        initial_logs,
        get_log_state,
        get_log_id,
        purge_logs_upto_0,
        purge_logs_upto_5,
        purge_logs_upto_20,
        delete_logs_since_11,
        delete_logs_since_0,
        append_to_log,
    );
}

/// Stands where the engine's state machine will: the log tests above never call it.
struct NoStateMachine;

const NOT_BUILT: &str = "the log storage tests do not use a state machine";

impl RaftSnapshotBuilder<RaftTypes> for NoStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<RaftTypes>, StorageError> {
        unreachable!("{NOT_BUILT}")
    }
}

impl RaftStateMachine<RaftTypes> for NoStateMachine {
    type SnapshotBuilder = NoStateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, NodeAddr>), StorageError> {
        unreachable!("{NOT_BUILT}")
    }

    async fn apply<I>(&mut self, _entries: I) -> Result<Vec<RaftReply>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        unreachable!("{NOT_BUILT}")
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        unreachable!("{NOT_BUILT}")
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotFile>, StorageError> {
        unreachable!("{NOT_BUILT}")
    }

    async fn install_snapshot(
        &mut self,
        _meta: &SnapshotMeta<NodeId, NodeAddr>,
        _snapshot: Box<SnapshotFile>,
    ) -> Result<(), StorageError> {
        unreachable!("{NOT_BUILT}")
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<RaftTypes>>, StorageError> {
        unreachable!("{NOT_BUILT}")
    }
}
