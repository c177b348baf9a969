//! The WAL entry of every write (spec §4.17's entry table), as a typed enum.
//!
//! `Record` serialises to exactly the entry JSON of §4.17 — the `type` tag, the field names,
//! optional fields omitted — minus `unit`, which the WAL layer adds for atomic batches. It
//! deserialises the same JSON (unknown keys such as `unit` are ignored), so replay reads what
//! the writer wrote. ctx and payload travel as pre-serialised JSON text ([`RawValue`]): the
//! engine stores ctx as text anyway, and replay must not pay for a parse and re-print.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// The WAL record kind of a Raft entry's header (cluster mode, `docs/cluster.md` section 2).
/// Reserved here, beside the engine's codes 1 to 5, so that no record kind takes it.
pub const RAFT_ENTRY_KIND: u8 = 6;

/// One WAL entry.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    PutMachine(PutMachineRecord),
    CreateInstance(CreateInstanceRecord),
    ApplyEvent(ApplyEventRecord),
    DeleteInstance(DeleteInstanceRecord),
    FlushAll(FlushAllRecord),
}

#[derive(Debug, Clone, Serialize)]
pub struct PutMachineRecord {
    pub machine: String,
    pub version: u32,
    /// The checksum (§6.7).
    pub definition_hash: String,
    /// The definition as received, not normalised (§7.1: unknown keys stay here).
    pub definition: Value,
    pub timestamp: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CreateInstanceRecord {
    pub instance_id: String,
    pub machine: String,
    pub version: u32,
    pub initial_state: String,
    /// Always an object.
    pub initial_ctx: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    pub timestamp: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplyEventRecord {
    pub instance_id: String,
    pub machine: String,
    pub version: u32,
    pub event: String,
    pub from_state: String,
    pub to_state: String,
    /// An object, or `None` written as `null` (the field is always present).
    pub payload: Option<Box<RawValue>>,
    /// The full context after the transition (§6.6).
    pub ctx: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_wal_offset: Option<u64>,
    pub timestamp: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeleteInstanceRecord {
    pub instance_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    pub timestamp: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlushAllRecord {
    pub timestamp: i64,
}

impl Record {
    /// A stable, non-zero code for the WAL record header. Never renumber: old logs keep them.
    pub fn kind_code(&self) -> u8 {
        match self {
            Record::PutMachine(_) => 1,
            Record::CreateInstance(_) => 2,
            Record::ApplyEvent(_) => 3,
            Record::DeleteInstance(_) => 4,
            Record::FlushAll(_) => 5,
        }
    }

    /// The record's `timestamp` (epoch milliseconds, §6.5).
    pub fn timestamp(&self) -> i64 {
        match self {
            Record::PutMachine(r) => r.timestamp,
            Record::CreateInstance(r) => r.timestamp,
            Record::ApplyEvent(r) => r.timestamp,
            Record::DeleteInstance(r) => r.timestamp,
            Record::FlushAll(r) => r.timestamp,
        }
    }

    /// The instance the record touches, if any.
    pub fn instance_id(&self) -> Option<&str> {
        match self {
            Record::CreateInstance(r) => Some(&r.instance_id),
            Record::ApplyEvent(r) => Some(&r.instance_id),
            Record::DeleteInstance(r) => Some(&r.instance_id),
            Record::PutMachine(_) | Record::FlushAll(_) => None,
        }
    }
}

/// The flat shape every entry deserialises through. serde's internally tagged enums buffer their
/// content, which `RawValue` cannot be read from, so the tag is dispatched by hand here.
#[derive(Deserialize)]
struct RecordWire {
    #[serde(rename = "type")]
    kind: String,
    machine: Option<String>,
    version: Option<u32>,
    definition_hash: Option<String>,
    definition: Option<Value>,
    instance_id: Option<String>,
    initial_state: Option<String>,
    initial_ctx: Option<Box<RawValue>>,
    idempotency_key: Option<String>,
    event: Option<String>,
    from_state: Option<String>,
    to_state: Option<String>,
    #[serde(default)]
    payload: Option<Box<RawValue>>,
    ctx: Option<Box<RawValue>>,
    event_id: Option<String>,
    expected_state: Option<String>,
    expected_wal_offset: Option<u64>,
    timestamp: Option<i64>,
}

fn required<T>(field: Option<T>, name: &'static str) -> Result<T, String> {
    field.ok_or_else(|| format!("record lacks field `{name}`"))
}

/// Checks that a raw value is a JSON object (ctx and initial_ctx always are, §6.6).
fn object(raw: Box<RawValue>, name: &'static str) -> Result<Box<RawValue>, String> {
    if raw.get().starts_with('{') {
        Ok(raw)
    } else {
        Err(format!("record field `{name}` is not an object"))
    }
}

impl RecordWire {
    fn into_record(self) -> Result<Record, String> {
        let timestamp = required(self.timestamp, "timestamp")?;
        Ok(match self.kind.as_str() {
            "put_machine" => Record::PutMachine(PutMachineRecord {
                machine: required(self.machine, "machine")?,
                version: required(self.version, "version")?,
                definition_hash: required(self.definition_hash, "definition_hash")?,
                definition: required(self.definition, "definition")?,
                timestamp,
            }),
            "create_instance" => Record::CreateInstance(CreateInstanceRecord {
                instance_id: required(self.instance_id, "instance_id")?,
                machine: required(self.machine, "machine")?,
                version: required(self.version, "version")?,
                initial_state: required(self.initial_state, "initial_state")?,
                initial_ctx: object(required(self.initial_ctx, "initial_ctx")?, "initial_ctx")?,
                idempotency_key: self.idempotency_key,
                timestamp,
            }),
            "apply_event" => Record::ApplyEvent(ApplyEventRecord {
                instance_id: required(self.instance_id, "instance_id")?,
                machine: required(self.machine, "machine")?,
                version: required(self.version, "version")?,
                event: required(self.event, "event")?,
                from_state: required(self.from_state, "from_state")?,
                to_state: required(self.to_state, "to_state")?,
                payload: self.payload.map(|p| object(p, "payload")).transpose()?,
                ctx: object(required(self.ctx, "ctx")?, "ctx")?,
                event_id: self.event_id,
                idempotency_key: self.idempotency_key,
                expected_state: self.expected_state,
                expected_wal_offset: self.expected_wal_offset,
                timestamp,
            }),
            "delete_instance" => Record::DeleteInstance(DeleteInstanceRecord {
                instance_id: required(self.instance_id, "instance_id")?,
                idempotency_key: self.idempotency_key,
                timestamp,
            }),
            "flush_all" => Record::FlushAll(FlushAllRecord { timestamp }),
            other => return Err(format!("unknown record type `{other}`")),
        })
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        RecordWire::deserialize(deserializer)?
            .into_record()
            .map_err(D::Error::custom)
    }
}

/// Turns JSON text that the engine printed itself into a raw value. `RawValue::from_string`
/// parses the text again to check it; prefer [`raw_json`] where the value is at hand.
pub(crate) fn raw_from_printed(text: String) -> Box<RawValue> {
    // serde_json printed this text, so it is valid JSON; the fallback keeps the type total.
    RawValue::from_string(text).unwrap_or_else(|_| empty_object())
}

/// Prints `value` straight into a raw value, with no second parse.
pub(crate) fn raw_json<T: serde::Serialize + ?Sized>(value: &T) -> Box<RawValue> {
    // Maps and values of serde_json always print (their keys are strings); the fallback keeps
    // the type total.
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| empty_object())
}

/// `{}` as a raw value.
pub(crate) fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_default()
}
