//! Recovery on real files: torn and zero-filled tails are cut, everything else is corruption
//! named by segment, offset and expected sequence; repair then makes the WAL usable again.

use rstmdb::wal::analyze::CheckpointPosition;
use rstmdb::wal::record::{UnitMarker, encode_into};
use rstmdb::wal::stats::IoCounters;
use rstmdb::wal::{DirStorage, RecoveryReport, Storage, Wal, WalConfig, WalError, repair};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SEG: u64 = 1 << 40;
const RECORD_BYTES: u64 = 40 + 60;

fn payload(sequence: u64) -> Vec<u8> {
    format!("{{\"type\":\"apply_event\",\"seq\":{sequence:>31}}}").into_bytes()
}

/// Encodes records `sequences` (with optional unit markers) as one segment file.
fn write_segment(wal_dir: &Path, id: u64, records: &[(u64, Option<UnitMarker>)]) -> PathBuf {
    std::fs::create_dir_all(wal_dir).expect("mkdir");
    let mut bytes = Vec::new();
    for (sequence, unit) in records {
        encode_into(&mut bytes, 1, *sequence, 0, *unit, 0, &payload(*sequence));
    }
    let path = wal_dir.join(format!("{id:016x}.wal"));
    std::fs::write(&path, bytes).expect("write segment");
    path
}

fn plain(sequences: std::ops::RangeInclusive<u64>) -> Vec<(u64, Option<UnitMarker>)> {
    sequences.map(|s| (s, None)).collect()
}

fn storage(wal_dir: &Path) -> Arc<dyn Storage> {
    Arc::new(DirStorage::open(wal_dir).expect("storage"))
}

fn recover_with(
    wal_dir: &Path,
    checkpoint: Option<CheckpointPosition>,
) -> Result<(Wal, RecoveryReport, Vec<u64>), WalError> {
    let mut seen = Vec::new();
    let (wal, report) = Wal::open(
        storage(wal_dir),
        WalConfig::default(),
        checkpoint,
        &mut |r| {
            seen.push(r.header.sequence);
            Ok(())
        },
    )?;
    Ok((wal, report, seen))
}

fn recover(wal_dir: &Path) -> Result<(Wal, RecoveryReport, Vec<u64>), WalError> {
    recover_with(wal_dir, None)
}

fn corruption(
    result: Result<(Wal, RecoveryReport, Vec<u64>), WalError>,
) -> rstmdb::wal::Corruption {
    match result {
        Err(WalError::Corrupt(c)) => c,
        Err(other) => panic!("expected corruption, got {other}"),
        Ok((_, _, seen)) => panic!("expected corruption, recovered {seen:?}"),
    }
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open")
        .write_all(bytes)
        .expect("append");
}

#[test]
fn recovery_truncates_a_torn_tail_and_reports_the_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_segment(dir.path(), 1, &plain(1..=5));
    let full = std::fs::metadata(&path).expect("meta").len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(full - 10)
        .expect("tear");
    let (wal, report, seen) = recover(dir.path()).expect("recovery");
    assert_eq!(seen, vec![1, 2, 3, 4]);
    assert_eq!(report.cuts.len(), 1);
    assert_eq!(report.cuts[0].segment, "0000000000000001.wal");
    assert_eq!(report.cuts[0].bytes_cut, RECORD_BYTES - 10);
    assert_eq!(
        std::fs::metadata(&path).expect("meta").len(),
        4 * RECORD_BYTES
    );
    assert_eq!(
        wal.append(&[rstmdb::wal::NewRecord {
            kind: 1,
            timestamp_ms: 0,
            payload: b"x"
        }])
        .expect("append")
        .first_sequence,
        5
    );
}

#[test]
fn recovery_truncates_a_zero_filled_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_segment(dir.path(), 1, &plain(1..=3));
    append_bytes(&path, &[0u8; 4096]);
    let (wal, report, seen) = recover(dir.path()).expect("recovery");
    assert_eq!(seen, vec![1, 2, 3]);
    assert_eq!(report.cuts[0].bytes_cut, 4096);
    assert_eq!(wal.latest_offset(), SEG + 3 * RECORD_BYTES);
}

#[test]
fn a_last_record_failing_its_crc_is_a_torn_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_segment(dir.path(), 1, &plain(1..=3));
    let mut bytes = std::fs::read(&path).expect("read");
    let last = bytes.len() - 5;
    bytes[last] ^= 0x40;
    std::fs::write(&path, bytes).expect("write");
    let (_, report, seen) = recover(dir.path()).expect("recovery");
    assert_eq!(seen, vec![1, 2]);
    assert_eq!(report.cuts[0].bytes_cut, RECORD_BYTES);
}

#[test]
fn a_bit_flip_in_the_middle_is_corruption_and_repair_loses_only_what_follows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_segment(dir.path(), 1, &plain(1..=6));
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[(2 * RECORD_BYTES + 50) as usize] ^= 0x01; // payload of sequence 3
    std::fs::write(&path, &bytes).expect("write");

    let c = corruption(recover(dir.path()));
    assert_eq!(c.segment, "0000000000000001.wal");
    assert_eq!(c.offset, SEG + 2 * RECORD_BYTES);
    assert_eq!(c.expected_sequence, 3);

    let storage = DirStorage::open(dir.path()).expect("storage");
    let counters = IoCounters::default();
    let plan = repair::plan(&storage, &counters)
        .expect("plan")
        .expect("corruption found");
    repair::apply(&storage, &plan).expect("repair");
    let aside = std::fs::read(dir.path().join("0000000000000001.wal.corrupt")).expect("aside");
    assert_eq!(aside, bytes[(2 * RECORD_BYTES) as usize..].to_vec());

    let (_, report, seen) = recover(dir.path()).expect("recovery after repair");
    assert_eq!(seen, vec![1, 2]);
    assert!(report.cuts.is_empty());
}

#[test]
fn garbage_after_the_last_record_of_an_older_segment_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = write_segment(dir.path(), 1, &plain(1..=2));
    write_segment(dir.path(), 2, &plain(3..=4));
    append_bytes(&first, b"junk");
    let c = corruption(recover(dir.path()));
    assert_eq!(c.segment, "0000000000000001.wal");
    assert_eq!(c.offset, SEG + 2 * RECORD_BYTES);
    assert_eq!(c.expected_sequence, 3);
}

#[test]
fn zeros_after_the_last_record_of_an_older_segment_are_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = write_segment(dir.path(), 1, &plain(1..=2));
    write_segment(dir.path(), 2, &plain(3..=4));
    append_bytes(&first, &[0u8; 512]);
    let (wal, _, seen) = recover(dir.path()).expect("recovery");
    assert_eq!(seen, vec![1, 2, 3, 4]);
    assert_eq!(wal.stats().total_size_bytes, 4 * RECORD_BYTES);
    let read: Vec<u64> = wal.reader(0).map(|r| r.expect("read").sequence).collect();
    assert_eq!(read, vec![1, 2, 3, 4]);
}

#[test]
fn a_missing_segment_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_segment(dir.path(), 1, &plain(1..=2));
    write_segment(dir.path(), 3, &plain(3..=4));
    let c = corruption(recover(dir.path()));
    assert_eq!(c.segment, "0000000000000002.wal");
    assert_eq!(c.offset, 2 * SEG);
    assert_eq!(c.expected_sequence, 3);
}

#[test]
fn a_sequence_gap_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_segment(dir.path(), 1, &[(1, None), (2, None), (4, None)]);
    let c = corruption(recover(dir.path()));
    assert_eq!((c.offset, c.expected_sequence), (SEG + 2 * RECORD_BYTES, 3));
}

#[test]
fn without_a_checkpoint_the_oldest_record_must_be_sequence_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_segment(dir.path(), 1, &plain(5..=6));
    assert_eq!(corruption(recover(dir.path())).expected_sequence, 1);
}

#[test]
fn replay_starts_at_the_checkpoint_offset_and_checks_continuity() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_segment(dir.path(), 1, &plain(1..=5));
    let checkpoint = CheckpointPosition {
        checkpoint_offset: SEG + 3 * RECORD_BYTES,
        last_sequence: 3,
    };
    let (wal, report, seen) = recover_with(dir.path(), Some(checkpoint)).expect("recovery");
    assert_eq!(seen, vec![4, 5]);
    assert_eq!(report.records_replayed, 2);
    drop(wal);
    let wrong = CheckpointPosition {
        last_sequence: 2,
        ..checkpoint
    };
    let c = corruption(recover_with(dir.path(), Some(wrong)));
    assert_eq!((c.offset, c.expected_sequence), (SEG + 3 * RECORD_BYTES, 3));
}

#[test]
fn an_incomplete_unit_followed_by_another_record_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = |index| Some(UnitMarker { index, count: 3 });
    write_segment(
        dir.path(),
        1,
        &[(1, None), (2, unit(0)), (3, unit(1)), (4, None)],
    );
    let c = corruption(recover(dir.path()));
    assert_eq!(c.offset, SEG + 3 * RECORD_BYTES);
}

#[test]
fn an_incomplete_unit_at_the_end_is_cut_and_its_sequences_are_given_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = |index| Some(UnitMarker { index, count: 3 });
    write_segment(dir.path(), 1, &[(1, None), (2, unit(0)), (3, unit(1))]);
    let (wal, report, seen) = recover(dir.path()).expect("recovery");
    assert_eq!(seen, vec![1]);
    assert_eq!(report.cuts[0].bytes_cut, 2 * RECORD_BYTES);
    let next = wal
        .append(&[rstmdb::wal::NewRecord {
            kind: 1,
            timestamp_ms: 0,
            payload: b"x",
        }])
        .expect("append");
    assert_eq!(
        (next.first_sequence, next.offsets[0]),
        (2, SEG + RECORD_BYTES)
    );
}

#[test]
fn a_complete_unit_is_replayed_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = |index| Some(UnitMarker { index, count: 2 });
    write_segment(dir.path(), 1, &[(1, unit(0))]);
    write_segment(dir.path(), 2, &[(2, unit(1)), (3, None)]);
    let (_, report, seen) = recover(dir.path()).expect("recovery");
    assert_eq!(seen, vec![1, 2, 3]);
    assert!(report.cuts.is_empty());
}

#[test]
fn a_flipped_length_in_the_middle_of_the_newest_segment_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_segment(dir.path(), 1, &plain(1..=4));
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[(RECORD_BYTES + 6) as usize] ^= 0x10; // payload_len of sequence 2 now runs past the end
    std::fs::write(&path, &bytes).expect("write");
    let c = corruption(recover(dir.path()));
    assert_eq!((c.offset, c.expected_sequence), (SEG + RECORD_BYTES, 2));
}

#[test]
fn a_wal_that_ends_below_the_checkpoint_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_segment(dir.path(), 1, &plain(1..=3));
    let checkpoint = CheckpointPosition {
        checkpoint_offset: SEG + 5 * RECORD_BYTES,
        last_sequence: 5,
    };
    let c = corruption(recover_with(dir.path(), Some(checkpoint)));
    assert_eq!((c.offset, c.expected_sequence), (SEG + 3 * RECORD_BYTES, 4));
}

#[test]
fn a_checkpoint_at_the_end_of_the_wal_replays_nothing_and_continues_its_sequence() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_segment(dir.path(), 1, &plain(1..=3));
    let checkpoint = CheckpointPosition {
        checkpoint_offset: SEG + 3 * RECORD_BYTES,
        last_sequence: 3,
    };
    let (wal, report, seen) = recover_with(dir.path(), Some(checkpoint)).expect("recovery");
    assert!(seen.is_empty());
    assert_eq!(report.records_replayed, 0);
    assert_eq!(wal.last_sequence(), 3);
}
