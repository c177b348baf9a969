//! COMPACT's checkpoints (spec §4.19): encoded from the live state, they hold every record even
//! when the newest checkpoint file is damaged; a FLUSH_ALL during the encoding starts it again;
//! deleted instances are gone after a compaction and after the restart that follows it (§6.4).

use rstmdb::database::{Database, DatabaseOptions};
use rstmdb::engine::{Command, CreateInstance, DeleteInstance, EngineConfig, InstanceIdChoice};
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

fn delete(id: &str) -> Command {
    Command::DeleteInstance(DeleteInstance {
        instance_id: id.into(),
        idempotency_key: None,
    })
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

/// Before checkpoints were encoded from the live state, this case had to be refused: a rebuild
/// from the older checkpoint would have missed the records of the deleted segments. The live
/// state holds them all, so the checkpoint is written, and it is complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_newest_checkpoint_does_not_stop_compaction_and_nothing_is_missed() {
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

    let third = db
        .compact(false)
        .await
        .expect("COMPACT from the live state");
    assert_eq!(third.snapshots_created, 1);
    close(db).await;
    let (db, report) = Database::open(options(dir.path(), 4096)).unwrap();
    assert_eq!(
        report.instances, 130,
        "every instance, the deleted segments' too"
    );
    for id in ["a000", "b030", "c009"] {
        db.get_instance(id.into()).await.expect(id);
    }
    close(db).await;
}

/// A FLUSH_ALL that lands while COMPACT encodes its cut cancels the cut, and a new cut starts
/// after it. Either way the checkpoint holds the state as of its bound: a restart shows what
/// the live server showed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_all_racing_a_compaction_leaves_a_checkpoint_that_restarts_to_the_live_state() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        allow_flush_all: true,
        ..EngineConfig::default()
    };
    let open = || {
        let mut options = options(dir.path(), 1 << 20);
        options.engine = config.clone();
        Database::open(options).unwrap().0
    };
    let db = std::sync::Arc::new(open());
    for round in 0..3 {
        put_order_machine(&db).await;
        create_all(&db, &format!("r{round}-"), 300).await;
        let compaction = {
            let db = std::sync::Arc::clone(&db);
            tokio::spawn(async move { db.compact(false).await })
        };
        db.write(Command::FlushAll).await.expect("FLUSH_ALL");
        compaction.await.unwrap().expect("COMPACT");
    }
    put_order_machine(&db).await;
    create_all(&db, "after-", 5).await;
    db.compact(false).await.expect("COMPACT");
    let db = std::sync::Arc::into_inner(db).unwrap();
    close(db).await;
    let db = open();
    for id in ["after-000", "after-004"] {
        db.get_instance(id.into()).await.expect(id);
    }
    assert_eq!(
        db.get_instance("r2-000".into()).await.unwrap_err().code,
        ErrorCode::InstanceNotFound,
        "flushed"
    );
    close(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_after_a_damaged_checkpoint_covers_everything_so_a_restart_replays_nothing() {
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

    let third = db.compact(false).await.expect("COMPACT");
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

/// What a deleted instance answers to a second DELETE_INSTANCE: nothing to do while its
/// deletion is known (or its id is a tombstone), INSTANCE_NOT_FOUND once a checkpoint has
/// dropped it for good (§6.4).
async fn deleted_again(db: &Database, id: &str) -> Result<(), ErrorCode> {
    db.write(delete(id))
        .await
        .map(|_| ())
        .map_err(|err| err.code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_instances_are_gone_after_compaction_and_after_the_restart() {
    for allow_instance_recreate in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            let mut options = options(dir.path(), 4096);
            options.engine = EngineConfig {
                allow_instance_recreate,
                ..EngineConfig::default()
            };
            Database::open(options).unwrap()
        };
        let (db, _) = open();
        put_order_machine(&db).await;
        create_all(&db, "i", 40).await;
        for id in ["i001", "i003", "i020"] {
            db.write(delete(id)).await.expect("delete");
        }
        if allow_instance_recreate {
            // Deleted, then created again: live, and must stay.
            create(&db, "i003").await;
        }
        let compacted = db.compact(false).await.expect("COMPACT");
        assert_eq!(compacted.snapshots_created, 1);
        // Deleted after the checkpoint's bound: still known until the next compaction.
        db.write(delete("i030")).await.expect("delete after");

        // Without re-creation a dropped id stays as a tombstone, which answers as a deleted
        // instance does.
        let dropped = if allow_instance_recreate {
            Err(ErrorCode::InstanceNotFound)
        } else {
            Ok(())
        };
        for (id, expect) in [
            ("i001", dropped.clone()),
            ("i020", dropped.clone()),
            ("i030", Ok(())),
        ] {
            assert_eq!(
                deleted_again(&db, id).await,
                expect,
                "{id}, recreate {allow_instance_recreate}"
            );
        }
        let recreated = create_again(&db, "i001").await;
        assert_eq!(
            recreated.is_ok(),
            allow_instance_recreate,
            "a dropped id is reserved as a tombstone unless re-creation is allowed: {recreated:?}"
        );
        if allow_instance_recreate {
            let live = db
                .get_instance("i003".into())
                .await
                .expect("re-created i003");
            assert_eq!(live.state, "created");
        }
        close(db).await;

        let (db, report) = open();
        // 40 created, 4 deleted; with re-creation i003 and i001 came back.
        let live_expected = if allow_instance_recreate { 38 } else { 36 };
        assert_eq!(
            report.instances, live_expected,
            "recreate {allow_instance_recreate}"
        );
        assert_eq!(deleted_again(&db, "i020").await, dropped.clone());
        assert_eq!(
            deleted_again(&db, "i030").await,
            Ok(()),
            "deleted after the checkpoint: replayed as deleted"
        );
        db.compact(false).await.expect("COMPACT after the restart");
        assert_eq!(
            deleted_again(&db, "i030").await,
            dropped,
            "dropped by the compaction after the restart"
        );
        assert_eq!(
            create_again(&db, "i030").await.is_ok(),
            allow_instance_recreate
        );
        close(db).await;
    }
}

async fn create_again(db: &Database, id: &str) -> Result<(), ErrorCode> {
    db.write(Command::CreateInstance(CreateInstance {
        machine: "order".into(),
        version: 1,
        instance_id: InstanceIdChoice::Given(id.into()),
        initial_ctx: None,
        idempotency_key: None,
    }))
    .await
    .map(|_| ())
    .map_err(|err| err.code)
}
