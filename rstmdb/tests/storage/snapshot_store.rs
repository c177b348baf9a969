//! Per-instance snapshots (SNAPSHOT_INSTANCE, spec §4.16): the stored file is exactly the spec's
//! JSON object, the reported checksum is the CRC32C of its bytes, and verify finds damage.

use rstmdb::checkpoint::{
    CrashPoint, FaultFs, INDEX_FILE, InstanceSnapshot, SNAPSHOT_DIR, SnapshotError, SnapshotFault,
    SnapshotStore, checksum_hex,
};
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn order_snapshot(snapshot_id: &str) -> InstanceSnapshot {
    InstanceSnapshot {
        snapshot_id: snapshot_id.to_owned(),
        instance_id: "order-1".to_owned(),
        machine: "order".to_owned(),
        version: 1,
        state: "paid".to_owned(),
        ctx: json!({"customer": "alice", "amount": 42.5, "ready": true}),
        wal_offset: 1_099_511_628_333,
        created_at: 1_767_225_607_500,
    }
}

const SPEC_ID: &str = "snap-9b21ea07-0156-426c-b4b5-ea6f35749410";

fn snapshot_file(data: &Path, id: &str) -> PathBuf {
    data.join(SNAPSHOT_DIR).join(format!("{id}.json"))
}

#[test]
fn the_checksum_is_the_crc32c_of_the_stored_bytes_as_8_lowercase_hex_digits() {
    // The bytes behind the spec's SNAPSHOT_INSTANCE example (§4.16), whose key order inside
    // ctx is the client's; the spec leaves key order open, so only the function is pinned here.
    let spec_bytes = br#"{"snapshot_id":"snap-9b21ea07-0156-426c-b4b5-ea6f35749410","instance_id":"order-1","machine":"order","version":1,"state":"paid","ctx":{"customer":"alice","amount":42.5,"ready":true},"wal_offset":1099511628333,"created_at":1767225607500}"#;
    assert_eq!(spec_bytes.len(), 236);
    assert_eq!(checksum_hex(spec_bytes), "52ec5951");
    assert_eq!(checksum_hex(b"123456789"), "e3069283");
    assert_eq!(checksum_hex(b""), "00000000");
}

#[test]
fn a_snapshot_file_is_exactly_the_spec_object_and_its_size_and_checksum_match_the_file() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = SnapshotStore::open(data.path()).expect("open");
    let entry = store.write(&order_snapshot(SPEC_ID)).expect("write");

    let bytes = fs::read(snapshot_file(data.path(), SPEC_ID)).expect("read");
    assert_eq!(entry.size_bytes, bytes.len() as u64);
    assert_eq!(entry.size_bytes, 236, "same size as the spec example");
    assert_eq!(entry.checksum, format!("{:08x}", crc32c::crc32c(&bytes)));
    assert_eq!(entry.snapshot_id, SPEC_ID);
    assert_eq!(entry.instance_id, "order-1");
    assert_eq!(entry.wal_offset, 1_099_511_628_333);
    assert_eq!(entry.created_at, 1_767_225_607_500);

    let object: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(
        object,
        json!({
            "snapshot_id": SPEC_ID, "instance_id": "order-1", "machine": "order", "version": 1,
            "state": "paid", "ctx": {"customer": "alice", "amount": 42.5, "ready": true},
            "wal_offset": 1_099_511_628_333u64, "created_at": 1_767_225_607_500i64
        })
    );
    let text = String::from_utf8(bytes).expect("utf-8");
    assert!(
        text.starts_with(r#"{"snapshot_id":"snap-"#),
        "compact, spec key order: {text}"
    );
    assert!(!text.contains('\n'));
}

#[test]
fn written_snapshots_are_listed_from_the_index_and_read_back() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = SnapshotStore::open(data.path()).expect("open");
    let first = store.write(&order_snapshot("snap-a")).expect("write");
    let second = store.write(&order_snapshot("snap-b")).expect("write");

    let reopened = SnapshotStore::open(data.path()).expect("reopen");
    assert_eq!(reopened.list().expect("list"), vec![first.clone(), second]);
    let stored = reopened.get("snap-a").expect("get");
    assert_eq!(stored.snapshot, order_snapshot("snap-a"));
    assert_eq!(stored.checksum, first.checksum);
    assert_eq!(stored.index_entry, Some(first));
    let index = fs::read_to_string(data.path().join(SNAPSHOT_DIR).join(INDEX_FILE)).expect("index");
    assert_eq!(index.lines().count(), 2);
}

#[test]
fn an_existing_id_and_an_unsafe_id_are_refused() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = SnapshotStore::open(data.path()).expect("open");
    store.write(&order_snapshot("snap-a")).expect("write");
    assert!(matches!(
        store.write(&order_snapshot("snap-a")),
        Err(SnapshotError::AlreadyExists(id)) if id == "snap-a"
    ));
    for bad in ["", "../escape", "snap/a", "snap.a", &"x".repeat(129)] {
        assert!(
            matches!(
                store.write(&order_snapshot(bad)),
                Err(SnapshotError::InvalidId(_))
            ),
            "{bad:?}"
        );
        assert!(matches!(store.get(bad), Err(SnapshotError::InvalidId(_))));
    }
    assert!(matches!(
        store.get("snap-zz"),
        Err(SnapshotError::NotFound(_))
    ));
    assert_eq!(store.list().expect("list").len(), 1);
}

#[test]
fn verify_finds_a_flipped_byte_and_a_missing_file() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = SnapshotStore::open(data.path()).expect("open");
    for id in ["snap-flipped", "snap-missing", "snap-good"] {
        store.write(&order_snapshot(id)).expect("write");
    }
    assert_eq!(store.verify().expect("verify").faults, vec![]);

    let flipped = snapshot_file(data.path(), "snap-flipped");
    let mut bytes = fs::read(&flipped).expect("read");
    bytes[40] ^= 0x01;
    fs::write(&flipped, bytes).expect("write");
    fs::remove_file(snapshot_file(data.path(), "snap-missing")).expect("remove");

    let report = store.verify().expect("verify");
    assert_eq!(report.checked, 3);
    assert_eq!(report.faults.len(), 2, "{:?}", report.faults);
    assert!(matches!(
        &report.faults[0],
        SnapshotFault::ChecksumMismatch { snapshot_id, .. } if snapshot_id == "snap-flipped"
    ));
    assert_eq!(
        report.faults[1],
        SnapshotFault::MissingFile {
            snapshot_id: "snap-missing".to_owned()
        }
    );
}

#[test]
fn verify_reports_a_truncated_file_and_an_unindexed_file() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = SnapshotStore::open(data.path()).expect("open");
    store.write(&order_snapshot("snap-short")).expect("write");
    let path = snapshot_file(data.path(), "snap-short");
    let bytes = fs::read(&path).expect("read");
    fs::write(&path, &bytes[..bytes.len() - 1]).expect("truncate");
    fs::write(snapshot_file(data.path(), "snap-stray"), b"{}").expect("stray");

    let report = store.verify().expect("verify");
    assert!(matches!(
        report.faults.as_slice(),
        [SnapshotFault::SizeMismatch { indexed, actual, .. }] if *indexed == *actual + 1
    ));
    assert_eq!(report.unindexed_files, vec!["snap-stray.json".to_owned()]);
}

#[test]
fn a_crash_before_the_index_append_leaves_an_unindexed_file_and_no_listed_snapshot() {
    let data = tempfile::tempdir().expect("tempdir");
    let fault_fs = Arc::new(FaultFs::crashing_at(CrashPoint::MidAppend {
        bytes_written: 0,
    }));
    let store = SnapshotStore::open_with_fs(data.path(), fault_fs).expect("open");
    assert!(matches!(
        store.write(&order_snapshot("snap-a")),
        Err(SnapshotError::Io { .. })
    ));

    let reopened = SnapshotStore::open(data.path()).expect("reopen");
    assert!(reopened.list().expect("list").is_empty());
    let report = reopened.verify().expect("verify");
    assert!(report.faults.is_empty());
    assert_eq!(report.unindexed_files, vec!["snap-a.json".to_owned()]);
}

#[test]
fn a_torn_index_append_is_cut_on_open_so_the_next_entry_starts_a_fresh_line() {
    let data = tempfile::tempdir().expect("tempdir");
    SnapshotStore::open(data.path())
        .expect("open")
        .write(&order_snapshot("snap-a"))
        .expect("write");
    let fault_fs = Arc::new(FaultFs::crashing_at(CrashPoint::MidAppend {
        bytes_written: 25,
    }));
    let crashing = SnapshotStore::open_with_fs(data.path(), fault_fs).expect("open");
    assert!(crashing.write(&order_snapshot("snap-b")).is_err());

    // Readers ignore the partial line even before any repair.
    let read_only = SnapshotStore::open_read_only(data.path());
    assert_eq!(read_only.list().expect("list").len(), 1);

    let store = SnapshotStore::open(data.path()).expect("reopen");
    store.write(&order_snapshot("snap-c")).expect("write");
    let ids: Vec<String> = store
        .list()
        .expect("list")
        .into_iter()
        .map(|e| e.snapshot_id)
        .collect();
    assert_eq!(ids, vec!["snap-a", "snap-c"]);
    let report = store.verify().expect("verify");
    assert!(report.faults.is_empty(), "{:?}", report.faults);
    assert_eq!(report.unindexed_files, vec!["snap-b.json".to_owned()]);
}

#[test]
fn a_crash_mid_snapshot_write_leaves_only_a_temp_file_that_open_removes() {
    let data = tempfile::tempdir().expect("tempdir");
    let fault_fs = Arc::new(FaultFs::crashing_at(CrashPoint::MidTempWrite {
        bytes_written: 30,
    }));
    let store = SnapshotStore::open_with_fs(data.path(), fault_fs).expect("open");
    assert!(store.write(&order_snapshot("snap-a")).is_err());
    assert!(
        data.path()
            .join(SNAPSHOT_DIR)
            .join("snap-a.json.tmp")
            .exists()
    );

    let reopened = SnapshotStore::open(data.path()).expect("reopen");
    assert!(
        !data
            .path()
            .join(SNAPSHOT_DIR)
            .join("snap-a.json.tmp")
            .exists()
    );
    assert!(matches!(
        reopened.get("snap-a"),
        Err(SnapshotError::NotFound(_))
    ));
    // The id is free again: the crashed request was never acknowledged.
    reopened.write(&order_snapshot("snap-a")).expect("write");
}
