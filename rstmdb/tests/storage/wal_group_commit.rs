//! Group commit and the fsync policies: how many fdatasyncs, and when durability is reported.

use rstmdb::wal::fault::FaultStorage;
use rstmdb::wal::segment::position_of;
use rstmdb::wal::{FsyncPolicy, NewRecord, Storage, SyncBy, WRITEBACK_BYTES, Wal, WalConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn open(storage: &FaultStorage, fsync_policy: FsyncPolicy) -> Wal {
    let storage: Arc<dyn Storage> = Arc::new(storage.clone());
    let cfg = WalConfig {
        fsync_policy,
        ..WalConfig::default()
    };
    Wal::open(storage, cfg, None, &mut |_| Ok(()))
        .expect("open")
        .0
}

const PAYLOAD: [u8; 160] = [b'p'; 160];

fn rec() -> NewRecord<'static> {
    NewRecord {
        kind: 2,
        timestamp_ms: 0,
        payload: &PAYLOAD,
    }
}

fn wait_until(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    done()
}

#[test]
fn a_lone_writer_pays_one_fdatasync_per_write() {
    let storage = FaultStorage::new();
    let wal = open(&storage, FsyncPolicy::EveryWrite);
    for _ in 0..20 {
        let a = wal.append(&[rec()]).expect("append");
        wal.wait_durable_blocking(a.end_offset).expect("durable");
    }
    let stats = wal.stats();
    assert_eq!(stats.io.fsyncs, 20);
    assert_eq!(stats.records_per_fsync, 1.0);
}

/// Appends a record the caller then syncs itself (the sequencer's inline path).
fn append_and_sync_here(wal: &Wal) -> u64 {
    let appended = wal
        .append_mixed(&[rec()], &[None], SyncBy::Caller)
        .expect("append");
    wal.sync_here();
    appended.end_offset
}

#[test]
fn an_appender_that_syncs_itself_is_durable_when_the_call_returns() {
    let storage = FaultStorage::new();
    let wal = open(&storage, FsyncPolicy::EveryWrite);
    for _ in 0..20 {
        let end = append_and_sync_here(&wal);
        assert_eq!(wal.stats().durable_offset, end, "durable without any wait");
        assert_eq!(
            storage.durable_len("0000000000000001.wal"),
            position_of(end)
        );
    }
    assert_eq!(wal.stats().io.fsyncs, 20);

    // Under the other policies it changes nothing: a write is committed once written.
    let storage = FaultStorage::new();
    let wal = open(&storage, FsyncPolicy::Never);
    append_and_sync_here(&wal);
    assert_eq!(wal.stats().io.fsyncs, 0);
}

#[test]
fn appenders_that_sync_themselves_share_fdatasyncs_with_the_sync_thread() {
    let storage = FaultStorage::new();
    storage.set_sync_delay(Duration::from_millis(2));
    let wal = Arc::new(open(&storage, FsyncPolicy::EveryWrite));
    let threads: Vec<_> = (0..32)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for _ in 0..20 {
                    // Half sync themselves when no fdatasync runs; the others leave it to the
                    // sync thread. Every one of them must become durable either way.
                    let end = if t % 2 == 0 {
                        append_and_sync_here(&wal)
                    } else {
                        wal.append(&[rec()]).expect("append").end_offset
                    };
                    wal.wait_durable_blocking(end).expect("durable");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("appender thread");
    }
    let stats = wal.stats();
    assert_eq!(stats.io.writes, 640);
    assert!(
        stats.io.fsyncs * 4 < 640,
        "{} fsyncs for 640 records",
        stats.io.fsyncs
    );
    assert_eq!(stats.durable_offset, stats.latest_offset);
}

#[test]
fn shutdown_waits_for_an_appenders_own_fdatasync_and_syncs_what_follows() {
    for write_after in [false, true] {
        let storage = FaultStorage::new();
        storage.set_sync_delay(Duration::from_millis(200));
        let wal = Arc::new(open(&storage, FsyncPolicy::EveryWrite));
        let syncing = {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || append_and_sync_here(&wal))
        };
        assert!(wait_until(Duration::from_secs(5), || wal.stats().io.writes == 1));
        // Written while the appender's fdatasync runs: the sync thread must follow it up.
        let later = write_after.then(|| wal.append(&[rec()]).expect("append").end_offset);
        // Returns only once the sync thread has stopped, which it may do only after the
        // appender's fdatasync.
        wal.shutdown().expect("shutdown");
        let first = syncing.join().expect("appender");
        let last = later.unwrap_or(first);
        assert_eq!(
            wal.stats().durable_offset,
            last,
            "write after: {write_after}"
        );
        assert_eq!(
            storage.durable_len("0000000000000001.wal"),
            position_of(last)
        );
    }
}

#[test]
fn concurrent_appenders_share_fdatasyncs() {
    let storage = FaultStorage::new();
    storage.set_sync_delay(Duration::from_millis(2));
    let wal = Arc::new(open(&storage, FsyncPolicy::EveryWrite));
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let a = wal.append(&[rec()]).expect("append");
                    wal.wait_durable_blocking(a.end_offset).expect("durable");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("appender thread");
    }
    let stats = wal.stats();
    assert_eq!(stats.io.writes, 1280);
    assert!(
        stats.io.fsyncs * 8 < 1280,
        "{} fsyncs for 1280 records",
        stats.io.fsyncs
    );
    assert!(stats.records_per_fsync > 8.0, "{}", stats.records_per_fsync);
    assert_eq!(stats.durable_offset, stats.latest_offset);
}

#[test]
fn durable_offset_is_published_only_after_the_fdatasync_returned() {
    let storage = FaultStorage::new();
    storage.set_sync_delay(Duration::from_millis(1));
    let wal = Arc::new(open(&storage, FsyncPolicy::EveryWrite));
    let mut watch = wal.durable_watch();
    let observer_storage = storage.clone();
    let observer = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let mut checked = 0;
            while watch.changed().await.is_ok() {
                let durable = watch.borrow_and_update().durable_offset;
                let synced = observer_storage.durable_len("0000000000000001.wal");
                assert!(
                    synced >= position_of(durable),
                    "durable {durable} but only {synced} synced"
                );
                checked += 1;
                if watch.borrow().failure.is_some() {
                    break;
                }
            }
            checked
        })
    });
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for _ in 0..30 {
                    let a = wal.append(&[rec()]).expect("append");
                    wal.wait_durable_blocking(a.end_offset).expect("durable");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    wal.shutdown().expect("shutdown");
    drop(wal);
    let checked = observer.join().expect("observer");
    assert!(checked > 0, "no notification was observed");
}

#[test]
fn wait_durable_works_from_async_code() {
    let storage = FaultStorage::new();
    let wal = open(&storage, FsyncPolicy::EveryWrite);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let a = wal.append(&[rec()]).expect("append");
    runtime
        .block_on(wal.wait_committed(a.end_offset))
        .expect("committed");
    assert!(wal.durable_offset() >= a.end_offset);
}

#[test]
fn every_n_syncs_after_n_records() {
    let storage = FaultStorage::new();
    let wal = open(&storage, FsyncPolicy::EveryN(10));
    for _ in 0..9 {
        wal.append(&[rec()]).expect("append");
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(wal.stats().io.fsyncs, 0, "synced before the 10th record");
    let a = wal.append(&[rec()]).expect("append");
    assert!(wait_until(Duration::from_secs(5), || wal.durable_offset()
        >= a.end_offset));
    assert_eq!(wal.stats().io.fsyncs, 1);
}

#[test]
fn every_ms_timer_syncs_without_further_appends() {
    let storage = FaultStorage::new();
    let wal = open(&storage, FsyncPolicy::EveryMs(20));
    let a = wal.append(&[rec()]).expect("append");
    assert!(wait_until(Duration::from_secs(5), || wal.durable_offset()
        >= a.end_offset));
    assert_eq!(storage.durable_len("0000000000000001.wal"), 200);
}

#[test]
fn never_syncs_small_writes_only_on_request_or_shutdown_but_commits_on_write() {
    let storage = FaultStorage::new();
    let wal = open(&storage, FsyncPolicy::Never);
    let a = wal.append(&[rec()]).expect("append");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime
        .block_on(wal.wait_committed(a.end_offset))
        .expect("committed at write");
    assert_eq!(wal.committed_offset(), a.end_offset);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(storage.durable_len("0000000000000001.wal"), 0);
    let b = wal.append(&[rec()]).expect("append");
    wal.shutdown().expect("shutdown syncs");
    assert_eq!(storage.durable_len("0000000000000001.wal"), 400);
    assert_eq!(wal.durable_offset(), b.end_offset);
}

/// A rotation syncs the whole segment while every writer waits: the sync thread keeps what is
/// left for it small by syncing each `WRITEBACK_BYTES` as they accumulate, whatever the policy.
#[test]
fn bytes_past_the_writeback_mark_are_synced_in_the_background_under_lax_policies() {
    const RECORD_BYTES: usize = 64 * 1024;
    let payload = vec![b'w'; RECORD_BYTES - 40];
    let record = NewRecord {
        kind: 2,
        timestamp_ms: 0,
        payload: &payload,
    };
    let below_the_mark = WRITEBACK_BYTES as usize / RECORD_BYTES - 1;
    for policy in [FsyncPolicy::Never, FsyncPolicy::EveryN(1_000_000)] {
        let storage = FaultStorage::new();
        let wal = open(&storage, policy);
        for _ in 0..below_the_mark {
            wal.append(&[record]).expect("append");
        }
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(wal.stats().io.fsyncs, 0, "{policy}: synced below the mark");
        let last = wal.append(&[record]).expect("append");
        assert!(
            wait_until(Duration::from_secs(5), || wal.durable_offset()
                >= last.end_offset),
            "{policy}: {} bytes written, none synced",
            WRITEBACK_BYTES
        );
        assert_eq!(wal.stats().io.fsyncs, 1, "{policy}");
        assert_eq!(
            storage.durable_len("0000000000000001.wal"),
            WRITEBACK_BYTES,
            "{policy}"
        );
    }
}
