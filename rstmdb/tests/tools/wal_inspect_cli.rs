//! `rstmdb wal-inspect` against generated data directories (the real binary, via assert_cmd).

use assert_cmd::Command;
use predicates::prelude::*;
use rstmdb::wal::{
    DataDirLock, DirStorage, FsyncPolicy, NewRecord, Storage, Wal, WalConfig, wal_dir,
};
use std::path::Path;
use std::sync::Arc;

/// Six entries over two instances, in 400-byte segments (also used by `data_dir_files`).
pub fn generate(data_dir: &Path) -> Vec<u64> {
    let storage: Arc<dyn Storage> = Arc::new(DirStorage::open(wal_dir(data_dir)).expect("storage"));
    let cfg = WalConfig {
        segment_size_bytes: 400,
        fsync_policy: FsyncPolicy::EveryWrite,
    };
    let (wal, _) = Wal::open(storage, cfg, None, &mut |_| Ok(())).expect("open");
    let mut offsets = Vec::new();
    for i in 0..6 {
        let instance = if i % 2 == 0 { "order-1" } else { "order-2" };
        let entry = serde_json::json!({
            "type": "apply_event", "instance_id": instance, "machine": "order", "version": 1,
            "event": "PAY", "from_state": "created", "to_state": "paid", "timestamp": i,
        });
        let payload = entry.to_string().into_bytes();
        let a = wal
            .append(&[NewRecord {
                kind: 2,
                timestamp_ms: i,
                payload: &payload,
            }])
            .expect("append");
        offsets.push(a.offsets[0]);
    }
    wal.shutdown().expect("shutdown");
    offsets
}

fn inspect(data_dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("rstmdb").expect("binary");
    cmd.arg("wal-inspect").arg("--data-dir").arg(data_dir);
    cmd
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn list_shows_every_segment_with_its_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    generate(dir.path());
    inspect(dir.path())
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains("0000000000000001.wal"))
        .stdout(predicate::str::contains("0000000000000003.wal"))
        .stdout(predicate::str::contains("1099511627776"));
}

#[test]
fn dump_filters_by_instance_and_prints_json_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let offsets = generate(dir.path());
    let out = inspect(dir.path())
        .args(["dump", "--json", "--instance", "order-2"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .expect("utf8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["sequence"], 2);
    assert_eq!(lines[0]["offset"], offsets[1]);
    assert_eq!(lines[0]["entry"]["instance_id"], "order-2");
}

#[test]
fn dump_table_honours_from_and_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let offsets = generate(dir.path());
    let out = inspect(dir.path())
        .args([
            "dump",
            "--from",
            &(offsets[2] + 1).to_string(),
            "--limit",
            "2",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).expect("utf8");
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].contains(&offsets[3].to_string()));
    assert!(rows[0].contains("created -> paid"));
}

#[test]
fn verify_passes_a_clean_wal_and_names_the_first_fault_of_a_corrupt_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    generate(dir.path());
    inspect(dir.path())
        .arg("verify")
        .assert()
        .success()
        .stdout(predicate::str::contains("6 records"));
    flip_byte(&wal_dir(dir.path()).join("0000000000000001.wal"), 60);
    inspect(dir.path())
        .arg("verify")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("0000000000000001.wal"))
        .stderr(predicate::str::contains("offset 1099511627776"))
        .stderr(predicate::str::contains("expected sequence 1"))
        .stderr(predicate::str::contains("wal-inspect repair"));
}

#[test]
fn repair_is_a_dry_run_until_yes_and_then_keeps_the_cut_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    generate(dir.path());
    let wal = wal_dir(dir.path());
    let first = wal.join("0000000000000002.wal");
    let before = std::fs::read(&first).expect("read");
    // Sequence 4 (the second record of segment 2) gets a flipped payload byte.
    let record_len = before.len() / 2;
    flip_byte(&first, record_len + 60);
    let damaged = std::fs::read(&first).expect("read");

    inspect(dir.path())
        .arg("repair")
        .assert()
        .success()
        .stdout(predicate::str::contains("would cut"))
        .stdout(predicate::str::contains(
            "would set aside 0000000000000003.wal",
        ));
    assert_eq!(
        std::fs::read(&first).expect("read"),
        damaged,
        "dry run changed the file"
    );

    inspect(dir.path())
        .args(["repair", "--yes"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read(&first).expect("read"),
        damaged[..record_len].to_vec()
    );
    let aside = std::fs::read(wal.join("0000000000000002.wal.corrupt")).expect("aside");
    assert_eq!(aside, damaged[record_len..].to_vec());
    assert!(wal.join("0000000000000003.wal.corrupt").exists());
    inspect(dir.path())
        .arg("verify")
        .assert()
        .success()
        .stdout(predicate::str::contains("3 records"));
}

#[test]
fn every_command_refuses_a_locked_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    generate(dir.path());
    let _server = DataDirLock::acquire(dir.path()).expect("lock");
    for command in ["list", "dump", "verify", "repair"] {
        inspect(dir.path())
            .arg(command)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("locked by another process"));
    }
}

#[test]
fn dump_shows_a_cluster_nodes_raft_entries_by_term_and_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage: Arc<dyn Storage> =
        Arc::new(DirStorage::open(wal_dir(dir.path())).expect("storage"));
    let (wal, _) = Wal::open(storage, WalConfig::default(), None, &mut |_| Ok(())).expect("open");
    let header = br#"{"term":3,"leader":1,"index":17,"payload":"normal","records":1,"origin":9}"#;
    let data =
        br#"{"type":"create_instance","instance_id":"order-9","machine":"order","version":1}"#;
    wal.append_unit(&[
        NewRecord {
            kind: rstmdb::engine::RAFT_ENTRY_KIND,
            timestamp_ms: 1,
            payload: header,
        },
        NewRecord {
            kind: 2,
            timestamp_ms: 1,
            payload: data,
        },
    ])
    .expect("append");
    wal.shutdown().expect("shutdown");
    drop(wal);

    let out = inspect(dir.path())
        .arg("dump")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).expect("utf8");
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows[0].contains("raft_normal") && rows[0].contains("term 3 index 17, 1 records"),
        "{}",
        rows[0]
    );
    assert!(rows[1].contains("order-9"), "{}", rows[1]);
}
