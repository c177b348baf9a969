//! `rstmdb snapshot list|inspect|verify|create` against real data directories: output and exit
//! codes (0 all valid, 1 a fault or nothing found, 2 cannot run).

use assert_cmd::Command;
use predicates::prelude::*;
use rstmdb::checkpoint::{
    CHECKPOINT_DIR, CheckpointInfo, CheckpointMeta, CheckpointStore, HEADER_LEN, InstanceSnapshot,
    SNAPSHOT_DIR, SnapshotStore,
};
use serde_json::json;
use std::fs;
use std::path::Path;

const OFFSET: u64 = (3 << 40) + 774;

/// A data directory with two checkpoints and one instance snapshot, all valid.
struct Fixture {
    data: tempfile::TempDir,
    older: CheckpointInfo,
    newest: CheckpointInfo,
}

fn fixture() -> Fixture {
    let data = tempfile::tempdir().expect("tempdir");
    let checkpoints = CheckpointStore::open(data.path()).expect("open");
    let older = checkpoints
        .write(meta(1 << 40, 0), b"older state")
        .expect("write");
    let newest = checkpoints
        .write(meta(OFFSET, 41), b"newest state")
        .expect("write");
    let snapshots = SnapshotStore::open(data.path()).expect("open");
    snapshots
        .write(&InstanceSnapshot {
            snapshot_id: "snap-0001".to_owned(),
            instance_id: "order-1".to_owned(),
            machine: "order".to_owned(),
            version: 3,
            state: "paid".to_owned(),
            ctx: json!({"amount": 42.5}),
            wal_offset: (1 << 40) + 557,
            created_at: 1_767_225_607_500,
        })
        .expect("write");
    Fixture {
        data,
        older,
        newest,
    }
}

fn meta(checkpoint_offset: u64, last_sequence: u64) -> CheckpointMeta {
    CheckpointMeta {
        checkpoint_offset,
        last_sequence,
        created_at_ms: 1_767_225_600_000,
    }
}

fn snapshot_cmd(data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("rstmdb").expect("binary");
    cmd.arg("snapshot").arg("--data-dir").arg(data).args(args);
    cmd
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = fs::read(path).expect("read");
    bytes[at] ^= 0x01;
    fs::write(path, bytes).expect("write");
}

#[test]
fn list_shows_checkpoints_and_instance_snapshots_with_their_validity() {
    let f = fixture();
    flip_byte(
        &f.data.path().join(CHECKPOINT_DIR).join(&f.older.file_name),
        HEADER_LEN + 1,
    );
    snapshot_cmd(f.data.path(), &["list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("checkpoints (2):"))
        .stdout(predicate::str::contains(&f.newest.file_name))
        .stdout(predicate::str::contains(OFFSET.to_string()))
        .stdout(predicate::str::contains("2026-01-01T00:00:00.000Z"))
        .stdout(predicate::str::is_match(r"INVALID +checkpoint-0000010000000000-").expect("regex"))
        .stdout(predicate::str::is_match(r"valid +checkpoint-0000030000000306-").expect("regex"))
        .stdout(predicate::str::contains("instance snapshots (1):"))
        .stdout(
            predicate::str::is_match(
                r"snap-0001 +order-1 +1099511628333 .*2026-01-01T00:00:07.500Z +valid",
            )
            .expect("regex"),
        );
}

#[test]
fn inspect_a_checkpoint_by_offset_shows_its_header_fields() {
    let f = fixture();
    snapshot_cmd(f.data.path(), &["inspect", &OFFSET.to_string()])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "checkpoint {}",
            f.newest.file_name
        )))
        .stdout(predicate::str::contains(
            "(segment 3, byte 774; exclusive bound)",
        ))
        .stdout(predicate::str::is_match(r"last_sequence: +41").expect("regex"))
        .stdout(predicate::str::is_match(r"payload: +12 bytes").expect("regex"))
        .stdout(predicate::str::contains(format!(
            "{:08x}",
            f.newest.payload_crc32c
        )))
        .stdout(predicate::str::contains(
            "valid (header and payload CRC match)",
        ));
}

#[test]
fn inspect_a_corrupt_checkpoint_by_file_name_reports_the_crc_mismatch_and_fails() {
    let f = fixture();
    flip_byte(
        &f.data.path().join(CHECKPOINT_DIR).join(&f.newest.file_name),
        HEADER_LEN,
    );
    snapshot_cmd(f.data.path(), &["inspect", &f.newest.file_name])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("INVALID: payload CRC mismatch"));
}

#[test]
fn inspect_an_instance_snapshot_shows_its_json_summary() {
    let f = fixture();
    snapshot_cmd(f.data.path(), &["inspect", "snap-0001"])
        .assert()
        .success()
        .stdout(predicate::str::contains("instance snapshot snap-0001"))
        .stdout(predicate::str::is_match(r"instance_id: +order-1").expect("regex"))
        .stdout(predicate::str::is_match(r"machine: +order v3").expect("regex"))
        .stdout(predicate::str::is_match(r"state: +paid").expect("regex"))
        .stdout(predicate::str::contains(r#"{"amount":42.5}"#))
        .stdout(predicate::str::is_match(r"index: +matches").expect("regex"));
}

#[test]
fn inspect_of_an_unknown_id_fails_with_a_hint() {
    let f = fixture();
    for id in ["snap-nope", "12345", "../../etc/passwd"] {
        snapshot_cmd(f.data.path(), &["inspect", id])
            .assert()
            .code(1)
            .stderr(predicate::str::contains(
                "no checkpoint or instance snapshot matches",
            ));
    }
}

#[test]
fn verify_passes_on_a_healthy_data_directory() {
    let f = fixture();
    snapshot_cmd(f.data.path(), &["verify"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "checked 2 checkpoint(s) and 1 instance snapshot(s): 0 fault(s)",
        ))
        .stderr(predicate::str::is_empty());
}

#[test]
fn verify_names_each_fault_and_exits_1() {
    let f = fixture();
    flip_byte(
        &f.data.path().join(CHECKPOINT_DIR).join(&f.older.file_name),
        HEADER_LEN + 2,
    );
    flip_byte(&f.data.path().join(SNAPSHOT_DIR).join("snap-0001.json"), 30);
    snapshot_cmd(f.data.path(), &["verify"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "fault: checkpoints/{}: payload CRC mismatch",
            f.older.file_name
        )))
        .stderr(predicate::str::contains(
            "fault: snapshots/snap-0001: checksum mismatch",
        ))
        .stdout(predicate::str::contains(format!(
            "ok     checkpoints/{}",
            f.newest.file_name
        )))
        .stdout(predicate::str::contains("2 fault(s)"));
}

#[test]
fn verify_reports_a_missing_snapshot_file() {
    let f = fixture();
    fs::remove_file(f.data.path().join(SNAPSHOT_DIR).join("snap-0001.json")).expect("remove");
    snapshot_cmd(f.data.path(), &["verify"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "fault: snapshots/snap-0001: indexed, but its file is missing",
        ));
}

#[test]
fn an_empty_data_directory_lists_nothing_and_verifies_clean() {
    let data = tempfile::tempdir().expect("tempdir");
    snapshot_cmd(data.path(), &["list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("checkpoints (0):"))
        .stdout(predicate::str::contains("instance snapshots (0):"));
    snapshot_cmd(data.path(), &["verify"]).assert().success();
    assert!(
        !data.path().join(CHECKPOINT_DIR).exists(),
        "offline tools create nothing"
    );
}

#[test]
fn a_missing_data_directory_exits_2() {
    let data = tempfile::tempdir().expect("tempdir");
    snapshot_cmd(&data.path().join("nope"), &["verify"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not exist"));
}

/// A stopped server's data directory: one machine, three instances, one deleted.
fn stopped_server_data_dir() -> tempfile::TempDir {
    use rstmdb::database::{Database, DatabaseOptions};
    use rstmdb::engine::{
        Command as Cmd, CreateInstance, DeleteInstance, InstanceIdChoice, PutMachine,
    };
    use rstmdb::wal::WalConfig;
    let data = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (db, _) =
        Database::open(DatabaseOptions::new(data.path(), WalConfig::default())).expect("open");
    runtime.block_on(async {
        db.write(Cmd::PutMachine(PutMachine {
            machine: "m".into(),
            version: 1,
            definition: json!({"states":["a"],"initial":"a","transitions":[]}),
        }))
        .await
        .expect("put");
        for id in ["x", "y", "z"] {
            db.write(Cmd::CreateInstance(CreateInstance {
                machine: "m".into(),
                version: 1,
                instance_id: InstanceIdChoice::Given(id.into()),
                initial_ctx: None,
                idempotency_key: None,
            }))
            .await
            .expect("create");
        }
        db.write(Cmd::DeleteInstance(DeleteInstance {
            instance_id: "z".into(),
            idempotency_key: None,
        }))
        .await
        .expect("delete");
    });
    db.shutdown().expect("shutdown");
    data
}

#[test]
fn create_writes_a_checkpoint_that_the_next_start_loads_instead_of_replaying() {
    use rstmdb::database::{Database, DatabaseOptions};
    use rstmdb::wal::WalConfig;
    let data = stopped_server_data_dir();
    snapshot_cmd(data.path(), &["create"])
        .assert()
        .success()
        .stdout(predicate::str::contains("2 instances, 5 records replayed"));
    let store = CheckpointStore::open_read_only(data.path());
    assert_eq!(store.count().expect("count"), 1);
    snapshot_cmd(data.path(), &["verify"]).assert().success();

    let (db, report) =
        Database::open(DatabaseOptions::new(data.path(), WalConfig::default())).expect("reopen");
    assert!(report.checkpoint.is_some());
    assert_eq!(
        report.records_replayed, 0,
        "everything is in the checkpoint"
    );
    assert_eq!(report.instances, 2);
    db.shutdown().expect("shutdown");
}

#[test]
fn create_refuses_the_data_directory_of_a_running_server() {
    use rstmdb::database::{Database, DatabaseOptions};
    use rstmdb::wal::WalConfig;
    let data = stopped_server_data_dir();
    let (running, _) =
        Database::open(DatabaseOptions::new(data.path(), WalConfig::default())).expect("open");
    snapshot_cmd(data.path(), &["create"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(data.path().display().to_string()));
    running.shutdown().expect("shutdown");
}
