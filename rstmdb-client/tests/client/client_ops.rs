//! Every typed client method sends the params of the spec's example request and returns the
//! example's result as the typed result; server errors arrive typed with code, retryable flag
//! and details.

use std::time::Duration;

use crate::client_support::{FakeConfig, FakeServer, Reply, TOKEN, spec_examples};
use rstmdb_client::params::{BatchMode, ListInstancesParams};
use rstmdb_client::{
    ApplyEventOptions, Client, ClientError, ClientOptions, CreateInstanceOptions, ErrorCode, Op,
    OpParams, Outcome, RcpError, WatchStart,
};
use serde::Serialize;
use serde_json::{Map, Value, json};

async fn connect(server: &FakeServer) -> Client {
    let options = ClientOptions::new(server.addr())
        .client_name("rstmdb-py")
        .token(TOKEN)
        .request_timeout(Duration::from_secs(5));
    Client::connect(options).await.expect("connect to the fake")
}

fn to_json<T: Serialize>(result: Result<T, ClientError>) -> Result<Value, RcpError> {
    match result {
        Ok(typed) => Ok(serde_json::to_value(typed).expect("typed results serialise")),
        Err(ClientError::Server(error)) => Err(error),
        Err(other) => panic!("unexpected client error: {other}"),
    }
}

/// Calls the typed method for `params` (parsed from a spec example request) and returns the
/// typed result re-serialised, or the server's error.
async fn call_typed(client: &Client, params: OpParams) -> Result<Value, RcpError> {
    match params {
        OpParams::Hello(_) => to_json(client.hello().await),
        OpParams::Auth(p) => to_json(client.auth(&p.token).await),
        OpParams::Ping => to_json(client.ping().await),
        OpParams::Bye => to_json(client.bye().await),
        OpParams::Info => to_json(client.info().await),
        OpParams::ReplicationStatus => to_json(client.replication_status().await),
        OpParams::PutMachine(p) => to_json(
            client
                .put_machine(&p.machine, p.version, p.definition)
                .await,
        ),
        OpParams::GetMachine(p) => to_json(client.get_machine(&p.machine, p.version).await),
        OpParams::ListMachines => to_json(client.list_machines().await),
        OpParams::CreateInstance(p) => {
            let options = CreateInstanceOptions {
                instance_id: p.instance_id,
                initial_ctx: p.initial_ctx,
                idempotency_key: p.idempotency_key,
            };
            to_json(client.create_instance(&p.machine, p.version, options).await)
        }
        OpParams::GetInstance(p) => to_json(client.get_instance(&p.instance_id).await),
        OpParams::ListInstances(p) => to_json(client.list_instances(p).await),
        OpParams::DeleteInstance(p) => to_json(
            client
                .delete_instance(&p.instance_id, p.idempotency_key.as_deref())
                .await,
        ),
        OpParams::ApplyEvent(p) => {
            let options = ApplyEventOptions {
                payload: p.payload,
                expected_state: p.expected_state,
                expected_wal_offset: p.expected_wal_offset,
                event_id: p.event_id,
                idempotency_key: p.idempotency_key,
            };
            to_json(client.apply_event(&p.instance_id, &p.event, options).await)
        }
        OpParams::Batch(p) => to_json(client.batch(p.mode, p.ops).await),
        OpParams::SnapshotInstance(p) => to_json(client.snapshot_instance(&p.instance_id).await),
        OpParams::WalRead(p) => to_json(client.wal_read(p.from_offset, p.limit).await),
        OpParams::WalStats => to_json(client.wal_stats().await),
        OpParams::Stats => to_json(client.stats().await),
        OpParams::ClusterStatus => to_json(client.cluster_status().await),
        OpParams::ClusterAddLearner(p) => to_json(
            client
                .cluster_add_learner(p.node_id, &p.raft_addr, &p.client_addr)
                .await,
        ),
        OpParams::ClusterPromote(p) => to_json(client.cluster_promote(p.node_id).await),
        OpParams::ClusterRemoveNode(p) => to_json(client.cluster_remove_node(p.node_id).await),
        OpParams::ClusterTransferLeader(p) => {
            to_json(client.cluster_transfer_leader(p.node_id).await)
        }
        OpParams::Compact(p) => to_json(client.compact(p.force_snapshot).await),
        OpParams::Unwatch(p) => to_json(client.unwatch(&p.subscription_id).await),
        OpParams::FlushAll => to_json(client.flush_all().await),
        OpParams::WatchInstance(_)
        | OpParams::WatchAll(_)
        | OpParams::Replicate
        | OpParams::ReplicateAck => unreachable!("tested separately"),
    }
}

#[tokio::test]
async fn every_typed_method_sends_the_spec_params_and_returns_the_spec_result() {
    let server = FakeServer::start(FakeConfig {
        token: Some(TOKEN.into()),
        ..FakeConfig::default()
    })
    .await;
    let client = connect(&server).await;
    let mut checked = Vec::new();
    for op in Op::ALL {
        if matches!(
            op,
            Op::WatchAll | Op::WatchInstance | Op::Replicate | Op::ReplicateAck | Op::Bye
        ) {
            continue;
        }
        for (params, example) in spec_examples(op) {
            let params = params.as_object().cloned().expect("params are objects");
            let typed_params = OpParams::parse(op, &params).expect("example params parse");
            let got = call_typed(&client, typed_params).await;

            let sent = server.seen_ops(op).pop().expect("the fake saw the request");
            assert_eq!(
                Value::Object(sent.request.params),
                Value::Object(params.clone()),
                "{op} params"
            );
            let expected = match example.outcome {
                Outcome::Ok { result, .. } => Ok(Value::Object(result)),
                Outcome::Error { error } => Err(error),
            };
            assert_eq!(got, expected, "{op} result");
            checked.push(op);
        }
    }
    checked.dedup();
    assert_eq!(checked.len(), 20, "ops checked: {checked:?}");
}

#[tokio::test]
async fn bye_is_answered_and_the_client_reconnects_afterwards() {
    let server = FakeServer::start(FakeConfig::default()).await;
    let client = connect(&server).await;
    assert!(client.bye().await.expect("bye").goodbye);
    // The fake closed the connection after BYE; the next call goes over a new one.
    tokio::time::timeout(Duration::from_secs(5), async {
        while client.ping().await.is_err() {}
    })
    .await
    .expect("the client reconnects after BYE");
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test]
async fn watch_methods_send_their_filters_and_return_the_subscription_point() {
    let server = FakeServer::start(FakeConfig::default()).await;
    let client = connect(&server).await;
    for (params, _) in spec_examples(Op::WatchAll) {
        let filter = match OpParams::parse(Op::WatchAll, params.as_object().unwrap()).unwrap() {
            OpParams::WatchAll(filter) => filter,
            other => panic!("{other:?}"),
        };
        let subscription = client.watch_all(filter).await.expect("watch_all");
        let sent = server.seen_ops(Op::WatchAll).pop().unwrap();
        assert_eq!(Value::Object(sent.request.params), params);
        let WatchStart::All(start) = subscription.start() else {
            panic!("WATCH_ALL starts with a WatchAllResult");
        };
        assert_eq!(
            Some(start.subscription_id.clone()),
            subscription.server_subscription_id()
        );
    }
    let subscription = client
        .watch_instance("order-1", false, None)
        .await
        .expect("watch_instance");
    let sent = server.seen_ops(Op::WatchInstance).pop().unwrap();
    assert_eq!(
        Value::Object(sent.request.params),
        json!({"instance_id": "order-1", "include_ctx": false})
    );
    assert!(
        matches!(subscription.start(), WatchStart::Instance(start) if start.instance_id == "order-1")
    );
}

#[tokio::test]
async fn the_raw_request_returns_result_and_meta_or_the_server_error() {
    let server = FakeServer::start(FakeConfig::default()).await;
    let client = connect(&server).await;
    let (params, _) = spec_examples(Op::PutMachine).remove(0);
    let raw = client
        .request(Op::PutMachine, params.as_object().cloned().unwrap())
        .await
        .expect("raw put_machine");
    assert_eq!(raw.result["stored_checksum"], json!("eef67bea"));
    // The fake answers from the result alone, so no meta; the wire parse of meta is covered
    // by the protocol tests.
    assert_eq!(raw.meta, None);

    let error = client
        .request(Op::Replicate, Map::new())
        .await
        .expect_err("REPLICATE always fails");
    assert_eq!(error.code(), Some(&ErrorCode::BadRequest));
    assert_eq!(error.reason(), Some("replication_internal"));
}

#[tokio::test]
async fn server_errors_carry_code_message_retryable_flag_and_details() {
    let server = FakeServer::start(FakeConfig::default()).await;
    let client = connect(&server).await;
    let error = client
        .apply_event("order-3", "SHIP", ApplyEventOptions::default())
        .await
        .expect_err("the example guard fails");
    let server_error = error.server_error().expect("a server error");
    assert_eq!(server_error.code, ErrorCode::GuardFailed);
    assert!(!error.is_retryable());
    assert_eq!(server_error.detail("guards"), Some(&json!(["ctx.ready"])));
    assert!(server_error.message.contains("SHIP"));

    let error = client
        .batch(
            BatchMode::Atomic,
            match OpParams::parse(
                Op::Batch,
                spec_examples(Op::Batch)[1].0.as_object().unwrap(),
            )
            .unwrap()
            {
                OpParams::Batch(batch) => batch.ops,
                other => panic!("{other:?}"),
            },
        )
        .await
        .expect_err("the atomic example fails");
    assert_eq!(error.code(), Some(&ErrorCode::InvalidTransition));
    let details = error
        .server_error()
        .and_then(|e| e.details.clone())
        .unwrap();
    assert_eq!(details["index"], json!(1));
    assert_eq!(details["op"], json!("APPLY_EVENT"));
}

#[tokio::test]
async fn retryable_server_errors_say_so() {
    let server = FakeServer::start(FakeConfig {
        handler: Some(std::sync::Arc::new(|request: &rstmdb_client::Request| {
            (request.op == Op::WalStats).then(|| {
                Reply::Answer(Err(RcpError::with_reason(
                    ErrorCode::WalIoError,
                    "wal_read_failed",
                    "disk on fire",
                )))
            })
        })),
        ..FakeConfig::default()
    })
    .await;
    let client = connect(&server).await;
    let error = client.wal_stats().await.expect_err("WAL_IO_ERROR");
    assert!(error.is_retryable());
    assert_eq!(error.code(), Some(&ErrorCode::WalIoError));
}

#[tokio::test]
async fn an_unknown_error_code_becomes_other_and_keeps_the_servers_flag() {
    let server = FakeServer::start(FakeConfig {
        handler: Some(std::sync::Arc::new(|request: &rstmdb_client::Request| {
            (request.op == Op::Info).then(|| {
                let mut error =
                    RcpError::new(ErrorCode::Other("QUOTA_EXCEEDED".into()), "slow down");
                error.retryable = true;
                Reply::Answer(Err(error.with_detail("reason", "quota")))
            })
        })),
        ..FakeConfig::default()
    })
    .await;
    let client = connect(&server).await;
    let error = client.info().await.expect_err("an error");
    assert_eq!(
        error.code(),
        Some(&ErrorCode::Other("QUOTA_EXCEEDED".into()))
    );
    assert!(error.is_retryable());
    assert_eq!(error.reason(), Some("quota"));
    // The connection survives an unknown code: the next call works.
    assert!(client.ping().await.expect("ping").pong);
}

#[tokio::test]
async fn a_result_of_the_wrong_shape_is_a_protocol_error_not_a_panic() {
    let server = FakeServer::start(FakeConfig {
        handler: Some(std::sync::Arc::new(|request: &rstmdb_client::Request| {
            (request.op == Op::Ping)
                .then(|| Reply::Answer(Ok(json!({"pong": "yes"}).as_object().cloned().unwrap())))
        })),
        ..FakeConfig::default()
    })
    .await;
    let client = connect(&server).await;
    let error = client.ping().await.expect_err("pong must be a bool");
    assert!(matches!(error, ClientError::Protocol(_)), "{error:?}");
}

#[tokio::test]
async fn list_instances_sends_only_the_params_given() {
    let server = FakeServer::start(FakeConfig::default()).await;
    let client = connect(&server).await;
    let params = ListInstancesParams {
        after: Some("order-1".into()),
        ..ListInstancesParams::default()
    };
    client.list_instances(params).await.expect("list");
    let sent = server.seen_ops(Op::ListInstances).pop().unwrap();
    assert_eq!(
        Value::Object(sent.request.params),
        json!({"after": "order-1"})
    );
}
