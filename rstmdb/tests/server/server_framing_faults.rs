//! Framing faults (spec §2.8) end the connection after answering what came before and sending
//! ONE `frame_error`; request-level errors are answered and the connection keeps working.

use rstmdb::server::ServerSettings;
use rstmdb_testkit::echo::EchoServer;
use rstmdb_testkit::raw::{Client, error_reason, frame, raw_frame, request};
use rstmdb_testkit::server::loopback_settings;
use serde_json::{Value, json};
use tokio::net::TcpStream;

const PING: &[u8] = br#"{"type":"request","id":"p","op":"PING"}"#;

/// Sends a good PING, then `bad`; expects the pong, one frame error naming `fault`, and a close.
async fn assert_fault_closes(server: &EchoServer, bad: Vec<u8>, fault: &str) {
    let mut client = server.connect().await;
    let mut bytes = frame(PING);
    bytes.extend(bad);
    client.send_raw(&bytes).await;
    let pong = client.read_frame().await;
    assert_eq!(
        pong["result"],
        json!({"pong": true}),
        "answered before the fault"
    );
    let error = client.read_frame().await;
    assert_eq!(error["id"], json!(""));
    assert_eq!(error["status"], json!("error"));
    assert_eq!(error["error"]["code"], json!("BAD_REQUEST"));
    assert_eq!(error["error"]["retryable"], json!(false));
    assert_eq!(
        error["error"]["details"],
        json!({"reason": "frame_error", "fault": fault}),
        "{error}"
    );
    client.expect_closed().await;

    let mut fresh = server.connect().await;
    assert_eq!(
        fresh.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );
}

fn small_limit() -> ServerSettings {
    ServerSettings {
        max_frame_bytes: 65_536,
        ..loopback_settings()
    }
}

#[tokio::test]
async fn bad_magic_is_a_framing_fault() {
    let server = EchoServer::start().await;
    let crc = crc32c::crc32c(PING);
    assert_fault_closes(&server, raw_frame(b"RCPY", 1, 1, PING, crc), "bad_magic").await;
}

#[tokio::test]
async fn garbage_bytes_are_bad_magic() {
    let server = EchoServer::start().await;
    assert_fault_closes(
        &server,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        "bad_magic",
    )
    .await;
}

#[tokio::test]
async fn a_json_line_on_a_binary_connection_is_bad_magic() {
    let server = EchoServer::start().await;
    let line = format!("{}\n", String::from_utf8_lossy(PING)).into_bytes();
    assert_fault_closes(&server, line, "bad_magic").await;
}

#[tokio::test]
async fn wrong_version_is_a_framing_fault() {
    let server = EchoServer::start().await;
    let crc = crc32c::crc32c(PING);
    assert_fault_closes(&server, raw_frame(b"RCPX", 2, 1, PING, crc), "bad_version").await;
}

#[tokio::test]
async fn a_reserved_flag_is_a_framing_fault() {
    let server = EchoServer::start().await;
    let crc = crc32c::crc32c(PING);
    assert_fault_closes(
        &server,
        raw_frame(b"RCPX", 1, 0x0011, PING, crc),
        "bad_flags",
    )
    .await;
}

#[tokio::test]
async fn the_compressed_flag_is_a_framing_fault() {
    let server = EchoServer::start().await;
    let crc = crc32c::crc32c(PING);
    assert_fault_closes(
        &server,
        raw_frame(b"RCPX", 1, 0x0003, PING, crc),
        "bad_flags",
    )
    .await;
}

#[tokio::test]
async fn an_oversize_announced_payload_is_refused_from_the_header() {
    let server = EchoServer::start_with(small_limit()).await;
    // Only the header is sent: the server must not wait for the 65,537 payload bytes.
    let mut header = raw_frame(b"RCPX", 1, 1, b"", 0);
    header[10..14].copy_from_slice(&65_537u32.to_be_bytes());
    assert_fault_closes(&server, header, "too_large").await;
}

#[tokio::test]
async fn a_payload_exactly_at_the_limit_is_accepted() {
    let server = EchoServer::start_with(small_limit()).await;
    let mut client = server.connect().await;
    let base = request("big", "PING", json!({"pad": ""}));
    let padding = "x".repeat(65_536 - base.len());
    let payload = request("big", "PING", json!({"pad": padding}));
    assert_eq!(payload.len(), 65_536);
    client.send_frame(&payload).await;
    assert_eq!(client.read_frame().await["result"], json!({"pong": true}));
}

#[tokio::test]
async fn a_crc_mismatch_is_a_framing_fault() {
    let server = EchoServer::start().await;
    let crc = crc32c::crc32c(PING) ^ 1;
    assert_fault_closes(&server, raw_frame(b"RCPX", 1, 1, PING, crc), "crc_mismatch").await;
}

#[tokio::test]
async fn an_invalid_utf8_payload_is_a_framing_fault() {
    let server = EchoServer::start().await;
    assert_fault_closes(&server, frame(b"{\"id\":\"\xff\"}"), "invalid_utf8").await;
}

#[tokio::test]
async fn half_a_frame_then_end_of_input_gets_one_error_and_a_close() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    let whole = frame(PING);
    client.send_raw(&whole[..25]).await;
    client.finish_sending().await;
    let error = client.read_frame().await;
    assert_eq!(error["id"], json!(""));
    assert_eq!(error_reason(&error), &json!("frame_error"));
    client.expect_closed().await;
    let mut fresh = server.connect().await;
    assert_eq!(
        fresh.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );
}

#[tokio::test]
async fn an_over_long_jsonl_line_is_frame_too_large_in_jsonl() {
    let server = EchoServer::start_with(small_limit()).await;
    let mut client = server.connect().await;
    client
        .send_raw(b"{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}\n")
        .await;
    assert_eq!(client.read_line().await["result"], json!({"pong": true}));
    let mut long = b"{\"pad\":\"".to_vec();
    long.resize(65_537, b'x');
    client.send_raw(&long).await;
    let error = client.read_line().await;
    assert_eq!(
        error["error"]["details"],
        json!({"reason": "frame_error", "fault": "frame_too_large"})
    );
    client.expect_closed().await;
}

#[tokio::test]
async fn an_invalid_utf8_jsonl_line_is_answered_in_jsonl() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    client.send_raw(b"{\"id\":\"\xfe\"}\n").await;
    let error = client.read_line().await;
    assert_eq!(error["error"]["details"]["fault"], json!("invalid_utf8"));
    client.expect_closed().await;
}

/// Sends `payload` in a frame, checks the BAD_REQUEST, then checks the connection still works.
async fn assert_request_error(
    client: &mut Client<TcpStream>,
    payload: &str,
    id: &str,
    details: Value,
) {
    client.send_frame(payload).await;
    let error = client.read_frame().await;
    assert_eq!(error["id"], json!(id), "{error}");
    assert_eq!(error["error"]["code"], json!("BAD_REQUEST"));
    let got = &error["error"]["details"];
    for (key, value) in details.as_object().into_iter().flatten() {
        assert_eq!(&got[key], value, "details.{key} of {error}");
    }
    assert_eq!(
        client.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );
}

#[tokio::test]
async fn request_level_errors_are_answered_and_the_connection_keeps_working() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    let cases: [(&str, &str, Value); 11] = [
        ("", "", json!({"reason": "invalid_json"})),
        (" \r\n\t", "", json!({"reason": "invalid_json"})),
        (
            "{\"type\":\"request\",\n \"id\": x}",
            "",
            json!({"reason": "invalid_json", "line": 2, "column": 8}),
        ),
        ("[1,2]", "", json!({"reason": "invalid_envelope"})),
        (
            r#"{"type":"request","op":"PING"}"#,
            "",
            json!({"reason": "invalid_envelope", "field": "id"}),
        ),
        (
            r#"{"type":"request","id":7,"op":"PING"}"#,
            "",
            json!({"reason": "invalid_envelope", "field": "id"}),
        ),
        (
            r#"{"type":"event","id":"4","op":"PING"}"#,
            "4",
            json!({"reason": "invalid_envelope", "field": "type"}),
        ),
        (
            r#"{"type":"request","id":"5","op":5}"#,
            "5",
            json!({"reason": "invalid_envelope", "field": "op"}),
        ),
        (
            r#"{"type":"request","id":"6","op":"FLY"}"#,
            "6",
            json!({"reason": "unknown_op", "op": "FLY"}),
        ),
        (
            r#"{"type":"request","id":"7","op":"PING","params":[1]}"#,
            "7",
            json!({"reason": "invalid_params"}),
        ),
        (
            r#"{"type":"request","id":"8","op":"HELLO","params":{}}"#,
            "8",
            json!({"reason": "missing_param", "param": "protocol_version"}),
        ),
    ];
    for (payload, id, details) in cases {
        assert_request_error(&mut client, payload, id, details).await;
    }
    client.send_frame("").await;
    let error = client.read_frame().await;
    let details = &error["error"]["details"];
    assert!(
        details.get("line").is_none() && details.get("column").is_none(),
        "{error}"
    );
}

#[tokio::test]
async fn json_nested_ten_thousand_deep_is_invalid_json_not_a_crash() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    let deep = format!(
        r#"{{"type":"request","id":"d","op":"PING","params":{{"a":{}1{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_request_error(&mut client, &deep, "", json!({"reason": "invalid_json"})).await;
}
