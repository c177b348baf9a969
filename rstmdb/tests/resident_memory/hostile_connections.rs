//! Hostile connections (issue 9, item 4): a client that never reads, a stalled 16 MiB frame
//! (slowloris), a flood of connections over `max_connections`, and a TLS client on a plain
//! port. Each test checks what the offender sees, that a bystander client keeps getting PING
//! answers with normal latency, and that the server's tasks and memory stay bounded.

use rstmdb::server::{MAX_IN_FLIGHT_PER_CONNECTION, MAX_LINGERING_REFUSALS, ServerSettings};
use rstmdb_testkit::echo::EchoServer;
use rstmdb_testkit::hostile::{Bystander, TaskSampler, alive_tasks};
use rstmdb_testkit::memory::{measuring_resident_memory, resident_bytes, sharing_resident_memory};
use rstmdb_testkit::raw::{Client, frame, request};
use rstmdb_testkit::server::loopback_settings;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PAD_BYTES: usize = 64 * 1024;

/// A request the echo handler answers with its params: a 64 KiB response per request.
fn padded_request(n: usize) -> Vec<u8> {
    let pad = "x".repeat(PAD_BYTES);
    frame(request(&n.to_string(), "GET_INSTANCE", json!({"pad": pad})).as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_closed_after_the_write_timeout() {
    // Measures this process's resident memory: no other test of the binary runs meanwhile.
    let _alone = measuring_resident_memory().await;
    let server = EchoServer::start_with(ServerSettings {
        write_timeout: Some(Duration::from_secs(1)),
        ..loopback_settings()
    })
    .await;
    let bystander = Bystander::start(server.addr).await;
    let before = resident_bytes();
    let stream = TcpStream::connect(server.addr).await.expect("connects");
    let (_never_read, mut write_half) = stream.into_split();
    // Writes until the server drops the connection; 1,000 x 64 KiB is far more than the
    // in-flight bound plus every socket buffer can absorb.
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for n in 0..1_000 {
            if write_half.write_all(&padded_request(n)).await.is_err() {
                return Some(n);
            }
        }
        None
    });
    // Samples memory until the server drops the connection (or 20 s pass: a failure).
    let mut peak_rss = before;
    while !writer.is_finished() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the server never closed the connection of the client that never reads"
        );
        peak_rss = peak_rss.max(resident_bytes());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused_at = writer.await.expect("writer task");
    let closed_after = started.elapsed();
    let sent = refused_at.expect("the server stopped accepting requests at some point");
    assert!(
        closed_after >= Duration::from_millis(900),
        "closed by the 1 s write timeout, not before: {closed_after:?}"
    );
    assert!(
        sent >= MAX_IN_FLIGHT_PER_CONNECTION,
        "requests were accepted up to the in-flight bound first ({sent})"
    );
    let grown = peak_rss.saturating_sub(before);
    // 128 in-flight 64 KiB requests and their responses, a few copies each.
    assert!(grown < 256 << 20, "server memory grew by {grown} bytes");
    let (pings, worst) = bystander.assert_unaffected().await;
    eprintln!(
        "never-reading client: closed after {closed_after:?}, {sent} requests sent, \
         rss +{} MiB; bystander {pings} pings, worst {worst:?}",
        grown >> 20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_that_keeps_reading_is_served_past_the_write_timeout() {
    let _memory = sharing_resident_memory().await;
    let server = EchoServer::start_with(ServerSettings {
        write_timeout: Some(Duration::from_secs(1)),
        ..loopback_settings()
    })
    .await;
    let stream = TcpStream::connect(server.addr).await.expect("connects");
    let (mut read_half, mut write_half) = stream.into_split();
    const REQUESTS: usize = MAX_IN_FLIGHT_PER_CONNECTION;
    let writer = tokio::spawn(async move {
        for n in 0..REQUESTS {
            write_half
                .write_all(&padded_request(n))
                .await
                .expect("write");
        }
        write_half
    });
    // About 8 MiB of responses read at about 2.5 MiB/s: the whole transfer takes well over
    // the 1 s write timeout, but the client never stops accepting bytes for that long.
    let started = Instant::now();
    let mut client = Client::new(&mut read_half);
    for n in 0..REQUESTS {
        let response = client.read_frame().await;
        assert_eq!(response["id"], json!(n.to_string()));
        assert_eq!(
            response["result"]["echo"]["pad"].as_str().map(str::len),
            Some(PAD_BYTES)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let took = started.elapsed();
    assert!(
        took > Duration::from_secs(2),
        "the reading was slow: {took:?}"
    );
    let mut write_half = writer.await.expect("writer task");
    write_half
        .write_all(&frame(request("last", "PING", json!({})).as_bytes()))
        .await
        .expect("the connection is still open");
    assert_eq!(client.read_frame().await["result"], json!({"pong": true}));
}

/// An 18-byte header announcing `payload_len` and `sent` bytes of its payload.
fn stalled_frame(payload_len: u32, sent: usize) -> Vec<u8> {
    let mut bytes = b"RCPX\x00\x01\x00\x01\x00\x00".to_vec();
    bytes.extend_from_slice(&payload_len.to_be_bytes());
    bytes.extend_from_slice(&0u32.to_be_bytes());
    bytes.extend(std::iter::repeat_n(b'{', sent));
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_16_mib_frames_are_closed_by_the_idle_timeout_without_reserving_16_mib_each() {
    // Measures this process's resident memory: no other test of the binary runs meanwhile.
    let _alone = measuring_resident_memory().await;
    const STALLED: usize = 50;
    let server = EchoServer::start_with(ServerSettings {
        idle_timeout: Some(Duration::from_secs(1)),
        ..loopback_settings()
    })
    .await;
    let bystander = Bystander::start(server.addr).await;
    let before = resident_bytes();
    let started = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        let mut client = server.connect().await;
        // Exactly the maximum: a frame the server must accept once it is complete.
        client.send_raw(&stalled_frame(16 * 1024 * 1024, 10)).await;
        stalled.push(client);
    }
    let rss_while_stalled = resident_bytes().saturating_sub(before);
    for client in &mut stalled {
        // Silently (§8.4): no error frame, just the close.
        client.expect_closed().await;
    }
    let closed_after = started.elapsed();
    assert!(
        closed_after >= Duration::from_millis(900),
        "closed before the idle timeout: {closed_after:?}"
    );
    assert!(
        rss_while_stalled < 64 << 20,
        "{STALLED} stalled frames made the server hold {rss_while_stalled} bytes"
    );
    let (pings, worst) = bystander.assert_unaffected().await;
    eprintln!(
        "slowloris: {STALLED} stalled 16 MiB frames closed after {closed_after:?}, rss +{} KiB; \
         bystander {pings} pings, worst {worst:?}",
        rss_while_stalled >> 10
    );
}

/// Reads what a refused connection gets: `Some(frame JSON)` or `None` for a bare close.
async fn refusal_of(stream: &mut TcpStream) -> Option<serde_json::Value> {
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut bytes))
        .await
        .expect("a refused connection is closed within 5 s");
    // A reset after the frame can cut the read short; whatever arrived is judged.
    let _ = read;
    if bytes.len() < 18 {
        assert!(bytes.is_empty(), "a partial frame: {bytes:?}");
        return None;
    }
    serde_json::from_slice(&bytes[18..]).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_over_max_connections_is_refused_with_bounded_tasks_and_spares_admitted_clients() {
    let _memory = sharing_resident_memory().await;
    const FLOOD: usize = 1_500;
    let server = EchoServer::start_with(ServerSettings {
        max_connections: 2,
        ..loopback_settings()
    })
    .await;
    let bystander = Bystander::start(server.addr).await;
    let mut admitted = server.connect().await;
    admitted.call("PING", json!({})).await;
    let baseline = alive_tasks();
    let sampler = TaskSampler::start();
    let started = Instant::now();
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        // Each holds its socket open and never sends: the most a refusal can be made to wait.
        flood.push(TcpStream::connect(server.addr).await.expect("connects"));
    }
    let connected_in = started.elapsed();
    let mut framed = 0;
    for stream in &mut flood {
        if let Some(refusal) = refusal_of(stream).await {
            assert_eq!(refusal["error"]["code"], json!("RATE_LIMITED"), "{refusal}");
            assert_eq!(
                refusal["error"]["details"],
                json!({"reason": "connection_limit", "limit": 2})
            );
            framed += 1;
        }
    }
    let peak = sampler.finish().await;
    assert!(
        peak <= baseline + MAX_LINGERING_REFUSALS + 8,
        "{FLOOD} refused connections made {peak} tasks live at once (baseline {baseline})"
    );
    assert!(
        framed >= MAX_LINGERING_REFUSALS,
        "at least the lingering refusals carry the frame ({framed})"
    );
    assert_eq!(
        admitted.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );
    let (pings, worst) = bystander.assert_unaffected().await;
    eprintln!(
        "flood: {FLOOD} connections in {connected_in:?}, {framed} got the RATE_LIMITED frame, \
         peak tasks {peak} (baseline {baseline}); bystander {pings} pings, worst {worst:?}"
    );
}

/// The first flight of a TLS client (its ClientHello), as it would reach the server.
fn tls_client_hello() -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut connection =
        rustls::ClientConnection::new(Arc::new(config), name).expect("client connection");
    let mut hello = Vec::new();
    connection.write_tls(&mut hello).expect("ClientHello");
    hello
}

#[tokio::test]
async fn a_tls_client_on_a_plain_port_gets_bad_magic_and_a_close() {
    let _memory = sharing_resident_memory().await;
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    let hello = tls_client_hello();
    assert_eq!(hello[0], 0x16, "a TLS handshake record");
    client.send_raw(&hello).await;
    let error = client.read_frame().await;
    assert_eq!(error["id"], json!(""));
    assert_eq!(
        error["error"]["details"],
        json!({"reason": "frame_error", "fault": "bad_magic"})
    );
    client.expect_closed().await;

    // A real TLS client sees a failed handshake, and the server serves the next client.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server.addr).await.expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let handshake = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .expect("the handshake ends in time");
    assert!(handshake.is_err(), "no TLS session with a plain server");
    let mut fresh = server.connect().await;
    assert_eq!(
        fresh.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );
}
