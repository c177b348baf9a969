//! Results of the watch ops and FLUSH_ALL (§4.20–§4.23).

use serde::{Deserialize, Serialize};

/// WATCH_INSTANCE result (§4.20).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchInstanceResult {
    pub subscription_id: String,
    pub instance_id: String,
    pub current_state: String,
    pub current_wal_offset: u64,
}

/// WATCH_ALL result (§4.21).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchAllResult {
    pub subscription_id: String,
    /// The `latest_offset` at the subscription point.
    pub wal_offset: u64,
}

/// UNWATCH result (§4.22).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnwatchResult {
    pub subscription_id: String,
    /// False when the id was unknown, another connection's, or already ended.
    pub removed: bool,
}

/// FLUSH_ALL result (§4.23).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlushAllResult {
    pub flushed: bool,
    pub instances_removed: u64,
    pub machines_removed: u64,
}
