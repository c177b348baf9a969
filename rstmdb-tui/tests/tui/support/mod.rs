//! A fixed dashboard state for the state-update and snapshot tests.

use rstmdb_client::Event;
use rstmdb_client::results::StatsResult;
use rstmdb_tui::{App, Message};
use serde_json::json;

/// 2026-01-01 00:00:10 UTC.
pub const T0_MS: u64 = 1_767_225_610_000;
pub const SEGMENT_1: u64 = 1 << 40;

pub fn event(instance: &str, from: &str, to: &str, name: &str, wal_offset: u64) -> Message {
    let event: Event = serde_json::from_value(json!({
        "type": "event",
        "subscription_id": "sub-1",
        "instance_id": instance,
        "machine": "order",
        "version": 1,
        "wal_offset": wal_offset,
        "from_state": from,
        "to_state": to,
        "event": name,
        "payload": null,
    }))
    .expect("a valid event");
    Message::Event(Box::new(event))
}

/// A STATS answer: three `order` instances in `created`, one `paid`; one `ticket` open.
pub fn stats(latest_offset: u64, uptime_secs: u64, requests_total: u64) -> Message {
    let stats: StatsResult = serde_json::from_value(json!({
        "server_version": "0.1.0",
        "uptime_secs": uptime_secs,
        "machine_count": 2,
        "machine_version_count": 3,
        "instance_count": 5,
        "instances": [
            {"machine": "order", "version": 1, "state": "created", "count": 3},
            {"machine": "order", "version": 1, "state": "paid", "count": 1},
            {"machine": "ticket", "version": 2, "state": "open", "count": 1}
        ],
        "counts_offset": latest_offset,
        "connections": 2,
        "subscriptions": 1,
        "requests_total": requests_total,
        "errors_total": {"NOT_FOUND": requests_total / 10},
        "wal": {
            "entry_count": 12,
            "segment_count": 1,
            "total_size_bytes": 3000,
            "latest_offset": latest_offset,
            "io_stats": {"bytes_written": 3000, "bytes_read": 0, "writes": 12, "reads": 0,
                         "fsyncs": 10, "write_calls": 12},
            "durable_offset": latest_offset - 200,
            "oldest_offset": 0,
            "checkpoint_offset": null,
            "bytes_since_checkpoint": 3000,
            "fsync_policy": "every_write",
            "fsync_latency_us": {"p50": 850, "p99": 2100},
            "records_per_fsync": 1.2
        }
    }))
    .expect("a valid STATS result");
    Message::Stats(Box::new(stats))
}

/// The state the snapshots render: polled twice, three transitions seen, connected.
pub fn fixed_app() -> App {
    let mut app = App::new("127.0.0.1:7401");
    app.update(Message::Link(true));
    app.update(Message::StreamUp);
    app.update(Message::Tick { unix_ms: T0_MS });
    app.update(stats(SEGMENT_1 + 3000, 10, 100));
    app.update(Message::Tick {
        unix_ms: T0_MS + 1000,
    });
    app.update(event("order-1", "created", "paid", "PAY", SEGMENT_1 + 3000));
    app.update(event("order-2", "created", "paid", "PAY", SEGMENT_1 + 3100));
    app.update(event(
        "order-1",
        "paid",
        "shipped",
        "SHIP",
        SEGMENT_1 + 3200,
    ));
    app.update(Message::Tick {
        unix_ms: T0_MS + 2000,
    });
    app.update(stats(SEGMENT_1 + 3300, 12, 140));
    app.update(event("order-3", "created", "paid", "PAY", SEGMENT_1 + 3300));
    app
}

/// A CLUSTER_STATUS of a follower of three nodes, the leader being node 1.
pub fn cluster_status() -> rstmdb_client::results::ClusterStatusResult {
    serde_json::from_value(serde_json::json!({
        "cluster_id": null,
        "node_id": 2,
        "role": "follower",
        "term": 3,
        "leader": {"node_id": 1, "client_addr": "10.0.0.1:7401"},
        "commit_index": 1042,
        "applied_offset": 1_099_511_927_776u64,
        "members": [
            {"node_id": 1, "raft_addr": "10.0.0.1:7411", "client_addr": "10.0.0.1:7401",
             "voter": true, "matched_index": 1042, "lag_entries": 0, "last_contact_ms": null},
            {"node_id": 2, "raft_addr": "10.0.0.2:7411", "client_addr": "10.0.0.2:7401",
             "voter": true, "matched_index": 1040, "lag_entries": 2, "last_contact_ms": null},
            {"node_id": 4, "raft_addr": "10.0.0.4:7411", "client_addr": "",
             "voter": false, "matched_index": null, "lag_entries": null, "last_contact_ms": null}
        ]
    }))
    .expect("a CLUSTER_STATUS result")
}
