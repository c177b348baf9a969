//! The spec's byte-exact test vectors (§2.3) and the codecs driven through
//! `tokio_util::codec::Framed` over an in-memory socket, as server and client will use them.

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use rstmdb_protocol::frame::crc32c;
use rstmdb_protocol::{FrameCodec, FrameFault, Request, WireCodec, WireMode};
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{Decoder, Encoder, Framed, FramedRead};

const PING_REQUEST: &str = r#"{"type":"request","id":"1","op":"PING","params":{}}"#;
const PONG_RESPONSE: &str = r#"{"type":"response","id":"1","status":"ok","result":{"pong":true}}"#;

fn with_payload(header: [u8; 18], payload: &str) -> Vec<u8> {
    let mut frame = header.to_vec();
    frame.extend_from_slice(payload.as_bytes());
    frame
}

#[test]
fn crc32c_check_value() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn ping_request_frame_matches_the_spec_byte_for_byte() {
    let expected = with_payload(
        [
            0x52, 0x43, 0x50, 0x58, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x33,
            0xc3, 0x20, 0x09, 0xc4,
        ],
        PING_REQUEST,
    );
    assert_eq!(PING_REQUEST.len(), 51);
    let mut encoded = BytesMut::new();
    FrameCodec::default()
        .encode(PING_REQUEST, &mut encoded)
        .unwrap();
    assert_eq!(&encoded[..], &expected[..]);

    let mut inbound = BytesMut::from(&expected[..]);
    let payload = FrameCodec::default().decode(&mut inbound).unwrap();
    assert_eq!(payload.as_deref(), Some(PING_REQUEST));
}

#[test]
fn pong_response_frame_matches_the_spec_byte_for_byte() {
    let expected = with_payload(
        [
            0x52, 0x43, 0x50, 0x58, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x41,
            0x4b, 0x7b, 0x43, 0x2f,
        ],
        PONG_RESPONSE,
    );
    assert_eq!(PONG_RESPONSE.len(), 65);
    let mut encoded = BytesMut::new();
    FrameCodec::default()
        .encode(PONG_RESPONSE, &mut encoded)
        .unwrap();
    assert_eq!(&encoded[..], &expected[..]);
}

#[tokio::test]
async fn client_and_server_exchange_binary_frames_through_framed() {
    let (client_io, server_io) = tokio::io::duplex(1024);
    let mut client = Framed::new(client_io, WireCodec::new(WireMode::BinaryJson, 1 << 16));
    let mut server = Framed::new(server_io, WireCodec::detect(1 << 16));

    client.send(PING_REQUEST).await.unwrap();
    let received = server.next().await.unwrap().unwrap();
    assert_eq!(Request::parse(&received).unwrap().id, "1");
    assert_eq!(server.codec().mode(), WireMode::BinaryJson);

    server.send(PONG_RESPONSE).await.unwrap();
    assert_eq!(client.next().await.unwrap().unwrap(), PONG_RESPONSE);
}

#[tokio::test]
async fn hello_switches_a_framed_connection_to_jsonl_with_bytes_already_buffered() {
    let (mut client_io, server_io) = tokio::io::duplex(4096);
    let hello = r#"{"type":"request","id":"1","op":"HELLO","params":{"protocol_version":1,"wire_modes":["jsonl"]}}"#;
    // The HELLO frame and a JSON line behind it arrive in one write, so the server has the
    // line buffered before it knows it must switch.
    let mut bytes = BytesMut::new();
    FrameCodec::default().encode(hello, &mut bytes).unwrap();
    bytes.extend_from_slice(b"{\"type\":\"request\",\"id\":\"2\",\"op\":\"PING\"}\r\n");
    client_io.write_all(&bytes).await.unwrap();

    let mut server = Framed::new(server_io, WireCodec::detect(1 << 16));
    assert_eq!(server.next().await.unwrap().unwrap(), hello);
    server.codec_mut().set_mode(WireMode::Jsonl);
    server.send("{\"hello\":1}").await.unwrap();
    let second = server.next().await.unwrap().unwrap();
    assert_eq!(Request::parse(&second).unwrap().id, "2");

    let mut client = FramedRead::new(client_io, WireCodec::new(WireMode::Jsonl, 1 << 16));
    assert_eq!(client.next().await.unwrap().unwrap(), "{\"hello\":1}");
}

#[tokio::test]
async fn a_framing_fault_ends_the_framed_stream_with_the_fault() {
    let (mut client_io, server_io) = tokio::io::duplex(1024);
    client_io
        .write_all(b"RCPX\x00\x02\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut server = Framed::new(server_io, WireCodec::detect(1 << 16));
    let error = server.next().await.unwrap().unwrap_err();
    assert_eq!(error.fault(), Some(FrameFault::BadVersion));
}
