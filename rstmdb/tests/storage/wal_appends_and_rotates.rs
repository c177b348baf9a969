//! The writer: offsets, rotation, sequences across restarts, reading back, stats, compaction
//! and failure handling.

use rstmdb::wal::fault::FaultStorage;
use rstmdb::wal::{
    FsyncPolicy, MAX_RECORD_PAYLOAD_BYTES, NewRecord, Storage, Wal, WalConfig, WalError,
};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

const SEG: u64 = 1 << 40;

fn config(segment_size_bytes: u64, fsync_policy: FsyncPolicy) -> WalConfig {
    WalConfig {
        segment_size_bytes,
        fsync_policy,
    }
}

fn open(storage: &FaultStorage, cfg: WalConfig) -> (Wal, Vec<(u64, u64, Vec<u8>)>) {
    let mut seen = Vec::new();
    let storage: Arc<dyn Storage> = Arc::new(storage.clone());
    let (wal, _) = Wal::open(storage, cfg, None, &mut |r| {
        seen.push((r.offset, r.header.sequence, r.payload.to_vec()));
        Ok(())
    })
    .expect("recovery succeeds");
    (wal, seen)
}

fn rec(payload: &[u8]) -> NewRecord<'_> {
    NewRecord {
        kind: 1,
        timestamp_ms: 1_767_225_600_000,
        payload,
    }
}

#[test]
fn fresh_database_has_one_empty_segment_at_two_to_the_forty() {
    let storage = FaultStorage::new();
    let (wal, seen) = open(&storage, WalConfig::default());
    assert!(seen.is_empty());
    let stats = wal.stats();
    assert_eq!(stats.latest_offset, SEG);
    assert_eq!(stats.durable_offset, SEG);
    assert_eq!(
        (
            stats.entry_count,
            stats.segment_count,
            stats.total_size_bytes
        ),
        (0, 1, 0)
    );
    assert_eq!(stats.oldest_offset, 0);
    assert_eq!(stats.fsync_policy, "every_write");
    assert_eq!(
        storage.list().expect("list"),
        vec!["0000000000000001.wal".to_owned()]
    );
}

#[test]
fn records_rotate_to_a_new_segment_at_byte_zero_when_they_would_pass_the_limit() {
    let storage = FaultStorage::new();
    // 40-byte header + 60-byte payload = 100 bytes per record; 250 bytes per segment.
    let (wal, _) = open(&storage, config(250, FsyncPolicy::EveryWrite));
    let payload = [b'x'; 60];
    let mut offsets = Vec::new();
    for _ in 0..5 {
        offsets.extend(wal.append(&[rec(&payload)]).expect("append").offsets);
    }
    assert_eq!(
        offsets,
        vec![SEG, SEG + 100, 2 * SEG, 2 * SEG + 100, 3 * SEG]
    );
    assert_eq!(wal.latest_offset(), 3 * SEG + 100);
    let stats = wal.stats();
    assert_eq!(
        (
            stats.segment_count,
            stats.total_size_bytes,
            stats.entry_count
        ),
        (3, 500, 5)
    );
}

#[test]
fn a_record_larger_than_the_segment_limit_sits_alone_in_its_segment() {
    let storage = FaultStorage::new();
    let (wal, _) = open(&storage, config(100, FsyncPolicy::EveryWrite));
    let big = [b'b'; 500];
    let a = wal
        .append(&[rec(b"small"), rec(&big), rec(b"after")])
        .expect("append");
    assert_eq!(a.offsets, vec![SEG, 2 * SEG, 3 * SEG]);
    assert_eq!(a.first_sequence, 1);
}

#[test]
fn a_batch_is_one_write_call_and_gets_dense_sequences() {
    let storage = FaultStorage::new();
    let (wal, _) = open(&storage, WalConfig::default());
    let a = wal
        .append(&[rec(b"a"), rec(b"bb"), rec(b"ccc")])
        .expect("append");
    assert_eq!(a.first_sequence, 1);
    assert_eq!(a.offsets, vec![SEG, SEG + 41, SEG + 83]);
    assert_eq!(a.end_offset, SEG + 126);
    let io = wal.stats().io;
    assert_eq!((io.writes, io.write_calls, io.bytes_written), (3, 1, 126));
}

#[test]
fn sequences_and_offsets_continue_after_restart() {
    let storage = FaultStorage::new();
    let (wal, _) = open(&storage, config(300, FsyncPolicy::EveryWrite));
    for i in 0..7u8 {
        wal.append(&[rec(&[i; 60])]).expect("append");
    }
    let latest = wal.latest_offset();
    wal.shutdown().expect("shutdown");
    drop(wal);
    let (wal, seen) = open(&storage, config(300, FsyncPolicy::EveryWrite));
    assert_eq!(
        seen.iter().map(|s| s.1).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<_>>()
    );
    assert_eq!(wal.latest_offset(), latest);
    assert_eq!(
        wal.durable_offset(),
        latest,
        "recovery leaves durable == latest"
    );
    let a = wal.append(&[rec(b"next")]).expect("append");
    assert_eq!(a.first_sequence, 8);
    assert_eq!(
        a.offsets[0], latest,
        "appends continue in the newest segment"
    );
}

#[test]
fn reader_returns_committed_records_from_an_offset_across_segments() {
    let storage = FaultStorage::new();
    let (wal, _) = open(&storage, config(250, FsyncPolicy::EveryWrite));
    let mut offsets = Vec::new();
    for i in 0..6u8 {
        let a = wal.append(&[rec(&[i; 60])]).expect("append");
        wal.wait_durable_blocking(a.end_offset).expect("durable");
        offsets.push(a.offsets[0]);
    }
    // from_offset = an offset + 1 means "after this record".
    let read: Vec<_> = wal
        .reader(offsets[1] + 1)
        .map(|r| r.expect("read"))
        .collect();
    assert_eq!(
        read.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        vec![3, 4, 5, 6]
    );
    assert_eq!(read[0].offset, offsets[2]);
    assert_eq!(read[0].payload, vec![2u8; 60]);
    let from_zero: Vec<_> = wal.reader(0).map(|r| r.expect("read")).collect();
    assert_eq!(from_zero.len(), 6);
    assert_eq!(wal.stats().io.reads, 10);
    assert_eq!(wal.stats().io.bytes_read, 1000);
}

#[test]
fn deleting_old_segments_reclaims_their_bytes_and_survives_restart_as_oldest_offset() {
    let storage = FaultStorage::new();
    let cfg = config(250, FsyncPolicy::EveryWrite);
    let (wal, _) = open(&storage, cfg);
    for i in 0..5u8 {
        wal.append(&[rec(&[i; 60])]).expect("append");
    }
    assert_eq!(wal.oldest_offset(), 0);
    let deleted = wal.delete_segments_below(3).expect("delete");
    assert_eq!((deleted.segments, deleted.bytes_reclaimed), (2, 400));
    assert_eq!(wal.oldest_offset(), 3 * SEG);
    assert_eq!(wal.stats().total_size_bytes, 100);
    // The newest segment is never deleted.
    assert_eq!(wal.delete_segments_below(99).expect("delete").segments, 0);
    wal.sync().expect("sync");
    let read: Vec<_> = wal.reader(0).map(|r| r.expect("read").sequence).collect();
    assert_eq!(read, vec![5]);
    drop(wal);
    let checkpoint = rstmdb::wal::CheckpointPosition {
        checkpoint_offset: 3 * SEG,
        last_sequence: 4,
    };
    let storage_dyn: Arc<dyn Storage> = Arc::new(storage.clone());
    let (wal, report) =
        Wal::open(storage_dyn, cfg, Some(checkpoint), &mut |_| Ok(())).expect("open");
    assert_eq!(report.records_replayed, 1);
    assert_eq!(wal.oldest_offset(), 3 * SEG);
    assert_eq!(wal.append(&[rec(b"x")]).expect("append").first_sequence, 6);
}

/// Five 100-byte records, two per 250-byte segment: segments 1 and 2 full, 3 the newest.
fn three_segments(storage: &FaultStorage) -> Wal {
    let (wal, _) = open(storage, config(250, FsyncPolicy::EveryWrite));
    for i in 0..5u8 {
        wal.append(&[rec(&[i; 60])]).expect("append");
    }
    wal.sync().expect("sync");
    wal
}

#[test]
fn appends_go_on_while_compaction_deletes_old_segments() {
    let storage = FaultStorage::new();
    let wal = three_segments(&storage);
    storage.hold_removes();
    std::thread::scope(|scope| {
        let deleting = scope.spawn(|| wal.delete_segments_below(3));
        assert!(
            storage.wait_for_held_remove(Duration::from_secs(30)),
            "the deletion reached its first file"
        );
        // The file system is stuck inside that removal: an append must not wait for it.
        let (appended, append_done) = mpsc::channel();
        let wal = &wal;
        scope.spawn(move || appended.send(wal.append(&[rec(b"during")]).is_ok()));
        let during = append_done.recv_timeout(Duration::from_secs(30));
        storage.release_removes();
        assert_eq!(during, Ok(true), "the append finished during the deletion");
        let deleted = deleting.join().expect("joins").expect("delete");
        assert_eq!((deleted.segments, deleted.bytes_reclaimed), (2, 400));
    });
    assert_eq!(wal.oldest_offset(), 3 * SEG);
    wal.sync().expect("sync");
    let sequences: Vec<u64> = wal.reader(0).map(|r| r.expect("read").sequence).collect();
    assert_eq!(sequences, vec![5, 6]);
}

#[test]
fn a_failed_deletion_keeps_the_segments_it_could_not_remove() {
    let storage = FaultStorage::new();
    let wal = three_segments(&storage);
    storage.fail_next_removes(1);
    let err = wal
        .delete_segments_below(3)
        .expect_err("the first removal fails");
    assert!(matches!(err, WalError::Io { .. }), "{err:?}");
    // Nothing was removed: every segment is still listed and readable from the oldest.
    assert_eq!(wal.oldest_offset(), 0);
    assert_eq!(wal.segments().len(), 3);
    let sequences: Vec<u64> = wal.reader(0).map(|r| r.expect("read").sequence).collect();
    assert_eq!(sequences, vec![1, 2, 3, 4, 5]);
    // A retry deletes them.
    assert_eq!(wal.delete_segments_below(3).expect("retry").segments, 2);
    assert_eq!(wal.oldest_offset(), 3 * SEG);
}

#[test]
fn an_oversized_record_is_refused_and_takes_no_sequence() {
    let storage = FaultStorage::new();
    let (wal, _) = open(&storage, WalConfig::default());
    let big = vec![0u8; MAX_RECORD_PAYLOAD_BYTES + 1];
    let err = wal.append(&[rec(&big)]).unwrap_err();
    assert!(matches!(err, WalError::RecordTooLarge { size, limit }
        if size == MAX_RECORD_PAYLOAD_BYTES + 1 && limit == 16_711_680));
    assert_eq!(wal.append(&[rec(b"ok")]).expect("append").first_sequence, 1);
}

#[test]
fn a_failed_write_leaves_nothing_half_written_and_appends_resume_when_space_returns() {
    let storage = FaultStorage::new();
    let (wal, _) = open(&storage, WalConfig::default());
    wal.append(&[rec(b"first")]).expect("append");
    storage.set_write_budget(Some(30));
    let err = wal
        .append(&[rec(b"second record that does not fit")])
        .unwrap_err();
    assert!(matches!(err, WalError::Io { .. }), "{err}");
    assert_eq!(
        storage
            .contents("0000000000000001.wal")
            .expect("file")
            .len(),
        45
    );
    assert_eq!(wal.latest_offset(), SEG + 45);
    storage.set_write_budget(None);
    let a = wal
        .append(&[rec(b"third")])
        .expect("append after space returned");
    assert_eq!((a.first_sequence, a.offsets[0]), (2, SEG + 45));
    wal.wait_durable_blocking(a.end_offset).expect("durable");
    drop(wal);
    let (_, seen) = open(&storage, WalConfig::default());
    let payloads: Vec<_> = seen.iter().map(|s| s.2.clone()).collect();
    assert_eq!(payloads, vec![b"first".to_vec(), b"third".to_vec()]);
}

#[test]
fn a_failed_unit_spanning_segments_is_rolled_back_entirely() {
    let storage = FaultStorage::new();
    let cfg = config(150, FsyncPolicy::EveryWrite);
    let (wal, _) = open(&storage, cfg);
    wal.append(&[rec(&[1; 60])]).expect("append");
    // The unit's first record fits in segment 1; the second goes to segment 2 and fails there.
    storage.set_write_budget(Some(120));
    let err = wal
        .append_unit(&[rec(&[2; 10]), rec(&[3; 100])])
        .unwrap_err();
    assert!(matches!(err, WalError::Io { .. }), "{err}");
    storage.set_write_budget(None);
    assert_eq!(
        storage
            .contents("0000000000000001.wal")
            .expect("seg 1")
            .len(),
        100
    );
    assert_eq!(
        storage
            .contents("0000000000000002.wal")
            .expect("seg 2")
            .len(),
        0
    );
    let a = wal.append(&[rec(b"next")]).expect("append");
    assert_eq!(a.first_sequence, 2);
    wal.wait_durable_blocking(a.end_offset).expect("durable");
    drop(wal);
    let (_, seen) = open(&storage, cfg);
    assert_eq!(seen.iter().map(|s| s.1).collect::<Vec<_>>(), vec![1, 2]);
}

#[test]
fn an_fsync_failure_reaches_every_waiter_and_stops_the_writer() {
    let storage = FaultStorage::new();
    let (wal, _) = open(&storage, WalConfig::default());
    let ok = wal.append(&[rec(b"before")]).expect("append");
    wal.wait_durable_blocking(ok.end_offset).expect("durable");
    storage.set_fail_syncs(true);
    let a = wal.append(&[rec(b"lost")]).expect("append writes");
    let err = wal.wait_durable_blocking(a.end_offset).unwrap_err();
    assert!(matches!(err, WalError::SyncFailed { .. }), "{err}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let async_err = runtime
        .block_on(wal.wait_durable(a.end_offset))
        .unwrap_err();
    assert!(
        matches!(async_err, WalError::SyncFailed { .. }),
        "{async_err}"
    );
    assert!(matches!(
        wal.append(&[rec(b"after")]),
        Err(WalError::Poisoned { .. })
    ));
    // What was durable before the failure is still reported durable.
    assert!(wal.wait_durable_blocking(ok.end_offset).is_ok());
}

#[test]
fn readers_never_see_records_that_are_not_committed_yet() {
    let storage = FaultStorage::new();
    storage.set_sync_delay(std::time::Duration::from_millis(200));
    let (wal, _) = open(&storage, WalConfig::default());
    let a = wal.append(&[rec(b"pending")]).expect("append");
    assert_eq!(
        wal.reader(0).count(),
        0,
        "visible before its fdatasync returned"
    );
    wal.wait_durable_blocking(a.end_offset).expect("durable");
    assert_eq!(wal.reader(0).count(), 1);
}
