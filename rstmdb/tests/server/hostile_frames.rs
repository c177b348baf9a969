//! Hostile frames (issue 9, item 4): 100 KB of random bytes, random payloads behind valid
//! headers, a 16 MiB frame and one byte more, and headers that look odd but are valid (spec
//! §2.1–§2.8). The spec's other malformed-frame cases, one per fault, are in
//! `server_framing_faults.rs`; this file adds volume and the limits.

use rstmdb_testkit::echo::EchoServer;
use rstmdb_testkit::hostile::Bystander;
use rstmdb_testkit::raw::{Client, frame, raw_frame, request};
use rstmdb_testkit::rng::Rng;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const RANDOM_BYTES: usize = 100 * 1024;
/// Connections fed random bytes, one seed each.
const SEEDS: u64 = 100;
const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// Deterministic bytes (the testkit's SplitMix64), so a failing seed can be replayed.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    Rng::new(seed).bytes(len)
}

/// Everything the server sends until it closes, within 5 s.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut bytes))
        .await
        .expect("the server closes the connection within 5 s");
    // A reset after the final message may end the read early; what arrived is judged.
    let _ = read;
    bytes
}

/// Splits what a binary connection received into its frames' JSON.
fn binary_messages(mut bytes: &[u8]) -> Vec<Value> {
    let mut messages = Vec::new();
    while bytes.len() >= 18 {
        assert_eq!(&bytes[..4], b"RCPX", "every server frame starts with RCPX");
        let len = u32::from_be_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]) as usize;
        let payload = &bytes[18..18 + len];
        messages.push(serde_json::from_slice(payload).expect("a JSON payload"));
        bytes = &bytes[18 + len..];
    }
    assert!(bytes.is_empty(), "a partial frame at the end: {bytes:?}");
    messages
}

fn jsonl_messages(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).expect("a JSON line"))
        .collect()
}

/// What a connection fed garbage must get: request-level errors for anything that happened to
/// be a complete message, then exactly one `frame_error`, then the close.
fn assert_errors_then_one_frame_error(messages: &[Value], seed: u64) {
    let (last, before) = messages
        .split_last()
        .unwrap_or_else(|| panic!("seed {seed}: no frame error before the close"));
    assert_eq!(last["id"], json!(""), "seed {seed}: {last}");
    assert_eq!(last["error"]["code"], json!("BAD_REQUEST"), "seed {seed}");
    assert_eq!(
        last["error"]["details"]["reason"],
        json!("frame_error"),
        "seed {seed}: {last}"
    );
    for message in before {
        assert_eq!(message["status"], json!("error"), "seed {seed}: {message}");
        assert_ne!(
            message["error"]["details"]["reason"],
            json!("frame_error"),
            "seed {seed}: only one frame error"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_kb_of_random_bytes_gets_one_frame_error_and_a_close() {
    let server = EchoServer::start().await;
    let bystander = Bystander::start(server.addr).await;
    let started = Instant::now();
    let mut faults = std::collections::BTreeMap::new();
    // Most seeds start with an arbitrary byte; every fifth is forced to `{` (JSONL mode).
    for seed in 0..SEEDS {
        let mut garbage = random_bytes(seed, RANDOM_BYTES);
        let jsonl = seed % 5 == 4;
        if jsonl {
            garbage[0] = b'{';
        }
        let mut stream = TcpStream::connect(server.addr).await.expect("connects");
        // The server may close before it has read everything: a failed write is fine.
        let _ = tokio::io::AsyncWriteExt::write_all(&mut stream, &garbage).await;
        let received = read_until_closed(&mut stream).await;
        let messages = if jsonl || garbage[0] == b'{' {
            jsonl_messages(&received)
        } else {
            binary_messages(&received)
        };
        assert_errors_then_one_frame_error(&messages, seed);
        let fault = messages
            .last()
            .and_then(|m| m["error"]["details"]["fault"].as_str())
            .unwrap_or_default()
            .to_owned();
        *faults.entry(fault).or_insert(0) += 1;
    }
    let (pings, worst) = bystander.assert_unaffected().await;
    eprintln!(
        "random bytes: {SEEDS} x 100 KB in {:?}, faults {faults:?}; bystander {pings} pings, \
         worst {worst:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_random_payload_behind_a_valid_header_is_a_crc_mismatch_or_invalid_utf8() {
    let server = EchoServer::start().await;
    let payload = random_bytes(42, RANDOM_BYTES);
    let cases = [
        // CRC present and wrong (a random payload cannot match a zero CRC but by chance).
        (raw_frame(b"RCPX", 1, 1, &payload, 0), "crc_mismatch"),
        // CRC present and right: the payload itself is the problem.
        (
            raw_frame(b"RCPX", 1, 1, &payload, crc32c::crc32c(&payload)),
            "invalid_utf8",
        ),
        // CRC absent: not checked, so UTF-8 is.
        (raw_frame(b"RCPX", 1, 0, &payload, 0), "invalid_utf8"),
    ];
    for (bytes, fault) in cases {
        let mut client = server.connect().await;
        client.send_raw(&bytes).await;
        let error = client.read_frame().await;
        assert_eq!(
            error["error"]["details"],
            json!({"reason": "frame_error", "fault": fault}),
            "{error}"
        );
        client.expect_closed().await;
    }
}

/// A PING whose payload is exactly `len` bytes (padded with an ignored param).
fn ping_of_length(len: usize) -> String {
    let base = request("big", "PING", json!({"pad": ""}));
    let payload = request("big", "PING", json!({"pad": "x".repeat(len - base.len())}));
    assert_eq!(payload.len(), len);
    payload
}

#[tokio::test]
async fn a_16_mib_frame_is_answered_and_one_byte_more_is_refused_from_the_header() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    let started = Instant::now();
    client.send_frame(&ping_of_length(MAX_PAYLOAD)).await;
    let pong = client.read_frame().await;
    assert_eq!(pong["result"], json!({"pong": true}), "{pong}");
    let took = started.elapsed();
    // The same connection goes on normally after the biggest frame.
    assert_eq!(
        client.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );

    // One byte over: refused as soon as the header is in, before any payload byte is sent.
    let mut over = server.connect().await;
    let mut header = raw_frame(b"RCPX", 1, 1, b"", 0);
    header[10..14].copy_from_slice(&(MAX_PAYLOAD as u32 + 1).to_be_bytes());
    over.send_raw(&header).await;
    let error = over.read_frame().await;
    assert_eq!(
        error["error"]["details"],
        json!({"reason": "frame_error", "fault": "too_large"})
    );
    over.expect_closed().await;

    // The largest length a header can announce is refused the same way.
    let mut huge = server.connect().await;
    header[10..14].copy_from_slice(&u32::MAX.to_be_bytes());
    huge.send_raw(&header).await;
    let error = huge.read_frame().await;
    assert_eq!(error["error"]["details"]["fault"], json!("too_large"));
    huge.expect_closed().await;
    eprintln!("16 MiB PING frame answered in {took:?}");
}

#[tokio::test]
async fn a_16_mib_jsonl_line_is_answered_and_a_longer_one_is_frame_too_large() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    let mut line = ping_of_length(MAX_PAYLOAD).into_bytes();
    line.push(b'\n');
    client.send_raw(&line).await;
    assert_eq!(client.read_line().await["result"], json!({"pong": true}));

    let mut over = server.connect().await;
    let mut long = ping_of_length(MAX_PAYLOAD).into_bytes();
    long.push(b' ');
    over.send_raw(&long).await;
    let error = over.read_line().await;
    assert_eq!(
        error["error"]["details"],
        json!({"reason": "frame_error", "fault": "frame_too_large"})
    );
    over.expect_closed().await;
}

/// A frame with a header extension of `extension.len()` bytes (spec §2.1).
fn frame_with_extension(flags: u16, extension: &[u8], payload: &[u8], crc: u32) -> Vec<u8> {
    let mut out = b"RCPX\x00\x01".to_vec();
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&(extension.len() as u16).to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(extension);
    out.extend_from_slice(payload);
    out
}

#[tokio::test]
async fn odd_but_valid_headers_are_answered_on_one_connection() {
    let server = EchoServer::start().await;
    let mut client: Client<TcpStream> = server.connect().await;
    let ping = |id: &str| request(id, "PING", json!({})).into_bytes();
    let largest_extension = random_bytes(7, 65_535);
    let mut burst = Vec::new();
    // The largest header extension, full of random bytes: skipped, and not under the CRC.
    let p1 = ping("ext");
    burst.extend(frame_with_extension(
        1,
        &largest_extension,
        &p1,
        crc32c::crc32c(&p1),
    ));
    // CRC_PRESENT clear: a wrong CRC field is ignored.
    burst.extend(raw_frame(b"RCPX", 1, 0, &ping("no-crc"), 0xdead_beef));
    // STREAM and END_STREAM are accepted and ignored.
    let p3 = ping("stream");
    burst.extend(raw_frame(b"RCPX", 1, 0x000d, &p3, crc32c::crc32c(&p3)));
    burst.extend(frame(&ping("last")));
    client.send_raw(&burst).await;
    for id in ["ext", "no-crc", "stream", "last"] {
        let response = client.read_frame().await;
        assert_eq!(response["id"], json!(id), "{response}");
        assert_eq!(response["result"], json!({"pong": true}));
    }
}
