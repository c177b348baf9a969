//! What a client that never authenticates can make the real binary hold (spec §13, issue 14):
//! frames over the pre-AUTH limit are refused from their header, requests that may not run are
//! refused without building their params, an unauthenticated connection has a deadline and a
//! cap of its own, and request ids are bounded on every connection.

use rstmdb_testkit::TOKEN;
use rstmdb_testkit::binary::RunningBinary;
use rstmdb_testkit::memory::process_resident_bytes;
use rstmdb_testkit::raw::authenticated;
use rstmdb_testkit::raw::{Client, frame, request};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const MIB: u64 = 1024 * 1024;

fn start(env: &[(&str, &str)]) -> (RunningBinary, SocketAddr) {
    RunningBinary::listening(Path::new(env!("CARGO_BIN_EXE_rstmdb")), env)
}

async fn connect(addr: SocketAddr) -> Client<TcpStream> {
    Client::new(TcpStream::connect(addr).await.expect("connects"))
}

/// A binary frame header announcing `payload_len` bytes, with the CRC flag clear.
fn header(payload_len: u32) -> Vec<u8> {
    let mut header = b"RCPX".to_vec();
    header.extend_from_slice(&1u16.to_be_bytes());
    header.extend_from_slice(&0u16.to_be_bytes());
    header.extend_from_slice(&0u16.to_be_bytes());
    header.extend_from_slice(&payload_len.to_be_bytes());
    header.extend_from_slice(&0u32.to_be_bytes());
    header
}

/// `{"type":"request",…,"op":OP,"params":{"a":[0,0,…]}}` of exactly `len` bytes: the
/// payload that costs the most allocations per byte as a JSON tree.
fn zeros_request(op: &str, len: usize) -> String {
    let head = format!(r#"{{"type":"request","id":"z","op":"{op}","params":{{"a":[0"#);
    let tail = "]}}";
    let zeros = (len - head.len() - tail.len()) / 2;
    let mut payload = head;
    payload.push_str(&",0".repeat(zeros));
    while payload.len() + tail.len() < len {
        payload.push(' ');
    }
    payload.push_str(tail);
    payload
}

fn assert_frame_too_large(error: &Value, limit: u64) {
    assert_eq!(error["id"], json!(""), "{error}");
    assert_eq!(
        error["error"]["details"],
        json!({"reason": "frame_error", "fault": "frame_too_large", "limit": limit}),
        "{error}"
    );
    assert_eq!(
        error["error"]["message"],
        json!(format!(
            "frame error: larger than the {limit}-byte limit before authentication"
        )),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_unauthenticated_16_mib_frames_are_refused_from_their_header() {
    let (binary, addr) = start(&[]);
    let mut bystander = authenticated(addr).await;
    let (rss_before, _) = process_resident_bytes(binary.pid());

    let payload = zeros_request("GET_INSTANCE", 16 * MIB as usize);
    let mut message = header(payload.len() as u32);
    message.extend_from_slice(payload.as_bytes());
    let message = std::sync::Arc::new(message);
    let mut connections = Vec::new();
    for _ in 0..64 {
        let message = message.clone();
        connections.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.expect("connects");
            let (mut read, mut write) = stream.into_split();
            // The server answers after the header; the rest is sent (and discarded) meanwhile.
            let sending = tokio::spawn(async move {
                let _ = write.write_all(&message).await;
                write
            });
            let mut reader = Client::new(&mut read);
            let error = reader.read_frame().await;
            sending.abort();
            error
        }));
    }
    for connection in connections {
        assert_frame_too_large(&connection.await.expect("connection task"), 65_536);
    }
    let (_, peak) = process_resident_bytes(binary.pid());
    let growth = peak.saturating_sub(rss_before);
    assert!(
        growth < 32 * MIB,
        "peak RSS grew {} MiB (from {} MiB)",
        growth / MIB,
        rss_before / MIB
    );
    assert_eq!(
        bystander.call("WAL_STATS", json!({})).await["status"],
        json!("ok")
    );
    eprintln!(
        "64 × 16 MiB before AUTH: peak RSS growth {} KiB",
        growth / 1024
    );
    binary.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jsonl_line_over_the_limit_before_auth_is_refused_before_its_newline() {
    let (binary, addr) = start(&[("RSTMDB_AUTH_MAX_UNAUTHENTICATED_FRAME_BYTES", "4096")]);
    let mut client = connect(addr).await;
    // 4,096 bytes are fine; the 4,097th without a newline is a fault.
    client
        .send_raw(b"{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}\n")
        .await;
    assert_eq!(client.read_line().await["result"], json!({"pong": true}));
    client.send_raw(&[b'{'; 4097]).await;
    let error = client.read_line().await;
    assert_frame_too_large(&error, 4096);
    client.expect_closed().await;

    // After AUTH the connection's limit is the frame limit again.
    let mut client = authenticated(addr).await;
    let big = zeros_request("PING", 100_000);
    client.send_raw(&frame(big.as_bytes())).await;
    assert_eq!(client.read_frame().await["result"], json!({"pong": true}));
    binary.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_costs_its_bytes_not_a_json_tree_of_them() {
    // The pre-AUTH frame limit raised to 16 MiB: what is left to bound is the parsing. A tree
    // of 8 million zeros would take hundreds of MiB; the envelope alone, a few.
    let (binary, addr) = start(&[("RSTMDB_AUTH_MAX_UNAUTHENTICATED_FRAME_BYTES", "16777216")]);
    let (rss_before, _) = process_resident_bytes(binary.pid());
    let mut client = connect(addr).await;
    let payload = zeros_request("GET_INSTANCE", 16 * MIB as usize);
    for _ in 0..6 {
        client.send_raw(&frame(payload.as_bytes())).await;
        let refused = client.read_frame().await;
        assert_eq!(refused["id"], json!("z"), "{refused}");
        assert_eq!(refused["error"]["code"], json!("UNAUTHORIZED"), "{refused}");
    }
    let (_, peak) = process_resident_bytes(binary.pid());
    let growth = peak.saturating_sub(rss_before);
    assert!(
        growth < 100 * MIB,
        "six 16 MiB refused requests grew peak RSS by {} MiB",
        growth / MIB
    );
    eprintln!(
        "6 × 16 MiB refused before AUTH: peak RSS growth {} MiB",
        growth / MIB
    );
    binary.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_connection_is_closed_at_its_deadline_whatever_it_sends() {
    let (binary, addr) = start(&[("RSTMDB_AUTH_UNAUTHENTICATED_TIMEOUT", "1")]);
    let mut patient = authenticated(addr).await;
    let mut chatty = connect(addr).await;
    let opened = Instant::now();
    let closed_after = loop {
        let ping = frame(request("p", "PING", json!({})).as_bytes());
        if chatty.stream.write_all(&ping).await.is_err() {
            break opened.elapsed();
        }
        let mut header = [0u8; 18];
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read_exact(&mut chatty.stream, &mut header),
        )
        .await
        .expect("an answer or a close within 5 s");
        if read.is_err() {
            break opened.elapsed();
        }
        let len = u32::from_be_bytes([header[10], header[11], header[12], header[13]]);
        let _ = chatty.read_exact(len as usize).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(4)).contains(&closed_after),
        "closed after {closed_after:?}, the deadline is 1 s"
    );
    // The authenticated connection has no deadline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        patient.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );
    binary.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_connections_have_a_cap_of_their_own() {
    let (binary, addr) = start(&[("RSTMDB_AUTH_MAX_UNAUTHENTICATED_CONNECTIONS", "3")]);
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let mut client = connect(addr).await;
        // Answered, so the server has taken it in.
        assert_eq!(
            client.call("PING", json!({})).await["result"],
            json!({"pong": true})
        );
        waiting.push(client);
    }
    let mut fourth = connect(addr).await;
    let refused = fourth.read_frame().await;
    assert_eq!(
        refused["error"],
        json!({"code": "RATE_LIMITED", "message": "too many connections waiting to authenticate",
               "retryable": true, "details": {"reason": "unauthenticated_limit", "limit": 3}})
    );
    fourth.expect_closed().await;

    // Authenticating gives the slot back; the connection itself stays.
    let auth = waiting[0]
        .call("AUTH", json!({"method": "bearer", "token": TOKEN}))
        .await;
    assert_eq!(auth["result"], json!({"authenticated": true}));
    let mut fifth = connect(addr).await;
    assert_eq!(
        fifth.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );
    assert_eq!(
        waiting[0].call("WAL_STATS", json!({})).await["status"],
        json!("ok")
    );
    binary.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_over_256_bytes_is_invalid_request_answered_without_the_id() {
    let (binary, addr) = start(&[]);
    for mut client in [connect(addr).await, authenticated(addr).await] {
        let longest = "i".repeat(256);
        client
            .send_raw(&frame(request(&longest, "PING", json!({})).as_bytes()))
            .await;
        assert_eq!(client.read_frame().await["id"], json!(longest));
        client
            .send_raw(&frame(
                request(&"i".repeat(257), "PING", json!({})).as_bytes(),
            ))
            .await;
        let refused = client.read_frame().await;
        assert_eq!(refused["id"], json!(""));
        assert_eq!(
            refused["error"]["details"],
            json!({"reason": "invalid_request", "field": "id", "size": 257, "limit": 256})
        );
        // A request-level error: the connection goes on.
        assert_eq!(
            client.call("PING", json!({})).await["result"],
            json!({"pong": true})
        );
    }
    binary.stop();
}
