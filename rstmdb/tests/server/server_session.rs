//! The ops the session answers itself (spec §4.1–§4.6, §4.24), the auth gate (§4.0) and the
//! AUTH failure limit (§4.2), BYE, and a handler panic turned into INTERNAL_ERROR.

use rstmdb::server::ServerSettings;
use rstmdb::service::SERVER_VERSION;
use rstmdb_testkit::TOKEN;
use rstmdb_testkit::echo::EchoServer;
use rstmdb_testkit::raw::{error_reason, frame, request};
use rstmdb_testkit::server::{loopback_settings, loopback_settings_with_auth};
use serde_json::json;

#[tokio::test]
async fn hello_reports_identity_and_the_features_both_sides_know_in_server_order() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    let response = client
        .call(
            "HELLO",
            json!({"protocol_version": 1, "client_name": "t", "wire_modes": ["binary_json"],
                   "features": ["error_details", "teleport", "batch", "idempotency"]}),
        )
        .await;
    assert_eq!(
        response["result"],
        json!({"protocol_version": 1, "wire_mode": "binary_json", "server_name": "rstmdb",
               "server_version": SERVER_VERSION,
               "features": ["idempotency", "batch", "error_details"]})
    );
}

#[tokio::test]
async fn hello_with_protocol_version_2_is_unsupported_protocol_with_details() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    let response = client.call("HELLO", json!({"protocol_version": 2})).await;
    assert_eq!(response["error"]["code"], json!("UNSUPPORTED_PROTOCOL"));
    assert_eq!(
        response["error"]["details"],
        json!({"reason": "unsupported_protocol", "requested": 2, "supported": [1]})
    );
    assert_eq!(
        client.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );
}

#[tokio::test]
async fn hello_with_an_ill_typed_param_is_bad_request() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    for (params, param, expected) in [
        (json!({"protocol_version": 1.0}), "protocol_version", "u16"),
        (
            json!({"protocol_version": 70000}),
            "protocol_version",
            "u16",
        ),
        (
            json!({"protocol_version": 1, "client_name": 3}),
            "client_name",
            "string",
        ),
        (
            json!({"protocol_version": 1, "wire_modes": "jsonl"}),
            "wire_modes",
            "string[]",
        ),
        (
            json!({"protocol_version": 1, "features": [1]}),
            "features",
            "string[]",
        ),
    ] {
        let response = client.call("HELLO", params).await;
        assert_eq!(
            response["error"]["details"],
            json!({"reason": "invalid_param", "param": param, "expected": expected})
        );
    }
}

#[tokio::test]
async fn info_lists_limits_and_every_feature_in_spec_order() {
    let server = EchoServer::start_with(ServerSettings {
        max_frame_bytes: 100_000,
        ..loopback_settings()
    })
    .await;
    let mut client = server.connect().await;
    let response = client.call("INFO", json!({})).await;
    assert_eq!(
        response["result"],
        json!({"server_name": "rstmdb", "server_version": SERVER_VERSION, "protocol_version": 1,
               "features": ["idempotency", "batch", "wal_read", "atomic_batch", "watch_from_offset",
                            "payload_guards", "ordered_transitions", "error_details"],
               "max_frame_bytes": 100_000, "max_batch_ops": 100})
    );
}

#[tokio::test]
async fn replication_status_is_standalone_and_replicate_ops_are_internal() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    let status = client.call("REPLICATION_STATUS", json!({})).await;
    assert_eq!(status["result"], json!({"role": "standalone"}));
    for op in ["REPLICATE", "REPLICATE_ACK"] {
        let response = client.call(op, json!({"anything": [1, 2]})).await;
        assert_eq!(response["error"]["code"], json!("BAD_REQUEST"));
        assert_eq!(
            response["error"]["details"],
            json!({"reason": "replication_internal"})
        );
    }
}

#[tokio::test]
async fn needs_auth_ops_are_unauthorized_before_auth_and_work_after() {
    let server = EchoServer::start_with(loopback_settings_with_auth()).await;
    let mut client = server.connect().await;
    assert_eq!(
        client.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );
    for op in ["INFO", "REPLICATION_STATUS", "REPLICATE", "GET_INSTANCE"] {
        // Params that would be invalid prove the gate runs before they are looked at.
        let response = client.call(op, json!({"instance_id": 5})).await;
        assert_eq!(
            response["error"]["code"],
            json!("UNAUTHORIZED"),
            "{op}: {response}"
        );
        assert_eq!(
            response["error"]["details"],
            json!({"reason": "auth_required"})
        );
    }
    let auth = client
        .call("AUTH", json!({"method": "bearer", "token": TOKEN}))
        .await;
    assert_eq!(auth["result"], json!({"authenticated": true}));
    let info = client.call("INFO", json!({})).await;
    assert_eq!(info["status"], json!("ok"));
    let data = client
        .call("GET_INSTANCE", json!({"instance_id": "i-1"}))
        .await;
    assert_eq!(
        data["result"]["op"],
        json!("GET_INSTANCE"),
        "data ops reach the handler"
    );
}

#[tokio::test]
async fn auth_failure_reasons_follow_the_spec_steps() {
    let server = EchoServer::start_with(loopback_settings_with_auth()).await;
    let mut client = server.connect().await;
    let cases = [
        (
            json!({"method": "basic", "token": TOKEN}),
            "unsupported_method",
        ),
        (json!({"method": "bearer", "token": ""}), "empty_token"),
    ];
    for (params, reason) in cases {
        let response = client.call("AUTH", params).await;
        assert_eq!(response["error"]["code"], json!("AUTH_FAILED"));
        assert_eq!(error_reason(&response), &json!(reason));
    }
    // Two failures so far; a success resets the count.
    let ok = client
        .call("AUTH", json!({"method": "bearer", "token": TOKEN}))
        .await;
    assert_eq!(ok["status"], json!("ok"));
    let bad = client
        .call("AUTH", json!({"method": "bearer", "token": "nope"}))
        .await;
    assert_eq!(error_reason(&bad), &json!("invalid_token"));
    assert_eq!(
        client.call("INFO", json!({})).await["status"],
        json!("ok"),
        "still authenticated"
    );
}

#[tokio::test]
async fn malformed_auth_is_bad_request_and_does_not_count() {
    let server = EchoServer::start_with(loopback_settings_with_auth()).await;
    let mut client = server.connect().await;
    for _ in 0..3 {
        let response = client.call("AUTH", json!({"method": "bearer"})).await;
        assert_eq!(
            response["error"]["details"],
            json!({"reason": "missing_param", "param": "token"})
        );
        let response = client
            .call("AUTH", json!({"method": 1, "token": "x"}))
            .await;
        assert_eq!(error_reason(&response), &json!("invalid_param"));
    }
    assert_eq!(
        client.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );
}

#[tokio::test]
async fn auth_with_auth_off_succeeds_with_any_token() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    let response = client
        .call("AUTH", json!({"method": "bearer", "token": "whatever"}))
        .await;
    assert_eq!(response["result"], json!({"authenticated": true}));
}

#[tokio::test]
async fn third_consecutive_auth_failure_is_answered_then_closes() {
    let server = EchoServer::start_with(loopback_settings_with_auth()).await;
    let mut client = server.connect().await;
    let bad = json!({"method": "bearer", "token": "wrong"});
    let mut burst = Vec::new();
    for id in ["1", "2", "3", "4"] {
        burst.extend(frame(request(id, "AUTH", bad.clone()).as_bytes()));
    }
    // The fourth AUTH is already on its way when the server closes: it must not reset the
    // connection before the third answer arrives.
    client.send_raw(&burst).await;
    for id in ["1", "2", "3"] {
        let response = client.read_frame().await;
        assert_eq!(response["id"], json!(id));
        assert_eq!(response["error"]["code"], json!("AUTH_FAILED"));
    }
    client.expect_closed().await;
}

#[tokio::test]
async fn bye_answers_then_closes_and_discards_later_requests() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    let mut burst = frame(request("1", "BYE", json!({})).as_bytes());
    burst.extend(frame(request("2", "PING", json!({})).as_bytes()));
    client.send_raw(&burst).await;
    let response = client.read_frame().await;
    assert_eq!(response["result"], json!({"goodbye": true}));
    client.expect_closed().await;
}

#[tokio::test]
async fn a_panicking_handler_gives_internal_error_and_the_server_lives_on() {
    let server = EchoServer::start().await;
    let mut client = server.connect().await;
    for params in [json!({"panic": true}), json!({"panic_in_future": true})] {
        let response = client.call("GET_INSTANCE", params).await;
        assert_eq!(response["error"]["code"], json!("INTERNAL_ERROR"));
        assert_eq!(response["error"]["retryable"], json!(true));
    }
    assert_eq!(
        client.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );
    let mut other = server.connect().await;
    assert_eq!(
        other.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );
}
