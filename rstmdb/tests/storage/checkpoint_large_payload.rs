//! Large payloads load intact. The 200 MB case is `#[ignore]`d (it writes 200 MB and is slow in
//! debug builds); run it with
//! `cargo test --release -p rstmdb --test storage -- --ignored --nocapture checkpoint_large_payload::`
//! to see the write and load times. Timings are printed, never asserted.

use rstmdb::checkpoint::{CheckpointMeta, CheckpointStore};
use std::time::Instant;

fn payload_of(len: usize) -> Vec<u8> {
    // Not constant, so a misplaced chunk would change the bytes.
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i >> 20) as u8)
        .collect()
}

fn write_then_load(len: usize) {
    let data = tempfile::tempdir().expect("tempdir");
    let store = CheckpointStore::open(data.path()).expect("open");
    let payload = payload_of(len);
    let meta = CheckpointMeta {
        checkpoint_offset: 5 << 40,
        last_sequence: 1_000_000,
        created_at_ms: 0,
    };

    let started = Instant::now();
    let info = store.write(meta, &payload).expect("write");
    let write_ms = started.elapsed().as_secs_f64() * 1000.0;

    let started = Instant::now();
    let loaded = store
        .load_newest_valid()
        .expect("load")
        .loaded
        .expect("checkpoint");
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;

    let started = Instant::now();
    let verified = store.verify(&info.file_name).expect("verify");
    let verify_ms = started.elapsed().as_secs_f64() * 1000.0;

    assert_eq!(loaded.payload.len(), len);
    assert!(loaded.payload == payload, "payload differs after load");
    assert_eq!(verified, Ok(info));
    let mb = len as f64 / 1e6;
    println!(
        "{mb:.0} MB: write+fsync {write_ms:.1} ms, load {load_ms:.1} ms ({:.0} MB/s), \
         streaming verify {verify_ms:.1} ms",
        mb / (load_ms / 1000.0)
    );
}

#[test]
fn an_8_mb_payload_loads_back_byte_for_byte() {
    write_then_load(8 << 20);
}

#[test]
#[ignore = "writes 200 MB; run by hand for the load-speed figure"]
fn a_200_mb_payload_loads_back_byte_for_byte() {
    write_then_load(200_000_000);
}
