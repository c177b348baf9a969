//! Durability before publish (spec §6.9): with `every_write`, an event is sent only for a
//! record that is durable. The real binary is killed with SIGKILL while writers run and a
//! subscriber watches; after a restart every offset the subscriber received is still in the
//! WAL, holding the same transition.

use rstmdb_client::Op;
use rstmdb_client::message::Outcome;
use rstmdb_testkit::binary::clear_rstmdb_env;
use rstmdb_testkit::net::free_port;
use rstmdb_testkit::watch::{Applied, Conn, Pushed, applied_since, create};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INSTANCES: usize = 50;

struct Process {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data_dir: &Path) -> Process {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_rstmdb"));
    command
        .arg("serve")
        .arg("--bind")
        .arg(addr.to_string())
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    clear_rstmdb_env(&mut command);
    command.env("RSTMDB_FSYNC_POLICY", "every_write");
    let process = Process {
        child: command.spawn().expect("spawn rstmdb serve"),
        addr,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "rstmdb serve never accepted");
        std::thread::sleep(Duration::from_millis(50));
    }
    process
}

async fn connect(process: &Process) -> Conn {
    Conn::new(
        tokio::net::TcpStream::connect(process.addr)
            .await
            .expect("connects"),
    )
}

/// Applies flips until the connection breaks, pipelined; returns the offsets answered ok.
/// Every third request is an event with no transition, which must never produce an event.
async fn write_until_killed(mut conn: Conn) -> HashSet<u64> {
    let mut ok_offsets = HashSet::new();
    let mut pending = Vec::new();
    for k in 0usize.. {
        let id = format!("i-{}", k % INSTANCES);
        let event = match k % 3 {
            2 => "NOPE",
            _ if (k / INSTANCES).is_multiple_of(2) => "GO",
            _ => "BACK",
        };
        let Some(sent) = conn
            .try_send(Op::ApplyEvent, json!({"instance_id": id, "event": event}))
            .await
        else {
            break;
        };
        pending.push(sent);
        if pending.len() >= 16 {
            let request = pending.remove(0);
            match conn.try_response(&request).await {
                Some(Outcome::Ok { result, .. }) => {
                    ok_offsets.insert(result["wal_offset"].as_u64().expect("wal_offset"));
                }
                Some(Outcome::Error { .. }) => {}
                None => break,
            }
        }
    }
    ok_offsets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_received_before_a_crash_is_in_the_wal_after_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let mut server = start(&data_dir);
    let mut admin = connect(&server).await;
    rstmdb_testkit::watch::put_flip_machine(&mut admin, "flip").await;
    for i in 0..INSTANCES {
        create(&mut admin, "flip", &format!("i-{i}")).await;
    }
    let mut watcher = connect(&server).await;
    watcher.ok(Op::WatchAll, json!({})).await;
    let writers: Vec<_> = futures_writers(&server).await;

    let mut received = Vec::new();
    while received.len() < 1_500 {
        match watcher.next_pushed(Duration::from_secs(30)).await {
            Some(Pushed::Event(event)) => received.push(Applied::of(&event)),
            other => panic!("expected events while writers run, got {other:?}"),
        }
    }
    server.child.kill().expect("SIGKILL the server");
    server.child.wait().expect("reap the server");
    // Whatever was already on the wire still counts as received.
    while let Some(Pushed::Event(event)) = watcher.try_next_pushed().await {
        received.push(Applied::of(&event));
    }
    let mut acknowledged = HashSet::new();
    for writer in writers {
        acknowledged.extend(writer.await.expect("writer task"));
    }

    let restarted = start(&data_dir);
    let mut reader = connect(&restarted).await;
    let in_wal: HashMap<u64, Applied> = applied_since(&mut reader, 0)
        .await
        .into_iter()
        .map(|a| (a.offset, a))
        .collect();
    for event in &received {
        assert_eq!(
            in_wal.get(&event.offset),
            Some(event),
            "received, then lost in the crash"
        );
        assert_ne!(event.event, "NOPE", "a refused apply produced an event");
    }
    for offset in &acknowledged {
        assert!(
            in_wal.contains_key(offset),
            "acknowledged write {offset} lost"
        );
    }
    let offsets: Vec<u64> = received.iter().map(|a| a.offset).collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "WAL order, no repeats"
    );
    eprintln!(
        "{} events received before the kill, {} writes acknowledged, {} transitions survived",
        received.len(),
        acknowledged.len(),
        in_wal.len()
    );
}

async fn futures_writers(server: &Process) -> Vec<tokio::task::JoinHandle<HashSet<u64>>> {
    let mut writers = Vec::new();
    for _ in 0..4 {
        let conn = connect(server).await;
        writers.push(tokio::spawn(write_until_killed(conn)));
    }
    writers
}
