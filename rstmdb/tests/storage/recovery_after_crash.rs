//! Crash fault tests on the in-memory storage: whatever the crash point, recovery yields exactly
//! a prefix of the appended records that holds every acknowledged record, never half a record
//! and never part of an atomic unit.

use proptest::prelude::*;
use rstmdb::wal::fault::{CrashPlan, FaultStorage, PAGE_BYTES};
use rstmdb::wal::{FsyncPolicy, NewRecord, Storage, Wal, WalConfig};
use std::sync::Arc;

#[derive(Debug, Clone)]
struct Batch {
    sizes: Vec<usize>,
    unit: bool,
    wait: bool,
}

fn batch() -> impl Strategy<Value = Batch> {
    (
        proptest::collection::vec(0usize..300, 1..4),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(sizes, unit, wait)| Batch { sizes, unit, wait })
}

fn payload_for(sequence: u64, size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (sequence as usize * 31 + i) as u8)
        .collect()
}

fn config() -> WalConfig {
    WalConfig {
        segment_size_bytes: 700,
        fsync_policy: FsyncPolicy::EveryWrite,
    }
}

/// Opens the WAL and returns it with the replayed `(sequence, payload)` pairs.
fn recover(storage: &FaultStorage) -> (Wal, Vec<(u64, Vec<u8>)>) {
    recover_with(storage, config())
}

fn recover_with(storage: &FaultStorage, config: WalConfig) -> (Wal, Vec<(u64, Vec<u8>)>) {
    let mut seen = Vec::new();
    let dyn_storage: Arc<dyn Storage> = Arc::new(storage.clone());
    let (wal, _) = Wal::open(dyn_storage, config, None, &mut |r| {
        seen.push((r.header.sequence, r.payload.to_vec()));
        Ok(())
    })
    .expect("recovery after a crash never reports corruption");
    (wal, seen)
}

struct Appended {
    payloads: Vec<Vec<u8>>,
    /// (first sequence, count) of every atomic unit.
    units: Vec<(u64, u64)>,
    /// (records so far, end offset) after each batch: a batch is acknowledged once its end is
    /// durable, so a unit's early records are not acknowledged on their own.
    batch_ends: Vec<(usize, u64)>,
}

impl Appended {
    /// What recovery kept is a prefix of what was appended: dense sequences, the same
    /// payloads, and every atomic unit whole or absent.
    fn check_prefix(&self, seen: &[(u64, Vec<u8>)]) -> Result<(), TestCaseError> {
        for (i, (sequence, payload)) in seen.iter().enumerate() {
            prop_assert_eq!(*sequence, i as u64 + 1);
            prop_assert_eq!(payload, &self.payloads[i]);
        }
        let n = seen.len() as u64;
        for (first, count) in &self.units {
            let kept_of_unit = (*first..first + count).filter(|s| *s <= n).count() as u64;
            prop_assert!(
                kept_of_unit == 0 || kept_of_unit == *count,
                "half a unit survived"
            );
        }
        Ok(())
    }

    /// How many records were acknowledged once the WAL was durable up to `durable`.
    fn acknowledged(&self, durable: u64) -> usize {
        self.batch_ends
            .iter()
            .take_while(|(_, end)| *end <= durable)
            .last()
            .map_or(0, |(records, _)| *records)
    }
}

fn run(wal: &Wal, batches: &[Batch]) -> Appended {
    let mut out = Appended {
        payloads: Vec::new(),
        units: Vec::new(),
        batch_ends: Vec::new(),
    };
    for b in batches {
        let first = out.payloads.len() as u64 + 1;
        let payloads: Vec<Vec<u8>> = b
            .sizes
            .iter()
            .enumerate()
            .map(|(i, s)| payload_for(first + i as u64, *s))
            .collect();
        let records: Vec<NewRecord<'_>> = payloads
            .iter()
            .map(|p| NewRecord {
                kind: 3,
                timestamp_ms: 7,
                payload: p,
            })
            .collect();
        let a = if b.unit {
            wal.append_unit(&records)
        } else {
            wal.append(&records)
        }
        .expect("append");
        assert_eq!(a.first_sequence, first);
        if b.unit {
            out.units.push((first, payloads.len() as u64));
        }
        out.payloads.extend(payloads);
        out.batch_ends.push((out.payloads.len(), a.end_offset));
        if b.wait {
            wal.wait_durable_blocking(a.end_offset).expect("durable");
        }
    }
    out
}

proptest! {
    #![proptest_config(rstmdb_testkit::proptest_config(256))]

    #[test]
    fn recovery_after_a_crash_yields_a_prefix_holding_every_acknowledged_record(
        batches in proptest::collection::vec(batch(), 1..20),
        kept in 0usize..8,
        torn in 0usize..400,
    ) {
        let storage = FaultStorage::new();
        let (wal, _) = recover(&storage);
        let appended = run(&wal, &batches);
        let acknowledged = appended.acknowledged(wal.durable_offset());
        let crashed = storage.crash(CrashPlan { kept_ops: kept, torn_bytes: torn });
        drop(wal);

        let (wal, seen) = recover(&crashed);
        let n = seen.len();
        prop_assert!(n >= acknowledged, "lost acknowledged records: kept {n} of {acknowledged}");
        prop_assert!(n <= appended.payloads.len());
        appended.check_prefix(&seen)?;
        // The writer continues densely after what recovery kept.
        prop_assert_eq!(wal.durable_offset(), wal.latest_offset());
        let next = wal.append(&[NewRecord { kind: 1, timestamp_ms: 0, payload: b"next" }]).expect("append");
        prop_assert_eq!(next.first_sequence, n as u64 + 1);
    }
}

proptest! {
    #![proptest_config(rstmdb_testkit::proptest_config(256))]

    /// The same with a disk that writes pages back in any order (issue 15, item 3): any subset of
    /// the unsynced pages survives, so the tail may hold holes followed by complete records.
    #[test]
    fn recovery_after_losing_any_subset_of_unsynced_pages_keeps_every_acknowledged_record(
        batches in proptest::collection::vec(batch(), 1..40),
        kept_pages in proptest::collection::vec(any::<bool>(), 64),
        every_write in any::<bool>(),
    ) {
        // Segments of several pages; under `never` only rotations sync, so the unsynced tail
        // spans many writes and pages.
        let config = WalConfig {
            segment_size_bytes: 5 * PAGE_BYTES,
            fsync_policy: if every_write { FsyncPolicy::EveryWrite } else { FsyncPolicy::Never },
        };
        // Under `never` a wait would last until the next rotation.
        let batches: Vec<Batch> = batches
            .into_iter()
            .map(|b| Batch { wait: b.wait && every_write, ..b })
            .collect();
        let storage = FaultStorage::new();
        let (wal, _) = recover_with(&storage, config);
        let appended = run(&wal, &batches);
        let acknowledged = appended.acknowledged(wal.durable_offset());
        let crashed = storage.crash_keeping_pages(&|_, page| kept_pages[page as usize % 64]);
        drop(wal);

        let (wal, seen) = recover_with(&crashed, config);
        let n = seen.len();
        prop_assert!(n >= acknowledged, "lost acknowledged records: kept {n} of {acknowledged}");
        appended.check_prefix(&seen)?;
        let next = wal.append(&[NewRecord { kind: 1, timestamp_ms: 0, payload: b"next" }]).expect("append");
        prop_assert_eq!(next.first_sequence, n as u64 + 1);
    }
}

#[test]
fn an_atomic_unit_cut_short_by_a_crash_is_dropped_as_a_whole_with_its_later_segments() {
    let storage = FaultStorage::new();
    let (wal, _) = recover(&storage);
    let p = vec![9u8; 200];
    let a = wal
        .append(&[NewRecord {
            kind: 1,
            timestamp_ms: 0,
            payload: &p,
        }])
        .expect("append");
    wal.wait_durable_blocking(a.end_offset).expect("durable");
    // 4 records of 240 bytes with 700-byte segments: the unit starts in segment 1 and ends in
    // segment 3.
    let records: Vec<_> = (0..4)
        .map(|_| NewRecord {
            kind: 1,
            timestamp_ms: 0,
            payload: &p,
        })
        .collect();
    storage.set_sync_delay(std::time::Duration::from_millis(300));
    let unit = wal.append_unit(&records).expect("append unit");
    assert_eq!(unit.offsets[0] >> 40, 1);
    assert_eq!(unit.end_offset >> 40, 3);
    // Crash: segments 1 and 2 were synced at rotation; segment 3's write is lost.
    let crashed = storage.crash(CrashPlan::default());
    drop(wal);
    let dyn_storage: Arc<dyn Storage> = Arc::new(crashed.clone());
    let mut seen = Vec::new();
    let (wal, report) = Wal::open(dyn_storage, config(), None, &mut |r| {
        seen.push(r.header.sequence);
        Ok(())
    })
    .expect("recovery");
    assert_eq!(seen, vec![1]);
    assert_eq!(wal.latest_offset(), a.end_offset);
    assert_eq!(
        crashed.list().expect("list"),
        vec!["0000000000000001.wal".to_owned()]
    );
    assert!(
        report
            .cuts
            .iter()
            .any(|c| c.segment == "0000000000000002.wal" && c.deleted)
    );
    assert!(
        report
            .cuts
            .iter()
            .any(|c| c.segment == "0000000000000001.wal" && c.bytes_cut == 240)
    );
}

#[test]
fn records_of_a_failed_append_never_come_back_after_a_crash() {
    let storage = FaultStorage::new();
    let cfg = WalConfig {
        segment_size_bytes: 150,
        fsync_policy: FsyncPolicy::EveryWrite,
    };
    let dyn_storage: Arc<dyn Storage> = Arc::new(storage.clone());
    let (wal, _) = Wal::open(dyn_storage, cfg, None, &mut |_| Ok(())).expect("open");
    let first = wal
        .append(&[NewRecord {
            kind: 1,
            timestamp_ms: 0,
            payload: &[1; 60],
        }])
        .expect("append");
    wal.wait_durable_blocking(first.end_offset)
        .expect("durable");
    // The batch's first record lands in segment 1, which rotation then syncs; the second record
    // fails in segment 2, so the whole append reports an error.
    storage.set_write_budget(Some(60));
    let failed = wal.append(&[
        NewRecord {
            kind: 1,
            timestamp_ms: 0,
            payload: &[2; 10],
        },
        NewRecord {
            kind: 1,
            timestamp_ms: 0,
            payload: &[3; 100],
        },
    ]);
    assert!(failed.is_err());
    let crashed = storage.crash(CrashPlan::default());
    drop(wal);
    let dyn_crashed: Arc<dyn Storage> = Arc::new(crashed);
    let mut seen = Vec::new();
    Wal::open(dyn_crashed, cfg, None, &mut |r| {
        seen.push(r.header.sequence);
        Ok(())
    })
    .expect("recovery");
    assert_eq!(
        seen,
        vec![1],
        "a record whose append failed was resurrected"
    );
}

proptest! {
    #![proptest_config(rstmdb_testkit::proptest_config(256))]

    /// Damage anywhere in a segment file gives a clean recovery or a corruption error, never a
    /// panic or an I/O error, and what it keeps is a prefix of the original records.
    #[test]
    fn recovery_of_a_damaged_segment_keeps_a_prefix_or_reports_corruption(
        records in 1usize..12,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        zeros in 0usize..100,
    ) {
        let storage = FaultStorage::new();
        {
            // One segment: every record in 0000000000000001.wal.
            let dyn_storage: Arc<dyn Storage> = Arc::new(storage.clone());
            let (wal, _) =
                Wal::open(dyn_storage, WalConfig::default(), None, &mut |_| Ok(())).expect("open");
            for s in 1..=records as u64 {
                let p = payload_for(s, 50);
                wal.append(&[NewRecord { kind: 1, timestamp_ms: 0, payload: &p }]).expect("append");
            }
            wal.shutdown().expect("shutdown");
        }
        let name = "0000000000000001.wal";
        let mut bytes = storage.contents(name).expect("segment");
        for (at, xor) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= xor;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        bytes.extend(std::iter::repeat_n(0u8, zeros));
        storage.put_synced(name, bytes);
        let dyn_storage: Arc<dyn Storage> = Arc::new(storage.clone());
        let mut seen = Vec::new();
        match Wal::open(dyn_storage, WalConfig::default(), None, &mut |r| {
            seen.push((r.header.sequence, r.payload.to_vec()));
            Ok(())
        }) {
            Ok(_) => {
                for (i, (sequence, payload)) in seen.iter().enumerate() {
                    prop_assert_eq!(*sequence, i as u64 + 1);
                    prop_assert_eq!(payload, &payload_for(i as u64 + 1, 50));
                }
            }
            Err(rstmdb::wal::WalError::Corrupt(c)) => prop_assert_eq!(c.segment, name),
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }
}
