//! A subscription that lags is served from the WAL in reads of a bounded size, and keeps the
//! reader between reads. A read can end exactly at the commit position its reader was created
//! under; the next read must still see what was committed since, or the subscription would wait
//! for a write that may never come (found as a rare 30 s stall of a caught-up subscriber).

use rstmdb::database::{Database, DatabaseOptions};
use rstmdb::engine::{ApplyEvent, Command, CreateInstance, InstanceIdChoice, PutMachine};
use rstmdb::wal::{FsyncPolicy, WalConfig};

fn open(dir: &std::path::Path) -> Database {
    let options = DatabaseOptions::new(
        dir,
        WalConfig {
            fsync_policy: FsyncPolicy::Never,
            ..WalConfig::default()
        },
    );
    Database::open(options).expect("open").0
}

/// Flips `i-0` `count` times, starting from state `a` when `first` is even.
async fn flip(db: &Database, first: usize, count: usize) {
    for k in first..first + count {
        let event = if k.is_multiple_of(2) { "GO" } else { "BACK" };
        db.write(Command::ApplyEvent(ApplyEvent {
            instance_id: "i-0".into(),
            event: event.into(),
            ..ApplyEvent::default()
        }))
        .await
        .expect("apply");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_ended_at_the_commit_position_still_sees_later_commits() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.write(Command::PutMachine(PutMachine {
        machine: "flip".into(),
        version: 1,
        definition: rstmdb_testkit::watch::flip_definition(),
    }))
    .await
    .expect("put machine");
    db.write(Command::CreateInstance(CreateInstance {
        machine: "flip".into(),
        version: 1,
        instance_id: InstanceIdChoice::Given("i-0".into()),
        initial_ctx: None,
        idempotency_key: None,
    }))
    .await
    .expect("create");
    let feed = db.watch_feed();
    let start = feed.committed_offset();
    flip(&db, 0, 4).await;

    // Exactly the committed events fill the read: it stops on its size, not at the end.
    let first = feed.catch_up(start, 4, None).expect("first read");
    assert_eq!(first.events.len(), 4);
    assert_eq!(first.next_cursor, feed.committed_offset());

    flip(&db, 4, 2).await;
    let second = feed
        .catch_up(first.next_cursor, 4, first.reader)
        .expect("second read");
    let offsets: Vec<u64> = second.events.iter().map(|e| e.offset).collect();
    assert_eq!(
        offsets.len(),
        2,
        "the two events committed after the first read: {offsets:?}"
    );
    assert_eq!(second.next_cursor, feed.committed_offset());
    db.shutdown().expect("shutdown");
}
