//! Arbitrary bytes as one or two WAL segment files in the in-memory `FaultStorage`, then
//! `Wal::open` (recovery, spec §6.1).
//!
//! Input: `[flags][split u16][segment size][checkpoint: segment, position u16, last seq]
//! [segment bytes]`. Flags: bit 0 recomputes the records' CRCs, bit 1 splits the bytes into two
//! segments, bit 2 passes a checkpoint position, bit 3 leaves a gap between the two segment
//! ids, bit 4 starts at segment 2 instead of 1.
//!
//! Checks: `Wal::open` returns Ok or a typed error, never panics; what it replays has strictly
//! consecutive sequences and growing offsets; after recovery an append succeeds, and recovering
//! again replays exactly the same records plus the new one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rstmdb::wal::fault::FaultStorage;
use rstmdb::wal::segment::{offset_of, segment_file_name};
use rstmdb::wal::{CheckpointPosition, FsyncPolicy, NewRecord, Storage, Wal, WalConfig};
use rstmdb_fuzz::Input;
use rstmdb_fuzz::fixup::fix_wal_segment;
use std::sync::Arc;

/// What one recovery replayed: (offset, sequence, payload).
type Replayed = Vec<(u64, u64, Vec<u8>)>;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.byte();
    let split = usize::from(input.u16());
    let config = WalConfig {
        segment_size_bytes: 64 + u64::from(input.byte()) * 16,
        fsync_policy: FsyncPolicy::EveryWrite,
    };
    let checkpoint_segment = u64::from(input.byte() % 4) + 1;
    let checkpoint_position = u64::from(input.u16());
    let checkpoint_sequence = u64::from(input.byte());
    let bytes = input.rest();

    let first_id = if flags & 16 != 0 { 2 } else { 1 };
    let second_id = first_id + if flags & 8 != 0 { 2 } else { 1 };
    let (first, second) = if flags & 2 != 0 {
        let (a, b) = bytes.split_at(split.min(bytes.len()));
        (a, Some(b))
    } else {
        (bytes, None)
    };
    let storage = FaultStorage::new();
    for (id, segment) in [(first_id, Some(first)), (second_id, second)] {
        let Some(segment) = segment else { continue };
        let mut segment = segment.to_vec();
        if flags & 1 != 0 {
            fix_wal_segment(&mut segment);
        }
        storage.put_synced(&segment_file_name(id), segment);
    }
    let checkpoint = (flags & 4 != 0).then(|| CheckpointPosition {
        checkpoint_offset: offset_of(checkpoint_segment, checkpoint_position),
        last_sequence: checkpoint_sequence,
    });

    let Ok((wal, before)) = recover(&storage, config, checkpoint) else {
        return;
    };
    let appended = wal
        .append(&[NewRecord {
            kind: 1,
            timestamp_ms: 0,
            payload: b"{}",
        }])
        .unwrap_or_else(|e| panic!("append after a successful recovery failed: {e:?}"));
    wal.wait_durable_blocking(appended.end_offset)
        .unwrap_or_else(|e| panic!("sync after a successful recovery failed: {e:?}"));
    drop(wal);

    let (_wal, after) = recover(&storage, config, checkpoint)
        .unwrap_or_else(|e| panic!("a WAL recovered once does not recover again: {e:?}"));
    assert_eq!(
        after.len(),
        before.len() + 1,
        "second recovery replayed other records"
    );
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "second recovery changed old records"
    );
    assert_eq!(after[before.len()].2, b"{}");
});

fn recover(
    storage: &FaultStorage,
    config: WalConfig,
    checkpoint: Option<CheckpointPosition>,
) -> Result<(Wal, Replayed), rstmdb::wal::WalError> {
    let mut replayed: Replayed = Vec::new();
    let dyn_storage: Arc<dyn Storage> = Arc::new(storage.clone());
    let (wal, report) = Wal::open(dyn_storage, config, checkpoint, &mut |record| {
        replayed.push((
            record.offset,
            record.header.sequence,
            record.payload.to_vec(),
        ));
        Ok(())
    })?;
    assert_eq!(report.records_replayed, replayed.len() as u64);
    for pair in replayed.windows(2) {
        assert!(pair[1].0 > pair[0].0, "replay offsets do not grow");
        assert_eq!(
            pair[1].1,
            pair[0].1 + 1,
            "replay sequences are not consecutive"
        );
    }
    if let (Some(checkpoint), Some(first)) = (checkpoint, replayed.first()) {
        assert!(
            first.0 >= checkpoint.checkpoint_offset,
            "replayed a record the checkpoint covers"
        );
        assert_eq!(
            first.1,
            checkpoint.last_sequence + 1,
            "replay does not continue the checkpoint"
        );
    }
    Ok((wal, replayed))
}
