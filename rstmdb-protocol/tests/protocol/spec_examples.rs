//! Every request/response example of spec §4 parses into the typed params and results and
//! re-serialises to an equal JSON value.
//!
//! `../fixtures/spec_op_examples.txt` holds the examples verbatim, one per line, prefixed with
//! `REQ ` (client to server) or `RES ` (server to client).

use std::collections::HashMap;

use rstmdb_protocol::results::*;
use rstmdb_protocol::{Op, OpParams, Outcome, Request, Response, ServerMessage};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

const EXAMPLES: &str = include_str!("../fixtures/spec_op_examples.txt");

fn examples(prefix: &str) -> impl Iterator<Item = &'static str> + '_ {
    EXAMPLES
        .lines()
        .filter_map(move |line| line.strip_prefix(prefix))
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("spec examples are valid JSON")
}

fn retyped<T: DeserializeOwned + Serialize>(result: &Map<String, Value>) -> Value {
    let typed: T = serde_json::from_value(Value::Object(result.clone()))
        .unwrap_or_else(|e| panic!("{}: {e}", std::any::type_name::<T>()));
    serde_json::to_value(typed).expect("typed results serialise")
}

/// Parses `result` as the typed result of `op` and serialises it again.
fn typed_result_round_trip(op: Op, result: &Map<String, Value>) -> Value {
    match op {
        Op::Hello => retyped::<HelloResult>(result),
        Op::Auth => retyped::<AuthResult>(result),
        Op::Ping => retyped::<PingResult>(result),
        Op::Bye => retyped::<ByeResult>(result),
        Op::Info => retyped::<InfoResult>(result),
        Op::ReplicationStatus => retyped::<ReplicationStatusResult>(result),
        Op::PutMachine => retyped::<PutMachineResult>(result),
        Op::GetMachine => retyped::<GetMachineResult>(result),
        Op::ListMachines => retyped::<ListMachinesResult>(result),
        Op::CreateInstance => retyped::<CreateInstanceResult>(result),
        Op::GetInstance => retyped::<GetInstanceResult>(result),
        Op::ListInstances => retyped::<ListInstancesResult>(result),
        Op::DeleteInstance => retyped::<DeleteInstanceResult>(result),
        Op::ApplyEvent => retyped::<ApplyEventResult>(result),
        Op::Batch => retyped::<BatchResult>(result),
        Op::SnapshotInstance => retyped::<SnapshotInstanceResult>(result),
        Op::WalRead => retyped::<WalReadResult>(result),
        Op::WalStats => retyped::<WalStatsResult>(result),
        Op::Compact => retyped::<CompactResult>(result),
        Op::WatchInstance => retyped::<WatchInstanceResult>(result),
        Op::WatchAll => retyped::<WatchAllResult>(result),
        Op::Unwatch => retyped::<UnwatchResult>(result),
        Op::FlushAll => retyped::<FlushAllResult>(result),
        Op::Replicate | Op::ReplicateAck => panic!("{op} has no success result"),
        Op::Stats => retyped::<StatsResult>(result),
        Op::ClusterStatus => retyped::<ClusterStatusResult>(result),
        Op::ClusterAddLearner => retyped::<ClusterAddLearnerResult>(result),
        Op::ClusterPromote | Op::ClusterRemoveNode => retyped::<ClusterMembersResult>(result),
        Op::ClusterTransferLeader => retyped::<ClusterTransferLeaderResult>(result),
    }
}

#[test]
fn every_example_request_parses_into_typed_params_and_back() {
    let mut seen = 0;
    for text in examples("REQ ") {
        let request = Request::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let params =
            OpParams::parse(request.op, &request.params).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(params.op(), request.op);
        assert_eq!(
            Value::Object(params.to_object().unwrap()),
            json(text)["params"],
            "{text}"
        );
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json(text),
            "the envelope re-serialises too"
        );
        seen += 1;
    }
    assert_eq!(
        seen, 26,
        "one request per op except REPLICATE_ACK, two BATCH"
    );
}

#[test]
fn every_example_response_parses_into_its_typed_result_and_back() {
    let mut op_of_id: HashMap<String, Op> = examples("REQ ")
        .map(|text| {
            let request = Request::parse(text).expect("checked above");
            (request.id, request.op)
        })
        .collect();
    // Response 15 is the replay of request 14.
    op_of_id.insert("15".into(), Op::ApplyEvent);

    let mut successes = 0;
    for text in examples("RES ") {
        let ServerMessage::Response(response) = ServerMessage::parse(text).unwrap() else {
            panic!("{text}: not a response");
        };
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json(text),
            "{text}"
        );
        // What the client keeps: the same response, its result decoded only when asked.
        let ServerMessage::Response(raw) = ServerMessage::parse_raw(text).unwrap() else {
            panic!("{text}: not a response");
        };
        assert_eq!(raw.into_response().unwrap(), response, "{text}");
        if let Outcome::Ok { result, .. } = &response.outcome {
            let op = op_of_id[&response.id];
            assert_eq!(
                typed_result_round_trip(op, result),
                json(text)["result"],
                "{text}"
            );
            successes += 1;
        }
    }
    assert_eq!(successes, 24);
}

#[test]
fn typed_results_build_the_spec_responses() {
    let result = PutMachineResult {
        machine: "order".into(),
        version: 1,
        stored_checksum: "eef67bea".into(),
        created: true,
    };
    let mut response = Response::ok_typed("7", &result).unwrap();
    if let Outcome::Ok { meta, .. } = &mut response.outcome {
        *meta = Some(rstmdb_protocol::ResponseMeta {
            wal_offset: 1_099_511_627_776,
        });
    }
    let expected = json(
        r#"{"type":"response","id":"7","status":"ok","result":{"machine":"order","version":1,"stored_checksum":"eef67bea","created":true},"meta":{"wal_offset":1099511627776}}"#,
    );
    assert_eq!(serde_json::to_value(&response).unwrap(), expected);
    assert_eq!(response.into_typed::<PutMachineResult>().unwrap(), result);
}

#[test]
fn batch_results_always_carry_both_result_and_error_keys() {
    let batch = BatchResult {
        results: vec![
            BatchItemResult::ok(Map::new()),
            BatchItemResult::error(rstmdb_protocol::RcpError::missing_param("instance_id")),
        ],
    };
    let value = serde_json::to_value(&batch).unwrap();
    assert_eq!(value["results"][0]["error"], Value::Null);
    assert_eq!(value["results"][1]["result"], Value::Null);
    assert_eq!(value["results"][1]["status"], "error");
}
