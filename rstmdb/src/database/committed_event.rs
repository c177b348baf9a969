//! A committed event: one `apply_event` record as every watch subscription sees it — an
//! instance's move from one state to another. (Not to be confused with a definition's
//! transition, `dsl::definition::Transition`, the edge it took.)

use crate::engine::{ApplyEventRecord, Record};
use bytes::Bytes;
use rstmdb_protocol::message::Event;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// One committed event as every subscription sees it. The JSON of `payload` and `ctx` is parsed, and
/// the event serialised, once, by the first subscription that needs it, and shared by all of
/// them: fan-out to N subscriptions costs one serialisation, not N.
#[derive(Debug)]
pub struct CommittedEvent {
    pub offset: u64,
    pub instance_id: String,
    pub machine: String,
    pub version: u32,
    pub from_state: String,
    pub to_state: String,
    pub event: String,
    payload_json: Option<Box<RawValue>>,
    ctx_json: Box<RawValue>,
    parsed: OnceLock<Result<ParsedValues, String>>,
    /// The event's JSON after the subscription id, without and with `ctx` (index: include_ctx).
    event_tails: [OnceLock<Result<Bytes, String>>; 2],
}

/// The event's user values, parsed.
#[derive(Debug)]
pub struct ParsedValues {
    pub payload: Option<Map<String, Value>>,
    pub ctx: Map<String, Value>,
}

impl CommittedEvent {
    /// Every event's JSON (spec §3.5) starts with these bytes, then the subscription id as a
    /// JSON string; everything after the id is the same for every subscription.
    pub const EVENT_JSON_HEAD: &str = r#"{"type":"event","subscription_id":"#;

    pub(crate) fn from_record(offset: u64, record: ApplyEventRecord) -> CommittedEvent {
        CommittedEvent {
            offset,
            instance_id: record.instance_id,
            machine: record.machine,
            version: record.version,
            from_state: record.from_state,
            to_state: record.to_state,
            event: record.event,
            payload_json: record.payload,
            ctx_json: record.ctx,
            parsed: OnceLock::new(),
            event_tails: [OnceLock::new(), OnceLock::new()],
        }
    }

    /// The event a WAL record holds, if it is an `apply_event` record.
    pub(crate) fn from_wal(offset: u64, payload: &[u8]) -> Result<Option<CommittedEvent>, String> {
        let record: Record = serde_json::from_slice(payload)
            .map_err(|err| format!("record at offset {offset} does not decode: {err}"))?;
        Ok(match record {
            Record::ApplyEvent(apply) => Some(CommittedEvent::from_record(offset, apply)),
            _ => None,
        })
    }

    /// `payload` and `ctx` as JSON objects. Fails only for a record the engine could not have
    /// written (a ctx that is not an object), so the caller reports it as a read failure.
    pub fn values(&self) -> Result<&ParsedValues, &str> {
        self.parsed
            .get_or_init(|| self.parse())
            .as_ref()
            .map_err(String::as_str)
    }

    /// The event's JSON after its subscription id: `EVENT_JSON_HEAD`, the id as a JSON string,
    /// then these bytes are exactly `serde_json::to_string(&Event { .. })` (the client's own
    /// serialisation, so the spliced bytes cannot drift from it). Built once per variant.
    pub fn event_tail(&self, include_ctx: bool) -> Result<&Bytes, &str> {
        self.event_tails[usize::from(include_ctx)]
            .get_or_init(|| self.serialise_tail(include_ctx))
            .as_ref()
            .map_err(String::as_str)
    }

    fn serialise_tail(&self, include_ctx: bool) -> Result<Bytes, String> {
        let values = self.values().map_err(str::to_owned)?;
        let event = Event {
            subscription_id: String::new(),
            instance_id: self.instance_id.clone(),
            machine: self.machine.clone(),
            version: self.version,
            wal_offset: self.offset,
            from_state: self.from_state.clone(),
            to_state: self.to_state.clone(),
            event: self.event.clone(),
            payload: values.payload.clone(),
            ctx: include_ctx.then(|| values.ctx.clone()),
        };
        let json = serde_json::to_vec(&event).map_err(|err| {
            format!(
                "the event at offset {} does not serialise: {err}",
                self.offset
            )
        })?;
        let json_len = json.len();
        // The empty id serialises as `""` right after the head.
        let tail_len = json
            .strip_prefix(Self::EVENT_JSON_HEAD.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"\"\""))
            .map(<[u8]>::len)
            .ok_or_else(|| {
                format!(
                    "the event at offset {} does not start with {}\"\"",
                    self.offset,
                    Self::EVENT_JSON_HEAD
                )
            })?;
        Ok(Bytes::from(json).slice(json_len - tail_len..))
    }

    fn parse(&self) -> Result<ParsedValues, String> {
        let payload = match &self.payload_json {
            Some(raw) => serde_json::from_str::<Option<Map<String, Value>>>(raw.get()),
            None => Ok(None),
        };
        let ctx = serde_json::from_str::<Map<String, Value>>(self.ctx_json.get());
        match (payload, ctx) {
            (Ok(payload), Ok(ctx)) => Ok(ParsedValues { payload, ctx }),
            (Err(err), _) | (_, Err(err)) => Err(format!(
                "the apply_event record at offset {} holds a payload or ctx that is not an object: {err}",
                self.offset
            )),
        }
    }

    /// A rough size for the ring's byte bound.
    pub(super) fn approx_bytes(&self) -> usize {
        let strings = self.instance_id.len()
            + self.machine.len()
            + self.from_state.len()
            + self.to_state.len()
            + self.event.len();
        let json =
            self.ctx_json.get().len() + self.payload_json.as_ref().map_or(0, |p| p.get().len());
        // Parsed values roughly triple the JSON text once a subscription needs them, and the two
        // serialised events repeat the strings and the JSON once more each. Fixed at publish
        // time, so eviction subtracts exactly what insertion added.
        std::mem::size_of::<CommittedEvent>() + 3 * strings + 5 * json
    }
}
