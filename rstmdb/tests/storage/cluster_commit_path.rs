//! The database's side of cluster mode (`docs/cluster.md` sections 4 to 6) with a scripted
//! log instead of openraft: a leader's group is answered only once its entry is applied, a
//! group the log drops is undone and answered `no_leader`, and a group overtaken by another
//! leader's entry is undone before that entry is applied, so the engine always equals the
//! committed log.

use rstmdb::database::{
    ClusterOpen, CommittedEntry, Database, DatabaseOptions, GroupLog, GroupRecord, ReplayStep,
    ReplicateError,
};
use rstmdb::engine::{Command, CreateInstance, InstanceIdChoice, PutMachine, Record};
use rstmdb::wal::{Placement, WalConfig};
use rstmdb_client::{ErrorCode, RcpError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const HEADER_BYTES: usize = 160;

/// What the scripted log does with the next group.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Next {
    /// Commits it where it was planned.
    Commit,
    /// Drops it (a newer leader cut it): nothing is applied.
    Drop,
    /// A newer leader's entry, creating `foreign`, is committed where the group was planned.
    Overtake,
}

#[derive(Debug)]
struct ScriptedLog {
    db: OnceLock<Arc<Database>>,
    segment_size_bytes: u64,
    next: Mutex<Next>,
    origins: Mutex<u64>,
}

impl ScriptedLog {
    fn db(&self) -> &Database {
        self.db.get().expect("attached")
    }

    /// Applies an entry at the WAL's end (where the leader planned it), made of `records`.
    fn apply(&self, origin: Option<u64>, records: &[(u8, String)]) {
        let db = self.db();
        let mut placement = Placement::at(db.wal().latest_offset(), self.segment_size_bytes);
        let header_offset = placement.place(HEADER_BYTES);
        let records: Vec<(u64, &str)> = records
            .iter()
            .map(|(_, text)| (placement.place(text.len()), text.as_str()))
            .collect();
        db.apply_committed(CommittedEntry {
            origin,
            header_offset,
            records,
            end: placement.end(),
        })
        .expect("the entry applies");
    }
}

impl GroupLog for ScriptedLog {
    fn header_bytes(&self) -> usize {
        HEADER_BYTES
    }

    fn may_write(&self, _applied_end: &dyn Fn() -> u64) -> Result<(), RcpError> {
        Ok(())
    }

    fn new_origin(&self) -> u64 {
        let mut origins = self.origins.lock().unwrap();
        *origins += 1;
        *origins
    }

    fn replicate(&self, origin: u64, records: Vec<GroupRecord>) -> Result<(), ReplicateError> {
        let records: Vec<(u8, String)> = records
            .into_iter()
            .map(|r| (r.kind, String::from_utf8(r.payload).expect("UTF-8")))
            .collect();
        match *self.next.lock().unwrap() {
            Next::Commit => {
                self.apply(Some(origin), &records);
                Ok(())
            }
            Next::Drop => Err(ReplicateError::NotApplied(RcpError::no_leader("dropped"))),
            Next::Overtake => {
                let foreign = Record::CreateInstance(rstmdb::engine::CreateInstanceRecord {
                    instance_id: "foreign".into(),
                    machine: "order".into(),
                    version: 1,
                    initial_state: "created".into(),
                    initial_ctx: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
                    idempotency_key: None,
                    timestamp: 1,
                });
                let text = serde_json::to_string(&foreign).unwrap();
                self.apply(Some(u64::MAX), &[(foreign.kind_code(), text)]);
                Err(ReplicateError::NotApplied(RcpError::no_leader("overtaken")))
            }
        }
    }
}

async fn open_node() -> (tempfile::TempDir, Arc<Database>, Arc<ScriptedLog>) {
    let dir = tempfile::tempdir().unwrap();
    let options = DatabaseOptions::new(dir.path(), WalConfig::default());
    let segment_size_bytes = options.wal.segment_size_bytes;
    let (db, _) = tokio::task::spawn_blocking(move || {
        let mut filter = |_: &rstmdb::wal::RecordView<'_>| Ok(ReplayStep::Apply);
        Database::open_for_cluster(
            options,
            ClusterOpen {
                filter: &mut filter,
                write_timeout: Duration::from_secs(5),
            },
        )
    })
    .await
    .unwrap()
    .expect("open");
    let db = Arc::new(db);
    let log = Arc::new(ScriptedLog {
        db: OnceLock::new(),
        segment_size_bytes,
        next: Mutex::new(Next::Commit),
        origins: Mutex::new(0),
    });
    log.db.set(Arc::clone(&db)).unwrap();
    db.attach_group_log(Arc::clone(&log) as _);
    (dir, db, log)
}

/// Registers `order` v1 through the scripted log.
async fn put_order(db: &Database) {
    db.write(Command::PutMachine(PutMachine {
        machine: "order".into(),
        version: 1,
        definition: rstmdb_testkit::machines::order_definition(),
    }))
    .await
    .expect("committed");
}

fn create(id: &str) -> Command {
    Command::CreateInstance(CreateInstance {
        machine: "order".into(),
        version: 1,
        instance_id: InstanceIdChoice::Given(id.into()),
        initial_ctx: None,
        idempotency_key: None,
    })
}

async fn exists(db: &Database, id: &str) -> bool {
    let id = id.to_owned();
    db.read(move |engine| engine.get_instance(&id).is_ok())
        .await
        .expect("read")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_is_acknowledged_once_applied_and_a_dropped_one_is_undone() {
    let (_dir, db, log) = open_node().await;
    put_order(&db).await;
    let written = db.write(create("kept")).await.expect("committed");
    assert!(written.wal_offset.is_some());
    assert!(exists(&db, "kept").await);

    *log.next.lock().unwrap() = Next::Drop;
    let err = db.write(create("dropped")).await.expect_err("dropped");
    assert_eq!(err.code, ErrorCode::ReplicationTimeout);
    assert_eq!(err.reason(), Some("no_leader"), "{err:?}");
    assert!(
        !exists(&db, "dropped").await,
        "the engine holds only what committed"
    );

    // The same id again: the undo left no trace of the dropped create.
    *log.next.lock().unwrap() = Next::Commit;
    db.write(create("dropped"))
        .await
        .expect("committed this time");
    assert!(exists(&db, "dropped").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_overtaken_by_another_leaders_entry_is_undone_before_that_entry_applies() {
    let (_dir, db, log) = open_node().await;
    put_order(&db).await;
    *log.next.lock().unwrap() = Next::Overtake;
    let err = db.write(create("mine")).await.expect_err("overtaken");
    assert_eq!(err.reason(), Some("no_leader"), "{err:?}");
    assert!(
        exists(&db, "foreign").await,
        "the other leader's entry applied"
    );
    assert!(!exists(&db, "mine").await, "the overtaken group was undone");
}
