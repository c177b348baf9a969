//! Checkpoint files: round trip, newest-valid selection, retention, and the offset invariant.

use rstmdb::checkpoint::{
    CHECKPOINT_DIR, CheckpointError, CheckpointFault, CheckpointMeta, CheckpointStore, HEADER_LEN,
};
use std::fs;
use std::path::{Path, PathBuf};

const SEGMENT_1: u64 = 1 << 40;

fn meta(checkpoint_offset: u64, last_sequence: u64) -> CheckpointMeta {
    CheckpointMeta {
        checkpoint_offset,
        last_sequence,
        created_at_ms: 1_767_225_600_000 + last_sequence as i64,
    }
}

fn checkpoint_path(data: &Path, file_name: &str) -> PathBuf {
    data.join(CHECKPOINT_DIR).join(file_name)
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = fs::read(path).expect("read checkpoint");
    bytes[at] ^= 0x40;
    fs::write(path, bytes).expect("write checkpoint");
}

fn loaded_offset_and_payload(store: &CheckpointStore) -> Option<(u64, Vec<u8>)> {
    let outcome = store.load_newest_valid().expect("load");
    outcome
        .loaded
        .map(|l| (l.info.meta.checkpoint_offset, l.payload))
}

#[test]
fn a_written_checkpoint_loads_back_with_its_metadata_and_payload() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = CheckpointStore::open(data.path()).expect("open");
    let payload: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let written = store
        .write(meta(SEGMENT_1 + 333, 7), &payload)
        .expect("write");
    assert_eq!(
        written.file_size_bytes(),
        HEADER_LEN as u64 + payload.len() as u64
    );

    let reopened = CheckpointStore::open(data.path()).expect("reopen");
    let outcome = reopened.load_newest_valid().expect("load");
    assert!(outcome.skipped.is_empty());
    let loaded = outcome.loaded.expect("a checkpoint");
    assert_eq!(loaded.info, written);
    assert_eq!(loaded.info.meta, meta(SEGMENT_1 + 333, 7));
    assert_eq!(loaded.payload, payload);
    let on_disk = fs::metadata(checkpoint_path(data.path(), &written.file_name)).expect("stat");
    assert_eq!(on_disk.len(), written.file_size_bytes());
}

#[test]
fn an_empty_payload_round_trips() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = CheckpointStore::open(data.path()).expect("open");
    store.write(meta(SEGMENT_1, 0), b"").expect("write");
    assert_eq!(
        loaded_offset_and_payload(&store),
        Some((SEGMENT_1, Vec::new()))
    );
}

#[test]
fn a_fresh_store_has_no_checkpoint() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = CheckpointStore::open(data.path()).expect("open");
    let outcome = store.load_newest_valid().expect("load");
    assert!(outcome.loaded.is_none());
    assert!(outcome.skipped.is_empty());
    assert_eq!(store.count().expect("count"), 0);
}

#[test]
fn the_newest_checkpoint_wins_even_when_a_forced_one_repeats_the_offset() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = CheckpointStore::open(data.path()).expect("open");
    store
        .write(meta(SEGMENT_1 + 10, 1), b"first")
        .expect("write");
    let second = store
        .write(meta(SEGMENT_1 + 50, 2), b"second")
        .expect("write");
    let forced = store
        .write(meta(SEGMENT_1 + 50, 2), b"forced")
        .expect("write");
    assert_ne!(second.file_name, forced.file_name);
    assert!(forced.generation > second.generation);
    assert_eq!(
        loaded_offset_and_payload(&store),
        Some((SEGMENT_1 + 50, b"forced".to_vec()))
    );
}

#[test]
fn a_corrupt_newest_checkpoint_is_skipped_and_the_previous_one_loads() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = CheckpointStore::open(data.path()).expect("open");
    store
        .write(meta(SEGMENT_1 + 10, 1), b"older state")
        .expect("write");
    let newest = store
        .write(meta(SEGMENT_1 + 90, 4), b"newer state")
        .expect("write");
    flip_byte(
        &checkpoint_path(data.path(), &newest.file_name),
        HEADER_LEN + 3,
    );

    let outcome = store.load_newest_valid().expect("load");
    let loaded = outcome.loaded.expect("older checkpoint");
    assert_eq!(loaded.payload, b"older state");
    assert_eq!(outcome.skipped.len(), 1);
    assert_eq!(outcome.skipped[0].file_name, newest.file_name);
    assert!(matches!(
        outcome.skipped[0].fault,
        CheckpointFault::PayloadCrcMismatch { .. }
    ));
}

#[test]
fn torn_truncated_and_renamed_checkpoints_are_each_skipped_with_their_fault() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = CheckpointStore::open(data.path()).expect("open");
    store.write(meta(SEGMENT_1 + 1, 1), b"good").expect("write");
    let header_hit = store.write(meta(SEGMENT_1 + 2, 2), b"x").expect("write");
    let torn = store
        .write(meta(SEGMENT_1 + 3, 3), b"torn payload")
        .expect("write");
    let stub = store.write(meta(SEGMENT_1 + 4, 4), b"y").expect("write");
    let renamed = store.write(meta(SEGMENT_1 + 5, 5), b"z").expect("write");

    flip_byte(&checkpoint_path(data.path(), &header_hit.file_name), 20);
    let torn_path = checkpoint_path(data.path(), &torn.file_name);
    let torn_bytes = fs::read(&torn_path).expect("read");
    fs::write(&torn_path, &torn_bytes[..torn_bytes.len() - 4]).expect("tear");
    fs::write(checkpoint_path(data.path(), &stub.file_name), b"RSTM").expect("stub");
    // A copy under another checkpoint's name must not load as that checkpoint.
    let copied_name = renamed.file_name.replace("0005.ckpt", "0006.ckpt");
    fs::rename(
        checkpoint_path(data.path(), &renamed.file_name),
        checkpoint_path(data.path(), &copied_name),
    )
    .expect("rename");

    let outcome = store.load_newest_valid().expect("load");
    assert_eq!(outcome.loaded.expect("oldest").payload, b"good");
    let faults: Vec<_> = outcome.skipped.iter().map(|s| s.fault.clone()).collect();
    assert!(matches!(
        faults.as_slice(),
        [
            CheckpointFault::NameMismatch { .. },
            CheckpointFault::TooShort { file_len: 4 },
            CheckpointFault::LengthMismatch { .. },
            CheckpointFault::HeaderCrcMismatch { .. },
        ]
    ));
}

#[test]
fn a_checkpoint_below_the_newest_offset_is_refused() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = CheckpointStore::open(data.path()).expect("open");
    store
        .write(meta(SEGMENT_1 + 500, 9), b"state")
        .expect("write");
    let refused = store.write(meta(SEGMENT_1 + 499, 8), b"older state");
    assert!(matches!(
        refused,
        Err(CheckpointError::OffsetWentBackwards { new, newest, .. })
            if new == SEGMENT_1 + 499 && newest == SEGMENT_1 + 500
    ));
    assert_eq!(store.count().expect("count"), 1);
}

#[test]
fn retention_keeps_the_newest_and_optionally_the_previous() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = CheckpointStore::open(data.path()).expect("open");
    for i in 1..=4u64 {
        store
            .write(meta(SEGMENT_1 + i, i), &[i as u8])
            .expect("write");
    }
    assert_eq!(store.remove_older_than_newest(true).expect("retain"), 2);
    let kept: Vec<u64> = store
        .list()
        .expect("list")
        .iter()
        .map(|e| e.name.checkpoint_offset)
        .collect();
    assert_eq!(kept, vec![SEGMENT_1 + 3, SEGMENT_1 + 4]);

    assert_eq!(store.remove_older_than_newest(false).expect("retain"), 1);
    assert_eq!(store.count().expect("count"), 1);
    assert_eq!(
        loaded_offset_and_payload(&store),
        Some((SEGMENT_1 + 4, vec![4]))
    );
    assert_eq!(store.remove_older_than_newest(false).expect("retain"), 0);
}

#[test]
fn retention_never_removes_the_newest_valid_checkpoint_behind_a_corrupt_one() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = CheckpointStore::open(data.path()).expect("open");
    store.write(meta(SEGMENT_1 + 1, 1), b"old").expect("write");
    store
        .write(meta(SEGMENT_1 + 2, 2), b"valid")
        .expect("write");
    let corrupt = store
        .write(meta(SEGMENT_1 + 3, 3), b"corrupt")
        .expect("write");
    flip_byte(
        &checkpoint_path(data.path(), &corrupt.file_name),
        HEADER_LEN,
    );

    assert_eq!(store.remove_older_than_newest(false).expect("retain"), 1);
    assert_eq!(
        loaded_offset_and_payload(&store),
        Some((SEGMENT_1 + 2, b"valid".to_vec()))
    );
    // The corrupt newer file stays for the operator to inspect.
    assert_eq!(store.count().expect("count"), 2);
}

#[test]
fn retention_with_no_valid_checkpoint_removes_nothing() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = CheckpointStore::open(data.path()).expect("open");
    let only = store.write(meta(SEGMENT_1, 0), b"state").expect("write");
    flip_byte(&checkpoint_path(data.path(), &only.file_name), HEADER_LEN);
    assert_eq!(store.remove_older_than_newest(false).expect("retain"), 0);
    assert_eq!(store.count().expect("count"), 1);
}

#[test]
fn list_reports_header_faults_and_verify_reports_payload_faults() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = CheckpointStore::open(data.path()).expect("open");
    let good = store.write(meta(SEGMENT_1 + 1, 1), b"good").expect("write");
    let bad = store
        .write(meta(SEGMENT_1 + 2, 2), b"bad payload")
        .expect("write");
    flip_byte(
        &checkpoint_path(data.path(), &bad.file_name),
        HEADER_LEN + 1,
    );
    fs::write(
        data.path().join(CHECKPOINT_DIR).join("notes.txt"),
        b"ignored",
    )
    .expect("write");

    let entries = store.list().expect("list");
    assert_eq!(entries.len(), 2, "foreign files are not listed");
    assert_eq!(entries[0].header.as_ref().ok(), Some(&good));
    // The header is intact, so only a full verify sees the damage.
    assert!(entries[1].header.is_ok());
    assert_eq!(store.verify(&good.file_name).expect("verify"), Ok(good));
    assert!(matches!(
        store.verify(&bad.file_name).expect("verify"),
        Err(CheckpointFault::PayloadCrcMismatch { .. })
    ));
}

#[test]
fn a_read_only_store_creates_nothing_and_refuses_writes() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = CheckpointStore::open_read_only(data.path());
    assert_eq!(store.count().expect("count"), 0);
    assert!(!data.path().join(CHECKPOINT_DIR).exists());
    assert!(matches!(
        store.write(meta(SEGMENT_1, 0), b"x"),
        Err(CheckpointError::ReadOnly)
    ));
    assert!(matches!(
        store.remove_older_than_newest(false),
        Err(CheckpointError::ReadOnly)
    ));
}

proptest::proptest! {
    #![proptest_config(rstmdb_testkit::proptest_config(32))]

    /// CRC32C catches every burst of up to 32 bits, and every byte is under a CRC, so any
    /// single damaged byte must make loading fall back to the older checkpoint.
    #[test]
    fn any_damaged_byte_in_the_newest_checkpoint_falls_back_to_the_older_one(
        payload in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        position_seed in proptest::num::usize::ANY,
        xor in 1u8..=255,
    ) {
        let data = tempfile::tempdir().expect("tempdir");
        let store = CheckpointStore::open(data.path()).expect("open");
        store.write(meta(SEGMENT_1, 0), b"older").expect("write");
        let newest = store.write(meta(SEGMENT_1 + 7, 3), &payload).expect("write");
        let path = checkpoint_path(data.path(), &newest.file_name);
        let mut bytes = fs::read(&path).expect("read");
        let at = position_seed % bytes.len();
        bytes[at] ^= xor;
        fs::write(&path, bytes).expect("write");

        let outcome = store.load_newest_valid().expect("load");
        proptest::prop_assert_eq!(outcome.loaded.expect("older").payload, b"older".to_vec());
        proptest::prop_assert_eq!(outcome.skipped.len(), 1);
    }
}
