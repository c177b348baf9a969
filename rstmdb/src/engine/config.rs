//! The engine's settings: the `storage.*` keys of spec §9 that change what a command does.

/// Settings that change the outcome of commands. Limits carry their unit in the name.
/// `Default` is `[storage]`'s defaults (spec §9.2), implemented in `crate::assemble`: the
/// configuration model owns every default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// `storage.allow_instance_recreate` (§6.4): may CREATE reuse the id of a deleted instance?
    pub allow_instance_recreate: bool,
    /// `storage.allow_flush_all` (§4.23): FLUSH_ALL is refused unless this is true.
    pub allow_flush_all: bool,
    /// `storage.max_machine_versions` (§4.7 step 4): versions per machine name; 0 = unlimited.
    pub max_machine_versions: u32,
    /// `storage.idempotency_ttl_secs` in milliseconds (§6.2): how long a key stays known after
    /// the timestamp of the record that recorded it.
    pub idempotency_ttl_ms: i64,
    /// `storage.idempotency_max_entries` (§6.2): the oldest keys are evicted beyond this count.
    pub idempotency_max_entries: usize,
    /// `storage.idempotency_max_bytes` (§6.2): the oldest keys are evicted while the entries
    /// take more than this, counted as a checkpoint encodes them.
    pub idempotency_max_bytes: usize,
}

impl EngineConfig {
    pub(crate) fn idempotency_limits(&self) -> super::idempotency::IdemLimits {
        super::idempotency::IdemLimits {
            max_entries: self.idempotency_max_entries,
            max_bytes: self.idempotency_max_bytes,
        }
    }
}
