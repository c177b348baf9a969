//! Running out of file descriptors (EMFILE) while the WAL rotates must fail that append with
//! a retryable error and nothing more (issue 14, item 6): the next append, once descriptors are
//! back, succeeds and is durable, and every acknowledged record is recovered.

use rstmdb::wal::fault::FaultStorage;
use rstmdb::wal::{FsyncPolicy, NewRecord, SegmentFile, Storage, Wal, WalConfig, WalError};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The fault storage, except that while `exhausted` is set, creating a file or opening the
/// directory fails the way the kernel does when the process has no descriptor left.
#[derive(Debug)]
struct OutOfDescriptors {
    inner: FaultStorage,
    exhausted: AtomicBool,
    /// Only the directory open fails (the segment file itself was created).
    dir_only: bool,
}

impl OutOfDescriptors {
    fn check(&self) -> io::Result<()> {
        if self.exhausted.load(Ordering::SeqCst) {
            const EMFILE: i32 = 24;
            return Err(io::Error::from_raw_os_error(EMFILE));
        }
        Ok(())
    }
}

impl Storage for OutOfDescriptors {
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }
    fn create(&self, name: &str) -> io::Result<Arc<dyn SegmentFile>> {
        if !self.dir_only {
            self.check()?;
        }
        self.inner.create(name)
    }
    fn open(&self, name: &str) -> io::Result<Arc<dyn SegmentFile>> {
        self.inner.open(name)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.check()?;
        self.inner.sync_dir()
    }
    fn sync_parent_dir(&self) -> io::Result<()> {
        self.check()?;
        self.inner.sync_parent_dir()
    }
}

fn record(payload: &[u8]) -> [NewRecord<'_>; 1] {
    [NewRecord {
        kind: 3,
        timestamp_ms: 1,
        payload,
    }]
}

fn recovered(storage: Arc<dyn Storage>, config: WalConfig) -> Vec<Vec<u8>> {
    let mut seen = Vec::new();
    let (wal, _) = Wal::open(storage, config, None, &mut |r| {
        seen.push(r.payload.to_vec());
        Ok(())
    })
    .expect("recovers");
    drop(wal);
    seen
}

fn run(dir_only: bool) {
    let storage = Arc::new(OutOfDescriptors {
        inner: FaultStorage::new(),
        exhausted: AtomicBool::new(false),
        dir_only,
    });
    let config = WalConfig {
        segment_size_bytes: 700,
        fsync_policy: FsyncPolicy::EveryWrite,
    };
    let dyn_storage: Arc<dyn Storage> = storage.clone();
    let (wal, _) = Wal::open(dyn_storage.clone(), config, None, &mut |_| Ok(())).expect("opens");
    let payload = [7u8; 200];
    let mut acknowledged = Vec::new();
    // Fill the first segment.
    for n in 0..2u8 {
        let appended = wal.append(&record(&[n; 200])).expect("append");
        wal.wait_durable_blocking(appended.end_offset)
            .expect("durable");
        acknowledged.push(vec![n; 200]);
    }
    storage.exhausted.store(true, Ordering::SeqCst);
    let mut refused = 0;
    for _ in 0..3 {
        match wal.append(&record(&payload)) {
            Err(WalError::Io { .. }) => refused += 1,
            Err(other) => panic!("out of descriptors must be a plain I/O error, got {other:?}"),
            Ok(appended) => {
                panic!("no segment could be made durable, yet an append passed: {appended:?}")
            }
        }
    }
    assert_eq!(refused, 3);
    storage.exhausted.store(false, Ordering::SeqCst);
    for n in 10..14u8 {
        let appended = wal
            .append(&record(&[n; 200]))
            .expect("descriptors are back: the WAL was not stopped");
        wal.wait_durable_blocking(appended.end_offset)
            .expect("durable");
        acknowledged.push(vec![n; 200]);
    }
    drop(wal);
    assert_eq!(recovered(dyn_storage, config), acknowledged);
}

#[test]
fn emfile_creating_a_segment_fails_the_append_and_never_stops_the_wal() {
    run(false);
}

#[test]
fn emfile_opening_the_directory_after_creating_a_segment_never_stops_the_wal() {
    run(true);
}
