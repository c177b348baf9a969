//! A broken connection fails what was pending, and the client comes back by itself: backoff,
//! HELLO, AUTH, and every subscription resumed from the event after the last one it got.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client_support::{FakeConfig, FakeServer, Reply, TOKEN};
use futures::StreamExt;
use rstmdb_client::params::WatchAllParams;
use rstmdb_client::results::GetInstanceResult;
use rstmdb_client::{
    Client, ClientError, ClientOptions, ErrorCode, Op, RcpError, ReconnectPolicy, Request,
    Subscription,
};
use serde_json::{Value, json};

const STEP: Duration = Duration::from_secs(5);

fn options(server: &FakeServer) -> ClientOptions {
    ClientOptions::new(server.addr())
        .token(TOKEN)
        .request_timeout(STEP)
        .reconnect(ReconnectPolicy::exponential(
            Duration::from_millis(50),
            Duration::from_secs(1),
        ))
}

async fn authed_server() -> FakeServer {
    FakeServer::start(FakeConfig {
        token: Some(TOKEN.into()),
        ..FakeConfig::default()
    })
    .await
}

async fn next_offset(subscription: &mut Subscription) -> u64 {
    let item = tokio::time::timeout(STEP, subscription.next())
        .await
        .expect("an event in time")
        .expect("the stream goes on");
    item.expect("an event, not an error").wal_offset
}

async fn next_error(subscription: &mut Subscription) -> ClientError {
    let item = tokio::time::timeout(STEP, subscription.next())
        .await
        .expect("an item in time")
        .expect("the stream yields its terminal error");
    item.expect_err("a terminal error")
}

/// Waits until the fake has seen `count` requests of `op`.
async fn wait_for(server: &FakeServer, op: Op, count: usize) -> Vec<crate::client_support::Seen> {
    tokio::time::timeout(STEP, async {
        loop {
            let seen = server.seen_ops(op);
            if seen.len() >= count {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the fake never saw {count} {op}"))
}

/// Retries `call` while it fails with `ConnectionLost`: a call made just after the server
/// dropped the connection, before the client noticed, rightly fails that way.
async fn retrying<T, F, Fut>(mut call: F) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    loop {
        match call().await {
            Err(ClientError::ConnectionLost { .. }) => continue,
            other => return other,
        }
    }
}

fn from_offset(seen: &crate::client_support::Seen) -> Option<u64> {
    seen.request
        .params
        .get("from_offset")
        .and_then(Value::as_u64)
}

/// A fake that never answers GET_INSTANCE, a client connected to it, and such a GET in flight.
async fn a_get_the_fake_never_answers() -> (
    FakeServer,
    Client,
    tokio::task::JoinHandle<Result<GetInstanceResult, ClientError>>,
) {
    let server = FakeServer::start(FakeConfig {
        handler: Some(Arc::new(|request: &Request| {
            (request.op == Op::GetInstance).then_some(Reply::Silent)
        })),
        ..FakeConfig::default()
    })
    .await;
    let client = Client::connect(options(&server)).await.unwrap();
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.get_instance("order-1").await }
    });
    (server, client, pending)
}

#[tokio::test]
async fn a_dropped_connection_fails_pending_calls_with_connection_lost() {
    let (server, _client, pending) = a_get_the_fake_never_answers().await;
    wait_for(&server, Op::GetInstance, 1).await;
    let started = Instant::now();
    server.drop_connections();
    let error = pending.await.unwrap().expect_err("the answer never comes");
    assert!(
        matches!(error, ClientError::ConnectionLost { .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "fails at once, not at the timeout"
    );
}

#[tokio::test]
async fn the_client_reconnects_with_backoff_and_authenticates_again() {
    let server = authed_server().await;
    let client = Client::connect(options(&server)).await.unwrap();
    // The first two reconnect attempts are refused: waits of 50 and 100 ms, then 200 ms before
    // the attempt that succeeds.
    server.config(|config| config.refuse_next_connections = 2);
    let started = Instant::now();
    server.drop_connections();
    let info = retrying(|| client.info())
        .await
        .expect("INFO over the new connection");
    let elapsed = started.elapsed();
    assert_eq!(info.server_name, "rstmdb");
    assert!(
        elapsed >= Duration::from_millis(350),
        "backoff waited {elapsed:?}"
    );
    assert_eq!(server.connections_accepted(), 4);

    let on_new: Vec<(Op, Value)> = server
        .seen()
        .into_iter()
        .filter(|seen| seen.connection == 4)
        .map(|seen| (seen.request.op, Value::Object(seen.request.params)))
        .collect();
    assert_eq!(on_new[0].0, Op::Hello);
    assert_eq!(
        on_new[1],
        (Op::Auth, json!({"method": "bearer", "token": TOKEN}))
    );
    assert_eq!(on_new.last().map(|(op, _)| *op), Some(Op::Info));
}

#[tokio::test]
async fn a_subscription_resumes_after_its_last_event_without_gap_or_duplicate() {
    let server = authed_server().await;
    let client = Client::connect(options(&server)).await.unwrap();
    let mut subscription = client.watch_all(WatchAllParams::default()).await.unwrap();
    for offset in [10, 20, 30] {
        server.publish(offset);
    }
    for expected in [10, 20, 30] {
        assert_eq!(next_offset(&mut subscription).await, expected);
    }
    server.drop_connections();
    // Committed while the client is away: the server replays them on the new WATCH.
    server.publish(40);
    server.publish(50);
    let watches = wait_for(&server, Op::WatchAll, 2).await;
    assert_eq!(watches[1].connection, 2);
    assert_eq!(
        from_offset(&watches[1]),
        Some(31),
        "resumes right after offset 30"
    );
    server.publish(60);
    for expected in [40, 50, 60] {
        assert_eq!(next_offset(&mut subscription).await, expected);
    }
    assert_eq!(subscription.last_offset(), Some(60));
    assert_eq!(
        subscription.server_subscription_id().as_deref(),
        Some("sub-2-1"),
        "the new connection's id"
    );
    let auths = server.seen_ops(Op::Auth);
    assert_eq!(auths.len(), 2, "authenticated again before re-subscribing");
}

#[tokio::test]
async fn events_a_server_repeats_after_a_resume_are_not_delivered_twice() {
    let server = FakeServer::start(FakeConfig {
        replay_overlap: 25,
        ..FakeConfig::default()
    })
    .await;
    let client = Client::connect(options(&server)).await.unwrap();
    let mut subscription = client.watch_all(WatchAllParams::default()).await.unwrap();
    server.publish(10);
    server.publish(20);
    assert_eq!(next_offset(&mut subscription).await, 10);
    assert_eq!(next_offset(&mut subscription).await, 20);
    server.drop_connections();
    wait_for(&server, Op::WatchAll, 2).await;
    server.publish(30);
    // The fake replays from 21 - 25, so 10 and 20 come again; only 30 is new.
    assert_eq!(next_offset(&mut subscription).await, 30);
}

#[tokio::test]
async fn a_subscription_that_saw_nothing_resumes_from_its_subscription_point() {
    let server = FakeServer::start(FakeConfig::default()).await;
    server.publish(3);
    let client = Client::connect(options(&server)).await.unwrap();
    let mut subscription = client.watch_all(WatchAllParams::default()).await.unwrap();
    server.drop_connections();
    server.publish(7);
    let watches = wait_for(&server, Op::WatchAll, 2).await;
    assert_eq!(from_offset(&watches[0]), None);
    assert_eq!(
        from_offset(&watches[1]),
        Some(4),
        "the first WATCH's wal_offset"
    );
    assert_eq!(next_offset(&mut subscription).await, 7);
}

#[tokio::test]
async fn a_stream_error_ends_the_subscription_with_a_typed_error() {
    let server = FakeServer::start(FakeConfig::default()).await;
    let client = Client::connect(options(&server)).await.unwrap();
    let mut subscription = client.watch_all(WatchAllParams::default()).await.unwrap();
    server.publish(1);
    assert_eq!(next_offset(&mut subscription).await, 1);
    server.stream_error(RcpError::offset_compacted_next(2, 1 << 41));

    let error = next_error(&mut subscription).await;
    assert_eq!(error.code(), Some(&ErrorCode::NotFound));
    assert_eq!(error.reason(), Some("offset_compacted"));
    let details = error
        .server_error()
        .and_then(|e| e.details.clone())
        .unwrap();
    assert_eq!(details["next_offset"], json!(2));
    assert!(
        subscription.next().await.is_none(),
        "nothing after the terminal error"
    );

    // An ended subscription is not re-created after a reconnect.
    server.drop_connections();
    retrying(|| client.ping()).await.expect("reconnected");
    assert_eq!(server.seen_ops(Op::WatchAll).len(), 1);
}

#[tokio::test]
async fn a_subscription_the_server_refuses_to_resume_ends_with_that_error() {
    let server = FakeServer::start(FakeConfig::default()).await;
    let client = Client::connect(options(&server)).await.unwrap();
    let mut subscription = client.watch_all(WatchAllParams::default()).await.unwrap();
    server.publish(5);
    assert_eq!(next_offset(&mut subscription).await, 5);
    server.config(|config| {
        config.handler = Some(Arc::new(|request: &Request| {
            (request.op == Op::WatchAll)
                .then(|| Reply::Answer(Err(RcpError::offset_compacted_from(6, 1 << 41))))
        }))
    });
    server.drop_connections();
    let error = next_error(&mut subscription).await;
    assert_eq!(error.code(), Some(&ErrorCode::NotFound));
    assert_eq!(error.reason(), Some("offset_compacted"));
    assert!(
        retrying(|| client.ping()).await.is_ok(),
        "the client itself carries on"
    );
}

#[tokio::test]
async fn reconnecting_gives_up_after_the_configured_attempts_and_closes_the_client() {
    let server = FakeServer::start(FakeConfig::default()).await;
    let policy = ReconnectPolicy::exponential(Duration::from_millis(10), Duration::from_millis(50))
        .max_attempts(3);
    let client = Client::connect(options(&server).reconnect(policy))
        .await
        .unwrap();
    let mut subscription = client.watch_all(WatchAllParams::default()).await.unwrap();
    server.config(|config| config.refuse_next_connections = 100);
    server.drop_connections();

    let error = next_error(&mut subscription).await;
    assert!(matches!(error, ClientError::Closed { .. }), "{error:?}");
    let error = client.ping().await.expect_err("closed for good");
    assert!(matches!(error, ClientError::Closed { .. }), "{error:?}");
    assert!(!error.is_retryable());
    assert_eq!(
        server.connections_accepted(),
        4,
        "the first and three attempts"
    );
}

#[tokio::test]
async fn a_wrong_token_fails_connect_with_auth_failed() {
    let server = authed_server().await;
    let error = Client::connect(options(&server).token("wrong"))
        .await
        .expect_err("AUTH fails");
    assert_eq!(error.code(), Some(&ErrorCode::AuthFailed));
    assert_eq!(error.reason(), Some("invalid_token"));
}

#[tokio::test]
async fn without_a_token_auth_only_ops_are_unauthorized() {
    let server = authed_server().await;
    let mut no_token = options(&server);
    no_token.token = None;
    let client = Client::connect(no_token)
        .await
        .expect("HELLO needs no auth");
    assert!(client.ping().await.is_ok());
    let error = client.info().await.expect_err("INFO needs auth");
    assert_eq!(error.code(), Some(&ErrorCode::Unauthorized));
    assert_eq!(error.reason(), Some("auth_required"));
    assert!(client.auth(TOKEN).await.unwrap().authenticated);
    assert!(client.info().await.is_ok());
}

#[tokio::test]
async fn unwatch_cancels_on_the_server_and_is_not_resumed() {
    let server = FakeServer::start(FakeConfig::default()).await;
    let client = Client::connect(options(&server)).await.unwrap();
    let subscription = client.watch_all(WatchAllParams::default()).await.unwrap();
    let id = subscription.server_subscription_id().unwrap();
    subscription.unwatch().await.expect("unwatch");
    let unwatches = server.seen_ops(Op::Unwatch);
    assert_eq!(
        Value::Object(unwatches[0].request.params.clone()),
        json!({"subscription_id": id})
    );
    server.drop_connections();
    retrying(|| client.ping()).await.expect("reconnected");
    assert_eq!(server.seen_ops(Op::WatchAll).len(), 1);
}

#[tokio::test]
async fn dropping_a_subscription_sends_unwatch_in_the_background() {
    let server = FakeServer::start(FakeConfig::default()).await;
    let client = Client::connect(options(&server)).await.unwrap();
    let subscription = client.watch_all(WatchAllParams::default()).await.unwrap();
    let id = subscription.server_subscription_id().unwrap();
    drop(subscription);
    let unwatches = wait_for(&server, Op::Unwatch, 1).await;
    assert_eq!(unwatches[0].request.params["subscription_id"], json!(id));
}

#[tokio::test]
async fn close_says_bye_ends_subscriptions_and_stops_reconnecting() {
    let server = FakeServer::start(FakeConfig::default()).await;
    let client = Client::connect(options(&server)).await.unwrap();
    let mut subscription = client.watch_all(WatchAllParams::default()).await.unwrap();
    client.close().await.expect("BYE answered");
    assert_eq!(server.seen_ops(Op::Bye).len(), 1);
    let error = next_error(&mut subscription).await;
    assert!(matches!(error, ClientError::Closed { .. }), "{error:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.connections_accepted(), 1, "no reconnect after close");
    assert!(matches!(
        client.ping().await,
        Err(ClientError::Closed { .. })
    ));
}

#[tokio::test]
async fn a_malformed_server_message_breaks_the_connection_and_the_client_reconnects() {
    let (server, client, pending) = a_get_the_fake_never_answers().await;
    wait_for(&server, Op::GetInstance, 1).await;
    // An event without its required fields: the public clients stop reading on this (§1.2),
    // ours treats the connection as broken.
    server.send_raw(r#"{"type":"event","subscription_id":"sub-x"}"#);
    let error = pending.await.unwrap().expect_err("the connection broke");
    assert!(
        matches!(&error, ClientError::ConnectionLost { reason } if reason.contains("protocol violation")),
        "{error:?}"
    );
    assert!(retrying(|| client.ping()).await.is_ok());
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test]
async fn a_result_that_is_not_an_object_fails_its_request_and_keeps_the_connection() {
    let (server, client, pending) = a_get_the_fake_never_answers().await;
    let seen = wait_for(&server, Op::GetInstance, 1).await;
    // A well-formed response whose result is an array: the envelope is fine, so only this
    // request fails; the client keeps the result's text until the request's type reads it.
    let id = &seen[0].request.id;
    server.send_raw(&format!(
        r#"{{"type":"response","id":"{id}","status":"ok","result":[1,2]}}"#
    ));
    let error = pending
        .await
        .unwrap()
        .expect_err("an array is no GET_INSTANCE result");
    assert!(
        matches!(&error, ClientError::Protocol(reason) if reason.contains("unexpected result shape")),
        "{error:?}"
    );
    client
        .ping()
        .await
        .expect("the same connection still answers");
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test]
async fn unknown_message_types_are_skipped() {
    let server = FakeServer::start(FakeConfig::default()).await;
    let client = Client::connect(options(&server)).await.unwrap();
    server.send_raw(r#"{"type":"heartbeat","n":1}"#);
    assert!(client.ping().await.unwrap().pong);
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test]
async fn an_error_for_no_request_becomes_the_reason_pending_calls_fail_with() {
    let (server, _client, pending) = a_get_the_fake_never_answers().await;
    wait_for(&server, Op::GetInstance, 1).await;
    server.send_raw(
        r#"{"type":"response","id":"","status":"error","error":{"code":"BAD_REQUEST","message":"frame error: CRC mismatch","retryable":false,"details":{"reason":"frame_error","fault":"crc_mismatch"}}}"#,
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.drop_connections();
    let error = pending.await.unwrap().expect_err("closed after the error");
    assert!(
        matches!(&error, ClientError::ConnectionLost { reason } if reason.contains("CRC mismatch")),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_instance_subscription_resumes_after_the_instances_offset_at_subscription() {
    let server = FakeServer::start(FakeConfig::default()).await;
    server.publish(8);
    let client = Client::connect(options(&server)).await.unwrap();
    let mut subscription = client.watch_instance("order-1", true, None).await.unwrap();
    server.drop_connections();
    server.publish(12);
    let watches = wait_for(&server, Op::WatchInstance, 2).await;
    // The fake reports current_wal_offset 8: the next transition can only come after it.
    assert_eq!(from_offset(&watches[1]), Some(9));
    assert_eq!(
        Value::Object(watches[1].request.params.clone()),
        json!({"instance_id": "order-1", "include_ctx": true, "from_offset": 9})
    );
    assert_eq!(next_offset(&mut subscription).await, 12);
}

#[tokio::test]
async fn a_watch_that_fails_after_the_server_confirmed_it_is_cancelled_and_never_resumed() {
    // The answer names a subscription but lacks `wal_offset`: the call fails, yet the server
    // holds a subscription the client must cancel.
    let server = FakeServer::start(FakeConfig {
        handler: Some(Arc::new(|request: &Request| {
            (request.op == Op::WatchAll).then(|| {
                let result = json!({"subscription_id": "sub-orphan"});
                Reply::After(Duration::ZERO, Ok(result.as_object().cloned().unwrap()))
            })
        })),
        ..FakeConfig::default()
    })
    .await;
    let client = Client::connect(options(&server)).await.unwrap();
    let error = client
        .watch_all(WatchAllParams::default())
        .await
        .expect_err("the result has the wrong shape");
    assert!(matches!(error, ClientError::Protocol(_)), "{error:?}");
    let unwatches = wait_for(&server, Op::Unwatch, 1).await;
    assert_eq!(
        unwatches[0].request.params["subscription_id"],
        json!("sub-orphan")
    );

    server.drop_connections();
    retrying(|| client.ping()).await.expect("reconnected");
    assert_eq!(server.seen_ops(Op::WatchAll).len(), 1, "not re-created");
}

#[tokio::test]
async fn a_subscription_with_a_requested_start_that_saw_nothing_resumes_from_that_start() {
    let server = FakeServer::start(FakeConfig::default()).await;
    server.publish(3);
    let client = Client::connect(options(&server)).await.unwrap();
    let filter = WatchAllParams {
        from_offset: Some(100),
        machines: vec!["order".into()],
        ..WatchAllParams::default()
    };
    let mut subscription = client.watch_all(filter).await.unwrap();
    server.drop_connections();
    let watches = wait_for(&server, Op::WatchAll, 2).await;
    assert_eq!(
        Value::Object(watches[1].request.params.clone()),
        json!({"include_ctx": true, "from_offset": 100, "machines": ["order"]}),
        "same filters, same start"
    );
    server.publish(100);
    assert_eq!(next_offset(&mut subscription).await, 100);
}
