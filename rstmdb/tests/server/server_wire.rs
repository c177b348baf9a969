//! Wire behaviour of a real server: the spec's byte-exact PING exchange, pipelining order,
//! and the JSONL wire mode (first byte `{`, HELLO switch with bytes already buffered).

use rstmdb_testkit::echo::EchoServer;
use rstmdb_testkit::raw::{frame, request};
use serde_json::{Value, json};

const PING_REQUEST: &[u8] = br#"{"type":"request","id":"1","op":"PING","params":{}}"#;
const PONG_RESPONSE: &[u8] =
    br#"{"type":"response","id":"1","status":"ok","result":{"pong":true}}"#;

#[tokio::test]
async fn spec_ping_frame_gets_the_spec_pong_frame_bytes() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    let mut ping = vec![
        0x52, 0x43, 0x50, 0x58, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x33, 0xc3,
        0x20, 0x09, 0xc4,
    ];
    ping.extend_from_slice(PING_REQUEST);
    client.send_raw(&ping).await;

    let mut pong = vec![
        0x52, 0x43, 0x50, 0x58, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x41, 0x4b,
        0x7b, 0x43, 0x2f,
    ];
    pong.extend_from_slice(PONG_RESPONSE);
    assert_eq!(client.read_exact(pong.len()).await, pong);
}

#[tokio::test]
async fn hundred_pipelined_requests_get_hundred_responses_in_order() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    let mut burst = Vec::new();
    for n in 0..100u64 {
        // Earlier requests take longer, so answering in completion order would reorder them.
        let (op, params) = if n % 2 == 0 {
            (
                "GET_INSTANCE",
                json!({"instance_id": format!("i-{n}"), "delay_ms": 100 - n}),
            )
        } else {
            ("PING", json!({}))
        };
        burst.extend(frame(request(&format!("r{n}"), op, params).as_bytes()));
    }
    client.send_raw(&burst).await;
    for n in 0..100u64 {
        let response = client.read_frame().await;
        assert_eq!(response["id"], json!(format!("r{n}")));
        assert_eq!(response["status"], json!("ok"), "{response}");
    }
}

#[tokio::test]
async fn a_connection_starting_with_a_brace_speaks_jsonl_both_ways() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    client
        .send_raw(b"{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}\r\n\n  \n")
        .await;
    client
        .send_raw(b"{\"type\":\"request\",\"id\":\"2\",\"op\":\"INFO\"}\n")
        .await;
    let first = client.read_line().await;
    assert_eq!(
        first,
        json!({"type":"response","id":"1","status":"ok","result":{"pong":true}})
    );
    let second = client.read_line().await;
    assert_eq!(
        second["id"],
        json!("2"),
        "blank lines got no answer: {second}"
    );
    assert_eq!(second["result"]["server_name"], json!("rstmdb"));
}

#[tokio::test]
async fn hello_switches_to_jsonl_including_bytes_already_sent_behind_it() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    let hello = request(
        "1",
        "HELLO",
        json!({"protocol_version": 1, "wire_modes": ["msgpack", "jsonl", "binary_json"]}),
    );
    let mut bytes = frame(hello.as_bytes());
    bytes.extend_from_slice(b"{\"type\":\"request\",\"id\":\"2\",\"op\":\"PING\"}\n");
    client.send_raw(&bytes).await;

    let hello_response = client.read_line().await;
    assert_eq!(hello_response["result"]["wire_mode"], json!("jsonl"));
    assert_eq!(client.read_line().await["result"], json!({"pong": true}));
}

#[tokio::test]
async fn hello_on_a_jsonl_connection_can_switch_back_to_binary() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    let hello = request(
        "1",
        "HELLO",
        json!({"protocol_version": 1, "wire_modes": ["binary_json"]}),
    );
    client.send_raw(format!("{hello}\n").as_bytes()).await;
    let response = client.read_frame().await;
    assert_eq!(response["result"]["wire_mode"], json!("binary_json"));
    let pong = client.call("PING", json!({})).await;
    assert_eq!(pong["result"], json!({"pong": true}));
}

#[tokio::test]
async fn hello_without_a_supported_mode_keeps_the_current_one() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    let hello = request(
        "1",
        "HELLO",
        json!({"protocol_version": 1, "wire_modes": ["cbor"]}),
    );
    client.send_raw(format!("{hello}\n").as_bytes()).await;
    let response: Value = client.read_line().await;
    assert_eq!(response["result"]["wire_mode"], json!("jsonl"));
}

#[tokio::test]
async fn more_requests_than_the_in_flight_bound_are_all_answered_in_order() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    let count = 3 * rstmdb::server::MAX_IN_FLIGHT_PER_CONNECTION;
    let mut burst = Vec::new();
    for n in 0..count {
        let params = json!({"delay_ms": (count - n) % 7});
        burst.extend(frame(
            request(&n.to_string(), "GET_MACHINE", params).as_bytes(),
        ));
    }
    // Written from another task: the server stops reading while 128 are unanswered, so
    // writing everything before reading could fill both socket buffers.
    let (mut read_half, mut write_half) = client.stream.split();
    let writing = async {
        tokio::io::AsyncWriteExt::write_all(&mut write_half, &burst)
            .await
            .expect("write");
    };
    let reading = async {
        let mut reader = rstmdb_testkit::raw::Client::new(&mut read_half);
        for n in 0..count {
            let response = reader.read_frame().await;
            assert_eq!(response["id"], json!(n.to_string()));
        }
    };
    tokio::join!(writing, reading);
}
