//! Arbitrary bytes as a checkpoint file (in an in-memory file system), then
//! `CheckpointStore::load_newest_valid`, `list` and `verify`.
//!
//! Input: `[flags][file bytes]`. Flags: bit 0 recomputes the CRCs, bit 1 also the payload
//! length, bit 2 names the file after the offset and generation in its header (else a fixed
//! name), bit 3 first writes a valid checkpoint through the store, bit 4 names the file as a
//! temp file.
//!
//! Checks: no panic, no error (the file system never fails here, so every problem is a content
//! fault that skips a file); a loaded checkpoint is byte-for-byte the file it came from, or the
//! valid one written through the store when the fuzzed file sorts older or is invalid; `verify`
//! agrees with loading; temp files are removed at open and never loaded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rstmdb::checkpoint::{
    CHECKPOINT_DIR, CheckpointMeta, CheckpointName, CheckpointStore, HEADER_LEN, StorageFs,
};
use rstmdb_fuzz::Input;
use rstmdb_fuzz::fixup::fix_checkpoint;
use rstmdb_fuzz::mem_fs::MemFs;
use std::path::Path;
use std::sync::Arc;

const VALID_PAYLOAD: &[u8] = b"{\"machines\":[],\"instances\":[]}";

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.byte();
    let mut file = input.rest().to_vec();
    if flags & 1 != 0 {
        fix_checkpoint(&mut file, flags & 2 != 0);
    }
    let name = if flags & 4 != 0 && file.len() >= HEADER_LEN {
        CheckpointName {
            checkpoint_offset: u64_at(&file, 16),
            generation: u64_at(&file, 32),
        }
    } else {
        CheckpointName {
            checkpoint_offset: 1 << 40,
            generation: 7,
        }
    };
    let temp = flags & 16 != 0;
    let file_name = if temp {
        format!("{}.tmp", name.file_name())
    } else {
        name.file_name()
    };

    let data_dir = Path::new("/data");
    let fs = Arc::new(MemFs::default());
    let valid = (flags & 8 != 0).then(|| {
        let store = CheckpointStore::open_with_fs(data_dir, fs.clone() as Arc<dyn StorageFs>)
            .expect("an in-memory store opens");
        let meta = CheckpointMeta {
            checkpoint_offset: 1 << 40,
            last_sequence: 3,
            created_at_ms: 9,
        };
        store
            .write(meta, VALID_PAYLOAD)
            .expect("a valid checkpoint is written")
    });
    // A file of the same name as the one just written would replace it: keep the valid one.
    if valid
        .as_ref()
        .is_some_and(|info| info.file_name == file_name)
    {
        return;
    }
    fs.put(data_dir.join(CHECKPOINT_DIR).join(&file_name), file.clone());

    let store = CheckpointStore::open_with_fs(data_dir, fs as Arc<dyn StorageFs>)
        .expect("an in-memory store opens");
    assert_eq!(
        store.cleaned_temp_files().contains(&file_name),
        temp,
        "temp file handling"
    );
    let outcome = store.load_newest_valid().expect("no I/O error in memory");
    let listed = store.list().expect("no I/O error in memory");
    let fuzzed_ok = if temp {
        None
    } else {
        let verified = store.verify(&file_name).expect("no I/O error in memory");
        assert!(
            listed.iter().any(|entry| entry.name == name),
            "list misses the file"
        );
        Some(verified.is_ok())
    };

    match &outcome.loaded {
        Some(loaded) if loaded.info.file_name == file_name => {
            assert_eq!(fuzzed_ok, Some(true), "verify rejects a file that loads");
            assert_eq!(
                loaded.payload,
                file[HEADER_LEN..],
                "loaded payload is not the file's"
            );
            assert_eq!(loaded.info.file_size_bytes(), file.len() as u64);
            assert_eq!(loaded.info.meta.checkpoint_offset, name.checkpoint_offset);
            assert_eq!(loaded.info.generation, name.generation);
        }
        Some(loaded) => {
            let valid = valid.as_ref().expect("only two files exist");
            assert_eq!(&loaded.info, valid);
            assert_eq!(loaded.payload, VALID_PAYLOAD);
            let fuzzed_newer = name
                > CheckpointName {
                    checkpoint_offset: 1 << 40,
                    generation: 1,
                };
            if fuzzed_newer && !temp {
                assert_eq!(fuzzed_ok, Some(false), "a valid newer file was passed over");
                assert!(outcome.skipped.iter().any(|s| s.file_name == file_name));
            }
        }
        None => {
            assert!(valid.is_none(), "the valid checkpoint was not loaded");
            assert_ne!(fuzzed_ok, Some(true), "a valid file did not load");
        }
    }
});

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut array = [0u8; 8];
    array.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(array)
}
