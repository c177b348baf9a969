//! The commit pipeline end to end on real files: writes are acknowledged with their offsets,
//! reads and WAL_READ see exactly what was committed, atomic batches are one unit or nothing,
//! group commit shares fsyncs, and a restart (with or without a checkpoint) restores the state.

use rstmdb::database::{BatchItem, Database, DatabaseOptions};
use rstmdb::engine::{
    ApplyEvent, Command, CreateInstance, DeleteInstance, InstanceIdChoice, OpResult, PutMachine,
};
use rstmdb::wal::{FsyncPolicy, WalConfig};
use rstmdb_client::params::BatchMode;
use rstmdb_client::{ErrorCode, Op};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

fn options(dir: &Path, fsync_policy: FsyncPolicy) -> DatabaseOptions {
    DatabaseOptions::new(
        dir,
        WalConfig {
            fsync_policy,
            ..WalConfig::default()
        },
    )
}

fn open(dir: &Path, policy: FsyncPolicy) -> Database {
    Database::open(options(dir, policy)).expect("open").0
}

/// Shuts down off the async runtime, as the server does.
async fn close(db: Database) {
    tokio::task::spawn_blocking(move || db.shutdown().expect("shutdown"))
        .await
        .expect("join");
}

fn order_machine() -> Command {
    Command::PutMachine(PutMachine {
        machine: "order".into(),
        version: 1,
        definition: rstmdb_testkit::machines::order_definition(),
    })
}

fn create(id: &str, ctx: Value) -> Command {
    Command::CreateInstance(CreateInstance {
        machine: "order".into(),
        version: 1,
        instance_id: InstanceIdChoice::Given(id.into()),
        initial_ctx: ctx.as_object().cloned(),
        idempotency_key: None,
    })
}

fn apply(id: &str, event: &str, payload: Value) -> Command {
    Command::ApplyEvent(ApplyEvent {
        instance_id: id.into(),
        event: event.into(),
        payload: payload.as_object().cloned(),
        ..ApplyEvent::default()
    })
}

fn result_json(result: &OpResult) -> Value {
    serde_json::to_value(result).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_get_offsets_in_log_order_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), FsyncPolicy::EveryWrite);
    let put = db.write(order_machine()).await.unwrap();
    assert_eq!(
        put.wal_offset,
        Some(1 << 40),
        "first record of a fresh database"
    );
    assert_eq!(result_json(&put.result)["stored_checksum"], "eef67bea");

    let created = db
        .write(create("order-1", json!({"customer":"alice"})))
        .await
        .unwrap();
    let paid = db
        .write(apply("order-1", "PAY", json!({"amount":42.5,"ready":true})))
        .await
        .unwrap();
    let paid_json = result_json(&paid.result);
    assert_eq!(paid_json["to_state"], "paid");
    assert_eq!(
        paid_json["ctx"],
        json!({"customer":"alice","amount":42.5,"ready":true})
    );
    assert!(created.wal_offset < paid.wal_offset);

    let view = db.get_instance("order-1".into()).await.unwrap();
    assert_eq!(view.state, "paid");
    assert_eq!(Some(view.last_wal_offset), paid.wal_offset);

    let read = db.wal_read(0, 10).await.unwrap();
    let types: Vec<&str> = read
        .records
        .iter()
        .map(|r| r.entry["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["put_machine", "create_instance", "apply_event"]);
    assert_eq!(
        read.records.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(read.next_offset, Some(paid.wal_offset.unwrap() + 1));
    let stats = db.wal_stats().await.unwrap();
    assert_eq!(stats.entry_count, 3);
    assert_eq!(stats.durable_offset, stats.latest_offset);
    close(db).await;

    let (db, report) = Database::open(options(dir.path(), FsyncPolicy::EveryWrite)).unwrap();
    assert_eq!(report.records_replayed, 3);
    assert_eq!(report.instances, 1);
    let again = db.get_instance("order-1".into()).await.unwrap();
    assert_eq!(
        serde_json::to_value(&again).unwrap(),
        serde_json::to_value(&view).unwrap()
    );
    // Sequences and offsets continue after the restart.
    let shipped = db
        .write(apply("order-1", "SHIP", json!(null)))
        .await
        .unwrap();
    assert_eq!(result_json(&shipped.result)["to_state"], "shipped");
    assert_eq!(db.wal_stats().await.unwrap().entry_count, 4);
    close(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_atomic_batch_writes_nothing_and_a_good_one_is_one_unit() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), FsyncPolicy::EveryWrite);
    db.write(order_machine()).await.unwrap();
    let before = db.wal_stats().await.unwrap();

    // The spec's §4.15 example: the SHIP fails, so order-9 must not exist afterwards.
    let failing = vec![
        BatchItem::Write {
            op: Op::CreateInstance,
            command: create("order-9", json!(null)),
        },
        BatchItem::Write {
            op: Op::ApplyEvent,
            command: apply("order-9", "SHIP", json!(null)),
        },
    ];
    let err = db.batch(BatchMode::Atomic, failing).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidTransition);
    assert_eq!(err.detail("index"), Some(&json!(1)));
    assert_eq!(err.detail("op"), Some(&json!("APPLY_EVENT")));
    assert_eq!(
        db.get_instance("order-9".into()).await.unwrap_err().code,
        ErrorCode::InstanceNotFound
    );
    assert_eq!(
        db.wal_stats().await.unwrap().latest_offset,
        before.latest_offset,
        "nothing written"
    );

    let good = vec![
        BatchItem::Write {
            op: Op::CreateInstance,
            command: create("order-9", json!(null)),
        },
        BatchItem::GetInstance {
            instance_id: "order-9".into(),
        },
        BatchItem::Write {
            op: Op::ApplyEvent,
            command: apply("order-9", "PAY", json!({"ready": true})),
        },
    ];
    let out = db.batch(BatchMode::Atomic, good).await.unwrap();
    let results = serde_json::to_value(&out.results).unwrap();
    assert_eq!(out.results.len(), 3);
    assert_eq!(
        results[1]["result"]["state"], "created",
        "reads see earlier sub-ops"
    );
    assert_eq!(out.records.len(), 2);
    let read = db
        .wal_read(out.first_wal_offset.unwrap(), 10)
        .await
        .unwrap();
    let units: Vec<Value> = read
        .records
        .iter()
        .map(|r| r.entry["unit"].clone())
        .collect();
    assert_eq!(
        units,
        [json!({"index":0,"count":2}), json!({"index":1,"count":2})]
    );
    close(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn best_effort_batch_runs_every_sub_op_and_reports_each() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), FsyncPolicy::Never);
    db.write(order_machine()).await.unwrap();
    let items = vec![
        BatchItem::GetMachine {
            machine: "order".into(),
            version: 1,
        },
        BatchItem::GetInstance {
            instance_id: "zz".into(),
        },
        BatchItem::Write {
            op: Op::CreateInstance,
            command: create("a", json!({})),
        },
    ];
    let out = db.batch(BatchMode::BestEffort, items).await.unwrap();
    let results = serde_json::to_value(&out.results).unwrap();
    assert_eq!(results[0]["result"]["checksum"], "eef67bea");
    assert_eq!(
        out.results[1].error.as_ref().map(|error| &error.code),
        Some(&ErrorCode::InstanceNotFound)
    );
    assert_eq!(results[2]["result"]["state"], "created");
    assert!(out.first_wal_offset.is_some());
    close(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_fsyncs_under_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(open(dir.path(), FsyncPolicy::EveryWrite));
    db.write(order_machine()).await.unwrap();
    let writers = 32;
    let per_writer = 20;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let db = Arc::clone(&db);
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                db.write(create(&format!("w{w}-{i}"), json!({"i": i})))
                    .await
                    .expect("create");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let stats = db.wal_stats().await.unwrap();
    let records = 1 + writers * per_writer;
    assert_eq!(stats.entry_count, records as u64);
    assert!(
        stats.io_stats.fsyncs * 2 < records as u64,
        "group commit: {} fsyncs for {records} records",
        stats.io_stats.fsyncs
    );
    let db = Arc::into_inner(db).unwrap();
    close(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_checkpoints_deletes_old_segments_and_restart_uses_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let small_segments = |policy| DatabaseOptions {
        wal: WalConfig {
            segment_size_bytes: 4096,
            fsync_policy: policy,
        },
        ..options(dir.path(), policy)
    };
    let (db, _) = Database::open(small_segments(FsyncPolicy::Never)).unwrap();
    db.write(order_machine()).await.unwrap();
    for i in 0..100 {
        db.write(create(&format!("i{i:03}"), json!({"n": i})))
            .await
            .unwrap();
    }
    db.write(Command::DeleteInstance(DeleteInstance {
        instance_id: "i000".into(),
        idempotency_key: None,
    }))
    .await
    .unwrap();
    let before = db.wal_stats().await.unwrap();
    assert!(before.segment_count > 3, "small segments rotate");

    let compacted = db.compact(false).await.unwrap();
    assert_eq!(compacted.snapshots_created, 1);
    assert_eq!(compacted.segments_deleted, before.segment_count - 1);
    assert_eq!(compacted.checkpoint_offset, before.latest_offset);
    let after = db.wal_stats().await.unwrap();
    assert_eq!(
        after.total_size_bytes,
        before.total_size_bytes - compacted.bytes_reclaimed
    );
    assert_eq!(
        after.entry_count, before.entry_count,
        "COMPACT writes no record"
    );
    assert_eq!(after.oldest_offset, (before.latest_offset >> 40) << 40);
    // The deleted instance is gone for good once checkpointed (spec §6.4).
    let delete_again = db
        .write(Command::DeleteInstance(DeleteInstance {
            instance_id: "i000".into(),
            idempotency_key: None,
        }))
        .await
        .unwrap_err();
    assert_eq!(delete_again.code, ErrorCode::InstanceNotFound);
    // Nothing new: a second compaction writes no checkpoint.
    assert_eq!(db.compact(false).await.unwrap().snapshots_created, 0);
    db.write(apply("i001", "PAY", json!({"late": true})))
        .await
        .unwrap();
    let view = db.get_instance("i001".into()).await.unwrap();
    close(db).await;

    let (db, report) = Database::open(small_segments(FsyncPolicy::Never)).unwrap();
    assert!(report.checkpoint.is_some());
    assert_eq!(
        report.records_replayed, 1,
        "only the record after the checkpoint"
    );
    assert_eq!(report.instances, 99);
    let again = db.get_instance("i001".into()).await.unwrap();
    assert_eq!(
        serde_json::to_value(&again).unwrap(),
        serde_json::to_value(&view).unwrap()
    );
    close(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), FsyncPolicy::Never);
    let err = Database::open(options(dir.path(), FsyncPolicy::Never)).unwrap_err();
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    close(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_queued_after_a_write_sees_it_even_when_both_are_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), FsyncPolicy::EveryWrite);
    db.write(order_machine()).await.unwrap();
    for i in 0..50 {
        let id = format!("p{i}");
        // Pipelined: the read is issued before the write's answer is awaited (spec §3.7).
        let write = db.write(create(&id, json!({"i": i})));
        let read = db.get_instance(id.clone());
        let stats = db.wal_stats();
        let (written, read, stats) = tokio::join!(write, read, stats);
        let written = written.unwrap();
        let read = read.expect("the read sees the write queued before it");
        assert_eq!(Some(read.last_wal_offset), written.wal_offset);
        assert_eq!(stats.unwrap().entry_count, 2 + i as u64);
    }
    close(db).await;
}

/// A group holding an independent write and an atomic batch, whose append fails part-way: every
/// answer must agree with the WAL and the state (acknowledged ⇔ present), whatever the grouping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_append_takes_back_exactly_the_unacknowledged_writes() {
    use rstmdb::wal::fault::FaultStorage;
    for budget in [50u64, 300, 600, 900, 1200] {
        let dir = tempfile::tempdir().unwrap();
        let storage = FaultStorage::new();
        let options = DatabaseOptions {
            wal_storage: Some(Arc::new(storage.clone())),
            ..options(dir.path(), FsyncPolicy::EveryWrite)
        };
        let (db, _) = Database::open(options.clone()).unwrap();
        db.write(order_machine()).await.unwrap();
        storage.set_write_budget(Some(budget));
        // Queued back to back, so the sequencer usually takes them as one group.
        let single = db.write(create("single", json!({"pad": "x".repeat(200)})));
        let batch = db.batch(
            BatchMode::Atomic,
            vec![
                BatchItem::Write {
                    op: Op::CreateInstance,
                    command: create("unit-a", json!({"pad": "y".repeat(200)})),
                },
                BatchItem::Write {
                    op: Op::CreateInstance,
                    command: create("unit-b", json!({"pad": "z".repeat(200)})),
                },
            ],
        );
        let (single, batch) = tokio::join!(single, batch);
        storage.set_write_budget(None);
        let expect = |id: &str, acknowledged: bool| (id.to_owned(), acknowledged);
        let answers = [
            expect("single", single.is_ok()),
            expect("unit-a", batch.is_ok()),
            expect("unit-b", batch.is_ok()),
        ];
        for (id, acknowledged) in &answers {
            let found = db.get_instance(id.clone()).await.is_ok();
            assert_eq!(found, *acknowledged, "budget {budget}: {id} live state");
        }
        close(db).await;
        let (db, _) = Database::open(options).unwrap();
        for (id, acknowledged) in &answers {
            let found = db.get_instance(id.clone()).await.is_ok();
            assert_eq!(found, *acknowledged, "budget {budget}: {id} after restart");
        }
        close(db).await;
    }
}

/// A write runs on the submitting thread when the sequencer is idle and on the sequencer thread
/// when jobs queue up; with submitters on several threads it goes back and forth all the time.
/// Whichever runs it, each submitter's writes land in the order it made them (spec §3.7), every
/// write lands once, and the state after a restart is the one acknowledged.
#[test]
fn writes_keep_each_submitters_order_whoever_runs_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(open(dir.path(), FsyncPolicy::Never));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(db.write(order_machine())).unwrap();
    let submitters: usize = 4;
    let rounds: usize = 150;
    let threads: Vec<_> = (0..submitters)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let mut offsets = Vec::new();
                for i in 0..rounds {
                    // Two writes queued before either answer is awaited, then (now and then) a
                    // batch too large to run on this thread.
                    let first = db.write(create(&format!("t{t}-{i}-a"), json!({"t": t, "i": i})));
                    let second = db.write(create(&format!("t{t}-{i}-b"), json!({"t": t, "i": i})));
                    offsets.push(runtime.block_on(first).unwrap().wal_offset.unwrap());
                    offsets.push(runtime.block_on(second).unwrap().wal_offset.unwrap());
                    if i % 25 == 0 {
                        let items = (0..20)
                            .map(|k| BatchItem::Write {
                                op: Op::CreateInstance,
                                command: create(&format!("t{t}-{i}-batch{k}"), json!({})),
                            })
                            .collect();
                        let out = runtime
                            .block_on(db.batch(BatchMode::Atomic, items))
                            .unwrap();
                        offsets.push(out.first_wal_offset.unwrap());
                    }
                }
                offsets
            })
        })
        .collect();
    let mut all = Vec::new();
    for thread in threads {
        let offsets = thread.join().unwrap();
        let misordered = offsets.windows(2).find(|w| w[0] >= w[1]);
        assert_eq!(
            misordered, None,
            "a submitter's later write landed before its earlier one"
        );
        all.extend(offsets);
    }
    all.sort_unstable();
    all.dedup();
    let batches = rounds.div_ceil(25);
    assert_eq!(all.len(), submitters * (2 * rounds + batches));
    let records = 1 + submitters * (2 * rounds + 20 * batches);
    let stats = runtime.block_on(db.wal_stats()).unwrap();
    assert_eq!(stats.entry_count, records as u64);

    let db = Arc::into_inner(db).unwrap();
    db.shutdown().unwrap();
    drop(db);
    let db = open(dir.path(), FsyncPolicy::Never);
    for t in 0..submitters {
        for i in 0..rounds {
            let got = runtime
                .block_on(db.get_instance(format!("t{t}-{i}-b")))
                .expect("every acknowledged write is there after a restart");
            let ctx: Value = serde_json::from_str(got.ctx.get()).unwrap();
            assert_eq!(ctx, json!({"t": t, "i": i}));
        }
    }
    db.shutdown().unwrap();
}
