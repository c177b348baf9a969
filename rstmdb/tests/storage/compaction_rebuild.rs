//! The off-path checkpoint rebuild behind COMPACT (spec §4.19): it starts from the checkpoint the
//! live state came from, or from an older one only when every record after it is still in the
//! WAL, and refuses to write a checkpoint that would miss records.

use rstmdb::database::{Database, DatabaseOptions};
use rstmdb::engine::{Command, CreateInstance, InstanceIdChoice};
use rstmdb::wal::{FsyncPolicy, WalConfig};
use rstmdb_client::ErrorCode;
use serde_json::json;
use std::path::{Path, PathBuf};

fn options(dir: &Path, segment_size_bytes: u64) -> DatabaseOptions {
    DatabaseOptions::new(
        dir,
        WalConfig {
            segment_size_bytes,
            fsync_policy: FsyncPolicy::Never,
        },
    )
}

async fn close(db: Database) {
    tokio::task::spawn_blocking(move || db.shutdown().expect("shutdown"))
        .await
        .expect("join");
}

async fn put_order_machine(db: &Database) {
    db.write(Command::PutMachine(rstmdb::engine::PutMachine {
        machine: "order".into(),
        version: 1,
        definition: rstmdb_testkit::machines::order_definition(),
    }))
    .await
    .expect("PUT_MACHINE");
}

async fn create(db: &Database, id: &str) {
    db.write(Command::CreateInstance(CreateInstance {
        machine: "order".into(),
        version: 1,
        instance_id: InstanceIdChoice::Given(id.into()),
        initial_ctx: json!({"pad": "x".repeat(120)}).as_object().cloned(),
        idempotency_key: None,
    }))
    .await
    .unwrap_or_else(|err| panic!("create {id}: {err}"));
}

async fn create_all(db: &Database, prefix: &str, count: usize) {
    for n in 0..count {
        create(db, &format!("{prefix}{n:03}")).await;
    }
}

/// Checkpoint files, oldest first.
fn checkpoint_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("checkpoints"))
        .expect("checkpoint dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "ckpt"))
        .collect();
    files.sort();
    files
}

/// Flips the last payload byte: the file stays readable but fails its payload CRC, so loading
/// passes over it (checkpoint-format.md §1.4).
fn damage(checkpoint: &Path) {
    let mut bytes = std::fs::read(checkpoint).expect("read checkpoint");
    let last = bytes.last_mut().expect("non-empty");
    *last ^= 0xff;
    std::fs::write(checkpoint, bytes).expect("write checkpoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_refuses_to_rebuild_across_segments_an_older_checkpoint_does_not_cover() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = Database::open(options(dir.path(), 4096)).unwrap();
    put_order_machine(&db).await;
    create_all(&db, "a", 60).await;
    db.compact(false).await.expect("first COMPACT");
    create_all(&db, "b", 60).await;
    let second = db.compact(false).await.expect("second COMPACT");
    assert!(second.segments_deleted > 0, "{second:?}");
    create_all(&db, "c", 10).await;
    let files = checkpoint_files(dir.path());
    assert_eq!(files.len(), 2, "the newest and the previous: {files:?}");
    // The checkpoint the live state came from becomes unreadable; the previous one is valid,
    // but the segments between the two were deleted by the second compaction.
    damage(&files[1]);

    let refused = db
        .compact(false)
        .await
        .expect_err("a rebuild from the older checkpoint misses the deleted segments");
    assert_eq!(refused.code, ErrorCode::InternalError, "{refused:?}");
    assert!(
        refused.message.contains("would miss records"),
        "{}",
        refused.message
    );
    assert!(
        refused
            .message
            .contains(&*files[1].file_name().unwrap().to_string_lossy()),
        "names the checkpoint the live state came from: {}",
        refused.message
    );
    assert_eq!(
        checkpoint_files(dir.path()),
        files,
        "no checkpoint written, none removed"
    );
    let b = db
        .get_instance("b030".into())
        .await
        .expect("live state intact");
    assert_eq!(b.state, "created");
    close(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_rebuilds_from_an_older_checkpoint_whose_records_are_all_retained() {
    let dir = tempfile::tempdir().unwrap();
    // One large segment: compaction deletes no segment, so the older checkpoint still has
    // every record after it.
    let (db, _) = Database::open(options(dir.path(), 64 << 20)).unwrap();
    put_order_machine(&db).await;
    create_all(&db, "a", 20).await;
    db.compact(false).await.expect("first COMPACT");
    create_all(&db, "b", 20).await;
    db.compact(false).await.expect("second COMPACT");
    create_all(&db, "c", 5).await;
    let files = checkpoint_files(dir.path());
    damage(&files[1]);

    let third = db.compact(false).await.expect("rebuilt from the older one");
    assert_eq!(third.snapshots_created, 1);
    close(db).await;
    let (db, report) = Database::open(options(dir.path(), 64 << 20)).unwrap();
    assert_eq!(
        report.records_replayed, 0,
        "the new checkpoint covers it all"
    );
    assert_eq!(report.instances, 45);
    for id in ["a000", "b019", "c004"] {
        db.get_instance(id.into()).await.expect(id);
    }
    close(db).await;
}
