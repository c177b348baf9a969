//! A record that cannot be applied stops the start-up at that record, whatever follows it, and
//! recovery then cuts nothing: the replay applies records on a second thread while the first
//! reads and parses ahead, so the failure may surface long after that record was read.

use rstmdb::database::{Database, DatabaseOptions, OpenError};
use rstmdb::engine::{Command, PutMachine};
use rstmdb::wal::{DirStorage, FsyncPolicy, NewRecord, Storage, Wal, WalConfig, WalError, wal_dir};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

fn options(dir: &Path) -> DatabaseOptions {
    DatabaseOptions::new(
        dir,
        WalConfig {
            fsync_policy: FsyncPolicy::Never,
            ..WalConfig::default()
        },
    )
}

fn create(n: usize) -> String {
    format!(
        r#"{{"type":"create_instance","instance_id":"c-{n}","machine":"flip","version":1,"initial_state":"a","initial_ctx":{{}},"timestamp":1}}"#
    )
}

/// An event for an instance that never existed: valid JSON that no state accepts.
const UNAPPLIABLE: &str = r#"{"type":"apply_event","instance_id":"nobody","machine":"flip","version":1,"event":"GO","from_state":"a","to_state":"b","payload":null,"ctx":{},"timestamp":1}"#;

/// A data directory with the flip machine, then `count` creates of which the one at
/// `bad_at` cannot be applied, then a torn tail. Returns the offset of the bad record and the
/// WAL's newest file.
fn data_dir_failing_at(dir: &Path, count: usize, bad_at: usize) -> (u64, std::path::PathBuf) {
    let (db, _) = Database::open(options(dir)).expect("open");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime
        .block_on(db.write(Command::PutMachine(PutMachine {
            machine: "flip".into(),
            version: 1,
            definition: rstmdb_testkit::watch::flip_definition(),
        })))
        .expect("put machine");
    db.shutdown().expect("shutdown");
    drop(db);

    let storage: Arc<dyn Storage> = Arc::new(DirStorage::open(wal_dir(dir)).expect("wal dir"));
    let config = options(dir).wal;
    let (wal, _) = Wal::open(storage, config, None, &mut |_| Ok(())).expect("wal");
    let mut bad_offset = 0;
    for n in 0..count {
        let payload = if n == bad_at {
            UNAPPLIABLE.to_owned()
        } else {
            create(n)
        };
        let kind = if n == bad_at { 3 } else { 2 };
        let appended = wal
            .append(&[NewRecord {
                kind,
                timestamp_ms: 1,
                payload: payload.as_bytes(),
            }])
            .expect("append");
        if n == bad_at {
            bad_offset = appended.offsets[0];
        }
    }
    wal.shutdown().expect("shutdown");
    drop(wal);
    let newest = std::fs::read_dir(wal_dir(dir))
        .expect("list")
        .map(|entry| entry.expect("entry").path())
        .max()
        .expect("a segment");
    // Half a record's worth of garbage: a torn tail, which a successful start-up would cut.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .expect("open the newest segment");
    file.write_all(&[0xAB; 48]).expect("torn tail");
    (bad_offset, newest)
}

fn assert_fails_at(count: usize, bad_at: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bad_offset, newest) = data_dir_failing_at(dir.path(), count, bad_at);
    let before = std::fs::read(&newest).expect("read");
    match Database::open(options(dir.path())) {
        Err(OpenError::Wal(WalError::Replay { offset, source })) => {
            assert_eq!(offset, bad_offset, "the failing record's offset: {source}");
            assert!(source.to_string().contains("nobody"), "{source}");
        }
        Err(other) => panic!("expected a replay error, got {other}"),
        Ok(_) => panic!("the start-up succeeded past a record it cannot apply"),
    }
    let after = std::fs::read(&newest).expect("read");
    assert!(
        after == before,
        "recovery cut the WAL although the start-up failed"
    );
}

#[test]
fn a_failure_early_in_a_long_replay_is_reported_at_its_record() {
    // Far more records after it than the readers runs ahead by.
    assert_fails_at(20_000, 10);
}

#[test]
fn a_failure_at_the_last_record_is_reported_before_anything_is_cut() {
    assert_fails_at(3_000, 2_999);
}

#[test]
fn a_cluster_nodes_data_directory_is_refused_naming_what_it_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage: Arc<dyn Storage> =
        Arc::new(DirStorage::open(wal_dir(dir.path())).expect("wal dir"));
    let (wal, _) = Wal::open(storage, options(dir.path()).wal, None, &mut |_| Ok(())).expect("wal");
    let header = br#"{"term":1,"leader":1,"index":0,"payload":"blank","records":0}"#;
    let appended = wal
        .append_unit(&[NewRecord {
            kind: rstmdb::engine::RAFT_ENTRY_KIND,
            timestamp_ms: 0,
            payload: header,
        }])
        .expect("append");
    wal.shutdown().expect("shutdown");
    drop(wal);

    match Database::open(options(dir.path())) {
        Err(OpenError::Wal(WalError::Replay { offset, source })) => {
            assert_eq!(offset, appended.offsets[0]);
            assert!(source.to_string().contains("cluster node"), "{source}");
        }
        Err(other) => panic!("expected a replay error, got {other}"),
        Ok(_) => panic!("a standalone server opened a cluster node's Raft log"),
    }
}
