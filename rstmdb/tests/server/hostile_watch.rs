//! Watch requests a client can make the real binary hold (issue 14, item 3): filter lists and
//! watched ids are bounded, and so are one connection's subscriptions.

use rstmdb_testkit::binary::RunningBinary;
use rstmdb_testkit::raw::authenticated;
use serde_json::json;
use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_watch_filters_and_ids_are_refused_with_their_limit() {
    let (binary, addr) = RunningBinary::listening(
        Path::new(env!("CARGO_BIN_EXE_rstmdb")),
        &[("RSTMDB_WATCH_MAX_SUBSCRIPTIONS_PER_CONNECTION", "2")],
    );
    let mut client = authenticated(addr).await;

    let too_many: Vec<String> = (0..257).map(|n| format!("m{n}")).collect();
    let refused = client
        .call("WATCH_ALL", json!({"machines": too_many}))
        .await;
    assert_eq!(refused["error"]["code"], json!("BAD_REQUEST"), "{refused}");
    assert_eq!(
        refused["error"]["details"],
        json!({"reason": "invalid_param", "param": "machines",
               "expected": "a list of at most 256 strings", "size": 257, "limit": 256})
    );
    let refused = client
        .call("WATCH_ALL", json!({"events": ["e".repeat(1025)]}))
        .await;
    assert_eq!(
        refused["error"]["details"]["limit"],
        json!(1024),
        "{refused}"
    );
    let refused = client
        .call("WATCH_INSTANCE", json!({"instance_id": "i".repeat(1025)}))
        .await;
    assert_eq!(refused["error"]["details"]["param"], json!("instance_id"));
    assert_eq!(refused["error"]["details"]["limit"], json!(1024));

    // At the limits it works, up to the connection's subscription cap.
    let most: Vec<String> = (0..256)
        .map(|n| "m".repeat(1000) + &n.to_string())
        .collect();
    let first = client.call("WATCH_ALL", json!({"machines": most})).await;
    assert_eq!(first["status"], json!("ok"), "{first}");
    let second = client.call("WATCH_ALL", json!({})).await;
    assert_eq!(second["status"], json!("ok"), "{second}");
    let third = client.call("WATCH_ALL", json!({})).await;
    assert_eq!(
        third["error"]["details"]["reason"],
        json!("subscription_limit"),
        "{third}"
    );
    binary.stop();
}
