//! The files of a data directory: created for their owner only, inspected without being
//! opened for writing, and never written through a symbolic link.

use crate::wal_inspect_cli::generate;
use assert_cmd::Command;
use rstmdb::checkpoint::{
    CHECKPOINT_DIR, CheckpointMeta, CheckpointStore, INDEX_FILE, InstanceSnapshot, SNAPSHOT_DIR,
    SnapshotStore,
};
use rstmdb::wal::{DataDirLock, wal_dir};
use rstmdb_testkit::binary::says;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

fn rstmdb() -> Command {
    Command::cargo_bin("rstmdb").expect("binary")
}

/// Every directory and file under `root` (itself included), with its permission bits.
fn modes(root: &Path) -> Vec<(PathBuf, bool, u32)> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("metadata");
        found.push((
            path.clone(),
            meta.is_dir(),
            meta.permissions().mode() & 0o777,
        ));
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read dir") {
                pending.push(entry.expect("entry").path());
            }
        }
    }
    found
}

/// A data directory with a WAL of six records, a checkpoint and an instance snapshot, and the
/// LOCK file a stopped server leaves.
fn populated_data_dir(data: &Path) {
    generate(data);
    CheckpointStore::open(data)
        .expect("checkpoints")
        .write(
            CheckpointMeta {
                checkpoint_offset: 1 << 40,
                last_sequence: 0,
                created_at_ms: 1_767_225_600_000,
            },
            b"state",
        )
        .expect("checkpoint");
    SnapshotStore::open(data)
        .expect("snapshots")
        .write(&InstanceSnapshot {
            snapshot_id: "snap-0001".to_owned(),
            instance_id: "order-1".to_owned(),
            machine: "order".to_owned(),
            version: 1,
            state: "paid".to_owned(),
            ctx: serde_json::json!({"amount": 42.5}),
            wal_offset: 1 << 40,
            created_at: 1_767_225_607_500,
        })
        .expect("snapshot");
    drop(DataDirLock::acquire(data).expect("lock"));
}

#[test]
fn a_new_data_directory_and_its_files_are_private_to_their_owner() {
    let temp = tempfile::tempdir().expect("temp dir");
    // A directory the test made: the WAL, the checkpoints and every file come from rstmdb.
    let data = temp.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    // The common umask 022 would leave group and others read access to anything created 0755
    // or 0644; what rstmdb creates must still be owner-only.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"umask 022 && exec "$0" snapshot create --data-dir "$1""#)
        .arg(assert_cmd::cargo::cargo_bin("rstmdb"))
        .arg(&data)
        .status()
        .expect("run snapshot create");
    assert!(status.success(), "snapshot create failed: {status}");

    let created = modes(&data);
    let names: Vec<String> = created
        .iter()
        .map(|(path, _, _)| {
            path.strip_prefix(&data)
                .expect("inside")
                .display()
                .to_string()
        })
        .collect();
    for expected in ["LOCK", "wal", CHECKPOINT_DIR] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    assert!(names.iter().any(|n| n.ends_with(".ckpt")), "{names:?}");
    for (path, is_dir, mode) in created.iter().filter(|(path, _, _)| *path != data) {
        let expected = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(*mode, expected, "{} is {mode:o}", path.display());
    }

    // A data directory that does not exist yet is created owner-only, parents included,
    // whatever the umask of this test process.
    let fresh = temp.path().join("a/b/data");
    populated_data_dir(&fresh);
    for (path, _, mode) in modes(&temp.path().join("a")) {
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
    }
}

/// Bytes and modification time of every file under `root`.
fn contents(root: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    modes(root)
        .into_iter()
        .filter(|(_, is_dir, _)| !is_dir)
        .map(|(path, _, _)| {
            let bytes = std::fs::read(&path).expect("read");
            let modified = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .expect("mtime");
            (path, (bytes, modified))
        })
        .collect()
}

/// Runs `args` so that it cannot write to `data`: as this user when it is not root, the files
/// being 0400 and the directories 0500; as root (whom permission bits do not stop), as user
/// `nobody` through `setpriv`, the files then owned by root.
fn read_only_run(data: &Path, args: &[&str]) -> std::process::Output {
    let binary = assert_cmd::cargo::cargo_bin("rstmdb");
    let mut command = if is_root() {
        let mut command = std::process::Command::new("setpriv");
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&binary);
        command
    } else {
        std::process::Command::new(&binary)
    };
    command
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("run the inspection")
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

fn make_read_only(root: &Path) {
    // Deepest first, so a directory loses its write bit after its contents are done.
    let mut all = modes(root);
    all.reverse();
    let (dir_mode, file_mode) = if is_root() {
        (0o555, 0o444)
    } else {
        (0o500, 0o400)
    };
    for (path, is_dir, _) in all {
        let mode = if is_dir { dir_mode } else { file_mode };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
}

#[test]
fn inspection_works_on_a_read_only_copy_and_changes_nothing() {
    if is_root() && which("setpriv").is_none() {
        eprintln!("SKIPPED: running as root without setpriv, nothing here can enforce read-only");
        return;
    }
    let temp = tempfile::tempdir().expect("temp dir");
    let data = temp.path().join("data");
    populated_data_dir(&data);
    make_read_only(&data);
    // `nobody` must reach the copy.
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let before = contents(&data);

    let mut outputs = Vec::new();
    for args in [
        &["wal-inspect", "list"][..],
        &["wal-inspect", "dump"],
        &["wal-inspect", "verify"],
        &["wal-inspect", "repair"],
        &["snapshot", "list"],
        &["snapshot", "inspect", "snap-0001"],
        &["snapshot", "verify"],
    ] {
        let output = read_only_run(&data, args);
        assert!(
            output.status.success(),
            "{args:?} failed on a read-only copy: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        outputs.push(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    assert!(outputs[1].contains("order-2"), "dump: {}", outputs[1]);
    assert!(
        outputs[2].contains("ok: 3 segments, 6 records"),
        "verify: {}",
        outputs[2]
    );
    assert!(
        outputs[3].contains("nothing to repair"),
        "repair: {}",
        outputs[3]
    );
    assert_eq!(contents(&data), before, "an inspection changed a file");
    // The temp dir is removed by this (root or owner) process; restore write bits for it.
    make_writable(&data);
}

fn make_writable(root: &Path) {
    for (path, is_dir, _) in modes(root) {
        let mode = if is_dir { 0o700 } else { 0o600 };
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode));
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// Replaces `path` by a symlink to a copy of it outside the data directory; returns the copy.
fn symlink_elsewhere(path: &Path, elsewhere: &Path) -> PathBuf {
    let target = elsewhere.join(path.file_name().expect("file name"));
    std::fs::rename(path, &target).expect("move the file out");
    std::os::unix::fs::symlink(&target, path).expect("symlink");
    target
}

#[test]
fn a_symlinked_segment_is_refused_by_repair_and_start_up_and_left_untouched() {
    let temp = tempfile::tempdir().expect("temp dir");
    let data = temp.path().join("data");
    let elsewhere = temp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    generate(&data);
    let segment = wal_dir(&data).join("0000000000000001.wal");
    // A corrupt record in the linked segment: repair would truncate the link's target.
    let mut bytes = std::fs::read(&segment).expect("read");
    bytes[50] ^= 0x01;
    std::fs::write(&segment, &bytes).expect("write");
    let target = symlink_elsewhere(&segment, &elsewhere);
    let message = format!("{} is a symbolic link", segment.display());

    let repair = rstmdb()
        .args(["wal-inspect", "repair", "--yes", "--data-dir"])
        .arg(&data)
        .output()
        .expect("run repair");
    let stderr = String::from_utf8_lossy(&repair.stderr);
    assert_eq!(repair.status.code(), Some(1), "{stderr}");
    assert!(says(&stderr, &message), "{stderr}");
    let serve = rstmdb()
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("RSTMDB_METRICS_ENABLED", "false")
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("run serve");
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert!(
        !serve.status.success(),
        "serve started over a symlinked segment"
    );
    assert!(says(&stderr, &message), "{stderr}");

    assert_eq!(std::fs::read(&target).expect("read target"), bytes);
    let wal_files: Vec<String> = std::fs::read_dir(wal_dir(&data))
        .expect("read wal dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !wal_files.iter().any(|name| name.ends_with(".corrupt")),
        "repair wrote {wal_files:?}"
    );
}

#[test]
fn a_symlinked_snapshot_index_is_refused_and_its_target_untouched() {
    let temp = tempfile::tempdir().expect("temp dir");
    let data = temp.path().join("data");
    let elsewhere = temp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    populated_data_dir(&data);
    let index = data.join(SNAPSHOT_DIR).join(INDEX_FILE);
    // A torn tail, which opening the store for writing cuts.
    let mut bytes = std::fs::read(&index).expect("read");
    bytes.extend_from_slice(b"{\"snapshot_id\":");
    std::fs::write(&index, &bytes).expect("write");
    let target = symlink_elsewhere(&index, &elsewhere);

    let err = SnapshotStore::open(&data).expect_err("a symlinked index is refused");
    assert!(
        err.to_string()
            .contains(&format!("{} is a symbolic link", index.display())),
        "{err}"
    );
    assert_eq!(std::fs::read(&target).expect("read target"), bytes);
}
