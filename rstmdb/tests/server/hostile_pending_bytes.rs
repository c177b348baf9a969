//! What an authenticated client that does not read can make the real binary hold (issue 14,
//! item 2): responses waiting to be written count in bytes against
//! `network.max_pending_response_bytes`, and a write that does not finish within
//! `network.write_timeout_secs` in total closes the connection.

use rstmdb_testkit::binary::RunningBinary;
use rstmdb_testkit::memory::process_resident_bytes;
use rstmdb_testkit::raw::authenticated;
use rstmdb_testkit::raw::{Client, frame, request};
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const MIB: u64 = 1024 * 1024;
/// Instances of 1 MiB ctx each: WAL_READ from the start then answers about 15 MiB.
const BIG_INSTANCES: usize = 16;

/// A server whose WAL holds about 20 MiB, so one WAL_READ answers close to 16 MiB.
async fn server_with_a_big_wal(env: &[(&str, &str)]) -> (RunningBinary, SocketAddr) {
    let (binary, addr) = RunningBinary::listening(Path::new(env!("CARGO_BIN_EXE_rstmdb")), env);
    let mut client = authenticated(addr).await;
    let definition = json!({"states": ["a"], "initial": "a", "transitions": []});
    let put = client
        .call(
            "PUT_MACHINE",
            json!({"machine": "blob", "version": 1, "definition": definition}),
        )
        .await;
    assert_eq!(put["status"], json!("ok"), "{put}");
    let filler = "x".repeat(MIB as usize);
    for n in 0..BIG_INSTANCES {
        let created = client
            .call(
                "CREATE_INSTANCE",
                json!({"machine": "blob", "version": 1, "instance_id": format!("i{n}"),
                       "initial_ctx": {"filler": filler}}),
            )
            .await;
        assert_eq!(created["status"], json!("ok"), "{created}");
    }
    (binary, addr)
}

fn wal_read(id: usize) -> Vec<u8> {
    let text = request(
        &format!("r{id}"),
        "WAL_READ",
        json!({"from_offset": 0, "limit": 1000}),
    );
    frame(text.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_big_responses_to_a_client_that_does_not_read_stay_within_the_budget() {
    // The smallest budget (16 MiB) and answers of about 4 MiB: sixteen of them unread would be
    // about 60 MiB (and 100 MiB of peak RSS) without a budget.
    const READS: usize = 16;
    let (binary, addr) =
        server_with_a_big_wal(&[("RSTMDB_MAX_PENDING_RESPONSE_BYTES", "16777216")]).await;
    let mut client = authenticated(addr).await;
    let read = json!({"from_offset": 0, "limit": 4});
    let first = client.call("WAL_READ", read.clone()).await;
    let answer_bytes = first.to_string().len() as u64;
    assert!(answer_bytes > 3 * MIB, "one answer is {answer_bytes} bytes");

    let (rss_before, _) = process_resident_bytes(binary.pid());
    let burst: Vec<u8> = (0..READS)
        .flat_map(|n| frame(request(&format!("r{n}"), "WAL_READ", read.clone()).as_bytes()))
        .collect();
    client.send_raw(&burst).await;
    // Time for the server to answer everything it is allowed to.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, peak) = process_resident_bytes(binary.pid());
    let growth = peak.saturating_sub(rss_before);
    // The budget, one answer over it, one being encoded.
    assert!(
        growth < 40 * MIB,
        "{READS} pipelined answers of {} MiB grew peak RSS by {} MiB",
        answer_bytes / MIB,
        growth / MIB
    );

    // Reading catches up: every answer arrives, whole and in order.
    for n in 0..READS {
        let answer = client.read_frame().await;
        assert_eq!(answer["id"], json!(format!("r{n}")));
        assert_eq!(answer["status"], json!("ok"));
    }
    eprintln!(
        "{READS} × {} MiB pipelined, unread, 16 MiB budget: peak RSS growth {} MiB",
        answer_bytes / MIB,
        growth / MIB
    );
    binary.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_trickles_its_reads_is_closed_after_the_write_timeout() {
    const READS: usize = 4;
    let (binary, addr) = server_with_a_big_wal(&[("RSTMDB_WRITE_TIMEOUT", "2")]).await;
    let mut client = authenticated(addr).await;
    let burst: Vec<u8> = (0..READS).flat_map(wal_read).collect();
    client.send_raw(&burst).await;
    // 64 KiB every 250 ms keeps every single write call moving, so a timeout per call would
    // never fire; a 15 MiB answer at that rate takes a minute.
    let mut chunk = vec![0u8; 64 * 1024];
    let mut received = read_some(&mut client, &mut chunk).await;
    let trickle_started = Instant::now();
    while trickle_started.elapsed() < Duration::from_secs(4) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        received += read_some(&mut client, &mut chunk).await;
    }
    // Then read as fast as possible: a server that closed has sent only what was under way
    // when its 2 s ran out (kernel buffers included); one that did not sends all 60 MiB.
    let mut rest = Vec::new();
    let drained = tokio::time::timeout(
        Duration::from_secs(20),
        client.stream.read_to_end(&mut rest),
    )
    .await
    .expect("the connection ends");
    received += rest.len() as u64;
    assert!(
        drained.is_ok() || received > 0,
        "closed with a reset or an end of stream"
    );
    assert!(
        received < 2 * 16 * MIB,
        "{} MiB of {READS} answers of about 15 MiB arrived: the connection was not closed",
        received / MIB
    );
    eprintln!(
        "trickling reader: closed after the write timeout having received {} MiB",
        received / MIB
    );
    // The server is fine.
    let mut other = authenticated(addr).await;
    assert_eq!(
        other.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );
    binary.stop();
}

/// One read of at most `chunk.len()` bytes; 0 at the end of the stream or on a reset.
async fn read_some(client: &mut Client<TcpStream>, chunk: &mut [u8]) -> u64 {
    let read = tokio::time::timeout(Duration::from_secs(10), client.stream.read(chunk))
        .await
        .expect("data or a close within 10 s");
    read.map_or(0, |n| n as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_server_wide_request_budget_slows_clients_down_but_answers_everyone() {
    // 1 KiB for the requests of all connections together: most of the time every connection
    // but one waits for room, and each still gets every answer, in order.
    let (binary, addr) = RunningBinary::listening(
        Path::new(env!("CARGO_BIN_EXE_rstmdb")),
        &[("RSTMDB_MAX_INFLIGHT_BYTES", "1024")],
    );
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(tokio::spawn(async move {
            let mut client = authenticated(addr).await;
            let burst: Vec<u8> = (0..200)
                .flat_map(|n| frame(request(&format!("p{n}"), "PING", json!({})).as_bytes()))
                .collect();
            client.send_raw(&burst).await;
            for n in 0..200 {
                let pong = client.read_frame().await;
                assert_eq!(pong["id"], json!(format!("p{n}")));
                assert_eq!(pong["result"], json!({"pong": true}));
            }
        }));
    }
    for client in clients {
        client.await.expect("every PING answered");
    }
    binary.stop();
}
