//! The history checker on a concurrent run without crashes (issue 9, item 2): 8 clients on
//! their own connections make 500 calls each against 20 shared instances of the real server
//! (every_write), so applies contend and many are refused (INVALID_TRANSITION, GUARD_FAILED);
//! every call, the final log and the final reads are checked against the sequential model.
//! The seed of the clients' random choices is printed; `RSTMDB_HISTORY_SEED=N` replays it (the
//! interleaving still varies between runs).

use crate::crash_support::cycle::VERIFIER;
use crate::crash_support::verify::{logged_writes, read_all, read_log};
use crate::crash_support::workload::{
    MACHINE, Plan, Signals, definition, execute, model, run_client,
};
use crate::crash_support::{Rng, ServerProcess, ServerSetup, connect, server_binary};
use crate::history_support::{Call, Outcome, Recorder, WRITE_TAG, check};
use serde_json::json;
use std::sync::Arc;

const CLIENTS: usize = 8;
const OPS_PER_CLIENT: u64 = 500;
const INSTANCES: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_on_shared_instances_see_one_chain_per_instance() {
    let seed = rstmdb_testkit::rng::seed_from_env("RSTMDB_HISTORY_SEED");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let setup = ServerSetup {
        fsync_policy: "every_write".into(),
        segment_size_mb: 1,
        // Nothing may leave the log before the final read: it must hold every record.
        eager_compaction: false,
    };
    let server = ServerProcess::start(&server_binary(), dir.path(), &setup).expect("server starts");
    let admin = connect(server.addr).await.expect("connects");
    admin
        .put_machine(MACHINE, 1, definition())
        .await
        .expect("PUT_MACHINE");
    let recorder = Recorder::default();
    let mut instances = Vec::new();
    for n in 0..INSTANCES {
        let key = format!("setup-{n}");
        let initial_ctx = json!({WRITE_TAG: key})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let instance = format!("shared-{n}");
        let call = Call::Create {
            instance: instance.clone(),
            key,
            initial_ctx,
        };
        let created = execute(&admin, &recorder, VERIFIER, call).await;
        assert!(matches!(created, Outcome::Created { .. }), "{created:?}");
        instances.push(instance);
    }

    let signals = Arc::new(Signals::default());
    let mut tasks = Vec::new();
    for who in 0..CLIENTS {
        let client = connect(server.addr).await.expect("connects");
        let plan = Plan {
            who,
            prefix: format!("c{who}"),
            instances: instances.clone(),
            max_ops: Some(OPS_PER_CLIENT),
            create_percent: 0,
            read_percent: 30,
            pad_bytes: (0, 64),
        };
        tasks.push(tokio::spawn(run_client(
            client,
            recorder.clone(),
            plan,
            rng.fork(),
            signals.clone(),
        )));
    }
    for task in tasks {
        task.await.expect("client task");
    }
    let log = read_log(&admin).await.expect("WAL_READ");
    recorder.observe_wal(log.oldest_offset, logged_writes(&log));
    read_all(&admin, &recorder, VERIFIER, &instances)
        .await
        .expect("final reads");

    let history = recorder.snapshot();
    let report = check(&history, &model);
    eprintln!("history_concurrent: {:?}", report.counts);
    assert!(
        report.violations.is_empty(),
        "seed {seed}:\n{}",
        report.describe(&history)
    );
    let counts = report.counts;
    assert_eq!(
        counts.unknown, 0,
        "no call may go unanswered without a crash"
    );
    assert!(
        counts.applies_acked > 500 && counts.refused > 100 && counts.reads > 500,
        "the run must contend: {counts:?}"
    );
    assert_eq!(
        counts.wal_records,
        counts.creates_acked + counts.applies_acked,
        "one record per acknowledged write"
    );
}
