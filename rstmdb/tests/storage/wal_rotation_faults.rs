//! A rotation that cannot complete (issue 15, item 1): a failed segment create leaves no durable
//! mark above the records that stayed.

use rstmdb::wal::fault::{CrashPlan, FaultStorage};
use rstmdb::wal::{FsyncPolicy, NewRecord, Storage, Wal, WalConfig, WalError};
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

fn rec(payload: &[u8]) -> NewRecord<'_> {
    NewRecord {
        kind: 3,
        timestamp_ms: 1,
        payload,
    }
}

fn open(storage: &FaultStorage) -> (Wal, Vec<Vec<u8>>) {
    let mut seen = Vec::new();
    let dyn_storage: Arc<dyn Storage> = Arc::new(storage.clone());
    let (wal, _) = Wal::open(dyn_storage, config(), None, &mut |r| {
        seen.push(r.payload.to_vec());
        Ok(())
    })
    .expect("recovery succeeds");
    (wal, seen)
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
