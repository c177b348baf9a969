//! The durable files of `raft/` (cluster mode): a saved value survives a crash at every step of
//! the next save as either the old or the new value, and a file that is not a value is refused
//! with its path.

use rstmdb::checkpoint::{CrashPoint, FaultFs};
use rstmdb::cluster::{RaftFile, RaftFiles, RaftFilesError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Vote {
    term: u64,
    node_id: u64,
    committed: bool,
}

const OLD: Vote = Vote {
    term: 3,
    node_id: 1,
    committed: true,
};
const NEW: Vote = Vote {
    term: 4,
    node_id: 2,
    committed: false,
};

#[test]
fn a_saved_value_is_read_back_and_a_missing_one_is_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = RaftFiles::open(dir.path()).expect("open");
    assert_eq!(files.load::<Vote>(RaftFile::Vote).expect("load"), None);
    files.save(RaftFile::Vote, &OLD).expect("save");
    files.save(RaftFile::Vote, &NEW).expect("save again");
    let reopened = RaftFiles::open(dir.path()).expect("reopen");
    assert_eq!(reopened.load(RaftFile::Vote).expect("load"), Some(NEW));
    assert_eq!(reopened.load::<Vote>(RaftFile::State).expect("load"), None);
}

#[test]
fn a_crash_during_a_save_leaves_the_old_value_or_the_new_one() {
    let cases = [
        (CrashPoint::MidTempWrite { bytes_written: 5 }, OLD),
        (CrashPoint::BeforeRename, OLD),
        (
            CrashPoint::BeforeDirSync {
                rename_survives: false,
            },
            OLD,
        ),
        (
            CrashPoint::BeforeDirSync {
                rename_survives: true,
            },
            NEW,
        ),
    ];
    for (point, survivor) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        RaftFiles::open(dir.path())
            .expect("open")
            .save(RaftFile::Vote, &OLD)
            .expect("save");
        let fault_fs = Arc::new(FaultFs::crashing_at(point));
        let crashing = RaftFiles::open_with(fault_fs.clone(), dir.path()).expect("open");
        let _ = crashing.save(RaftFile::Vote, &NEW);
        assert!(fault_fs.has_crashed(), "{point:?}");

        let reopened = RaftFiles::open(dir.path()).expect("reopen after the crash");
        assert_eq!(
            reopened.load(RaftFile::Vote).expect("load"),
            Some(survivor),
            "{point:?}"
        );
        // The temp file the crash may have left is gone, and saving works again.
        reopened
            .save(RaftFile::Vote, &NEW)
            .expect("save after the crash");
        let names: Vec<_> = std::fs::read_dir(reopened.dir())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["vote"], "{point:?}");
    }
}

#[test]
fn a_file_that_holds_no_value_is_refused_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = RaftFiles::open(dir.path()).expect("open");
    let path = files.dir().join("vote");
    std::fs::write(&path, b"{\"term\": 3, \"node_").expect("write");
    let err = files.load::<Vote>(RaftFile::Vote).expect_err("refused");
    assert!(matches!(err, RaftFilesError::Invalid { .. }), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );

    std::fs::write(&path, vec![b' '; 70_000]).expect("write");
    let err = files.load::<Vote>(RaftFile::Vote).expect_err("refused");
    assert!(
        matches!(err, RaftFilesError::TooLarge { len: 70_000, .. }),
        "{err}"
    );
}
