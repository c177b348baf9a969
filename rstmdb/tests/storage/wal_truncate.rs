//! Cutting the tail of a running WAL (cluster mode: Raft replaces a follower's conflicting
//! uncommitted entries): the next record takes the removed one's offset and sequence, the cut
//! survives a crash at every step as a prefix of the records, and an fdatasync that was running
//! during the cut does not make later records look durable.

use super::wal_support::recover_payloads;
use rstmdb::wal::fault::{CrashPlan, FaultStorage};
use rstmdb::wal::{CutTail, FsyncPolicy, NewRecord, Storage, Wal, WalConfig, WalError};
use std::time::Duration;

fn config(segment_size_bytes: u64, fsync_policy: FsyncPolicy) -> WalConfig {
    WalConfig {
        segment_size_bytes,
        fsync_policy,
    }
}

fn rec(payload: &[u8]) -> NewRecord<'_> {
    NewRecord {
        kind: 6,
        timestamp_ms: 1,
        payload,
    }
}

/// Appends `payloads` one record per append; returns each record's (offset, sequence).
fn append_each(wal: &Wal, payloads: &[&[u8]]) -> Vec<(u64, u64)> {
    payloads
        .iter()
        .map(|payload| {
            let appended = wal.append(&[rec(payload)]).expect("append");
            (appended.offsets[0], appended.first_sequence)
        })
        .collect()
}

fn payloads(seen: &[Vec<u8>]) -> Vec<&[u8]> {
    seen.iter().map(Vec::as_slice).collect()
}

#[test]
fn the_next_record_takes_the_removed_records_offset_and_sequence() {
    let storage = FaultStorage::new();
    let (wal, _) = recover_payloads(&storage, WalConfig::default()).expect("open");
    let placed = append_each(&wal, &[b"a", b"b", b"c", b"d"]);

    let cut = wal.truncate_to(placed[1].0).expect("cut");

    assert_eq!(cut.records, 3);
    assert_eq!(cut.bytes, 3 * (40 + 1));
    assert_eq!(wal.latest_offset(), placed[1].0);
    assert_eq!(wal.durable_offset(), placed[1].0);
    let again = append_each(&wal, &[b"x"]);
    assert_eq!(
        again[0], placed[1],
        "same offset and sequence as the removed `b`"
    );
    wal.sync().expect("sync");
    drop(wal);
    let (_, seen) = recover_payloads(&storage, WalConfig::default()).expect("reopen");
    assert_eq!(payloads(&seen), [b"a".as_slice(), b"x"]);
}

#[test]
fn a_cut_into_an_older_segment_deletes_the_later_ones_and_rotates_as_before() {
    let storage = FaultStorage::new();
    // 100-byte segments: two 41-byte records each.
    let cfg = config(100, FsyncPolicy::EveryWrite);
    let (wal, _) = recover_payloads(&storage, cfg).expect("open");
    let names: Vec<Vec<u8>> = (0..7).map(|i| vec![b'0' + i]).collect();
    let slices: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    let placed = append_each(&wal, &slices);
    assert_eq!(storage.list().expect("list").len(), 4);

    // Record 3 is the second of segment 2.
    let cut = wal.truncate_to(placed[3].0).expect("cut");

    assert_eq!(cut.records, 4);
    assert_eq!(
        storage.list().expect("list"),
        ["0000000000000001.wal", "0000000000000002.wal"],
        "segments 3 and 4 are deleted"
    );
    let again = append_each(&wal, &[b"x", b"y", b"z"]);
    assert_eq!(
        again,
        placed[3..6],
        "the new records land where the removed ones were, rotating at the same points"
    );
    drop(wal);
    let (_, seen) = recover_payloads(&storage, cfg).expect("reopen");
    assert_eq!(
        payloads(&seen),
        [b"0".as_slice(), b"1", b"2", b"x", b"y", b"z"]
    );
}

#[test]
fn a_cut_at_the_end_removes_nothing() {
    let storage = FaultStorage::new();
    let (wal, _) = recover_payloads(&storage, WalConfig::default()).expect("open");
    append_each(&wal, &[b"a"]);
    let end = wal.latest_offset();
    assert_eq!(wal.truncate_to(end).expect("cut"), CutTail::default());
    assert_eq!(wal.latest_offset(), end);
}

#[test]
fn an_offset_that_starts_no_record_is_refused_and_the_wal_goes_on() {
    let storage = FaultStorage::new();
    let (wal, _) = recover_payloads(&storage, WalConfig::default()).expect("open");
    let placed = append_each(&wal, &[b"aaaa", b"bbbb"]);
    let unit = wal.append_unit(&[rec(b"u0"), rec(b"u1")]).expect("unit");
    let end = wal.latest_offset();

    for (offset, why) in [
        (placed[0].0 + 7, "no record starts there"),
        (end + 1, "past the end"),
        (placed[0].0 - 1, "not in a retained segment"),
        (unit.offsets[1], "inside an atomic unit"),
    ] {
        let err = wal.truncate_to(offset).expect_err("refused");
        let message = err.to_string();
        assert!(
            matches!(err, WalError::Config(_)) && message.contains(&offset.to_string()),
            "{message}"
        );
        assert!(message.contains(why), "{message}");
    }
    assert_eq!(wal.latest_offset(), end, "nothing was cut");
    append_each(&wal, &[b"c"]);
}

#[test]
fn a_crash_after_the_cut_recovers_the_records_before_it() {
    let storage = FaultStorage::new();
    let cfg = config(100, FsyncPolicy::Never);
    let (wal, _) = recover_payloads(&storage, cfg).expect("open");
    let placed = append_each(&wal, &[b"0", b"1", b"2", b"3", b"4"]);
    wal.sync().expect("sync");

    wal.truncate_to(placed[1].0).expect("cut");

    // Nothing the cut did is left to a later sync.
    let crashed = storage.crash(CrashPlan::default());
    let (_, seen) = recover_payloads(&crashed, cfg).expect("recover");
    assert_eq!(payloads(&seen), [b"0".as_slice()]);
}

#[test]
fn a_cut_that_fails_half_way_stops_the_wal_and_leaves_a_prefix() {
    let storage = FaultStorage::new();
    let cfg = config(100, FsyncPolicy::EveryWrite);
    let (wal, _) = recover_payloads(&storage, cfg).expect("open");
    let placed = append_each(&wal, &[b"0", b"1", b"2", b"3", b"4", b"5"]);
    wal.sync().expect("sync");
    // The removal of segment 3, the first step, fails.
    storage.fail_next_removes(1);

    let err = wal.truncate_to(placed[1].0).expect_err("the cut fails");

    assert!(matches!(err, WalError::SyncFailed { .. }), "{err}");
    assert!(err.to_string().contains("remove"), "{err}");
    assert!(
        matches!(wal.append(&[rec(b"late")]), Err(WalError::Poisoned { .. })),
        "a WAL whose files are in doubt takes no more records"
    );
    drop(wal);
    let (_, seen) = recover_payloads(&storage.crash(CrashPlan::default()), cfg).expect("recover");
    assert_eq!(
        payloads(&seen),
        [b"0".as_slice(), b"1", b"2", b"3", b"4", b"5"],
        "nothing was cut: the records are as they were"
    );
}

#[test]
fn an_fdatasync_running_during_the_cut_does_not_count_for_later_records() {
    let storage = FaultStorage::new();
    let (wal, _) = recover_payloads(&storage, config(1 << 20, FsyncPolicy::Never)).expect("open");
    let placed = append_each(&wal, &[b"aaaa", b"bbbb", b"cccc"]);
    let old_end = wal.latest_offset();
    storage.set_sync_delay(Duration::from_millis(300));
    // The sync thread starts an fdatasync of everything up to `old_end`, slowly.
    wal.request_sync();
    std::thread::sleep(Duration::from_millis(50));
    storage.set_sync_delay(Duration::ZERO);

    wal.truncate_to(placed[1].0).expect("cut");
    // Under `never` nothing syncs this one; it ends below `old_end`.
    let again = append_each(&wal, &[b"x"]);
    assert!(wal.latest_offset() < old_end);
    std::thread::sleep(Duration::from_millis(400));

    assert_eq!(
        wal.durable_offset(),
        again[0].0,
        "the old fdatasync must not make the record written after the cut durable"
    );
    wal.sync().expect("sync");
    assert_eq!(wal.durable_offset(), wal.latest_offset());
}
