//! A crash at every step of the checkpoint write protocol (docs/checkpoint-format.md §1.6):
//! the previous checkpoint is still loaded unless the new one became durable, and temp files
//! are ignored, then cleaned by the next read-write open.

use rstmdb::checkpoint::{
    CHECKPOINT_DIR, CheckpointError, CheckpointMeta, CheckpointStore, CrashPoint, FaultFs,
    HEADER_LEN,
};
use std::fs;
use std::path::Path;
use std::sync::Arc;

const OLD_OFFSET: u64 = (1 << 40) + 100;
const NEW_OFFSET: u64 = (2 << 40) + 40;

fn meta(checkpoint_offset: u64, last_sequence: u64) -> CheckpointMeta {
    CheckpointMeta {
        checkpoint_offset,
        last_sequence,
        created_at_ms: 1_767_225_600_000,
    }
}

fn file_names(data: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(data.join(CHECKPOINT_DIR))
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    names
}

fn temp_files(data: &Path) -> Vec<String> {
    file_names(data)
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

/// A data directory holding one durable checkpoint at `OLD_OFFSET`.
fn data_dir_with_old_checkpoint() -> tempfile::TempDir {
    let data = tempfile::tempdir().expect("tempdir");
    let store = CheckpointStore::open(data.path()).expect("open");
    store
        .write(meta(OLD_OFFSET, 10), b"old state")
        .expect("write old");
    data
}

/// Writes a new checkpoint through a file system that crashes at `point`; returns the write's
/// result.
fn write_new_crashing_at(data: &Path, point: CrashPoint) -> Result<(), CheckpointError> {
    let fault_fs = Arc::new(FaultFs::crashing_at(point));
    let store = CheckpointStore::open_with_fs(data, fault_fs.clone()).expect("open");
    let result = store.write(meta(NEW_OFFSET, 20), b"new state").map(|_| ());
    assert!(
        fault_fs.has_crashed(),
        "the crash point {point:?} was reached"
    );
    result
}

/// What the restarted server loads: (offset, payload).
fn restart_and_load(data: &Path) -> (u64, Vec<u8>) {
    let store = CheckpointStore::open(data).expect("reopen");
    let loaded = store
        .load_newest_valid()
        .expect("load")
        .loaded
        .expect("a checkpoint");
    (loaded.info.meta.checkpoint_offset, loaded.payload)
}

#[test]
fn a_crash_mid_temp_write_keeps_the_old_checkpoint_and_the_temp_file_is_cleaned() {
    for bytes_written in [0, 10, HEADER_LEN, HEADER_LEN + 4] {
        let data = data_dir_with_old_checkpoint();
        let result = write_new_crashing_at(data.path(), CrashPoint::MidTempWrite { bytes_written });
        assert!(matches!(result, Err(CheckpointError::Io { .. })));
        assert_eq!(
            temp_files(data.path()).len(),
            1,
            "a partial temp file is on disk"
        );

        // An inspection tool ignores the temp file and must not delete it.
        let read_only = CheckpointStore::open_read_only(data.path());
        let seen = read_only
            .load_newest_valid()
            .expect("load")
            .loaded
            .expect("old");
        assert_eq!(seen.info.meta.checkpoint_offset, OLD_OFFSET);
        assert_eq!(temp_files(data.path()).len(), 1);

        assert_eq!(
            restart_and_load(data.path()),
            (OLD_OFFSET, b"old state".to_vec())
        );
        assert!(
            temp_files(data.path()).is_empty(),
            "the restart cleans temp files"
        );
    }
}

#[test]
fn a_crash_after_the_temp_fsync_before_rename_keeps_the_old_checkpoint() {
    let data = data_dir_with_old_checkpoint();
    let result = write_new_crashing_at(data.path(), CrashPoint::BeforeRename);
    assert!(result.is_err());
    let temps = temp_files(data.path());
    assert_eq!(temps.len(), 1);
    // The temp file is complete, yet it is never loaded: the write never returned.
    let temp_len = fs::metadata(data.path().join(CHECKPOINT_DIR).join(&temps[0]))
        .expect("stat")
        .len();
    assert_eq!(temp_len, (HEADER_LEN + b"new state".len()) as u64);

    assert_eq!(
        restart_and_load(data.path()),
        (OLD_OFFSET, b"old state".to_vec())
    );
    assert!(temp_files(data.path()).is_empty());
}

#[test]
fn a_crash_before_the_dir_fsync_that_loses_the_rename_keeps_the_old_checkpoint() {
    let data = data_dir_with_old_checkpoint();
    let point = CrashPoint::BeforeDirSync {
        rename_survives: false,
    };
    assert!(write_new_crashing_at(data.path(), point).is_err());
    assert_eq!(temp_files(data.path()).len(), 1);
    assert_eq!(
        restart_and_load(data.path()),
        (OLD_OFFSET, b"old state".to_vec())
    );
    assert!(temp_files(data.path()).is_empty());
    assert_eq!(file_names(data.path()).len(), 1);
}

#[test]
fn a_crash_before_the_dir_fsync_that_keeps_the_rename_loads_the_new_checkpoint() {
    let data = data_dir_with_old_checkpoint();
    let point = CrashPoint::BeforeDirSync {
        rename_survives: true,
    };
    assert!(write_new_crashing_at(data.path(), point).is_err());
    assert!(temp_files(data.path()).is_empty());
    assert_eq!(
        restart_and_load(data.path()),
        (NEW_OFFSET, b"new state".to_vec())
    );
}

#[test]
fn a_crash_during_retention_leaves_the_newest_loadable_and_the_next_pass_finishes() {
    let data = tempfile::tempdir().expect("tempdir");
    {
        let store = CheckpointStore::open(data.path()).expect("open");
        for i in 1..=4u64 {
            store
                .write(meta(OLD_OFFSET + i, i), &[i as u8])
                .expect("write");
        }
    }
    let fault_fs = Arc::new(FaultFs::crashing_at(CrashPoint::DuringRemoval {
        removals_done: 1,
    }));
    let store = CheckpointStore::open_with_fs(data.path(), fault_fs.clone()).expect("open");
    assert!(store.remove_older_than_newest(false).is_err());
    assert!(fault_fs.has_crashed());
    assert_eq!(
        file_names(data.path()).len(),
        3,
        "one of three old files was removed"
    );

    assert_eq!(restart_and_load(data.path()), (OLD_OFFSET + 4, vec![4]));
    let store = CheckpointStore::open(data.path()).expect("reopen");
    assert_eq!(store.remove_older_than_newest(false).expect("retain"), 2);
    assert_eq!(store.count().expect("count"), 1);
}

#[test]
fn a_write_after_a_crash_gets_a_fresh_name_and_becomes_the_newest() {
    let data = data_dir_with_old_checkpoint();
    assert!(write_new_crashing_at(data.path(), CrashPoint::BeforeRename).is_err());
    let store = CheckpointStore::open(data.path()).expect("reopen");
    store
        .write(meta(NEW_OFFSET, 20), b"retried")
        .expect("write");
    assert_eq!(
        restart_and_load(data.path()),
        (NEW_OFFSET, b"retried".to_vec())
    );
}
