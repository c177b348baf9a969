//! Who this server is: the name, version and feature list HELLO, INFO and STATS report (§4.1,
//! §4.5, docs/stats-op.md).

pub const SERVER_NAME: &str = "rstmdb";
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Every server feature, in the order HELLO and INFO list them (§4.5).
pub const SERVER_FEATURES: [&str; 8] = [
    "idempotency",
    "batch",
    "wal_read",
    "atomic_batch",
    "watch_from_offset",
    "payload_guards",
    "ordered_transitions",
    "error_details",
];
