//! Many requests share one connection: responses are matched by id whatever their order, the
//! number in flight is bounded, and every call has a timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client_support::{FakeConfig, FakeServer, Reply};
use futures::future::join_all;
use rstmdb_client::{Client, ClientError, ClientOptions, Op, Request};
use serde_json::json;

/// GET_INSTANCE answers name the instance asked for, so each caller can check it got its own.
fn echo_instance(request: &Request) -> Option<Reply> {
    (request.op == Op::GetInstance).then(|| {
        let id = request.params["instance_id"].clone();
        let result = json!({"instance_id": id, "machine": "order", "version": 1, "state": "paid",
            "ctx": {}, "last_wal_offset": 1, "created_at": 0, "updated_at": 0});
        Reply::Answer(Ok(result.as_object().cloned().unwrap()))
    })
}

async fn get_many(client: &Client, count: usize) -> Vec<Result<String, ClientError>> {
    let calls = (0..count).map(|n| {
        let client = client.clone();
        async move {
            client
                .get_instance(&format!("i-{n}"))
                .await
                .map(|result| result.instance_id)
        }
    });
    join_all(calls).await
}

#[tokio::test]
async fn a_thousand_requests_in_flight_answered_in_reverse_each_get_their_own_response() {
    // The fake answers nothing until it holds 1,000 answers, then sends them newest first: the
    // calls can only finish if all 1,000 were in flight at once and matched by id.
    let server = FakeServer::start(FakeConfig {
        handler: Some(Arc::new(echo_instance)),
        reverse_batches_of: Some(1000),
        ..FakeConfig::default()
    })
    .await;
    let client = Client::connect(ClientOptions::new(server.addr()))
        .await
        .unwrap();
    let started = Instant::now();
    let results = get_many(&client, 1000).await;
    let elapsed = started.elapsed();
    for (n, result) in results.into_iter().enumerate() {
        assert_eq!(result.expect("every call resolves"), format!("i-{n}"));
    }
    let seen = server.seen_ops(Op::GetInstance);
    assert_eq!(seen.len(), 1000);
    assert!(
        seen.iter().all(|seen| seen.connection == 1),
        "one connection"
    );
    // Ids go out in increasing order, after HELLO's "1", like the public clients' (§1.2).
    let ids: Vec<u64> = seen.iter().map(|s| s.request.id.parse().unwrap()).collect();
    assert_eq!(ids, (2..=1001).collect::<Vec<u64>>());
    eprintln!(
        "1,000 pipelined GET_INSTANCE round trips: {} ms",
        elapsed.as_millis()
    );
}

#[tokio::test]
async fn responses_out_of_order_are_matched_by_id() {
    let server = FakeServer::start(FakeConfig {
        handler: Some(Arc::new(echo_instance)),
        reverse_batches_of: Some(3),
        ..FakeConfig::default()
    })
    .await;
    let client = Client::connect(ClientOptions::new(server.addr()))
        .await
        .unwrap();
    let results = get_many(&client, 3).await;
    let ids: Vec<String> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(ids, ["i-0", "i-1", "i-2"]);
}

#[tokio::test]
async fn request_ids_count_from_one_per_connection_after_hello() {
    let server = FakeServer::start(FakeConfig::default()).await;
    let client = Client::connect(ClientOptions::new(server.addr()))
        .await
        .unwrap();
    client.ping().await.unwrap();
    let ids: Vec<(String, Op)> = server
        .seen()
        .into_iter()
        .map(|seen| (seen.request.id, seen.request.op))
        .collect();
    assert_eq!(ids, [("1".into(), Op::Hello), ("2".into(), Op::Ping)]);
    let hello = &server.seen_ops(Op::Hello)[0].request.params;
    assert_eq!(hello["protocol_version"], json!(1));
    assert_eq!(hello["wire_modes"], json!(["binary_json"]));
    assert_eq!(hello["features"], json!(["idempotency", "batch"]));
}

#[tokio::test]
async fn no_more_than_the_configured_number_of_requests_are_in_flight() {
    let server = FakeServer::start(FakeConfig {
        handler: Some(Arc::new(|request: &Request| {
            (request.op == Op::GetInstance).then_some(Reply::Silent)
        })),
        ..FakeConfig::default()
    })
    .await;
    let options = ClientOptions::new(server.addr())
        .max_in_flight_requests(4)
        .request_timeout(Duration::from_millis(1500));
    let client = Client::connect(options).await.unwrap();
    let calls = tokio::spawn({
        let client = client.clone();
        async move { get_many(&client, 10).await }
    });
    let deadline = Instant::now() + Duration::from_secs(1);
    while server.seen_ops(Op::GetInstance).len() < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The other six wait for a slot, which never frees while the four go unanswered.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.seen_ops(Op::GetInstance).len(), 4);
    let results = calls.await.unwrap();
    assert!(results.iter().all(|r| matches!(
        r,
        Err(ClientError::Timeout {
            op: Op::GetInstance,
            ..
        })
    )));
}

#[tokio::test]
async fn a_slow_answer_times_out_and_the_connection_stays_usable() {
    let server = FakeServer::start(FakeConfig {
        handler: Some(Arc::new(|request: &Request| {
            (request.op == Op::Ping).then(|| {
                let pong = json!({"pong": true}).as_object().cloned().unwrap();
                Reply::After(Duration::from_millis(600), Ok(pong))
            })
        })),
        ..FakeConfig::default()
    })
    .await;
    let options = ClientOptions::new(server.addr())
        .request_timeout(Duration::from_millis(150))
        .max_in_flight_requests(1);
    let client = Client::connect(options).await.unwrap();

    let error = client.ping().await.expect_err("the answer is too slow");
    assert!(
        matches!(error, ClientError::Timeout { op: Op::Ping, .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());

    // The only in-flight slot was given back, and the late PING answer, when it comes, is
    // discarded rather than taken for another request's.
    let info = client.info().await.expect("info after a timeout");
    assert_eq!(info.server_name, "rstmdb");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let info = client
        .info()
        .await
        .expect("info after the late answer arrived");
    assert_eq!(info.max_batch_ops, 100);
    assert!(client.is_connected());
}

#[tokio::test]
async fn a_handle_with_a_longer_timeout_waits_for_a_slow_answer() {
    let server = FakeServer::start(FakeConfig {
        handler: Some(Arc::new(|request: &Request| {
            (request.op == Op::Compact).then(|| {
                let result = json!({"snapshots_created": 1, "segments_deleted": 0,
                    "bytes_reclaimed": 0, "total_snapshots": 1, "wal_segments": 1,
                    "checkpoint_offset": 5});
                Reply::After(
                    Duration::from_millis(300),
                    Ok(result.as_object().cloned().unwrap()),
                )
            })
        })),
        ..FakeConfig::default()
    })
    .await;
    let options = ClientOptions::new(server.addr()).request_timeout(Duration::from_millis(100));
    let client = Client::connect(options).await.unwrap();
    assert!(matches!(
        client.compact(false).await,
        Err(ClientError::Timeout {
            op: Op::Compact,
            ..
        })
    ));
    let patient = client.with_request_timeout(Duration::from_secs(5));
    assert_eq!(patient.compact(false).await.unwrap().snapshots_created, 1);
}
