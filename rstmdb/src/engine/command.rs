//! The write commands the engine executes. The dispatcher has already checked params (§4.0):
//! types here encode what the checks guarantee (an object ctx is a `Map`, a version a `u32`).

use serde_json::{Map, Value};

/// One write op, as the sequencer hands it to [`crate::engine::Engine::execute`].
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    PutMachine(PutMachine),
    CreateInstance(CreateInstance),
    ApplyEvent(ApplyEvent),
    DeleteInstance(DeleteInstance),
    FlushAll,
}

/// PUT_MACHINE (§4.7).
#[derive(Debug, Clone, PartialEq)]
pub struct PutMachine {
    pub machine: String,
    pub version: u32,
    /// The definition exactly as received; it is validated by the engine (§7.3) and stored
    /// as received in the `put_machine` record.
    pub definition: Value,
}

/// Where a new instance's id comes from. The difference matters for idempotency (§6.2): only a
/// client-given id is compared with the recorded one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceIdChoice {
    /// The request carried `instance_id`.
    Given(String),
    /// The request carried none; the caller generated this UUID v4 (the engine is pure, §6.5).
    Generated(String),
}

impl InstanceIdChoice {
    pub fn as_str(&self) -> &str {
        match self {
            InstanceIdChoice::Given(id) | InstanceIdChoice::Generated(id) => id,
        }
    }
}

/// CREATE_INSTANCE (§4.10).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateInstance {
    pub machine: String,
    pub version: u32,
    pub instance_id: InstanceIdChoice,
    /// `None` means `{}` (missing or null).
    pub initial_ctx: Option<Map<String, Value>>,
    pub idempotency_key: Option<String>,
}

/// APPLY_EVENT (§4.14).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApplyEvent {
    pub instance_id: String,
    pub event: String,
    /// `None` means null or absent: ctx is left unchanged (§6.6).
    pub payload: Option<Map<String, Value>>,
    pub expected_state: Option<String>,
    pub expected_wal_offset: Option<u64>,
    pub event_id: Option<String>,
    pub idempotency_key: Option<String>,
}

/// DELETE_INSTANCE (§4.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteInstance {
    pub instance_id: String,
    pub idempotency_key: Option<String>,
}
