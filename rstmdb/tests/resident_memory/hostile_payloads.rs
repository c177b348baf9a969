//! Hostile payloads through the real database (issue 9, item 4): deeply nested JSON, a 10 MB
//! context through every path that carries it (create, apply, watch, WAL_READ, snapshot,
//! checkpoint, restart), and writes whose record would exceed the WAL's cap.

use futures::StreamExt;
use rstmdb::service::value_depth::MAX_VALUE_DEPTH;
use rstmdb_client::{ApplyEventOptions, CreateInstanceOptions, ErrorCode, Op};
use rstmdb_testkit::memory::{measuring_resident_memory, resident_bytes, sharing_resident_memory};
use rstmdb_testkit::ops::*;
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// `levels` objects inside each other: `{"a":{"a":...1}}`.
fn nested(levels: usize) -> Value {
    (0..levels).fold(json!(1), |inner, _| json!({"a": inner}))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn create_params(id: &str, ctx: Value) -> Value {
    json!({"machine": "order", "version": 1, "instance_id": id, "initial_ctx": ctx})
}

fn assert_too_deep(error: rstmdb_client::RcpError, param: &str, expected: &str) {
    assert_error(
        Err::<(), _>(error),
        ErrorCode::BadRequest,
        json!({"reason": "invalid_param", "param": param, "expected": expected,
               "max_depth": MAX_VALUE_DEPTH}),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_nested_at_the_limit_round_trip_everywhere_and_deeper_ones_are_refused() {
    let _memory = sharing_resident_memory().await;
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    // At the limit: stored, and readable in every response that carries it, by a client whose
    // JSON parser stops at 128 levels (serde_json's default), even where WAL_READ wraps it.
    ok(
        &client,
        Op::CreateInstance,
        create_params("deep", nested(MAX_VALUE_DEPTH)),
    )
    .await;
    let payload = json!({"p": nested(MAX_VALUE_DEPTH - 1)});
    let mut watch = client
        .watch_instance("deep", true, None)
        .await
        .expect("WATCH_INSTANCE");
    ok(
        &client,
        Op::ApplyEvent,
        json!({"instance_id": "deep", "event": "PAY", "payload": payload}),
    )
    .await;
    let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("the event arrives")
        .expect("stream open")
        .expect("an event");
    assert_eq!(
        event.ctx.map(Value::Object),
        Some(json!({"a": nested(MAX_VALUE_DEPTH - 1), "p": nested(MAX_VALUE_DEPTH - 1)}))
    );
    let records = client
        .wal_read(0, None)
        .await
        .expect("WAL_READ stays readable");
    assert_eq!(records.records.len(), 3, "put_machine, create, apply");
    client
        .snapshot_instance("deep")
        .await
        .expect("SNAPSHOT_INSTANCE");
    client.compact(true).await.expect("COMPACT");

    // One level more, in each param that is stored: refused before anything is written.
    let too_deep = nested(MAX_VALUE_DEPTH + 1);
    let refused = call(
        &client,
        Op::CreateInstance,
        create_params("deeper", too_deep.clone()),
    )
    .await;
    assert_too_deep(
        refused.expect_err("too deep"),
        "initial_ctx",
        "object or null",
    );
    // The reproducer: 125 levels is the deepest ctx a request can carry; stored, it made every
    // later WAL_READ unreadable for the client ("recursion limit exceeded"), which then dropped
    // its connection.
    let refused = call(
        &client,
        Op::CreateInstance,
        create_params("deepest-parsable", nested(125)),
    )
    .await;
    assert_too_deep(
        refused.expect_err("too deep"),
        "initial_ctx",
        "object or null",
    );
    let refused = call(
        &client,
        Op::ApplyEvent,
        json!({"instance_id": "deep", "event": "SHIP", "payload": too_deep}),
    )
    .await;
    assert_too_deep(refused.expect_err("too deep"), "payload", "object or null");
    let mut definition = order_definition();
    definition["meta"] = nested(MAX_VALUE_DEPTH);
    let refused = call(
        &client,
        Op::PutMachine,
        json!({"machine": "deep", "version": 1, "definition": definition}),
    )
    .await;
    assert_too_deep(refused.expect_err("too deep"), "definition", "object");
    let batch = ok(
        &client,
        Op::Batch,
        json!({"mode": "best_effort", "ops": [
            {"op": "CREATE_INSTANCE", "params": create_params("in-batch", nested(MAX_VALUE_DEPTH + 1))},
            {"op": "CREATE_INSTANCE", "params": create_params("fine", json!({}))}
        ]}),
    )
    .await;
    let results = &batch.result["results"];
    assert_eq!(
        results[0]["error"]["details"]["max_depth"],
        json!(MAX_VALUE_DEPTH),
        "{results}"
    );
    assert_eq!(results[1]["status"], json!("ok"), "{results}");
    assert_eq!(
        client.wal_stats().await.expect("WAL_STATS").entry_count,
        4,
        "only the batch's valid create was written"
    );

    // Past what a request may nest at all: a request-level invalid_json, and the connection
    // goes on (the typed client cannot send it: the error's id is "", §2.8).
    // Built as text: a 10,000-level serde_json::Value would overflow the test's own stack.
    let mut raw =
        rstmdb_testkit::raw::Client::new(TcpStream::connect(server.addr).await.expect("tcp"));
    let deepest = format!(
        r#"{{"type":"request","id":"x","op":"CREATE_INSTANCE","params":{{"machine":"order","version":1,"instance_id":"deepest","initial_ctx":{}1{}}}}}"#,
        r#"{"a":"#.repeat(10_000),
        "}".repeat(10_000)
    );
    raw.send_frame(&deepest).await;
    let error = raw.read_frame().await;
    assert_eq!(error["id"], json!(""));
    assert_eq!(
        error["error"]["details"]["reason"],
        json!("invalid_json"),
        "{error}"
    );
    assert_eq!(
        raw.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );

    // Replay and the checkpoint hold the deep values across a restart.
    client.close().await.expect("close");
    let server = server.stop().await.restart().await;
    let client = server.client().await;
    let got = client
        .get_instance("deep")
        .await
        .expect("GET after restart");
    assert_eq!(
        got.ctx,
        object(json!({"a": nested(MAX_VALUE_DEPTH - 1), "p": nested(MAX_VALUE_DEPTH - 1)}))
    );
    client
        .wal_read(0, None)
        .await
        .expect("WAL_READ after restart");
    server.assert_fresh_connection_works().await;
}

const TEN_MB: usize = 10 * 1000 * 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mb_context_goes_through_every_path_and_survives_a_restart() {
    // Measures this process's resident memory: no other test of the binary runs meanwhile.
    let _alone = measuring_resident_memory().await;
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    let rss_before = resident_bytes();
    let started = Instant::now();
    let blob = "c".repeat(TEN_MB);
    // `ready` lets SHIP's guard pass later, so its merge reaches the record cap.
    let ctx = object(json!({"blob": blob, "ready": true}));
    client
        .create_instance(
            "order",
            1,
            CreateInstanceOptions::default()
                .instance_id("big")
                .initial_ctx(ctx.clone()),
        )
        .await
        .expect("a 10 MB ctx fits a frame and a record");
    let created_in = started.elapsed();
    let watcher = server.client().await;
    let mut watch = watcher
        .watch_instance("big", true, None)
        .await
        .expect("WATCH_INSTANCE");
    let paid = client
        .apply_event(
            "big",
            "PAY",
            ApplyEventOptions::default().payload(object(json!({"k": 1}))),
        )
        .await
        .expect("APPLY_EVENT rewrites the whole 10 MB ctx");
    assert_eq!(paid.ctx["blob"].as_str().map(str::len), Some(TEN_MB));
    let event = tokio::time::timeout(Duration::from_secs(30), watch.next())
        .await
        .expect("the event arrives")
        .expect("stream open")
        .expect("an event");
    let event_ctx = event.ctx.expect("include_ctx");
    assert_eq!(event_ctx["blob"].as_str().map(str::len), Some(TEN_MB));
    assert_eq!(event_ctx["k"], json!(1));

    // Two 10 MB records do not fit one 16 MiB response: WAL_READ returns fewer (§4.17).
    let page = client.wal_read(0, Some(10)).await.expect("WAL_READ");
    assert!(
        !page.records.is_empty() && page.records.len() < 3,
        "{} records",
        page.records.len()
    );
    client
        .snapshot_instance("big")
        .await
        .expect("SNAPSHOT_INSTANCE");
    client
        .compact(true)
        .await
        .expect("COMPACT with a 10 MB ctx");

    // A merge that would take the ctx past the WAL record cap is refused; nothing changes.
    let seven_mb = "p".repeat(7 * 1000 * 1000);
    let grown = client
        .apply_event(
            "big",
            "SHIP",
            ApplyEventOptions::default().payload(object(json!({"more": seven_mb}))),
        )
        .await;
    let error = server_error(grown.expect_err("a 17 MB ctx cannot be recorded"));
    assert_eq!(error.reason(), Some("record_too_large"), "{error:?}");
    let details = error.details.clone().unwrap_or_default();
    assert_eq!(details["limit"], json!(16_711_680));
    assert!(details["size"].as_u64() > Some(16_711_680), "{details:?}");
    assert_eq!(client.get_instance("big").await.expect("GET").state, "paid");
    let rss_grown = resident_bytes().saturating_sub(rss_before);
    client.close().await.expect("close");
    drop(watch);
    watcher.close().await.expect("close");

    let server = server.stop().await.restart().await;
    let client = server.client().await;
    let got = client.get_instance("big").await.expect("GET after restart");
    assert_eq!(got.ctx["blob"].as_str().map(str::len), Some(TEN_MB));
    assert_eq!((got.state.as_str(), &got.ctx["k"]), ("paid", &json!(1)));
    server.assert_fresh_connection_works().await;
    // Client and server share this process: both sides' copies, the watch ring and the
    // allocator's retained pages count. A bound, not a tight one: it catches a leak per op.
    assert!(rss_grown < 1 << 30, "memory grew by {rss_grown} bytes");
    eprintln!(
        "10 MB ctx: created in {created_in:?}, whole scenario {:?}, rss +{} MiB",
        started.elapsed(),
        rss_grown >> 20
    );
}

#[tokio::test]
async fn a_create_whose_frame_fits_but_whose_record_does_not_is_record_too_large() {
    let _memory = sharing_resident_memory().await;
    let server = OpsServer::start().await;
    let client = client_with_order(&server).await;
    // Under the 16 MiB frame limit, over the 16 MiB - 64 KiB record limit (§2.4).
    let blob = "r".repeat(16_760_000);
    let refused = call(
        &client,
        Op::CreateInstance,
        create_params("huge", json!({"blob": blob})),
    )
    .await;
    let error = refused.expect_err("over the record cap");
    assert_eq!(error.reason(), Some("record_too_large"), "{error:?}");
    assert_eq!(
        error.details.unwrap_or_default()["limit"],
        json!(16_711_680)
    );
    assert_client_error(
        client.get_instance("huge").await,
        ErrorCode::InstanceNotFound,
        json!({"reason": "instance_not_found", "instance_id": "huge"}),
    );
    assert_eq!(client.wal_stats().await.expect("WAL_STATS").entry_count, 1);
    server.assert_fresh_connection_works().await;
}
