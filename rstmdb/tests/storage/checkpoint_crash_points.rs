//! A crash at every step of the checkpoint write protocol (docs/checkpoint-format.md §1.6):
//! the previous checkpoint is still loaded unless the new one became durable, and temp files
//! are ignored, then cleaned by the next read-write open. Each case runs for both ways a
//! checkpoint is written: whole (`CheckpointStore::write`) and streamed while its payload is
//! produced (`CheckpointStore::begin_streamed`, what COMPACT uses).

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

/// How a checkpoint is written.
#[derive(Debug, Clone, Copy)]
enum How {
    Whole,
    /// The first part last, the rest appended in two pieces.
    Streamed,
}

const BOTH: [How; 2] = [How::Whole, How::Streamed];

/// Writes `payload` ("new state") at `NEW_OFFSET`.
fn write_new(store: &CheckpointStore, how: How) -> Result<(), CheckpointError> {
    match how {
        How::Whole => store.write(meta(NEW_OFFSET, 20), b"new state").map(|_| ()),
        How::Streamed => {
            let mut writer = store.begin_streamed(NEW_OFFSET, 3)?;
            writer.append(b" st")?;
            writer.append(b"ate")?;
            writer.finish(meta(NEW_OFFSET, 20), b"new").map(|_| ())
        }
    }
}

/// Writes a new checkpoint through a file system that crashes at `point`; returns the write's
/// result.
fn write_new_crashing_at(data: &Path, point: CrashPoint, how: How) -> Result<(), CheckpointError> {
    let fault_fs = Arc::new(FaultFs::crashing_at(point));
    let store = CheckpointStore::open_with_fs(data, fault_fs.clone()).expect("open");
    let result = write_new(&store, how);
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
    for (how, bytes_written) in BOTH
        .into_iter()
        .flat_map(|how| [0, 10, HEADER_LEN, HEADER_LEN + 4].map(|n| (how, n)))
    {
        let data = data_dir_with_old_checkpoint();
        let result =
            write_new_crashing_at(data.path(), CrashPoint::MidTempWrite { bytes_written }, how);
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
    for how in BOTH {
        let data = data_dir_with_old_checkpoint();
        let result = write_new_crashing_at(data.path(), CrashPoint::BeforeRename, how);
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
}

#[test]
fn a_crash_before_the_dir_fsync_that_loses_the_rename_keeps_the_old_checkpoint() {
    for how in BOTH {
        let data = data_dir_with_old_checkpoint();
        let point = CrashPoint::BeforeDirSync {
            rename_survives: false,
        };
        assert!(write_new_crashing_at(data.path(), point, how).is_err());
        assert_eq!(temp_files(data.path()).len(), 1);
        assert_eq!(
            restart_and_load(data.path()),
            (OLD_OFFSET, b"old state".to_vec())
        );
        assert!(temp_files(data.path()).is_empty());
        assert_eq!(file_names(data.path()).len(), 1);
    }
}

#[test]
fn a_crash_before_the_dir_fsync_that_keeps_the_rename_loads_the_new_checkpoint() {
    for how in BOTH {
        let data = data_dir_with_old_checkpoint();
        let point = CrashPoint::BeforeDirSync {
            rename_survives: true,
        };
        assert!(write_new_crashing_at(data.path(), point, how).is_err());
        assert!(temp_files(data.path()).is_empty());
        assert_eq!(
            restart_and_load(data.path()),
            (NEW_OFFSET, b"new state".to_vec())
        );
    }
}

#[test]
fn a_streamed_checkpoint_is_byte_for_byte_the_one_written_whole() {
    let files: Vec<Vec<u8>> = BOTH
        .into_iter()
        .map(|how| {
            let data = data_dir_with_old_checkpoint();
            let store = CheckpointStore::open(data.path()).expect("open");
            write_new(&store, how).expect("write");
            let names = file_names(data.path());
            let newest = names.last().expect("two checkpoints");
            fs::read(data.path().join(CHECKPOINT_DIR).join(newest)).expect("read")
        })
        .collect();
    assert_eq!(files[0], files[1]);
    assert_eq!(files[0].len(), HEADER_LEN + b"new state".len());
}

#[test]
fn a_streamed_write_dropped_unfinished_leaves_nothing() {
    let data = data_dir_with_old_checkpoint();
    let store = CheckpointStore::open(data.path()).expect("open");
    let mut writer = store.begin_streamed(NEW_OFFSET, 3).expect("begin");
    writer.append(b"half").expect("append");
    drop(writer);
    assert!(
        temp_files(data.path()).is_empty(),
        "the temp file is removed"
    );
    assert_eq!(
        restart_and_load(data.path()),
        (OLD_OFFSET, b"old state".to_vec())
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
    assert!(write_new_crashing_at(data.path(), CrashPoint::BeforeRename, How::Streamed).is_err());
    let store = CheckpointStore::open(data.path()).expect("reopen");
    store
        .write(meta(NEW_OFFSET, 20), b"retried")
        .expect("write");
    assert_eq!(
        restart_and_load(data.path()),
        (NEW_OFFSET, b"retried".to_vec())
    );
}
