//! Connection limit and idle timeout (spec §8.4), pushed events (§3.7), and graceful shutdown.

use rstmdb::server::ServerSettings;
use rstmdb_testkit::echo::EchoServer;
use rstmdb_testkit::server::loopback_settings;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_connection_over_the_limit_gets_one_rate_limited_frame_then_close() {
    let server = EchoServer::start_with(ServerSettings {
        max_connections: 2,
        ..loopback_settings()
    })
    .await;
    let mut first = server.connect().await;
    let mut second = server.connect().await;
    // Both are established once they have been answered.
    first.call("PING", json!({})).await;
    second.call("PING", json!({})).await;

    let mut third = server.connect().await;
    let refusal = third.read_frame().await;
    assert_eq!(
        refusal,
        json!({"type": "response", "id": "", "status": "error",
               "error": {"code": "RATE_LIMITED", "message": "connection limit reached",
                         "retryable": true,
                         "details": {"reason": "connection_limit", "limit": 2}}})
    );
    third.expect_closed().await;

    drop(first);
    // The slot is released once the server notices the close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = server.connect().await;
        again.send("PING", json!({})).await;
        let response = again.read_frame().await;
        if response["status"] == json!("ok") {
            break;
        }
        assert!(Instant::now() < deadline, "slot never released: {response}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_idle_connection_is_closed_silently() {
    let server = EchoServer::start_with(ServerSettings {
        idle_timeout: Some(Duration::from_secs(1)),
        ..loopback_settings()
    })
    .await;
    let mut client = server.connect().await;
    client.call("PING", json!({})).await;
    let started = Instant::now();
    client.expect_closed().await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed too early: {waited:?}"
    );
}

#[tokio::test]
async fn bytes_arriving_keep_a_connection_from_idling() {
    let server = EchoServer::start_with(ServerSettings {
        idle_timeout: Some(Duration::from_secs(1)),
        ..loopback_settings()
    })
    .await;
    let mut client = server.connect().await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            client.call("PING", json!({})).await["result"],
            json!({"pong": true})
        );
    }
}

#[tokio::test]
async fn a_connection_holding_a_subscription_is_never_idle() {
    let server = EchoServer::start_with(ServerSettings {
        idle_timeout: Some(Duration::from_secs(1)),
        ..loopback_settings()
    })
    .await;
    let mut client = server.connect().await;
    let watch = client.call("WATCH_ALL", json!({})).await;
    let subscription = watch["result"]["subscription_id"].clone();
    client.expect_silence(Duration::from_millis(2500)).await;

    let unwatch = client
        .call("UNWATCH", json!({"subscription_id": subscription}))
        .await;
    assert_eq!(unwatch["result"], json!({"removed": true}));
    let started = Instant::now();
    client.expect_closed().await;
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn pushed_events_reach_the_client_in_the_connection_mode() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    client
        .send_raw(
            b"{\"type\":\"request\",\"id\":\"w\",\"op\":\"WATCH_ALL\",\"params\":{\"events\":3}}\n",
        )
        .await;
    let mut events = Vec::new();
    let mut response = None;
    for _ in 0..4 {
        let message = client.read_line().await;
        match message["type"].as_str() {
            Some("event") => events.push(message),
            Some("response") => response = Some(message),
            other => panic!("unexpected message type {other:?}"),
        }
    }
    let response = response.expect("the WATCH_ALL response");
    assert_eq!(response["id"], json!("w"));
    let offsets: Vec<_> = events.iter().map(|e| e["wal_offset"].clone()).collect();
    assert_eq!(offsets, [json!(0), json!(1), json!(2)]);
    assert_eq!(
        events[0]["subscription_id"],
        response["result"]["subscription_id"]
    );
    assert_eq!(events[0]["payload"], json!(null));
}

#[tokio::test]
async fn no_event_of_a_subscription_follows_the_unwatch_response() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    // The WATCH's events are still queued for the writer when the UNWATCH is handled.
    let mut burst = rstmdb_testkit::raw::frame(
        rstmdb_testkit::raw::request("w", "WATCH_ALL", json!({"events": 200})).as_bytes(),
    );
    burst.extend(rstmdb_testkit::raw::frame(
        rstmdb_testkit::raw::request("u", "UNWATCH", json!({"subscription_id": "sub-echo-0"}))
            .as_bytes(),
    ));
    burst.extend(rstmdb_testkit::raw::frame(
        rstmdb_testkit::raw::request("p", "PING", json!({})).as_bytes(),
    ));
    client.send_raw(&burst).await;
    let mut unwatched = false;
    loop {
        let message = client.read_frame().await;
        if message["type"] == json!("event") {
            assert!(!unwatched, "event after the UNWATCH response: {message}");
            assert_eq!(message["subscription_id"], json!("sub-echo-0"));
            continue;
        }
        match message["id"].as_str() {
            Some("u") => unwatched = true,
            // Anything still queued for the writer would have been written by now.
            Some("p") => {
                client
                    .send_frame(&rstmdb_testkit::raw::request("p2", "PING", json!({})))
                    .await;
            }
            Some("p2") => break,
            _ => {}
        }
    }
    assert!(unwatched);
}

#[tokio::test]
async fn graceful_shutdown_answers_requests_in_flight_then_runs_the_hook() {
    let mut server = EchoServer::start().await;
    let mut client = server.connect().await;
    let id = client.send("APPLY_EVENT", json!({"delay_ms": 500})).await;
    // Let the request be read and started before shutdown begins.
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.begin_shutdown();

    let response = client.read_frame().await;
    assert_eq!(response["id"], json!(id));
    assert_eq!(response["result"]["op"], json!("APPLY_EVENT"));
    client.expect_closed().await;

    let handler = server.handler.clone();
    let addr = server.addr;
    server.wait_stopped().await;
    assert_eq!(handler.shutdown_calls(), 1, "the shutdown hook ran once");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn the_handler_learns_when_a_subscribed_connection_closes() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    client.call("WATCH_ALL", json!({})).await;
    client
        .call("WATCH_INSTANCE", json!({"instance_id": "i-1"}))
        .await;
    assert_eq!(server.handler.watches_ended_by_close(), 0);
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.handler.watches_ended_by_close() < 2 {
        assert!(
            Instant::now() < deadline,
            "subscriptions never saw the close"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
