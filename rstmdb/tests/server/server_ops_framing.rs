//! A representative subset of the raw-frame rules (spec §2.5, §2.8, §3.7, §4.4), repeated
//! against the REAL `DatabaseHandler` instead of the echo handler of `server_framing_faults.rs`:
//! requests before a framing fault are executed and answered, then one `frame_error` and a
//! close; request-level errors keep the connection; 1,000 pipelined frames run in arrival
//! order; nothing after BYE runs.

use rstmdb_testkit::ops::{OpsServer, order_definition};
use rstmdb_testkit::raw::{Client, frame, raw_frame, request};
use serde_json::{Value, json};
use tokio::net::TcpStream;

async fn raw_connect(server: &OpsServer) -> Client<TcpStream> {
    Client::new(TcpStream::connect(server.addr).await.expect("connects"))
}

fn put_order() -> String {
    request(
        "put",
        "PUT_MACHINE",
        json!({"machine": "order", "version": 1, "definition": order_definition()}),
    )
}

/// The one error a framing fault gets before the close (§2.8).
fn assert_frame_error(error: &Value, fault: &str) {
    assert_eq!(error["id"], json!(""), "{error}");
    assert_eq!(error["status"], json!("error"));
    assert_eq!(error["error"]["code"], json!("BAD_REQUEST"));
    assert_eq!(error["error"]["retryable"], json!(false));
    assert_eq!(
        error["error"]["details"],
        json!({"reason": "frame_error", "fault": fault}),
        "{error}"
    );
}

#[tokio::test]
async fn a_write_before_a_framing_fault_is_committed_and_answered_first() {
    let server = OpsServer::start().await;
    let payload = br#"{"type":"request","id":"p","op":"PING"}"#;
    let crc = crc32c::crc32c(payload);
    let mut huge_header = raw_frame(b"RCPX", 1, 1, b"", 0);
    huge_header[10..14].copy_from_slice(&(16 * 1024 * 1024 + 1u32).to_be_bytes());
    let faults = [
        (raw_frame(b"RCPY", 1, 1, payload, crc), "bad_magic"),
        (raw_frame(b"RCPX", 2, 1, payload, crc), "bad_version"),
        (raw_frame(b"RCPX", 1, 0x0003, payload, crc), "bad_flags"),
        (raw_frame(b"RCPX", 1, 0x0011, payload, crc), "bad_flags"),
        (huge_header, "too_large"),
        (raw_frame(b"RCPX", 1, 1, payload, crc ^ 1), "crc_mismatch"),
        (frame(b"{\"id\":\"\xff\"}"), "invalid_utf8"),
    ];
    for (index, (bad, fault)) in faults.into_iter().enumerate() {
        let mut client = raw_connect(&server).await;
        let id = format!("o-{index}");
        let create = request(
            "c",
            "CREATE_INSTANCE",
            json!({"machine": "order", "version": 1, "instance_id": id}),
        );
        let mut bytes = frame(put_order().as_bytes());
        bytes.extend(frame(create.as_bytes()));
        bytes.extend(bad);
        client.send_raw(&bytes).await;
        let put = client.read_frame().await;
        assert_eq!(put["status"], json!("ok"), "{put}");
        let created = client.read_frame().await;
        assert_eq!(created["result"]["applied"], json!(true), "{created}");
        assert_eq!(
            created["meta"]["wal_offset"],
            created["result"]["wal_offset"]
        );
        assert_frame_error(&client.read_frame().await, fault);
        client.expect_closed().await;

        let mut fresh = raw_connect(&server).await;
        let got = fresh.call("GET_INSTANCE", json!({"instance_id": id})).await;
        assert_eq!(got["result"]["state"], json!("created"), "{fault}: {got}");
    }
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn request_level_errors_on_data_ops_keep_the_connection() {
    let server = OpsServer::start().await;
    let mut client = raw_connect(&server).await;
    let cases = [
        (
            r#"{"type":"request","id":"1","op":"GET_INSTANCE","params":"x"}"#,
            "1",
            json!({"reason": "invalid_params"}),
        ),
        (
            r#"{"type":"request","id":"2","op":"WAL_READ"}"#,
            "2",
            json!({"reason": "missing_param", "param": "from_offset"}),
        ),
        (
            r#"{"type":"request","id":"3","op":"CREATE_INSTANCE","params":{"machine":"m","version":1e0}}"#,
            "3",
            json!({"reason": "invalid_param", "param": "version", "expected": "u32"}),
        ),
        (
            r#"{"type":"request","id":"4","op":"DROP_TABLE","params":{}}"#,
            "4",
            json!({"reason": "unknown_op", "op": "DROP_TABLE"}),
        ),
        (
            "{\"type\":\"request\",",
            "",
            json!({"reason": "invalid_json", "line": 1, "column": 18}),
        ),
        (
            r#"{"type":"request","id":"6","op":"LIST_MACHINES","params":null}"#,
            "6",
            Value::Null,
        ),
    ];
    for (payload, id, details) in cases {
        client.send_frame(payload).await;
        let response = client.read_frame().await;
        assert_eq!(response["id"], json!(id), "{response}");
        if details.is_null() {
            assert_eq!(
                response["result"],
                json!({"items": []}),
                "null params mean {{}}"
            );
        } else {
            assert_eq!(
                response["error"]["code"],
                json!("BAD_REQUEST"),
                "{response}"
            );
            assert_eq!(response["error"]["details"], details, "{response}");
            assert!(response.get("result").is_none() && response.get("meta").is_none());
        }
    }
    let stats = client.call("WAL_STATS", json!({})).await;
    assert_eq!(
        stats["result"]["entry_count"],
        json!(0),
        "no error wrote anything"
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_thousand_pipelined_frames_run_in_arrival_order_and_answer_in_order() {
    let server = OpsServer::start().await;
    let mut client = raw_connect(&server).await;
    assert_eq!(
        client
            .call(
                "PUT_MACHINE",
                json!({"machine": "order", "version": 1,
        "definition": order_definition()})
            )
            .await["status"],
        json!("ok")
    );
    // Each APPLY_EVENT only succeeds if the CREATE just before it already ran.
    let mut bytes = Vec::new();
    for i in 0..500 {
        let id = format!("p-{i:03}");
        let create = json!({"machine": "order", "version": 1, "instance_id": id});
        bytes.extend(frame(
            request(&format!("c{i}"), "CREATE_INSTANCE", create).as_bytes(),
        ));
        let apply = json!({"instance_id": id, "event": "PAY"});
        bytes.extend(frame(
            request(&format!("a{i}"), "APPLY_EVENT", apply).as_bytes(),
        ));
    }
    client.send_raw(&bytes).await;
    let mut last_offset = 0;
    for i in 0..500 {
        for prefix in ["c", "a"] {
            let response = client.read_frame().await;
            assert_eq!(
                response["id"],
                json!(format!("{prefix}{i}")),
                "in request order"
            );
            assert_eq!(response["status"], json!("ok"), "{response}");
            let offset = response["meta"]["wal_offset"]
                .as_u64()
                .expect("meta.wal_offset");
            let meta_keys = response["meta"].as_object().map(|meta| meta.len());
            assert_eq!(meta_keys, Some(1), "no meta key but wal_offset");
            assert_eq!(response["result"]["wal_offset"], json!(offset));
            assert!(offset > last_offset, "offsets grow in arrival order");
            last_offset = offset;
        }
    }
    let listed = client
        .call("LIST_INSTANCES", json!({"state": "paid", "limit": 1000}))
        .await;
    assert_eq!(listed["result"]["total"], json!(500));
    assert!(listed.get("meta").is_none(), "reads carry no meta");
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn requests_after_bye_are_discarded_unexecuted() {
    let server = OpsServer::start().await;
    let mut client = raw_connect(&server).await;
    let mut bytes = frame(put_order().as_bytes());
    bytes.extend(frame(request("bye", "BYE", json!({})).as_bytes()));
    let late = json!({"machine": "order", "version": 1, "instance_id": "late"});
    bytes.extend(frame(request("late", "CREATE_INSTANCE", late).as_bytes()));
    client.send_raw(&bytes).await;
    assert_eq!(client.read_frame().await["id"], json!("put"));
    let bye = client.read_frame().await;
    assert_eq!(bye["result"], json!({"goodbye": true}));
    client.expect_closed().await;

    let mut fresh = raw_connect(&server).await;
    let got = fresh
        .call("GET_INSTANCE", json!({"instance_id": "late"}))
        .await;
    assert_eq!(got["error"]["code"], json!("INSTANCE_NOT_FOUND"), "{got}");
    assert_eq!(
        fresh.call("LIST_MACHINES", json!({})).await["result"]["items"][0]["machine"],
        json!("order")
    );
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn a_jsonl_connection_reaches_the_database() {
    let server = OpsServer::start().await;
    let mut client = raw_connect(&server).await;
    let mut lines = put_order();
    lines.push('\n');
    lines.push_str("\r\n");
    lines.push_str(&request("w", "WAL_STATS", json!({})));
    lines.push_str("\r\n");
    client.send_raw(lines.as_bytes()).await;
    let put = client.read_line().await;
    assert_eq!(put["result"]["created"], json!(true), "{put}");
    assert_eq!(put["meta"]["wal_offset"], json!(1u64 << 40));
    let stats = client.read_line().await;
    assert_eq!(stats["id"], json!("w"), "the blank line got no response");
    assert_eq!(stats["result"]["entry_count"], json!(1));
    server.assert_fresh_connection_works().await;
}

#[tokio::test]
async fn responses_keep_request_order_behind_a_slow_commit() {
    let storage = std::sync::Arc::new(rstmdb::wal::fault::FaultStorage::new());
    let config = rstmdb_testkit::ops::ServerConfig::default().wal_storage(storage.clone());
    let server = OpsServer::start_with(config).await;
    let mut client = raw_connect(&server).await;
    assert_eq!(
        client
            .call(
                "PUT_MACHINE",
                json!({"machine": "order", "version": 1,
        "definition": order_definition()})
            )
            .await["status"],
        json!("ok")
    );
    storage.set_sync_delay(std::time::Duration::from_millis(200));
    let create = json!({"machine": "order", "version": 1, "instance_id": "slow"});
    let mut bytes = frame(request("w", "CREATE_INSTANCE", create).as_bytes());
    // PING and INFO are answered by the session, GET_MACHINE by the database: all wait their turn.
    bytes.extend(frame(request("p", "PING", json!({})).as_bytes()));
    bytes.extend(frame(request("i", "INFO", json!({})).as_bytes()));
    let get = json!({"machine": "order", "version": 1});
    bytes.extend(frame(request("g", "GET_MACHINE", get).as_bytes()));
    client.send_raw(&bytes).await;
    let ids: Vec<Value> = [
        client.read_frame().await,
        client.read_frame().await,
        client.read_frame().await,
        client.read_frame().await,
    ]
    .iter()
    .map(|response| response["id"].clone())
    .collect();
    assert_eq!(ids, [json!("w"), json!("p"), json!("i"), json!("g")]);
    storage.set_sync_delay(std::time::Duration::ZERO);
    server.assert_fresh_connection_works().await;
}
