//! Result of STATS, this project's aggregate statistics extension (docs/stats-op.md).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::WalStatsResult;

/// STATS result: everything a dashboard polls once a second, in one round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsResult {
    /// The server's version string (as in HELLO's `server_version`).
    pub server_version: String,
    /// Seconds since the server started serving.
    pub uptime_secs: u64,
    /// Distinct machine names.
    pub machine_count: u64,
    /// Stored (machine, version) pairs.
    pub machine_version_count: u64,
    /// Live (non-deleted) instances.
    pub instance_count: u64,
    /// Live instances per (machine, version, state); states without instances are left out.
    /// Sorted by machine, version, state.
    pub instances: Vec<StateCountEntry>,
    /// The counts above reflect exactly the WAL records below this offset: a watch event with
    /// a smaller `wal_offset` is already counted, one at or above it is not.
    pub counts_offset: u64,
    /// Open connections, this one included; `null` when the server runs without metrics.
    pub connections: Option<u64>,
    /// Live watch subscriptions (WATCH_INSTANCE and WATCH_ALL), this dashboard's included.
    pub subscriptions: u64,
    /// Requests answered since start; `null` when the server runs without metrics.
    pub requests_total: Option<u64>,
    /// Error responses since start by error code; `null` when the server runs without metrics.
    pub errors_total: Option<BTreeMap<String, u64>>,
    /// The WAL_STATS result (§4.18), extension fields included.
    pub wal: WalStatsResult,
}

/// How many live instances of one machine version are in one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCountEntry {
    pub machine: String,
    pub version: u32,
    pub state: String,
    pub count: u64,
}
