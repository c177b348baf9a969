//! Directory entries are durable before anything in them is acknowledged (issue 15, item 2):
//! recovery syncs the WAL directory (an empty newest segment left by a kill between its create
//! and the directory fsync) and the WAL directory's own entry in the data directory.

use super::wal_support::recover_payloads;
use rstmdb::wal::fault::{CrashPlan, FaultStorage};
use rstmdb::wal::segment::segment_file_name;
use rstmdb::wal::{FsyncPolicy, NewRecord, Storage, Wal, WalConfig};

fn config() -> WalConfig {
    WalConfig {
        segment_size_bytes: 700,
        fsync_policy: FsyncPolicy::EveryWrite,
    }
}

fn open(storage: &FaultStorage) -> (Wal, Vec<Vec<u8>>) {
    recover_payloads(storage, config()).expect("recovery succeeds")
}

fn append_durably(wal: &Wal, payload: &[u8]) {
    let appended = wal
        .append(&[NewRecord {
            kind: 3,
            timestamp_ms: 1,
            payload,
        }])
        .expect("append");
    wal.wait_durable_blocking(appended.end_offset)
        .expect("durable");
}

#[test]
fn an_empty_newest_segment_left_by_a_kill_is_made_durable_before_it_takes_acknowledged_records() {
    let storage = FaultStorage::new();
    let (wal, _) = open(&storage);
    append_durably(&wal, b"first");
    drop(wal);
    // A kill between the create of segment 2 and the directory fsync: the page cache keeps the
    // entry, the disk does not have it yet.
    storage
        .create(&segment_file_name(2))
        .expect("create segment 2");

    let (wal, seen) = open(&storage);
    assert_eq!(seen, vec![b"first".to_vec()]);
    assert_eq!(wal.latest_offset() >> 40, 2, "the empty segment is adopted");
    append_durably(&wal, b"second");

    let after_power_loss = storage.crash(CrashPlan::default());
    drop(wal);
    let (_, recovered) = open(&after_power_loss);
    assert_eq!(recovered, vec![b"first".to_vec(), b"second".to_vec()]);
}

#[test]
fn a_new_wal_directory_survives_a_power_loss_once_a_record_in_it_is_acknowledged() {
    let storage = FaultStorage::fresh_directory();
    let (wal, _) = open(&storage);
    append_durably(&wal, b"acknowledged");

    let after_power_loss = storage.crash(CrashPlan::default());
    drop(wal);
    let (_, recovered) = open(&after_power_loss);
    assert_eq!(recovered, vec![b"acknowledged".to_vec()]);
}
