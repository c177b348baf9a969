//! A power loss while unsynced writes are in the page cache may persist a later page and not an
//! earlier one (issue 15, item 3): the tail then holds a hole followed by complete records that
//! were never acknowledged. That is a torn tail, cut at the hole; a hole followed by a record
//! written after the hole was already durable stays corruption.

use super::wal_support::{rec, recover_payloads};
use rstmdb::wal::fault::{CrashPlan, FaultStorage, PAGE_BYTES};
use rstmdb::wal::segment::segment_file_name;
use rstmdb::wal::{FsyncPolicy, WalConfig, WalError};

fn config(fsync_policy: FsyncPolicy) -> WalConfig {
    WalConfig {
        segment_size_bytes: 1 << 20,
        fsync_policy,
    }
}

#[test]
fn a_lost_page_followed_by_a_persisted_later_write_is_a_torn_tail() {
    let storage = FaultStorage::new();
    let cfg = config(FsyncPolicy::Never);
    let (wal, _) = recover_payloads(&storage, cfg).expect("fresh WAL");
    let acknowledged = vec![1u8; 200];
    wal.append(&[rec(&acknowledged)]).expect("append");
    wal.sync().expect("sync");
    // Two unsynced writes: the first runs from page 0 into page 1, the second lies in page 1.
    let long = vec![2u8; PAGE_BYTES as usize];
    wal.append(&[rec(&long)]).expect("append");
    wal.append(&[rec(&[3u8; 100])]).expect("append");
    let name = segment_file_name(1);
    assert_eq!(storage.unsynced_pages()[&name], vec![0, 1]);

    // The disk wrote page 1 back but not page 0: a hole, then the second write whole.
    let crashed = storage.crash_keeping_pages(&|_, page| page == 1);
    drop(wal);
    let (wal, seen) =
        recover_payloads(&crashed, cfg).expect("a hole in unsynced writes is a torn tail");
    assert_eq!(seen, vec![acknowledged]);
    let next = wal.append(&[rec(b"next")]).expect("append after the cut");
    assert_eq!(next.first_sequence, 2);
}

#[test]
fn a_hole_followed_by_a_record_written_after_it_was_durable_is_corruption() {
    let storage = FaultStorage::new();
    let cfg = config(FsyncPolicy::EveryWrite);
    let (wal, _) = recover_payloads(&storage, cfg).expect("fresh WAL");
    for n in 1..=3u8 {
        let appended = wal.append(&[rec(&[n; 200])]).expect("append");
        wal.wait_durable_blocking(appended.end_offset)
            .expect("durable");
    }
    drop(wal);
    // Record 2 was synced before record 3 was written: zeros there are damage, not a power loss.
    let name = segment_file_name(1);
    let mut bytes = storage.contents(&name).expect("segment");
    bytes[240..480].fill(0);
    storage.put_synced(&name, bytes);
    let err = recover_payloads(&storage.crash(CrashPlan::default()), cfg).expect_err("corruption");
    assert!(matches!(err, WalError::Corrupt(_)), "{err:?}");
}
