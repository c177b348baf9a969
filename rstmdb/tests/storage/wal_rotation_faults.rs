//! A rotation that cannot complete (issue 15, items 1 and 4): a failed segment create leaves no
//! durable mark above the records that stayed, and the last segment id an offset can address is
//! never rotated past.

use super::wal_support::{rec, recover_payloads};
use rstmdb::wal::fault::{CrashPlan, FaultStorage};
use rstmdb::wal::segment::{MAX_SEGMENT_ID, segment_file_name};
use rstmdb::wal::{FsyncPolicy, Storage, Wal, WalConfig, WalError};
use std::sync::Arc;

/// Three 240-byte records fill a segment; the fourth rotates.
const SEGMENT_BYTES: u64 = 750;
const PAYLOAD_BYTES: usize = 200;

fn config() -> WalConfig {
    WalConfig {
        segment_size_bytes: SEGMENT_BYTES,
        fsync_policy: FsyncPolicy::EveryWrite,
    }
}

fn open(storage: &FaultStorage) -> (Wal, Vec<Vec<u8>>) {
    recover_payloads(storage, config()).expect("recovery succeeds")
}

fn append_durably(wal: &Wal, payload: &[u8]) {
    let appended = wal.append(&[rec(payload)]).expect("append");
    wal.wait_durable_blocking(appended.end_offset)
        .expect("durable");
}

#[test]
fn a_failed_segment_create_leaves_no_durable_mark_above_the_records_that_stayed() {
    let storage = FaultStorage::new();
    let (wal, _) = open(&storage);
    let mut acknowledged = Vec::new();
    for n in 0..2u8 {
        append_durably(&wal, &[n; PAYLOAD_BYTES]);
        acknowledged.push(vec![n; PAYLOAD_BYTES]);
    }
    // One batch: its first record fills segment 1, its second rotates, and the create of
    // segment 2 fails after the rotation synced segment 1 with the first record in it.
    storage.fail_next_creates(1);
    let (third, fourth) = ([2u8; PAYLOAD_BYTES], [3u8; PAYLOAD_BYTES]);
    let failed = wal.append(&[rec(&third), rec(&fourth)]);
    assert!(
        matches!(failed, Err(WalError::Io { .. })),
        "a failed create fails the append: {failed:?}"
    );
    let stats = wal.stats();
    assert!(
        stats.durable_offset <= stats.latest_offset,
        "WAL_STATS shows durable {} above latest {} after the failed append",
        stats.durable_offset,
        stats.latest_offset
    );

    // The next record lands where the rolled-back one was: it costs an fdatasync of its own.
    let syncs_before = storage.syncs();
    let next = [9u8; PAYLOAD_BYTES];
    append_durably(&wal, &next);
    acknowledged.push(next.to_vec());
    assert!(
        storage.syncs() > syncs_before,
        "the record was acknowledged without an fdatasync covering it"
    );

    let after_power_loss = storage.crash(CrashPlan::default());
    drop(wal);
    let (_, recovered) = open(&after_power_loss);
    assert_eq!(recovered, acknowledged);
}

#[test]
fn the_last_addressable_segment_id_is_never_rotated_past() {
    let storage = FaultStorage::new();
    // A WAL whose newest segment is the one before the last id an offset can address.
    storage.put_synced(&segment_file_name(MAX_SEGMENT_ID - 1), Vec::new());
    let (wal, _) = open(&storage);
    let mut acknowledged = Vec::new();
    // Segment MAX - 1, then a rotation into MAX, which takes three records.
    for n in 0..6u8 {
        append_durably(&wal, &[n; PAYLOAD_BYTES]);
        acknowledged.push(vec![n; PAYLOAD_BYTES]);
    }
    assert_eq!(wal.latest_offset() >> 40, MAX_SEGMENT_ID);
    let last_offset = wal.latest_offset();

    let refused = wal.append(&[rec(&[7u8; PAYLOAD_BYTES])]);
    let err = refused.expect_err("rotating past the last segment id must be refused");
    assert!(
        matches!(err, WalError::SegmentIdsExhausted { .. }),
        "got {err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&MAX_SEGMENT_ID.to_string()), "{message}");
    assert!(
        err.hint().is_some_and(|h| h.contains("new data directory")),
        "the error names the remedy: {:?}",
        err.hint()
    );
    // Permanent: a small record that would fit nowhere else is refused too, and nothing was
    // created past the last id.
    let again = wal.append(&[rec(b"x")]).expect_err("the WAL stays stopped");
    assert!(again.to_string().contains("segment id"), "{again}");
    assert!(
        !storage
            .list()
            .expect("list")
            .contains(&segment_file_name(MAX_SEGMENT_ID + 1))
    );
    let stats = wal.stats();
    assert_eq!(stats.latest_offset, last_offset, "offsets never went back");
    assert!(stats.durable_offset <= stats.latest_offset);

    drop(wal);
    let (_, recovered) = open(&storage.crash(CrashPlan::default()));
    assert_eq!(recovered, acknowledged);
}

#[test]
fn a_segment_named_past_the_last_addressable_id_is_refused_at_start_up() {
    let storage = FaultStorage::new();
    storage.put_synced(&segment_file_name(MAX_SEGMENT_ID + 1), Vec::new());
    let dyn_storage: Arc<dyn Storage> = Arc::new(storage.clone());
    let err = Wal::open(dyn_storage, config(), None, &mut |_| Ok(()))
        .expect_err("an id whose offsets would wrap is refused");
    assert!(
        err.to_string()
            .contains(&segment_file_name(MAX_SEGMENT_ID + 1)),
        "{err}"
    );
}

#[test]
fn records_written_before_the_refused_rotation_are_still_made_durable() {
    let storage = FaultStorage::new();
    storage.put_synced(&segment_file_name(MAX_SEGMENT_ID), Vec::new());
    // Only rotations sync: the records below are written, not durable, when the refusal comes.
    let cfg = WalConfig {
        fsync_policy: FsyncPolicy::Never,
        ..config()
    };
    let dyn_storage: Arc<dyn Storage> = Arc::new(storage.clone());
    let (wal, _) = Wal::open(dyn_storage, cfg, None, &mut |_| Ok(())).expect("opens");
    let mut written = Vec::new();
    let mut last_end = 0;
    for n in 0..3u8 {
        last_end = wal
            .append(&[rec(&[n; PAYLOAD_BYTES])])
            .expect("append")
            .end_offset;
        written.push(vec![n; PAYLOAD_BYTES]);
    }
    let err = wal
        .append(&[rec(&[9u8; PAYLOAD_BYTES])])
        .expect_err("no segment id left");
    assert!(
        matches!(err, WalError::SegmentIdsExhausted { .. }),
        "{err:?}"
    );
    wal.wait_durable_blocking(last_end)
        .expect("the refused rotation still synced what was written before it");
    drop(wal);
    let (_, recovered) = open(&storage.crash(CrashPlan::default()));
    assert_eq!(recovered, written);
}
