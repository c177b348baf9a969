//! A crash while recovery or `wal-inspect repair` is cutting the WAL (issue 15, item 5): the
//! later segments go first, newest first, so the disk left behind is one the next start-up (or
//! the next repair) decides about exactly as before.

use super::wal_support::{rec, recover_payloads};
use rstmdb::wal::fault::{CrashPlan, FaultStorage};
use rstmdb::wal::repair::{self, RepairAction};
use rstmdb::wal::segment::segment_file_name;
use rstmdb::wal::stats::IoCounters;
use rstmdb::wal::{FsyncPolicy, Storage, WalConfig, WalError};

const PAYLOAD_BYTES: usize = 200;

fn config(segment_size_bytes: u64) -> WalConfig {
    WalConfig {
        segment_size_bytes,
        // Only rotations sync: what the newest segment holds is lost at a power loss.
        fsync_policy: FsyncPolicy::Never,
    }
}

/// A WAL after a power loss: one record in segment 1, then an atomic unit that begins in
/// segment 1 and whose last record (in segment 3) was lost, so recovery must cut segment 1 and
/// delete segments 2 and 3.
fn wal_ending_in_an_incomplete_unit() -> (FaultStorage, Vec<u8>) {
    let storage = FaultStorage::new();
    let cfg = config(700);
    let (wal, _) = recover_payloads(&storage, cfg).expect("fresh WAL");
    let first = vec![1u8; PAYLOAD_BYTES];
    wal.append(&[rec(&first)]).expect("append");
    wal.sync().expect("sync");
    let p = [2u8; PAYLOAD_BYTES];
    let unit = wal
        .append_unit(&[rec(&p), rec(&p), rec(&p), rec(&p)])
        .expect("append unit");
    assert_eq!((unit.offsets[0] >> 40, unit.end_offset >> 40), (1, 3));
    let crashed = storage.crash(CrashPlan::default());
    drop(wal);
    (crashed, first)
}

#[test]
fn a_crash_while_recovery_deletes_the_rest_of_an_incomplete_unit_leaves_a_wal_that_opens() {
    let (crashed, first) = wal_ending_in_an_incomplete_unit();
    // The recovery "crashes" at its first deletion.
    crashed.fail_next_removes(1);
    let err = recover_payloads(&crashed, config(700)).expect_err("the deletion failed");
    assert!(matches!(err, WalError::Io { .. }), "{err:?}");

    for disk in [crashed.clone(), crashed.crash(CrashPlan::default())] {
        let (wal, seen) = recover_payloads(&disk, config(700))
            .expect("the next start-up makes the same cut instead of reporting corruption");
        assert_eq!(seen, vec![first.clone()]);
        assert_eq!(disk.list().expect("list"), vec![segment_file_name(1)]);
        drop(wal);
    }
}

/// A WAL of three segments (three 240-byte records each, two in the last) whose second record
/// (segment 1, byte 240) is damaged while the records after it are intact: corruption, which
/// only `repair` cuts.
fn corrupt_wal() -> FaultStorage {
    let storage = FaultStorage::new();
    let cfg = config(750);
    let (wal, _) = recover_payloads(&storage, cfg).expect("fresh WAL");
    for n in 0..8u8 {
        wal.append(&[rec(&[n; PAYLOAD_BYTES])]).expect("append");
    }
    wal.shutdown().expect("shutdown");
    drop(wal);
    assert_eq!(
        storage.list().expect("list"),
        (1..=3).map(segment_file_name).collect::<Vec<_>>()
    );
    let name = segment_file_name(1);
    let mut bytes = storage.contents(&name).expect("segment 1");
    bytes[240 + 100] ^= 0xff;
    storage.put_synced(&name, bytes);
    storage
}

#[test]
fn a_crash_during_repair_leaves_a_wal_whose_next_repair_makes_the_same_cut() {
    let storage = corrupt_wal();
    let counters = IoCounters::default();
    let before: Vec<_> = (1..=3)
        .map(|id| storage.contents(&segment_file_name(id)).expect("segment"))
        .collect();
    let plan = repair::plan(&storage, &counters)
        .expect("plan")
        .expect("the WAL is corrupt");
    assert!(
        plan.actions.iter().any(
            |a| matches!(a, RepairAction::Truncate { segment, position: 240, .. } if *segment == segment_file_name(1))
        ),
        "{plan:?}"
    );

    // The repair "crashes" at its first rename.
    storage.fail_next_renames(1);
    repair::apply(&storage, &plan).expect_err("the rename failed");
    let again = repair::plan(&storage, &counters)
        .expect("plan")
        .expect("still corrupt");
    assert_eq!(
        again, plan,
        "the rerun must find the same corruption and cut"
    );

    repair::apply(&storage, &again).expect("repair");
    repair::verify(&storage, &counters).expect("the repaired WAL is valid");
    assert_eq!(
        storage
            .contents(&format!("{}.corrupt", segment_file_name(1)))
            .expect("aside"),
        before[0][240..]
    );
    for (i, id) in [2u64, 3].into_iter().enumerate() {
        assert_eq!(
            storage
                .contents(&format!("{}.corrupt", segment_file_name(id)))
                .expect("aside"),
            before[i + 1]
        );
    }
}

#[test]
fn a_second_repair_of_the_same_segments_keeps_the_first_repairs_cut_bytes() {
    let storage = corrupt_wal();
    let counters = IoCounters::default();
    let first = repair::plan(&storage, &counters)
        .expect("plan")
        .expect("corrupt");
    repair::apply(&storage, &first).expect("first repair");
    let aside = |id: u64, suffix: &str| format!("{}.corrupt{suffix}", segment_file_name(id));
    let first_cuts: Vec<Vec<u8>> = [aside(1, ""), aside(2, ""), aside(3, "")]
        .iter()
        .map(|name| storage.contents(name).expect("set aside"))
        .collect();

    // The WAL goes on (into segments 1 and 2 again), and is damaged again in segment 1.
    let (wal, _) = recover_payloads(&storage, config(750)).expect("repaired WAL opens");
    for n in 10..14u8 {
        wal.append(&[rec(&[n; PAYLOAD_BYTES])]).expect("append");
    }
    wal.shutdown().expect("shutdown");
    drop(wal);
    let name = segment_file_name(1);
    let mut bytes = storage.contents(&name).expect("segment 1");
    bytes[240 + 100] ^= 0xff;
    storage.put_synced(&name, bytes);

    let second = repair::plan(&storage, &counters)
        .expect("plan")
        .expect("corrupt again");
    repair::apply(&storage, &second).expect("second repair");
    repair::verify(&storage, &counters).expect("valid");
    for (name, bytes) in [aside(1, ""), aside(2, ""), aside(3, "")]
        .iter()
        .zip(&first_cuts)
    {
        assert_eq!(
            &storage.contents(name).expect("still there"),
            bytes,
            "{name} was replaced"
        );
    }
    assert!(storage.contents(&aside(1, ".1")).is_some());
    assert!(storage.contents(&aside(2, ".1")).is_some());
}
